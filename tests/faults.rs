//! Faults: what a failing token, a vanished token store or a full disk do to a command.
//!
//! The token faults come from `faultmod/` (built here into `target/faultmod`, or named by
//! `HSMCA_TEST_FAULTMOD`), a PKCS#11 module that forwards every call to SoftHSM2 and fails the
//! N-th call of one function with a chosen CKR_ value, which SoftHSM2 itself cannot produce.
//! For key generation, root creation, signing and CRL issuance, a first run lists the calls the
//! command makes; then every one of them is failed, with each of [`CODES`]. After every run:
//! a clear error (exit 1, `error:` and `hint:`, no panic) or, for a failed clean-up call only,
//! success; no temporary file left; outputs only when the command succeeded; the audit log
//! verifies; no serial recorded twice; every recorded certificate exports.
//!
//! `HSMCA_FAULT_SWEEP=quick` sweeps every call for two codes and the first and last call for
//! the others (the default is the whole cross product).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use common::*;
use hsmca::ca::audit::{AuditLog, Event};

/// The return values injected: the failures of real tokens that SoftHSM2 cannot produce.
const CODES: [&str; 7] = [
    "CKR_DEVICE_ERROR",
    "CKR_DEVICE_REMOVED",
    "CKR_TOKEN_NOT_PRESENT",
    "CKR_SESSION_HANDLE_INVALID",
    "CKR_SESSION_CLOSED",
    "CKR_PIN_LOCKED",
    "CKR_GENERAL_ERROR",
];

/// Calls made after a command's work is done and recorded: their failure changes nothing, so
/// the command may end successfully (with every output written).
const CLEAN_UP_CALLS: [&str; 3] = ["C_Logout", "C_CloseSession", "C_Finalize"];

const KEY_LABEL: &str = "root-2026";

/// Known bug, reported: every signing command writes its outputs before it seals the log, so a
/// failure of the seal's signature (the last C_SignInit/C_Sign) ends with exit 1 and "nothing
/// was written" although the outputs were written (and recorded). While this is `true` the
/// sweeps list those runs as known instead of failing; `seal_failure_leaves_no_output` (ignored)
/// checks the fix. Set it to `false` once the seal comes before the outputs.
const SEAL_FAILURE_LEAVES_OUTPUTS: bool = true;

// ------------------------------------------------------------------------------------------------
// The fault module and the per-run sandboxes
// ------------------------------------------------------------------------------------------------

/// The fault module: `HSMCA_TEST_FAULTMOD`, else built from `faultmod/` into `target/faultmod`
/// (its own target directory, so building it never waits for the lock of the build running
/// the tests).
fn faultmod() -> &'static Path {
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

/// Which call to fail, and how.
#[derive(Debug, Clone)]
struct Fault {
    func: String,
    n: usize,
    rv: &'static str,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{} -> {}", self.func, self.n, self.rv)
    }
}

