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
use super::module::field;

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

    /// Whether the token is initialised.
    pub fn initialized(&self) -> bool {
        self.has(sys::CKF_TOKEN_INITIALIZED)
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

    /// Whether the user PIN must be changed before use.
    pub fn user_pin_to_be_changed(&self) -> bool {
        self.has(sys::CKF_USER_PIN_TO_BE_CHANGED)
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

/// The module's C_Sign, called directly: cryptoki's `sign` always asks for the length first,
/// which costs a network HSM a second round trip per signature.
pub struct DirectSign {
    _lib: libloading::Library,
    sign: unsafe extern "C" fn(
        sys::CK_SESSION_HANDLE,
        *mut sys::CK_BYTE,
        sys::CK_ULONG,
        *mut sys::CK_BYTE,
        *mut sys::CK_ULONG,
    ) -> sys::CK_RV,
}

impl DirectSign {
    /// The C_Sign of the module at `path` (loaded and initialised by cryptoki); `Ok(None)` if
    /// the library or its C_Sign cannot be found this way (cryptoki's two calls are used), an
    /// error if the module's C_GetFunctionList fails.
    pub fn load(path: &Path) -> Result<Option<DirectSign>, CkError> {
        // SAFETY: as in `raw_token_info`: the library is the one cryptoki loaded, and the
        // function list it hands out lives as long as the library, which `DirectSign` keeps.
        unsafe {
            let Ok(lib) = libloading::Library::new(path) else {
                return Ok(None);
            };
            let Ok(get_list) = lib.get::<unsafe extern "C" fn(
                *mut *mut sys::CK_FUNCTION_LIST,
            ) -> sys::CK_RV>(b"C_GetFunctionList\0") else {
                return Ok(None);
            };
            let mut list: *mut sys::CK_FUNCTION_LIST = std::ptr::null_mut();
            cryptoki::error::Rv::from(get_list(&mut list))
                .into_result(cryptoki::context::Function::GetFunctionList)?;
            if list.is_null() {
                return Ok(None);
            }
            let Some(sign) = (*list).C_Sign else {
                return Ok(None);
            };
            Ok(Some(DirectSign { _lib: lib, sign }))
        }
    }

    /// One C_Sign of `data` in `session`, whose C_SignInit succeeded, into a buffer of
    /// `expected` bytes (a second call only if the token wants more, as PKCS#11 allows: a
    /// buffer too small leaves the operation active).
    pub fn sign(
        &self,
        session: sys::CK_SESSION_HANDLE,
        data: &[u8],
        expected: usize,
    ) -> Result<Vec<u8>, CkError> {
        let mut out = vec![0u8; expected.max(1)];
        for _ in 0..2 {
            let mut len = out.len() as sys::CK_ULONG;
            // SAFETY: `data` and `out` are valid for the lengths given; the module reads the
            // one and writes at most `len` bytes of the other, and sets `len`.
            let rv = unsafe {
                (self.sign)(
                    session,
                    data.as_ptr() as *mut sys::CK_BYTE,
                    data.len() as sys::CK_ULONG,
                    out.as_mut_ptr(),
                    &mut len,
                )
            };
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if rv == sys::CKR_BUFFER_TOO_SMALL && len > out.len() {
                out.resize(len, 0);
                continue;
            }
            cryptoki::error::Rv::from(rv).into_result(cryptoki::context::Function::Sign)?;
            out.truncate(len);
            return Ok(out);
        }
        Err(CkError::Pkcs11(
            cryptoki::error::RvError::BufferTooSmall,
            cryptoki::context::Function::Sign,
        ))
    }
}

/// C_GetTokenInfo made directly, through the function list of the module at `path` (the
/// library cryptoki loaded and initialised: loading it again gives the same instance).
fn raw_token_info(path: &Path, slot: u64) -> Result<sys::CK_TOKEN_INFO, String> {
    // SAFETY: `path` is the PKCS#11 library this process already loaded and initialised
    // through cryptoki; loading it again returns that instance (its reference count goes up
    // and back down). C_GetFunctionList is called with a pointer to a pointer it fills, as
    // PKCS#11 specifies, and C_GetTokenInfo with a slot id the module listed and a zeroed
    // CK_TOKEN_INFO (plain bytes and integers) it fills; nothing outlives the call but the
    // copied structure.
    unsafe {
        let lib = libloading::Library::new(path).map_err(|e| e.to_string())?;
        let get_list: libloading::Symbol<
            unsafe extern "C" fn(*mut *mut sys::CK_FUNCTION_LIST) -> sys::CK_RV,
        > = lib.get(b"C_GetFunctionList\0").map_err(|e| e.to_string())?;
        let mut list: *mut sys::CK_FUNCTION_LIST = std::ptr::null_mut();
        let rv = get_list(&mut list);
        if rv != sys::CKR_OK || list.is_null() {
            return Err(format!("C_GetFunctionList returned 0x{rv:x}"));
        }
        let get_info = (*list)
            .C_GetTokenInfo
            .ok_or("the module has no C_GetTokenInfo")?;
        let mut info: sys::CK_TOKEN_INFO = std::mem::zeroed();
        let rv = get_info(slot as sys::CK_SLOT_ID, &mut info);
        if rv != sys::CKR_OK {
            return Err(format!("C_GetTokenInfo returned 0x{rv:x}"));
        }
        Ok(info)
    }
}
