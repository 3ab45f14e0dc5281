//! Loading a PKCS#11 module and finding tokens by label and serial (never by slot index).

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

use super::TokenError;
use super::info::TokenFields;
use super::key::KeySpec;

/// Where SoftHSM2 usually lives, tried in order when no module is named.
pub const DEFAULT_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

/// Where p11-kit's module registrations live (`p11-kit list-modules`), user's first.
const P11KIT_CONFIG_DIRS: &[&str] = &["/etc/pkcs11/modules", "/usr/share/p11-kit/modules"];

/// Where p11-kit looks for a registration's module given without a path.
const P11KIT_MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
];

/// The module p11-kit registers under `name` (the registration file's name without
/// `.module`, as `p11-kit list-modules` shows it), if any.
pub fn registered_module(name: &str) -> Option<PathBuf> {
    let module = P11KIT_CONFIG_DIRS.iter().find_map(|dir| {
        let text = std::fs::read_to_string(Path::new(dir).join(format!("{name}.module"))).ok()?;
        text.lines().find_map(|l| {
            let value = l.trim().strip_prefix("module:")?.trim();
            (!value.is_empty()).then(|| PathBuf::from(value))
        })
    })?;
    if module.is_absolute() {
        return Some(module);
    }
    P11KIT_MODULE_DIRS
        .iter()
        .map(|d| Path::new(d).join(&module))
        .find(|p| p.exists())
}

/// The names p11-kit registers modules under.
pub fn registered_names() -> Vec<String> {
    let mut names: Vec<String> = P11KIT_CONFIG_DIRS
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".module")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// An initialised PKCS#11 module; C_Finalize runs when it is dropped, on every exit path.
pub struct Module {
    ctx: Pkcs11,
    path: PathBuf,
    /// Token information read this command, by slot id: one C_GetTokenInfo per token (a
    /// network HSM pays a round trip per call).
    infos: std::sync::Mutex<Vec<(u64, TokenFields)>>,
    /// The module's C_Sign, called directly (one call per signature), once loaded.
    direct_sign: std::sync::OnceLock<Option<super::info::DirectSign>>,
    /// Serialises the first load of `direct_sign` (its error is the command's).
    direct_sign_load: std::sync::Mutex<()>,
}

/// What `token list` shows of one token.
#[derive(Debug, Clone)]
pub struct TokenSummary {
    /// Slot id now (informational: SoftHSM2 renumbers slots).
    pub slot_id: u64,
    /// CKA_LABEL of the token.
    pub label: String,
    /// Serial number.
    pub serial: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Flags worth knowing, by name.
    pub flags: Vec<&'static str>,
    /// The key types the token can generate and sign with.
    pub can_generate: Vec<KeySpec>,
    /// What of the token's information could not be read, if anything.
    pub note: Option<String>,
    /// Per key type: how the token generates and signs with it, or why it cannot.
    pub support: Vec<(KeySpec, Result<String, String>)>,
}

/// How a token offering `mechanisms` generates and signs with `spec` keys, or why it cannot
/// (`rsa_sizes`: its C_GetMechanismInfo for RSA key-pair generation).
fn support(
    spec: KeySpec,
    mechanisms: &[MechanismType],
    rsa_sizes: Option<(usize, usize)>,
) -> Result<String, String> {
    use super::key::SignMechanism;
    let has = |m: &MechanismType| mechanisms.contains(m);
    let generation = spec.generation_mechanism();
    if !has(&generation) {
        return Err(format!("no {generation}"));
    }
    if let (KeySpec::Rsa(bits), Some((min, max))) = (spec, rsa_sizes) {
        let b = bits as usize;
        if b < min || (max > 0 && b > max) {
            return Err(format!("{generation} makes {min} to {max} bits"));
        }
    }
    let first = |m: SignMechanism| m.mechanisms().into_iter().find(|x| has(x));
    let signing = match spec {
        KeySpec::EcP256 | KeySpec::EcP384 => {
            first(SignMechanism::EcdsaPrehashed).map(|m| format!("{m} (hashed on the host)"))
        }
        KeySpec::Ed25519 => first(SignMechanism::Eddsa).map(|m| m.to_string()),
        KeySpec::Rsa(_) => first(SignMechanism::RsaPkcs1(256)).map(|m| {
            let pkcs1 = if m == MechanismType::RSA_PKCS {
                format!("{m} over a DigestInfo built on the host")
            } else {
                m.to_string()
            };
            let pss = first(SignMechanism::RsaPss(256))
                .map_or("no PSS".to_string(), |p| format!("PSS {p}"));
            format!("{pkcs1}; {pss}")
        }),
    };
    match signing {
        Some(signing) => Ok(format!("generate {generation}, sign {signing}")),
        None => Err(format!(
            "no signing mechanism ({})",
            match spec {
                KeySpec::Rsa(_) => "CKM_SHA256_RSA_PKCS or CKM_RSA_PKCS".to_string(),
                other => other.signing_mechanism().to_string(),
            }
        )),
    }
}