/// A private copy of a prepared directory (token store, CA directory, inputs) with its own
/// softhsm2.conf: copying a token is much faster than initialising one.
struct Sandbox {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "softhsm2.conf" || name == "pkcs11-spy.log" {
            continue;
        }
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&e.path(), &to.join(&name));
        } else if ft.is_file() {
            fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

impl Sandbox {
    fn copy_of(prepared: &Path) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("hsmca-fault-")
            .tempdir()
            .unwrap();
        copy_tree(prepared, dir.path());
        let template = fs::read_to_string(repo_root().join("softhsm/softhsm2.conf.in")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        let tokens = dir.path().join("tokens");
        fs::write(
            &conf,
            template.replace("@TOKENDIR@", tokens.to_str().unwrap()),
        )
        .unwrap();
        Sandbox { dir, conf }
    }

    fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `hsmca` on this sandbox's token through the fault module (no fault unless given).
    fn hsmca(&self, fault: Option<&Fault>, call_log: Option<&Path>) -> Command {
        let mut cmd = Command::new(hsmca_bin());
        cmd.current_dir(self.dir.path())
            .env("SOFTHSM2_CONF", &self.conf)
            .env("HSMCA_PIN", USER_PIN)
            .env("HSMCA_MODULE", faultmod())
            .env("HSMCA_FAULT_REAL", softhsm_module());
        for v in [
            "HSMCA_CA_DIR",
            "HSMCA_OPERATOR",
            "RUST_BACKTRACE",
            "HSMCA_FAULT_FN",
            "HSMCA_FAULT_N",
            "HSMCA_FAULT_RV",
            "HSMCA_FAULT_STICKY",
            "HSMCA_FAULT_LOG",
            "HSMCA_FAULT_STOP_FN",
            "HSMCA_FAULT_STOP_N",
            "HSMCA_FAULT_STOP_AT",
            "LD_PRELOAD",
        ] {
            cmd.env_remove(v);
        }
        if let Some(f) = fault {
            cmd.env("HSMCA_FAULT_FN", &f.func)
                .env("HSMCA_FAULT_N", f.n.to_string())
                .env("HSMCA_FAULT_RV", f.rv);
        }
        if let Some(log) = call_log {
            cmd.env("HSMCA_FAULT_LOG", log);
        }
        cmd
    }

    fn run(&self, args: &[String], fault: Option<&Fault>, call_log: Option<&Path>) -> Output {
        run_command(self.hsmca(fault, call_log).args(args))
    }
}

/// The calls the fault module logged: (function, whether it was the injected fault).
fn read_call_log(path: &Path) -> Vec<(String, bool)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            (name, words.next() == Some("FAULT"))
        })
        .collect()
}

/// Every call of a list as (function, how many times it was called up to and including it).
fn positions(calls: &[String]) -> Vec<(String, usize)> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    calls
        .iter()
        .map(|c| {
            let n = seen.entry(c.as_str()).or_default();
            *n += 1;
            (c.clone(), *n)
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// What must hold after every run
// ------------------------------------------------------------------------------------------------

/// Hidden temporary files (`.NAME.PID.RANDOM.tmp`, as `output::write_atomic` names them) left
/// anywhere outside the token store.
fn leftover_temp_files(root: &Path) -> Vec<PathBuf> {
    files_in(root)
        .into_keys()
        .filter(|p| {
            !p.starts_with("tokens")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
        })
        .collect()
}

/// What the CA directory must look like whatever happened: an intact chain (and seals, where
/// the CA certificate exists), each serial recorded once, each kept certificate recorded,
/// `ca.crt` only with a root record, CRL numbers increasing, every new certificate exportable.
/// `exported` holds the serials checked by earlier runs in the same sandbox.
fn check_ca_dir(sb: &Sandbox, exported: &mut BTreeSet<String>, problems: &mut Vec<String>) {
    let ca = sb.path("ca");
    if !ca.is_dir() {
        return;
    }
    let entries = match AuditLog::new(&ca.join("audit.jsonl")).read() {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("the audit log does not read back: {e}"));
            return;
        }
    };
    if ca.join("ca.crt").exists() {
        let out = run_command(
            sb.hsmca(None, None)
                .args(["--ca-dir", "ca", "log", "verify"]),
        );
        if !out.status.success() {
            problems.push(format!(
                "'hsmca log verify' fails: {}",
                stderr_of(&out).trim()
            ));
        }
    }
    let mut serials = BTreeSet::new();
    let mut roots = 0;
    let mut crl_numbers = Vec::new();
    for e in &entries {
        match &e.record.event {
            Event::RootCreated { cert } | Event::CsrSigned { cert, .. } => {
                if matches!(e.record.event, Event::RootCreated { .. }) {
                    roots += 1;
                }
                if !serials.insert(cert.serial.clone()) {
                    problems.push(format!("serial {} is recorded twice", cert.serial));
                }
                if exported.contains(&cert.serial) {
                    continue;
                }
                let file = format!("exported-{}.pem", cert.serial);
                let out = run_command(sb.hsmca(None, None).args([
                    "--ca-dir",
                    "ca",
                    "export",
                    "--serial",
                    &cert.serial,
                    "--out",
                    &file,
                ]));
                if !out.status.success() {
                    problems.push(format!(
                        "recorded certificate {} does not export: {}",
                        cert.serial,
                        stderr_of(&out).trim()
                    ));
                } else if Some(cert_der(&sb.path(&file))) != cert.der().ok() {
                    problems.push(format!("export of {} differs from its record", cert.serial));
                }
                let _ = fs::remove_file(sb.path(&file));
                exported.insert(cert.serial.clone());
            }
            Event::CrlIssued { crl_number, .. } => crl_numbers.push(*crl_number),
            _ => {}
        }
    }
    if crl_numbers.windows(2).any(|w| w[1] <= w[0]) {
        problems.push(format!("CRL numbers not increasing: {crl_numbers:?}"));
    }
    if ca.join("ca.crt").exists() != (roots > 0) {
        problems.push(format!(
            "ca/ca.crt exists: {}, root records: {roots}",
            ca.join("ca.crt").exists()
        ));
    }
    if let Ok(kept) = fs::read_dir(ca.join("certs")) {
        for k in kept.flatten() {
            let name = k.file_name().to_string_lossy().into_owned();
            if !serials.contains(name.trim_end_matches(".pem")) {
                problems.push(format!("ca/certs/{name} has no record"));
            }
        }
    }
}

