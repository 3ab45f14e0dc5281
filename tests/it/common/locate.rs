//! Where the outside tools are. Compiled twice: into the tests (`common::locate`) and into the
//! package's build script (`#[path]` in build.rs), so that the build decides which tests to
//! skip by looking exactly where the tests will look. Standard library only, for that reason.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// tpm2-pkcs11's PKCS#11 module (Debian's libtpm2-pkcs11-1).
pub const TPM2_PKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1";

/// openCryptoki's PKCS#11 module (Debian's opencryptoki).
pub const OPENCRYPTOKI_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so.0";

/// `program` as `Command::new(program)` would run it: the first executable file of that name in
/// a directory of PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first of `candidates` that is a file.
pub fn first_existing(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// The file named `file_name` that the Debian package `package` installed, if it is installed.
pub fn from_dpkg(package: &str, file_name: &str) -> Option<PathBuf> {
    let out = Command::new("dpkg").args(["-L", package]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .find(|p| p.file_name() == Some(OsStr::new(file_name)) && p.is_file())
}

/// SoftHSM2's PKCS#11 module: `HSMCA_TEST_SOFTHSM_MODULE` when set, else where Debian and a
/// source build put it.
pub fn softhsm_module() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HSMCA_TEST_SOFTHSM_MODULE") {
        return Some(PathBuf::from(p));
    }
    first_existing(&[
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ])
    .or_else(|| from_dpkg("libsofthsm2", "libsofthsm2.so"))
}
