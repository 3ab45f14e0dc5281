//! `HSMCA_FAULT_TRACE=FILE`: one line per PKCS#11 call, written whole (one `write` under a
//! lock) when the call returns, so calls from several threads never interleave:
//!
//! ```text
//! 17 tid=4242 C_OpenSession CKR_OK slot=1 session=3
//! 18 tid=4242 C_GetAttributeValue CKR_OK session=3 object=2 attrs=CKA_SENSITIVE,CKA_EXTRACTABLE
//! 25 tid=4243 C_FindObjects CKR_OK session=4 found=2
//! ```
//!
//! The first field numbers the lines in the order they were written (the order of the
//! returns); `tid` is the kernel's thread id. What follows the return value depends on the
//! function: the handles it takes or gives, attribute types (never values), the class a
//! search asks for. A PIN is never written, nor any attribute value but CKA_CLASS's.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

use cryptoki_sys::*;

use super::{Func, NAMES, rv_name};

/// An argument as one machine word: a handle, a count or a pointer's address.
pub(crate) trait Word {
    fn word(&self) -> u64;
}

impl Word for CK_ULONG {
    fn word(&self) -> u64 {
        *self
    }
}

impl Word for CK_BBOOL {
    fn word(&self) -> u64 {
        u64::from(*self)
    }
}

impl<T> Word for *mut T {
    fn word(&self) -> u64 {
        *self as usize as u64
    }
}

impl<T> Word for Option<T> {
    fn word(&self) -> u64 {
        u64::from(self.is_some())
    }
}

/// The trace file and the number of the next line.
struct Trace {
    file: File,
    next: u64,
}

fn trace() -> Option<&'static Mutex<Trace>> {
    static TRACE: OnceLock<Option<Mutex<Trace>>> = OnceLock::new();
    TRACE
        .get_or_init(|| {
            let path = std::env::var_os("HSMCA_FAULT_TRACE").filter(|p| !p.is_empty())?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()?;
            Some(Mutex::new(Trace { file, next: 1 }))
        })
        .as_ref()
}

unsafe extern "C" {
    fn gettid() -> std::os::raw::c_int;
}

/// Writes the trace line of one call, if a trace is asked for.
///
/// # Safety
/// `args` are the call's arguments as words, in order, after the call returned `rv`: every
/// pointer the function's contract makes valid is still valid.
pub(crate) unsafe fn call(func: Func, rv: CK_RV, args: &[u64]) {
    let Some(trace) = trace() else {
        return;
    };
    let mut line = String::with_capacity(128);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { gettid() };
    let _ = write!(line, "tid={tid} {} {}", NAMES[func as usize], rv_name(rv));
    // SAFETY: passed on from the caller.
    unsafe { details(&mut line, func, rv, args) };
    line.push('\n');
    if let Ok(mut t) = trace.lock() {
        let numbered = format!("{} {line}", t.next);
        t.next += 1;
        let _ = t.file.write_all(numbered.as_bytes());
    }
}

/// What the call was about, after its return value.
///
/// # Safety
/// As [`call`].
unsafe fn details(line: &mut String, func: Func, rv: CK_RV, a: &[u64]) {
    let ok = rv == CKR_OK;
    let mut field = |name: &str, value: &dyn std::fmt::Display| {
        let _ = write!(line, " {name}={value}");
    };
    // SAFETY (each read below): the pointer is the argument the function's contract names for
    // it, checked non-null; out-parameters are read only after the call returned CKR_OK.
    match func {
        Func::C_OpenSession => {
            field("slot", &a[0]);
            if ok && let Some(h) = unsafe { read(a[4]) } {
                field("session", &h);
            }
        }
        Func::C_CloseAllSessions => field("slot", &a[0]),
        Func::C_Login => {
            field("session", &a[0]);
            field("user", &a[1]);
        }
        Func::C_GetAttributeValue => {
            field("session", &a[0]);
            field("object", &a[1]);
            field("attrs", &unsafe { attribute_types(a[2], a[3]) });
        }
        Func::C_FindObjectsInit => {
            field("session", &a[0]);
            field("attrs", &unsafe { attribute_types(a[1], a[2]) });
            if let Some(class) = unsafe { class_of(a[1], a[2]) } {
                field("class", &class);
            }
        }
        Func::C_FindObjects => {
            field("session", &a[0]);
            let count = if ok { unsafe { read(a[3]) } } else { None };
            let found: Vec<String> = (0..count.unwrap_or(0).min(a[2]))
                .filter_map(|i| unsafe { read(a[1] + i * 8) })
                .map(|h| h.to_string())
                .collect();
            field("found", &found.join(","));
        }
        Func::C_GenerateKeyPair => {
            field("session", &a[0]);
            field("public_attrs", &unsafe { attribute_types(a[2], a[3]) });
            field("private_attrs", &unsafe { attribute_types(a[4], a[5]) });
            if ok {
                if let Some(h) = unsafe { read(a[6]) } {
                    field("public", &h);
                }
                if let Some(h) = unsafe { read(a[7]) } {
                    field("private", &h);
                }
            }
        }
        Func::C_CreateObject => {
            field("session", &a[0]);
            field("attrs", &unsafe { attribute_types(a[1], a[2]) });
            if let Some(class) = unsafe { class_of(a[1], a[2]) } {
                field("class", &class);
            }
            if ok && let Some(h) = unsafe { read(a[3]) } {
                field("created", &h);
            }
        }
        Func::C_DestroyObject => {
            field("session", &a[0]);
            field("object", &a[1]);
        }
        Func::C_SetAttributeValue => {
            field("session", &a[0]);
            field("object", &a[1]);
            field("attrs", &unsafe { attribute_types(a[2], a[3]) });
        }
        Func::C_SignInit | Func::C_VerifyInit => {
            field("session", &a[0]);
            if let Some(m) = unsafe { read(a[1]) } {
                field("mechanism", &format_args!("0x{m:x}"));
            }
            field("key", &a[2]);
        }
        Func::C_GetSlotList
        | Func::C_GetSlotInfo
        | Func::C_GetTokenInfo
        | Func::C_GetMechanismList
        | Func::C_GetMechanismInfo
        | Func::C_Initialize
        | Func::C_Finalize
        | Func::C_GetInfo
        | Func::C_GetFunctionList
        | Func::C_WaitForSlotEvent => {}
        Func::C_InitToken => field("slot", &a[0]),
        // Every other function takes its session first.
        _ => field("session", &a[0]),
    }
}

