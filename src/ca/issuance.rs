//! The one issuance transaction. Every certificate a CA key signs is an [`Order`] and goes
//! through [`issue`] (one at a time) or the batch pipeline built from the same two halves
//! ([`prepare`] before the token, [`deliver`] after it), in one order:
//!
//! 1. the policy checks of the certificate layer (the issuer's name constraints, the subject,
//!    the key) while the TBS is built;
//! 2. a lint of a copy signed with exactly the token's signature algorithm;
//! 3. the token signs; the signature, the issuer field and the encoding are verified;
//! 4. a lint of the issued certificate;
//! 5. the record (fsynced), the kept copy, then the outputs.
//!
//! A refusal anywhere before the record is recorded as `request_refused` with the input it was
//! about, and nothing is written. Adding a check to steps 1–2 changes every path at once.

use std::path::Path;

use x509_cert::Certificate;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::audit::{Event, b64, sha256_hex};
use super::cross::CrossSource;
use super::recorder::Recorder;
use super::signer::TokenSigner;
use super::{CheckedCsr, issued_record, profile_name};
use crate::error::Result;
use crate::output::{Overwrite, write_atomic};
use crate::x509::decode::certificates_to_pem;
use crate::x509::issue::{CertRequest, PreparedCert, prepare_with_extras};
use crate::x509::lint::{lint_before_signing, refuse_findings};
use crate::x509::profile::{CaExtras, Profile};
use crate::x509::serial::random_serial_where;
use crate::x509::signer::CaSigner;
use crate::x509::validity::ValidityPeriod;

/// Whose key a certificate certifies.
pub enum Certify<'a> {
    /// The signer's own key, self-signed: a root.
    OwnKey,
    /// The key of a request whose self-signature and key were checked.
    Request(&'a CheckedCsr),
    /// Another CA's key and subject, from its checked certificate: a cross-certificate.
    Cross(&'a CrossSource),
}

/// A certificate to issue, as the CLI, a ceremony step or the k8s code describes it.
pub struct Order<'a> {
    /// Whose key.
    pub certify: Certify<'a>,
    /// The profile.
    pub profile: Profile,
    /// The subject, replacing the request's or the cross-signed certificate's (a root's own).
    pub subject: Option<Name>,
    /// The validity period.
    pub validity: ValidityPeriod,
    /// Optional CA extensions (ceremony files).
    pub extras: CaExtras,
    /// The command a refusal's record names (`sign`, `k8s sign`, `ceremony cross_sign`…).
    pub command: &'a str,
}

/// Where an issued certificate goes besides the CA directory.
pub struct Delivery<'a> {
    /// The certificate (PEM).
    pub out: &'a Path,
    /// Optionally the chain: the certificate, then its issuer.
    pub chain_out: Option<&'a Path>,
    /// Whether existing files may be replaced.
    pub overwrite: Overwrite,
}

/// How the copy linted before the token signs is made.
#[derive(Clone, Copy)]
pub(crate) enum LintCopy {
    /// Signed by a throwaway key with the token's exact signature algorithm (one request).
    Throwaway,
    /// The same TBS with a placeholder signature (a batch: the writer verifies the token's).
    Structural,
}

impl Order<'_> {
    /// The input a refusal is recorded with (the request or the certificate cross-signed).
    pub(crate) fn input(&self) -> Option<&[u8]> {
        match self.certify {
            Certify::OwnKey => None,
            Certify::Request(csr) => Some(csr.csr().der()),
            Certify::Cross(source) => Some(source.der()),
        }
    }

    /// The certificate request of the certificate layer.
    fn request<'i>(
        &self,
        signer: &dyn CaSigner,
        issuer: Option<&'i Certificate>,
        serial: SerialNumber,
    ) -> Result<CertRequest<'i>> {
        let (subject, public_key) = match self.certify {
            Certify::OwnKey => (
                self.subject
                    .clone()
                    .ok_or_else(|| crate::error::Error::internal("a root needs a subject"))?,
                signer.public_key().clone(),
            ),
            Certify::Request(csr) => (
                self.subject
                    .clone()
                    .unwrap_or_else(|| csr.csr().subject().clone()),
                csr.csr().spki().clone(),
            ),
            Certify::Cross(source) => {
                let tbs = source.certificate().tbs_certificate();
                (
                    self.subject
                        .clone()
                        .unwrap_or_else(|| tbs.subject().clone()),
                    tbs.subject_public_key_info().clone(),
                )
            }
        };
        Ok(CertRequest {
            profile: self.profile.clone(),
            subject,
            public_key,
            validity: self.validity,
            issuer,
            serial,
        })
    }

    /// The record of the issued certificate.
    pub(crate) fn event(&self, cert: &Certificate, key_uri: &str) -> Result<Event> {
        Ok(match self.certify {
            Certify::OwnKey => Event::RootCreated {
                cert: issued_record(cert, "root", key_uri)?,
            },
            Certify::Request(csr) => Event::CsrSigned {
                cert: issued_record(cert, profile_name(&self.profile), key_uri)?,
                csr_sha256: sha256_hex(csr.csr().der()),
                csr_der: b64(csr.csr().der()),
            },
            Certify::Cross(source) => Event::CrossSigned {
                cert: issued_record(cert, "cross", key_uri)?,
                source_sha256: sha256_hex(source.der()),
                source_der: b64(source.der()),
            },
        })
    }
}

