//! Faults: what a failing token, a vanished token store or a full disk do to a command.
//!
//! The token faults come from `faultmod/` (built here into `target/faultmod`, or named by
//! `HSMCA_TEST_FAULTMOD`), a PKCS#11 module that forwards every call to SoftHSM2 and fails the
//! N-th call of one function with a chosen CKR_ value, which SoftHSM2 itself cannot produce.
//! For key generation, root creation, signing and CRL issuance, a first run lists the calls the
//! command makes; then every one of them is failed, with each of [`CODES`]. After every run:
//! a clear error (exit 1, `error:` and `hint:`, no panic) or, for a failed clean-up call only,
//! success; no temporary file left; outputs only when the command succeeded (or when only the
//! final seal failed: then every output, recorded, and an error naming the seal); the audit log
//! verifies; no serial recorded twice; every recorded certificate exports.
//!
//! `HSMCA_FAULT_SWEEP=quick` sweeps every call for two codes and the first and last call for
//! the others (the default is the whole cross product).
//!
//! SIGKILL during a batch (issue 6): the same module, preloaded so that it also sees fsync,
//! stops the process at 20 exact points (token calls and the file steps of each certificate);
//! the test kills it there, checks what is left (exactly at the writer's fsyncs, within the
//! pipeline's range at the token's calls) and recovers (see "SIGKILL during a batch").

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::common::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hsmca::ca::audit::{AuditLog, Event, IssuedCert};

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
/// Calls whose failure a command may ignore: the clean-up at its end, and C_FindObjectsFinal
/// (the search's results are in hand; cryptoki only logs its failure).
const CLEAN_UP_CALLS: [&str; 4] = [
    "C_Logout",
    "C_CloseSession",
    "C_Finalize",
    "C_FindObjectsFinal",
];

/// A failed C_FindObjectsFinal is seen by nobody (cryptoki swallows it) until a later call finds
/// the search still active: the failure shows where that call is, perhaps in the seal.
const UNSEEN_FAILURE: &str = "C_FindObjectsFinal";

const KEY_LABEL: &str = "root-2026";

/// By design a signing command seals the log last, after its outputs: a batch streams its
/// certificates to disk (sealing first would hold them all in memory, or cost a second token
/// signature per certificate). So a run whose seal fails ends with exit 1 and every output
/// written, valid and recorded; its error says only the seal is missing, and the next signing
/// command seals the tail. The sweeps check exactly that for faults in the seal
/// (`seal_failure_keeps_recorded_outputs_and_says_so` checks one in detail).
const SEAL_COMES_AFTER_OUTPUTS: bool = true;

