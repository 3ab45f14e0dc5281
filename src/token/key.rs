//! Key types, signing mechanisms, public key material and the attributes of a CA key.

use cryptoki::mechanism::MechanismType;

/// A key pair type the token can generate, in PKCS#11 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// EC on secp256r1.
    EcP256,
    /// EC on secp384r1.
    EcP384,
    /// RSA with this modulus size and e = 65537.
    Rsa(u32),
    /// EdDSA on edwards25519.
    Ed25519,
}

/// DER of the secp256r1 OID, as CKA_EC_PARAMS.
pub const EC_PARAMS_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the secp384r1 OID, as CKA_EC_PARAMS.
pub const EC_PARAMS_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of the id-Ed25519 OID, as CKA_EC_PARAMS.
pub const EC_PARAMS_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

impl KeySpec {
    /// Every key type hsmca generates.
    pub const ALL: [KeySpec; 6] = [
        KeySpec::EcP256,
        KeySpec::EcP384,
        KeySpec::Rsa(2048),
        KeySpec::Rsa(3072),
        KeySpec::Rsa(4096),
        KeySpec::Ed25519,
    ];

    /// The CKM_ key-pair generation mechanism.
    pub fn generation_mechanism(self) -> MechanismType {
        match self {
            KeySpec::EcP256 | KeySpec::EcP384 => MechanismType::ECC_KEY_PAIR_GEN,
            KeySpec::Rsa(_) => MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            KeySpec::Ed25519 => MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
        }
    }

    /// The signing mechanism hsmca needs for this key type.
    pub fn signing_mechanism(self) -> MechanismType {
        match self {
            KeySpec::EcP256 | KeySpec::EcP384 => MechanismType::ECDSA,
            KeySpec::Rsa(_) => MechanismType::SHA256_RSA_PKCS,
            KeySpec::Ed25519 => MechanismType::EDDSA,
        }
    }

    /// Whether a token offering `mechanisms` can generate this key and sign with it. RSA signs
    /// through CKM_SHA256_RSA_PKCS, or CKM_RSA_PKCS over a DigestInfo built on the host
    /// (openCryptoki's soft token has only the latter).
    pub fn supported_by(self, mechanisms: &[MechanismType]) -> bool {
        mechanisms.contains(&self.generation_mechanism())
            && (mechanisms.contains(&self.signing_mechanism())
                || matches!(self, KeySpec::Rsa(_)) && mechanisms.contains(&MechanismType::RSA_PKCS))
    }

    /// The CLI name (`ecdsa-p384`, `rsa-3072`, ...).
    pub fn name(self) -> String {
        match self {
            KeySpec::EcP256 => "ecdsa-p256".into(),
            KeySpec::EcP384 => "ecdsa-p384".into(),
            KeySpec::Rsa(bits) => format!("rsa-{bits}"),
            KeySpec::Ed25519 => "ed25519".into(),
        }
    }
}

/// How the token is asked to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMechanism {
    /// CKM_ECDSA over a digest the host computed; returns raw r‖s.
    EcdsaPrehashed,
    /// CKM_SHAx_RSA_PKCS with this hash size in bits (256, 384, 512).
    RsaPkcs1(u16),
    /// CKM_SHAx_RSA_PKCS_PSS, MGF1 with the same hash, salt = hash length.
    RsaPss(u16),
    /// CKM_EDDSA, pure Ed25519.
    Eddsa,
}

