//! Token-layer errors: the module, the PIN, the token and the keys on it.

use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};

/// A failure talking to a PKCS#11 token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// No module given and none of the usual SoftHSM2 paths exists.
    #[error("no PKCS#11 module found; tried: {}", list(tried))]
    ModuleNotFound {
        /// The paths tried.
        tried: Vec<PathBuf>,
    },
    /// No p11-kit registration has this name.
    #[error(
        "no PKCS#11 module is registered with p11-kit as \"{name}\" (registered: {})",
        if registered.is_empty() { "none".to_string() } else { registered.join(", ") }
    )]
    ModuleNotRegistered {
        /// The name asked for.
        name: String,
        /// The names p11-kit registers.
        registered: Vec<String>,
    },
    /// The file exists but is not a loadable PKCS#11 library.
    #[error("{} is not a usable PKCS#11 module: {source}", path.display())]
    ModuleLoad {
        /// The module path.
        path: PathBuf,
        /// What loading said.
        source: CkError,
    },
    /// A PKCS#11 call failed.
    #[error(
        "the token failed while {during}: {} ({})",
        ckr_name(rv),
        first_sentence(rv)
    )]
    Pkcs11 {
        /// What hsmca was doing.
        during: String,
        /// The CKR_ value.
        rv: RvError,
    },
    /// A cryptoki error that is not a CKR_ value.
    #[error("PKCS#11 error while {during}: {source}")]
    Library {
        /// What hsmca was doing.
        during: String,
        /// The cryptoki error.
        source: CkError,
    },
    /// A call hsmca made to the module directly (see `token::info`) failed.
    #[error("PKCS#11 error while {during}: {why}")]
    Direct {
        /// What hsmca was doing.
        during: String,
        /// What failed.
        why: String,
    },
    /// No token matches the label/serial.
    #[error("no token {wanted} is present; tokens found: {}", if found.is_empty() { "none".to_string() } else { found.join(", ") })]
    TokenNotFound {
        /// What was asked for.
        wanted: String,
        /// Labels of the tokens present.
        found: Vec<String>,
    },
    /// More than one token matches.
    #[error("{count} tokens match {wanted}")]
    TokenAmbiguous {
        /// What was asked for.
        wanted: String,
        /// How many matched.
        count: usize,
    },
    /// The key URI names no token.
    #[error("the key URI names no token (token= or serial=)")]
    NoTokenInUri,
    /// The URI is not RFC 7512.
    #[error("invalid PKCS#11 URI: {reason}")]
    InvalidUri {
        /// Why.
        reason: String,
    },
    /// A `pin-value` in a URI, which would put the PIN in argv.
    #[error(
        "the PKCS#11 URI carries pin-value: a PIN on the command line is visible to every user of this machine"
    )]
    PinValueInUri,
    /// No PIN source was available.
    #[error(
        "no PIN available: there is no terminal to ask on, HSMCA_PIN is not set and no --pin-file was given"
    )]
    PinMissing,
    /// The PIN file could not be read.
    #[error("cannot read the PIN file {}: {source}", path.display())]
    PinFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// C_Login said CKR_PIN_INCORRECT.
    #[error(
        "the PIN was incorrect (CKR_PIN_INCORRECT); hsmca tried it once and did not retry, because tokens lock after a few failures"
    )]
    PinIncorrect,
    /// The user PIN is locked.
    #[error("the token's user PIN is locked (CKR_PIN_LOCKED)")]
    PinLocked,
    /// C_Login as security officer failed: wrong SO PIN.
    #[error("the token refused the security officer PIN (CKR_PIN_INCORRECT)")]
    SoPinIncorrect,
    /// The token cannot keep a key's wrapped backup.
    #[error("the token cannot keep a wrapped backup of a key: {what}")]
    BackupUnsupported {
        /// What it lacks.
        what: String,
    },
    /// The URI matches no private key.
    #[error("no private key matches {uri}")]
    KeyNotFound {
        /// The URI.
        uri: String,
    },
    /// The URI matches several private keys.
    #[error("{count} private keys match {uri}; a CA key must be named unambiguously")]
    KeyAmbiguous {
        /// The URI.
        uri: String,
        /// How many.
        count: usize,
    },
    /// The private key has no public key object beside it.
    #[error("the private key {uri} has no matching public key object (same CKA_ID) on the token")]
    PublicKeyMissing {
        /// The URI.
        uri: String,
    },
    /// A key with that label or id exists already.
    #[error("the token already holds an object with {what}")]
    KeyExists {
        /// "label \"x\"" or "id 0a0b".
        what: String,
    },
    /// The key's attributes are not those of a CA key.
    #[error("the key {uri} is not protected as a CA key must be: {violations}")]
    KeyAttribute {
        /// The URI.
        uri: String,
        /// Every attribute that breaks the policy, what it is and what it must be.
        violations: String,
    },
    /// The token cannot make a key of this size (its mechanism info says).
    #[error(
        "the token makes keys of this type of {min} to {max} bits only (its C_GetMechanismInfo), so not {what}"
    )]
    KeySize {
        /// The algorithm asked for.
        what: String,
        /// The smallest size.
        min: usize,
        /// The largest size.
        max: usize,
    },
    /// The token cannot do what was asked (mechanism missing).
    #[error("the token does not support {what} (mechanism {mechanism} is missing)")]
    Unsupported {
        /// The algorithm or operation.
        what: String,
        /// The CKM_ name.
        mechanism: String,
    },
    /// C_GenerateKeyPair made the key pair, then reading it back failed: the key exists.
    #[error(
        "the key pair \"{label}\" (id {id}) was generated on the token, but reading it back failed: {source}"
    )]
    AfterGeneration {
        /// Its label.
        label: String,
        /// Its CKA_ID, hex.
        id: String,
        /// What failed.
        source: Box<TokenError>,
    },
    /// The key type or curve is not one hsmca uses.
    #[error("unsupported key on the token: {what}")]
    UnsupportedKey {
        /// Description.
        what: String,
    },
}

