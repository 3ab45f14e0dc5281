//! Key and signature algorithms: the closed set this CA accepts, their AlgorithmIdentifiers,
//! and the parsing of public keys (SPKI) into a checked description.

use core::fmt;
use core::str::FromStr;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    VerificationAlgorithm,
};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::asn1::Any;
use der::{Decode, Encode};
use pkcs1::{RsaPssParams, RsaPssParamsRef, RsaPublicKeyRef, TrailerField};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::ed25519_point::{self, PointError};
use super::error::{X509Error, oid_name};

/// OID of ecdsa-with-SHA1 (1.2.840.10045.4.1), named here only to refuse it explicitly.
const ECDSA_WITH_SHA_1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");

/// Smallest RSA modulus accepted, in bits (CA/B Forum and NIST minimum).
pub const RSA_MIN_BITS: u32 = 2048;
/// Largest RSA modulus accepted, in bits: larger keys cost too much to verify.
pub const RSA_MAX_BITS: u32 = 8192;

/// The key types a CA key can be generated as, named as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (secp256r1).
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcdsaP384,
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// Ed25519 (pure EdDSA).
    Ed25519,
}

impl KeyAlgorithm {
    /// Every key algorithm, in the order help texts list them.
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::Ed25519,
    ];

    /// The command-line name (`ecdsa-p256`, `rsa-3072`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// The named-curve OID for ECDSA keys (what PKCS#11 CKA_EC_PARAMS holds), else `None`.
    pub fn curve_oid(self) -> Option<ObjectIdentifier> {
        match self {
            KeyAlgorithm::EcdsaP256 => Some(rfc5912::SECP_256_R_1),
            KeyAlgorithm::EcdsaP384 => Some(rfc5912::SECP_384_R_1),
            _ => None,
        }
    }

    /// The modulus size for RSA keys, else `None`.
    pub fn rsa_bits(self) -> Option<u32> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// The signature algorithm used with this key unless the operator picks another.
    ///
    /// Each curve gets the hash of its own strength; RSA gets PKCS#1 v1.5 with SHA-256, the
    /// form every relying party supports (RSA-PSS is available on request).
    pub fn default_signature(self) -> SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => SignatureAlgorithm::EcdsaSha256,
            KeyAlgorithm::EcdsaP384 => SignatureAlgorithm::EcdsaSha384,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                SignatureAlgorithm::RsaPkcs1Sha256
            }
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }

    /// The key family, for matching with signature algorithms.
    fn family(self) -> KeyFamily {
        match self {
            KeyAlgorithm::EcdsaP256 => KeyFamily::EcP256,
            KeyAlgorithm::EcdsaP384 => KeyFamily::EcP384,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => KeyFamily::Rsa,
            KeyAlgorithm::Ed25519 => KeyFamily::Ed25519,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = X509Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.name() == s)
            .ok_or_else(|| X509Error::UnknownKeyAlgorithmName { name: s.to_owned() })
    }
}

/// Key families, the level at which signature algorithms and keys match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFamily {
    EcP256,
    EcP384,
    Rsa,
    Ed25519,
}

/// The digests used by the supported signature algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256 (32-byte output).
    Sha256,
    /// SHA-384 (48-byte output).
    Sha384,
    /// SHA-512 (64-byte output).
    Sha512,
}

impl HashAlgorithm {
    /// The name as written in standards ("SHA-256").
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
        }
    }

    /// The digest's OID (as in RSASSA-PSS parameters).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha256 => rfc5912::ID_SHA_256,
            HashAlgorithm::Sha384 => rfc5912::ID_SHA_384,
            HashAlgorithm::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// Output length in bytes; also the RSA-PSS salt length this CA uses and accepts.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// Hashes `msg`.
    pub fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => Sha256::digest(msg).to_vec(),
            HashAlgorithm::Sha384 => Sha384::digest(msg).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }

    /// The digest named by `oid`, if it is one of ours.
    fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ]
        .into_iter()
        .find(|h| h.oid() == oid)
    }
}

/// The signature algorithms this CA produces and verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256 (RFC 5758).
    EcdsaSha256,
    /// ecdsa-with-SHA384 (RFC 5758).
    EcdsaSha384,
    /// sha256WithRSAEncryption (RFC 4055).
    RsaPkcs1Sha256,
    /// sha384WithRSAEncryption (RFC 4055).
    RsaPkcs1Sha384,
    /// sha512WithRSAEncryption (RFC 4055).
    RsaPkcs1Sha512,
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt (RFC 4055).
    RsaPssSha256,
    /// RSASSA-PSS, SHA-384, MGF1-SHA-384, 48-byte salt (RFC 4055).
    RsaPssSha384,
    /// RSASSA-PSS, SHA-512, MGF1-SHA-512, 64-byte salt (RFC 4055).
    RsaPssSha512,
    /// Pure Ed25519 (RFC 8410).
    Ed25519,
}

impl SignatureAlgorithm {
    /// Every signature algorithm, in the order help texts list them.
    pub const ALL: [SignatureAlgorithm; 9] = [
        SignatureAlgorithm::EcdsaSha256,
        SignatureAlgorithm::EcdsaSha384,
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPkcs1Sha384,
        SignatureAlgorithm::RsaPkcs1Sha512,
        SignatureAlgorithm::RsaPssSha256,
        SignatureAlgorithm::RsaPssSha384,
        SignatureAlgorithm::RsaPssSha512,
        SignatureAlgorithm::Ed25519,
    ];