/// Checks one faulted run; returns what went wrong (nothing when all is well).
fn check_run(
    sb: &Sandbox,
    fault: &Fault,
    out: &Output,
    call_log: &Path,
    outputs: &[String],
    exported: &mut BTreeSet<String>,
    in_seal: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let stderr = stderr_of(out);
    if !read_call_log(call_log)
        .iter()
        .any(|(f, hit)| *hit && *f == fault.func)
    {
        problems.push("the fault was never injected (the call sequence changed)".into());
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push(format!("panic: {stderr}"));
    }
    let present: Vec<&String> = outputs.iter().filter(|o| sb.path(o).exists()).collect();
    if out.status.success() {
        if !CLEAN_UP_CALLS.contains(&fault.func.as_str()) {
            problems.push("succeeded although a call it needs failed".into());
        }
        if present.len() != outputs.len() {
            problems.push(format!(
                "succeeded but wrote only {present:?} of {outputs:?}"
            ));
        }
    } else {
        let clear = out.status.code() == Some(1)
            && stderr.starts_with("error: ")
            && stderr.lines().any(|l| l.starts_with("hint: "));
        if !clear {
            problems.push(format!(
                "not a clear error (exit {:?}): {stderr}",
                out.status.code()
            ));
        }
        let known_bug = in_seal && SEAL_FAILURE_LEAVES_OUTPUTS;
        if !present.is_empty() && !known_bug {
            problems.push(format!(
                "failed ({}) but left outputs {present:?}",
                stderr.lines().next().unwrap_or_default()
            ));
        }
    }
    let temps = leftover_temp_files(sb.dir.path());
    if !temps.is_empty() {
        problems.push(format!("temporary files left: {temps:?}"));
    }
    check_ca_dir(sb, exported, &mut problems);
    problems
}

// ------------------------------------------------------------------------------------------------
// The sweep
// ------------------------------------------------------------------------------------------------

