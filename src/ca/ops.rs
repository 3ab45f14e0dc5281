//! The CA operations besides certificates (those go through [`super::issuance`]): requests,
//! CRLs and revocations, each recorded (fsynced) before its output is written. Commands call
//! them through [`super::session::CaToken`], which seals the log when the command ends.

use std::path::Path;

use der::Encode;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::audit::{Event, b64, sha256_hex};
use super::recorder::Recorder;
use super::signer::TokenSigner;
use super::store::normalize_serial;
use super::{revocation_reason, serial_hex};
use crate::error::{Error, Result};
use crate::output::{Overwrite, write_atomic};
use crate::x509::crl::{Revocation, issue_crl};
use crate::x509::csr::Csr;
use crate::x509::decode::{certificates_to_pem, to_pem};
use crate::x509::request::ca_request;
use crate::x509::validity::{Lifetime, ValidityPeriod, fmt, parse_time};

/// Writes certificates as one PEM file, atomically.
pub fn write_pem_certs(path: &Path, certs: &[&Certificate], ow: Overwrite) -> Result<()> {
    write_atomic(path, certificates_to_pem(certs)?.as_bytes(), 0o644, ow)?;
    Ok(())
}

/// Makes a request for a CA certificate for the key behind `signer` (checked and verified in
/// [`ca_request`]), records it, and writes it to `out` (PEM).
pub(crate) fn issue_request(
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

/// Issues the CA directory's CRL: every recorded revocation, the next CRL number, nextUpdate
/// `lifetime` from now; records it and writes `out` (PEM).
pub(crate) fn issue_crl_recorded(
    signer: &TokenSigner<'_, '_>,
    rec: &mut Recorder,
    lifetime: Lifetime,
    url: Option<&str>,
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
    // The next number after every one recorded (the token's head holds the last as well).
    let number = dir.crl_number().checked_add(1).ok_or_else(|| {
        Error::invalid(
            "the recorded CRL number is 2^64-1: no next number (a log no command wrote)",
            "do not sign anything until the CA directory is examined",
        )
    })?;
    let now = OffsetDateTime::now_utc();
    let this_update = now.replace_nanosecond(0).unwrap_or(now);
    // nextUpdate is an instant, not an inclusive period end: add the lifetime exactly.
    let next_update =
        ValidityPeriod::starting(this_update, lifetime)?.not_after + time::Duration::SECOND;
    let crl = issue_crl(
        signer,
        &issuer,
        number,
        this_update,
        next_update,
        &revoked,
        url,
    )?;
    let der = crl
        .to_der()
        .map_err(|e| Error::internal(format!("CRL encoding: {e}")))?;
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

/// A revocation checked against the CA directory's records: the certificate exists, is not the
/// CA's own, is not revoked yet, and the date is not in the future.
pub struct CheckedRevocation {
    serial: String,
    reason: String,
    date: OffsetDateTime,
}

/// Checks a revocation before the token is touched (`date` defaults to now).
pub fn check_revocation(
    rec: &Recorder,
    serial: &str,
    reason: &str,
    date: Option<OffsetDateTime>,
) -> Result<CheckedRevocation> {
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
    Ok(CheckedRevocation {
        serial: want,
        reason: reason.to_string(),
        date,
    })
}

/// Records a checked revocation; the next CRL lists it. It is checked again, under the lock
/// and logged in, so nothing recorded between the check and now is contradicted.
pub(crate) fn revoke(rec: &mut Recorder, checked: &CheckedRevocation) -> Result<String> {
    let again = check_revocation(rec, &checked.serial, &checked.reason, Some(checked.date))?;
    rec.append(Event::CertificateRevoked {
        serial: again.serial.clone(),
        reason: again.reason,
        revocation_date: fmt(again.date),
    })?;
    Ok(again.serial)
}
