//! Harness shared by the integration tests (`use crate::common::*;` in each module).
//!
//! Every test gets its own SoftHSM2 token store in a temporary directory (its own
//! `softhsm2.conf`, passed to each child process through `SOFTHSM2_CONF`), so tests run in
//! parallel without sharing tokens. The `hsmca` binary runs with that directory as its working
//! directory, so tests can use relative paths (`root.crt`, `cluster/inter.csr`).
//!
//! Outside tools used: softhsm2-util, openssl, certtool, pkcs11-tool, OpenSC's pkcs11-spy and
//! pkilint (in `.venv-pkilint`). `scripts/install-deps.sh` installs all of them;
//! `scripts/test.sh` runs it first. A test that needs SoftHSM2 (or another gate) is marked
//! [`test_needs`] and is skipped where it is missing (see `main.rs`); a missing program that
//! is not a gate fails the test with a message naming its package ([`install_hint`]).

pub mod locate;

pub use hsmca_testgate::test_needs;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// User PIN of every test token (test-only value).
pub const USER_PIN: &str = "test-user-pin";
/// Security-officer PIN of every test token (test-only value).
pub const SO_PIN: &str = "test-so-pin-4321";
/// Subject of the roots the tests create (RFC 4514 order: the last RDN, C, is encoded first).
pub const ROOT_SUBJECT: &str = "CN=Example Root CA 2026,O=Example,C=KR";
/// A child process running longer than this is killed and the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ------------------------------------------------------------------------------------------------
// Locating the PKCS#11 modules
// ------------------------------------------------------------------------------------------------

/// Path of SoftHSM2's PKCS#11 module (`HSMCA_TEST_SOFTHSM_MODULE` overrides).
pub fn softhsm_module() -> PathBuf {
    locate::softhsm_module().expect(
        "libsofthsm2.so not found: SoftHSM2 is not installed: run scripts/install-deps.sh \
         (or apt-get install softhsm2)",
    )
}

/// The fault module: `HSMCA_TEST_FAULTMOD`, else built from `faultmod/` into `target/faultmod`
/// (its own target directory, so building it never waits for the lock of the build running
/// the tests).
pub fn faultmod() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("HSMCA_TEST_FAULTMOD") {
            return PathBuf::from(p);
        }
        let target = repo_root().join("target/faultmod");
        assert_ok(&run_command(
            Command::new(option_env!("CARGO").unwrap_or("cargo"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "hsmca-faultmod",
                    "--manifest-path",
                ])
                .arg(repo_root().join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target),
        ));
        let so = target.join("debug/libhsmca_faultmod.so");
        assert!(so.is_file(), "{} was not built", so.display());
        so
    })
}

/// The process state letter in /proc/PID/stat (`T` when stopped).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Waits until `child` has stopped itself (the fault module's SIGSTOP at its stop point);
/// panics with `what` if it ends first or has not stopped within a minute.
#[track_caller]
pub fn wait_until_stopped(child: &mut std::process::Child, what: &str) {
    let start = Instant::now();
    while process_state(child.id()) != Some('T') {
        // try_wait does not report a stopped child (no WUNTRACED): only an ended one.
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what}: it ended ({status}) before its stop point");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: it did not reach its stop point within 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Path of OpenSC's pkcs11-spy module (logs every PKCS#11 call, PINs included: tests only).
pub fn spy_module() -> PathBuf {
    locate::first_existing(&[
        "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so",
        "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so",
        "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
        "/usr/lib/aarch64-linux-gnu/pkcs11/pkcs11-spy.so",
    ])
    .or_else(|| locate::from_dpkg("opensc-pkcs11", "pkcs11-spy.so"))
    .expect(
        "pkcs11-spy.so not found: OpenSC's pkcs11-spy is not installed: run \
         scripts/install-deps.sh (or apt-get install opensc-pkcs11)",
    )
}

// ------------------------------------------------------------------------------------------------
// Running processes
// ------------------------------------------------------------------------------------------------

/// Runs `cmd` to completion with stdin closed, capturing stdout and stderr, killing it after
/// [`COMMAND_TIMEOUT`]. Panics only if the program cannot be started (naming the package to
/// install when it is not) or times out.
pub fn run_command(cmd: &mut Command) -> Output {
    eprintln!("$ {}", describe(cmd));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {}: {e}{}",
            describe(cmd),
            install_hint(cmd.get_program())
        )
    });
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_thread.join().unwrap_or_default();
            let stderr = err_thread.join().unwrap_or_default();
            panic!(
                "timed out after {:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                COMMAND_TIMEOUT,
                describe(cmd),
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// The Debian package of each outside program the tests run (scripts/install-deps.sh installs
/// them all).
const PACKAGES: [(&str, &str); 17] = [
    ("openssl", "openssl"),
    ("certtool", "gnutls-bin"),
    ("pkcs11-tool", "opensc"),
    ("softhsm2-util", "softhsm2"),
    ("etcd", "etcd-server"),
    ("etcdctl", "etcd-client"),
    ("kubectl", "kubernetes-client"),
    ("swtpm", "swtpm"),
    ("swtpm_setup", "swtpm-tools"),
    ("tpm2-abrmd", "tpm2-abrmd"),
    ("dbus-daemon", "dbus"),
    ("tpm2_ptool", "libtpm2-pkcs11-tools"),
    ("pkcsconf", "opencryptoki"),
    ("pkcsslotd", "opencryptoki"),
    ("setsid", "util-linux"),
    ("unshare", "util-linux"),
    ("timeout", "coreutils"),
];

/// What to install when `program` (a bare name) is not on PATH: a line for a panic message,
/// empty when it is there (the failure was something else).
fn install_hint(program: &OsStr) -> String {
    let name = program.to_string_lossy();
    if name.contains('/') || locate::on_path(&name).is_some() {
        return String::new();
    }
    let package = PACKAGES
        .iter()
        .find(|(p, _)| *p == name)
        .map_or_else(String::new, |(_, pkg)| {
            format!(" (or apt-get install {pkg})")
        });
    format!("\n{name} is not installed: run scripts/install-deps.sh{package}")
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            let _ = write!(s, "'{a}'");
        } else {
            s.push_str(&a);
        }
    }
    s
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dump(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        stdout_of(out),
        stderr_of(out)
    )
}