/// One command to sweep.
struct Scenario {
    name: &'static str,
    /// The prepared directory every run starts from.
    prepared: TestToken,
    /// The command line for a run; `tag` makes its output names unique.
    args: fn(tag: &str) -> Vec<String>,
    /// The files the command writes when it succeeds.
    outputs: fn(tag: &str) -> Vec<String>,
    /// One sandbox per code whose CA directory accumulates the runs (the command does not
    /// change the token), instead of a fresh copy per run.
    accumulate: bool,
    /// Extra checks after a successful run (for example a log sealed by a key with no
    /// certificate yet).
    after_success: Option<fn(&Sandbox, &str) -> Option<String>>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The calls a command makes when nothing fails.
fn baseline(sc: &Scenario) -> Vec<String> {
    let sb = Sandbox::copy_of(sc.prepared.dir());
    let log = sb.path("calls.txt");
    let out = sb.run(&(sc.args)("baseline"), None, Some(&log));
    assert_ok(&out);
    let mut exported = BTreeSet::new();
    let mut problems = Vec::new();
    check_ca_dir(&sb, &mut exported, &mut problems);
    assert!(problems.is_empty(), "baseline of {}: {problems:?}", sc.name);
    read_call_log(&log).into_iter().map(|(f, _)| f).collect()
}

fn quick() -> bool {
    std::env::var("HSMCA_FAULT_SWEEP").is_ok_and(|v| v == "quick")
}

/// Fails every call of the baseline with every code (see the module doc) and reports all the
/// problems at once.
fn sweep(sc: Scenario) {
    let started = Instant::now();
    let calls = baseline(&sc);
    let pos = positions(&calls);
    // The seal is the command's last signature: its C_SignInit and the C_Sign calls after it.
    let seal_start = calls.iter().rposition(|c| c == "C_SignInit");
    let in_seal = |f: &Fault| {
        let at = pos
            .iter()
            .position(|(func, n)| *func == f.func && *n == f.n);
        matches!((at, seal_start), (Some(a), Some(s)) if a >= s)
            && (f.func == "C_SignInit" || f.func == "C_Sign")
    };
    let known = AtomicUsize::new(0);
    eprintln!(
        "{}: {} PKCS#11 calls: {}",
        sc.name,
        calls.len(),
        calls.join(" ")
    );
    let mut plan: Vec<(usize, Vec<Fault>)> = Vec::new();
    for (ci, rv) in CODES.iter().enumerate() {
        let faults: Vec<Fault> = pos
            .iter()
            .enumerate()
            .filter(|(i, _)| !quick() || ci < 2 || *i == 0 || *i == pos.len() - 1)
            .map(|(_, (func, n))| Fault {
                func: func.clone(),
                n: *n,
                rv,
            })
            .collect();
        if sc.accumulate {
            plan.push((ci, faults));
        } else {
            plan.extend(faults.into_iter().map(|f| (ci, vec![f])));
        }
    }
    let runs: usize = plan.iter().map(|(_, f)| f.len()).sum();
    let next = AtomicUsize::new(0);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let outcomes: Mutex<BTreeMap<String, (usize, usize)>> = Mutex::new(BTreeMap::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((_, faults)) = plan.get(i) else {
                        break;
                    };
                    let sb = Sandbox::copy_of(sc.prepared.dir());
                    let mut exported = BTreeSet::new();
                    check_ca_dir(&sb, &mut exported, &mut Vec::new());
                    for (k, fault) in faults.iter().enumerate() {
                        let tag = format!("run{k}");
                        let log = sb.path(format!("calls-{tag}.txt"));
                        let out = sb.run(&(sc.args)(&tag), Some(fault), Some(&log));
                        let seal = in_seal(fault);
                        if seal && !out.status.success() {
                            known.fetch_add(1, Ordering::SeqCst);
                        }
                        let mut found = check_run(
                            &sb,
                            fault,
                            &out,
                            &log,
                            &(sc.outputs)(&tag),
                            &mut exported,
                            seal,
                        );
                        if out.status.success()
                            && let Some(check) = sc.after_success
                            && let Some(p) = check(&sb, &tag)
                        {
                            found.push(p);
                        }
                        let mut o = outcomes.lock().unwrap();
                        let entry = o.entry(fault.func.clone()).or_default();
                        if out.status.success() {
                            entry.0 += 1;
                        } else {
                            entry.1 += 1;
                        }
                        drop(o);
                        problems.lock().unwrap().extend(
                            found
                                .into_iter()
                                .map(|p| format!("{} [{fault}]: {p}", sc.name)),
                        );
                    }
                }
            });
        }
    });
    eprintln!(
        "{}: {runs} faulted runs ({} calls x {} codes{}) in {:.1}s",
        sc.name,
        calls.len(),
        CODES.len(),
        if quick() { ", quick" } else { "" },
        started.elapsed().as_secs_f64()
    );
    if SEAL_FAILURE_LEAVES_OUTPUTS {
        eprintln!(
            "  known bug: {} runs failed in the seal after writing their outputs",
            known.load(Ordering::SeqCst)
        );
    }
    for (func, (ok, failed)) in outcomes.into_inner().unwrap() {
        eprintln!("  {func:<22} exit 0: {ok:>3}   clear error: {failed:>3}");
    }
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ------------------------------------------------------------------------------------------------
// Prepared states
// ------------------------------------------------------------------------------------------------

