//! The bridge between the layers: a token key as the certificate layer's [`CaSigner`].

use der::asn1::{Any, BitString, UintRef};
use der::{Decode, Encode};
use sha2::Digest;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};

use crate::error::{Error, Result};
use crate::token::key::EC_PARAMS_P256;
use crate::token::{KeySpec, PublicKeyMaterial, SignMechanism, TokenKey, TokenSession};
use crate::x509::algorithm::SignatureAlgorithm;
use crate::x509::ecdsa_sig;
use crate::x509::signer::{CaSigner, SignError};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The operator's choice of signature for RSA keys (EC and Ed25519 keys have one each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureChoice {
    /// SHA-256, -384 or -512 (bits); `None` for the key's default.
    pub hash: Option<u16>,
    /// RSASSA-PSS instead of PKCS#1 v1.5.
    pub pss: bool,
}

/// The signature algorithm for a key type and the operator's choice; refuses mismatches.
pub fn signature_for(spec: KeySpec, choice: SignatureChoice) -> Result<SignatureAlgorithm> {
    let mismatch = |what: String| {
        Error::invalid(
            what,
            "P-256 signs with SHA-256, P-384 with SHA-384, Ed25519 has no hash option; --hash and --pss apply to RSA keys",
        )
    };
    Ok(match spec {
        KeySpec::EcP256 | KeySpec::EcP384 => {
            let natural = if spec == KeySpec::EcP256 { 256 } else { 384 };
            if choice.pss || choice.hash.is_some_and(|h| h != natural) {
                return Err(mismatch(format!(
                    "{} keys sign with ECDSA and SHA-{natural} only",
                    spec.name()
                )));
            }
            if natural == 256 {
                SignatureAlgorithm::EcdsaSha256
            } else {
                SignatureAlgorithm::EcdsaSha384
            }
        }
        KeySpec::Ed25519 => {
            if choice.pss || choice.hash.is_some() {
                return Err(mismatch(
                    "Ed25519 signs without a separate hash choice".into(),
                ));
            }
            SignatureAlgorithm::Ed25519
        }
        KeySpec::Rsa(_) => match (choice.hash.unwrap_or(256), choice.pss) {
            (256, false) => SignatureAlgorithm::RsaPkcs1Sha256,
            (384, false) => SignatureAlgorithm::RsaPkcs1Sha384,
            (512, false) => SignatureAlgorithm::RsaPkcs1Sha512,
            (256, true) => SignatureAlgorithm::RsaPssSha256,
            (384, true) => SignatureAlgorithm::RsaPssSha384,
            (512, true) => SignatureAlgorithm::RsaPssSha512,
            (h, _) => {
                return Err(mismatch(format!(
                    "SHA-{h} is not offered; use 256, 384 or 512"
                )));
            }
        },
    })
}

/// The SubjectPublicKeyInfo of a token's public key.
pub fn spki_from_material(material: &PublicKeyMaterial) -> Result<SubjectPublicKeyInfoOwned> {
    let enc = |e: der::Error| {
        Error::invalid(
            format!("the token's public key does not encode: {e}"),
            "check the key with 'hsmca key list'",
        )
    };
    let (algorithm, key_bytes) = match material {
        PublicKeyMaterial::Ec { params, point } => (
            AlgorithmIdentifierOwned {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(Any::from_der(params).map_err(enc)?),
            },
            point.clone(),
        ),
        PublicKeyMaterial::Rsa { modulus, exponent } => {
            let key = pkcs1::RsaPublicKey {
                modulus: UintRef::new(modulus).map_err(enc)?,
                public_exponent: UintRef::new(exponent).map_err(enc)?,
            };
            (
                AlgorithmIdentifierOwned {
                    oid: RSA_ENCRYPTION,
                    parameters: Some(Any::null()),
                },
                key.to_der().map_err(enc)?,
            )
        }
        PublicKeyMaterial::Ed25519 { point } => (
            AlgorithmIdentifierOwned {
                oid: ID_ED25519,
                parameters: None,
            },
            point.clone(),
        ),
    };
    Ok(SubjectPublicKeyInfoOwned {
        algorithm,
        subject_public_key: BitString::from_bytes(&key_bytes).map_err(enc)?,
    })
}

