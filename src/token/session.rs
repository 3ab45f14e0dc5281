//! A session on one token: login, key lookup and policy check, key generation, signing.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use super::key::{
    AttrValue, EC_PARAMS_ED25519, EC_PARAMS_P256, EC_PARAMS_P384, KeyAttributes, KeyInfo, KeySpec,
    POLICY_ATTRIBUTES, PublicKeyMaterial, SignMechanism,
};
use super::module::{Module, TokenSelector};
use super::{Pin, Pkcs11Uri, TokenError};

/// An open session on one token. It borrows the module, so it closes before C_Finalize.
pub struct TokenSession<'m> {
    module: &'m Module,
    slot: Slot,
    session: Session,
    label: String,
    logged_in: bool,
    /// The token's mechanisms, once a signature needed to know them.
    mechanism_list: std::sync::OnceLock<Vec<MechanismType>>,
}

/// A CA private key on the token whose attributes passed the CA key policy.
#[derive(Debug, Clone)]
pub struct TokenKey {
    handle: ObjectHandle,
    /// The public key.
    pub public: PublicKeyMaterial,
    /// A URI that names exactly this key.
    pub uri: Pkcs11Uri,
}

impl TokenKey {
    /// The private key's object handle in this login.
    pub(super) fn handle(&self) -> ObjectHandle {
        self.handle
    }
}

impl<'m> TokenSession<'m> {
    /// Opens a session on the one token matching `sel`; read-write only when generating keys.
    pub fn open(
        module: &'m Module,
        sel: &TokenSelector,
        read_write: bool,
    ) -> Result<TokenSession<'m>, TokenError> {
        let slot = module.find_slot(sel)?;
        let ctx = module.ctx();
        let session = if read_write {
            ctx.open_rw_session(slot)
        } else {
            ctx.open_ro_session(slot)
        }
        .map_err(TokenError::during("opening a session (C_OpenSession)"))?;
        let label = module.token_info(slot)?.label;
        Ok(TokenSession {
            module,
            slot,
            session,
            label,
            logged_in: false,
            mechanism_list: std::sync::OnceLock::new(),
        })
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The cryptoki session, for the other files of the token layer.
    pub(super) fn raw(&self) -> &Session {
        &self.session
    }

