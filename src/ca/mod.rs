//! CA operations that join the layers: key generation with its self-test, the self-signed
//! root, certificates signed from CSRs, CRLs, and the records of all of them.

pub mod anchor;
pub mod audit;
pub mod backup;
pub mod batch;
pub mod bench;
pub mod ca_keys;
pub mod cross;
pub mod issuance;
pub mod ops;
pub mod recorder;
pub mod session;
pub mod signer;
pub mod store;

use der::Encode;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use crate::error::{Error, Result};
use crate::token::{KeySpec, TokenKey, TokenSession};
use crate::x509::algorithm::spki_sha256;
use crate::x509::csr::Csr;
use crate::x509::profile::Profile;
use crate::x509::signer::CaSigner;
use crate::x509::validity::{fmt, from_x509_time};
use crate::x509::verify::verify_signature;
use audit::{IssuedCert, b64, sha256_hex};
pub use ca_keys::CaKeys;
use recorder::Recorder;
use signer::{SignatureChoice, TokenSigner, spki_from_material};

/// A key pair generated on the token and proven to sign.
pub struct GeneratedKey {
    /// The private key on the token.
    pub key: TokenKey,
    /// Its public key.
    pub spki: SubjectPublicKeyInfoOwned,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

/// Generates a CA key on the token, reads its attributes back (the policy check runs inside
/// the token layer) and signs and verifies a test message before reporting success. A failure
/// after the key pair exists is recorded as a refusal naming the key (hsmca never destroys a
/// key), so the audit log accounts for every key the token holds.
pub(crate) fn generate_key(
    session: &TokenSession<'_>,
    spec: KeySpec,
    (label, id): (&str, &[u8]),
    backup: bool,
    rec: &mut Recorder,
    command: &str,
) -> Result<GeneratedKey> {
    let key = match session.generate(spec, label, id, backup) {
        Ok((key, note)) => {
            if let Some(note) = note {
                crate::notice::note(note);
            }
            key
        }
        Err(e @ crate::token::TokenError::AfterGeneration { .. }) => {
            return Err(rec.refuse(command, None, e));
        }
        Err(e) => return Err(e.into()),
    };
    self_test(session, &key).map_err(|e| {
        let (cause, _) = e.cause_and_hint();
        let err = Error::invalid(
            format!(
                "the key pair \"{label}\" (id {}) was generated on the token, but checking it failed: {cause}",
                hex::encode(id)
            ),
            "do not use this key: it is recorded as refused and stays on the token (hsmca never deletes keys); remove it with the token's own tools, then generate again",
        );
        rec.refuse(command, None, err)
    })
}

/// The checks of a freshly generated key: a test signature verified with its public key.
fn self_test(session: &TokenSession<'_>, key: &TokenKey) -> Result<GeneratedKey> {
    let signer = TokenSigner::new(session, key.clone(), SignatureChoice::default())?;
    let mut message = b"hsmca key generation self-test ".to_vec();
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|e| Error::invalid(format!("the system RNG failed: {e}"), "fix the system RNG"))?;
    message.extend_from_slice(&nonce);
    let signature = signer.sign(&message)?;
    let alg = signer.signature_algorithm().algorithm_identifier();
    verify_signature(signer.public_key(), &alg, &message, &signature).map_err(|e| {
        Error::invalid(
            format!("the new key's test signature does not verify with its public key: {e}"),
            "the token misbehaves; do not use this key",
        )
    })?;
    let spki = spki_from_material(&key.public)?;
    Ok(GeneratedKey {
        spki_sha256: spki_sha256(&spki),
        key: key.clone(),
        spki,
    })
}

/// A CSR whose self-signature verified and whose key is acceptable: the only kind hsmca signs.
pub struct CheckedCsr {
    csr: Csr,
}

