//! Single commands under token faults: key generation, root creation, signing and CRL issuance
//! with every call they make failed in turn, with each of [`CODES`] (see `faults`); the fault
//! module itself; a failed seal; a second key in a CA directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::sandbox::*;
use super::*;
use hsmca::internals::audit::AuditLog;

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
/// By design a signing command seals the log last, after its outputs: a batch streams its
/// certificates to disk (sealing first would hold them all in memory, or cost a second token
/// signature per certificate). So a run whose seal fails ends with exit 1 and every output
/// written, valid and recorded; its error says only the seal is missing, and the next signing
/// command seals the tail. The sweeps check exactly that for faults in the seal
/// (`seal_failure_keeps_recorded_outputs_and_says_so` checks one in detail).
const SEAL_COMES_AFTER_OUTPUTS: bool = true;

// ------------------------------------------------------------------------------------------------
// What must hold after every faulted run
// ------------------------------------------------------------------------------------------------

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

#[test_needs(softhsm2)]
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
#[test_needs(softhsm2)]
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

#[test_needs(softhsm2)]
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

#[test_needs(softhsm2)]
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

#[test_needs(softhsm2)]
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
#[test_needs(softhsm2)]
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

/// A seal that fails (the command's last token signature): exit 1 naming the seal, the
/// outputs complete and recorded, the log intact with an unsealed tail that names them, and the
/// next signing command seals it.
#[test_needs(softhsm2)]
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
#[test_needs(softhsm2)]
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