    /// A second read-only session on the same token, to sign on another thread. PKCS#11 logs
    /// the application in, not a session, so it shares this session's login (no C_Login); it
    /// is closed when dropped and never logs out.
    pub fn sibling(&self) -> Result<TokenSession<'m>, TokenError> {
        let session = self
            .module
            .ctx()
            .open_ro_session(self.slot)
            .map_err(TokenError::during(
                "opening another session (C_OpenSession)",
            ))?;
        Ok(TokenSession {
            module: self.module,
            slot: self.slot,
            session,
            label: self.label.clone(),
            logged_in: false,
            mechanism_list: std::sync::OnceLock::new(),
        })
    }

    /// What of the token's information could not be read and was ignored, if anything.
    pub fn info_note(&self) -> Option<String> {
        self.module.token_info(self.slot).ok().and_then(|i| i.note)
    }

    /// Logs in once with `pin`. A locked PIN is refused before trying; nothing is ever retried.
    /// Returns warnings about the PIN counter to show the operator.
    pub fn login(&mut self, pin: &Pin) -> Result<Vec<String>, TokenError> {
        let info = self.module.token_info(self.slot)?;
        if info.user_pin_locked() {
            return Err(TokenError::PinLocked);
        }
        let mut warnings = Vec::new();
        if info.user_pin_final_try() {
            warnings.push(
                "the token reports the user PIN on its FINAL try: one more wrong PIN locks it"
                    .to_string(),
            );
        } else if info.user_pin_count_low() {
            warnings.push(
                "the token reports failed user PIN attempts (count low): the PIN may lock soon"
                    .to_string(),
            );
        }
        match self.session.login(UserType::User, Some(&pin.to_auth_pin())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                _,
            )) => return Err(TokenError::PinIncorrect),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => return Err(TokenError::PinLocked),
            Err(e) => return Err(TokenError::during("logging in (C_Login)")(e)),
        }
        self.logged_in = true;
        Ok(warnings)
    }

    /// The mechanisms of this token.
    pub fn mechanisms(&self) -> Result<Vec<MechanismType>, TokenError> {
        self.module.mechanisms(self.slot)
    }

    /// Every private key on the token (needs login for private objects).
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>, TokenError> {
        let handles = self
            .session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .map_err(TokenError::during("searching keys (C_FindObjects)"))?;
        handles.into_iter().map(|h| self.key_info(h)).collect()
    }

    /// The one private key `uri` names, checked against the CA key policy.
    pub fn open_key(&self, uri: &Pkcs11Uri) -> Result<TokenKey, TokenError> {
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(TokenError::InvalidUri {
                reason: "it names no key (object= or id=)".into(),
            });
        }
        let handles = self
            .session
            .find_objects(&template)
            .map_err(TokenError::during("searching the key (C_FindObjects)"))?;
        let handle = match handles.as_slice() {
            [one] => *one,
            [] => {
                return Err(TokenError::KeyNotFound {
                    uri: uri.to_string(),
                });
            }
            many => {
                return Err(TokenError::KeyAmbiguous {
                    uri: uri.to_string(),
                    count: many.len(),
                });
            }
        };
        let info = self.key_info(handle)?;
        self.key_from_info(handle, info)
    }

    fn key_from_info(&self, handle: ObjectHandle, info: KeyInfo) -> Result<TokenKey, TokenError> {
        let uri = Pkcs11Uri {
            token: Some(self.label.clone()),
            object: Some(info.label.clone()),
            id: (!info.id.is_empty()).then(|| info.id.clone()),
            object_type: Some("private".into()),
            ..Pkcs11Uri::default()
        };
        if let Some(violations) = info.attributes.describe_violations() {
            return Err(TokenError::KeyAttribute {
                uri: uri.to_string(),
                violations,
            });
        }
        let public = info
            .public
            .clone()
            .ok_or_else(|| TokenError::PublicKeyMissing {
                uri: uri.to_string(),
            })?;
        Ok(TokenKey {
            handle,
            public,
            uri,
        })
    }

    /// Label, id, public key and security attributes of a private key.
    fn key_info(&self, handle: ObjectHandle) -> Result<KeyInfo, TokenError> {
        let during = TokenError::during;
        let attrs = self
            .session
            .get_attributes(handle, &[AttributeType::Label, AttributeType::Id])
            .map_err(during("reading key attributes (C_GetAttributeValue)"))?;
        let mut label = String::new();
        let mut id = Vec::new();
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(i) => id = i,
                _ => {}
            }
        }
        let types: Vec<AttributeType> = POLICY_ATTRIBUTES.iter().map(|n| attr_type(n)).collect();
        let values = self
            .session
            .get_attributes(handle, &types)
            .map_err(during("reading key attributes (C_GetAttributeValue)"))?;
        let attributes = KeyAttributes(
            POLICY_ATTRIBUTES
                .iter()
                .map(|name| {
                    let value = values
                        .iter()
                        .find_map(|a| bool_of(a, attr_type(name)))
                        .map(|b| if b { AttrValue::True } else { AttrValue::False })
                        .unwrap_or(AttrValue::Absent);
                    (*name, value)
                })
                .collect(),
        );
        let public = self.public_key_for(&label, &id)?;
        Ok(KeyInfo {
            label,
            id,
            public,
            attributes,
        })
    }

    /// The values of the private data objects (CKO_DATA) whose CKA_APPLICATION is `name`.
    /// Private objects need the login.
    pub fn read_data(&self, name: &str) -> Result<Vec<Vec<u8>>, TokenError> {
        self.find_data(name)?
            .into_iter()
            .map(|handle| {
                let attrs = self
                    .session
                    .get_attributes(handle, &[AttributeType::Value])
                    .map_err(TokenError::during(
                        "reading a data object (C_GetAttributeValue)",
                    ))?;
                Ok(attrs
                    .into_iter()
                    .find_map(|a| match a {
                        Attribute::Value(v) => Some(v),
                        _ => None,
                    })
                    .unwrap_or_default())
            })
            .collect()
    }

    /// Replaces the private data objects named `name` by one holding `value`: the new object
    /// is created first (private, never modified: tokens such as SoftHSM2 refuse to change a
    /// data object's value), then the old ones are destroyed, so a crash in between leaves
    /// both, never none. Needs a read-write session.
    pub fn replace_data(&self, name: &str, value: &[u8]) -> Result<(), TokenError> {
        let old = self.find_data(name)?;
        self.session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Modifiable(false),
                Attribute::Label(name.as_bytes().to_vec()),
                Attribute::Application(name.as_bytes().to_vec()),
                Attribute::Value(value.to_vec()),
            ])
            .map_err(TokenError::during(
                "creating a data object (C_CreateObject)",
            ))?;
        for handle in old {
            self.session
                .destroy_object(handle)
                .map_err(TokenError::during(
                    "removing an older data object (C_DestroyObject)",
                ))?;
        }
        Ok(())
    }

    /// The private data objects whose CKA_APPLICATION is `name`.
    fn find_data(&self, name: &str) -> Result<Vec<ObjectHandle>, TokenError> {
        self.session
            .find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Application(name.as_bytes().to_vec()),
            ])
            .map_err(TokenError::during("searching data objects (C_FindObjects)"))
    }

    /// The public key object named by `label` (and `id`, where given). Public objects need no
    /// login, so a ceremony plan can check that a key exists, or not yet, before any PIN.
    pub fn find_public_key(
        &self,
        label: &str,
        id: Option<&[u8]>,
    ) -> Result<Option<PublicKeyMaterial>, TokenError> {
        let mut template = vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        if let Some(id) = id {
            template.push(Attribute::Id(id.to_vec()));
        }
        let found = self
            .session
            .find_objects(&template)
            .map_err(TokenError::during("searching public keys (C_FindObjects)"))?;
        match found.as_slice() {
            [] => Ok(None),
            [_] => self.public_key_for(label, id.unwrap_or_default()),
            many => Err(TokenError::KeyAmbiguous {
                uri: format!("object={label}"),
                count: many.len(),
            }),
        }
    }

    /// The public key object with the same CKA_ID (or, without an id, the same label).
    fn public_key_for(
        &self,
        label: &str,
        id: &[u8],
    ) -> Result<Option<PublicKeyMaterial>, TokenError> {
        let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
        if id.is_empty() {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        } else {
            template.push(Attribute::Id(id.to_vec()));
        }
        let handles = self
            .session
            .find_objects(&template)
            .map_err(TokenError::during(
                "searching the public key (C_FindObjects)",
            ))?;
        let [handle] = handles.as_slice() else {
            return Ok(None);
        };
        let attrs = self
            .session
            .get_attributes(
                *handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                ],
            )
            .map_err(TokenError::during(
                "reading the public key (C_GetAttributeValue)",
            ))?;
        let (mut kt, mut params, mut point, mut modulus, mut exponent) =
            (None, None, None, None, None);
        for a in attrs {
            match a {
                Attribute::KeyType(k) => kt = Some(k),
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                Attribute::Modulus(m) => modulus = Some(m),
                Attribute::PublicExponent(e) => exponent = Some(e),
                _ => {}
            }
        }
        let unsupported = |what: String| TokenError::UnsupportedKey { what };
        Ok(Some(match kt {
            Some(KeyType::RSA) => PublicKeyMaterial::Rsa {
                modulus: modulus.ok_or_else(|| unsupported("RSA key without modulus".into()))?,
                exponent: exponent.ok_or_else(|| unsupported("RSA key without exponent".into()))?,
            },
            Some(KeyType::EC) => {
                let params =
                    params.ok_or_else(|| unsupported("EC key without CKA_EC_PARAMS".into()))?;
                let point = unwrap_octet_string(
                    &point.ok_or_else(|| unsupported("EC key without CKA_EC_POINT".into()))?,
                );
                PublicKeyMaterial::Ec { params, point }
            }
            Some(KeyType::EC_EDWARDS) => {
                let point = unwrap_octet_string(
                    &point.ok_or_else(|| unsupported("EdDSA key without CKA_EC_POINT".into()))?,
                );
                if point.len() != 32 {
                    return Err(unsupported(format!(
                        "EdDSA key of {} bytes (only Ed25519 is supported)",
                        point.len()
                    )));
                }
                PublicKeyMaterial::Ed25519 { point }
            }
            other => {
                return Err(unsupported(format!(
                    "key type {}",
                    other
                        .map(|k| k.to_string())
                        .unwrap_or_else(|| "unknown".into())
                )));
            }
        }))
    }

    /// Generates a CA key pair on the token with every security attribute set explicitly:
    /// never extractable, or with `backup` extractable only wrapped under a trusted key.
    /// Refuses a label or id already present. The caller verifies the result before use.
    pub fn generate(
        &self,
        spec: KeySpec,
        label: &str,
        id: &[u8],
        backup: bool,
    ) -> Result<(TokenKey, Option<String>), TokenError> {
        let mechanisms = self.mechanisms()?;
        if !spec.supported_by(&mechanisms) {
            let missing = if mechanisms.contains(&spec.generation_mechanism()) {
                spec.signing_mechanism()
            } else {
                spec.generation_mechanism()
            };
            return Err(TokenError::Unsupported {
                what: spec.name(),
                mechanism: missing.to_string(),
            });
        }
        for (what, attr) in [
            (
                format!("label \"{label}\""),
                Attribute::Label(label.as_bytes().to_vec()),
            ),
            (
                format!("id {}", hex::encode(id)),
                Attribute::Id(id.to_vec()),
            ),
        ] {
            let found = self
                .session
                .find_objects(&[attr])
                .map_err(TokenError::during(
                    "checking for an existing key (C_FindObjects)",
                ))?;
            if !found.is_empty() {
                return Err(TokenError::KeyExists { what });
            }
        }
        // What the CA key policy needs, and nothing the token may reject for no gain: the
        // public key carries no usage flags (hsmca verifies on the host; tpm2-pkcs11 refuses
        // flags that do not match what it derives from the private key's usage).
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Private(false),
        ];
        // SoftHSM2's defaults for a minimal template are a non-sensitive, extractable key that
        // can decrypt and unwrap: every attribute the policy reads is set here on purpose.
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(backup),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
        ];
        if backup {
            // The only way out: wrapped under a key only the security officer can mark trusted.
            private.push(Attribute::WrapWithTrusted(true));
        }
        // Restrictions a token may not know (CKA_COPYABLE is from Cryptoki 2.40): left out of
        // a module older than that, and dropped if the token refuses the template. Whatever
        // the token then sets, the read-back check below requires the policy's values.
        let mut optional = vec![
            Attribute::Derive(false),
            Attribute::Modifiable(false),
            Attribute::SignRecover(false),
        ];
        let version = self.module.cryptoki_version()?;
        if version >= (2, 40) {
            optional.push(Attribute::Copyable(false));
        }
        let mechanism = match spec {
            KeySpec::EcP256 | KeySpec::EcP384 => {
                let params = if spec == KeySpec::EcP256 {
                    EC_PARAMS_P256
                } else {
                    EC_PARAMS_P384
                };
                public.push(Attribute::EcParams(params.to_vec()));
                Mechanism::EccKeyPairGen
            }
            KeySpec::Rsa(bits) => {
                self.check_key_size(spec, bits)?;
                public.push(Attribute::ModulusBits(u64::from(bits).into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
            KeySpec::Ed25519 => {
                public.push(Attribute::EcParams(EC_PARAMS_ED25519.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
        };
        let with_optional: Vec<Attribute> = private.iter().chain(&optional).cloned().collect();
        let mut note = None;
        let generated = match self
            .session
            .generate_key_pair(&mechanism, &public, &with_optional)
        {
            Err(CkError::Pkcs11(
                rv @ (RvError::AttributeTypeInvalid
                | RvError::TemplateInconsistent
                | RvError::AttributeValueInvalid),
                _,
            )) if !optional.is_empty() => {
                let left_out: Vec<String> = optional
                    .iter()
                    .map(|a| a.attribute_type().to_string())
                    .collect();
                note = Some(format!(
                    "the token refused the key template ({}); generated without the optional restrictions {} (Cryptoki {}.{} module); the key's attributes are checked as strictly as ever",
                    crate::token::error::ckr_name(&rv),
                    left_out.join(", "),
                    version.0,
                    version.1
                ));
                self.session
                    .generate_key_pair(&mechanism, &public, &private)
            }
            other => other,
        };
        let (_, private_handle) = generated.map_err(TokenError::during(format!(
            "generating an {} key pair (C_GenerateKeyPair)",
            spec.name()
        )))?;
        self.key_info(private_handle)
            .and_then(|info| self.key_from_info(private_handle, info))
            .map(|key| (key, note))
            .map_err(|e| TokenError::AfterGeneration {
                label: label.to_string(),
                id: hex::encode(id),
                source: Box::new(e),
            })
    }

    /// Refuses a key size the token's mechanism info rules out, before asking for it.
    fn check_key_size(&self, spec: KeySpec, bits: u32) -> Result<(), TokenError> {
        let Some((min, max)) = self
            .module
            .key_sizes(self.slot, spec.generation_mechanism())
        else {
            return Ok(());
        };
        let bits = bits as usize;
        if bits < min || (max > 0 && bits > max) {
            return Err(TokenError::KeySize {
                what: spec.name(),
                min,
                max,
            });
        }
        Ok(())
    }

    /// Signs `data` with `key`. For [`SignMechanism::EcdsaPrehashed`] `data` is the digest and
    /// the result raw r‖s; otherwise the token hashes and returns the final signature.
    pub fn sign(
        &self,
        key: &TokenKey,
        mechanism: SignMechanism,
        data: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let pss = |hash: MechanismType, mgf: PkcsMgfType, len: u64| PkcsPssParams {
            hash_alg: hash,
            mgf,
            s_len: len.into(),
        };
        if let SignMechanism::RsaPkcs1(bits) = mechanism
            && !self.offers(hashing_rsa_pkcs(bits))?
            && self.offers(MechanismType::RSA_PKCS)?
        {
            // The token hashes nothing: CKM_RSA_PKCS pads and signs the DigestInfo given.
            return self.sign_once(&Mechanism::RsaPkcs, key, &digest_info(bits, data)?);
        }
        if let SignMechanism::RsaPss(bits) = mechanism
            && !self.offers(hashing_rsa_pss(bits))?
            && self.offers(MechanismType::RSA_PKCS_PSS)?
        {
            // The token hashes nothing: CKM_RSA_PKCS_PSS signs the digest given.
            use sha2::Digest;
            let (hash, mgf, len, digest) = match bits {
                384 => (
                    MechanismType::SHA384,
                    PkcsMgfType::MGF1_SHA384,
                    48,
                    sha2::Sha384::digest(data).to_vec(),
                ),
                512 => (
                    MechanismType::SHA512,
                    PkcsMgfType::MGF1_SHA512,
                    64,
                    sha2::Sha512::digest(data).to_vec(),
                ),
                _ => (
                    MechanismType::SHA256,
                    PkcsMgfType::MGF1_SHA256,
                    32,
                    sha2::Sha256::digest(data).to_vec(),
                ),
            };
            return self.sign_once(&Mechanism::RsaPkcsPss(pss(hash, mgf, len)), key, &digest);
        }
        let mech = match mechanism {
            SignMechanism::EcdsaPrehashed => Mechanism::Ecdsa,
            SignMechanism::RsaPkcs1(256) => Mechanism::Sha256RsaPkcs,
            SignMechanism::RsaPkcs1(384) => Mechanism::Sha384RsaPkcs,
            SignMechanism::RsaPkcs1(512) => Mechanism::Sha512RsaPkcs,
            SignMechanism::RsaPss(256) => Mechanism::Sha256RsaPkcsPss(pss(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                32,
            )),
            SignMechanism::RsaPss(384) => Mechanism::Sha384RsaPkcsPss(pss(
                MechanismType::SHA384,
                PkcsMgfType::MGF1_SHA384,
                48,
            )),
            SignMechanism::RsaPss(512) => Mechanism::Sha512RsaPkcsPss(pss(
                MechanismType::SHA512,
                PkcsMgfType::MGF1_SHA512,
                64,
            )),
            SignMechanism::Eddsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            SignMechanism::RsaPkcs1(bits) | SignMechanism::RsaPss(bits) => {
                return Err(TokenError::Unsupported {
                    what: format!("RSA with SHA-{bits}"),
                    mechanism: "CKM_SHA*_RSA_PKCS".into(),
                });
            }
        };
        self.sign_once(&mech, key, data)
    }

    /// C_SignInit, then one C_Sign into a buffer of the signature's size.
    fn sign_once(
        &self,
        mech: &Mechanism<'_>,
        key: &TokenKey,
        data: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let Some(direct) = self.module.direct_sign()? else {
            return self
                .session
                .sign(mech, key.handle, data)
                .map_err(TokenError::during("signing (C_Sign)"));
        };
        self.session
            .sign_init(mech, key.handle)
            .map_err(TokenError::during("signing (C_SignInit)"))?;
        direct
            .sign(self.session.handle(), data, key.public.signature_len())
            .map_err(TokenError::during("signing (C_Sign)"))
    }
}

impl TokenSession<'_> {
    /// Whether the token offers `mechanism` (its list read once per session).
    fn offers(&self, mechanism: MechanismType) -> Result<bool, TokenError> {
        if let Some(list) = self.mechanism_list.get() {
            return Ok(list.contains(&mechanism));
        }
        let list = self.mechanisms()?;
        let offered = list.contains(&mechanism);
        let _ = self.mechanism_list.set(list);
        Ok(offered)
    }
}

/// The CKM_SHAx_RSA_PKCS mechanism for a hash size.
fn hashing_rsa_pkcs(bits: u16) -> MechanismType {
    match bits {
        384 => MechanismType::SHA384_RSA_PKCS,
        512 => MechanismType::SHA512_RSA_PKCS,
        _ => MechanismType::SHA256_RSA_PKCS,
    }
}

/// The CKM_SHAx_RSA_PKCS_PSS mechanism for a hash size.
fn hashing_rsa_pss(bits: u16) -> MechanismType {
    match bits {
        384 => MechanismType::SHA384_RSA_PKCS_PSS,
        512 => MechanismType::SHA512_RSA_PKCS_PSS,
        _ => MechanismType::SHA256_RSA_PKCS_PSS,
    }
}

/// PKCS#1 v1.5's DigestInfo (RFC 8017 §9.2) of `data` hashed with SHA-`bits`.
fn digest_info(bits: u16, data: &[u8]) -> Result<Vec<u8>, TokenError> {
    use der::Encode;
    use sha2::Digest;
    #[derive(der::Sequence)]
    struct DigestInfo {
        digest_algorithm: spki::AlgorithmIdentifierOwned,
        digest: der::asn1::OctetString,
    }
    let (oid, digest) = match bits {
        256 => (
            const_oid::db::rfc5912::ID_SHA_256,
            sha2::Sha256::digest(data).to_vec(),
        ),
        384 => (
            const_oid::db::rfc5912::ID_SHA_384,
            sha2::Sha384::digest(data).to_vec(),
        ),
        512 => (
            const_oid::db::rfc5912::ID_SHA_512,
            sha2::Sha512::digest(data).to_vec(),
        ),
        _ => {
            return Err(TokenError::Unsupported {
                what: format!("RSA with SHA-{bits}"),
                mechanism: "CKM_RSA_PKCS".into(),
            });
        }
    };
    let encoding = |e: der::Error| TokenError::Direct {
        during: "encoding a DigestInfo".into(),
        why: e.to_string(),
    };
    DigestInfo {
        digest_algorithm: spki::AlgorithmIdentifierOwned {
            oid,
            parameters: Some(der::Any::null()),
        },
        digest: der::asn1::OctetString::new(digest).map_err(encoding)?,
    }
    .to_der()
    .map_err(encoding)
}

impl Drop for TokenSession<'_> {
    fn drop(&mut self) {
        if self.logged_in {
            // Best effort: C_CloseSession (Session's own drop) and C_Finalize end it anyway.
            let _ = self.session.logout();
        }
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the point on most tokens, raw on some.
fn unwrap_octet_string(value: &[u8]) -> Vec<u8> {
    use der::Decode;
    match der::asn1::OctetString::from_der(value) {
        Ok(os) => os.as_bytes().to_vec(),
        Err(_) => value.to_vec(),
    }
}

fn attr_type(name: &str) -> AttributeType {
    match name {
        "CKA_TOKEN" => AttributeType::Token,
        "CKA_PRIVATE" => AttributeType::Private,
        "CKA_SENSITIVE" => AttributeType::Sensitive,
        "CKA_SIGN" => AttributeType::Sign,
        "CKA_ALWAYS_SENSITIVE" => AttributeType::AlwaysSensitive,
        "CKA_NEVER_EXTRACTABLE" => AttributeType::NeverExtractable,
        "CKA_LOCAL" => AttributeType::Local,
        "CKA_EXTRACTABLE" => AttributeType::Extractable,
        "CKA_DECRYPT" => AttributeType::Decrypt,
        "CKA_UNWRAP" => AttributeType::Unwrap,
        "CKA_DERIVE" => AttributeType::Derive,
        "CKA_MODIFIABLE" => AttributeType::Modifiable,
        "CKA_WRAP_WITH_TRUSTED" => AttributeType::WrapWithTrusted,
        _ => AttributeType::Copyable,
    }
}

fn bool_of(a: &Attribute, t: AttributeType) -> Option<bool> {
    let (at, v) = match a {
        Attribute::Token(v) => (AttributeType::Token, v),
        Attribute::Private(v) => (AttributeType::Private, v),
        Attribute::Sensitive(v) => (AttributeType::Sensitive, v),
        Attribute::Sign(v) => (AttributeType::Sign, v),
        Attribute::AlwaysSensitive(v) => (AttributeType::AlwaysSensitive, v),
        Attribute::NeverExtractable(v) => (AttributeType::NeverExtractable, v),
        Attribute::Local(v) => (AttributeType::Local, v),
        Attribute::Extractable(v) => (AttributeType::Extractable, v),
        Attribute::Decrypt(v) => (AttributeType::Decrypt, v),
        Attribute::Unwrap(v) => (AttributeType::Unwrap, v),
        Attribute::Derive(v) => (AttributeType::Derive, v),
        Attribute::Modifiable(v) => (AttributeType::Modifiable, v),
        Attribute::Copyable(v) => (AttributeType::Copyable, v),
        Attribute::WrapWithTrusted(v) => (AttributeType::WrapWithTrusted, v),
        _ => return None,
    };
    (at == t).then_some(*v)
}