impl TokenError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        let h = match self {
            TokenError::ModuleNotFound { .. } => {
                "install SoftHSM2 (apt-get install softhsm2) or name the module with --module PATH or HSMCA_MODULE"
            }
            TokenError::ModuleNotRegistered { .. } => {
                "name a registered module (p11-kit list-modules), or give the module's path with --module PATH or HSMCA_MODULE"
            }
            TokenError::ModuleLoad { .. } => {
                "point --module (or HSMCA_MODULE) at the vendor's PKCS#11 .so, e.g. /usr/lib/softhsm/libsofthsm2.so"
            }
            TokenError::Pkcs11 { rv, .. } => match rv {
                RvError::DeviceRemoved | RvError::TokenNotPresent => {
                    "reconnect the token and run the command again; nothing was written"
                }
                RvError::ObjectHandleInvalid
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed => {
                    "the token's state changed under hsmca (removed or re-initialised); check it with 'hsmca token list' and run again"
                }
                _ => "check the token with 'hsmca token list'; nothing was written",
            },
            TokenError::Library { .. } | TokenError::Direct { .. } => {
                "check the module and the token; nothing was written"
            }
            TokenError::TokenNotFound { .. } => {
                "check the label with 'hsmca token list' (and SOFTHSM2_CONF for SoftHSM2)"
            }
            TokenError::TokenAmbiguous { .. } => "add serial= to the URI (or --token-serial)",
            TokenError::NoTokenInUri => {
                "name the token, e.g. pkcs11:token=Root%20CA;object=root-2026"
            }
            TokenError::InvalidUri { .. } => {
                "write it as pkcs11:token=<label>;object=<key label> (RFC 7512, spaces as %20)"
            }
            TokenError::PinValueInUri => {
                "remove pin-value; type the PIN when asked, or use HSMCA_PIN, --pin-file or pin-source=file:PATH"
            }
            TokenError::PinMissing => "set HSMCA_PIN, pass --pin-file PATH, or run from a terminal",
            TokenError::PinFile { .. } => "check the path given to --pin-file or pin-source",
            TokenError::PinIncorrect => {
                "check the PIN and run the command again; each further failure brings the token closer to locking"
            }
            TokenError::PinLocked => {
                "the security officer must unlock the user PIN; hsmca will not try it"
            }
            TokenError::SoPinIncorrect => {
                "check the SO PIN (HSMCA_SO_PIN, --so-pin-file or the prompt) and run again; nothing was created on the token"
            }
            TokenError::BackupUnsupported { .. } => {
                "generate the key without --backup (it then never leaves the token), or use a token that offers CKM_AES_KEY_WRAP_PAD and trusted keys; nothing was generated"
            }
            TokenError::KeyNotFound { .. } => "list the keys with 'hsmca key list --token <label>'",
            TokenError::KeyAmbiguous { .. } => "add id= to the URI to name one key",
            TokenError::PublicKeyMissing { .. } => {
                "keys generated by 'hsmca key generate' have one; import the public key with the same CKA_ID"
            }
            TokenError::KeyExists { .. } => {
                "choose another --label/--id; hsmca never replaces a key"
            }
            TokenError::KeyAttribute { .. } => {
                "generate a CA key with 'hsmca key generate', which sets every attribute explicitly"
            }
            TokenError::Unsupported { .. } | TokenError::KeySize { .. } => {
                "choose another algorithm; 'hsmca token list' shows what this token can generate"
            }
            TokenError::AfterGeneration { .. } => {
                "do not use this key: it stays on the token (hsmca never deletes keys); check the token, remove the key with the token's own tools, then generate again"
            }
            TokenError::UnsupportedKey { .. } => {
                "use an ECDSA P-256/P-384, RSA (2048 to 8192 bits) or Ed25519 key"
            }
        };
        Some(h.to_string())
    }

    /// Wraps a cryptoki error with what was being done; the function named in parentheses is
    /// the one that failed (a mechanism the token refuses fails in C_SignInit, not C_Sign).
    pub fn during(during: impl Into<String>) -> impl FnOnce(CkError) -> TokenError {
        let during = during.into();
        move |e| match e {
            CkError::Pkcs11(rv, function) => TokenError::Pkcs11 {
                during: naming(during, function),
                rv,
            },
            source => TokenError::Library { during, source },
        }
    }
}