impl SignMechanism {
    /// The mechanisms that can make this signature, any one of which will do.
    pub fn mechanisms(self) -> Vec<MechanismType> {
        let by_hash = |bits: u16, m256, m384, m512| match bits {
            384 => m384,
            512 => m512,
            _ => m256,
        };
        match self {
            SignMechanism::EcdsaPrehashed => vec![MechanismType::ECDSA],
            SignMechanism::RsaPkcs1(bits) => vec![
                by_hash(
                    bits,
                    MechanismType::SHA256_RSA_PKCS,
                    MechanismType::SHA384_RSA_PKCS,
                    MechanismType::SHA512_RSA_PKCS,
                ),
                // Over a DigestInfo built on the host.
                MechanismType::RSA_PKCS,
            ],
            SignMechanism::RsaPss(bits) => vec![
                by_hash(
                    bits,
                    MechanismType::SHA256_RSA_PKCS_PSS,
                    MechanismType::SHA384_RSA_PKCS_PSS,
                    MechanismType::SHA512_RSA_PKCS_PSS,
                ),
                // Over a digest computed on the host.
                MechanismType::RSA_PKCS_PSS,
            ],
            SignMechanism::Eddsa => vec![MechanismType::EDDSA],
        }
    }

    /// Whether a token offering `mechanisms` can make this signature.
    pub fn offered_by(self, mechanisms: &[MechanismType]) -> bool {
        self.mechanisms().iter().any(|m| mechanisms.contains(m))
    }
}

/// The public half of a key as the token stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyMaterial {
    /// An EC key: CKA_EC_PARAMS (DER OID) and the uncompressed point (unwrapped).
    Ec {
        /// DER of the curve OID.
        params: Vec<u8>,
        /// Uncompressed point, 0x04 ‖ x ‖ y.
        point: Vec<u8>,
    },
    /// An RSA key.
    Rsa {
        /// Big-endian modulus.
        modulus: Vec<u8>,
        /// Big-endian public exponent.
        exponent: Vec<u8>,
    },
    /// An Ed25519 key: the 32-byte point.
    Ed25519 {
        /// The public key bytes.
        point: Vec<u8>,
    },
}

impl PublicKeyMaterial {
    /// The length of a signature by this key as the token returns it (raw r‖s for ECDSA).
    pub fn signature_len(&self) -> usize {
        match self {
            PublicKeyMaterial::Rsa { modulus, .. } => {
                modulus.iter().skip_while(|b| **b == 0).count()
            }
            PublicKeyMaterial::Ec { params, .. } if params == EC_PARAMS_P384 => 96,
            PublicKeyMaterial::Ec { .. } | PublicKeyMaterial::Ed25519 { .. } => 64,
        }
    }

    /// The key type, where hsmca supports it.
    pub fn spec(&self) -> Option<KeySpec> {
        match self {
            PublicKeyMaterial::Ec { params, .. } if params == EC_PARAMS_P256 => {
                Some(KeySpec::EcP256)
            }
            PublicKeyMaterial::Ec { params, .. } if params == EC_PARAMS_P384 => {
                Some(KeySpec::EcP384)
            }
            PublicKeyMaterial::Ec { .. } => None,
            PublicKeyMaterial::Rsa { modulus, .. } => {
                let lead = modulus.iter().take_while(|b| **b == 0).count();
                let bytes = &modulus[lead..];
                let bits = bytes
                    .first()
                    .map(|b| (bytes.len() as u32) * 8 - b.leading_zeros())
                    .unwrap_or(0);
                Some(KeySpec::Rsa(bits))
            }
            PublicKeyMaterial::Ed25519 { .. } => Some(KeySpec::Ed25519),
        }
    }
}

/// A boolean attribute of a private key as read back from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrValue {
    /// CK_TRUE.
    True,
    /// CK_FALSE.
    False,
    /// The token does not know the attribute for this object.
    Absent,
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttrValue::True => "true",
            AttrValue::False => "false",
            AttrValue::Absent => "absent",
        })
    }
}

/// The attributes that make a private key fit to be a CA key, with the value each must have.
pub const CA_KEY_POLICY: &[(&str, bool)] = &[
    ("CKA_TOKEN", true),
    ("CKA_PRIVATE", true),
    ("CKA_SENSITIVE", true),
    ("CKA_SIGN", true),
    ("CKA_ALWAYS_SENSITIVE", true),
    ("CKA_NEVER_EXTRACTABLE", true),
    ("CKA_LOCAL", true),
    ("CKA_EXTRACTABLE", false),
    ("CKA_DECRYPT", false),
    ("CKA_UNWRAP", false),
    ("CKA_DERIVE", false),
    ("CKA_MODIFIABLE", false),
    ("CKA_COPYABLE", false),
];

