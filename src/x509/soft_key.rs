//! In-memory keys: a throwaway key of the CA's algorithm to lint a TBS before the token signs
//! it, and the cluster side's file keys (never a root key: those live on the token). Made,
//! read and used with AWS-LC (aws-lc-rs), the one host crypto backend; key generation draws
//! from AWS-LC's DRBG, seeded by the operating system.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    self as lc, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair, RsaEncoding,
};
use der::Decode;
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use super::algorithm::{KeyAlgorithm, PublicKeyInfo, SignatureAlgorithm};
use super::decode::{read_single, to_pem};
use super::error::{Result, X509Error};
use super::signer::{CaSigner, SignError};

/// The PEM label of a PKCS#8 private key.
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// A private key held in memory (and, on the cluster side, in a 0600 file).
pub struct SoftKey {
    pair: Pair,
    algorithm: KeyAlgorithm,
    spki: SubjectPublicKeyInfoOwned,
    /// The signature it makes: its algorithm's default, unless made for another
    /// ([`SoftKey::generate_for`]).
    signature: SignatureAlgorithm,
    /// The key as PKCS#8 PEM, made once (its encoding cannot fail later).
    pem: Zeroizing<String>,
}

/// The AWS-LC key. An ECDSA key pair is bound to the one signature it makes; an RSA key pair
/// signs with whichever RSA encoding it is given.
enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

fn key_err(what: &str, e: impl std::fmt::Display) -> X509Error {
    X509Error::refused(
        format!("{what}: {e}"),
        "use a PKCS#8 PEM key of ECDSA P-256/P-384, RSA 2048-4096 or Ed25519",
    )
}

/// The signing algorithm of an ECDSA key: its curve with the curve's own hash, the only pair
/// [`SignatureAlgorithm::is_compatible_with`] allows.
fn ecdsa_signing(alg: KeyAlgorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match alg {
        KeyAlgorithm::EcdsaP256 => Some(&lc::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeyAlgorithm::EcdsaP384 => Some(&lc::ECDSA_P384_SHA384_ASN1_SIGNING),
        _ => None,
    }
}

/// AWS-LC's encoding for an RSA signature algorithm (PSS with a salt as long as the digest).
fn rsa_encoding(signature: SignatureAlgorithm) -> Option<&'static dyn RsaEncoding> {
    use SignatureAlgorithm as S;
    Some(match signature {
        S::RsaPkcs1Sha256 => &lc::RSA_PKCS1_SHA256,
        S::RsaPkcs1Sha384 => &lc::RSA_PKCS1_SHA384,
        S::RsaPkcs1Sha512 => &lc::RSA_PKCS1_SHA512,
        S::RsaPssSha256 => &lc::RSA_PSS_SHA256,
        S::RsaPssSha384 => &lc::RSA_PSS_SHA384,
        S::RsaPssSha512 => &lc::RSA_PSS_SHA512,
        S::EcdsaSha256 | S::EcdsaSha384 | S::Ed25519 => return None,
    })
}