fn key_uri() -> String {
    format!("pkcs11:token=Root%20CA;object={KEY_LABEL}")
}

/// A token with the CA key, generated with `--ca-dir ca` (so the log holds its record).
fn with_key() -> TestToken {
    let t = TestToken::new("Root CA");
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "key",
        "generate",
        "--token",
        "Root CA",
        "--label",
        KEY_LABEL,
        "--algorithm",
        "ecdsa-p256",
    ]));
    t
}

/// The key, its root recorded in `ca/`, and an intermediate's CSR in `cluster/inter.csr`.
fn with_root() -> TestToken {
    let t = with_key();
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "root",
        "create",
        "--key",
        &key_uri(),
        "--subject",
        ROOT_SUBJECT,
        "--validity",
        "20y",
        "--out",
        "root.crt",
    ]));
    make_csr(
        &t.path("cluster"),
        "inter",
        CsrAlg::P256,
        "Cluster A Int CA",
    );
    t
}

fn sign_args(tag: &str) -> Vec<String> {
    let mut a = strings(&["--ca-dir", "ca", "sign", "--key"]);
    a.push(key_uri());
    a.extend(strings(&[
        "--csr",
        "cluster/inter.csr",
        "--profile",
        "intermediate",
        "--path-len",
        "0",
        "--validity",
        "5y",
    ]));
    a.extend([
        "--out".into(),
        format!("inter-{tag}.crt"),
        "--chain-out".into(),
        format!("chain-{tag}.pem"),
    ]);
    a
}

/// A root that issued an intermediate and revoked it (so the CRL lists something).
fn with_revocation() -> TestToken {
    let t = with_root();
    let out = assert_ok(&t.run(sign_args("prepared")));
    let serial = out
        .lines()
        .find_map(|l| l.strip_prefix("serial: "))
        .expect("serial line")
        .trim()
        .to_string();
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]));
    t
}

// ------------------------------------------------------------------------------------------------
// The sweeps
// ------------------------------------------------------------------------------------------------

/// After a successful key generation the log is sealed by the new key, which has no
/// certificate yet: check the seals with the public key it wrote.
fn seals_verify_with_new_key(sb: &Sandbox, tag: &str) -> Option<String> {
    use der::DecodePem;
    let pem = fs::read_to_string(sb.path(format!("pub-{tag}.pem"))).ok()?;
    let spki = match spki::SubjectPublicKeyInfoOwned::from_pem(&pem) {
        Ok(s) => s,
        Err(e) => return Some(format!("the public key does not parse: {e}")),
    };
    AuditLog::new(&sb.path("ca/audit.jsonl"))
        .verify(&spki)
        .err()
        .map(|e| format!("the seals do not verify with the new key: {e}"))
}