    /// The command-line name (`ecdsa-sha384`, `rsa-pss-sha256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::EcdsaSha256 => "ecdsa-sha256",
            SignatureAlgorithm::EcdsaSha384 => "ecdsa-sha384",
            SignatureAlgorithm::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SignatureAlgorithm::RsaPkcs1Sha384 => "rsa-pkcs1-sha384",
            SignatureAlgorithm::RsaPkcs1Sha512 => "rsa-pkcs1-sha512",
            SignatureAlgorithm::RsaPssSha256 => "rsa-pss-sha256",
            SignatureAlgorithm::RsaPssSha384 => "rsa-pss-sha384",
            SignatureAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// A human description for reports ("ECDSA with SHA-384").
    pub fn description(self) -> &'static str {
        match self {
            SignatureAlgorithm::EcdsaSha256 => "ECDSA with SHA-256",
            SignatureAlgorithm::EcdsaSha384 => "ECDSA with SHA-384",
            SignatureAlgorithm::RsaPkcs1Sha256 => "RSA PKCS#1 v1.5 with SHA-256",
            SignatureAlgorithm::RsaPkcs1Sha384 => "RSA PKCS#1 v1.5 with SHA-384",
            SignatureAlgorithm::RsaPkcs1Sha512 => "RSA PKCS#1 v1.5 with SHA-512",
            SignatureAlgorithm::RsaPssSha256 => "RSA-PSS with SHA-256 (MGF1 SHA-256, salt 32)",
            SignatureAlgorithm::RsaPssSha384 => "RSA-PSS with SHA-384 (MGF1 SHA-384, salt 48)",
            SignatureAlgorithm::RsaPssSha512 => "RSA-PSS with SHA-512 (MGF1 SHA-512, salt 64)",
            SignatureAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// The outer OID of the AlgorithmIdentifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            SignatureAlgorithm::EcdsaSha256 => rfc5912::ECDSA_WITH_SHA_256,
            SignatureAlgorithm::EcdsaSha384 => rfc5912::ECDSA_WITH_SHA_384,
            SignatureAlgorithm::RsaPkcs1Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::RsaPkcs1Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::RsaPkcs1Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::RsaPssSha256
            | SignatureAlgorithm::RsaPssSha384
            | SignatureAlgorithm::RsaPssSha512 => rfc5912::ID_RSASSA_PSS,
            SignatureAlgorithm::Ed25519 => rfc8410::ID_ED_25519,
        }
    }

    /// The digest this algorithm signs, or `None` for Ed25519 (which hashes internally).
    pub fn hash(self) -> Option<HashAlgorithm> {
        match self {
            SignatureAlgorithm::EcdsaSha256
            | SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPssSha256 => Some(HashAlgorithm::Sha256),
            SignatureAlgorithm::EcdsaSha384
            | SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPssSha384 => Some(HashAlgorithm::Sha384),
            SignatureAlgorithm::RsaPkcs1Sha512 | SignatureAlgorithm::RsaPssSha512 => {
                Some(HashAlgorithm::Sha512)
            }
            SignatureAlgorithm::Ed25519 => None,
        }
    }

    /// The digest's name ("SHA-256"), or "none (Ed25519 hashes internally)".
    pub fn hash_name(self) -> &'static str {
        self.hash()
            .map_or("none (Ed25519 hashes internally)", HashAlgorithm::name)
    }

    /// The digest the host must compute before the token signs: `Some` only for ECDSA,
    /// because the token's CKM_ECDSA signs a ready digest while the RSA mechanisms
    /// (CKM_SHA256_RSA_PKCS, PSS) and CKM_EDDSA take the whole message.
    pub fn digest(self, msg: &[u8]) -> Option<Vec<u8>> {
        match self {
            SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384 => {
                self.hash().map(|h| h.digest(msg))
            }
            _ => None,
        }
    }

    /// Whether this CA would sign with this algorithm using a key of type `key`: each curve
    /// only with the hash of its own strength (P-256/SHA-256, P-384/SHA-384), RSA with any
    /// RSA algorithm, Ed25519 with Ed25519.
    pub fn is_compatible_with(self, key: KeyAlgorithm) -> bool {
        self.accepts_family(key.family(), true)
    }

    /// Whether a signature of this algorithm can be checked with `key`. Looser than
    /// [`Self::is_compatible_with`]: other signers (e.g. a P-256 key signing a CSR with
    /// SHA-384) are valid, if unusual.
    pub fn can_verify_with(self, key: &PublicKeyInfo) -> bool {
        self.accepts_family(key.kind.family(), false)
    }

    fn accepts_family(self, family: KeyFamily, strict_curve_hash: bool) -> bool {
        match self {
            SignatureAlgorithm::EcdsaSha256 => match family {
                KeyFamily::EcP256 => true,
                KeyFamily::EcP384 => !strict_curve_hash,
                _ => false,
            },
            SignatureAlgorithm::EcdsaSha384 => match family {
                KeyFamily::EcP384 => true,
                KeyFamily::EcP256 => !strict_curve_hash,
                _ => false,
            },
            SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPkcs1Sha512
            | SignatureAlgorithm::RsaPssSha256
            | SignatureAlgorithm::RsaPssSha384
            | SignatureAlgorithm::RsaPssSha512 => family == KeyFamily::Rsa,
            SignatureAlgorithm::Ed25519 => family == KeyFamily::Ed25519,
        }
    }

    /// Whether this is one of the RSA-PSS variants.
    pub fn is_pss(self) -> bool {
        matches!(
            self,
            SignatureAlgorithm::RsaPssSha256
                | SignatureAlgorithm::RsaPssSha384
                | SignatureAlgorithm::RsaPssSha512
        )
    }

    /// The AlgorithmIdentifier to put in certificates, CRLs and CSRs: ECDSA and Ed25519 with
    /// parameters absent (RFC 5758, RFC 8410), RSA PKCS#1 with NULL (RFC 4055), RSA-PSS with
    /// RSASSA-PSS-params naming the hash, MGF1 with the same hash and salt = hash length.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        let parameters = match self {
            SignatureAlgorithm::EcdsaSha256
            | SignatureAlgorithm::EcdsaSha384
            | SignatureAlgorithm::Ed25519 => None,
            SignatureAlgorithm::RsaPkcs1Sha256
            | SignatureAlgorithm::RsaPkcs1Sha384
            | SignatureAlgorithm::RsaPkcs1Sha512 => Some(Any::null()),
            SignatureAlgorithm::RsaPssSha256 => Some(pss_parameters::<Sha256>()),
            SignatureAlgorithm::RsaPssSha384 => Some(pss_parameters::<Sha384>()),
            SignatureAlgorithm::RsaPssSha512 => Some(pss_parameters::<Sha512>()),
        };
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters,
        }
    }

    /// Recognises an AlgorithmIdentifier, refusing anything outside the supported set: SHA-1,
    /// unknown OIDs, ECDSA/Ed25519 with parameters, RSA PKCS#1 with parameters other than
    /// NULL/absent, and RSA-PSS whose MGF, MGF hash or salt length differ from the profile.
    pub fn from_algorithm_identifier(alg: &AlgorithmIdentifierOwned) -> Result<Self, X509Error> {
        let oid = alg.oid;
        if oid == rfc5912::SHA_1_WITH_RSA_ENCRYPTION || oid == ECDSA_WITH_SHA_1 {
            return Err(X509Error::Sha1Signature { oid });
        }
        if oid == rfc5912::ID_RSASSA_PSS {
            return pss_from_parameters(alg.parameters.as_ref());
        }
        let found = SignatureAlgorithm::ALL
            .into_iter()
            .filter(|s| !s.is_pss())
            .find(|s| s.oid() == oid)
            .ok_or(X509Error::UnsupportedSignatureAlgorithm {
                oid,
                name: oid_name(&oid),
            })?;
        match (found, alg.parameters.as_ref()) {
            // RFC 5758 and RFC 8410: the parameters field MUST be absent.
            (SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384, None)
            | (SignatureAlgorithm::Ed25519, None) => Ok(found),
            (SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384, Some(_))
            | (SignatureAlgorithm::Ed25519, Some(_)) => Err(X509Error::BadAlgorithmParameters {
                oid,
                detail: "parameters must be absent for this algorithm but are present".into(),
            }),
            // RFC 4055 §5: NULL, and implementations must accept them absent too.
            (_, None) => Ok(found),
            (_, Some(p)) if p.is_null() => Ok(found),
            (_, Some(_)) => Err(X509Error::BadAlgorithmParameters {
                oid,
                detail: "RSA PKCS#1 v1.5 parameters must be NULL or absent".into(),
            }),
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = X509Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.name() == s)
            .ok_or_else(|| X509Error::UnknownSignatureAlgorithmName { name: s.to_owned() })
    }
}