/// `text` as JSON (a report, a log line), or a panic that shows it.
#[track_caller]
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Asserts a command succeeded; returns its stdout.
#[track_caller]
pub fn assert_ok(out: &Output) -> String {
    assert!(out.status.success(), "command failed\n{}", dump(out));
    stdout_of(out)
}

/// Asserts a command failed the way the CLI contract says: exit code 1, stderr starting with
/// `error: ` and holding a `hint: ` line. Returns stderr.
#[track_caller]
pub fn assert_fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command succeeded but should have failed\n{}",
        dump(out)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1\n{}",
        dump(out)
    );
    let stderr = stderr_of(out);
    assert!(
        error_first(&stderr),
        "stderr should start with `error: ` (after any `note: ` lines)\n{}",
        dump(out)
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("hint: ")),
        "stderr should have a `hint: ` line\n{}",
        dump(out)
    );
    stderr
}

/// Whether the first line of `stderr` that is not a `note: ` (said before the work started) is
/// the `error: ` line.
pub fn error_first(stderr: &str) -> bool {
    stderr
        .lines()
        .find(|l| !l.starts_with("note: "))
        .is_some_and(|l| l.starts_with("error: "))
}

/// Asserts `text` mentions at least one of `any_of` (case-insensitive).
#[track_caller]
pub fn assert_mentions(text: &str, any_of: &[&str]) {
    let lower = text.to_lowercase();
    assert!(
        any_of.iter().any(|w| lower.contains(&w.to_lowercase())),
        "expected the message to mention one of {any_of:?}, got:\n{text}"
    );
}

/// Runs any program in `dir`, returning its output.
pub fn run_in(dir: &Path, program: &str, args: &[&str]) -> Output {
    run_command(Command::new(program).args(args).current_dir(dir))
}

// ------------------------------------------------------------------------------------------------
// Test tokens
// ------------------------------------------------------------------------------------------------

/// A SoftHSM2 token of its own in a temporary directory.
pub struct TestToken {
    dir: tempfile::TempDir,
    /// The token's label.
    pub label: String,
    /// Its softhsm2.conf.
    pub conf: PathBuf,
    /// The SoftHSM2 module.
    pub module: PathBuf,
    spy_log: Option<PathBuf>,
}

/// The environment variables of the fault module and the spy, removed from every command
/// unless a test sets them.
pub const CALL_LOG_VARS: [&str; 16] = [
    "HSMCA_FAULT_REAL",
    "HSMCA_FAULT_FN",
    "HSMCA_FAULT_N",
    "HSMCA_FAULT_RV",
    "HSMCA_FAULT_STICKY",
    "HSMCA_FAULT_LOG",
    "HSMCA_FAULT_TRACE",
    "HSMCA_FAULT_STOP_FN",
    "HSMCA_FAULT_STOP_N",
    "HSMCA_FAULT_STOP_AT",
    "HSMCA_FAULT_TEAR",
    "HSMCA_FAULT_TEAR_N",
    "LD_PRELOAD",
    "PKCS11SPY",
    "PKCS11SPY_OUTPUT",
    "RUST_BACKTRACE",
];