/// The policy of a CA key generated with an M-of-N backup (or restored from one): sensitive,
/// and extractable only wrapped under a key the security officer marked trusted. Such a key
/// was not always sensitive or never extractable, and a restored one is not local; a restored
/// one may be copyable (see `token::wrap`), a copy keeping both protections.
pub const BACKUP_KEY_POLICY: &[(&str, bool)] = &[
    ("CKA_TOKEN", true),
    ("CKA_PRIVATE", true),
    ("CKA_SENSITIVE", true),
    ("CKA_SIGN", true),
    ("CKA_EXTRACTABLE", true),
    ("CKA_WRAP_WITH_TRUSTED", true),
    ("CKA_DECRYPT", false),
    ("CKA_UNWRAP", false),
    ("CKA_DERIVE", false),
    ("CKA_MODIFIABLE", false),
];

/// Every attribute either policy reads.
pub const POLICY_ATTRIBUTES: &[&str] = &[
    "CKA_TOKEN",
    "CKA_PRIVATE",
    "CKA_SENSITIVE",
    "CKA_SIGN",
    "CKA_ALWAYS_SENSITIVE",
    "CKA_NEVER_EXTRACTABLE",
    "CKA_LOCAL",
    "CKA_EXTRACTABLE",
    "CKA_WRAP_WITH_TRUSTED",
    "CKA_DECRYPT",
    "CKA_UNWRAP",
    "CKA_DERIVE",
    "CKA_MODIFIABLE",
    "CKA_COPYABLE",
];

/// The security attributes of a private key, in [`POLICY_ATTRIBUTES`] order.
#[derive(Debug, Clone)]
pub struct KeyAttributes(pub Vec<(&'static str, AttrValue)>);

impl KeyAttributes {
    /// The value read for `name`.
    pub fn get(&self, name: &str) -> AttrValue {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or(AttrValue::Absent)
    }

    /// Whether the key is in backup form: extractable, but only under a trusted key. Any other
    /// extractable key is judged by [`CA_KEY_POLICY`] and refused.
    pub fn backup_form(&self) -> bool {
        self.get("CKA_EXTRACTABLE") == AttrValue::True
            && self.get("CKA_WRAP_WITH_TRUSTED") == AttrValue::True
    }

    /// The policy that applies: [`BACKUP_KEY_POLICY`] for a key in backup form, else
    /// [`CA_KEY_POLICY`].
    pub fn policy(&self) -> &'static [(&'static str, bool)] {
        if self.backup_form() {
            BACKUP_KEY_POLICY
        } else {
            CA_KEY_POLICY
        }
    }

    /// Every attribute that breaks the policy that applies: (name, required, found).
    pub fn violations(&self) -> Vec<(&'static str, bool, AttrValue)> {
        self.policy()
            .iter()
            .filter_map(|(name, required)| {
                let found = self
                    .0
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| *v)
                    .unwrap_or(AttrValue::Absent);
                let ok = match (required, found) {
                    (true, AttrValue::True) => true,
                    (false, AttrValue::False) => true,
                    // A capability the token does not know is a capability the key does not have.
                    (false, AttrValue::Absent) => true,
                    _ => false,
                };
                (!ok).then_some((*name, *required, found))
            })
            .collect()
    }

    /// The violations as a reader sees them: "CKA_SENSITIVE is false (must be true), ...".
    pub fn describe_violations(&self) -> Option<String> {
        let v = self.violations();
        (!v.is_empty()).then(|| {
            v.iter()
                .map(|(n, want, got)| format!("{n} is {got} (must be {want})"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// A private key found on the token, with what hsmca needs to use it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID.
    pub id: Vec<u8>,
    /// The public key, from the public object with the same CKA_ID (or label).
    pub public: Option<PublicKeyMaterial>,
    /// The security attributes.
    pub attributes: KeyAttributes,
}
