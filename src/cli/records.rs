//! Commands that read or extend the CA directory's records without the token.

use std::path::Path;

use base64::Engine;

use super::GlobalArgs;
use super::inputs::overwrite;
use super::report;
use crate::ca::audit::Event;
use crate::ca::ops::{self, write_pem_certs};
use crate::ca::recorder::Recorder;
use crate::ca::session::with_ca_key;
use crate::ca::signer::SignatureChoice;
use crate::ca::store::{Access, CaDir, Reading, normalize_serial};
use crate::error::{Error, Result, read_file};
use crate::x509::decode::{load_certificate, to_pem};
use crate::x509::validity::{fmt, parse_time};

fn open(g: &GlobalArgs, access: Access) -> Result<CaDir> {
    let path = g.ca_dir.as_ref().ok_or_else(|| {
        Error::invalid(
            "no CA directory given",
            "pass --ca-dir DIR or set HSMCA_CA_DIR",
        )
    })?;
    CaDir::open(path, access, Reading::Whole)
}

fn not_found(serial: &str) -> Error {
    Error::invalid(
        format!("this CA has issued no certificate with serial {serial}"),
        "list the serials with 'hsmca list'",
    )
}

/// `hsmca list`: every issued certificate with its status.
pub fn list(g: &GlobalArgs, json: bool) -> Result<()> {
    let dir = open(g, Access::Read)?;
    let ledger = dir.ledger();
    let now = fmt(time::OffsetDateTime::now_utc());
    let rows: Vec<_> = ledger
        .issued
        .iter()
        .map(|(seq, c)| {
            let status = if ledger.revoked.contains_key(&c.serial) {
                "revoked"
            } else if c.not_after < now {
                "expired"
            } else {
                "valid"
            };
            (seq, c, status)
        })
        .collect();
    if json {
        let items: Vec<report::Issued> = rows
            .iter()
            .map(|(seq, c, status)| report::Issued {
                record: **seq,
                serial: c.serial.clone(),
                subject: c.subject.clone(),
                issuer: c.issuer.clone(),
                profile: c.profile.clone(),
                not_before: c.not_before.clone(),
                not_after: c.not_after.clone(),
                status,
                sha256: c.cert_sha256.clone(),
            })
            .collect();
        return report::print_json(&items);
    }
    say!(
        "{:<40}  {:<13}  {:<7}  {:<20}  SUBJECT",
        "SERIAL",
        "PROFILE",
        "STATUS",
        "NOT AFTER"
    );
    for (_, c, status) in rows {
        say!(
            "{:<40}  {:<13}  {:<7}  {:<20}  {}",
            c.serial,
            c.profile,
            status,
            c.not_after,
            c.subject
        );
    }
    Ok(())
}