/// What `hsmca key generate` printed.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub uri: String,
    pub spki_sha256: String,
}

impl TestToken {
    /// Makes a temporary directory with its own softhsm2.conf and token store, and initialises
    /// a token labelled `label` (user PIN [`USER_PIN`], SO PIN [`SO_PIN`]).
    pub fn new(label: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hsmca-test-")
            .tempdir()
            .expect("create tempdir");
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).unwrap();
        let template = fs::read_to_string(repo_root().join("softhsm/softhsm2.conf.in"))
            .expect("read softhsm/softhsm2.conf.in");
        assert!(template.contains("@TOKENDIR@"));
        let conf = dir.path().join("softhsm2.conf");
        fs::write(
            &conf,
            template.replace("@TOKENDIR@", tokens.to_str().expect("utf-8 tempdir")),
        )
        .unwrap();
        let out = run_command(
            Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", USER_PIN, "--so-pin", SO_PIN])
                .env("SOFTHSM2_CONF", &conf),
        );
        assert_ok(&out);
        TestToken {
            dir,
            label: label.to_string(),
            conf,
            module: softhsm_module(),
            spy_log: None,
        }
    }

    /// The same token, with `hsmca` loading the fault module (no fault: it traces every call,
    /// one whole line per call with its thread, to [`TestToken::trace_log`]) in front of
    /// OpenSC's pkcs11-spy (which logs every call to [`TestToken::spy_log`], a second witness
    /// whose lines interleave when several threads call) in front of SoftHSM2.
    pub fn with_spy(mut self) -> Self {
        self.spy_log = Some(self.dir.path().join("pkcs11-spy.log"));
        self
    }

    /// The temporary directory (hsmca's working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `dir()/rel`.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Makes `dir()/rel` (and parents); returns it.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// The spy's log file (panics if the token was not made `with_spy`).
    pub fn spy_log(&self) -> &Path {
        self.spy_log
            .as_deref()
            .expect("token made without with_spy()")
    }

    /// The fault module's trace (panics if the token was not made `with_spy`).
    pub fn trace_log(&self) -> PathBuf {
        self.spy_log().with_file_name("pkcs11-trace.log")
    }

    /// Deletes the spy log and the trace so the next command starts fresh ones.
    pub fn clear_call_logs(&self) {
        let _ = fs::remove_file(self.spy_log());
        let _ = fs::remove_file(self.trace_log());
    }

    /// Number of C_Login calls, counted in the trace and checked against the spy's log.
    #[track_caller]
    pub fn login_calls(&self) -> usize {
        let traced = count_traced(&self.trace_log(), "C_Login");
        assert_eq!(
            traced,
            count_logins(self.spy_log()),
            "the trace and the spy disagree on C_Login ({})",
            self.trace_log().display()
        );
        traced
    }

    /// `hsmca` with SOFTHSM2_CONF, HSMCA_MODULE, HSMCA_PIN set and cwd = `dir()`.
    pub fn hsmca(&self) -> Command {
        let mut cmd = Command::new(hsmca_bin());
        self.configure(&mut cmd);
        cmd
    }

    /// Gives any command (for example `setsid -w hsmca ...`) the environment and working
    /// directory that [`TestToken::hsmca`] has.
    pub fn configure(&self, cmd: &mut Command) {
        cmd.current_dir(self.dir.path())
            .env("SOFTHSM2_CONF", &self.conf)
            .env("HSMCA_PIN", USER_PIN)
            .env_remove("HSMCA_CA_DIR")
            .env_remove("HSMCA_OPERATOR");
        for v in CALL_LOG_VARS {
            cmd.env_remove(v);
        }
        match &self.spy_log {
            Some(log) => {
                cmd.env("HSMCA_MODULE", faultmod())
                    .env("HSMCA_FAULT_REAL", spy_module())
                    .env("HSMCA_FAULT_TRACE", self.trace_log())
                    .env("PKCS11SPY", &self.module)
                    .env("PKCS11SPY_OUTPUT", log);
            }
            None => {
                cmd.env("HSMCA_MODULE", &self.module);
            }
        }
    }

    /// Runs `hsmca ARGS` (see [`TestToken::hsmca`]).
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.hsmca().args(args))
    }

    /// Runs `hsmca ARGS` with extra environment (`(name, Some(value))` sets, `None` removes).
    pub fn run_env<I, S>(&self, env: &[(&str, Option<&str>)], args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.hsmca();
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        run_command(cmd.args(args))
    }

    /// `hsmca key generate --token LABEL --label NAME --algorithm ALG`; parses `uri:` and
    /// `spki-sha256:` from its output.
    #[track_caller]
    pub fn generate_key(&self, name: &str, algorithm: &str) -> GeneratedKey {
        let out = self.run(key_generate_args(&self.label, name, algorithm));
        parse_generated_key(&assert_ok(&out))
    }

    /// `pkcs11:token=<label>;object=<name>` with both parts percent-encoded.
    pub fn key_uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={}",
            pct_encode(&self.label),
            pct_encode(object)
        )
    }

    /// `hsmca root create --key URI --subject ROOT_SUBJECT --validity VALIDITY --out OUT`.
    #[track_caller]
    pub fn create_root(&self, key_uri: &str, validity: &str, out: &str) -> String {
        assert_ok(&self.run(root_create_args(key_uri, validity, out)))
    }

    /// Key `root-2026` (ALGORITHM) and its 20-year root `root.crt`: the CA most tests start
    /// from.
    #[track_caller]
    pub fn root_ca(&self, algorithm: &str) -> GeneratedKey {
        let key = self.generate_key("root-2026", algorithm);
        self.create_root(&key.uri, "20y", "root.crt");
        key
    }

    /// The cluster's P-256 request `cluster/inter.csr` for `CN=cn` (its key in `cluster/`).
    #[track_caller]
    pub fn inter_csr(&self, cn: &str) -> (PathBuf, PathBuf) {
        make_csr(&self.path("cluster"), "inter", CsrAlg::P256, cn)
    }

    /// Contents of every file under `dir()` except the token store and the spy log (and *.log
    /// files, where an audit trail may legitimately grow even when a command fails).
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_in(self.dir.path())
            .into_iter()
            .filter(|(p, _)| {
                !p.starts_with("tokens")
                    && p.as_path() != Path::new("pkcs11-spy.log")
                    && p.extension() != Some(OsStr::new("log"))
            })
            .collect()
    }
}

