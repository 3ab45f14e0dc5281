//! Signature verification for certificates, CSRs and raw token output: ring for ECDSA and RSA
//! given an SPKI, the RustCrypto verifiers (p256/p384, rsa PKCS#1 v1.5 and PSS,
//! ed25519-dalek) for checked keys and for Ed25519.

use der::asn1::BitStringRef;
use der::{Encode, Reader, SliceReader};
use sha2::{Sha256, Sha384, Sha512};
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;

use super::algorithm::{KeyMaterial, PublicKeyInfo, SignatureAlgorithm};
use super::decode::der_error;
use super::error::X509Error;

/// Verifies `signature` over `message` with the key in `spki`, for the algorithm named by
/// `alg`. The key must pass [`PublicKeyInfo::from_spki`] (no weak or unknown keys).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    let algorithm = SignatureAlgorithm::from_algorithm_identifier(alg)?;
    let key = PublicKeyInfo::from_spki(spki)?;
    if let Some(aws_alg) = aws_lc_algorithm(&key, algorithm) {
        // ring's P-384 is generic Montgomery code (~0.8 ms a verification, as slow as the
        // token's signature); AWS-LC's is ~4x faster. Same checks, same errors.
        check_form(&key, algorithm, signature)?;
        let raw = spki.subject_public_key.raw_bytes();
        return aws_lc_rs::signature::UnparsedPublicKey::new(aws_alg, raw)
            .verify(message, signature)
            .map_err(|_| X509Error::BadSignature);
    }
    if let Some(ring_alg) = ring_algorithm(&key, algorithm) {
        // ring's assembly verifiers are several times faster than the portable ones, and
        // hsmca verifies every signature the token makes before anything is written. The
        // form is checked first so a malformed signature is reported as such, not as wrong.
        check_form(&key, algorithm, signature)?;
        let raw = spki.subject_public_key.raw_bytes();
        return ring::signature::UnparsedPublicKey::new(ring_alg, raw)
            .verify(message, signature)
            .map_err(|_| X509Error::BadSignature);
    }
    verify_with_key(&key, algorithm, message, signature)
}

/// Refuses an ECDSA signature that is not a DER Ecdsa-Sig-Value, or an RSA signature whose
/// length differs from the modulus: malformed rather than merely wrong.
fn check_form(
    key: &PublicKeyInfo,
    algorithm: SignatureAlgorithm,
    signature: &[u8],
) -> Result<(), X509Error> {
    let malformed = |detail: &str| X509Error::MalformedSignature {
        algorithm: algorithm.description().to_owned(),
        detail: detail.to_owned(),
    };
    match &key.material {
        KeyMaterial::P256(_) => p256::ecdsa::DerSignature::from_bytes(signature)
            .map(drop)
            .map_err(|_| malformed("not a DER Ecdsa-Sig-Value for P-256")),
        KeyMaterial::P384(_) => p384::ecdsa::DerSignature::from_bytes(signature)
            .map(drop)
            .map_err(|_| malformed("not a DER Ecdsa-Sig-Value for P-384")),
        KeyMaterial::Rsa(pk)
            if signature.len() != rsa::traits::PublicKeyParts::size(pk.as_ref()) =>
        {
            Err(malformed("its length differs from the RSA modulus length"))
        }
        _ => Ok(()),
    }
}

/// AWS-LC's verifier for P-384 keys (DER Ecdsa-Sig-Values), where ring is slow.
fn aws_lc_algorithm(
    key: &PublicKeyInfo,
    algorithm: SignatureAlgorithm,
) -> Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> {
    use SignatureAlgorithm as S;
    use aws_lc_rs::signature as a;
    Some(match (&key.material, algorithm) {
        (KeyMaterial::P384(_), S::EcdsaSha384) => &a::ECDSA_P384_SHA384_ASN1,
        (KeyMaterial::P384(_), S::EcdsaSha256) => &a::ECDSA_P384_SHA256_ASN1,
        _ => return None,
    })
}