// ------------------------------------------------------------------------------------------------
// The fault module and the per-run sandboxes
// ------------------------------------------------------------------------------------------------

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
            .env("HSMCA_MODULE", faultmod());
        for v in ["HSMCA_CA_DIR", "HSMCA_OPERATOR"]
            .into_iter()
            .chain(CALL_LOG_VARS)
        {
            cmd.env_remove(v);
        }
        cmd.env("HSMCA_FAULT_REAL", softhsm_module());
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
        // 3: a batch stopped part-way, after writing some of its certificates.
        let code_fits = match out.status.code() {
            Some(1) => true,
            Some(3) => !present.is_empty() && stderr.contains("stopped part-way: "),
            _ => false,
        };
        let clear =
            code_fits && error_first(&stderr) && stderr.lines().any(|l| l.starts_with("hint: "));
        if !clear {
            problems.push(format!(
                "not a clear error (exit {:?}): {stderr}",
                out.status.code()
            ));
        }
        let seal_noticed =
            fault.func == UNSEEN_FAILURE && stderr.contains("sealing the audit log failed");
        let seal_only = (in_seal || seal_noticed) && SEAL_COMES_AFTER_OUTPUTS;
        if seal_only {
            if present.len() != outputs.len() {
                problems.push(format!(
                    "the seal failed but only {present:?} of {outputs:?} were written"
                ));
            }
            if !stderr.contains("sealing the audit log failed") {
                problems.push(format!("a failed seal not named as such: {stderr}"));
            }
        } else if !present.is_empty() {
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
        // The seal and the head's move on the token after it (clean-up calls aside).
        matches!((at, seal_start), (Some(a), Some(s)) if a >= s)
            && !CLEAN_UP_CALLS[..3].contains(&f.func.as_str())
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
    if SEAL_COMES_AFTER_OUTPUTS {
        eprintln!(
            "  {} runs failed in the seal, after writing and recording their outputs (checked)",
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
    assert_ok(&t.run(in_ca_dir(
        "ca",
        key_generate_args("Root CA", KEY_LABEL, "ecdsa-p256"),
    )));
    t
}

/// The key, its root recorded in `ca/`, and an intermediate's CSR in `cluster/inter.csr`.
fn with_root() -> TestToken {
    let t = with_key();
    assert_ok(&t.run(in_ca_dir(
        "ca",
        root_create_args(&key_uri(), "20y", "root.crt"),
    )));
    t.inter_csr("Cluster A Int CA");
    t
}

fn sign_args(tag: &str) -> Vec<String> {
    let out = format!("inter-{tag}.crt");
    let chain = format!("chain-{tag}.pem");
    in_ca_dir(
        "ca",
        intermediate_args(&key_uri(), "cluster/inter.csr", "5y", &out)
            .with(&["--chain-out", &chain]),
    )
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

/// A failure after C_GenerateKeyPair (the key pair exists, reading it back or its self-test
/// failed): hsmca never deletes a key, so the error names the key left on the token and the
/// audit log records the refusal with its label.
#[test]
fn a_key_that_fails_after_generation_is_named_and_recorded() {
    let t = TestToken::new("Root CA");
    let args = |tag: &str| {
        let mut a = strings(&[
            "--ca-dir", "ca", "key", "generate", "--token", "Root CA", "--label",
        ]);
        a.extend([
            format!("k-{tag}"),
            "--algorithm".into(),
            "ecdsa-p256".into(),
        ]);
        a
    };
    let sb = Sandbox::copy_of(t.dir());
    let log = sb.path("calls.txt");
    assert_ok(&sb.run(&args("base"), None, Some(&log)));
    let calls: Vec<String> = read_call_log(&log).into_iter().map(|c| c.0).collect();
    let generated_at = calls
        .iter()
        .position(|c| c == "C_GenerateKeyPair")
        .expect("C_GenerateKeyPair in the baseline");
    // The first call after the key pair exists, and the self-test's signature.
    let after = &calls[generated_at + 1];
    let nth = |f: &str, upto: usize| calls[..=upto].iter().filter(|c| *c == f).count();
    let sign_at = generated_at
        + calls[generated_at..]
            .iter()
            .position(|c| c == "C_Sign")
            .unwrap();
    for (k, fault) in [
        Fault {
            func: after.clone(),
            n: nth(after, generated_at + 1),
            rv: "CKR_DEVICE_ERROR",
        },
        Fault {
            func: "C_Sign".into(),
            n: nth("C_Sign", sign_at),
            rv: "CKR_DEVICE_ERROR",
        },
    ]
    .into_iter()
    .enumerate()
    {
        let tag = format!("f{k}");
        let err = assert_fails(&sb.run(&args(&tag), Some(&fault), None));
        assert_mentions(
            &err,
            &[&format!("\"k-{tag}\""), "was generated on the token"],
        );
        assert_mentions(&err, &["never deletes keys"]);
        let log = fs::read_to_string(sb.path("ca/audit.jsonl")).unwrap();
        let refused = log
            .lines()
            .filter(|l| l.contains("\"request_refused\"") && l.contains(&format!("k-{tag}")))
            .count();
        assert_eq!(refused, 1, "[{fault}] the refusal names the key:\n{log}");
    }
    let mut problems = Vec::new();
    check_ca_dir(&sb, &mut BTreeSet::new(), &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
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

/// A seal that fails (the command's last token signature): exit 1 naming the seal, the
/// outputs complete and recorded, the log intact with an unsealed tail that names them, and the
/// next signing command seals it.
#[test]
fn seal_failure_keeps_recorded_outputs_and_says_so() {
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
    // The certificate is issued, recorded and written, the seal after it failed: exit 3.
    let err = assert_partial(&out);
    assert_mentions(&err, &["sealing the audit log failed"]);
    assert_mentions(
        &err,
        &["stopped part-way: the 1 certificate(s) were issued"],
    );
    assert_mentions(&err, &["next signing command seals it"]);
    let crt = sb.path("inter-sealfail.crt");
    let chain = sb.path("chain-sealfail.pem");
    assert!(
        crt.exists() && chain.exists(),
        "outputs of the signed certificate"
    );
    openssl_verify(&sb.path("root.crt"), &[], &crt).unwrap();
    let serial = normalize_hex(&openssl_x509(&crt, &["-noout", "-serial"]).replace("serial=", ""));
    let verify = assert_ok(&sb.run(&strings(&["--ca-dir", "ca", "log", "verify"]), None, None));
    assert_mentions(&verify, &["after the last seal"]);
    assert_mentions(&normalize_hex(&verify), &[&serial]);
    // The next signing command seals the tail.
    assert_ok(&sb.run(&sign_args("next"), None, None));
    let verify = assert_ok(&sb.run(&strings(&["--ca-dir", "ca", "log", "verify"]), None, None));
    assert!(!verify.contains("after the last seal"), "{verify}");
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

// ------------------------------------------------------------------------------------------------
// SIGKILL during a batch
// ------------------------------------------------------------------------------------------------
//
// Issue 6: "send SIGKILL during a batch at 20 different points". The points are exact, not
// timed: the fault module, preloaded (LD_PRELOAD) so that it also stands in front of libc's
// fsync, stops the process (SIGSTOP) before or after a chosen call, a PKCS#11 call or an fsync;
// the test waits until the process is stopped and kills it. The batch is a pipeline of three
// threads (src/ca/batch.rs): a reader builds each TBS, the token's thread signs them in
// request order, a writer records (fsync), keeps a copy (fsync) and writes the output (fsync)
// of each certificate in turn; the output directory is fsynced when the writer ends, then the
// seal is signed and recorded (fsync). Each thread's calls come in a fixed order
// ([`check_batch_shape`]), their interleaving does not: a stop at one of the writer's fsyncs
// fixes exactly what is on disk (kills land between the record and the output and in the
// middle of file writes), while a stop at a token call during the batch leaves the writer
// anywhere from [`TOKEN_LEAD`] certificates behind to just behind the token, so those points
// allow a range. After each kill: the process died of SIGKILL; no temporary or partial file
// anywhere (every file in the CA and output directories parses whole); `log verify` passes,
// with its note exactly when the log ends unsealed; the records, kept copies and outputs are
// the ones that point allows, in request order, each a prefix of the one before (record
// first, then kept copy, then output), none ahead of the token's signatures and the token at
// most [`TOKEN_LEAD`] ahead of the outputs; no serial twice; every kept copy is its record's
// certificate, every recorded certificate exports and every output is a recorded certificate.
// Then the recovery an operator makes: the same command again fails clearly if any output
// exists (and changes nothing), the certificates recorded without an output are exported, the
// requests not yet signed are signed (the lock died with the process), and the batch ends
// complete: one certificate per request, each output its record, the log verified and sealed.

/// Requests in the batch.
const BATCH: usize = 8;
/// The certificate of the batch the middle kill points are in.
const MID: usize = 5;
/// How many certificates the token's thread may be ahead of the writer's with one session.
const TOKEN_LEAD: usize = token_lead(1);

/// How far the token may run ahead of the outputs with `sessions` signing: each session holds
/// one signed certificate, the channel to the writer two per session, the writer one. The
/// batch enforces it at every interleaving (`src/ca/batch.rs`: a window of permits, one taken
/// before each signature, one given back per output written), so the check holds whatever
/// the scheduler does; the figure is kept here, not imported, as the promise the test holds
/// the code to.
const fn token_lead(sessions: usize) -> usize {
    3 * sessions + 1
}

/// How many of this batch's certificates are recorded, kept in `ca/certs/` and written to the
/// output directory after a kill, and whether the batch's seal is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    recorded: usize,
    kept: usize,
    outputs: usize,
    sealed: bool,
}

/// What a kill point allows: each count in an inclusive range. Exact where the stop fixes the
/// writer's state (its own fsyncs; the token calls before the batch or after the writer
/// ended); a range where the token's thread stops while the writer runs beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expect {
    recorded: (usize, usize),
    kept: (usize, usize),
    outputs: (usize, usize),
    sealed: bool,
}

impl Expect {
    fn exact(recorded: usize, kept: usize, outputs: usize, sealed: bool) -> Expect {
        Expect {
            recorded: (recorded, recorded),
            kept: (kept, kept),
            outputs: (outputs, outputs),
            sealed,
        }
    }

    /// The token's thread stopped at certificate `k`'s signature (before or just after it,
    /// before handing it on): the writer may have done anything from certificate k - 4 whole
    /// to k - 1 whole, and nothing of k.
    fn token_at(k: usize) -> Expect {
        let r = (k.saturating_sub(TOKEN_LEAD), k - 1);
        Expect {
            recorded: r,
            kept: r,
            outputs: r,
            sealed: false,
        }
    }

    fn is_exact(&self) -> bool {
        self.recorded.0 == self.recorded.1
            && self.kept.0 == self.kept.1
            && self.outputs.0 == self.outputs.1
    }

    fn allows(&self, f: &Found) -> bool {
        let within = |(lo, hi): (usize, usize), n: usize| lo <= n && n <= hi;
        within(self.recorded, f.recorded)
            && within(self.kept, f.kept)
            && within(self.outputs, f.outputs)
            && self.sealed == f.sealed
    }
}

/// Where a batch is stopped and killed: before or after the `n`-th call of `func`.
#[derive(Debug, Clone)]
struct KillPoint {
    what: String,
    func: &'static str,
    n: usize,
    after: bool,
    expect: Expect,
}

impl KillPoint {
    fn when(&self) -> &'static str {
        if self.after { "after" } else { "before" }
    }
}

impl std::fmt::Display for KillPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} #{}: {}",
            self.when(),
            self.func,
            self.n,
            self.what
        )
    }
}