#[test]
fn faults_during_key_generation() {
    sweep(Scenario {
        name: "key generate",
        prepared: TestToken::new("Root CA"),
        args: |tag| {
            let mut a = strings(&[
                "--ca-dir",
                "ca",
                "key",
                "generate",
                "--token",
                "Root CA",
                "--label",
                KEY_LABEL,
                "--algorithm",
                "ecdsa-p256",
            ]);
            a.extend(["--public-key-out".into(), format!("pub-{tag}.pem")]);
            a
        },
        outputs: |tag| vec![format!("pub-{tag}.pem")],
        accumulate: false,
        after_success: Some(seals_verify_with_new_key),
    });
}

#[test]
fn faults_during_root_creation() {
    sweep(Scenario {
        name: "root create",
        prepared: with_key(),
        args: |tag| {
            let mut a = strings(&["--ca-dir", "ca", "root", "create", "--key"]);
            a.push(key_uri());
            a.extend(strings(&["--subject", ROOT_SUBJECT, "--validity", "20y"]));
            a.extend(["--out".into(), format!("root-{tag}.crt")]);
            a
        },
        outputs: |tag| vec![format!("root-{tag}.crt")],
        accumulate: false,
        after_success: None,
    });
}

#[test]
fn faults_during_signing() {
    sweep(Scenario {
        name: "sign",
        prepared: with_root(),
        args: sign_args,
        outputs: |tag| vec![format!("inter-{tag}.crt"), format!("chain-{tag}.pem")],
        accumulate: true,
        after_success: None,
    });
}

#[test]
fn faults_during_crl_issuance() {
    sweep(Scenario {
        name: "crl",
        prepared: with_revocation(),
        args: |tag| {
            let mut a = strings(&["--ca-dir", "ca", "crl", "--key"]);
            a.push(key_uri());
            a.extend(strings(&["--next-update", "30d"]));
            a.extend(["--out".into(), format!("crl-{tag}.pem")]);
            a
        },
        outputs: |tag| vec![format!("crl-{tag}.pem")],
        accumulate: true,
        after_success: None,
    });
}

/// The module itself: forwards, counts per function, fails exactly the N-th call (or every
/// call from it with HSMCA_FAULT_STICKY), and reports a bad configuration.
#[test]
fn fault_module_fails_exactly_the_chosen_call() {
    let t = TestToken::new("Root CA");
    let sb = Sandbox::copy_of(t.dir());
    let list = strings(&["token", "list"]);
    let log = sb.path("calls.txt");
    assert_ok(&sb.run(&list, None, Some(&log)));
    let calls = read_call_log(&log);
    assert_eq!(
        calls.first().map(|c| c.0.as_str()),
        Some("C_GetFunctionList")
    );
    assert_eq!(calls.last().map(|c| c.0.as_str()), Some("C_Finalize"));
    assert!(calls.iter().all(|c| !c.1));

    let _ = fs::remove_file(&log);
    let fault = Fault {
        func: "C_GetTokenInfo".into(),
        n: 1,
        rv: "CKR_DEVICE_REMOVED",
    };
    let stderr = assert_fails(&sb.run(&list, Some(&fault), Some(&log)));
    assert_mentions(&stderr, &["C_GetTokenInfo"]);
    let calls = read_call_log(&log);
    let faulted: Vec<_> = calls.iter().filter(|c| c.1).collect();
    assert_eq!(faulted.len(), 1, "{calls:?}");
    assert_eq!(faulted[0].0, "C_GetTokenInfo");
    assert_eq!(calls.last().map(|c| c.0.as_str()), Some("C_Finalize"));

    let mut cmd = sb.hsmca(None, None);
    cmd.args(&list).env("HSMCA_FAULT_FN", "C_NoSuchFunction");
    let out = run_command(&mut cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).starts_with("hsmca-faultmod: HSMCA_FAULT_FN=C_NoSuchFunction"),
        "{}",
        stderr_of(&out)
    );

    let mut cmd = sb.hsmca(None, None);
    cmd.args(&list).env("HSMCA_FAULT_STOP_FN", "write");
    let out = run_command(&mut cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).starts_with("hsmca-faultmod: HSMCA_FAULT_STOP_FN=write"),
        "{}",
        stderr_of(&out)
    );

    // Sticky: every C_GetSlotList from the 2nd on fails, so a command that lists twice fails.
    let _ = fs::remove_file(&log);
    let mut cmd = sb.hsmca(
        Some(&Fault {
            func: "C_GetSlotList".into(),
            n: 2,
            rv: "CKR_DEVICE_ERROR",
        }),
        Some(&log),
    );
    cmd.args(&list).env("HSMCA_FAULT_STICKY", "1");
    assert_fails(&run_command(&mut cmd));
}