/// Which token to use: by label, optionally narrowed by serial.
#[derive(Debug, Clone, Default)]
pub struct TokenSelector {
    /// Token label.
    pub label: Option<String>,
    /// Token serial number.
    pub serial: Option<String>,
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.label, &self.serial) {
            (Some(l), Some(s)) => write!(f, "with label \"{l}\" and serial \"{s}\""),
            (Some(l), None) => write!(f, "with label \"{l}\""),
            (None, Some(s)) => write!(f, "with serial \"{s}\""),
            (None, None) => write!(f, "(any)"),
        }
    }
}

impl Module {
    /// Loads and initialises `path` (a file, or the name of a module p11-kit registers, as RFC
    /// 7512's `module-name`), or the first usual SoftHSM2 path that exists.
    pub fn load(path: Option<&Path>) -> Result<Module, TokenError> {
        let path = match path {
            // A bare name that is no file here: a p11-kit registration.
            Some(p) if p.components().count() == 1 && !p.exists() => {
                let name = p.to_string_lossy();
                registered_module(&name).ok_or_else(|| TokenError::ModuleNotRegistered {
                    name: name.to_string(),
                    registered: registered_names(),
                })?
            }
            Some(p) => p.to_path_buf(),
            None => DEFAULT_MODULES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or_else(|| TokenError::ModuleNotFound {
                    tried: DEFAULT_MODULES.iter().map(PathBuf::from).collect(),
                })?,
        };
        if !path.exists() {
            return Err(TokenError::ModuleNotFound { tried: vec![path] });
        }
        let ctx = Pkcs11::new(&path).map_err(|source| TokenError::ModuleLoad {
            path: path.clone(),
            source,
        })?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(TokenError::during(
                "initialising the PKCS#11 module (C_Initialize)",
            ))?;
        Ok(Module {
            ctx,
            path,
            infos: std::sync::Mutex::new(Vec::new()),
            direct_sign: std::sync::OnceLock::new(),
            direct_sign_load: std::sync::Mutex::new(()),
        })
    }

    /// The module's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn ctx(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// The module's C_Sign for a single call per signature (`None`: cryptoki's two calls).
    pub(crate) fn direct_sign(&self) -> Result<Option<&super::info::DirectSign>, TokenError> {
        if let Some(loaded) = self.direct_sign.get() {
            return Ok(loaded.as_ref());
        }
        let _one = self
            .direct_sign_load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(loaded) = self.direct_sign.get() {
            return Ok(loaded.as_ref());
        }
        let loaded = super::info::DirectSign::load(&self.path)
            .map_err(TokenError::during("signing (C_GetFunctionList)"))?;
        Ok(self.direct_sign.get_or_init(|| loaded).as_ref())
    }

