//! Signature verification for certificates, CSRs and raw token output, all with AWS-LC
//! (aws-lc-rs), the one host crypto backend (BENCHMARKS.md, "Host crypto backend"). The form
//! of a signature is checked before AWS-LC sees it, so that a malformed signature is reported
//! as malformed rather than as wrong.

use aws_lc_rs::signature::{self as lc, ParsedPublicKey, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::BitStringRef;
use der::{Encode, Reader, SliceReader};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;

use super::algorithm::{KeyMaterial, PublicKeyInfo, PublicKeyKind, SignatureAlgorithm};
use super::decode::der_error;
use super::ecdsa_sig::is_der_signature;
use super::ed25519_point::is_small_order;
use super::error::X509Error;

/// Verifies `signature` over `message` with the key in `spki`, for the algorithm named by
/// `alg`. The key must pass `PublicKeyInfo::from_spki` (no weak or unknown keys).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), X509Error> {
    let algorithm = SignatureAlgorithm::from_algorithm_identifier(alg)?;
    let key = PublicKeyInfo::from_spki(spki)?;
    verify_with_key(&key, algorithm, message, signature)
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
    let bad = |_| X509Error::BadSignature;
    let usual = algorithm == key.default_signature();
    match (&key.material, key.kind()) {
        (
            KeyMaterial::Ec {
                parsed,
                uncompressed,
            },
            kind,
        ) => {
            // X.509 carries ECDSA as a DER Ecdsa-Sig-Value, r and s no longer than the order.
            let (scalar_len, what) = match kind {
                PublicKeyKind::EcP256 => (32, "not a DER Ecdsa-Sig-Value for P-256"),
                _ => (48, "not a DER Ecdsa-Sig-Value for P-384"),
            };
            if !is_der_signature(signature, scalar_len) {
                return Err(malformed(what));
            }
            // A compressed key is described but never verifies: ring, which verified P-256
            // before, refused it, and one rule for both curves keeps it so.
            if !uncompressed {
                return Err(X509Error::BadSignature);
            }
            let alg = ecdsa_algorithm(kind, algorithm);
            verify_parsed(parsed, usual, alg, message, signature).map_err(bad)
        }
        (KeyMaterial::Rsa(parsed), PublicKeyKind::Rsa { bits }) => {
            // A signature of another length than the modulus is malformed, not merely wrong.
            if signature.len() != bits.div_ceil(8) as usize {
                return Err(malformed("its length differs from the RSA modulus length"));
            }
            let Some(rsa_alg) = rsa_algorithm(algorithm) else {
                // can_verify_with only pairs RSA keys with RSA algorithms.
                return Err(X509Error::AlgorithmKeyMismatch {
                    signature: algorithm.description().to_owned(),
                    key: key.to_string(),
                });
            };
            verify_parsed(parsed, usual, rsa_alg, message, signature).map_err(bad)
        }
        (KeyMaterial::Ed25519(point), _) => {
            let sig: &[u8; 64] = signature
                .try_into()
                .map_err(|_| malformed("an Ed25519 signature is 64 bytes"))?;
            // Strict verification, as with ed25519-dalek's verify_strict before: a key or an R
            // of small order is refused (AWS-LC checks s < L and R's encoding itself). Every
            // conforming signer produces signatures that pass it.
            let mut r = [0u8; 32];
            r.copy_from_slice(&sig[..32]);
            if is_small_order(point) || is_small_order(&r) {
                return Err(X509Error::BadSignature);
            }
            UnparsedPublicKey::new(&lc::ED25519, point)
                .verify(message, signature)
                .map_err(bad)
        }
        // PublicKeyInfo pairs RSA material with the RSA kind only.
        (KeyMaterial::Rsa(_), _) => Err(X509Error::AlgorithmKeyMismatch {
            signature: algorithm.description().to_owned(),
            key: key.to_string(),
        }),
    }
}