/// RSASSA-PSS-params for digest `D`, salt = digest length, trailer field default (omitted).
fn pss_parameters<D>() -> Any
where
    D: Digest + const_oid::AssociatedOid,
{
    // Salt lengths are 32/48/64, so the u8 conversion cannot fail; the fallback keeps the
    // code total without a panic path.
    let salt_len = u8::try_from(<D as Digest>::output_size()).unwrap_or(u8::MAX);
    let params = RsaPssParamsRef::new::<D>(salt_len);
    // The value is built from constants and is a few dozen bytes: encoding can only fail
    // through a bug in der/pkcs1, which the unit tests of every variant would catch.
    Any::encode_from(&params).expect("RSASSA-PSS parameters built from constants encode")
}

/// Checks RSASSA-PSS parameters against the one profile this CA accepts per hash.
fn pss_from_parameters(params: Option<&Any>) -> Result<SignatureAlgorithm, X509Error> {
    let oid = rfc5912::ID_RSASSA_PSS;
    let bad = |detail: String| X509Error::BadAlgorithmParameters { oid, detail };
    let params = params.ok_or_else(|| {
        bad("RSASSA-PSS parameters are absent; they must name the hash, MGF1 and salt".into())
    })?;
    // The owned form: pkcs1's decoder fills SHA-1 defaults from 'static values, which only
    // the owned parameter type can take.
    let pss: RsaPssParams<Any> = params
        .decode_as()
        .map_err(|e| bad(format!("RSASSA-PSS parameters do not decode: {e}")))?;

    if pss.hash.oid == rfc5912::ID_SHA_1 {
        return Err(X509Error::Sha1Signature { oid });
    }
    let hash = HashAlgorithm::from_oid(pss.hash.oid).ok_or_else(|| {
        bad(format!(
            "RSASSA-PSS hash {} is not SHA-256, SHA-384 or SHA-512",
            pss.hash.oid
        ))
    })?;
    check_hash_params(&pss.hash).map_err(|d| bad(d.into()))?;

    if pss.mask_gen.oid != rfc5912::ID_MGF_1 {
        return Err(bad(format!(
            "mask generation function {} is not MGF1",
            pss.mask_gen.oid
        )));
    }
    let mgf_hash = pss
        .mask_gen
        .parameters
        .as_ref()
        .ok_or_else(|| bad("MGF1 names no hash".into()))?;
    if mgf_hash.oid != hash.oid() {
        return Err(bad(format!(
            "MGF1 uses hash {} but the signature hash is {} ({}); they must be the same",
            mgf_hash.oid,
            hash.name(),
            hash.oid()
        )));
    }
    check_hash_params(mgf_hash).map_err(|d| bad(d.into()))?;

    if usize::from(pss.salt_len) != hash.output_len() {
        return Err(bad(format!(
            "salt length is {} bytes but must equal the {} output length, {} bytes",
            pss.salt_len,
            hash.name(),
            hash.output_len()
        )));
    }
    // TrailerField has a single legal value (trailerFieldBC); decoding refuses the others.
    if pss.trailer_field != TrailerField::BC {
        return Err(bad("trailer field is not trailerFieldBC".into()));
    }

    Ok(match hash {
        HashAlgorithm::Sha256 => SignatureAlgorithm::RsaPssSha256,
        HashAlgorithm::Sha384 => SignatureAlgorithm::RsaPssSha384,
        HashAlgorithm::Sha512 => SignatureAlgorithm::RsaPssSha512,
    })
}