/// Steps 1 and 2: builds the TBS with every policy check and lints a copy; nothing touches the
/// token. `signer` supplies the public key and signature algorithm only.
pub(crate) fn prepare(
    order: &Order<'_>,
    signer: &dyn CaSigner,
    issuer: Option<&Certificate>,
    serial: SerialNumber,
    lint: LintCopy,
) -> Result<PreparedCert> {
    let req = order.request(signer, issuer, serial)?;
    let prepared = prepare_with_extras(&req, &order.extras, signer)?;
    match lint {
        LintCopy::Throwaway => {
            lint_before_signing(&prepared, signer.public_key(), issuer)?;
        }
        LintCopy::Structural => {
            refuse_findings(&prepared.unsigned_copy()?, issuer, "before signing")?;
        }
    }
    Ok(prepared)
}

/// What records an issued certificate: the command's [`Recorder`] or a batch's writer.
pub(crate) trait Records {
    /// Appends an event, fsynced.
    fn append(&mut self, event: Event) -> Result<()>;
    /// Keeps an issued certificate in the CA directory.
    fn keep_cert(&self, cert: &Certificate) -> Result<()>;
    /// Makes a new root the CA directory's certificate.
    fn keep_ca_cert(&self, cert: &Certificate) -> Result<()>;
}

impl Records for Recorder {
    fn append(&mut self, event: Event) -> Result<()> {
        Recorder::append(self, event)
    }
    fn keep_cert(&self, cert: &Certificate) -> Result<()> {
        Recorder::keep_cert(self, cert)
    }
    fn keep_ca_cert(&self, cert: &Certificate) -> Result<()> {
        Recorder::keep_ca_cert(self, cert)
    }
}

impl Records for super::recorder::BatchRecorder<'_> {
    fn append(&mut self, event: Event) -> Result<()> {
        super::recorder::BatchRecorder::append(self, event)
    }
    fn keep_cert(&self, cert: &Certificate) -> Result<()> {
        super::recorder::BatchRecorder::keep_cert(self, cert)
    }
    fn keep_ca_cert(&self, _: &Certificate) -> Result<()> {
        Err(crate::error::Error::internal(
            "a batch signs requests, never a root",
        ))
    }
}

/// How an output file is written (atomically; a batch syncs its directories once at the end).
pub(crate) type WriteOutput<'a> = dyn FnMut(&Path, &[u8], Overwrite) -> Result<()> + 'a;

/// Step 5: records the issued certificate (a crash after the record loses nothing: `hsmca
/// export` writes it again), keeps it, then writes the outputs through `write`.
pub(crate) fn deliver(
    rec: &mut dyn Records,
    order: &Order<'_>,
    cert: &Certificate,
    issuer: Option<&Certificate>,
    key_uri: &str,
    delivery: &Delivery<'_>,
    write: &mut WriteOutput<'_>,
) -> Result<()> {
    rec.append(order.event(cert, key_uri)?)?;
    rec.keep_cert(cert)?;
    if matches!(order.certify, Certify::OwnKey) {
        rec.keep_ca_cert(cert)?;
    }
    write(
        delivery.out,
        certificates_to_pem(&[cert])?.as_bytes(),
        delivery.overwrite,
    )?;
    if let (Some(chain), Some(issuer)) = (delivery.chain_out, issuer) {
        write(
            chain,
            certificates_to_pem(&[cert, issuer])?.as_bytes(),
            delivery.overwrite,
        )?;
    }
    Ok(())
}

/// Issues one certificate under `issuer` (`None` for a root) through the whole transaction.
pub fn issue(
    signer: &TokenSigner<'_, '_>,
    rec: &mut Recorder,
    issuer: Option<&Certificate>,
    order: &Order<'_>,
    delivery: &Delivery<'_>,
) -> Result<Certificate> {
    let key_uri = signer.key().uri.to_string();
    let signed = (|| {
        let taken = rec.taken_serials();
        let serial = random_serial_where(|s| !taken.contains(s))?;
        let prepared = prepare(order, signer, issuer, serial, LintCopy::Throwaway)?;
        let cert = prepared.sign(signer)?;
        refuse_findings(&cert, issuer, "after signing")?;
        Ok(cert)
    })();
    let cert =
        signed.map_err(|e: crate::error::Error| rec.refuse(order.command, order.input(), e))?;
    deliver(
        rec,
        order,
        &cert,
        issuer,
        &key_uri,
        delivery,
        &mut |path, bytes, ow| Ok(write_atomic(path, bytes, 0o644, ow)?),
    )?;
    Ok(cert)
}