    /// The token information of `slot`, read once per command.
    pub(crate) fn token_info(&self, slot: Slot) -> Result<TokenFields, TokenError> {
        let mut infos = self
            .infos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, info)) = infos.iter().find(|(id, _)| *id == slot.id()) {
            return Ok(info.clone());
        }
        let info = TokenFields::read(&self.ctx, &self.path, slot)?;
        infos.push((slot.id(), info.clone()));
        Ok(info)
    }

    /// Every token present, with its flags and the key types it can generate.
    pub fn tokens(&self) -> Result<Vec<TokenSummary>, TokenError> {
        let ctx = self.ctx();
        let slots = ctx
            .get_slots_with_token()
            .map_err(TokenError::during("listing slots (C_GetSlotList)"))?;
        let mut out = Vec::new();
        for slot in slots {
            let info = self.token_info(slot)?;
            let flags = info.flag_names();
            let mechanisms = ctx.get_mechanism_list(slot).map_err(TokenError::during(
                "listing mechanisms (C_GetMechanismList)",
            ))?;
            // A size the mechanism info rules out is not offered (tpm2-pkcs11: RSA up to 3072).
            let rsa_sizes = self.key_sizes(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN);
            let support: Vec<(KeySpec, Result<String, String>)> = KeySpec::ALL
                .iter()
                .map(|spec| (*spec, support(*spec, &mechanisms, rsa_sizes)))
                .collect();
            let can_generate = support
                .iter()
                .filter(|(_, s)| s.is_ok())
                .map(|(spec, _)| *spec)
                .collect();
            out.push(TokenSummary {
                slot_id: slot.id(),
                label: info.label.clone(),
                serial: info.serial.clone(),
                manufacturer: info.manufacturer.clone(),
                model: info.model.clone(),
                flags,
                note: info.note.clone(),
                can_generate,
                support,
            });
        }
        Ok(out)
    }

    /// The one slot whose token matches `sel`.
    pub(crate) fn find_slot(&self, sel: &TokenSelector) -> Result<Slot, TokenError> {
        let ctx = self.ctx();
        let slots = ctx
            .get_slots_with_token()
            .map_err(TokenError::during("listing slots (C_GetSlotList)"))?;
        let mut found = Vec::new();
        let mut matching = Vec::new();
        for slot in slots {
            let info = self.token_info(slot)?;
            let (label, serial) = (info.label, info.serial);
            let ok = sel.label.as_deref().is_none_or(|l| l == label)
                && sel.serial.as_deref().is_none_or(|s| s == serial);
            if ok {
                matching.push(slot);
            }
            found.push(format!("\"{label}\" (serial {serial})"));
        }
        match matching.len() {
            1 => Ok(matching[0]),
            0 => Err(TokenError::TokenNotFound {
                wanted: sel.to_string(),
                found,
            }),
            count => Err(TokenError::TokenAmbiguous {
                wanted: sel.to_string(),
                count,
            }),
        }
    }

    /// The Cryptoki version the module implements.
    pub(crate) fn cryptoki_version(&self) -> Result<(u8, u8), TokenError> {
        self.ctx()
            .get_library_info()
            .map(|i| (i.cryptoki_version().major(), i.cryptoki_version().minor()))
            .map_err(TokenError::during(
                "reading the module's information (C_GetInfo)",
            ))
    }

    /// The key sizes (in bits for RSA) the slot's token says it can make with `mechanism`,
    /// if it says (C_GetMechanismInfo).
    pub(crate) fn key_sizes(&self, slot: Slot, mechanism: MechanismType) -> Option<(usize, usize)> {
        self.ctx()
            .get_mechanism_info(slot, mechanism)
            .ok()
            .map(|i| (i.min_key_size(), i.max_key_size()))
    }

    /// The mechanisms a slot's token offers.
    pub(crate) fn mechanisms(&self, slot: Slot) -> Result<Vec<MechanismType>, TokenError> {
        self.ctx()
            .get_mechanism_list(slot)
            .map_err(TokenError::during(
                "listing mechanisms (C_GetMechanismList)",
            ))
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // Sessions borrow the module, so they are closed by now. Pkcs11 is a shared handle:
        // finalizing a clone finalizes the library.
        let _ = self.ctx.clone().finalize();
    }
}