/// `hsmca show`: the record of one certificate, the certificate and its request.
pub fn show(g: &GlobalArgs, serial: &str, json: bool) -> Result<()> {
    let dir = open(g, Access::Read)?;
    let want = normalize_serial(serial);
    let ledger = dir.ledger();
    for e in &dir.entries {
        let (cert, csr) = match &e.record.event {
            Event::RootCreated { cert } => (cert, None),
            Event::CsrSigned { cert, csr_der, .. } => (cert, Some(csr_der)),
            Event::CrossSigned { cert, .. } => (cert, None),
            _ => continue,
        };
        if cert.serial != want {
            continue;
        }
        let csr_pem = match csr {
            Some(csr) => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(csr)
                    .map_err(|_| {
                        Error::invalid("the recorded CSR is not base64", "run 'hsmca log verify'")
                    })?;
                Some(to_pem("CERTIFICATE REQUEST", &der)?)
            }
            None => None,
        };
        let shown = report::Shown {
            record: e.record.seq,
            time: e.record.time.clone(),
            operator: e.record.operator.clone(),
            serial: cert.serial.clone(),
            subject: cert.subject.clone(),
            issuer: cert.issuer.clone(),
            profile: cert.profile.clone(),
            not_before: cert.not_before.clone(),
            not_after: cert.not_after.clone(),
            key_uri: cert.key_uri.clone(),
            revoked: ledger
                .revoked
                .get(&cert.serial)
                .map(|r| report::Revocation {
                    reason: r.reason.clone(),
                    date: r.date.clone(),
                }),
            sha256: cert.cert_sha256.clone(),
            certificate_pem: to_pem("CERTIFICATE", &cert.der()?)?,
            csr_pem,
        };
        if json {
            return report::print_json(&shown);
        }
        say!(
            "record: {} ({} by {})",
            shown.record,
            shown.time,
            shown.operator.as_deref().unwrap_or("unknown")
        );
        say!("serial: {}", shown.serial);
        say!("subject: {}", shown.subject);
        say!("issuer: {}", shown.issuer);
        say!("profile: {}", shown.profile);
        say!("validity: {} .. {}", shown.not_before, shown.not_after);
        say!("signed with: {}", shown.key_uri);
        match &shown.revoked {
            Some(r) => say!("status: revoked ({}, {})", r.reason, r.date),
            None => say!("status: not revoked"),
        }
        say!("certificate sha256: {}", shown.sha256);
        say_raw!("{}", shown.certificate_pem);
        if let Some(csr) = &shown.csr_pem {
            say_raw!("{csr}");
        }
        return Ok(());
    }
    Err(not_found(&want))
}

/// `hsmca export`: an issued certificate, from the log, to a file.
pub fn export(g: &GlobalArgs, serial: &str, out: &Path, force: bool) -> Result<()> {
    let dir = open(g, Access::Read)?;
    let ledger = dir.ledger();
    let want = normalize_serial(serial);
    let cert = ledger.find(&want).ok_or_else(|| not_found(&want))?;
    let parsed = load_certificate(&cert.der()?)?;
    write_pem_certs(out, &[&parsed], overwrite(force))?;
    say!("wrote {}", out.display());
    Ok(())
}