/// Verifies with the parsed key when the signature is of the algorithm it was parsed for
/// (`usual`: the key's default signature, see [`KeyMaterial`]), else parses its bytes again
/// for `alg`. aws-lc-rs's algorithms are constants, so they cannot be told apart by address.
fn verify_parsed(
    parsed: &ParsedPublicKey,
    usual: bool,
    alg: &'static dyn VerificationAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), aws_lc_rs::error::Unspecified> {
    if usual {
        parsed.verify_sig(message, signature)
    } else {
        UnparsedPublicKey::new(alg, parsed.as_ref()).verify(message, signature)
    }
}

/// AWS-LC's verifier for an ECDSA key of `kind` and a signature of `algorithm`; a key may be
/// checked with the other curve's hash (a P-256 key signing a CSR with SHA-384 is valid).
fn ecdsa_algorithm(
    kind: PublicKeyKind,
    algorithm: SignatureAlgorithm,
) -> &'static dyn VerificationAlgorithm {
    match (kind, algorithm) {
        (PublicKeyKind::EcP256, SignatureAlgorithm::EcdsaSha384) => &lc::ECDSA_P256_SHA384_ASN1,
        (PublicKeyKind::EcP256, _) => &lc::ECDSA_P256_SHA256_ASN1,
        (_, SignatureAlgorithm::EcdsaSha256) => &lc::ECDSA_P384_SHA256_ASN1,
        _ => &lc::ECDSA_P384_SHA384_ASN1,
    }
}

