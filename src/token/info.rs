//! What C_GetTokenInfo says of a token: the fields hsmca uses, read once per slot and command;
//! and the one other call hsmca makes past cryptoki, a single C_Sign per signature.
//!
//! cryptoki parses every field, the token's clock included, and fails the whole call when one
//! is malformed (openCryptoki 3.8.1 writes its clock as `"        hh:mm:ss"`). hsmca never uses
//! the clock, so when cryptoki fails to *parse* (not when the token fails), the same call is
//! made directly and only the fields hsmca uses are read.

use std::path::Path;

use cryptoki::error::Error as CkError;
use cryptoki::slot::Slot;
use cryptoki_sys as sys;

use super::TokenError;

/// The token-info fields hsmca uses.
#[derive(Debug, Clone)]
pub struct TokenFields {
    /// CKA_LABEL of the token, padding removed.
    pub label: String,
    /// Serial number.
    pub serial: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    flags: sys::CK_FLAGS,
    /// Set when a field hsmca does not use could not be read: what was ignored.
    pub note: Option<String>,
}

impl TokenFields {
    /// Reads the token in `slot` of the module at `path` that `ctx` has loaded.
    pub fn read(
        ctx: &cryptoki::context::Pkcs11,
        path: &Path,
        slot: Slot,
    ) -> Result<TokenFields, TokenError> {
        let during = "reading token information (C_GetTokenInfo)";
        match ctx.get_token_info(slot) {
            Ok(info) => Ok(TokenFields {
                label: field(info.label()),
                serial: field(info.serial_number()),
                manufacturer: field(info.manufacturer_id()),
                model: field(info.model()),
                flags: flags_of(&info),
                note: None,
            }),
            Err(e @ CkError::Pkcs11(..)) => Err(TokenError::during(during)(e)),
            Err(parse) => {
                let info = raw_token_info(path, slot.id()).map_err(|why| TokenError::Direct {
                    during: format!(
                        "{during}, made directly after cryptoki could not parse it ({parse})"
                    ),
                    why,
                })?;
                let text = |b: &[u8]| field(&String::from_utf8_lossy(b));
                Ok(TokenFields {
                    label: text(&info.label),
                    serial: text(&info.serialNumber),
                    manufacturer: text(&info.manufacturerID),
                    model: text(&info.model),
                    flags: info.flags,
                    note: Some(format!(
                        "the token's information has a field hsmca does not use that does not parse ({parse}; the token's clock, \"{}\"); ignored",
                        String::from_utf8_lossy(&info.utcTime).trim()
                    )),
                })
            }
        }
    }

    fn has(&self, flag: sys::CK_FLAGS) -> bool {
        self.flags & flag != 0
    }

    /// The flags worth showing, by name.
    pub fn flag_names(&self) -> Vec<&'static str> {
        [
            (sys::CKF_TOKEN_INITIALIZED, "initialized"),
            (sys::CKF_USER_PIN_INITIALIZED, "user-pin-initialized"),
            (sys::CKF_LOGIN_REQUIRED, "login-required"),
            (sys::CKF_RNG, "rng"),
            (sys::CKF_WRITE_PROTECTED, "write-protected"),
            (
                sys::CKF_PROTECTED_AUTHENTICATION_PATH,
                "protected-auth-path",
            ),
            (sys::CKF_USER_PIN_COUNT_LOW, "user-pin-count-low"),
            (sys::CKF_USER_PIN_FINAL_TRY, "user-pin-final-try"),
            (sys::CKF_USER_PIN_LOCKED, "user-pin-locked"),
            (sys::CKF_USER_PIN_TO_BE_CHANGED, "user-pin-to-be-changed"),
        ]
        .into_iter()
        .filter(|(f, _)| self.has(*f))
        .map(|(_, name)| name)
        .collect()
    }

    /// Whether the user PIN is locked.
    pub fn user_pin_locked(&self) -> bool {
        self.has(sys::CKF_USER_PIN_LOCKED)
    }

    /// Whether the next wrong user PIN locks it.
    pub fn user_pin_final_try(&self) -> bool {
        self.has(sys::CKF_USER_PIN_FINAL_TRY)
    }

    /// Whether a wrong user PIN was entered since the last right one.
    pub fn user_pin_count_low(&self) -> bool {
        self.has(sys::CKF_USER_PIN_COUNT_LOW)
    }
}

