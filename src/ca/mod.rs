//! CA operations that join the layers: key generation with its self-test, the self-signed
//! root, and certificates signed from CSRs.

pub mod signer;

use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::error::{Error, Result};
use crate::token::{KeySpec, TokenKey, TokenSession};
use crate::x509::algorithm::spki_sha256;
use crate::x509::csr::Csr;
use crate::x509::issue::{prepare, CertRequest};
use crate::x509::profile::Profile;
use crate::x509::signer::CaSigner;
use crate::x509::validity::ValidityPeriod;
use crate::x509::verify::verify_signature;
use signer::{spki_from_material, SignatureChoice, TokenSigner};

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
/// the token layer) and signs and verifies a test message before reporting success.
pub fn generate_key(
    session: &TokenSession<'_>,
    spec: KeySpec,
    label: &str,
    id: &[u8],
) -> Result<GeneratedKey> {
    let key = session.generate(spec, label, id)?;
    let signer = TokenSigner::new(session, key.clone(), SignatureChoice::default())?;
    let mut message = b"hsmca key generation self-test ".to_vec();
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| {
        Error::invalid(format!("the system RNG failed: {e}"), "fix the system RNG")
    })?;
    message.extend_from_slice(&nonce);
    let signature = signer.sign(&message)?;
    let alg = signer.signature_algorithm().algorithm_identifier();
    verify_signature(signer.public_key(), &alg, &message, &signature).map_err(|e| {
        Error::invalid(
            format!("the new key's test signature does not verify with its public key: {e}"),
            "the token misbehaves; do not use this key (it stays on the token under its label)",
        )
    })?;
    let spki = spki_from_material(&key.public)?;
    Ok(GeneratedKey {
        spki_sha256: spki_sha256(&spki),
        key,
        spki,
    })
}

/// Creates the self-signed root certificate of the key behind `signer`.
pub fn create_root(
    signer: &dyn CaSigner,
    subject: Name,
    validity: ValidityPeriod,
    path_len: Option<u8>,
) -> Result<Certificate> {
    let req = CertRequest {
        profile: Profile::Root { path_len },
        subject,
        public_key: signer.public_key().clone(),
        validity,
        issuer: None,
    };
    prepare(&req, signer)?.sign(signer)
}

/// Issues a certificate for a CSR whose self-signature has been verified.
pub fn sign_csr(
    signer: &dyn CaSigner,
    issuer: &Certificate,
    csr: &Csr,
    profile: Profile,
    subject: Option<Name>,
    validity: ValidityPeriod,
) -> Result<Certificate> {
    csr.verify_self_signature()?;
    csr.public_key()?;
    let req = CertRequest {
        profile,
        subject: subject.unwrap_or_else(|| csr.subject().clone()),
        public_key: csr.spki().clone(),
        validity,
        issuer: Some(issuer),
    };
    prepare(&req, signer)?.sign(signer)
}
