//! hsmca-faultmod: a PKCS#11 module for tests only. It loads the real module named by
//! `HSMCA_FAULT_REAL` and forwards every call to it, except the one it is told to fail:
//!
//! - `HSMCA_FAULT_FN=C_Sign` `HSMCA_FAULT_N=2` `HSMCA_FAULT_RV=CKR_DEVICE_ERROR`: the 2nd call of
//!   C_Sign returns CKR_DEVICE_ERROR without reaching the real module (N counts from 1; the
//!   value is a CKR_ name or a number, decimal or 0x hex).
//! - `HSMCA_FAULT_STICKY=1`: every call of that function from the N-th on fails.
//! - `HSMCA_FAULT_LOG=FILE`: appends one line per call, `C_Sign` or `C_Sign FAULT
//!   CKR_DEVICE_ERROR`, so a test can list the calls a command makes.
//! - `HSMCA_FAULT_TRACE=FILE`: appends one whole line per PKCS#11 call, written when it
//!   returns, with its thread, its return value and what it was about (sessions, objects,
//!   attribute types, found handles; never a PIN or an attribute value), so that a test can
//!   audit a command that calls from several threads at once exactly (`trace.rs`).
//! - `HSMCA_FAULT_STOP_FN=C_Sign` `HSMCA_FAULT_STOP_N=3` `HSMCA_FAULT_STOP_AT=after`: the process
//!   stops itself (SIGSTOP, the whole process) just before (`before`, the default) or just after
//!   (`after`) the 3rd call of C_Sign reaches the real module, logging `C_Sign STOP before`
//!   first; a test then kills it there, at a point it chose exactly (`tests/it/faults/kill/`).
//! - Loaded with `LD_PRELOAD` as well, the module also stands in front of libc's `fsync`: each
//!   call is counted, logged with its file (`fsync /tmp/x/ca/audit.jsonl`, as /proc/self/fd
//!   names it) and can be the stop point (`HSMCA_FAULT_STOP_FN=fsync`),
//!   so a test can stop a command between writing a file and making it durable, or between
//!   one file and the next. Without `LD_PRELOAD` nothing calls this `fsync`.
//! - Preloaded, `HSMCA_FAULT_TEAR=SUFFIX` `HSMCA_FAULT_TEAR_N=2`: the 2nd `write` to a file whose
//!   path ends with SUFFIX writes only the first half of its bytes and stops the process
//!   (logging `write STOP torn PATH`), as a SIGKILL inside a long write leaves a file; resumed,
//!   the write returns that short count, so the caller writes the rest.
//!
//! - `HSMCA_FAULT_HIDE_MECHS=0x40,0x43`: C_GetMechanismList leaves these mechanisms out (CKM_
//!   values, decimal or 0x hex), so a test can play a token that lacks them.
//! - `HSMCA_FAULT_DELAY_US=2000`: every PKCS#11 call waits that long before it is forwarded, as
//!   a network HSM's round trip would (`scripts/bench.sh --latency`).
//!
//! SoftHSM2 cannot produce device errors, removed tokens or locked PINs on demand; this module
//! can (see `tests/it/faults/`). A bad configuration makes C_GetFunctionList fail with
//! CKR_GENERAL_ERROR and a `hsmca-faultmod:` line on stderr.

#![allow(non_snake_case)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use cryptoki_sys::*;