/// ring's verifier for the ECDSA and RSA forms hsmca issues (Ed25519 stays with
/// ed25519-dalek's strict verification). ECDSA signatures must be DER Ecdsa-Sig-Values.
fn ring_algorithm(
    key: &PublicKeyInfo,
    algorithm: SignatureAlgorithm,
) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
    use SignatureAlgorithm as S;
    use ring::signature as r;
    Some(match (&key.material, algorithm) {
        (KeyMaterial::P256(_), S::EcdsaSha256) => &r::ECDSA_P256_SHA256_ASN1,
        (KeyMaterial::P256(_), S::EcdsaSha384) => &r::ECDSA_P256_SHA384_ASN1,
        (KeyMaterial::P384(_), S::EcdsaSha384) => &r::ECDSA_P384_SHA384_ASN1,
        (KeyMaterial::P384(_), S::EcdsaSha256) => &r::ECDSA_P384_SHA256_ASN1,
        (KeyMaterial::Rsa(_), S::RsaPkcs1Sha256) => &r::RSA_PKCS1_2048_8192_SHA256,
        (KeyMaterial::Rsa(_), S::RsaPkcs1Sha384) => &r::RSA_PKCS1_2048_8192_SHA384,
        (KeyMaterial::Rsa(_), S::RsaPkcs1Sha512) => &r::RSA_PKCS1_2048_8192_SHA512,
        (KeyMaterial::Rsa(_), S::RsaPssSha256) => &r::RSA_PSS_2048_8192_SHA256,
        (KeyMaterial::Rsa(_), S::RsaPssSha384) => &r::RSA_PSS_2048_8192_SHA384,
        (KeyMaterial::Rsa(_), S::RsaPssSha512) => &r::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// Verifies `signature` over `message` with an already checked key: the form to use right
/// after the token signed, where the algorithm is known rather than read from an object.
pub fn verify_with_key(
    key: &PublicKeyInfo,
    algorithm: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    if !algorithm.can_verify_with(key) {
        return Err(X509Error::AlgorithmKeyMismatch {
            signature: algorithm.description().to_owned(),
            key: key.to_string(),
        });
    }
    let malformed = |detail: &str| X509Error::MalformedSignature {
        algorithm: algorithm.description().to_owned(),
        detail: detail.to_owned(),
    };
    match &key.material {
        KeyMaterial::P256(vk) => {
            // X.509 carries ECDSA as a DER Ecdsa-Sig-Value; from_bytes refuses BER and r/s
            // out of range. The prehash form lets P-256 verify a SHA-384 digest and back.
            let sig = p256::ecdsa::DerSignature::from_bytes(signature)
                .map_err(|_| malformed("not a DER Ecdsa-Sig-Value for P-256"))?;
            let digest = host_digest(algorithm, message)?;
            vk.verify_prehash(&digest, &sig)
                .map_err(|_| X509Error::BadSignature)
        }
        KeyMaterial::P384(vk) => {
            let sig = p384::ecdsa::DerSignature::from_bytes(signature)
                .map_err(|_| malformed("not a DER Ecdsa-Sig-Value for P-384"))?;
            let digest = host_digest(algorithm, message)?;
            vk.verify_prehash(&digest, &sig)
                .map_err(|_| X509Error::BadSignature)
        }
        KeyMaterial::Rsa(pk) => {
            // A signature of another length than the modulus is malformed, not merely wrong.
            if signature.len() != rsa::traits::PublicKeyParts::size(pk.as_ref()) {
                return Err(malformed("its length differs from the RSA modulus length"));
            }
            let result = match algorithm {
                SignatureAlgorithm::RsaPkcs1Sha256 => {
                    pk.pkcs1v15_verify::<Sha256>(message, signature)
                }
                SignatureAlgorithm::RsaPkcs1Sha384 => {
                    pk.pkcs1v15_verify::<Sha384>(message, signature)
                }
                SignatureAlgorithm::RsaPkcs1Sha512 => {
                    pk.pkcs1v15_verify::<Sha512>(message, signature)
                }
                // pss_verify requires salt = digest length, the only PSS profile accepted.
                SignatureAlgorithm::RsaPssSha256 => pk.pss_verify::<Sha256>(message, signature),
                SignatureAlgorithm::RsaPssSha384 => pk.pss_verify::<Sha384>(message, signature),
                SignatureAlgorithm::RsaPssSha512 => pk.pss_verify::<Sha512>(message, signature),
                // can_verify_with only pairs RSA keys with RSA algorithms.
                _ => {
                    return Err(X509Error::AlgorithmKeyMismatch {
                        signature: algorithm.description().to_owned(),
                        key: key.to_string(),
                    });
                }
            };
            result.map_err(|_| X509Error::BadSignature)
        }
        KeyMaterial::Ed25519(vk) => {
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| malformed("an Ed25519 signature is 64 bytes"))?;
            // Strict verification refuses malleable and small-order forms that plain verify
            // accepts; every conforming signer produces signatures that pass it.
            vk.verify_strict(message, &sig)
                .map_err(|_| X509Error::BadSignature)
        }
    }
}

/// The ECDSA digest; only reached for ECDSA algorithms, which always have one.
fn host_digest(algorithm: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, X509Error> {
    algorithm
        .digest(message)
        .ok_or_else(|| X509Error::AlgorithmKeyMismatch {
            signature: algorithm.description().to_owned(),
            key: "EC".to_owned(),
        })
}

/// Verifies a certificate's signature with its issuer's public key: checks that the TBS
/// signature algorithm equals the outer one, re-encodes the TBS to DER and verifies it.
///
/// Re-encoding gives the signed bytes only for certificates in canonical form (all this CA
/// issues); for certificates from elsewhere prefer [`verify_certificate_der`], which
/// verifies the TBS bytes exactly as received.
pub fn verify_certificate(
    cert: &Certificate,
    issuer_spki: &SubjectPublicKeyInfoOwned,
) -> Result<(), X509Error> {
    check_inner_algorithm(cert)?;
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(|source| X509Error::Encode {
            what: "certificate's TBS",
            source,
        })?;
    let signature = bit_string_bytes(cert.signature().raw_bytes(), cert.signature().unused_bits())?;
    verify_signature(issuer_spki, cert.signature_algorithm(), &tbs, signature).map_err(
        |e| match e {
            X509Error::BadSignature => X509Error::BadCertificateSignature,
            other => other,
        },
    )
}

/// Verifies a DER certificate's signature over its TBS bytes exactly as encoded, with the
/// same inner/outer algorithm check as [`verify_certificate`].
pub fn verify_certificate_der(
    der: &[u8],
    issuer_spki: &SubjectPublicKeyInfoOwned,
) -> Result<(), X509Error> {
    let cert: Certificate = super::decode::decode_der(der, "certificate")?;
    check_inner_algorithm(&cert)?;
    let parts = split_signed(der, "certificate")?;
    verify_signature(issuer_spki, &parts.algorithm, parts.tbs, parts.signature).map_err(|e| match e
    {
        X509Error::BadSignature => X509Error::BadCertificateSignature,
        other => other,
    })
}

/// RFC 5280 §4.1.1.2: tbsCertificate.signature must equal signatureAlgorithm.
fn check_inner_algorithm(cert: &Certificate) -> Result<(), X509Error> {
    let inner = cert.tbs_certificate().signature();
    let outer = cert.signature_algorithm();
    if inner != outer {
        return Err(X509Error::SignatureAlgorithmMismatch {
            inner: describe_algorithm(inner),
            outer: describe_algorithm(outer),
        });
    }
    Ok(())
}

/// An AlgorithmIdentifier as shown in messages: its description if supported, else its OID.
pub(crate) fn describe_algorithm(alg: &AlgorithmIdentifierOwned) -> String {
    match SignatureAlgorithm::from_algorithm_identifier(alg) {
        Ok(s) => s.description().to_owned(),
        Err(_) => format!("{} ({})", alg.oid, super::error::oid_name(&alg.oid)),
    }
}

/// The three parts of a signed object (certificate, CSR, CRL) as they appear in its DER.
pub(crate) struct SignedParts<'a> {
    /// The to-be-signed part, tag and length included: the exact bytes that were signed.
    pub(crate) tbs: &'a [u8],
    /// The outer signature algorithm.
    pub(crate) algorithm: AlgorithmIdentifierOwned,
    /// The signature value (BIT STRING contents with no unused bits).
    pub(crate) signature: &'a [u8],
}

/// Splits `SEQUENCE { tbs, signatureAlgorithm, signature }` without re-encoding anything, so
/// that a signature is checked over the bytes as received.
pub(crate) fn split_signed<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<SignedParts<'a>, X509Error> {
    let mut reader = SliceReader::new(der).map_err(|e| der_error(what, e))?;
    let (tbs, algorithm, signature) = reader
        .sequence(|r| {
            let tbs = r.tlv_bytes()?;
            let algorithm: AlgorithmIdentifierRef<'a> = r.decode()?;
            let signature: BitStringRef<'a> = r.decode()?;
            Ok::<_, der::Error>((tbs, algorithm, signature))
        })
        .map_err(|e| der_error(what, e))?;
    reader.finish().map_err(|e| der_error(what, e))?;
    let algorithm = AlgorithmIdentifierOwned {
        oid: algorithm.oid,
        parameters: algorithm.parameters.map(Into::into),
    };
    let signature = bit_string_bytes(signature.raw_bytes(), signature.unused_bits())?;
    Ok(SignedParts {
        tbs,
        algorithm,
        signature,
    })
}

