//! The one thing the certificate layer knows of a signing key: this trait.

use der::asn1::BitString;
use signature::Keypair;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SubjectPublicKeyInfoOwned,
};

use super::algorithm::SignatureAlgorithm;
pub use super::error::SignError;
use super::error::{Result, X509Error};

/// A key that signs certificates and CRLs: on a token in production, in memory for linting.
pub trait CaSigner {
    /// The signature algorithm it uses (also the AlgorithmIdentifier in the TBS).
    fn signature_algorithm(&self) -> SignatureAlgorithm;
    /// Its public key.
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// Signs `message`, returning the signature in its X.509 form (DER Ecdsa-Sig-Value for ECDSA).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// The public half of a [`CaSigner`]: what building a TBS needs ([`super::issue::prepare`])
/// on a thread other than the one that signs. It cannot sign.
#[derive(Debug, Clone)]
pub struct PublicHalf {
    spki: SubjectPublicKeyInfoOwned,
    algorithm: SignatureAlgorithm,
}

impl PublicHalf {
    /// The public key and signature algorithm of `signer`.
    pub fn of(signer: &dyn CaSigner) -> PublicHalf {
        PublicHalf {
            spki: signer.public_key().clone(),
            algorithm: signer.signature_algorithm(),
        }
    }
}

impl CaSigner for PublicHalf {
    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, SignError> {
        Err(SignError::new(
            X509Error::internal("a public key was asked to sign"),
            Some(super::error::REPORT_BUG.into()),
        ))
    }
}

/// Adapts a [`CaSigner`]'s public half to the x509-cert builder's `finalize`/`assemble`, which
/// need the key and algorithm but never sign: signing happens in between, through the trait.
pub(crate) struct BuilderKey {
    spki: SubjectPublicKeyInfoOwned,
    alg: AlgorithmIdentifierOwned,
}

impl BuilderKey {
    pub(crate) fn new(signer: &dyn CaSigner) -> Self {
        BuilderKey {
            spki: signer.public_key().clone(),
            alg: signer.signature_algorithm().algorithm_identifier(),
        }
    }

    /// The signature bytes as the BIT STRING of a certificate or CRL.
    pub(crate) fn bit_string(signature: &[u8]) -> Result<BitString> {
        BitString::from_bytes(signature)
            .map_err(|e| X509Error::internal(format!("signature encoding: {e}")))
    }
}

/// The SPKI as a public key type the builder accepts.
#[derive(Clone)]
pub(crate) struct SpkiKey(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<spki::Document> {
        Ok(spki::Document::encode_msg(&self.0)?)
    }
}

impl Keypair for BuilderKey {
    type VerifyingKey = SpkiKey;

    fn verifying_key(&self) -> SpkiKey {
        SpkiKey(self.spki.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for BuilderKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.alg.clone())
    }
}