macro_rules! for_each_function {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        /// Every function of the list, in list order (an index into [`NAMES`] and the counters).
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        enum Func {
            $($name,)*
        }

        /// The functions' names, indexed by [`Func`].
        const NAMES: &[&str] = &[$(stringify!($name)),*];

        /// One forwarder per function: count, maybe fail, else call the real module.
        mod forward {
            use super::*;
            $(
                #[allow(clippy::too_many_arguments)]
                pub(super) unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
                    let (count, inject) = on_call(Func::$name as usize);
                    if let Some(rv) = inject {
                        // SAFETY: the caller's arguments, as the function's contract has them.
                        unsafe { trace::call(Func::$name, rv, &[$(trace::Word::word(&$arg)),*]) };
                        return rv;
                    }
                    let rv = match REAL.get().and_then(|r| r.list.$name) {
                        // SAFETY: the caller's arguments go unchanged to the same function of
                        // the real module, which has the same contract.
                        Some(f) => unsafe { f($($arg),*) },
                        None => CKR_FUNCTION_NOT_SUPPORTED,
                    };
                    // SAFETY: the caller's arguments after the real call: its outputs written.
                    unsafe { hide_mechanisms(Func::$name, rv, &[$(trace::Word::word(&$arg)),*]) };
                    // SAFETY: as above.
                    unsafe { trace::call(Func::$name, rv, &[$(trace::Word::word(&$arg)),*]) };
                    after_call(Func::$name as usize, count);
                    rv
                }
            )*
        }

        /// The list handed to the caller: every entry a forwarder.
        fn forwarding_list(version: CK_VERSION) -> CK_FUNCTION_LIST {
            CK_FUNCTION_LIST {
                version,
                $($name: Some(forward::$name),)*
            }
        }
    };
}

include!("functions.rs");

mod trace;

/// The real module: its library stays loaded for the life of the process.
struct Real {
    _lib: libloading::Library,
    list: CK_FUNCTION_LIST,
}

/// What the environment asks for.
struct Config {
    fault: Option<Fault>,
    stop: Option<Stop>,
    log: Option<Mutex<File>>,
    /// Added to every PKCS#11 call.
    delay: Option<std::time::Duration>,
}

/// Where the process stops itself: before or after the n-th call of a point.
struct Stop {
    point: usize,
    n: u64,
    after: bool,
}

struct Fault {
    func: Func,
    n: u64,
    rv: CK_RV,
    sticky: bool,
}

static REAL: OnceLock<Real> = OnceLock::new();
static OURS: OnceLock<CK_FUNCTION_LIST> = OnceLock::new();
static CONFIG: OnceLock<Result<Config, String>> = OnceLock::new();
/// The libc functions the module stands in front of when preloaded: points after the PKCS#11
/// functions (index `NAMES.len() + i`).
const LIBC_NAMES: &[&str] = &["fsync"];
const FSYNC: usize = 68;
static COUNTS: [AtomicU64; 69] = [const { AtomicU64::new(0) }; 69];
const _: () = assert!(NAMES.len() == 68 && NAMES.len() + LIBC_NAMES.len() == COUNTS.len());

/// The name of a point (a PKCS#11 function or a libc one).
fn point_name(point: usize) -> &'static str {
    NAMES
        .get(point)
        .copied()
        .unwrap_or_else(|| LIBC_NAMES[point - NAMES.len()])
}