/// A hash AlgorithmIdentifier inside PSS parameters: NULL or absent (RFC 4055 allows both).
fn check_hash_params(alg: &AlgorithmIdentifierOwned) -> Result<(), &'static str> {
    match &alg.parameters {
        None => Ok(()),
        Some(p) if p.is_null() => Ok(()),
        Some(_) => Err("hash algorithm parameters must be NULL or absent"),
    }
}

/// The kind of a checked public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublicKeyKind {
    /// ECDSA key on P-256.
    EcP256,
    /// ECDSA key on P-384.
    EcP384,
    /// RSA key with its modulus length in bits (2048..=8192).
    Rsa {
        /// Modulus length in bits.
        bits: u32,
    },
    /// Ed25519 key.
    Ed25519,
}

impl PublicKeyKind {
    fn family(self) -> KeyFamily {
        match self {
            PublicKeyKind::EcP256 => KeyFamily::EcP256,
            PublicKeyKind::EcP384 => KeyFamily::EcP384,
            PublicKeyKind::Rsa { .. } => KeyFamily::Rsa,
            PublicKeyKind::Ed25519 => KeyFamily::Ed25519,
        }
    }
}

impl fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKeyKind::EcP256 => f.write_str("ECDSA P-256"),
            PublicKeyKind::EcP384 => f.write_str("ECDSA P-384"),
            PublicKeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
            PublicKeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The checked key, as verification needs it. AWS-LC parses ECDSA and RSA keys into a key
/// bound to one signature algorithm: here [`PublicKeyInfo::default_signature`], the one this
/// CA would use with the key (the common case, no second parse); a signature of another
/// algorithm parses the same bytes again.
#[derive(Clone, Debug)]
pub(crate) enum KeyMaterial {
    /// An ECDSA P-256 or P-384 key, checked to be on its curve.
    Ec {
        /// Parsed for the curve's own hash (P-256 with SHA-256, P-384 with SHA-384).
        parsed: aws_lc_rs::signature::ParsedPublicKey,
        /// Whether the point is in the uncompressed form (0x04 ‖ x ‖ y), the only one
        /// signatures are verified with.
        uncompressed: bool,
    },
    /// An RSA key, parsed for PKCS#1 v1.5 with SHA-256.
    Rsa(aws_lc_rs::signature::ParsedPublicKey),
    /// An Ed25519 key, checked to be the canonical encoding of a curve point.
    Ed25519([u8; 32]),
}

/// A SubjectPublicKeyInfo that has been checked: a supported type, a valid point or modulus,
/// and no weak sizes.
#[derive(Clone, Debug)]
pub struct PublicKeyInfo {
    kind: PublicKeyKind,
    pub(crate) material: KeyMaterial,
}

impl PublicKeyInfo {
    /// Checks and describes an SPKI; refuses unknown key OIDs, curves other than P-256/P-384,
    /// RSA moduli outside 2048..=8192 bits, and key bytes that are not a valid key.
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, X509Error> {
        let oid = spki.algorithm.oid;
        let params = spki.algorithm.parameters.as_ref();
        if oid == rfc5912::ID_EC_PUBLIC_KEY {
            Self::from_ec(params, spki_bytes(spki, "EC")?)
        } else if oid == rfc5912::RSA_ENCRYPTION {
            // RFC 3279 §2.3.1: the parameters MUST be NULL.
            if !params.is_some_and(Any::is_null) {
                return Err(X509Error::BadAlgorithmParameters {
                    oid,
                    detail: "rsaEncryption key parameters must be NULL".into(),
                });
            }
            Self::from_rsa(spki_bytes(spki, "RSA")?)
        } else if oid == rfc8410::ID_ED_25519 {
            // RFC 8410 §3: the parameters MUST be absent.
            if params.is_some() {
                return Err(X509Error::BadAlgorithmParameters {
                    oid,
                    detail: "Ed25519 key parameters must be absent".into(),
                });
            }
            Self::from_ed25519(spki_bytes(spki, "Ed25519")?)
        } else {
            Err(X509Error::UnsupportedKeyAlgorithm {
                oid,
                name: oid_name(&oid),
            })
        }
    }

