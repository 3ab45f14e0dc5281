//! Two jobs.
//!
//! Gives the binary its commit for `hsmca --version` and the ceremony transcript: HSMCA_COMMIT
//! when set (scripts/release.sh sets it), else `git rev-parse HEAD`, else "unknown" (a source
//! tarball or vendored build without git).
//!
//! Tells the integration tests (tests/it/) which outside tools are missing: for each gate of
//! [`GATES`] whose tools it cannot find it sets the cfg `hsmca_no_GATE`, and a test marked
//! `#[test_needs(GATE)]` is then ignored with the reason and the fix (libtest cannot skip a test
//! at run time), and it says so in a build warning. It probes in debug builds only (the tests'
//! profile), so that a release build never depends on what is installed. It looks where the
//! tests look (`tests/it/common/locate.rs`, compiled in here too) and runs again when a system
//! directory of programs changes (a package installed or removed) or when
//! `HSMCA_TEST_SOFTHSM_MODULE` or `HSMCA_TEST_HIDE` changes. `HSMCA_TEST_HIDE=softhsm2,etcd`
//! (or `all`) treats those gates as missing, to see the skips on a machine that has everything.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "tests/it/common/locate.rs"]
mod locate;

/// A probe: what of a gate's tools is missing (nothing when all are there).
type Probe = fn() -> Vec<String>;

/// The gates `#[test_needs(...)]` names (testgate/src/lib.rs holds the reason each test gives),
/// each with its probe.
const GATES: [(&str, Probe); 6] = [
    ("softhsm2", softhsm2),
    ("etcd", || programs(&["etcd", "etcdctl"])),
    ("kubectl", || programs(&["kubectl"])),
    ("tpm2_pkcs11", tpm2_pkcs11),
    ("opencryptoki", opencryptoki),
    ("root", root),
];

/// Where Debian installs programs: a package installed or removed changes one of them.
const PROGRAM_DIRS: [&str; 6] = [
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
];

fn main() {
    println!("cargo:rerun-if-env-changed=HSMCA_COMMIT");
    let commit = std::env::var("HSMCA_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=HSMCA_COMMIT={commit}");
    test_gates();
}

fn git_head() -> Option<String> {
    // Rerun when HEAD moves; only paths that exist (a missing one makes cargo rerun every build).
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && commit.len() == 40).then_some(commit)
}

/// Sets `hsmca_no_GATE` for each missing gate and writes them, one `GATE: what is missing` line
/// each, to `$OUT_DIR/missing-test-tools.txt` for the tests' guard (tests/it/main.rs).
fn test_gates() {
    for (gate, _) in GATES {
        println!("cargo:rustc-check-cfg=cfg(hsmca_no_{gate})");
    }
    let mut report = String::new();
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        println!("cargo:rerun-if-env-changed=HSMCA_TEST_HIDE");
        println!("cargo:rerun-if-env-changed=HSMCA_TEST_SOFTHSM_MODULE");
        // Directories that exist (a missing path would make cargo rerun this every build), each
        // once (/bin is /usr/bin on a merged /usr).
        let mut watched: Vec<PathBuf> = PROGRAM_DIRS
            .iter()
            .filter_map(|d| Path::new(d).canonicalize().ok())
            .collect();
        watched.sort();
        watched.dedup();
        for dir in watched {
            println!("cargo:rerun-if-changed={}", dir.display());
        }
        let hidden = std::env::var("HSMCA_TEST_HIDE").unwrap_or_default();
        let hidden: Vec<&str> = hidden.split(',').map(str::trim).collect();
        for (gate, probe) in GATES {
            let missing = if hidden.contains(&gate) || hidden.contains(&"all") {
                vec!["hidden by HSMCA_TEST_HIDE".to_owned()]
            } else {
                probe()
            };
            if missing.is_empty() {
                continue;
            }
            let missing = missing.join(", ");
            println!("cargo:rustc-cfg=hsmca_no_{gate}");
            println!(
                "cargo:warning=integration tests marked #[test_needs({gate})] are ignored: \
                 {missing}; {}",
                if gate == "root" {
                    "run them as root"
                } else {
                    "scripts/install-deps.sh installs what they need"
                }
            );
            report.push_str(&format!("{gate}: {missing}\n"));
        }
    }
    // Written in every profile: the tests include it.
    let out_dir = std::env::var_os("OUT_DIR").map(PathBuf::from);
    if let Some(dir) = out_dir
        && let Err(e) = std::fs::write(dir.join("missing-test-tools.txt"), report)
    {
        println!("cargo:warning=cannot write missing-test-tools.txt: {e}");
    }
}

/// The programs of `names` not on PATH, each as "NAME is not on PATH".
fn programs(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|p| locate::on_path(p).is_none())
        .map(|p| format!("{p} is not on PATH"))
        .collect()
}

/// `path` is missing, said as such (or nothing when it is there).
fn file(path: &str) -> Option<String> {
    (!Path::new(path).is_file()).then(|| format!("{path} is missing"))
}

fn softhsm2() -> Vec<String> {
    let mut missing = programs(&["softhsm2-util"]);
    if locate::softhsm_module().is_none() {
        missing.push("libsofthsm2.so is not found".to_owned());
    }
    missing
}

fn tpm2_pkcs11() -> Vec<String> {
    let mut missing = programs(&[
        "swtpm",
        "swtpm_setup",
        "tpm2-abrmd",
        "dbus-daemon",
        "tpm2_ptool",
    ]);
    missing.extend(file(locate::TPM2_PKCS11_MODULE));
    missing
}

fn opencryptoki() -> Vec<String> {
    let mut missing = programs(&["pkcsconf"]);
    missing.extend(file("/usr/sbin/pkcsslotd"));
    missing.extend(file(locate::OPENCRYPTOKI_MODULE));
    missing
}

/// Root with CAP_SYS_ADMIN (mount, unshare -n; openCryptoki's store under /var/lib), from
/// /proc/self/status: the effective user id and the effective capabilities.
fn root() -> Vec<String> {
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let euid = field("Uid:").split_whitespace().nth(1).map(str::to_owned);
    let cap_eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap_or(0);
    let mut missing = Vec::new();
    if euid.as_deref() != Some("0") {
        missing.push("not running as root".to_owned());
    } else if cap_eff & CAP_SYS_ADMIN == 0 {
        missing.push("root without CAP_SYS_ADMIN".to_owned());
    }
    missing
}