/// The return values the tests inject, by name.
const CODES: &[(&str, CK_RV)] = &[
    ("CKR_OK", CKR_OK),
    ("CKR_HOST_MEMORY", CKR_HOST_MEMORY),
    ("CKR_GENERAL_ERROR", CKR_GENERAL_ERROR),
    ("CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED),
    ("CKR_DEVICE_ERROR", CKR_DEVICE_ERROR),
    ("CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY),
    ("CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED),
    ("CKR_PIN_INCORRECT", CKR_PIN_INCORRECT),
    ("CKR_PIN_LOCKED", CKR_PIN_LOCKED),
    ("CKR_SESSION_CLOSED", CKR_SESSION_CLOSED),
    ("CKR_SESSION_COUNT", CKR_SESSION_COUNT),
    ("CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID),
    ("CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT),
    ("CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN),
    ("CKR_OBJECT_HANDLE_INVALID", CKR_OBJECT_HANDLE_INVALID),
    // Named in traces only (they are the token's own answers, never injected by the tests).
    ("CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD),
    ("CKR_ATTRIBUTE_SENSITIVE", CKR_ATTRIBUTE_SENSITIVE),
    ("CKR_ATTRIBUTE_TYPE_INVALID", CKR_ATTRIBUTE_TYPE_INVALID),
    ("CKR_ATTRIBUTE_VALUE_INVALID", CKR_ATTRIBUTE_VALUE_INVALID),
    ("CKR_BUFFER_TOO_SMALL", CKR_BUFFER_TOO_SMALL),
    (
        "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_CRYPTOKI_ALREADY_INITIALIZED,
    ),
    ("CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED),
    ("CKR_FUNCTION_NOT_SUPPORTED", CKR_FUNCTION_NOT_SUPPORTED),
    ("CKR_KEY_SIZE_RANGE", CKR_KEY_SIZE_RANGE),
    ("CKR_MECHANISM_INVALID", CKR_MECHANISM_INVALID),
    (
        "CKR_OPERATION_NOT_INITIALIZED",
        CKR_OPERATION_NOT_INITIALIZED,
    ),
    ("CKR_SIGNATURE_INVALID", CKR_SIGNATURE_INVALID),
    ("CKR_SLOT_ID_INVALID", CKR_SLOT_ID_INVALID),
    ("CKR_TEMPLATE_INCONSISTENT", CKR_TEMPLATE_INCONSISTENT),
    ("CKR_USER_ALREADY_LOGGED_IN", CKR_USER_ALREADY_LOGGED_IN),
];

fn parse_rv(text: &str) -> Result<CK_RV, String> {
    if let Some((_, v)) = CODES.iter().find(|(n, _)| *n == text) {
        return Ok(*v);
    }
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => CK_RV::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("HSMCA_FAULT_RV={text} is neither a known CKR_ name nor a number"))
}

fn rv_name(rv: CK_RV) -> String {
    CODES
        .iter()
        .find(|(_, v)| *v == rv)
        .map_or_else(|| format!("0x{rv:x}"), |(n, _)| (*n).to_string())
}

fn read_config() -> Result<Config, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let fault = match var("HSMCA_FAULT_FN") {
        None => None,
        Some(name) => {
            let index = NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| format!("HSMCA_FAULT_FN={name} is not a PKCS#11 2.40 function"))?;
            // SAFETY: Func is repr(usize) with one variant per NAMES entry, in the same order.
            let func = unsafe { std::mem::transmute::<usize, Func>(index) };
            let n = var("HSMCA_FAULT_N")
                .unwrap_or_else(|| "1".into())
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or("HSMCA_FAULT_N must be a call number counted from 1")?;
            let rv = parse_rv(&var("HSMCA_FAULT_RV").unwrap_or_else(|| "CKR_DEVICE_ERROR".into()))?;
            let sticky = var("HSMCA_FAULT_STICKY").is_some_and(|v| v != "0");
            Some(Fault {
                func,
                n,
                rv,
                sticky,
            })
        }
    };
    let stop = match var("HSMCA_FAULT_STOP_FN") {
        None => None,
        Some(name) => {
            let point = NAMES
                .iter()
                .chain(LIBC_NAMES)
                .position(|n| *n == name)
                .ok_or_else(|| {
                    format!(
                        "HSMCA_FAULT_STOP_FN={name} is neither a PKCS#11 2.40 function nor fsync"
                    )
                })?;
            let n = var("HSMCA_FAULT_STOP_N")
                .unwrap_or_else(|| "1".into())
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or("HSMCA_FAULT_STOP_N must be a call number counted from 1")?;
            let after = match var("HSMCA_FAULT_STOP_AT").as_deref() {
                None | Some("before") => false,
                Some("after") => true,
                Some(other) => {
                    return Err(format!(
                        "HSMCA_FAULT_STOP_AT={other}: write before or after"
                    ));
                }
            };
            Some(Stop { point, n, after })
        }
    };
    let log = match var("HSMCA_FAULT_LOG") {
        None => None,
        Some(path) => Some(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("HSMCA_FAULT_LOG={path}: {e}"))?,
        )),
    };
    let delay = match var("HSMCA_FAULT_DELAY_US") {
        None => None,
        Some(us) => Some(std::time::Duration::from_micros(
            us.parse::<u64>().map_err(|_| {
                format!("HSMCA_FAULT_DELAY_US={us} is not a number of microseconds")
            })?,
        )),
    };
    Ok(Config {
        fault,
        stop,
        log,
        delay,
    })
}

fn config() -> Result<&'static Config, &'static str> {
    CONFIG
        .get_or_init(read_config)
        .as_ref()
        .map_err(String::as_str)
}

/// Appends one line to the call log, if there is one.
fn log_line(config: &Config, line: &str) {
    if let Some(log) = &config.log
        && let Ok(mut file) = log.lock()
    {
        // One write per line: the log stays line-structured even if the process dies.
        let _ = file.write_all(line.as_bytes());
    }
}

unsafe extern "C" {
    fn raise(sig: std::os::raw::c_int) -> std::os::raw::c_int;
}

/// SIGSTOP on Linux (x86, x86-64, ARM, AArch64, RISC-V): stops every thread of the process.
const SIGSTOP: std::os::raw::c_int = 19;

/// Stops the process if this call (`count`-th of `point`, `after` it or not) is the stop point.
fn maybe_stop(config: &Config, point: usize, count: u64, after: bool) {
    if let Some(s) = &config.stop
        && s.point == point
        && s.n == count
        && s.after == after
    {
        let when = if after { "after" } else { "before" };
        log_line(config, &format!("{} STOP {when}\n", point_name(point)));
        // SAFETY: raise has no preconditions; the process resumes (or dies) when signalled.
        unsafe { raise(SIGSTOP) };
    }
}

/// Counts a call and logs it; returns its number and the value to fail it with, if this is
/// the one. Stops the process first if it is the stop point (`before`).
fn on_call(point: usize) -> (u64, Option<CK_RV>) {
    on_call_about(point, None)
}

/// [`on_call`], with what the call is about after the name on its log line (`fsync PATH`).
fn on_call_about(point: usize, about: Option<&str>) -> (u64, Option<CK_RV>) {
    let count = COUNTS[point].fetch_add(1, Ordering::SeqCst) + 1;
    let config = match config() {
        Ok(c) => c,
        Err(_) => return (count, Some(CKR_GENERAL_ERROR)),
    };
    let inject = config.fault.as_ref().and_then(|f| {
        let hit = f.func as usize == point && (count == f.n || (f.sticky && count > f.n));
        hit.then_some(f.rv)
    });
    let name = point_name(point);
    match inject {
        Some(rv) => log_line(config, &format!("{name} FAULT {}\n", rv_name(rv))),
        None => match about {
            Some(about) => log_line(config, &format!("{name} {about}\n")),
            None => log_line(config, &format!("{name}\n")),
        },
    }
    if inject.is_none() {
        maybe_stop(config, point, count, false);
    }
    if let Some(delay) = config.delay
        && point < NAMES.len()
    {
        std::thread::sleep(delay);
    }
    (count, inject)
}

/// The mechanisms `HSMCA_FAULT_HIDE_MECHS` leaves out of C_GetMechanismList.
fn hidden_mechanisms() -> &'static [CK_MECHANISM_TYPE] {
    static HIDDEN: OnceLock<Vec<CK_MECHANISM_TYPE>> = OnceLock::new();
    HIDDEN.get_or_init(|| {
        std::env::var("HSMCA_FAULT_HIDE_MECHS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|m| {
                let m = m.trim();
                match m.strip_prefix("0x") {
                    Some(hex) => CK_MECHANISM_TYPE::from_str_radix(hex, 16).ok(),
                    None => m.parse().ok(),
                }
            })
            .collect()
    })
}

/// After a successful C_GetMechanismList that filled a list: the hidden mechanisms taken out
/// and the count lowered (`words`: slot, list pointer, count pointer).
///
/// # Safety
/// `words` are the arguments of the call that just returned, as its contract has them.
unsafe fn hide_mechanisms(func: Func, rv: CK_RV, words: &[u64]) {
    let hidden = hidden_mechanisms();
    if func != Func::C_GetMechanismList || rv != CKR_OK || hidden.is_empty() {
        return;
    }
    let (list, count) = (
        words[1] as usize as *mut CK_MECHANISM_TYPE,
        words[2] as usize as *mut CK_ULONG,
    );
    if list.is_null() || count.is_null() {
        return;
    }
    // SAFETY: the module filled `*count` entries of `list`, which the caller provided.
    unsafe {
        let n = *count as usize;
        let entries = std::slice::from_raw_parts_mut(list, n);
        let mut kept = 0;
        for i in 0..n {
            if !hidden.contains(&entries[i]) {
                entries[kept] = entries[i];
                kept += 1;
            }
        }
        *count = kept as CK_ULONG;
    }
}

/// After the real call returned: stops the process if this is the stop point (`after`).
fn after_call(point: usize, count: u64) {
    if let Ok(config) = config() {
        maybe_stop(config, point, count, true);
    }
}

fn load_real() -> Result<Real, String> {
    let path = std::env::var_os("HSMCA_FAULT_REAL")
        .ok_or("HSMCA_FAULT_REAL is not set: name the real PKCS#11 module")?;
    // SAFETY: loading a PKCS#11 module runs its initialisers, which is what any PKCS#11
    // consumer does; the library is never unloaded, so the pointers it hands out stay valid.
    let lib = unsafe { libloading::Library::new(&path) }
        .map_err(|e| format!("cannot load {}: {e}", path.to_string_lossy()))?;
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11 module.
    let get: libloading::Symbol<'_, unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
        unsafe { lib.get(b"C_GetFunctionList\0") }
            .map_err(|e| format!("{}: no C_GetFunctionList: {e}", path.to_string_lossy()))?;
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer; a module returns a pointer to its static list.
    let rv = unsafe { get(&mut list) };
    if rv != CKR_OK || list.is_null() {
        return Err(format!(
            "{}: C_GetFunctionList returned {}",
            path.to_string_lossy(),
            rv_name(rv)
        ));
    }
    // SAFETY: checked non-null; the module's list lives as long as the (never unloaded) library.
    let list = unsafe { *list };
    Ok(Real { _lib: lib, list })
}

/// The module's entry point: the forwarding list (loading the real module the first time).
///
/// # Safety
/// `list` must be null or a valid pointer to write a function-list pointer to.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    if let Err(e) = config() {
        eprintln!("hsmca-faultmod: {e}");
        return CKR_GENERAL_ERROR;
    }
    let (count, inject) = on_call(Func::C_GetFunctionList as usize);
    if let Some(rv) = inject {
        return rv;
    }
    if list.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let real = match REAL.get() {
        Some(r) => r,
        None => match load_real() {
            Ok(r) => REAL.get_or_init(|| r),
            Err(e) => {
                eprintln!("hsmca-faultmod: {e}");
                return CKR_GENERAL_ERROR;
            }
        },
    };
    let ours = OURS.get_or_init(|| {
        let mut l = forwarding_list(real.list.version);
        l.C_GetFunctionList = Some(C_GetFunctionList);
        l
    });
    // SAFETY: checked non-null above. PKCS#11 callers only read the list.
    unsafe { *list = std::ptr::from_ref(ours).cast_mut() };
    after_call(Func::C_GetFunctionList as usize, count);
    CKR_OK
}

