//! One function per CA operation, in the order every signing command follows: check, sign,
//! verify, record (fsync), keep, write outputs. Callers check that outputs are free before
//! they log in, and seal the log ([`Recorder::seal`]) when their command ends.

use std::path::Path;

use der::Encode;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::audit::{Event, b64, sha256_hex};
use super::recorder::Recorder;
use super::signer::{SignatureChoice, TokenSigner};
use super::store::normalize_serial;
use super::{
    CheckedCsr, create_root, issued_record, profile_name, revocation_reason, serial_hex, sign_csr,
};
use crate::error::{Error, Result};
use crate::output::{Overwrite, write_atomic};
use crate::token::{Module, Pin, PinSource, Pkcs11Uri, TokenError, TokenSelector, TokenSession};
use crate::x509::crl::{Revocation, issue_crl};
use crate::x509::csr::Csr;
use crate::x509::decode::to_pem;
use crate::x509::profile::Profile;
use crate::x509::request::ca_request;
use crate::x509::validity::{Lifetime, ValidityPeriod, fmt, parse_time};

/// Writes certificates as one PEM file, atomically.
pub fn write_pem_certs(path: &Path, certs: &[&Certificate], ow: Overwrite) -> Result<()> {
    write_atomic(path, pem_certs(certs)?.as_bytes(), 0o644, ow)?;
    Ok(())
}

/// Certificates as one PEM text.
pub fn pem_certs(certs: &[&Certificate]) -> Result<String> {
    let mut pem = String::new();
    for c in certs {
        let der = c
            .to_der()
            .map_err(|e| Error::invalid(format!("certificate encoding: {e}"), "report a bug"))?;
        pem.push_str(&to_pem("CERTIFICATE", &der)?);
    }
    Ok(pem)
}