// ------------------------------------------------------------------------------------------------
// hsmca argument lists (the commands most tests run, so each test shows only what differs)
// ------------------------------------------------------------------------------------------------

/// `args` as owned strings, for argument lists that get more pushed on.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// `args.with(&[...])`: an argument list with more flags after it (`--chain-out`, `--force`).
pub trait With {
    fn with(self, more: &[&str]) -> Vec<String>;
}

impl With for Vec<String> {
    fn with(mut self, more: &[&str]) -> Vec<String> {
        self.extend(strings(more));
        self
    }
}

/// `--ca-dir DIR` then `args`: the command recorded in CA directory DIR.
pub fn in_ca_dir(dir: &str, args: Vec<String>) -> Vec<String> {
    [strings(&["--ca-dir", dir]), args].concat()
}

/// `key generate --token TOKEN --label NAME --algorithm ALGORITHM`.
pub fn key_generate_args(token: &str, name: &str, algorithm: &str) -> Vec<String> {
    strings(&[
        "key",
        "generate",
        "--token",
        token,
        "--label",
        name,
        "--algorithm",
        algorithm,
    ])
}

/// `root create --key KEY_URI --subject ROOT_SUBJECT --validity VALIDITY --out OUT`.
pub fn root_create_args(key_uri: &str, validity: &str, out: &str) -> Vec<String> {
    strings(&[
        "root",
        "create",
        "--key",
        key_uri,
        "--subject",
        ROOT_SUBJECT,
        "--validity",
        validity,
        "--out",
        out,
    ])
}

/// `sign` of the intermediate most tests issue: ISSUER's key certifies CSR with `--profile
/// intermediate --path-len 0 --permit-dns example.com --validity 5y`.
pub fn sign_args(key_uri: &str, issuer: &str, csr: &str, out: &str) -> Vec<String> {
    intermediate_args(key_uri, csr, "5y", out).with(&[
        "--issuer",
        issuer,
        "--permit-dns",
        "example.com",
    ])
}

/// `sign` of an intermediate (`--profile intermediate --path-len 0`) with neither `--issuer`
/// (a CA directory knows it) nor name constraints: callers add what they test.
pub fn intermediate_args(key_uri: &str, csr: &str, validity: &str, out: &str) -> Vec<String> {
    strings(&[
        "sign",
        "--key",
        key_uri,
        "--csr",
        csr,
        "--profile",
        "intermediate",
        "--path-len",
        "0",
        "--validity",
        validity,
        "--out",
        out,
    ])
}

/// `sign` of every request in CSR_DIR into OUT_DIR as intermediates (`--profile intermediate
/// --path-len 0 --validity 5y`): a batch.
pub fn batch_sign_args(key_uri: &str, csr_dir: &str, out_dir: &str) -> Vec<String> {
    strings(&[
        "sign",
        "--key",
        key_uri,
        "--csr-dir",
        csr_dir,
        "--out-dir",
        out_dir,
        "--profile",
        "intermediate",
        "--path-len",
        "0",
        "--validity",
        "5y",
    ])
}