    fn from_ec(params: Option<&Any>, point: &[u8]) -> Result<Self, X509Error> {
        let oid = rfc5912::ID_EC_PUBLIC_KEY;
        // Only namedCurve is allowed (RFC 5480 §2.1.1): implicit or explicit curves are not.
        let curve: ObjectIdentifier = params
            .ok_or_else(|| X509Error::BadAlgorithmParameters {
                oid,
                detail: "EC key parameters are absent; they must name the curve".into(),
            })?
            .decode_as()
            .map_err(|_| X509Error::BadAlgorithmParameters {
                oid,
                detail: "EC key parameters are not a named-curve OID".into(),
            })?;
        let (kind, name, alg): (_, _, &'static dyn VerificationAlgorithm) =
            if curve == rfc5912::SECP_256_R_1 {
                (PublicKeyKind::EcP256, "EC P-256", &ECDSA_P256_SHA256_ASN1)
            } else if curve == rfc5912::SECP_384_R_1 {
                (PublicKeyKind::EcP384, "EC P-384", &ECDSA_P384_SHA384_ASN1)
            } else {
                return Err(X509Error::UnsupportedCurve {
                    oid: curve,
                    name: oid_name(&curve),
                });
            };
        let malformed = || X509Error::MalformedPublicKey {
            kind: name,
            detail: "the point is not on the curve or badly encoded".into(),
        };
        // SEC1 points only: uncompressed (0x04) or compressed (0x02, 0x03). The tag is checked
        // here because AWS-LC's parser would also take a whole SubjectPublicKeyInfo in place
        // of the point; it checks the length and that the point is on the curve.
        if !matches!(point.first(), Some(0x02..=0x04)) {
            return Err(malformed());
        }
        let parsed = ParsedPublicKey::new(alg, point).map_err(|_| malformed())?;
        Ok(Self {
            kind,
            material: KeyMaterial::Ec {
                parsed,
                uncompressed: point.first() == Some(&0x04),
            },
        })
    }

    fn from_rsa(der: &[u8]) -> Result<Self, X509Error> {
        let malformed = |detail: String| X509Error::MalformedPublicKey {
            kind: "RSA",
            detail,
        };
        let pkcs1 = RsaPublicKeyRef::from_der(der)
            .map_err(|e| malformed(format!("RSAPublicKey does not decode: {e}")))?;
        // UintRef strips leading zeros, so the bit length follows from the first byte.
        let modulus = pkcs1.modulus.as_bytes();
        let bits = match modulus.first() {
            None => 0,
            Some(&first) => {
                let whole = u32::try_from(modulus.len() - 1).unwrap_or(u32::MAX / 16);
                whole.saturating_mul(8) + (8 - first.leading_zeros())
            }
        };
        if bits < RSA_MIN_BITS {
            return Err(X509Error::WeakRsaKey { bits });
        }
        if bits > RSA_MAX_BITS {
            return Err(X509Error::OversizedRsaKey { bits });
        }
        let invalid = || {
            malformed(
                "the modulus or public exponent is invalid (even modulus, or exponent outside \
                 3..2^33 or even)"
                    .into(),
            )
        };
        // The rules of every verifier hsmca has used apply (the rsa crate, ring): an odd
        // modulus, an odd exponent from 3 to 2^33 − 1. AWS-LC's own parse comes after.
        let exponent = pkcs1.public_exponent.as_bytes();
        let e = match exponent.len() {
            1..=5 => exponent.iter().fold(0u64, |e, &b| (e << 8) | u64::from(b)),
            _ => return Err(invalid()),
        };
        let odd_modulus = modulus.last().is_some_and(|b| b & 1 == 1);
        if !odd_modulus || !(3..(1 << 33)).contains(&e) || e & 1 == 0 {
            return Err(invalid());
        }
        let parsed =
            ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der).map_err(|_| invalid())?;
        Ok(Self {
            kind: PublicKeyKind::Rsa { bits },
            material: KeyMaterial::Rsa(parsed),
        })
    }

    fn from_ed25519(bytes: &[u8]) -> Result<Self, X509Error> {
        let malformed = |detail: String| X509Error::MalformedPublicKey {
            kind: "Ed25519",
            detail,
        };
        let raw: [u8; 32] = bytes
            .try_into()
            .map_err(|_| malformed(format!("the key is {} bytes, not 32", bytes.len())))?;
        ed25519_point::check_public_key(&raw).map_err(|e| {
            malformed(match e {
                PointError::NotOnCurve => "the bytes are not a valid Edwards point".into(),
                PointError::NonCanonical => {
                    "the point's y coordinate is not reduced mod p (a non-canonical encoding, \
                     RFC 8032 §5.1.3)"
                        .into()
                }
            })
        })?;
        Ok(Self {
            kind: PublicKeyKind::Ed25519,
            material: KeyMaterial::Ed25519(raw),
        })
    }

    /// The key's kind (curve, RSA size, Ed25519).
    pub fn kind(&self) -> PublicKeyKind {
        self.kind
    }