/// A public key in the token's form: the inverse of [`spki_from_material`], for a key the token
/// receives (a restored backup) rather than generates.
pub fn material_from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKeyMaterial> {
    // Only a key hsmca accepts (the curve, the RSA size) goes to the token.
    crate::x509::algorithm::PublicKeyInfo::from_spki(spki)?;
    let bits = spki.subject_public_key.raw_bytes();
    let material = match spki.algorithm.oid {
        ID_EC_PUBLIC_KEY => PublicKeyMaterial::Ec {
            params: spki
                .algorithm
                .parameters
                .as_ref()
                .map(|p| p.to_der())
                .transpose()
                .map_err(|e| Error::internal(format!("EC parameters: {e}")))?
                .unwrap_or_default(),
            point: bits.to_vec(),
        },
        RSA_ENCRYPTION => {
            let key = pkcs1::RsaPublicKey::<UintRef<'_>>::from_der(bits)
                .map_err(|e| Error::internal(format!("RSA public key: {e}")))?;
            PublicKeyMaterial::Rsa {
                modulus: key.modulus.as_bytes().to_vec(),
                exponent: key.public_exponent.as_bytes().to_vec(),
            }
        }
        _ => PublicKeyMaterial::Ed25519 {
            point: bits.to_vec(),
        },
    };
    Ok(material)
}

/// A CA key on the token, usable by the certificate layer.
pub struct TokenSigner<'s, 'm> {
    session: &'s TokenSession<'m>,
    key: TokenKey,
    spki: SubjectPublicKeyInfoOwned,
    algorithm: SignatureAlgorithm,
}

impl<'s, 'm> TokenSigner<'s, 'm> {
    /// Binds `key` (already checked against the CA key policy) to a signature algorithm.
    pub fn new(
        session: &'s TokenSession<'m>,
        key: TokenKey,
        choice: SignatureChoice,
    ) -> Result<Self> {
        let spec = key.public.spec().ok_or_else(|| {
            Error::from(crate::token::TokenError::UnsupportedKey {
                what: "an EC key on a curve other than P-256 or P-384".into(),
            })
        })?;
        if let KeySpec::Rsa(bits) = spec
            && !(2048..=8192).contains(&bits)
        {
            return Err(Error::invalid(
                format!("the RSA key has {bits} bits; a CA key needs 2048 to 8192"),
                "generate a new key with 'hsmca key generate --algorithm rsa-3072'",
            ));
        }
        let algorithm = signature_for(spec, choice)?;
        let spki = spki_from_material(&key.public)?;
        Ok(TokenSigner {
            session,
            key,
            spki,
            algorithm,
        })
    }

    /// The key on the token.
    pub fn key(&self) -> &TokenKey {
        &self.key
    }

    /// The session this signer signs on.
    pub fn session(&self) -> &'s TokenSession<'m> {
        self.session
    }

    /// This signer's key and algorithm, to sign on another session ([`SignerParts::on`]):
    /// a session cannot be shared between threads, these can be sent to one.
    pub fn parts(&self) -> SignerParts {
        SignerParts {
            key: self.key.clone(),
            spki: self.spki.clone(),
            algorithm: self.algorithm,
        }
    }

    /// The token mechanism for this signer's algorithm and what the token is given for
    /// `message`: the host-computed digest for ECDSA (SoftHSM2 has no CKM_ECDSA_SHA384), the
    /// message itself otherwise.
    pub fn token_input(&self, message: &[u8]) -> (SignMechanism, Vec<u8>) {
        let mechanism = sign_mechanism(self.algorithm);
        match self.algorithm {
            SignatureAlgorithm::EcdsaSha256 => (mechanism, sha2::Sha256::digest(message).to_vec()),
            SignatureAlgorithm::EcdsaSha384 => (mechanism, sha2::Sha384::digest(message).to_vec()),
            _ => (mechanism, message.to_vec()),
        }
    }

