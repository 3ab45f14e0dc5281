//! The two PKCS#11 calls hsmca makes past cryptoki, kept out of the main crate so that it can
//! forbid `unsafe` code:
//!
//! - C_GetTokenInfo with only the raw structure returned: cryptoki parses every field and fails
//!   the whole call when one hsmca does not use is malformed (openCryptoki 3.8.1's clock);
//! - a single C_Sign into a buffer of the signature's size: cryptoki's `sign` always asks for
//!   the length first, a second round trip per signature on a network HSM.
//!
//! Both go through the function list of a module that cryptoki has already loaded and
//! initialised; loading the same library again gives the same instance.

use std::path::Path;

use cryptoki_sys as sys;
pub use cryptoki_sys::{CK_RV, CK_TOKEN_INFO};

/// Why a direct call could not be made or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectError {
    /// The module returned this CKR_ value.
    Rv(CK_RV),
    /// The library or the function could not be found.
    Unavailable(String),
}

/// The module's function list, with the library kept loaded as long as it is used.
struct Functions {
    _lib: libloading::Library,
    list: sys::CK_FUNCTION_LIST,
}

impl Functions {
    fn load(path: &Path) -> Result<Functions, DirectError> {
        // SAFETY: `path` is a PKCS#11 library this process already loaded and initialised
        // through cryptoki; loading it again returns that instance (its reference count goes
        // up). C_GetFunctionList fills the pointer it is given, as PKCS#11 specifies, with a
        // list that lives as long as the library; the list is copied, the library kept.
        unsafe {
            let lib = libloading::Library::new(path)
                .map_err(|e| DirectError::Unavailable(e.to_string()))?;
            let get_list = lib
                .get::<unsafe extern "C" fn(*mut *mut sys::CK_FUNCTION_LIST) -> sys::CK_RV>(
                    b"C_GetFunctionList\0",
                )
                .map_err(|e| DirectError::Unavailable(e.to_string()))?;
            let mut list: *mut sys::CK_FUNCTION_LIST = std::ptr::null_mut();
            let rv = get_list(&mut list);
            if rv != sys::CKR_OK {
                return Err(DirectError::Rv(rv));
            }
            if list.is_null() {
                return Err(DirectError::Unavailable(
                    "C_GetFunctionList returned no list".into(),
                ));
            }
            let list = *list;
            Ok(Functions { _lib: lib, list })
        }
    }
}

/// C_GetTokenInfo of `slot`, made directly through the module at `path`; the structure as the
/// module filled it, nothing parsed.
pub fn token_info(path: &Path, slot: u64) -> Result<CK_TOKEN_INFO, DirectError> {
    let functions = Functions::load(path)?;
    let get_info = functions
        .list
        .C_GetTokenInfo
        .ok_or_else(|| DirectError::Unavailable("the module has no C_GetTokenInfo".into()))?;
    // SAFETY: a zeroed CK_TOKEN_INFO (plain bytes and integers) for the module to fill, and a
    // slot id the module listed.
    unsafe {
        let mut info: sys::CK_TOKEN_INFO = std::mem::zeroed();
        match get_info(slot as sys::CK_SLOT_ID, &mut info) {
            sys::CKR_OK => Ok(info),
            rv => Err(DirectError::Rv(rv)),
        }
    }
}

/// The module's C_Sign, called directly.
pub struct DirectSign {
    _functions: Functions,
    sign: unsafe extern "C" fn(
        sys::CK_SESSION_HANDLE,
        *mut sys::CK_BYTE,
        sys::CK_ULONG,
        *mut sys::CK_BYTE,
        *mut sys::CK_ULONG,
    ) -> sys::CK_RV,
}

impl DirectSign {
    /// The C_Sign of the module at `path`; `Ok(None)` if the library or its C_Sign cannot be
    /// reached this way, an error if the module's C_GetFunctionList fails.
    pub fn load(path: &Path) -> Result<Option<DirectSign>, CK_RV> {
        match Functions::load(path) {
            Ok(functions) => Ok(functions.list.C_Sign.map(|sign| DirectSign {
                _functions: functions,
                sign,
            })),
            Err(DirectError::Rv(rv)) => Err(rv),
            Err(DirectError::Unavailable(_)) => Ok(None),
        }
    }

    /// One C_Sign of `data` in `session`, whose C_SignInit succeeded, into a buffer of
    /// `expected` bytes (a second call only if the token wants more: PKCS#11 leaves the
    /// operation active after CKR_BUFFER_TOO_SMALL).
    pub fn sign(&self, session: u64, data: &[u8], expected: usize) -> Result<Vec<u8>, CK_RV> {
        let mut out = vec![0u8; expected.max(1)];
        for _ in 0..2 {
            let mut len = out.len() as sys::CK_ULONG;
            // SAFETY: `data` and `out` are valid for the lengths given; the module reads the
            // one, writes at most `len` bytes of the other, and sets `len`.
            let rv = unsafe {
                (self.sign)(
                    session as sys::CK_SESSION_HANDLE,
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
            if rv != sys::CKR_OK {
                return Err(rv);
            }
            out.truncate(len);
            return Ok(out);
        }
        Err(sys::CKR_BUFFER_TOO_SMALL)
    }
}