unsafe extern "C" {
    fn dlsym(
        handle: *mut std::ffi::c_void,
        symbol: *const std::os::raw::c_char,
    ) -> *mut std::ffi::c_void;
}

/// glibc's RTLD_NEXT: the next definition after this library's, here libc's.
const RTLD_NEXT: *mut std::ffi::c_void = -1isize as *mut std::ffi::c_void;

type FsyncFn = unsafe extern "C" fn(std::os::raw::c_int) -> std::os::raw::c_int;

/// The address of libc's `name` (the definition after this library's), looked up once.
fn next_definition(cache: &OnceLock<usize>, name: &std::ffi::CStr) -> usize {
    let addr = *cache.get_or_init(|| {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name has no other precondition.
        unsafe { dlsym(RTLD_NEXT, name.as_ptr()) as usize }
    });
    if addr == 0 {
        // No eprintln: it would write through the stand-in below.
        std::process::abort();
    }
    addr
}

/// libc's `fsync`, for the stand-in below.
fn real_fsync() -> FsyncFn {
    static REAL_FSYNC: OnceLock<usize> = OnceLock::new();
    let addr = next_definition(&REAL_FSYNC, c"fsync");
    // SAFETY: the address is libc's fsync, which has this signature.
    unsafe { std::mem::transmute::<usize, FsyncFn>(addr) }
}