/// Certificate i's signature is C_Sign #i, after C_SignInit #i (one C_Sign per signature: no
/// length query); the seal's is C_Sign #(BATCH+1). See [`check_batch_shape`].
fn sign_call(i: usize) -> usize {
    i
}

/// The writer's fsyncs: certificate i's record is fsync #3(i-1)+1, its kept copy +2, its
/// output +3; then #3·BATCH+1 the output directory, +2 `certs/`, +3 `crls/`, +4 the CA-key
/// index, +5 the seal's record, +6 the stamp kept after the token's head moved.
fn fsync_call(i: usize, step: usize) -> usize {
    3 * (i - 1) + step
}

/// The 20 kill points, numbered per thread as the batch makes its calls (see
/// [`check_batch_shape`]).
fn kill_points() -> Vec<KillPoint> {
    let e = Expect::exact;
    let t = Expect::token_at;
    let p = |what: String, func: &'static str, n: usize, after: bool, expect: Expect| KillPoint {
        what,
        func,
        n,
        after,
        expect,
    };
    let (b, m) = (BATCH, MID);
    let s = |t: &str| t.to_string();
    let (record, kept, output) = (1, 2, 3);
    vec![
        p(
            s("CA directory locked, log read, token untouched"),
            "C_Initialize",
            1,
            false,
            e(0, 0, 0, false),
        ),
        p(
            s("logged in, nothing signed"),
            "C_Login",
            1,
            true,
            e(0, 0, 0, false),
        ),
        p(
            s("certificate 1's TBS going to the token"),
            "C_Sign",
            sign_call(1),
            false,
            t(1),
        ),
        p(
            s("certificate 1's record written, not synced"),
            "fsync",
            fsync_call(1, record),
            false,
            e(1, 0, 0, false),
        ),
        p(
            s("certificate 1's record durable, no copy, no output"),
            "fsync",
            fsync_call(1, record),
            true,
            e(1, 0, 0, false),
        ),
        p(
            s("certificate 1's kept copy in an unnamed file"),
            "fsync",
            fsync_call(1, kept),
            false,
            e(1, 0, 0, false),
        ),
        p(
            s("certificate 1 kept, its output in an unnamed file"),
            "fsync",
            fsync_call(1, output),
            false,
            e(1, 1, 0, false),
        ),
        p(
            s("certificate 1's output synced, not linked"),
            "fsync",
            fsync_call(1, output),
            true,
            e(1, 1, 0, false),
        ),
        p(
            s("certificate 1's output linked, certificate 2's record written, not synced"),
            "fsync",
            fsync_call(2, record),
            false,
            e(2, 1, 1, false),
        ),
        p(
            format!("{} certificates signed, {m} not started", m - 1),
            "C_SignInit",
            m,
            false,
            t(m),
        ),
        p(
            format!("certificate {m} signed, not handed to the writer"),
            "C_Sign",
            sign_call(m),
            true,
            t(m),
        ),
        p(
            format!("certificate {m}'s record durable, no copy, no output"),
            "fsync",
            fsync_call(m, record),
            true,
            e(m, m - 1, m - 1, false),
        ),
        p(
            format!("certificate {m} kept, its output being written"),
            "fsync",
            fsync_call(m, output),
            false,
            e(m, m, m - 1, false),
        ),
        p(
            format!("the last certificate ({b}) signed, not handed to the writer"),
            "C_Sign",
            sign_call(b),
            true,
            t(b),
        ),
        p(
            s("every output durable, the seal not started"),
            "fsync",
            fsync_call(b + 1, 1),
            true,
            e(b, b, b, false),
        ),
        p(
            s("the kept copies durable, the CA-key index written, not synced, no seal"),
            "fsync",
            fsync_call(b + 1, 4),
            false,
            e(b, b, b, false),
        ),
        p(
            s("the seal signed, not recorded"),
            "C_Sign",
            sign_call(b + 1),
            true,
            e(b, b, b, false),
        ),
        p(
            s("the seal written, not synced"),
            "fsync",
            fsync_call(b + 1, 5),
            false,
            e(b, b, b, true),
        ),
        p(
            s("the seal durable, the token's head not yet moved past it"),
            "C_CreateObject",
            2,
            false,
            e(b, b, b, true),
        ),
        p(
            s("the token's head moved past the seal, its stamp not kept"),
            "fsync",
            fsync_call(b + 1, 6),
            false,
            e(b, b, b, true),
        ),
    ]
}

/// A root with a batch of requests in `batch/`.
fn with_batch() -> TestToken {
    let t = with_root();
    for i in 1..=BATCH {
        make_csr(
            &t.path("batch"),
            &format!("req-{i:02}"),
            CsrAlg::P256,
            &format!("Batch Int CA {i:02}"),
        );
    }
    t
}

/// The batch's `sign`, on `sessions` token sessions (one keeps every token call in request
/// order, which the token's kill points and the shape check count on).
fn batch_args(out_dir: &str, sessions: usize) -> Vec<String> {
    in_ca_dir("ca", batch_sign_args(&key_uri(), "batch", out_dir))
        .with(&["--sessions", &sessions.to_string()])
}