/// AWS-LC's verifier for an RSA signature of `algorithm`: moduli of 2048 to 8192 bits, PSS
/// with MGF1 of the same hash and a salt as long as the digest (the only PSS profile
/// [`SignatureAlgorithm::from_algorithm_identifier`] accepts).
fn rsa_algorithm(algorithm: SignatureAlgorithm) -> Option<&'static dyn VerificationAlgorithm> {
    use SignatureAlgorithm as S;
    Some(match algorithm {
        S::RsaPkcs1Sha256 => &lc::RSA_PKCS1_2048_8192_SHA256,
        S::RsaPkcs1Sha384 => &lc::RSA_PKCS1_2048_8192_SHA384,
        S::RsaPkcs1Sha512 => &lc::RSA_PKCS1_2048_8192_SHA512,
        S::RsaPssSha256 => &lc::RSA_PSS_2048_8192_SHA256,
        S::RsaPssSha384 => &lc::RSA_PSS_2048_8192_SHA384,
        S::RsaPssSha512 => &lc::RSA_PSS_2048_8192_SHA512,
        S::EcdsaSha256 | S::EcdsaSha384 | S::Ed25519 => return None,
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

    /// A 2048-bit RSA key (PKCS#8), made once and shared by all tests: RSA key generation is
    /// the slow part of these tests.
    fn rsa_pkcs8() -> &'static [u8] {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        static KEY: OnceLock<Vec<u8>> = OnceLock::new();
        KEY.get_or_init(|| {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            let der: Pkcs8V1Der<'static> = key.as_der().unwrap();
            der.as_ref().to_vec()
        })
    }

    /// The shared RSA key, for signing in the tests.
    pub(crate) fn rsa_key() -> aws_lc_rs::rsa::KeyPair {
        aws_lc_rs::rsa::KeyPair::from_pkcs8(rsa_pkcs8()).unwrap()
    }

    /// The shared RSA key as an rcgen key pair, signing with PKCS#1 v1.5 SHA-256.
    pub(crate) fn rsa_rcgen_key() -> KeyPair {
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from(rsa_pkcs8());
        KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).unwrap()
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
        spki_of(&rsa_rcgen_key())
    }

    /// Signs `msg` with the shared RSA key and `encoding` (PKCS#1 v1.5 or PSS).
    fn rsa_sign(encoding: &'static dyn aws_lc_rs::signature::RsaEncoding, msg: &[u8]) -> Vec<u8> {
        let key = rsa_key();
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            encoding,
            &aws_lc_rs::rand::SystemRandom::new(),
            msg,
            &mut sig,
        )
        .unwrap();
        sig
    }

    #[test]
    fn rsa_pkcs1_and_pss_signatures() {
        use aws_lc_rs::signature as a;
        let spki = rsa_spki();
        let msg = b"to be signed";
        let cases: [(SignatureAlgorithm, &'static dyn a::RsaEncoding); 6] = [
            (SignatureAlgorithm::RsaPkcs1Sha256, &a::RSA_PKCS1_SHA256),
            (SignatureAlgorithm::RsaPkcs1Sha384, &a::RSA_PKCS1_SHA384),
            (SignatureAlgorithm::RsaPkcs1Sha512, &a::RSA_PKCS1_SHA512),
            (SignatureAlgorithm::RsaPssSha256, &a::RSA_PSS_SHA256),
            (SignatureAlgorithm::RsaPssSha384, &a::RSA_PSS_SHA384),
            (SignatureAlgorithm::RsaPssSha512, &a::RSA_PSS_SHA512),
        ];
        for (alg, encoding) in cases {
            let sig = rsa_sign(encoding, msg);
            let ai = alg.algorithm_identifier();
            verify_signature(&spki, &ai, msg, &sig).unwrap_or_else(|e| panic!("{alg}: {e}"));
            let mut bad = sig.clone();
            bad[17] ^= 0x40;
            let err = verify_signature(&spki, &ai, msg, &bad).unwrap_err();
            assert!(matches!(err, X509Error::BadSignature), "{alg}: {err:?}");
            let err = verify_signature(&spki, &ai, b"to be signeD", &sig).unwrap_err();
            assert!(matches!(err, X509Error::BadSignature), "{alg}: {err:?}");
            // One byte short of the modulus: malformed, not merely wrong.
            let err = verify_signature(&spki, &ai, msg, &sig[1..]).unwrap_err();
            assert!(
                matches!(err, X509Error::MalformedSignature { .. }),
                "{alg}: {err:?}"
            );
        }
        // PKCS#1 v1.5 signature presented as PSS (and the reverse) must fail.
        let pkcs1 = rsa_sign(&a::RSA_PKCS1_SHA256, msg);
        let pss_ai = SignatureAlgorithm::RsaPssSha256.algorithm_identifier();
        assert!(verify_signature(&spki, &pss_ai, msg, &pkcs1).is_err());
        let pss = rsa_sign(&a::RSA_PSS_SHA256, msg);
        let pkcs1_ai = SignatureAlgorithm::RsaPkcs1Sha256.algorithm_identifier();
        assert!(verify_signature(&spki, &pkcs1_ai, msg, &pss).is_err());
        // A hash other than the one signed.
        let sha384_ai = SignatureAlgorithm::RsaPssSha384.algorithm_identifier();
        assert!(verify_signature(&spki, &sha384_ai, msg, &pss).is_err());
    }

    #[test]
    fn pss_with_another_salt_length_fails() {
        use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaPssSaltLength, RsaSignatureEncoding};
        static SALT_20: RsaSignatureEncoding =
            RSA_PSS_SHA256.with_pss_salt_length(RsaPssSaltLength::Custom(20));
        let msg = b"salted";
        let sig = rsa_sign(&SALT_20, msg);
        let ai = SignatureAlgorithm::RsaPssSha256.algorithm_identifier();
        assert!(matches!(
            verify_signature(&rsa_spki(), &ai, msg, &sig),
            Err(X509Error::BadSignature)
        ));
        // The same key and message with the profile's salt (32 bytes) verifies.
        verify_signature(&rsa_spki(), &ai, msg, &rsa_sign(&RSA_PSS_SHA256, msg)).unwrap();
    }

    /// A fresh P-256 key, with its SPKI.
    fn p256_key() -> (
        aws_lc_rs::signature::EcdsaKeyPair,
        SubjectPublicKeyInfoOwned,
    ) {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let spki = key.public_key().as_der().unwrap();
        let spki = SubjectPublicKeyInfoOwned::from_der(spki.as_ref()).unwrap();
        (key, spki)
    }

    #[test]
    fn ecdsa_cross_hash_and_malformed_signatures() {
        let (key, spki) = p256_key();
        let msg = b"cross";
        // P-256 signing a SHA-384 digest (what some CSR tools do): ECDSA uses the digest's
        // leftmost 256 bits, which AWS-LC signs when given them as a SHA-256 digest.
        let digest = SignatureAlgorithm::EcdsaSha384.digest(msg).unwrap();
        let digest =
            aws_lc_rs::digest::Digest::import_less_safe(&digest[..32], &aws_lc_rs::digest::SHA256)
                .unwrap();
        let der_sig = key.sign_digest(&digest).unwrap();
        let ai = SignatureAlgorithm::EcdsaSha384.algorithm_identifier();
        verify_signature(&spki, &ai, msg, der_sig.as_ref()).unwrap();
        // Presented as SHA-256 it is wrong, not malformed.
        let ai256 = SignatureAlgorithm::EcdsaSha256.algorithm_identifier();
        assert!(matches!(
            verify_signature(&spki, &ai256, msg, der_sig.as_ref()),
            Err(X509Error::BadSignature)
        ));

        // Raw r||s (what CKM_ECDSA returns) is not what X.509 carries.
        let raw = super::super::ecdsa_sig::tests_support::der_to_raw(der_sig.as_ref(), 32);
        let err = verify_signature(&spki, &ai, msg, &raw).unwrap_err();
        assert!(
            matches!(err, X509Error::MalformedSignature { .. }),
            "{err:?}"
        );
        // Turned back into DER it verifies again.
        let again = super::super::ecdsa_sig::raw_to_der(&raw, 32).unwrap();
        verify_signature(&spki, &ai, msg, &again).unwrap();
    }

    #[test]
    fn compressed_ec_keys_are_described_but_never_verify() {
        let (key, spki) = p256_key();
        let msg = b"compressed";
        let sig = key
            .sign(&aws_lc_rs::rand::SystemRandom::new(), msg)
            .unwrap();
        let point = spki.subject_public_key.raw_bytes();
        let mut compressed = vec![0x02 | (point[64] & 1)];
        compressed.extend_from_slice(&point[1..33]);
        let mut cspki = spki.clone();
        cspki.subject_public_key = der::asn1::BitString::from_bytes(&compressed).unwrap();
        let info = PublicKeyInfo::from_spki(&cspki).unwrap();
        assert_eq!(info.to_string(), "ECDSA P-256");
        let ai = SignatureAlgorithm::EcdsaSha256.algorithm_identifier();
        verify_signature(&spki, &ai, msg, sig.as_ref()).unwrap();
        assert!(matches!(
            verify_signature(&cspki, &ai, msg, sig.as_ref()),
            Err(X509Error::BadSignature)
        ));
    }

    /// An Ed25519 SPKI with the given 32 key bytes.
    fn ed25519_spki(point: &[u8; 32]) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc8410::ID_ED_25519,
                parameters: None,
            },
            subject_public_key: der::asn1::BitString::from_bytes(point).unwrap(),
        }
    }

    #[test]
    fn ed25519_small_order_keys_and_r_are_refused() {
        // The identity as key and as R with s = 0 satisfies the plain RFC 8032 equation
        // ([0]B = R + [k]A for any k): AWS-LC alone would accept it; strict verification not.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let spki = ed25519_spki(&identity);
        PublicKeyInfo::from_spki(&spki).unwrap();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        let ai = SignatureAlgorithm::Ed25519.algorithm_identifier();
        assert!(matches!(
            verify_signature(&spki, &ai, b"anything", &sig),
            Err(X509Error::BadSignature)
        ));
        // RFC 8032 §7.1 test 1: a real key and signature verify; s + L does not (malleability).
        let key = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap();
        let sig = hex::decode(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        )
        .unwrap();
        let spki = ed25519_spki(&key.clone().try_into().unwrap());
        verify_signature(&spki, &ai, b"", &sig).unwrap();
        assert!(matches!(
            verify_signature(&spki, &ai, b"x", &sig),
            Err(X509Error::BadSignature)
        ));
    }

    #[test]
    fn ed25519_keys_off_the_curve_or_not_canonical_are_refused() {
        let mut two = [0u8; 32];
        two[0] = 2;
        let err = PublicKeyInfo::from_spki(&ed25519_spki(&two)).unwrap_err();
        assert!(
            matches!(err, X509Error::MalformedPublicKey { .. }),
            "{err:?}"
        );
        let err = PublicKeyInfo::from_spki(&ed25519_spki(&[0xff; 32])).unwrap_err();
        assert!(err.to_string().contains("non-canonical"), "{err}");
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