/// `hsmca revoke`: records a revocation, sealed by the CA key (a revocation is a CA act); the
/// next CRL lists it.
pub fn revoke(
    g: &GlobalArgs,
    key: Option<&str>,
    serial: &str,
    reason: &str,
    date: Option<&str>,
) -> Result<()> {
    let date = date.map(|d| parse_time(d, false)).transpose()?;
    let mut rec = Recorder::open(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let Some(dir) = rec.dir() else {
        return Err(Error::invalid(
            "no CA directory given",
            "pass --ca-dir DIR or set HSMCA_CA_DIR",
        ));
    };
    let uri = match key {
        Some(k) => super::inputs::parse_key_uri(k)?,
        None => {
            let sealed_by = dir
                .entries
                .iter()
                .rev()
                .find_map(|e| match &e.record.event {
                    crate::ca::audit::Event::Seal { key_uri, .. } => Some(key_uri.clone()),
                    _ => None,
                });
            let text = sealed_by.ok_or_else(|| {
                Error::invalid(
                    "the CA directory's log has no seal naming the CA key",
                    "pass --key with the CA key's PKCS#11 URI",
                )
            })?;
            super::inputs::parse_key_uri(&text)?
        }
    };
    let checked = ops::check_revocation(&rec, serial, reason, date)?;
    let serial = with_ca_key(
        g.module.as_deref(),
        &uri,
        &super::inputs::pin_source(g, Some(&uri)),
        SignatureChoice::default(),
        &mut rec,
        |ca| ca.revoke(&checked),
    )?;
    say!("revoked {serial} ({reason}), recorded and sealed; issue a CRL to publish it");
    Ok(())
}

/// `hsmca log verify`: the whole chain and every seal; exit 0 only when intact.
pub fn log_verify(
    g: &GlobalArgs,
    root: Option<&Path>,
    key: Option<&str>,
    json: bool,
) -> Result<()> {
    let dir = open(g, Access::Read)?;
    let ca = match root {
        Some(p) => load_certificate(&read_file(p)?)?,
        None => dir.recorded_ca_cert()?.ok_or_else(|| {
            Error::invalid(
                format!("{} has no CA certificate (ca.crt)", dir.path().display()),
                "pass --root with the certificate of the CA key that seals this log",
            )
        })?,
    };
    let ca_path = root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.ca_cert_path());
    let ca_key = ca.tbs_certificate().subject_public_key_info();
    let report = dir.verify(ca_key)?;
    let missing = dir.check_files()?;
    let head = match key {
        Some(k) => {
            let uri = super::inputs::parse_key_uri(k)?;
            Some(crate::ca::session::verify_head(
                g.module.as_deref(),
                &uri,
                &super::inputs::pin_source(g, Some(&uri)),
                &dir,
                ca_key,
            )?)
        }
        None => None,
    };
    // A command killed mid-batch leaves its certificates recorded but maybe not written:
    // they are named, so the operator can check the outputs and export the missing ones.
    let tail = dir
        .entries
        .len()
        .saturating_sub(usize::try_from(report.unsealed_tail).unwrap_or(usize::MAX));
    let verified = report::LogVerified {
        records: report.records,
        seals: report.seals,
        ca_certificate: ca_path.display().to_string(),
        head: match head {
            Some(Some(_)) => "in_log",
            Some(None) => "none_yet",
            None => "not_checked",
        },
        head_record: head.flatten(),
        unsealed_records: report.unsealed_tail,
        issued_after_last_seal: dir.entries[tail..]
            .iter()
            .filter_map(|e| e.record.event.issued_cert())
            .map(|cert| report::SerialSubject {
                serial: cert.serial.clone(),
                subject: cert.subject.clone(),
            })
            .collect(),
        missing_copies: (!missing.is_empty()).then(|| missing.describe()),
        interrupted_append: report.interrupted_append,
    };
    if json {
        return report::print_json(&verified);
    }
    log_verify_text(&verified);
    Ok(())
}

fn log_verify_text(v: &report::LogVerified) {
    say!(
        "audit log intact: {} records, {} seals verified with {}",
        v.records,
        v.seals,
        v.ca_certificate
    );
    match (v.head, v.head_record) {
        (_, Some(seq)) => say!(
            "log head: the token's head (record {seq}) is in this log: it was not cut back, swapped or extended"
        ),
        ("none_yet", _) => say!(
            "log head: the token keeps no head for this key yet (the next signing command stores one)"
        ),
        _ => say!(
            "log head: not checked (a log cut back to an earlier seal passes the checks above); pass --key with the CA key to check the log against the head the token keeps"
        ),
    }
    if v.unsealed_records > 0 {
        say!(
            "note: the last {} record(s) come after the last seal (a command that stopped before sealing, or refusals); the next signing command seals them",
            v.unsealed_records
        );
        let issued: Vec<String> = v
            .issued_after_last_seal
            .iter()
            .map(|c| format!("  {}  {}", c.serial, c.subject))
            .collect();
        if !issued.is_empty() {
            say!(
                "note: certificates issued after the last seal (if their command stopped before its end, check that their output files exist; 'hsmca export --serial SERIAL --out FILE' writes one from the log):\n{}",
                issued.join("\n")
            );
        }
    }
    if let Some(missing) = &v.missing_copies {
        say!(
            "note: {missing} recorded in the log have no kept copy in the CA directory (a command was stopped after recording them); the next signing command keeps them again from the log ('hsmca export' writes a certificate now)"
        );
    }
    if let Some(length) = v.interrupted_append {
        say!(
            "note: the log ends in an unfinished record of {length} bytes: a command was stopped while appending it, so it wrote nothing after it; the next signing command removes those bytes and records what it removed"
        );
    }
}