/// The hsmca binary under test.
pub fn hsmca_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hsmca")
}

/// Parses `uri: ...` and `spki-sha256: ...` lines of `hsmca key generate`.
#[track_caller]
pub fn parse_generated_key(stdout: &str) -> GeneratedKey {
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{name}` line in key generate output:\n{stdout}"))
    };
    let uri = field("uri:");
    let spki_sha256 = field("spki-sha256:").to_lowercase();
    assert!(uri.starts_with("pkcs11:"), "bad uri line: {uri}");
    assert!(
        spki_sha256.len() == 64 && spki_sha256.chars().all(|c| c.is_ascii_hexdigit()),
        "bad spki-sha256 line: {spki_sha256}"
    );
    GeneratedKey { uri, spki_sha256 }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Counts the calls of `function` in a fault module trace (0 if there is none).
pub fn count_traced(trace: &Path, function: &str) -> usize {
    fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some(function))
        .count()
}

/// Counts `C_Login` / `C_LoginUser` calls in a pkcs11-spy log (0 if the log does not exist).
/// Each call is logged as a line `N: C_Login`.
pub fn count_logins(log: &Path) -> usize {
    let Ok(bytes) = fs::read(log) else {
        return 0;
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| {
            l.split_once(": ").is_some_and(|(n, f)| {
                n.chars().all(|c| c.is_ascii_digit())
                    && !n.is_empty()
                    && (f.trim_end() == "C_Login" || f.trim_end() == "C_LoginUser")
            })
        })
        .count()
}

// ------------------------------------------------------------------------------------------------
// Files
// ------------------------------------------------------------------------------------------------

/// Every regular file under `dir` (recursively): path relative to `dir` → contents.
pub fn files_in(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, map: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(base, &p, map);
            } else if ft.is_file()
                && let Ok(bytes) = fs::read(&p)
            {
                map.insert(p.strip_prefix(base).unwrap().to_path_buf(), bytes);
            }
        }
    }
    let mut map = BTreeMap::new();
    walk(dir, dir, &mut map);
    map
}

/// Asserts two snapshots are equal, naming the files added, removed or changed.
#[track_caller]
pub fn assert_same_files(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let removed: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    let changed: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        added.is_empty() && removed.is_empty() && changed.is_empty(),
        "files differ: added {added:?}, removed {removed:?}, changed {changed:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// PEM / base64
// ------------------------------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64, ignoring whitespace; `None` on any other bad character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// All PEM blocks in `text`: (label, DER).
pub fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_string();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            break;
        };
        if let Some(der) = base64_decode(&body_start[..end]) {
            blocks.push((label, der));
        }
        rest = &body_start[end + end_marker.len()..];
    }
    blocks
}

/// Wraps DER as PEM with the given label.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(line).unwrap());
        s.push('\n');
    }
    let _ = writeln!(s, "-----END {label}-----");
    s
}

/// DER of the single certificate in a PEM (or DER) file.
#[track_caller]
pub fn cert_der(path: &Path) -> Vec<u8> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    if bytes.first() == Some(&0x30) {
        return bytes;
    }
    let blocks = pem_blocks(&String::from_utf8_lossy(&bytes));
    let certs: Vec<_> = blocks
        .into_iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .collect();
    assert_eq!(
        certs.len(),
        1,
        "{} should hold one certificate",
        path.display()
    );
    certs.into_iter().next().unwrap().1
}

// ------------------------------------------------------------------------------------------------
// Private key material detection
// ------------------------------------------------------------------------------------------------

/// Describes why `bytes` look like they contain a private key, if they do: a PEM `PRIVATE KEY`
/// label (PKCS#8, SEC1, PKCS#1, encrypted), or a DER PKCS#8 / SEC1 / PKCS#1 private key
/// structure, in the raw bytes, inside any PEM block or inside any long base64 string.
pub fn private_key_material(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("PRIVATE KEY") {
        return Some("a `PRIVATE KEY` PEM label".into());
    }
    if let Some(why) = der_private_key(bytes) {
        return Some(why);
    }
    for (label, der) in pem_blocks(&text) {
        if let Some(why) = der_private_key(&der) {
            return Some(format!("{why} inside a PEM `{label}` block"));
        }
    }
    // Base64 outside PEM (for example DER in a JSON audit record).
    for run in
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
    {
        if run.len() >= 64
            && let Some(der) = base64_decode(run)
            && let Some(why) = der_private_key(&der)
        {
            return Some(format!("{why} inside a base64 string"));
        }
    }
    None
}

/// The bytes after a DER SEQUENCE header (tag and short or long length) at the start of `w`.
fn sequence_body(w: &[u8]) -> Option<&[u8]> {
    if w.first() != Some(&0x30) {
        return None;
    }
    match *w.get(1)? {
        n if n < 0x80 => w.get(2..),
        0x81 => w.get(3..),
        0x82 => w.get(4..),
        _ => None,
    }
}

fn der_private_key(b: &[u8]) -> Option<String> {
    // Key algorithm OIDs as encoded (06 len value).
    const RSA: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
    ];
    const RSA_PSS: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
    ];
    const EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
    const ED448: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x71];
    for i in 0..b.len() {
        let w = &b[i..];
        // PKCS#8 PrivateKeyInfo / OneAsymmetricKey: INTEGER 0|1, SEQUENCE { OID, ... }
        if w.len() > 6 && w[0] == 0x02 && w[1] == 0x01 && w[2] <= 1 && w[3] == 0x30 {
            let alg = &w[5..];
            if [RSA, RSA_PSS, EC, ED25519, ED448]
                .iter()
                .any(|oid| alg.starts_with(oid))
            {
                return Some(format!("a DER PKCS#8 private key structure at offset {i}"));
            }
        }
        // SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING of 32/48/66 bytes, ... }
        if let Some(body) = sequence_body(w)
            && body.len() > 5
            && body[..4] == [0x02, 0x01, 0x01, 0x04]
            && matches!(body[4], 0x20 | 0x30 | 0x42)
        {
            return Some(format!("a DER SEC1 EC private key structure at offset {i}"));
        }
        // PKCS#1 RSAPrivateKey: SEQUENCE { INTEGER 0, INTEGER modulus (long form), ... }
        if let Some(body) = sequence_body(w)
            && body.len() > 5
            && body[..4] == [0x02, 0x01, 0x00, 0x02]
            && matches!(body[4], 0x81 | 0x82)
        {
            return Some(format!(
                "a DER PKCS#1 RSA private key structure at offset {i}"
            ));
        }
    }
    None
}

// ------------------------------------------------------------------------------------------------
// Verifiers
// ------------------------------------------------------------------------------------------------

/// `openssl verify -x509_strict -CAfile ROOT -untrusted CHAIN LEAF`.
pub fn openssl_verify(root: &Path, untrusted_chain: &[&Path], leaf: &Path) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict", "-CAfile"]).arg(root);
    let bundle_dir = tempfile::tempdir().unwrap();
    if !untrusted_chain.is_empty() {
        let mut bundle = Vec::new();
        for p in untrusted_chain {
            bundle.extend(fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())));
            bundle.push(b'\n');
        }
        let bundle_path = bundle_dir.path().join("untrusted.pem");
        fs::write(&bundle_path, bundle).unwrap();
        cmd.arg("-untrusted").arg(bundle_path);
    }
    cmd.arg(leaf);
    let out = run_command(&mut cmd);
    let stdout = stdout_of(&out);
    if out.status.success() && stdout.trim_end().ends_with(": OK") {
        Ok(())
    } else {
        Err(format!("{}{}", stdout, stderr_of(&out)))
    }
}

/// `certtool --verify-chain --infile CHAIN` (leaf first, self-signed root last).
pub fn certtool_verify_chain(chain_pem: &Path) -> Result<(), String> {
    let out = run_command(
        Command::new("certtool")
            .args(["--verify-chain", "--infile"])
            .arg(chain_pem),
    );
    let stdout = stdout_of(&out);
    // certtool trusts the chain's last certificate whatever it is, only noting "Not verified
    // ... issuer is unknown" for it when it is not self-signed: so any "Not verified" fails.
    if out.status.success()
        && stdout.contains("Chain verification output: Verified.")
        && !stdout.contains("Not verified")
    {
        Ok(())
    } else {
        Err(format!("{}{}", stdout, stderr_of(&out)))
    }
}

/// `openssl x509 -in FILE -noout ARGS` → stdout (panics on failure).
#[track_caller]
pub fn openssl_x509(file: &Path, args: &[&str]) -> String {
    let out = run_command(
        Command::new("openssl")
            .args(["x509", "-noout", "-in"])
            .arg(file)
            .args(args),
    );
    assert_ok(&out)
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo DER, lowercase hex (via openssl).
#[track_caller]
pub fn cert_spki_sha256(cert: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let pubpem = dir.path().join("pub.pem");
    fs::write(&pubpem, openssl_x509(cert, &["-pubkey"])).unwrap();
    pubkey_sha256(&pubpem)
}

/// SHA-256 of a PEM public key's SubjectPublicKeyInfo DER, lowercase hex (via openssl).
#[track_caller]
pub fn pubkey_sha256(pub_pem: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let der = dir.path().join("pub.der");
    assert_ok(&run_command(
        Command::new("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(pub_pem)
            .arg("-out")
            .arg(&der),
    ));
    let out = assert_ok(&run_command(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-r"])
            .arg(&der),
    ));
    out.split_whitespace().next().unwrap().to_lowercase()
}

/// (notBefore, notAfter) as Unix seconds.
#[track_caller]
pub fn cert_validity(cert: &Path) -> (i64, i64) {
    let text = openssl_x509(cert, &["-startdate", "-enddate"]);
    let get = |k: &str| {
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {text}"));
        let out = assert_ok(&run_command(
            Command::new("date").args(["-u", "-d", v, "+%s"]),
        ));
        out.trim().parse::<i64>().unwrap()
    };
    (get("notBefore="), get("notAfter="))
}

// ------------------------------------------------------------------------------------------------
// pkilint
// ------------------------------------------------------------------------------------------------

/// pkilint finding severities, least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Fatal,
}

impl Severity {
    fn parse(s: &str) -> Severity {
        match s {
            "DEBUG" => Severity::Debug,
            "INFO" => Severity::Info,
            "NOTICE" => Severity::Notice,
            "WARNING" => Severity::Warning,
            "ERROR" => Severity::Error,
            "FATAL" => Severity::Fatal,
            other => panic!("unknown pkilint severity {other:?}"),
        }
    }
}

/// One pkilint finding.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub code: String,
    pub message: Option<String>,
    pub node_path: String,
    pub validator: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {} ({} @ {})",
            self.severity, self.code, self.validator, self.node_path
        )?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

/// Directory holding pkilint's entry points: `$HSMCA_PKILINT`, else `.venv-pkilint/bin`.
pub fn pkilint_bin_dir() -> PathBuf {
    std::env::var_os("HSMCA_PKILINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-pkilint/bin"))
}

/// Runs `<linter> lint -f JSON EXTRA_ARGS... FILE` and returns every finding it reports.
///
/// pkilint 0.13.3 prints `{"results": [{"node_path", "validator", "finding_descriptions":
/// [{"severity", "code", "message"}]}]}` and exits with the number of findings of any severity,
/// so the exit code is checked only against that count.
#[track_caller]
pub fn pkilint(linter: &str, extra_args: &[&str], file: &Path) -> Vec<Finding> {
    let exe = pkilint_bin_dir().join(linter);
    assert!(
        exe.is_file(),
        "{} is missing: pkilint is not installed: run scripts/install-deps.sh (it makes \
         .venv-pkilint), or set HSMCA_PKILINT to the bin directory of a pkilint 0.13.3",
        exe.display()
    );
    let out = run_command(
        Command::new(&exe)
            .args(["lint", "-f", "JSON"])
            .args(extra_args)
            .arg(file),
    );
    let stdout = stdout_of(&out);
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{linter} did not print JSON ({e}) for {}\n{}",
            file.display(),
            dump(&out)
        )
    });
    let mut findings = Vec::new();
    for r in json["results"].as_array().expect("results array") {
        let node_path = r["node_path"].as_str().unwrap_or_default().to_string();
        let validator = r["validator"].as_str().unwrap_or_default().to_string();
        for d in r["finding_descriptions"]
            .as_array()
            .expect("finding_descriptions array")
        {
            findings.push(Finding {
                severity: Severity::parse(d["severity"].as_str().expect("severity")),
                code: d["code"].as_str().expect("code").to_string(),
                message: d["message"].as_str().map(str::to_string),
                node_path: node_path.clone(),
                validator: validator.clone(),
            });
        }
    }
    assert_eq!(
        out.status.code(),
        Some(findings.len().min(255) as i32),
        "{linter}'s exit code should equal its number of findings\n{}",
        dump(&out)
    );
    for f in &findings {
        eprintln!("{linter} {}: {f}", file.display());
    }
    findings
}

/// `lint_pkix_signer_signee_cert_chain lint -f JSON ISSUER SUBJECT`.
#[track_caller]
pub fn pkilint_chain(issuer: &Path, subject: &Path) -> Vec<Finding> {
    let issuer = issuer.to_str().expect("utf-8 path");
    pkilint("lint_pkix_signer_signee_cert_chain", &[issuer], subject)
}

/// Fails on any finding of severity WARNING or above whose code is not in `allowed_codes`.
#[track_caller]
pub fn assert_no_findings_at_or_above_warning(findings: &[Finding], allowed_codes: &[&str]) {
    let bad: Vec<String> = findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning && !allowed_codes.contains(&f.code.as_str()))
        .map(|f| f.to_string())
        .collect();
    assert!(
        bad.is_empty(),
        "pkilint findings at WARNING or above:\n  {}",
        bad.join("\n  ")
    );
}