/// `during` ("signing (C_Sign)") with the function in parentheses replaced by `function`.
fn naming(during: String, function: cryptoki::context::Function) -> String {
    let actual = format!("C_{function:?}");
    match during.rfind("(C_") {
        Some(i) if during.ends_with(')') => format!("{}({actual})", &during[..i]),
        _ => format!("{during} ({actual})"),
    }
}

/// The CKR_ name of a return value (cryptoki names its variants in CamelCase), which token
/// vendors' documentation and logs use.
pub fn ckr_name(rv: &RvError) -> String {
    let camel = format!("{rv:?}");
    let mut name = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The first sentence of cryptoki's description of a return value (the rest quotes the spec).
fn first_sentence(rv: &RvError) -> String {
    let text = rv.to_string();
    let first = text.split(". ").next().unwrap_or(&text);
    first.trim_end_matches('.').to_string()
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_failures_name_the_ckr_value_in_one_sentence() {
        assert_eq!(ckr_name(&RvError::DeviceError), "CKR_DEVICE_ERROR");
        assert_eq!(
            ckr_name(&RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        let e = TokenError::Pkcs11 {
            during: "signing (C_Sign)".into(),
            rv: RvError::DeviceError,
        }
        .to_string();
        assert!(
            e.starts_with("the token failed while signing (C_Sign): CKR_DEVICE_ERROR ("),
            "{e}"
        );
        assert!(!e.contains("This error code"), "{e}");
    }
}