/// SIGKILL inside the one `write` of an audit record, the only place a kill can cut a record
/// short (the 20 points above are all between calls): the certificate's record, and the seal.
/// The killed command wrote nothing after the cut; `log verify` passes and names the
/// unfinished record; the next `sign` removes it, records what it removed and signs.
#[test]
fn sigkill_inside_an_audit_append() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::Duration;
    let prepared = with_root();
    let mut problems = Vec::new();
    for (n, torn, output_written) in [(1, "csr_signed", false), (2, "seal", true)] {
        let sb = Sandbox::copy_of(prepared.dir());
        let log_before = fs::read(sb.path("ca/audit.jsonl")).unwrap();
        let mut child = preloaded(&sb, &sb.path(format!("calls-{n}.txt")))
            .args(sign_args(&format!("torn-{n}")))
            .env("HSMCA_FAULT_TEAR", "ca/audit.jsonl")
            .env("HSMCA_FAULT_TEAR_N", n.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while process_state(child.id()) != Some('T') {
            assert!(
                child.try_wait().unwrap().is_none(),
                "write {n} of the audit log: the command ended before it"
            );
            assert!(started.elapsed() < Duration::from_secs(60), "never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));
        let what = format!("killed inside the write of the {torn} record");

        let log = fs::read(sb.path("ca/audit.jsonl")).unwrap();
        let whole = log.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let partial = &log[whole..];
        let partial_text = String::from_utf8_lossy(partial);
        if partial.is_empty() || !partial_text.contains(&format!("\"event\":\"{torn}\"")) {
            problems.push(format!(
                "{what}: the log does not end in half a {torn} record: {partial_text:?}"
            ));
            continue;
        }
        assert!(log.starts_with(&log_before));
        if sb.path(format!("inter-torn-{n}.crt")).exists() != output_written {
            problems.push(format!("{what}: the output exists: {}", !output_written));
        }
        let verify = run_command(
            sb.hsmca(None, None)
                .args(["--ca-dir", "ca", "log", "verify"]),
        );
        if !verify.status.success()
            || !stdout_of(&verify)
                .contains(&format!("unfinished record of {} bytes", partial.len()))
        {
            problems.push(format!(
                "{what}: log verify should pass and name the unfinished record: {}{}",
                stdout_of(&verify),
                stderr_of(&verify)
            ));
        }

        // The next sign removes it, records that, and signs.
        let next = sb.run(&sign_args(&format!("after-{n}")), None, None);
        if !next.status.success() || !stderr_of(&next).contains("unfinished record") {
            problems.push(format!(
                "{what}: the next sign should remove it and sign: {}",
                stderr_of(&next)
            ));
            continue;
        }
        let entries = AuditLog::new(&sb.path("ca/audit.jsonl")).read().unwrap();
        let removed = entries.iter().find_map(|e| match &e.record.event {
            Event::InterruptedAppendRemoved { offset, bytes, .. } => Some((*offset, bytes.clone())),
            _ => None,
        });
        match removed {
            Some((offset, bytes))
                if offset == whole as u64
                    && B64.decode(&bytes).ok().as_deref() == Some(partial) => {}
            other => problems.push(format!(
                "{what}: the removal is not recorded as it was: {other:?}"
            )),
        }
        let mut exported = BTreeSet::new();
        check_ca_dir(&sb, &mut exported, &mut problems);
        let verify = run_command(
            sb.hsmca(None, None)
                .args(["--ca-dir", "ca", "log", "verify"]),
        );
        if !verify.status.success() || stdout_of(&verify).contains("note:") {
            problems.push(format!(
                "{what}: after the next sign, log verify: {}",
                stdout_of(&verify)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `hsmca` with the fault module also preloaded (so its fsync counts), logging to `log`.
fn preloaded(sb: &Sandbox, log: &Path) -> Command {
    let mut cmd = sb.hsmca(None, Some(log));
    cmd.env("LD_PRELOAD", faultmod());
    cmd
}

/// The lines of a preloaded run's call log: the function (or `fsync`) and the rest of the
/// line (an fsync's file; `STOP before|after` for the stop point).
fn read_log_lines(path: &Path) -> Vec<(String, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((f, rest)) => (f.to_string(), rest.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// What an fsync of a batch into `out` was for, from the file the call log names
/// (`sandbox/DIR/FILE`, `sandbox/DIR/#INODE (deleted)` for an unnamed file).
fn fsync_kind(sandbox: &Path, file: &str, out: &str) -> String {
    let rel = Path::new(file)
        .strip_prefix(sandbox)
        .map_or_else(|_| file.to_string(), |p| p.display().to_string());
    let unnamed = |dir: &str| {
        rel.strip_prefix(dir)
            .and_then(|r| r.strip_prefix("/#"))
            .is_some_and(|r| r.ends_with(" (deleted)"))
    };
    if rel == "ca/audit.jsonl" {
        "record".into()
    } else if unnamed("ca/certs") {
        "kept".into()
    } else if unnamed(out) {
        "output".into()
    } else if rel == out {
        "output dir".into()
    } else {
        rel
    }
}

/// Runs the batch once unkilled and checks what the kill points are numbered from, per thread,
/// since the threads interleave differently in every run: the token calls (one C_Initialize
/// and C_Login; per certificate, in order, C_SignInit, C_Sign; the
/// seal's three; then C_Logout, C_CloseSession, C_Finalize) and the writer's fsyncs (per
/// certificate its record, its kept copy, its output; then the output directory, then the
/// seal's record), and the orders between them that do not depend on timing: certificate i
/// is recorded after its signature, the seal is signed after the writer's last fsync and
/// recorded before C_Logout.
fn check_batch_shape(prepared: &Path) {
    let sb = Sandbox::copy_of(prepared);
    let log = sb.path("calls.txt");
    assert_ok(&run_command(
        preloaded(&sb, &log).args(batch_args("out", 1)),
    ));
    let lines = read_log_lines(&log);
    let sandbox = sb.dir.path().canonicalize().unwrap();
    let calls: Vec<String> = lines
        .iter()
        .map(|(f, rest)| match f.as_str() {
            "fsync" => format!("fsync:{}", fsync_kind(&sandbox, rest, "out")),
            _ => f.clone(),
        })
        .collect();
    let mut problems = Vec::new();
    // The token's thread.
    let signing: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|c| ["C_SignInit", "C_Sign"].contains(c))
        .collect();
    let want_signing: Vec<&str> = std::iter::repeat_n(["C_SignInit", "C_Sign"], BATCH + 1)
        .flatten()
        .collect();
    if signing != want_signing {
        problems.push(format!(
            "signing calls: not C_SignInit, C_Sign for each of {BATCH} certificates and the seal"
        ));
    }
    let count = |f: &str| calls.iter().filter(|c| *c == f).count();
    if count("C_Initialize") != 1 || count("C_Login") != 1 {
        problems.push("not one C_Initialize and one C_Login".into());
    }
    let first = |f: &str| calls.iter().position(|c| c == f);
    if first("C_Login") > first("C_SignInit") {
        problems.push("C_Login is not before the first C_SignInit".into());
    }
    // The head on the token is marked open once (the second C_CreateObject moves it past the
    // seal), after the login and before the first signature.
    let creates: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "C_CreateObject")
        .map(|(i, _)| i)
        .collect();
    let seal_fsync = calls.iter().rposition(|c| c == "fsync:record");
    let stamp_fsync = calls.iter().rposition(|c| c == "fsync:ca/stamp");
    if creates.len() != 2
        || first("C_SignInit").is_none_or(|s| creates[0] > s)
        || seal_fsync.is_none_or(|f| creates[1] < f)
        || stamp_fsync.is_none_or(|f| creates[1] > f)
    {
        problems.push(
            "the token's head is not written twice: opened before the first C_SignInit, moved after the seal's record's fsync and before the stamp's".into(),
        );
    }
    if !calls.ends_with(&strings(&[
        "C_CreateObject",
        "C_DestroyObject",
        "fsync:ca/stamp",
        "C_Logout",
        "C_CloseSession",
        "C_Finalize",
    ])) {
        problems.push(
            "the end is not the head's replacement on the token, the stamp, C_Logout, C_CloseSession, C_Finalize".into(),
        );
    }
    // The writer's thread.
    let fsyncs: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.strip_prefix("fsync:"))
        .collect();
    let mut want_fsyncs: Vec<&str> = std::iter::repeat_n(["record", "kept", "output"], BATCH)
        .flatten()
        .collect();
    want_fsyncs.extend([
        "output dir",
        "ca/certs",
        "ca/crls",
        "ca/ca-keys",
        "record",
        "ca/stamp",
    ]);
    if fsyncs != want_fsyncs {
        problems.push(format!(
            "fsyncs: not record, kept copy, output for each of {BATCH} certificates, then the \
             output directory, certs/, crls/, the CA-key index, the seal's record and the \
             stamp: {fsyncs:?}"
        ));
    }
    // The orders between them (positions of the n-th call of each kind in the whole log).
    let nth = |pred: &dyn Fn(&str) -> bool, n: usize| {
        calls
            .iter()
            .enumerate()
            .filter(|(_, c)| pred(c))
            .nth(n - 1)
            .map(|(i, _)| i)
    };
    let sign = |n| nth(&|c| c == "C_Sign", n);
    let fsync = |n| nth(&|c| c.starts_with("fsync:"), n);
    for i in 1..=BATCH {
        if fsync(fsync_call(i, 1)) < sign(sign_call(i)) {
            problems.push(format!("certificate {i} is recorded before its signature"));
        }
    }
    if nth(&|c| c == "C_SignInit", BATCH + 1) < fsync(fsync_call(BATCH + 1, 4)) {
        problems.push("the seal is signed before the writer's last fsync".into());
    }
    assert!(
        problems.is_empty(),
        "the kill points assume another call sequence than the batch makes now; renumber \
         kill_points() (and fix check_batch_shape):\n{}\n\n{}",
        problems.join("\n"),
        calls.join(" ")
    );
}

/// Runs `args` told to stop at `point`, kills it (SIGKILL) once it is stopped there; returns
/// its stderr, or why the point was not reached.
fn run_and_kill(
    sb: &Sandbox,
    args: &[String],
    point: &KillPoint,
    tag: &str,
) -> Result<String, String> {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::Duration;
    let log = sb.path(format!("calls-{tag}.txt"));
    let out_path = sb.path(format!("killed-{tag}.stdout"));
    let err_path = sb.path(format!("killed-{tag}.stderr"));
    let mut cmd = preloaded(sb, &log);
    cmd.args(args)
        .env("HSMCA_FAULT_STOP_FN", point.func)
        .env("HSMCA_FAULT_STOP_N", point.n.to_string())
        .env("HSMCA_FAULT_STOP_AT", point.when())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("start hsmca");
    let started = Instant::now();
    loop {
        // try_wait does not report a stopped child (no WUNTRACED): only an ended one.
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!(
                "it never stopped there: it ended ({status}): {}",
                fs::read_to_string(&err_path).unwrap_or_default().trim()
            ));
        }
        if process_state(child.id()) == Some('T') {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("it did not stop within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    if status.signal() != Some(9) {
        return Err(format!("it ended with {status}, not by SIGKILL"));
    }
    // The stop line ends the stopping thread's calls; the other threads may have logged a
    // call between it and the stop (the token's thread makes every token call, the writer
    // every fsync until the seal, which comes after it ended).
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let want = format!("{} STOP {}", point.func, point.when());
    let lines: Vec<&str> = log_text.lines().collect();
    let same_thread = |l: &&str| (point.func == "fsync") == l.starts_with("fsync");
    match lines.iter().position(|l| *l == want) {
        Some(i) if !lines[i + 1..].iter().any(same_thread) => Ok(stderr),
        _ => Err(format!(
            "the call log does not end the stopped thread's calls with `{want}`: {:?}",
            &lines[lines.len().saturating_sub(3)..]
        )),
    }
}

/// Files under `dirs` that do not parse whole: certificates (`*.crt`, `*.pem`: PEM
/// certificates only, exactly as written), CRLs, the audit log (every line JSON, the chain
/// intact), the lock file (empty); the CA-key index and the stamp are whatever a kill left;
/// anything else is reported as unexpected.
fn unparsable_files(sb: &Sandbox, dirs: &[&str]) -> Vec<String> {
    use der::Decode;
    let mut problems = Vec::new();
    for dir in dirs {
        for (rel, bytes) in files_in(&sb.path(dir)) {
            let name = Path::new(dir).join(&rel).display().to_string();
            let text = String::from_utf8_lossy(&bytes);
            let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or_default();
            let (label, pem_ok) = match ext {
                "crt" | "pem" => ("CERTIFICATE", true),
                "crl" => ("X509 CRL", true),
                _ => ("", false),
            };
            if pem_ok {
                let blocks = pem_blocks(&text);
                let again: String = blocks.iter().map(|(l, d)| to_pem(l, d)).collect();
                let parses = blocks.iter().all(|(l, d)| {
                    l == label
                        && match ext {
                            "crl" => <x509_cert::crl::CertificateList>::from_der(d).is_ok(),
                            _ => x509_cert::Certificate::from_der(d).is_ok(),
                        }
                });
                if blocks.is_empty() || !parses || again != text {
                    problems.push(format!("{name} is not whole {label} PEM"));
                }
            } else if rel == Path::new("audit.jsonl") {
                let lines_ok = text.ends_with('\n')
                    && text
                        .lines()
                        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok());
                let chain = AuditLog::new(&sb.path(dir).join(&rel)).read();
                if !lines_ok || chain.is_err() {
                    problems.push(format!("{name} is not whole JSON lines: {:?}", chain.err()));
                }
            } else if rel == Path::new("lock") {
                if !bytes.is_empty() {
                    problems.push(format!("{name} is not empty"));
                }
            } else if rel == Path::new("ca-keys") || rel == Path::new("stamp") {
                // The CA-key index (entries past the last seal's count are a stopped
                // command's, cut off by the next one) and the stamp (a hint, written in
                // place): neither is trusted as it stands (the seal's state and the token's
                // head decide).
            } else {
                problems.push(format!("unexpected file {name}"));
            }
        }
    }
    problems
}

/// One batch run to kill: its output directory and the log and kept copies before it.
struct Round {
    out: String,
    /// Token sessions the batch signs on.
    sessions: usize,
    start_seq: u64,
    kept_before: BTreeSet<PathBuf>,
    /// Serials recorded before the round: a signing command keeps again the copies of these
    /// that an earlier kill lost, which are not this round's.
    serials_before: BTreeSet<String>,
}

impl Round {
    fn start(sb: &Sandbox, out: String, sessions: usize) -> Round {
        let entries = AuditLog::new(&sb.path("ca/audit.jsonl")).read().unwrap();
        Round {
            out,
            sessions,
            start_seq: entries.last().map_or(0, |e| e.record.seq),
            kept_before: files_in(&sb.path("ca/certs")).into_keys().collect(),
            serials_before: entries
                .iter()
                .filter_map(|e| e.record.event.issued_cert())
                .map(|c| c.serial.clone())
                .collect(),
        }
    }

    /// The copies of this round's certificates kept in `ca/certs/`: file name → contents.
    fn kept(&self, sb: &Sandbox) -> BTreeMap<PathBuf, Vec<u8>> {
        files_in(&sb.path("ca/certs"))
            .into_iter()
            .filter(|(p, _)| {
                let serial = p.to_string_lossy().trim_end_matches(".pem").to_string();
                !self.kept_before.contains(p) && !self.serials_before.contains(&serial)
            })
            .collect()
    }

    /// This round's records: (certificate, request SHA-256) of each signing, and whether it
    /// has a seal.
    fn records(&self, sb: &Sandbox) -> Result<(Vec<(IssuedCert, String)>, bool), String> {
        let entries = AuditLog::new(&sb.path("ca/audit.jsonl"))
            .read()
            .map_err(|e| format!("the audit log does not read back: {e}"))?;
        let mut signed = Vec::new();
        let mut sealed = false;
        for e in entries
            .into_iter()
            .filter(|e| e.record.seq > self.start_seq)
        {
            match e.record.event {
                Event::CsrSigned {
                    cert, csr_sha256, ..
                } => signed.push((cert, csr_sha256)),
                Event::Seal { .. } => sealed = true,
                _ => {}
            }
        }
        Ok((signed, sealed))
    }

    fn output(&self, sb: &Sandbox, stem: &str) -> PathBuf {
        sb.path(format!("{}/{stem}.crt", self.out))
    }
}

/// The batch's requests: SHA-256 of the DER (as records hold it) → file stem.
fn batch_requests(sb: &Sandbox) -> BTreeMap<String, String> {
    files_in(&sb.path("batch"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "csr"))
        .map(|(p, bytes)| {
            let blocks = pem_blocks(&String::from_utf8_lossy(&bytes));
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (hsmca::ca::audit::sha256_hex(&blocks[0].1), stem)
        })
        .collect()
}

/// `hsmca log verify`: its problem, if any; a note must come exactly when the log ends
/// unsealed, naming the certificates `unsealed_certs` (issued after the last seal).
fn log_verify_problem(sb: &Sandbox, unsealed_certs: &[&str]) -> Option<String> {
    let entries = AuditLog::new(&sb.path("ca/audit.jsonl")).read().ok()?;
    let unsealed = !matches!(
        entries.last().map(|e| &e.record.event),
        Some(Event::Seal { .. })
    );
    let out = run_command(
        sb.hsmca(None, None)
            .args(["--ca-dir", "ca", "log", "verify"]),
    );
    let stdout = stdout_of(&out);
    if !out.status.success() {
        return Some(format!("'log verify' fails: {}", stderr_of(&out).trim()));
    }
    if unsealed != stdout.contains("\nnote: ") {
        return Some(format!(
            "'log verify' on a log {} says:\n{stdout}",
            if unsealed {
                "ending unsealed"
            } else {
                "ending sealed"
            }
        ));
    }
    if let Some(s) = unsealed_certs.iter().find(|s| !stdout.contains(**s)) {
        return Some(format!(
            "'log verify' does not name {s}, issued after the last seal:\n{stdout}"
        ));
    }
    None
}

/// Every output of the round is a certificate the round recorded for that request.
fn outputs_recorded(
    sb: &Sandbox,
    round: &Round,
    signed: &[(IssuedCert, String)],
    requests: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> usize {
    let files = files_in(&sb.path(&round.out));
    let mut serials = BTreeSet::new();
    for (rel, bytes) in &files {
        let stem = rel.file_stem().unwrap().to_string_lossy().into_owned();
        let blocks = pem_blocks(&String::from_utf8_lossy(bytes));
        let Some((_, der)) = blocks.first() else {
            continue; // reported by unparsable_files
        };
        let hash = hsmca::ca::audit::sha256_hex(der);
        match signed.iter().find(|(c, _)| c.cert_sha256 == hash) {
            None => problems.push(format!("{}/{stem}.crt is not recorded", round.out)),
            Some((c, csr)) => {
                if requests.get(csr) != Some(&stem) {
                    problems.push(format!(
                        "{}/{stem}.crt holds the certificate of another request",
                        round.out
                    ));
                }
                if !serials.insert(c.serial.clone()) {
                    problems.push(format!("serial {} written twice", c.serial));
                }
            }
        }
    }
    files.len()
}

/// The signatures the batch's token thread made before the kill, from the call log (a C_Sign
/// logged but stopped before it reached the token does not count; the seal's is left out).
fn batch_signatures(log: &Path, point: &KillPoint) -> usize {
    let lines = read_log_lines(log);
    let mut c_sign = lines
        .iter()
        .filter(|(f, rest)| f == "C_Sign" && rest.is_empty())
        .count();
    if point.func == "C_Sign" && !point.after {
        c_sign -= 1;
    }
    c_sign.min(BATCH)
}

/// The checks right after the kill. Besides the counts the point allows: what the writer did
/// is a prefix in request order, one step behind the other (outputs ≤ kept ≤ records ≤
/// signatures, each kept copy and output its record's certificate), and the token was at most
/// [`TOKEN_LEAD`] certificates ahead of the last output. Returns the problems and what was
/// found.
fn check_after_kill(
    sb: &Sandbox,
    round: &Round,
    point: &KillPoint,
    call_log: &Path,
    requests: &BTreeMap<String, String>,
    exported: &mut BTreeSet<String>,
) -> (Vec<String>, Option<(Found, usize)>) {
    let mut problems = Vec::new();
    let temps = leftover_temp_files(sb.dir.path());
    if !temps.is_empty() {
        problems.push(format!("temporary files left: {temps:?}"));
    }
    problems.extend(unparsable_files(sb, &["ca", &round.out]));
    check_ca_dir(sb, exported, &mut problems);
    let (signed, sealed) = match round.records(sb) {
        Ok(r) => r,
        Err(e) => {
            problems.push(e);
            return (problems, None);
        }
    };
    let unsealed: Vec<&str> = match sealed {
        true => Vec::new(),
        false => signed.iter().map(|(c, _)| c.serial.as_str()).collect(),
    };
    problems.extend(log_verify_problem(sb, &unsealed));
    let outputs = outputs_recorded(sb, round, &signed, requests, &mut problems);
    let kept = round.kept(sb);
    let got = Found {
        recorded: signed.len(),
        kept: kept.len(),
        outputs,
        sealed,
    };
    // In request order (the files of --csr-dir sorted by name, as `requests` is by stem).
    let mut order: Vec<&String> = requests.values().collect();
    order.sort();
    let recorded_stems: Vec<Option<&String>> =
        signed.iter().map(|(_, csr)| requests.get(csr)).collect();
    let first = |n: usize| order.iter().take(n).map(|s| Some(*s)).collect::<Vec<_>>();
    if recorded_stems != first(signed.len()) {
        problems.push(format!(
            "the records are not the first requests in order: {recorded_stems:?}"
        ));
    }
    for (name, bytes) in &kept {
        let serial = name.to_string_lossy().trim_end_matches(".pem").to_string();
        match signed.iter().position(|(c, _)| c.serial == serial) {
            Some(i) if i < kept.len() => {
                let blocks = pem_blocks(&String::from_utf8_lossy(bytes));
                let der = signed[i].0.der().ok();
                if blocks.len() != 1 || Some(&blocks[0].1) != der.as_ref() {
                    problems.push(format!(
                        "ca/certs/{} is not its record's certificate",
                        name.display()
                    ));
                }
            }
            Some(i) => problems.push(format!(
                "ca/certs/{} is record {} of {}: kept copies are not the first records",
                name.display(),
                i + 1,
                signed.len()
            )),
            None => problems.push(format!(
                "ca/certs/{} is not recorded by this batch",
                name.display()
            )),
        }
    }
    let written: BTreeSet<String> = files_in(&sb.path(&round.out))
        .into_keys()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = order.iter().take(outputs).map(|s| s.to_string()).collect();
    if written != want {
        problems.push(format!(
            "the outputs are not the first requests: {written:?}"
        ));
    }
    let signatures = batch_signatures(call_log, point);
    if !(got.outputs <= got.kept && got.kept <= got.recorded && got.recorded <= signatures) {
        problems.push(format!(
            "not outputs ≤ kept ≤ records ≤ signatures ({signatures}): {got:?}"
        ));
    }
    let lead = token_lead(round.sessions);
    if signatures > got.outputs + lead {
        problems.push(format!(
            "the token made {signatures} signatures, more than {lead} ahead of {} outputs",
            got.outputs
        ));
    }
    if !point.expect.allows(&got) {
        problems.push(format!("expected {:?}, found {got:?}", point.expect));
    }
    (problems, Some((got, signatures)))
}

/// What an operator does after the kill, checked step by step; then the batch must be whole.
fn recover(
    sb: &Sandbox,
    round: &Round,
    requests: &BTreeMap<String, String>,
    exported: &mut BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (signed, _) = match round.records(sb) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    // The same command again: refused before the token if any output exists, nothing changed.
    if !files_in(&sb.path(&round.out)).is_empty() {
        let before = (files_in(&sb.path("ca")), files_in(&sb.path(&round.out)));
        let out = sb.run(&batch_args(&round.out, round.sessions), None, None);
        let stderr = stderr_of(&out);
        if out.status.code() != Some(1)
            || !error_first(&stderr)
            || !stderr.contains("already exists")
            || !stderr.lines().any(|l| l.starts_with("hint: "))
        {
            problems.push(format!(
                "the same command again: not a clear refusal (exit {:?}): {stderr}",
                out.status.code()
            ));
        }
        if before != (files_in(&sb.path("ca")), files_in(&sb.path(&round.out))) {
            problems.push("the refused command again changed files".into());
        }
    }
    // Recorded but not written: exported from the log.
    for (cert, csr) in &signed {
        let Some(stem) = requests.get(csr) else {
            problems.push(format!("{} signs a request not in the batch", cert.serial));
            continue;
        };
        let out = round.output(sb, stem);
        if !out.exists() {
            let run = sb.run(
                &strings(&[
                    "--ca-dir",
                    "ca",
                    "export",
                    "--serial",
                    &cert.serial,
                    "--out",
                ])
                .into_iter()
                .chain([out.display().to_string()])
                .collect::<Vec<_>>(),
                None,
                None,
            );
            if !run.status.success() {
                problems.push(format!(
                    "export of {} fails: {}",
                    cert.serial,
                    stderr_of(&run)
                ));
            }
        }
    }
    // Not yet signed: signed now.
    let rest: Vec<&String> = requests
        .iter()
        .filter(|(sha, _)| !signed.iter().any(|(_, c)| c == *sha))
        .map(|(_, stem)| stem)
        .collect();
    if !rest.is_empty() {
        let mut args = strings(&["--ca-dir", "ca", "sign", "--key"]);
        args.push(key_uri());
        for stem in &rest {
            args.extend(["--csr".into(), format!("batch/{stem}.csr")]);
        }
        args.extend(["--out-dir".into(), round.out.clone()]);
        args.extend(strings(&[
            "--profile",
            "intermediate",
            "--path-len",
            "0",
            "--validity",
            "5y",
        ]));
        let out = sb.run(&args, None, None);
        if !out.status.success() {
            problems.push(format!(
                "signing the {} requests left fails: {}",
                rest.len(),
                stderr_of(&out)
            ));
        }
    }
    // The batch is whole.
    problems.extend(log_verify_problem(sb, &[]));
    check_ca_dir(sb, exported, &mut problems);
    problems.extend(unparsable_files(sb, &["ca", &round.out]));
    let temps = leftover_temp_files(sb.dir.path());
    if !temps.is_empty() {
        problems.push(format!("temporary files left: {temps:?}"));
    }
    let (signed, sealed) = match round.records(sb) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    if !rest.is_empty() && !sealed {
        problems.push("the recovering sign did not seal the log".into());
    }
    let outputs = outputs_recorded(sb, round, &signed, requests, &mut problems);
    for (sha, stem) in requests {
        let n = signed.iter().filter(|(_, c)| c == sha).count();
        if n != 1 {
            problems.push(format!("{stem} signed {n} times"));
        }
    }
    if outputs != BATCH || signed.len() != BATCH {
        problems.push(format!(
            "after recovery: {} records, {outputs} outputs, for {BATCH} requests",
            signed.len()
        ));
    }
    problems
}

/// Kills, checks and recovers one round; returns the problems, each naming the point.
fn kill_round(
    sb: &Sandbox,
    round: &Round,
    point: &KillPoint,
    tag: &str,
    exported: &mut BTreeSet<String>,
) -> Vec<String> {
    let requests = batch_requests(sb);
    let args = batch_args(&round.out, round.sessions);
    let mut problems = match run_and_kill(sb, &args, point, tag) {
        Err(e) => vec![e],
        Ok(stderr) if stderr.contains("panicked") || stderr.contains("error:") => {
            vec![format!("stderr before the kill: {stderr}")]
        }
        Ok(_) => {
            let log = sb.path(format!("calls-{tag}.txt"));
            let (problems, found) = check_after_kill(sb, round, point, &log, &requests, exported);
            if let Some((f, signatures)) = found {
                eprintln!(
                    "[{point}] {signatures} signed, {} recorded, {} kept, {} written{}{}",
                    f.recorded,
                    f.kept,
                    f.outputs,
                    if f.sealed { ", sealed" } else { "" },
                    if point.expect.is_exact() {
                        ""
                    } else {
                        " (a range)"
                    },
                );
            }
            problems
        }
    };
    problems.extend(recover(sb, round, &requests, exported));
    problems
        .into_iter()
        .map(|p| format!("[{point}] {p}"))
        .collect()
}

/// Each of the 20 points in a fresh copy of the same CA and token.
#[test]
fn sigkill_during_a_batch_at_20_points() {
    let started = Instant::now();
    let prepared = with_batch();
    check_batch_shape(prepared.dir());
    let points = kill_points();
    assert_eq!(points.len(), 20);
    let next = AtomicUsize::new(0);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some(point) = points.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let sb = Sandbox::copy_of(prepared.dir());
                    let mut exported = BTreeSet::new();
                    check_ca_dir(&sb, &mut exported, &mut Vec::new());
                    let round = Round::start(&sb, "out".into(), 1);
                    let found = kill_round(&sb, &round, point, "kill", &mut exported);
                    problems.lock().unwrap().extend(found);
                }
            });
        }
    });
    eprintln!(
        "SIGKILL at {} points, each in a fresh CA: {:.1}s",
        points.len(),
        started.elapsed().as_secs_f64()
    );
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A batch on two sessions under token faults. The token refusing the second session leaves
/// one to sign the whole batch, with a note. A device error on a signature, whichever session
/// makes it, stops the batch with the CKR named; what came before it in request order is
/// recorded and written, and the operator's recovery (export, sign the rest) completes it.
#[test]
fn faults_in_a_two_session_batch() {
    let prepared = with_batch();

    let sb = Sandbox::copy_of(prepared.dir());
    let refused = Fault {
        func: "C_OpenSession".into(),
        n: 2,
        rv: "CKR_SESSION_COUNT",
    };
    let out = sb.run(&batch_args("out", 2), Some(&refused), None);
    assert_ok(&out);
    assert!(
        stderr_of(&out).contains("the token refused another one"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(files_in(&sb.path("out")).len(), BATCH);
    let mut problems = Vec::new();
    check_ca_dir(&sb, &mut BTreeSet::new(), &mut problems);
    assert!(problems.is_empty(), "{problems:?}");

    let sb = Sandbox::copy_of(prepared.dir());
    let mut exported = BTreeSet::new();
    let round = Round::start(&sb, "out".into(), 2);
    let requests = batch_requests(&sb);
    let failed = Fault {
        func: "C_Sign".into(),
        n: sign_call(MID),
        rv: "CKR_DEVICE_ERROR",
    };
    let out = sb.run(&batch_args("out", 2), Some(&failed), None);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert_mentions(&stderr, &["CKR_DEVICE_ERROR"]);
    let (signed, _) = round.records(&sb).unwrap();
    let written = outputs_recorded(&sb, &round, &signed, &requests, &mut problems);
    // Exit 3 exactly when the batch wrote some certificates before it stopped.
    if written > 0 {
        assert_partial(&out);
    } else {
        assert_fails(&out);
    }
    assert!(
        written < BATCH,
        "{written} written after a failed signature"
    );
    problems.extend(unparsable_files(&sb, &["ca", "out"]));
    check_ca_dir(&sb, &mut exported, &mut problems);
    problems.extend(recover(&sb, &round, &requests, &mut exported));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// With two sessions signing, the token's calls interleave, but the writer's fsyncs keep their
/// order: the kill points among them, each in a fresh CA, with the same checks and expectations
/// (the token's lead bounded for two sessions).
#[test]
fn sigkill_during_a_two_session_batch_at_the_writers_points() {
    let prepared = with_batch();
    let points: Vec<KillPoint> = kill_points()
        .into_iter()
        .filter(|p| p.func == "fsync")
        .collect();
    assert!(points.len() >= 8, "{points:?}");
    let mut problems = Vec::new();
    for (i, point) in points.iter().enumerate() {
        let sb = Sandbox::copy_of(prepared.dir());
        let mut exported = BTreeSet::new();
        check_ca_dir(&sb, &mut exported, &mut Vec::new());
        let round = Round::start(&sb, "out".into(), 2);
        problems.extend(kill_round(
            &sb,
            &round,
            point,
            &format!("two-{i:02}"),
            &mut exported,
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The 20 points one after the other in one CA: each batch killed, recovered, and the next
/// one killed again; the log and the records accumulate.
#[test]
fn sigkill_at_20_points_into_one_ca() {
    let started = Instant::now();
    let prepared = with_batch();
    check_batch_shape(prepared.dir());
    let sb = Sandbox::copy_of(prepared.dir());
    let mut exported = BTreeSet::new();
    check_ca_dir(&sb, &mut exported, &mut Vec::new());
    let mut problems = Vec::new();
    for (r, point) in kill_points().iter().enumerate() {
        let round = Round::start(&sb, format!("out-{r:02}"), 1);
        problems.extend(kill_round(
            &sb,
            &round,
            point,
            &format!("kill-{r:02}"),
            &mut exported,
        ));
    }
    let issued = recorded_serials(&sb.path("ca"));
    let unique: BTreeSet<&String> = issued.iter().collect();
    assert_eq!(unique.len(), issued.len(), "a serial issued twice");
    assert_eq!(issued.len(), 1 + 20 * BATCH, "the root and 20 batches");
    eprintln!(
        "SIGKILL at 20 points into one CA: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Asserts a command stopped part-way the way the CLI contract says: exit code 3, stderr
/// starting with `error: `, saying what was done, and holding a `hint: ` line. Returns stderr.
#[track_caller]
fn assert_partial(out: &Output) -> String {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(3), "expected exit code 3\n{stderr}");
    assert!(error_first(&stderr), "{stderr}");
    assert_mentions(&stderr, &["stopped part-way: "]);
    assert!(stderr.lines().any(|l| l.starts_with("hint: ")), "{stderr}");
    stderr
}