// ------------------------------------------------------------------------------------------------
// Cluster-side keys and CSRs (never on the token)
// ------------------------------------------------------------------------------------------------

/// Key algorithms for CSRs made by the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrAlg {
    P256,
    P384,
    /// Made with `openssl req` (see [`make_csr`]).
    Ed25519,
    /// Made with `openssl req` (rcgen's ring backend cannot generate RSA keys).
    Rsa2048,
}

fn assert_in_tempdir(dir: &Path) {
    let tmp = std::env::temp_dir().canonicalize().unwrap();
    let d = dir.canonicalize().unwrap();
    assert!(
        d.starts_with(&tmp),
        "test keys must be written under {}, not {}",
        tmp.display(),
        d.display()
    );
}

/// Makes a key pair and a CSR for `CN=subject_cn` in `dir`: `dir/NAME.csr`, `dir/NAME.key`.
#[track_caller]
pub fn make_csr(dir: &Path, name: &str, alg: CsrAlg, subject_cn: &str) -> (PathBuf, PathBuf) {
    fs::create_dir_all(dir).unwrap();
    assert_in_tempdir(dir);
    let csr_path = dir.join(format!("{name}.csr"));
    let key_path = dir.join(format!("{name}.key"));
    let sig_alg = match alg {
        CsrAlg::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        CsrAlg::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        // rcgen (ring) writes Ed25519 keys as PKCS#8 v2, which OpenSSL 3.0 cannot load, and
        // the cluster signs leaves with openssl: so openssl makes these.
        CsrAlg::Ed25519 | CsrAlg::Rsa2048 => {
            let subj = format!("/CN={subject_cn}");
            let newkey = if alg == CsrAlg::Ed25519 {
                "ed25519"
            } else {
                "rsa:2048"
            };
            assert_ok(&run_command(
                Command::new("openssl")
                    .args(["req", "-new", "-newkey", newkey, "-nodes", "-subj", &subj])
                    .arg("-keyout")
                    .arg(&key_path)
                    .arg("-out")
                    .arg(&csr_path),
            ));
            return (csr_path, key_path);
        }
    };
    let key = rcgen::KeyPair::generate_for(sig_alg).expect("generate key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject_cn);
    let csr = params.serialize_request(&key).expect("serialize CSR");
    fs::write(&csr_path, csr.pem().unwrap()).unwrap();
    write_private(&key_path, key.serialize_pem().as_bytes());
    (csr_path, key_path)
}

fn write_private(path: &Path, data: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data).unwrap();
}