    /// The matching [`KeyAlgorithm`] when the key is one this CA could generate (RSA of
    /// exactly 2048/3072/4096 bits), else `None`.
    pub fn key_algorithm(&self) -> Option<KeyAlgorithm> {
        match self.kind {
            PublicKeyKind::EcP256 => Some(KeyAlgorithm::EcdsaP256),
            PublicKeyKind::EcP384 => Some(KeyAlgorithm::EcdsaP384),
            PublicKeyKind::Rsa { bits: 2048 } => Some(KeyAlgorithm::Rsa2048),
            PublicKeyKind::Rsa { bits: 3072 } => Some(KeyAlgorithm::Rsa3072),
            PublicKeyKind::Rsa { bits: 4096 } => Some(KeyAlgorithm::Rsa4096),
            PublicKeyKind::Rsa { .. } => None,
            PublicKeyKind::Ed25519 => Some(KeyAlgorithm::Ed25519),
        }
    }

    /// The signature algorithm this CA would use with such a key (see
    /// [`KeyAlgorithm::default_signature`]).
    pub fn default_signature(&self) -> SignatureAlgorithm {
        match self.kind {
            PublicKeyKind::EcP256 => SignatureAlgorithm::EcdsaSha256,
            PublicKeyKind::EcP384 => SignatureAlgorithm::EcdsaSha384,
            PublicKeyKind::Rsa { .. } => SignatureAlgorithm::RsaPkcs1Sha256,
            PublicKeyKind::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }
}

impl fmt::Display for PublicKeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

/// The subjectPublicKey BIT STRING contents, refusing a partial last byte (no key type
/// this CA supports has one).
fn spki_bytes<'a>(
    spki: &'a SubjectPublicKeyInfoOwned,
    kind: &'static str,
) -> Result<&'a [u8], X509Error> {
    spki.subject_public_key
        .as_bytes()
        .ok_or(X509Error::MalformedPublicKey {
            kind,
            detail: "the subjectPublicKey BIT STRING has unused bits".into(),
        })
}

/// SHA-256 over the DER SubjectPublicKeyInfo: the key's fingerprint (as in RFC 7469 pins).
pub fn spki_sha256(spki: &SubjectPublicKeyInfoOwned) -> [u8; 32] {
    // Encoding fails only when the total length passes der's 256 MiB limit; every part of
    // an SPKI was itself length-checked when decoded or built, and real keys are under
    // 2 KiB, so this cannot be reached from any input.
    let der = spki
        .to_der()
        .expect("a SubjectPublicKeyInfo held in memory encodes to DER");
    Sha256::digest(&der).into()
}