/// Signature BIT STRINGs of all supported algorithms are whole bytes.
fn bit_string_bytes(raw: &[u8], unused_bits: u8) -> Result<&[u8], X509Error> {
    if unused_bits != 0 {
        return Err(X509Error::MalformedSignature {
            algorithm: "any supported algorithm".to_owned(),
            detail: format!("the signature BIT STRING has {unused_bits} unused bits"),
        });
    }
    Ok(raw)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use der::Decode;
    use rcgen::{CertificateParams, DnType, KeyPair, PublicKeyData};
    use std::sync::OnceLock;

    /// Marker placed in test subjects so tests can find and flip a byte of the TBS.
    pub(crate) const MARKER: &[u8] = b"hsmca-flip-target";

    pub(crate) fn spki_of(key: &impl PublicKeyData) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned::from_der(&key.subject_public_key_info()).unwrap()
    }

    pub(crate) fn params() -> CertificateParams {
        let mut params = CertificateParams::new(vec!["leaf.example".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, std::str::from_utf8(MARKER).unwrap());
        params
    }

    /// Flips one bit inside the marker string: the DER stays valid, the signed bytes change.
    pub(crate) fn flip_marker(der: &[u8]) -> Vec<u8> {
        let pos = der
            .windows(MARKER.len())
            .position(|w| w == MARKER)
            .expect("marker present");
        let mut out = der.to_vec();
        out[pos + 3] ^= 0x01;
        out
    }

    /// A 2048-bit RSA key made once with the rsa crate's own keygen (rcgen with ring has
    /// none) and shared by all tests, since keygen is slow in debug builds.
    pub(crate) fn rsa_key() -> &'static rsa::PrivateKey {
        static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap())
    }

    /// The shared RSA key as an rcgen key pair, signing with PKCS#1 v1.5 SHA-256.
    pub(crate) fn rsa_rcgen_key() -> KeyPair {
        use rsa::pkcs8::EncodePrivateKey;
        let pem = rsa_key().to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
    }

    fn self_signed(
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> (Vec<u8>, SubjectPublicKeyInfoOwned) {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = params().self_signed(&key).unwrap();
        (cert.der().to_vec(), spki_of(&key))
    }

    fn check_cert_round(der: &[u8], spki: &SubjectPublicKeyInfoOwned) {
        let cert = Certificate::from_der(der).unwrap();
        verify_certificate(&cert, spki).unwrap();
        verify_certificate_der(der, spki).unwrap();

        let flipped = flip_marker(der);
        let bad = Certificate::from_der(&flipped).unwrap();
        let err = verify_certificate(&bad, spki).unwrap_err();
        assert!(matches!(err, X509Error::BadCertificateSignature), "{err:?}");
        let err = verify_certificate_der(&flipped, spki).unwrap_err();
        assert!(matches!(err, X509Error::BadCertificateSignature), "{err:?}");
    }

    #[test]
    fn ecdsa_p256_certificate() {
        let (der, spki) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        check_cert_round(&der, &spki);
    }

    #[test]
    fn ecdsa_p384_certificate() {
        let (der, spki) = self_signed(&rcgen::PKCS_ECDSA_P384_SHA384);
        check_cert_round(&der, &spki);
    }

    #[test]
    fn ed25519_certificate() {
        let (der, spki) = self_signed(&rcgen::PKCS_ED25519);
        check_cert_round(&der, &spki);
    }

    #[test]
    fn rsa_pkcs1_certificate_from_rcgen() {
        let key = rsa_rcgen_key();
        let cert = params().self_signed(&key).unwrap();
        check_cert_round(cert.der(), &spki_of(&key));
    }

    #[test]
    fn wrong_issuer_key_fails() {
        let (der, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let other = spki_of(&KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap());
        let err = verify_certificate_der(&der, &other).unwrap_err();
        assert!(matches!(err, X509Error::BadCertificateSignature), "{err:?}");
        // A key of another type is a mismatch, reported as such.
        let ed = spki_of(&KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap());
        let err = verify_certificate_der(&der, &ed).unwrap_err();
        assert!(
            matches!(err, X509Error::AlgorithmKeyMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn inner_and_outer_algorithms_must_match() {
        let (der, spki) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        // ecdsa-with-SHA256: the second occurrence is the outer signatureAlgorithm.
        let oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let starts: Vec<usize> = der
            .windows(oid.len())
            .enumerate()
            .filter(|(_, w)| *w == oid)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(starts.len(), 2);
        let mut changed = der.clone();
        changed[starts[1] + oid.len() - 1] = 0x03; // now ecdsa-with-SHA384
        let err = verify_certificate_der(&changed, &spki).unwrap_err();
        assert!(
            matches!(err, X509Error::SignatureAlgorithmMismatch { .. }),
            "{err:?}"
        );
        let cert = Certificate::from_der(&changed).unwrap();
        assert!(matches!(
            verify_certificate(&cert, &spki),
            Err(X509Error::SignatureAlgorithmMismatch { .. })
        ));
    }

    fn rsa_spki() -> SubjectPublicKeyInfoOwned {
        use rsa::pkcs8::EncodePublicKey;
        let public = rsa_key().to_public_key();
        SubjectPublicKeyInfoOwned::from_der(public.to_public_key_der().unwrap().as_bytes()).unwrap()
    }

    #[test]
    fn rsa_pkcs1_and_pss_signatures() {
        let key = rsa_key();
        let spki = rsa_spki();
        let msg = b"to be signed";
        let cases: [(SignatureAlgorithm, Vec<u8>); 6] = [
            (
                SignatureAlgorithm::RsaPkcs1Sha256,
                key.pkcs1v15_sign::<Sha256>(msg).unwrap(),
            ),
            (
                SignatureAlgorithm::RsaPkcs1Sha384,
                key.pkcs1v15_sign::<Sha384>(msg).unwrap(),
            ),
            (
                SignatureAlgorithm::RsaPkcs1Sha512,
                key.pkcs1v15_sign::<Sha512>(msg).unwrap(),
            ),
            (
                SignatureAlgorithm::RsaPssSha256,
                key.pss_sign::<Sha256>(msg).unwrap(),
            ),
            (
                SignatureAlgorithm::RsaPssSha384,
                key.pss_sign::<Sha384>(msg).unwrap(),
            ),
            (
                SignatureAlgorithm::RsaPssSha512,
                key.pss_sign::<Sha512>(msg).unwrap(),
            ),
        ];
        for (alg, sig) in cases {
            let ai = alg.algorithm_identifier();
            verify_signature(&spki, &ai, msg, &sig).unwrap_or_else(|e| panic!("{alg}: {e}"));
            let mut bad = sig.clone();
            bad[17] ^= 0x40;
            let err = verify_signature(&spki, &ai, msg, &bad).unwrap_err();
            assert!(matches!(err, X509Error::BadSignature), "{alg}: {err:?}");
            let err = verify_signature(&spki, &ai, b"to be signeD", &sig).unwrap_err();
            assert!(matches!(err, X509Error::BadSignature), "{alg}: {err:?}");
        }
        // PKCS#1 v1.5 signature presented as PSS (and the reverse) must fail.
        let pkcs1 = key.pkcs1v15_sign::<Sha256>(msg).unwrap();
        let pss_ai = SignatureAlgorithm::RsaPssSha256.algorithm_identifier();
        assert!(verify_signature(&spki, &pss_ai, msg, &pkcs1).is_err());
    }

    #[test]
    fn pss_with_another_salt_length_fails() {
        use rsa::pss::SigningKey;
        use signature::RandomizedSigner;
        let signer = SigningKey::<Sha256>::new_with_salt_len(rsa_key().clone(), 20);
        let msg = b"salted";
        let sig: rsa::pss::Signature = signer
            .try_sign_with_rng(&mut getrandom::SysRng, msg)
            .unwrap();
        let sig = signature::SignatureEncoding::to_vec(&sig);
        let ai = SignatureAlgorithm::RsaPssSha256.algorithm_identifier();
        assert!(matches!(
            verify_signature(&rsa_spki(), &ai, msg, &sig),
            Err(X509Error::BadSignature)
        ));
    }

    #[test]
    fn ecdsa_cross_hash_and_malformed_signatures() {
        use p256::ecdsa::SigningKey;
        use signature::hazmat::PrehashSigner;
        let sk = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(
            spki::EncodePublicKey::to_public_key_der(sk.verifying_key())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let msg = b"cross";
        let digest = SignatureAlgorithm::EcdsaSha384.digest(msg).unwrap();
        let sig: p256::ecdsa::Signature = sk.sign_prehash(&digest).unwrap();
        let der_sig = sig.to_der();
        let ai = SignatureAlgorithm::EcdsaSha384.algorithm_identifier();
        verify_signature(&spki, &ai, msg, der_sig.as_bytes()).unwrap();

        // Raw r||s (what CKM_ECDSA returns) is not what X.509 carries.
        let err = verify_signature(&spki, &ai, msg, &sig.to_bytes()).unwrap_err();
        assert!(
            matches!(err, X509Error::MalformedSignature { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn ed25519_wrong_length_is_malformed() {
        let (_, spki) = self_signed(&rcgen::PKCS_ED25519);
        let ai = SignatureAlgorithm::Ed25519.algorithm_identifier();
        let err = verify_signature(&spki, &ai, b"m", &[0u8; 63]).unwrap_err();
        assert!(
            matches!(err, X509Error::MalformedSignature { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn split_signed_returns_exact_tbs_bytes() {
        let (der, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let parts = split_signed(&der, "certificate").unwrap();
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(parts.tbs, cert.tbs_certificate().to_der().unwrap());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(matches!(
            split_signed(&trailing, "certificate"),
            Err(X509Error::TrailingData { .. })
        ));
    }
}