// ------------------------------------------------------------------------------------------------
// The token store disappears
// ------------------------------------------------------------------------------------------------

/// `hsmca log verify` on `ca/` succeeds.
#[track_caller]
fn assert_log_verifies(t: &TestToken) {
    assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
}

#[test]
fn token_directory_removed_between_commands() {
    let t = with_root();
    // The token's own directory goes (tokens/<uuid>/), then the whole token store.
    let token_dirs: Vec<PathBuf> = fs::read_dir(t.path("tokens"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(token_dirs.len(), 1, "{token_dirs:?}");
    fs::remove_dir_all(&token_dirs[0]).unwrap();
    let before = t.snapshot();
    let stderr = assert_fails(&t.run(sign_args("gone")));
    assert_mentions(&stderr, &["Root CA", "token"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_same_files(&before, &t.snapshot());
    assert_log_verifies(&t);

    fs::remove_dir_all(t.path("tokens")).unwrap();
    let stderr = assert_fails(&t.run(sign_args("gone")));
    assert_mentions(&stderr, &["token", "C_Initialize"]);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_same_files(&before, &t.snapshot());
    assert_log_verifies(&t);
    assert!(leftover_temp_files(t.dir()).is_empty());
}

// ------------------------------------------------------------------------------------------------
// A full file system
// ------------------------------------------------------------------------------------------------

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `at`, or says why not (not root, no mount permission).
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(at).unwrap();
        let out = run_command(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(at),
        );
        if out.status.success() {
            Some(Tmpfs(at.to_path_buf()))
        } else {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs at {} (this test needs root): {}",
                at.display(),
                stderr_of(&out).trim()
            );
            None
        }
    }

    /// Fills the file system: a file grown until the kernel says ENOSPC.
    fn fill(&self) {
        use std::io::Write;
        let mut f = fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                    break;
                }
            }
        }
    }

    /// Frees the space again.
    fn drain(&self) {
        fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn recorded_serials(ca: &Path) -> Vec<String> {
    AuditLog::new(&ca.join("audit.jsonl"))
        .read()
        .expect("the audit log reads back")
        .into_iter()
        .filter_map(|e| match e.record.event {
            Event::RootCreated { cert } | Event::CsrSigned { cert, .. } => Some(cert.serial),
            _ => None,
        })
        .collect()
}

#[test]
fn output_file_system_fills_during_the_write() {
    let t = with_root();
    let Some(fs_out) = Tmpfs::mount(&t.path("out"), "64k") else {
        return;
    };
    fs_out.fill();
    let before = recorded_serials(&t.path("ca"));
    let mut args = sign_args("x");
    let n = args.len();
    args[n - 3] = "out/inter.crt".into();
    args[n - 1] = "out/chain.pem".into();
    let stderr = assert_fails(&t.run(&args));
    assert_mentions(&stderr, &["space", "out/inter.crt"]);
    let left: Vec<_> = files_in(&t.path("out")).into_keys().collect();
    assert_eq!(left, [PathBuf::from("filler")], "partial output left");
    assert!(leftover_temp_files(t.dir()).is_empty());
    assert_log_verifies(&t);
    // Record first, output second: the certificate is in the log and exports once there is room.
    let after = recorded_serials(&t.path("ca"));
    assert_eq!(
        after.len(),
        before.len() + 1,
        "the signed certificate is recorded"
    );
    let serial = after.last().unwrap();
    fs_out.drain();
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "export",
        "--serial",
        serial,
        "--out",
        "out/inter.crt",
    ]));
    openssl_x509(&t.path("out/inter.crt"), &["-serial"]);
}