/// The key identifier of RFC 5280 §4.2.1.2 method 1: SHA-1 over the subjectPublicKey BIT
/// STRING contents (tag, length and unused-bits byte excluded).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::AnyRef;
    use spki::AlgorithmIdentifierRef;

    #[test]
    fn key_algorithm_names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.to_string().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        let err = "rsa-1024".parse::<KeyAlgorithm>().unwrap_err().to_string();
        assert!(
            err.contains("ecdsa-p256") && err.contains("ed25519"),
            "{err}"
        );
    }

    #[test]
    fn signature_algorithm_names_round_trip() {
        for alg in SignatureAlgorithm::ALL {
            assert_eq!(alg.to_string().parse::<SignatureAlgorithm>().unwrap(), alg);
        }
        assert!("sha1".parse::<SignatureAlgorithm>().is_err());
    }

    #[test]
    fn key_algorithm_helpers() {
        assert_eq!(
            KeyAlgorithm::EcdsaP256.curve_oid().unwrap().to_string(),
            "1.2.840.10045.3.1.7"
        );
        assert_eq!(
            KeyAlgorithm::EcdsaP384.curve_oid().unwrap().to_string(),
            "1.3.132.0.34"
        );
        assert_eq!(KeyAlgorithm::Rsa3072.rsa_bits(), Some(3072));
        assert_eq!(KeyAlgorithm::Ed25519.rsa_bits(), None);
        assert_eq!(KeyAlgorithm::Ed25519.curve_oid(), None);
        for key in KeyAlgorithm::ALL {
            assert!(key.default_signature().is_compatible_with(key), "{key}");
        }
        assert!(!SignatureAlgorithm::EcdsaSha256.is_compatible_with(KeyAlgorithm::EcdsaP384));
        assert!(!SignatureAlgorithm::Ed25519.is_compatible_with(KeyAlgorithm::Rsa2048));
        assert!(SignatureAlgorithm::RsaPssSha512.is_compatible_with(KeyAlgorithm::Rsa2048));
    }

    #[test]
    fn every_algorithm_identifier_round_trips_through_der() {
        for alg in SignatureAlgorithm::ALL {
            let ai = alg.algorithm_identifier();
            let der = ai.to_der().unwrap();
            let back = AlgorithmIdentifierOwned::from_der(&der).unwrap();
            assert_eq!(
                SignatureAlgorithm::from_algorithm_identifier(&back).unwrap(),
                alg
            );
        }
    }

    #[test]
    fn algorithm_identifier_encodings_match_rfc_4055_and_5758() {
        let hex_of =
            |a: SignatureAlgorithm| hex::encode(a.algorithm_identifier().to_der().unwrap());
        // ecdsa-with-SHA384, parameters absent.
        assert_eq!(
            hex_of(SignatureAlgorithm::EcdsaSha384),
            "300a06082a8648ce3d040303"
        );
        // sha256WithRSAEncryption, NULL.
        assert_eq!(
            hex_of(SignatureAlgorithm::RsaPkcs1Sha256),
            "300d06092a864886f70d01010b0500"
        );
        // Ed25519, parameters absent.
        assert_eq!(hex_of(SignatureAlgorithm::Ed25519), "300506032b6570");
        // RSASSA-PSS SHA-256 as OpenSSL writes it (hash NULL, MGF1-SHA256, salt 32).
        assert_eq!(
            hex_of(SignatureAlgorithm::RsaPssSha256),
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a\
             864886f70d010108300d06096086480165030402010500a203020120"
        );
    }

    fn pss_ai(hash: &str, mgf_hash: &str, salt: u8) -> AlgorithmIdentifierOwned {
        use der::asn1::ObjectIdentifier as Oid;
        let hash_ai = AlgorithmIdentifierRef {
            oid: Oid::new_unwrap(hash),
            parameters: Some(AnyRef::NULL),
        };
        let params = RsaPssParamsRef {
            hash: hash_ai,
            mask_gen: spki::AlgorithmIdentifier {
                oid: rfc5912::ID_MGF_1,
                parameters: Some(AlgorithmIdentifierRef {
                    oid: Oid::new_unwrap(mgf_hash),
                    parameters: Some(AnyRef::NULL),
                }),
            },
            salt_len: salt,
            trailer_field: TrailerField::BC,
        };
        AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSASSA_PSS,
            parameters: Some(Any::encode_from(&params).unwrap()),
        }
    }

    #[test]
    fn pss_parameters_must_match_the_profile() {
        let sha256 = "2.16.840.1.101.3.4.2.1";
        let sha384 = "2.16.840.1.101.3.4.2.2";
        assert_eq!(
            SignatureAlgorithm::from_algorithm_identifier(&pss_ai(sha256, sha256, 32)).unwrap(),
            SignatureAlgorithm::RsaPssSha256
        );
        let mismatched_mgf =
            SignatureAlgorithm::from_algorithm_identifier(&pss_ai(sha256, sha384, 32));
        assert!(
            matches!(
                mismatched_mgf,
                Err(X509Error::BadAlgorithmParameters { .. })
            ),
            "{mismatched_mgf:?}"
        );
        let wrong_salt = SignatureAlgorithm::from_algorithm_identifier(&pss_ai(sha384, sha384, 32));
        assert!(matches!(
            wrong_salt,
            Err(X509Error::BadAlgorithmParameters { .. })
        ));
        // Absent parameters mean SHA-1 defaults: refused as SHA-1.
        let defaults = AlgorithmIdentifierOwned {
            oid: rfc5912::ID_RSASSA_PSS,
            parameters: Some(Any::encode_from(&RsaPssParamsRef::default()).unwrap()),
        };
        assert!(matches!(
            SignatureAlgorithm::from_algorithm_identifier(&defaults),
            Err(X509Error::Sha1Signature { .. })
        ));
    }

    #[test]
    fn sha1_unknown_and_bad_parameters_are_refused() {
        let sha1_rsa = AlgorithmIdentifierOwned {
            oid: rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        };
        assert!(matches!(
            SignatureAlgorithm::from_algorithm_identifier(&sha1_rsa),
            Err(X509Error::Sha1Signature { .. })
        ));
        let md5 = AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.4"),
            parameters: Some(Any::null()),
        };
        let err = SignatureAlgorithm::from_algorithm_identifier(&md5).unwrap_err();
        assert!(err.to_string().contains("1.2.840.113549.1.1.4"), "{err}");
        let ecdsa_with_null = AlgorithmIdentifierOwned {
            oid: rfc5912::ECDSA_WITH_SHA_256,
            parameters: Some(Any::null()),
        };
        assert!(SignatureAlgorithm::from_algorithm_identifier(&ecdsa_with_null).is_err());
        let rsa_absent = AlgorithmIdentifierOwned {
            oid: rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            parameters: None,
        };
        assert_eq!(
            SignatureAlgorithm::from_algorithm_identifier(&rsa_absent).unwrap(),
            SignatureAlgorithm::RsaPkcs1Sha384
        );
    }

    #[test]
    fn digest_only_for_host_hashed_algorithms() {
        assert_eq!(
            SignatureAlgorithm::EcdsaSha384
                .digest(b"abc")
                .unwrap()
                .len(),
            48
        );
        assert!(SignatureAlgorithm::RsaPkcs1Sha256.digest(b"abc").is_none());
        assert!(SignatureAlgorithm::Ed25519.digest(b"abc").is_none());
        assert_eq!(SignatureAlgorithm::RsaPssSha512.hash_name(), "SHA-512");
    }

    fn rcgen_spki(alg: &'static rcgen::SignatureAlgorithm) -> SubjectPublicKeyInfoOwned {
        use rcgen::PublicKeyData;
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        SubjectPublicKeyInfoOwned::from_der(&key.subject_public_key_info()).unwrap()
    }

    #[test]
    fn public_key_info_describes_rcgen_keys() {
        let p256 = PublicKeyInfo::from_spki(&rcgen_spki(&rcgen::PKCS_ECDSA_P256_SHA256)).unwrap();
        assert_eq!(p256.to_string(), "ECDSA P-256");
        assert_eq!(p256.default_signature(), SignatureAlgorithm::EcdsaSha256);
        let p384 = PublicKeyInfo::from_spki(&rcgen_spki(&rcgen::PKCS_ECDSA_P384_SHA384)).unwrap();
        assert_eq!(p384.to_string(), "ECDSA P-384");
        assert_eq!(p384.key_algorithm(), Some(KeyAlgorithm::EcdsaP384));
        let ed = PublicKeyInfo::from_spki(&rcgen_spki(&rcgen::PKCS_ED25519)).unwrap();
        assert_eq!(ed.to_string(), "Ed25519");
    }

    /// An SPKI for an RSA key with the given modulus (odd, top bit set) and e = 65537.
    fn rsa_spki(bits: usize) -> SubjectPublicKeyInfoOwned {
        let mut n = vec![0xC3u8; bits / 8];
        if let Some(last) = n.last_mut() {
            *last |= 1;
        }
        let key = pkcs1::RsaPublicKey {
            modulus: der::asn1::UintRef::new(&n).unwrap(),
            public_exponent: der::asn1::UintRef::new(&[1, 0, 1]).unwrap(),
        };
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: rfc5912::RSA_ENCRYPTION,
                parameters: Some(Any::null()),
            },
            subject_public_key: der::asn1::BitString::from_bytes(&key.to_der().unwrap()).unwrap(),
        }
    }

    #[test]
    fn rsa_sizes_are_bounded() {
        let ok = PublicKeyInfo::from_spki(&rsa_spki(3072)).unwrap();
        assert_eq!(ok.to_string(), "RSA 3072");
        assert_eq!(ok.key_algorithm(), Some(KeyAlgorithm::Rsa3072));
        let odd = PublicKeyInfo::from_spki(&rsa_spki(2560)).unwrap();
        assert_eq!(odd.kind(), PublicKeyKind::Rsa { bits: 2560 });
        assert_eq!(odd.key_algorithm(), None);
        let weak = PublicKeyInfo::from_spki(&rsa_spki(1024)).unwrap_err();
        assert!(
            matches!(weak, X509Error::WeakRsaKey { bits: 1024 }),
            "{weak:?}"
        );
        assert!(weak.to_string().contains("1024-bit"));
        let huge = PublicKeyInfo::from_spki(&rsa_spki(8200)).unwrap_err();
        assert!(
            matches!(huge, X509Error::OversizedRsaKey { bits: 8200 }),
            "{huge:?}"
        );
    }

    #[test]
    fn unknown_curves_and_key_types_are_refused() {
        let mut spki = rcgen_spki(&rcgen::PKCS_ECDSA_P256_SHA256);
        // secp521r1: a real curve this CA does not accept.
        spki.algorithm.parameters =
            Some(Any::encode_from(&ObjectIdentifier::new_unwrap("1.3.132.0.35")).unwrap());
        let err = PublicKeyInfo::from_spki(&spki).unwrap_err();
        assert!(matches!(err, X509Error::UnsupportedCurve { .. }), "{err:?}");
        assert!(err.to_string().contains("1.3.132.0.35"));

        let mut spki = rcgen_spki(&rcgen::PKCS_ED25519);
        spki.algorithm.oid = ObjectIdentifier::new_unwrap("1.3.101.113"); // Ed448
        let err = PublicKeyInfo::from_spki(&spki).unwrap_err();
        assert!(
            matches!(err, X509Error::UnsupportedKeyAlgorithm { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let mut spki = rcgen_spki(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut point = spki.subject_public_key.raw_bytes().to_vec();
        point[40] ^= 0x01;
        spki.subject_public_key = der::asn1::BitString::from_bytes(&point).unwrap();
        let err = PublicKeyInfo::from_spki(&spki).unwrap_err();
        assert!(
            matches!(err, X509Error::MalformedPublicKey { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn only_sec1_point_encodings_are_keys() {
        let good = rcgen_spki(&rcgen::PKCS_ECDSA_P256_SHA256);
        let refused = |bytes: &[u8]| {
            let mut spki = good.clone();
            spki.subject_public_key = der::asn1::BitString::from_bytes(bytes).unwrap();
            matches!(
                PublicKeyInfo::from_spki(&spki),
                Err(X509Error::MalformedPublicKey { .. })
            )
        };
        // A whole SubjectPublicKeyInfo in place of the point (AWS-LC would parse it).
        assert!(refused(&good.to_der().unwrap()));
        // The point at infinity, a hybrid (0x06) and a truncated point.
        assert!(refused(&[0x00]));
        let mut hybrid = good.subject_public_key.raw_bytes().to_vec();
        hybrid[0] = 0x06 | (hybrid[64] & 1);
        assert!(refused(&hybrid));
        assert!(refused(&good.subject_public_key.raw_bytes()[..64]));
    }

    #[test]
    fn fingerprints_and_key_identifier() {
        let spki = rcgen_spki(&rcgen::PKCS_ECDSA_P256_SHA256);
        let der = spki.to_der().unwrap();
        assert_eq!(spki_sha256(&spki).to_vec(), Sha256::digest(&der).to_vec());
        let ki = key_identifier(&spki);
        assert_eq!(ki.len(), 20);
        // The BIT STRING contents of an uncompressed P-256 point: 65 bytes starting with 04.
        assert_eq!(spki.subject_public_key.raw_bytes().len(), 65);
        assert_eq!(
            ki,
            Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
        );
    }
}