/// Signs a server leaf with a file key (the cluster intermediate's), as the cluster would:
/// `openssl x509 -req -CA ISSUER -CAkey ISSUER_KEY` with serverAuth and a DNS SAN per name.
pub fn openssl_sign_leaf(
    issuer_cert: &Path,
    issuer_key: &Path,
    csr: &Path,
    dns: &[&str],
    out: &Path,
) -> Result<(), String> {
    let ext_path = out.with_extension("ext");
    let san: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
    let ext = format!(
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         subjectAltName = {}\n",
        san.join(", ")
    );
    fs::write(&ext_path, ext).unwrap();
    let out = run_command(
        Command::new("openssl")
            // OpenSSL 3 picks a random serial when neither -set_serial nor -CAserial is given.
            .args(["x509", "-req", "-days", "30", "-in"])
            .arg(csr)
            .arg("-CA")
            .arg(issuer_cert)
            .arg("-CAkey")
            .arg(issuer_key)
            .arg("-extfile")
            .arg(&ext_path)
            .arg("-out")
            .arg(out),
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(dump(&out))
    }
}

/// Concatenates files into `out` (for chain files).
pub fn concat_files(out: &Path, parts: &[&Path]) {
    let mut all = Vec::new();
    for p in parts {
        let mut b = fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        if !b.ends_with(b"\n") {
            b.push(b'\n');
        }
        all.extend(b);
    }
    fs::write(out, all).unwrap();
}

/// SHA-256 of the SubjectPublicKeyInfo of a private key file's public half (via openssl).
#[track_caller]
pub fn key_file_spki_sha256(key: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let pubpem = dir.path().join("pub.pem");
    assert_ok(&run_command(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(key)
            .arg("-out")
            .arg(&pubpem),
    ));
    pubkey_sha256(&pubpem)
}

/// SHA-256 fingerprint of a certificate as lowercase hex without separators (via openssl).
#[track_caller]
pub fn cert_sha256_fingerprint(cert: &Path) -> String {
    let out = openssl_x509(cert, &["-fingerprint", "-sha256"]);
    let (_, fp) = out.trim().split_once('=').expect("fingerprint line");
    fp.replace(':', "").to_lowercase()
}

/// Lowercase hex, separators (`:`, spaces) removed.
pub fn normalize_hex(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_lowercase()
}
