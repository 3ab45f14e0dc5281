//! A CA key out of the token and back in, wrapped under a key-encryption key the security
//! officer marks trusted (the M-of-N backup; the shares themselves are the CA layer's).
//!
//! Measured on SoftHSM2 2.6.1: a key with CKA_WRAP_WITH_TRUSTED wraps only under a key with
//! CKA_TRUSTED (else CKR_KEY_NOT_WRAPPABLE); only the SO may set CKA_TRUSTED, and only on a
//! public object; a session object dies with C_Logout. So the key-encryption key is a public
//! token object, created by the SO, used by the user and destroyed at once.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;
use zeroize::Zeroizing;

use super::key::{EC_PARAMS_ED25519, KeySpec, PublicKeyMaterial};
use super::session::{TokenKey, TokenSession};
use super::{Pin, TokenError};

/// The label of the key-encryption key while it exists (one command long).
const KEK_LABEL: &str = "hsmca backup key-encryption key";

/// The wrapping mechanism: AES key wrap with padding (RFC 5649), which wraps any key size and
/// whose integrity check refuses a wrong key-encryption key.
const WRAP: Mechanism<'static> = Mechanism::AesKeyWrapPad;

impl TokenSession<'_> {
    /// Refuses a token that cannot keep a wrapped backup, before anything is created.
    pub fn check_backup_support(&self) -> Result<(), TokenError> {
        let mechanisms = self.mechanisms()?;
        if !mechanisms.contains(&MechanismType::AES_KEY_WRAP_PAD) {
            return Err(TokenError::BackupUnsupported {
                what: "it does not offer CKM_AES_KEY_WRAP_PAD".into(),
            });
        }
        Ok(())
    }

    /// `len` bytes from the token's random number generator.
    pub fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, TokenError> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        self.raw()
            .generate_random_slice(&mut out)
            .map_err(TokenError::during(
                "drawing random bytes (C_GenerateRandom)",
            ))?;
        Ok(out)
    }

    /// As the security officer: destroys a key-encryption key a crashed run left, then creates
    /// one holding `value` (32 bytes), trusted, for this run. Logs the SO out on every path.
    pub fn create_trusted_kek(&self, so_pin: &Pin, value: &[u8]) -> Result<(), TokenError> {
        match self.raw().login(UserType::So, Some(&so_pin.to_auth_pin())) {
            Ok(()) => {}
            Err(CkError::Pkcs11(
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                _,
            )) => return Err(TokenError::SoPinIncorrect),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => return Err(TokenError::PinLocked),
            Err(e) => return Err(TokenError::during("logging in as SO (C_Login)")(e)),
        }
        let created = self.destroy_keks().and_then(|_| {
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                // The SO can create a trusted key only as a public object.
                Attribute::Private(false),
                Attribute::Trusted(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Encrypt(false),
                Attribute::Decrypt(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Label(KEK_LABEL.as_bytes().to_vec()),
                Attribute::Value(value.to_vec()),
            ];
            self.raw()
                .create_object(&template)
                .map(|_| ())
                .map_err(|e| match e {
                    CkError::Pkcs11(
                        rv @ (RvError::AttributeReadOnly
                        | RvError::AttributeTypeInvalid
                        | RvError::TemplateInconsistent),
                        _,
                    ) => TokenError::BackupUnsupported {
                        what: format!(
                            "it refuses a trusted key-encryption key ({})",
                            super::error::ckr_name(&rv)
                        ),
                    },
                    e => TokenError::during("creating the key-encryption key (C_CreateObject)")(e),
                })
        });
        let logout = self
            .raw()
            .logout()
            .map_err(TokenError::during("logging the SO out (C_Logout)"));
        created.and(logout)
    }

    /// Destroys every key-encryption key on the token; how many there were.
    pub fn destroy_keks(&self) -> Result<usize, TokenError> {
        let found = self.keks()?;
        for handle in &found {
            self.raw()
                .destroy_object(*handle)
                .map_err(TokenError::during(
                    "destroying the key-encryption key (C_DestroyObject)",
                ))?;
        }
        Ok(found.len())
    }

    fn keks(&self) -> Result<Vec<ObjectHandle>, TokenError> {
        self.raw()
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(KEK_LABEL.as_bytes().to_vec()),
            ])
            .map_err(TokenError::during(
                "finding the key-encryption key (C_FindObjects)",
            ))
    }

    fn the_kek(&self) -> Result<ObjectHandle, TokenError> {
        match self.keks()?.as_slice() {
            [one] => Ok(*one),
            found => Err(TokenError::BackupUnsupported {
                what: format!(
                    "{} key-encryption keys are on the token where the SO created one",
                    found.len()
                ),
            }),
        }
    }

    /// Wraps `key` under the key-encryption key (C_WrapKey, CKM_AES_KEY_WRAP_PAD).
    pub fn wrap_under_kek(&self, key: &TokenKey) -> Result<Vec<u8>, TokenError> {
        let kek = self.the_kek()?;
        self.raw()
            .wrap_key(&WRAP, kek, key.handle())
            .map_err(TokenError::during("wrapping the CA key (C_WrapKey)"))
    }

    /// Unwraps `wrapped` under the key-encryption key as a CA key in backup form (sensitive,
    /// wrap-with-trusted, not modifiable) and creates its public key object. On any failure
    /// whatever was created is destroyed again.
    pub fn unwrap_under_kek(
        &self,
        wrapped: &[u8],
        public: &PublicKeyMaterial,
        label: &str,
        id: &[u8],
    ) -> Result<ObjectHandle, TokenError> {
        let kek = self.the_kek()?;
        let spec = public.spec().ok_or_else(|| TokenError::UnsupportedKey {
            what: "the wrapped key's public key".into(),
        })?;
        let key_type = match spec {
            KeySpec::EcP256 | KeySpec::EcP384 => KeyType::EC,
            KeySpec::Rsa(_) => KeyType::RSA,
            KeySpec::Ed25519 => KeyType::EC_EDWARDS,
        };
        let template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(true),
            Attribute::WrapWithTrusted(true),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        let private = self.unwrap_unmodifiable(kek, wrapped, &template)?;
        let mut public_template = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(key_type),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        match public {
            PublicKeyMaterial::Ec { params, point } => {
                public_template.push(Attribute::EcParams(params.clone()));
                public_template.push(Attribute::EcPoint(octet_string(point)?));
            }
            PublicKeyMaterial::Ed25519 { point } => {
                public_template.push(Attribute::EcParams(EC_PARAMS_ED25519.to_vec()));
                public_template.push(Attribute::EcPoint(octet_string(point)?));
            }
            PublicKeyMaterial::Rsa { modulus, exponent } => {
                public_template.push(Attribute::Modulus(modulus.clone()));
                public_template.push(Attribute::PublicExponent(exponent.clone()));
            }
        }
        if let Err(e) = self.raw().create_object(&public_template) {
            let _ = self.raw().destroy_object(private);
            return Err(TokenError::during(
                "creating the restored key's public key (C_CreateObject)",
            )(e));
        }
        Ok(private)
    }

    /// C_UnwrapKey, then C_CopyObject to make the key unmodifiable, the first object destroyed.
    /// CKA_MODIFIABLE can be set when an object is created, generated or copied but not
    /// unwrapped (SoftHSM2 2.6.1 refuses it at C_UnwrapKey with CKR_ATTRIBUTE_READ_ONLY and
    /// then leaves a broken object behind, so it is never asked there). The copy stays
    /// copyable: SoftHSM2 takes no CKA_COPYABLE in C_CopyObject, and an unmodifiable object
    /// takes no C_SetAttributeValue. A copy keeps CKA_SENSITIVE and CKA_WRAP_WITH_TRUSTED.
    fn unwrap_unmodifiable(
        &self,
        kek: ObjectHandle,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<ObjectHandle, TokenError> {
        let first = self
            .raw()
            .unwrap_key(&WRAP, kek, wrapped, template)
            .map_err(TokenError::during("unwrapping the CA key (C_UnwrapKey)"))?;
        let copy = self
            .raw()
            .copy_object(first, &[Attribute::Modifiable(false)])
            .map_err(TokenError::during(
                "making the restored key unmodifiable (C_CopyObject)",
            ));
        let destroyed = self.raw().destroy_object(first).map_err(TokenError::during(
            "destroying the modifiable copy (C_DestroyObject)",
        ));
        let copy = copy?;
        if let Err(e) = destroyed {
            let _ = self.raw().destroy_object(copy);
            return Err(e);
        }
        Ok(copy)
    }

    /// Destroys the private and public objects labelled `label` with id `id` (a restore that
    /// failed its checks leaves nothing behind).
    pub fn destroy_key_pair(&self, label: &str, id: &[u8]) -> Result<(), TokenError> {
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            let found = self
                .raw()
                .find_objects(&[
                    Attribute::Class(class),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Id(id.to_vec()),
                ])
                .map_err(TokenError::during(
                    "finding the restored key (C_FindObjects)",
                ))?;
            for handle in found {
                self.raw()
                    .destroy_object(handle)
                    .map_err(TokenError::during(
                        "destroying the restored key (C_DestroyObject)",
                    ))?;
            }
        }
        Ok(())
    }

    /// Whether the token holds a key object labelled `label` or with id `id`.
    pub fn find_key_pair_objects(&self, label: &str, id: &[u8]) -> Result<bool, TokenError> {
        for attr in [
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ] {
            let found = self
                .raw()
                .find_objects(&[attr])
                .map_err(TokenError::during(
                    "looking for an existing key (C_FindObjects)",
                ))?;
            if !found.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// `point` as CKA_EC_POINT: a DER OCTET STRING.
fn octet_string(point: &[u8]) -> Result<Vec<u8>, TokenError> {
    use der::Encode;
    der::asn1::OctetStringRef::new(point)
        .and_then(|o| o.to_der())
        .map_err(|e| TokenError::UnsupportedKey {
            what: format!("a public point that does not encode ({e})"),
        })
}