impl SoftKey {
    /// A fresh key of `algorithm`.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<SoftKey> {
        Self::generate_for(algorithm, algorithm.default_signature())
    }

    /// A fresh key of `algorithm` that signs with `signature` (a lint copy must carry exactly
    /// the signature algorithm the token will use: PSS, or PKCS#1 v1.5 with SHA-384).
    pub fn generate_for(algorithm: KeyAlgorithm, signature: SignatureAlgorithm) -> Result<SoftKey> {
        if !signature.is_compatible_with(algorithm) {
            return Err(X509Error::internal(format!(
                "{signature} is not a signature of a {algorithm} key"
            )));
        }
        let failed = |e| key_err("key generation failed", e);
        let (pair, pkcs8) = match (algorithm, algorithm.rsa_bits()) {
            (_, Some(bits)) => {
                let size = match bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let key = RsaKeyPair::generate(size).map_err(failed)?;
                let der: Pkcs8V1Der<'static> = key.as_der().map_err(failed)?;
                let der = Zeroizing::new(der.as_ref().to_vec());
                (Pair::Rsa(key), der)
            }
            (KeyAlgorithm::Ed25519, None) => {
                let key = Ed25519KeyPair::generate().map_err(failed)?;
                // PKCS#8 v1 (RFC 8410's form, without the public key): what every reader takes.
                let der = Zeroizing::new(key.to_pkcs8v1().map_err(failed)?.as_ref().to_vec());
                (Pair::Ed25519(key), der)
            }
            (alg, None) => {
                let signing = ecdsa_signing(alg)
                    .ok_or_else(|| key_err("key generation failed", "no such key type"))?;
                let key = EcdsaKeyPair::generate(signing).map_err(failed)?;
                let der = Zeroizing::new(key.to_pkcs8v1().map_err(failed)?.as_ref().to_vec());
                (Pair::Ec(key), der)
            }
        };
        let mut key = Self::from_pair(pair, &pkcs8)?;
        key.signature = signature;
        Ok(key)
    }

    /// Reads a PKCS#8 private key: PEM ("PRIVATE KEY") or DER.
    pub fn from_pem(pem: &str) -> Result<SoftKey> {
        let der = Zeroizing::new(
            read_single(
                pem.as_bytes(),
                "private key",
                &[PRIVATE_KEY_LABEL],
                PRIVATE_KEY_LABEL,
            )
            .map_err(|e| key_err("cannot read the private key", e))?,
        );
        // PKCS#8 names the key type; each AWS-LC parser takes only its own.
        let pair = if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            Pair::Ed25519(k)
        } else if let Ok(k) = EcdsaKeyPair::from_pkcs8(&lc::ECDSA_P256_SHA256_ASN1_SIGNING, &der) {
            Pair::Ec(k)
        } else if let Ok(k) = EcdsaKeyPair::from_pkcs8(&lc::ECDSA_P384_SHA384_ASN1_SIGNING, &der) {
            Pair::Ec(k)
        } else {
            Pair::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(|e| {
                key_err(
                    "cannot read the private key",
                    format!("not a PKCS#8 key of a supported type ({e})"),
                )
            })?)
        };
        Self::from_pair(pair, &der)
    }

    /// The key with its public half checked and described, and its PEM made.
    fn from_pair(pair: Pair, pkcs8: &[u8]) -> Result<SoftKey> {
        let spki: PublicKeyX509Der<'static> = match &pair {
            Pair::Ec(k) => k.public_key().as_der(),
            Pair::Rsa(k) => k.public_key().as_der(),
            Pair::Ed25519(k) => k.public_key().as_der(),
        }
        .map_err(|e| key_err("cannot read the public key", e))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki.as_ref())
            .map_err(|e| key_err("cannot read the public key", e))?;
        let info = PublicKeyInfo::from_spki(&spki)?;
        let algorithm = info.key_algorithm().ok_or_else(|| {
            key_err(
                "unsupported key",
                format!("{info} has no hsmca algorithm name"),
            )
        })?;
        let pem = Zeroizing::new(
            to_pem(PRIVATE_KEY_LABEL, pkcs8).map_err(|e| key_err("key encoding failed", e))?,
        );
        Ok(SoftKey {
            pair,
            algorithm,
            spki,
            signature: algorithm.default_signature(),
            pem,
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 PEM of the private key, zeroized when dropped.
    pub fn to_pem(&self) -> Zeroizing<String> {
        self.pem.clone()
    }
}

impl CaSigner for SoftKey {
    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.signature
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let failed = |e| key_err("signing with the in-memory key failed", e);
        let rng = SystemRandom::new();
        match &self.pair {
            // AWS-LC's ECDSA output is already the DER Ecdsa-Sig-Value X.509 carries.
            Pair::Ec(k) => Ok(k.sign(&rng, message).map_err(failed)?.as_ref().to_vec()),
            Pair::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Pair::Rsa(k) => {
                let encoding = rsa_encoding(self.signature).ok_or_else(|| {
                    key_err(
                        "signing with the in-memory key failed",
                        format!("{} is not an RSA signature", self.signature),
                    )
                })?;
                let mut signature = vec![0; k.public_modulus_len()];
                k.sign(encoding, &rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::verify::verify_signature;

    #[test]
    fn every_algorithm_signs_what_verifies() {
        for alg in KeyAlgorithm::ALL {
            let key = SoftKey::generate(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            let id = key.signature_algorithm().algorithm_identifier();
            verify_signature(key.public_key(), &id, b"message", &sig).unwrap();
            let again = SoftKey::from_pem(&key.to_pem()).unwrap();
            assert_eq!(again.public_key(), key.public_key());
            assert_eq!(again.algorithm(), alg);
            assert_eq!(*again.to_pem(), *key.to_pem());
        }
    }

    #[test]
    fn every_rsa_signature_signs_what_verifies() {
        for sig in [
            SignatureAlgorithm::RsaPkcs1Sha384,
            SignatureAlgorithm::RsaPkcs1Sha512,
            SignatureAlgorithm::RsaPssSha256,
            SignatureAlgorithm::RsaPssSha384,
            SignatureAlgorithm::RsaPssSha512,
        ] {
            let key = SoftKey::generate_for(KeyAlgorithm::Rsa2048, sig).unwrap();
            let signature = key.sign(b"message").unwrap();
            let id = sig.algorithm_identifier();
            verify_signature(key.public_key(), &id, b"message", &signature).unwrap();
        }
        assert!(
            SoftKey::generate_for(KeyAlgorithm::EcdsaP256, SignatureAlgorithm::EcdsaSha384)
                .is_err()
        );
    }

    #[test]
    fn keys_hsmca_wrote_before_still_read() {
        // A P-256 PKCS#8 key in the form ring (rcgen's former backend) and openssl write: the
        // curve in the AlgorithmIdentifier only, the public key in ECPrivateKey. Made now by
        // openssl (no private key is kept in the repository).
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .output()
            .expect("openssl genpkey (apt-get install openssl)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = String::from_utf8(out.stdout).unwrap();
        let pem = pem.as_str();
        let key = SoftKey::from_pem(pem).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256);
        let signature = key.sign(b"m").unwrap();
        let id = key.signature_algorithm().algorithm_identifier();
        verify_signature(key.public_key(), &id, b"m", &signature).unwrap();
        // Not a private key.
        assert!(
            SoftKey::from_pem(&format!(
                "-----BEGIN {PRIVATE_KEY_LABEL}-----\nAAAA\n-----END {PRIVATE_KEY_LABEL}-----\n"
            ))
            .is_err()
        );
    }
}