type WriteFn = unsafe extern "C" fn(std::os::raw::c_int, *const std::ffi::c_void, usize) -> isize;

/// libc's `write`, for the stand-in below.
fn real_write() -> WriteFn {
    static REAL_WRITE: OnceLock<usize> = OnceLock::new();
    let addr = next_definition(&REAL_WRITE, c"write");
    // SAFETY: the address is libc's write, which has this signature.
    unsafe { std::mem::transmute::<usize, WriteFn>(addr) }
}

/// The write to tear (`HSMCA_FAULT_TEAR`, `HSMCA_FAULT_TEAR_N`), if any.
struct Tear {
    suffix: String,
    n: u64,
}

fn tear() -> Option<&'static Tear> {
    static TEAR: OnceLock<Option<Tear>> = OnceLock::new();
    TEAR.get_or_init(|| {
        let suffix = std::env::var("HSMCA_FAULT_TEAR")
            .ok()
            .filter(|s| !s.is_empty())?;
        let n = std::env::var("HSMCA_FAULT_TEAR_N")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Some(Tear { suffix, n })
    })
    .as_ref()
}

static TEAR_COUNT: AtomicU64 = AtomicU64::new(0);

/// Stands in front of libc's `write` when the module is preloaded: forwards every call, except
/// the one `HSMCA_FAULT_TEAR` names, which writes half and stops the process.
///
/// # Safety
/// As libc's `write`: `buf` points to `count` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(
    fd: std::os::raw::c_int,
    buf: *const std::ffi::c_void,
    count: usize,
) -> isize {
    let real = real_write();
    if let Some(t) = tear()
        && count > 1
        && let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        && path.to_string_lossy().ends_with(&t.suffix)
        && TEAR_COUNT.fetch_add(1, Ordering::SeqCst) + 1 == t.n
    {
        // SAFETY: the first half of the caller's buffer, forwarded to libc's write.
        let written = unsafe { real(fd, buf, count / 2) };
        if let Ok(config) = config() {
            log_line(config, &format!("write STOP torn {}\n", path.display()));
        }
        // SAFETY: raise has no preconditions; the process resumes (or dies) when signalled.
        unsafe { raise(SIGSTOP) };
        return written;
    }
    // SAFETY: forwarded unchanged to libc's write.
    unsafe { real(fd, buf, count) }
}

/// Stands in front of libc's `fsync` when the module is preloaded (`LD_PRELOAD`): counts and
/// logs the call and stops the process there if asked; never fails it.
///
/// # Safety
/// As libc's `fsync`: any file descriptor value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsync(fd: std::os::raw::c_int) -> std::os::raw::c_int {
    let real = real_fsync();
    // The file, as /proc names it (an unnamed O_TMPFILE file: `DIR/#INODE (deleted)`).
    let path = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map_or_else(|_| format!("fd:{fd}"), |p| p.display().to_string());
    let (count, _) = on_call_about(FSYNC, Some(&path));
    // SAFETY: forwarded unchanged to libc's fsync.
    let rv = unsafe { real(fd) };
    after_call(FSYNC, count);
    rv
}