fn flags_of(info: &cryptoki::slot::TokenInfo) -> sys::CK_FLAGS {
    [
        (info.token_initialized(), sys::CKF_TOKEN_INITIALIZED),
        (info.user_pin_initialized(), sys::CKF_USER_PIN_INITIALIZED),
        (info.login_required(), sys::CKF_LOGIN_REQUIRED),
        (info.rng(), sys::CKF_RNG),
        (info.write_protected(), sys::CKF_WRITE_PROTECTED),
        (
            info.protected_authentication_path(),
            sys::CKF_PROTECTED_AUTHENTICATION_PATH,
        ),
        (info.user_pin_count_low(), sys::CKF_USER_PIN_COUNT_LOW),
        (info.user_pin_final_try(), sys::CKF_USER_PIN_FINAL_TRY),
        (info.user_pin_locked(), sys::CKF_USER_PIN_LOCKED),
        (
            info.user_pin_to_be_changed(),
            sys::CKF_USER_PIN_TO_BE_CHANGED,
        ),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, f)| acc | f)
}

/// The module's C_Sign, called directly (`hsmca-p11direct`): cryptoki's `sign` always asks for
/// the length first, which costs a network HSM a second round trip per signature.
pub struct DirectSign(hsmca_p11direct::DirectSign);

impl DirectSign {
    /// The C_Sign of the module at `path` (loaded and initialised by cryptoki); `Ok(None)` if
    /// the library or its C_Sign cannot be found this way (cryptoki's two calls are used), an
    /// error if the module's C_GetFunctionList fails.
    pub fn load(path: &Path) -> Result<Option<DirectSign>, CkError> {
        match hsmca_p11direct::DirectSign::load(path) {
            Ok(direct) => Ok(direct.map(DirectSign)),
            Err(rv) => Err(ck_error(rv, cryptoki::context::Function::GetFunctionList)),
        }
    }

    /// One C_Sign of `data` in `session`, whose C_SignInit succeeded, into a buffer of
    /// `expected` bytes.
    pub fn sign(
        &self,
        session: sys::CK_SESSION_HANDLE,
        data: &[u8],
        expected: usize,
    ) -> Result<Vec<u8>, CkError> {
        self.0
            .sign(session, data, expected)
            .map_err(|rv| ck_error(rv, cryptoki::context::Function::Sign))
    }
}

/// A module's CKR_ value as cryptoki's error for `function`.
fn ck_error(rv: sys::CK_RV, function: cryptoki::context::Function) -> CkError {
    match cryptoki::error::Rv::from(rv).into_result(function) {
        Err(e) => e,
        Ok(()) => CkError::Pkcs11(cryptoki::error::RvError::GeneralError, function),
    }
}

/// C_GetTokenInfo made directly (`hsmca-p11direct`), nothing parsed.
fn raw_token_info(path: &Path, slot: u64) -> Result<sys::CK_TOKEN_INFO, String> {
    hsmca_p11direct::token_info(path, slot).map_err(|e| match e {
        hsmca_p11direct::DirectError::Rv(rv) => format!("C_GetTokenInfo returned 0x{rv:x}"),
        hsmca_p11direct::DirectError::Unavailable(why) => why,
    })
}

/// A blank-padded token-info field as text: some modules pad with NULs (tpm2-pkcs11's model).
pub(crate) fn field(value: &str) -> String {
    value
        .trim_end_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
}