/// Logs in exactly once, printing the token's PIN-counter warnings; a failure is recorded.
pub fn login(session: &mut TokenSession<'_>, source: &PinSource, rec: &mut Recorder) -> Result<()> {
    let pin = Pin::read(
        source,
        &format!("User PIN for token \"{}\": ", session.label()),
    )?;
    match session.login(&pin) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        Err(e @ (TokenError::PinIncorrect | TokenError::PinLocked)) => {
            let event = Event::LoginFailed {
                token: session.label().to_string(),
                reason: e.to_string(),
            };
            if let Err(log_err) = rec.append(event) {
                eprintln!("warning: could not record the failed login: {log_err}");
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates the root, records it, keeps it as the CA directory's certificate and writes `out`.
pub fn issue_root(
    signer: &TokenSigner<'_, '_>,
    rec: &mut Recorder,
    subject: Name,
    validity: ValidityPeriod,
    path_len: Option<u8>,
    out: &Path,
    ow: Overwrite,
) -> Result<Certificate> {
    let key_uri = signer.key().uri.to_string();
    let cert = create_root(signer, subject, validity, path_len, rec.taken_serials())?;
    // Record first, files second: a crash after this line loses nothing ('hsmca export').
    rec.append(Event::RootCreated {
        cert: issued_record(&cert, "root", &key_uri)?,
    })?;
    rec.keep_cert(&cert)?;
    if let Some(dir) = rec.dir() {
        crate::output::write_ca_file(&dir.ca_cert_path(), pem_certs(&[&cert])?.as_bytes(), true)?;
    }
    write_pem_certs(out, &[&cert], ow)?;
    Ok(cert)
}

/// Makes a request for a CA certificate for the key behind `signer` (checked and verified in
/// [`ca_request`]), records it, and writes it to `out` (PEM).
pub fn issue_request(
    signer: &TokenSigner<'_, '_>,
    rec: &mut Recorder,
    subject: Name,
    path_len: Option<u8>,
    out: &Path,
    ow: Overwrite,
) -> Result<Csr> {
    let csr = ca_request(subject, path_len, signer)?;
    // Record first, file second, as for certificates.
    rec.append(Event::RequestCreated {
        key_uri: signer.key().uri.to_string(),
        subject: csr.subject().to_string(),
        csr_sha256: sha256_hex(csr.der()),
        csr_der: b64(csr.der()),
    })?;
    write_atomic(
        out,
        to_pem("CERTIFICATE REQUEST", csr.der())?.as_bytes(),
        0o644,
        ow,
    )?;
    Ok(csr)
}

/// Where a certificate signed from a CSR goes.
pub struct CertOutputs<'a> {
    /// The certificate (PEM).
    pub out: &'a Path,
    /// Optionally the chain: the certificate, then its issuer.
    pub chain_out: Option<&'a Path>,
    /// Whether existing files may be replaced.
    pub overwrite: Overwrite,
}

/// Signs a checked CSR, records it (with the CSR), keeps it and writes the outputs. A refusal
/// by the certificate layer is recorded as `request_refused`.
#[allow(clippy::too_many_arguments)]
pub fn issue_from_csr(
    signer: &TokenSigner<'_, '_>,
    rec: &mut Recorder,
    issuer: &Certificate,
    checked: &CheckedCsr,
    profile: Profile,
    subject: Option<Name>,
    validity: ValidityPeriod,
    outputs: &CertOutputs<'_>,
) -> Result<Certificate> {
    let key_uri = signer.key().uri.to_string();
    let pname = profile_name(&profile);
    let csr = checked.csr();
    let cert = sign_csr(
        signer,
        issuer,
        checked,
        profile,
        subject,
        validity,
        rec.taken_serials(),
    )
    .map_err(|e| rec.refuse("sign", Some(csr.der()), e))?;
    rec.append(Event::CsrSigned {
        cert: issued_record(&cert, pname, &key_uri)?,
        csr_sha256: sha256_hex(csr.der()),
        csr_der: b64(csr.der()),
    })?;
    rec.keep_cert(&cert)?;
    write_pem_certs(outputs.out, &[&cert], outputs.overwrite)?;
    if let Some(chain) = outputs.chain_out {
        write_pem_certs(chain, &[&cert, issuer], outputs.overwrite)?;
    }
    Ok(cert)
}

/// Issues the CA directory's CRL: every recorded revocation, the next CRL number, nextUpdate
/// `lifetime` from now; records it and writes `out` (PEM).
pub fn issue_crl_recorded(
    signer: &TokenSigner<'_, '_>,
    rec: &mut Recorder,
    lifetime: Lifetime,
    out: &Path,
    ow: Overwrite,
) -> Result<CertificateList> {
    let dir = rec.dir().ok_or_else(|| {
        Error::invalid(
            "a CRL is made from the CA directory's records",
            "pass --ca-dir (or HSMCA_CA_DIR)",
        )
    })?;
    let issuer =
        crate::x509::decode::load_certificate(&crate::error::read_file(&dir.ca_cert_path())?)?;
    let ledger = dir.ledger();
    let own = serial_hex(&issuer);
    let mut revoked = Vec::new();
    for (serial, entry) in ledger.revoked.iter().filter(|(s, _)| **s != own) {
        let bytes = hex::decode(serial).map_err(|_| {
            Error::invalid(
                format!("recorded serial {serial} is not hex"),
                "run 'hsmca log verify'",
            )
        })?;
        revoked.push(Revocation {
            serial: SerialNumber::new(&bytes).map_err(|e| {
                Error::invalid(
                    format!("recorded serial {serial}: {e}"),
                    "run 'hsmca log verify'",
                )
            })?,
            date: parse_time(&entry.date, false)?,
            reason: revocation_reason(&entry.reason)?,
        });
    }
    let number = ledger.last_crl_number + 1;
    let now = OffsetDateTime::now_utc();
    let this_update = now.replace_nanosecond(0).unwrap_or(now);
    // nextUpdate is an instant, not an inclusive period end: add the lifetime exactly.
    let next_update =
        ValidityPeriod::starting(this_update, lifetime)?.not_after + time::Duration::SECOND;
    let crl = issue_crl(signer, &issuer, number, this_update, next_update, &revoked)?;
    let der = crl
        .to_der()
        .map_err(|e| Error::invalid(format!("CRL encoding: {e}"), "report a bug"))?;
    rec.append(Event::CrlIssued {
        crl_number: number,
        this_update: fmt(this_update),
        next_update: fmt(next_update),
        revoked: revoked
            .iter()
            .map(|r| hex::encode_upper(r.serial.as_bytes()))
            .collect(),
        crl_sha256: sha256_hex(&der),
        crl_der: b64(&der),
    })?;
    rec.keep_crl(number, &der)?;
    write_atomic(out, to_pem("X509 CRL", &der)?.as_bytes(), 0o644, ow)?;
    Ok(crl)
}

/// Records the revocation of an issued certificate; the next CRL lists it.
pub fn revoke(
    rec: &mut Recorder,
    serial: &str,
    reason: &str,
    date: Option<OffsetDateTime>,
) -> Result<String> {
    revocation_reason(reason)?;
    let now = OffsetDateTime::now_utc();
    let date = date.unwrap_or(now.replace_nanosecond(0).unwrap_or(now));
    if date > now {
        return Err(Error::invalid(
            "the revocation date is in the future",
            "leave --date out (now) or give a past date",
        ));
    }
    let dir = rec.dir().ok_or_else(|| {
        Error::invalid(
            "revocations are recorded in the CA directory",
            "pass --ca-dir (or HSMCA_CA_DIR)",
        )
    })?;
    let ledger = dir.ledger();
    let want = normalize_serial(serial);
    let cert = ledger.find(&want).ok_or_else(|| {
        Error::invalid(
            format!("this CA has issued no certificate with serial {want}"),
            "list the serials with 'hsmca list'",
        )
    })?;
    if cert.profile == "root" {
        return Err(Error::invalid(
            "the CA's own certificate cannot be listed on its own CRL",
            "retire a root by removing it from trust stores; revoke the certificates it issued",
        ));
    }
    if let Some(r) = ledger.revoked.get(&want) {
        return Err(Error::invalid(
            format!(
                "serial {want} is already revoked ({}, {})",
                r.reason, r.date
            ),
            "nothing to do; the next CRL lists it",
        ));
    }
    rec.append(Event::CertificateRevoked {
        serial: want.clone(),
        reason: reason.to_string(),
        revocation_date: fmt(date),
    })?;
    Ok(want)
}

/// Runs one signing command with the CA key `uri` names: loads the module, opens a session,
/// logs in once (a failure is recorded), opens the key (policy-checked), calls `work`, and
/// seals the log when `work` succeeds. Session and module close on every path.
pub fn with_ca_key<T>(
    module_path: Option<&Path>,
    uri: &Pkcs11Uri,
    pin: &PinSource,
    choice: SignatureChoice,
    rec: &mut Recorder,
    work: impl FnOnce(&TokenSigner<'_, '_>, &mut Recorder) -> Result<T>,
) -> Result<T> {
    let module = Module::load(module_path.or(uri.module_path.as_deref()))?;
    let selector = TokenSelector {
        label: uri.token.clone(),
        serial: uri.serial.clone(),
    };
    let mut session = TokenSession::open(&module, &selector, false)?;
    login(&mut session, pin, rec)?;
    let key = session.open_key(uri)?;
    let key_uri = key.uri.to_string();
    let signer = TokenSigner::new(&session, key, choice)?;
    match work(&signer, rec) {
        Ok(out) => {
            rec.seal(&signer, &key_uri)?;
            Ok(out)
        }
        // What was recorded before the error (a batch stopped by a full disk or a closed
        // output, a refusal) is sealed too; the error is still the one to report, and a seal
        // that fails as well (a token that stopped answering) is left to the next command.
        Err(e) => {
            if rec.changed() {
                let _ = rec.seal(&signer, &key_uri);
            }
            Err(e)
        }
    }
}