/// The `CK_ULONG` at `addr`, if it is not null.
///
/// # Safety
/// A non-zero `addr` points to a readable `CK_ULONG`.
unsafe fn read(addr: u64) -> Option<u64> {
    let p = addr as usize as *const CK_ULONG;
    // SAFETY: as the caller promises.
    (!p.is_null()).then(|| unsafe { p.read_unaligned() })
}

/// The attribute types of a template, by name (`0x…` for the ones not named here).
///
/// # Safety
/// A non-zero `addr` points to `count` readable `CK_ATTRIBUTE`s.
unsafe fn attribute_types(addr: u64, count: u64) -> String {
    let mut out = Vec::new();
    // SAFETY: as the caller promises.
    for a in unsafe { template(addr, count) } {
        out.push(match ATTRIBUTES.iter().find(|(t, _)| *t == a.type_) {
            Some((_, name)) => (*name).to_string(),
            None => format!("0x{:x}", a.type_),
        });
    }
    out.join(",")
}

/// The value of CKA_CLASS in a template, by name, if the template has it.
///
/// # Safety
/// As [`attribute_types`]; CKA_CLASS's value, when present, is a readable `CK_ULONG`.
unsafe fn class_of(addr: u64, count: u64) -> Option<&'static str> {
    // SAFETY: as the caller promises.
    let a = unsafe { template(addr, count) }
        .iter()
        .find(|a| a.type_ == CKA_CLASS)?;
    if a.ulValueLen as usize != size_of::<CK_ULONG>() {
        return Some("?");
    }
    // SAFETY: a CKA_CLASS value of the right length.
    let class = unsafe { read(a.pValue as usize as u64) }?;
    Some(match class {
        CKO_DATA => "CKO_DATA",
        CKO_CERTIFICATE => "CKO_CERTIFICATE",
        CKO_PUBLIC_KEY => "CKO_PUBLIC_KEY",
        CKO_PRIVATE_KEY => "CKO_PRIVATE_KEY",
        CKO_SECRET_KEY => "CKO_SECRET_KEY",
        _ => "other",
    })
}

/// A template as a slice (empty for a null pointer).
///
/// # Safety
/// As [`attribute_types`].
unsafe fn template<'a>(addr: u64, count: u64) -> &'a [CK_ATTRIBUTE] {
    let p = addr as usize as *const CK_ATTRIBUTE;
    if p.is_null() || count == 0 {
        return &[];
    }
    // SAFETY: as the caller promises.
    unsafe { std::slice::from_raw_parts(p, count as usize) }
}

macro_rules! named {
    ($($name:ident),* $(,)?) => {
        &[$(($name, stringify!($name))),*]
    };
}

/// Attribute types by name: those hsmca's templates and reads use, and the secret ones.
const ATTRIBUTES: &[(CK_ATTRIBUTE_TYPE, &str)] = named![
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_VALUE,
    CKA_CERTIFICATE_TYPE,
    CKA_TRUSTED,
    CKA_KEY_TYPE,
    CKA_SUBJECT,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_KEY_GEN_MECHANISM,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALLOWED_MECHANISMS,
];