impl CheckedCsr {
    /// Verifies the CSR's self-signature and refuses weak or unknown keys, and the key of any
    /// CA in `ca_keys` (a request for a CA's own key would let it stand for another subject).
    pub fn check(csr: Csr, ca_keys: &CaKeys) -> Result<CheckedCsr> {
        csr.verify_self_signature()?;
        csr.public_key()?;
        crate::x509::weak_rsa::check_certifiable(csr.spki())?;
        if let Some(refusal) = ca_keys.refusal(&spki_sha256(csr.spki()), &csr.subject().to_string())
        {
            return Err(refusal);
        }
        Ok(CheckedCsr { csr })
    }

    /// A CSR checked earlier in this command and read again (a batch keeps only hashes in
    /// memory): accepted only if its bytes still hash to what was checked.
    pub fn recheck(csr: Csr, checked_sha256: &[u8; 32]) -> Result<CheckedCsr> {
        if &csr.sha256() != checked_sha256 {
            return Err(Error::invalid(
                "a CSR changed on disk after it was checked",
                "make sure nothing writes the request files during a signing command, and run it again",
            ));
        }
        Ok(CheckedCsr { csr })
    }

    /// The request.
    pub fn csr(&self) -> &Csr {
        &self.csr
    }
}

/// Upper-case hex of a certificate's serial.
pub fn serial_hex(cert: &Certificate) -> String {
    hex::encode_upper(cert.tbs_certificate().serial_number().as_bytes())
}

/// The audit form of an issued certificate.
pub fn issued_record(cert: &Certificate, profile: &str, key_uri: &str) -> Result<IssuedCert> {
    let tbs = cert.tbs_certificate();
    let der = cert
        .to_der()
        .map_err(|e| Error::internal(format!("certificate encoding: {e}")))?;
    Ok(IssuedCert {
        serial: serial_hex(cert),
        subject: tbs.subject().to_string(),
        issuer: tbs.issuer().to_string(),
        profile: profile.to_string(),
        not_before: fmt(from_x509_time(&tbs.validity().not_before)?),
        not_after: fmt(from_x509_time(&tbs.validity().not_after)?),
        cert_sha256: sha256_hex(&der),
        cert_der: b64(&der),
        key_uri: key_uri.to_string(),
        spki_sha256: Some(hex::encode(spki_sha256(tbs.subject_public_key_info()))),
    })
}

/// The profile's name as records and listings show it.
pub fn profile_name(p: &Profile) -> &'static str {
    use crate::x509::profile::LeafUsage;
    match p {
        Profile::Root { .. } => "root",
        Profile::Intermediate { .. } => "intermediate",
        Profile::Leaf {
            usage: LeafUsage::Server,
            ..
        } => "server",
        Profile::Leaf {
            usage: LeafUsage::Client,
            ..
        } => "client",
        Profile::Leaf {
            usage: LeafUsage::ServerClient,
            ..
        } => "server-client",
    }
}

/// The reasons `revoke` accepts, by their RFC 5280 names.
pub const REVOCATION_REASONS: &[(&str, x509_cert::ext::pkix::CrlReason)] = &[
    (
        "keyCompromise",
        x509_cert::ext::pkix::CrlReason::KeyCompromise,
    ),
    (
        "caCompromise",
        x509_cert::ext::pkix::CrlReason::CaCompromise,
    ),
    (
        "affiliationChanged",
        x509_cert::ext::pkix::CrlReason::AffiliationChanged,
    ),
    ("superseded", x509_cert::ext::pkix::CrlReason::Superseded),
    (
        "cessationOfOperation",
        x509_cert::ext::pkix::CrlReason::CessationOfOperation,
    ),
];

/// Parses a revocation reason name.
pub fn revocation_reason(name: &str) -> Result<x509_cert::ext::pkix::CrlReason> {
    REVOCATION_REASONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            Error::invalid(
                format!("unknown revocation reason \"{name}\""),
                format!(
                    "use one of {}",
                    REVOCATION_REASONS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}
