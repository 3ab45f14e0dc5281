//! In-memory keys: a throwaway key of the CA's algorithm to lint a TBS before the token signs
//! it, and the cluster side's file keys (never a root key: those live on the token).

use der::Decode;
use rcgen::{KeyPair, PublicKeyData, SigningKey};
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use super::algorithm::{KeyAlgorithm, SignatureAlgorithm};
use super::signer::CaSigner;
use crate::error::{Error, Result};

/// A private key held in memory (and, on the cluster side, in a 0600 file).
pub struct SoftKey {
    pair: KeyPair,
    algorithm: KeyAlgorithm,
    spki: SubjectPublicKeyInfoOwned,
    /// The signature it makes: its algorithm's default, unless made for another
    /// ([`SoftKey::generate_for`]).
    signature: SignatureAlgorithm,
    /// The RSA key again, for the signatures ring does not make (PSS, PKCS#1 v1.5 with SHA-384
    /// or SHA-512).
    rsa: Option<rsa::PrivateKey>,
}

fn key_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(
        format!("{what}: {e}"),
        "use a PKCS#8 PEM key of ECDSA P-256/P-384, RSA 2048-4096 or Ed25519",
    )
}

fn rcgen_alg(alg: KeyAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match alg {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            &rcgen::PKCS_RSA_SHA256
        }
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

impl SoftKey {
    /// A fresh key of `algorithm` from the system CSPRNG.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<SoftKey> {
        Self::generate_for(algorithm, algorithm.default_signature())
    }

    /// A fresh key of `algorithm` that signs with `signature` (a lint copy must carry exactly
    /// the signature algorithm the token will use: PSS, or PKCS#1 v1.5 with SHA-384).
    pub fn generate_for(algorithm: KeyAlgorithm, signature: SignatureAlgorithm) -> Result<SoftKey> {
        if !signature.is_compatible_with(algorithm) {
            return Err(Error::invalid(
                format!("{signature} is not a signature of a {algorithm} key"),
                "report a bug",
            ));
        }
        let (pair, rsa) = match algorithm.rsa_bits() {
            // ring cannot generate RSA keys: the rsa crate does, and ring signs with them.
            Some(bits) => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits as usize)
                    .map_err(|e| key_err("RSA key generation failed", e))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| key_err("RSA key encoding failed", e))?;
                let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
                let pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, rcgen_alg(algorithm))
                    .map_err(|e| key_err("RSA key import failed", e))?;
                (pair, Some(key))
            }
            None => (
                KeyPair::generate_for(rcgen_alg(algorithm))
                    .map_err(|e| key_err("key generation failed", e))?,
                None,
            ),
        };
        let mut key = Self::from_pair(pair, algorithm)?;
        key.signature = signature;
        key.rsa = rsa;
        Ok(key)
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<SoftKey> {
        let pair = KeyPair::from_pem(pem).map_err(|e| key_err("cannot read the private key", e))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&pair.subject_public_key_info())
            .map_err(|e| key_err("cannot read the public key", e))?;
        let info = super::algorithm::PublicKeyInfo::from_spki(&spki)?;
        let algorithm = info.key_algorithm().ok_or_else(|| {
            key_err(
                "unsupported key",
                format!("{info} has no hsmca algorithm name"),
            )
        })?;
        Self::from_pair(pair, algorithm)
    }

    fn from_pair(pair: KeyPair, algorithm: KeyAlgorithm) -> Result<SoftKey> {
        let spki = SubjectPublicKeyInfoOwned::from_der(&pair.subject_public_key_info())
            .map_err(|e| key_err("cannot read the public key", e))?;
        Ok(SoftKey {
            pair,
            algorithm,
            spki,
            signature: algorithm.default_signature(),
            rsa: None,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 PEM of the private key, zeroized when dropped.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.pair.serialize_pem())
    }

    /// The rcgen key pair, for making CSRs.
    pub fn key_pair(&self) -> &KeyPair {
        &self.pair
    }
}

impl CaSigner for SoftKey {
    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.signature
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use sha2::{Sha256, Sha384, Sha512};
        let failed = |e: rsa::Error| key_err("signing with the in-memory key failed", e);
        let rsa = || {
            self.rsa
                .as_ref()
                .ok_or_else(|| key_err("signing with the in-memory key failed", "no RSA key"))
        };
        match self.signature {
            SignatureAlgorithm::RsaPkcs1Sha384 => {
                rsa()?.pkcs1v15_sign::<Sha384>(message).map_err(failed)
            }
            SignatureAlgorithm::RsaPkcs1Sha512 => {
                rsa()?.pkcs1v15_sign::<Sha512>(message).map_err(failed)
            }
            SignatureAlgorithm::RsaPssSha256 => rsa()?.pss_sign::<Sha256>(message).map_err(failed),
            SignatureAlgorithm::RsaPssSha384 => rsa()?.pss_sign::<Sha384>(message).map_err(failed),
            SignatureAlgorithm::RsaPssSha512 => rsa()?.pss_sign::<Sha512>(message).map_err(failed),
            // ring's ECDSA output is already the DER Ecdsa-Sig-Value X.509 carries.
            _ => self
                .pair
                .sign(message)
                .map_err(|e| key_err("signing with the in-memory key failed", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::verify::verify_signature;

    #[test]
    fn every_algorithm_signs_what_verifies() {
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Ed25519,
        ] {
            let key = SoftKey::generate(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            let id = key.signature_algorithm().algorithm_identifier();
            verify_signature(key.public_key(), &id, b"message", &sig).unwrap();
            let again = SoftKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            assert_eq!(again.algorithm(), alg);
        }
    }
}