#[test]
fn ca_directory_file_system_fills_during_the_write() {
    let t = with_root();
    let Some(ca_fs) = Tmpfs::mount(&t.path("cafs"), "256k") else {
        return;
    };
    copy_tree(&t.path("ca"), &t.path("cafs/ca"));
    ca_fs.fill();
    let before = recorded_serials(&t.path("cafs/ca"));
    let mut args = sign_args("full");
    args[1] = "cafs/ca".into();
    let stderr = assert_fails(&t.run(&args));
    assert_mentions(&stderr, &["space", "audit", "cafs"]);
    assert!(!t.path("inter-full.crt").exists() && !t.path("chain-full.pem").exists());
    assert!(leftover_temp_files(t.dir()).is_empty());
    // Whatever the append managed to write, the log must still read and verify, and the next
    // command must work once there is room again.
    let verify = t.run(["--ca-dir", "cafs/ca", "log", "verify"]);
    assert!(
        verify.status.success(),
        "a failed append must not break the log:\n{}",
        stderr_of(&verify)
    );
    let after = recorded_serials(&t.path("cafs/ca"));
    assert!(after.starts_with(&before), "{before:?} -> {after:?}");
    assert_ok(&t.run(["--ca-dir", "cafs/ca", "log", "verify"]));
    ca_fs.drain();
    let mut again = sign_args("again");
    again[1] = "cafs/ca".into();
    assert_ok(&t.run(&again));
    assert_ok(&t.run(["--ca-dir", "cafs/ca", "log", "verify"]));
}

/// The fix [`SEAL_FAILURE_LEAVES_OUTPUTS`] waits for: a failed seal leaves no output behind.
#[test]
#[ignore = "known bug, reported: outputs are written before the seal, so a failed seal signature exits 1 with the outputs in place"]
fn seal_failure_leaves_no_output() {
    let t = with_root();
    let sb = Sandbox::copy_of(t.dir());
    let log = sb.path("calls.txt");
    assert_ok(&sb.run(&sign_args("base"), None, Some(&log)));
    let calls: Vec<String> = read_call_log(&log).into_iter().map(|c| c.0).collect();
    let signs = calls.iter().filter(|c| *c == "C_Sign").count();
    let fault = Fault {
        func: "C_Sign".into(),
        n: signs,
        rv: "CKR_DEVICE_REMOVED",
    };
    let out = sb.run(&sign_args("sealfail"), Some(&fault), None);
    assert_fails(&out);
    for f in ["inter-sealfail.crt", "chain-sealfail.pem"] {
        assert!(!sb.path(f).exists(), "{f} written by a failed command");
    }
}

/// A second key generated with `--ca-dir` into a CA directory that already has its root must
/// not seal the log with that new key: the seal would not verify with the CA certificate, and
/// every later signing command would refuse the "broken" log.
#[test]
fn second_key_generated_into_a_ca_directory_keeps_its_log_verifying() {
    let t = with_root();
    assert_log_verifies(&t);
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "key",
        "generate",
        "--token",
        "Root CA",
        "--label",
        "next-2027",
        "--algorithm",
        "ecdsa-p256",
    ]));
    assert_log_verifies(&t);
    assert_ok(&t.run(sign_args("after")));
}