    /// One C_Sign as the token does it, output as the token returns it (raw r‖s for ECDSA).
    pub fn token_sign(&self, mechanism: SignMechanism, input: &[u8]) -> Result<Vec<u8>> {
        Ok(self.session.sign(&self.key, mechanism, input)?)
    }
}

/// A [`TokenSigner`] without its session (already policy-checked), to bind to another one.
#[derive(Debug, Clone)]
pub struct SignerParts {
    key: TokenKey,
    spki: SubjectPublicKeyInfoOwned,
    algorithm: SignatureAlgorithm,
}

impl SignerParts {
    /// The same key and algorithm, signing on `session` (a sibling of the original's).
    pub fn on<'s, 'm>(self, session: &'s TokenSession<'m>) -> TokenSigner<'s, 'm> {
        TokenSigner {
            session,
            key: self.key,
            spki: self.spki,
            algorithm: self.algorithm,
        }
    }
}

impl CaSigner for TokenSigner<'_, '_> {
    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignError> {
        self.sign_x509(message).map_err(|e| {
            let hint = e.hint();
            SignError::new(e, hint)
        })
    }
}

impl TokenSigner<'_, '_> {
    /// [`CaSigner::sign`] in the CA layer's error: the token's signature in its X.509 form.
    fn sign_x509(&self, message: &[u8]) -> Result<Vec<u8>> {
        let raw_to_der = |raw: Vec<u8>| -> Result<Vec<u8>> {
            // PKCS#11 returns r‖s; X.509 carries a DER Ecdsa-Sig-Value. The verification that
            // follows every signature refuses r or s outside the curve order.
            let scalar_len = match &self.key.public {
                PublicKeyMaterial::Ec { params, .. } if params == EC_PARAMS_P256 => 32,
                _ => 48,
            };
            ecdsa_sig::raw_to_der(&raw, scalar_len).ok_or_else(|| {
                Error::invalid(
                    "the token returned an ECDSA signature of the wrong length",
                    "check the token; nothing was written",
                )
            })
        };
        let (mechanism, input) = self.token_input(message);
        let raw = self.token_sign(mechanism, &input)?;
        match mechanism {
            SignMechanism::EcdsaPrehashed => raw_to_der(raw),
            _ => Ok(raw),
        }
    }
}

/// The token key type of a CLI algorithm name.
pub fn key_spec(alg: crate::x509::algorithm::KeyAlgorithm) -> KeySpec {
    match alg {
        crate::x509::algorithm::KeyAlgorithm::EcdsaP256 => KeySpec::EcP256,
        crate::x509::algorithm::KeyAlgorithm::EcdsaP384 => KeySpec::EcP384,
        crate::x509::algorithm::KeyAlgorithm::Rsa2048 => KeySpec::Rsa(2048),
        crate::x509::algorithm::KeyAlgorithm::Rsa3072 => KeySpec::Rsa(3072),
        crate::x509::algorithm::KeyAlgorithm::Rsa4096 => KeySpec::Rsa(4096),
        crate::x509::algorithm::KeyAlgorithm::Ed25519 => KeySpec::Ed25519,
    }
}

/// How the token is asked to make a signature of `algorithm`.
pub fn sign_mechanism(algorithm: SignatureAlgorithm) -> SignMechanism {
    match algorithm {
        SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384 => {
            SignMechanism::EcdsaPrehashed
        }
        SignatureAlgorithm::RsaPkcs1Sha256 => SignMechanism::RsaPkcs1(256),
        SignatureAlgorithm::RsaPkcs1Sha384 => SignMechanism::RsaPkcs1(384),
        SignatureAlgorithm::RsaPkcs1Sha512 => SignMechanism::RsaPkcs1(512),
        SignatureAlgorithm::RsaPssSha256 => SignMechanism::RsaPss(256),
        SignatureAlgorithm::RsaPssSha384 => SignMechanism::RsaPss(384),
        SignatureAlgorithm::RsaPssSha512 => SignMechanism::RsaPss(512),
        SignatureAlgorithm::Ed25519 => SignMechanism::Eddsa,
    }
}
