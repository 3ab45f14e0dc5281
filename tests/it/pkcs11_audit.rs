//! Every PKCS#11 call hsmca makes, for every command that touches a token and for its
//! failures: one C_Login per command that logs in (even with a wrong PIN: hardware tokens lock
//! after a few tries), none for a command refused before the token; never a read of a private
//! key's secret attributes; never C_WrapKey, C_CopyObject, C_SetAttributeValue (nor token or
//! PIN administration); objects created or destroyed only as hsmca's log head (private CKO_DATA
//! objects); every session closed, each used by one thread only, and the module
//! finalized last, on every exit path.
//!
//! The calls are read from the fault module's trace (`faultmod/src/trace.rs`: one whole line
//! per call, written when it returns, with its thread), which stays exact when several
//! sessions sign at once. OpenSC's pkcs11-spy sits behind it as a second witness: the calls it
//! saw must be the same ones, and no line it wrote may name a secret attribute. (The spy's own
//! log is not parsed call by call: with several threads its lines interleave, and a return
//! value cannot be told apart from another thread's.)

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Output;

use crate::common::*;

/// Attributes that hold private key material.
const SECRET_ATTRIBUTES: [&str; 7] = [
    "CKA_VALUE",
    "CKA_PRIVATE_EXPONENT",
    "CKA_PRIME_1",
    "CKA_PRIME_2",
    "CKA_EXPONENT_1",
    "CKA_EXPONENT_2",
    "CKA_COEFFICIENT",
];

/// Functions a CA tool has no business calling.
const FORBIDDEN_CALLS: [&str; 7] = [
    "C_WrapKey",
    "C_CopyObject",
    "C_SetAttributeValue",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_GetOperationState",
];

/// One call in the trace: `SEQ tid=TID C_Name CKR_RV key=value...`.
#[derive(Debug)]
struct Call {
    seq: usize,
    tid: String,
    name: String,
    rv: String,
    fields: BTreeMap<String, String>,
}

impl Call {
    /// The value of a `key=value` field.
    fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A comma-separated field as a list (attribute types, found handles).
    fn list(&self, key: &str) -> Vec<&str> {
        self.field(key)
            .map(|v| v.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    fn ok(&self) -> bool {
        self.rv == "CKR_OK"
    }
}

/// Parses the fault module's trace; a line that does not parse fails the test.
fn read_trace(path: &Path) -> Vec<Call> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let calls: Vec<Call> = text
        .lines()
        .map(|line| {
            let mut words = line.split(' ');
            let mut next = || words.next().unwrap_or_default().to_string();
            let (seq, tid, name, rv) = (next(), next(), next(), next());
            let fields = line
                .split(' ')
                .skip(4)
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Call {
                seq: seq
                    .parse()
                    .unwrap_or_else(|_| panic!("trace line {line:?}")),
                tid: tid
                    .strip_prefix("tid=")
                    .unwrap_or_else(|| panic!("trace line {line:?}"))
                    .to_string(),
                name,
                rv,
                fields,
            }
        })
        .collect();
    // One line per call, numbered in the order written: nothing lost or doubled.
    let seqs: Vec<usize> = calls.iter().map(|c| c.seq).collect();
    assert_eq!(
        seqs,
        (1..=calls.len()).collect::<Vec<_>>(),
        "trace {} is not whole",
        path.display()
    );
    calls
}

/// The calls pkcs11-spy saw, by name and count (its `N: C_Name` lines are whole even when
/// threads interleave); and whether any of its lines names a secret attribute.
fn spy_saw(path: &Path) -> (BTreeMap<String, usize>, Vec<String>) {
    let text = String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let mut names = BTreeMap::new();
    let mut secret = Vec::new();
    for line in text.lines() {
        if let Some((n, f)) = line.split_once(": ")
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
            && f.trim_end().starts_with("C_")
            && !f.trim_end().contains(' ')
        {
            *names.entry(f.trim_end().to_string()).or_insert(0) += 1;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if SECRET_ATTRIBUTES.contains(&first) {
            secret.push(line.to_string());
        }
    }
    (names, secret)
}

/// Checks one command's calls against every rule; `logins` is how many C_Login it must make.
#[track_caller]
fn check_calls(what: &str, t: &TestToken, logins: usize) -> Vec<Call> {
    let trace = t.trace_log();
    let calls = read_trace(&trace);
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    let context = format!("{what}: calls {names:?} (trace {})", trace.display());

    // The spy, behind the fault module, saw the same calls (C_GetFunctionList aside: the
    // fault module answers it itself).
    let (spied, secret_lines) = spy_saw(t.spy_log());
    let mut traced: BTreeMap<String, usize> = BTreeMap::new();
    for c in &calls {
        *traced.entry(c.name.clone()).or_insert(0) += 1;
    }
    let spied: BTreeMap<String, usize> = spied
        .into_iter()
        .filter(|(n, _)| n != "C_GetFunctionList")
        .collect();
    assert_eq!(
        traced, spied,
        "the trace and pkcs11-spy saw different calls; {context}"
    );
    // The value of hsmca's log head (a data object, checked call by call below) is the one
    // CKA_VALUE the spy may show.
    let touches_data = calls.iter().any(|c| {
        c.name == "C_CreateObject"
            || (c.name == "C_GetAttributeValue" && c.list("attrs").contains(&"CKA_VALUE"))
    });
    let secret_lines: Vec<&String> = secret_lines
        .iter()
        .filter(|l| !(touches_data && l.split_whitespace().next() == Some("CKA_VALUE")))
        .collect();
    assert!(
        secret_lines.is_empty(),
        "pkcs11-spy logged secret attributes {secret_lines:?}; {context}"
    );

    let login_calls = calls.iter().filter(|c| c.name == "C_Login").count();
    assert_eq!(login_calls, logins, "C_Login count; {context}");

    for c in &calls {
        assert!(
            !FORBIDDEN_CALLS.contains(&c.name.as_str()),
            "call {} {} is forbidden; {context}",
            c.seq,
            c.name
        );
    }

    // Private key handles: generated ones, and those found by a CKO_PRIVATE_KEY search (per
    // session: several sessions search at once). Data objects: found by a CKO_DATA search or
    // created as one (the log head).
    let mut private: BTreeSet<String> = BTreeSet::new();
    let mut data: BTreeSet<String> = BTreeSet::new();
    let mut searching: BTreeMap<String, String> = BTreeMap::new();
    for c in &calls {
        let session = c.field("session").unwrap_or("?").to_string();
        let object = c.field("object").unwrap_or("?");
        match c.name.as_str() {
            "C_GenerateKeyPair" => private.extend(c.field("private").map(str::to_string)),
            "C_FindObjectsInit" => {
                searching.insert(session, c.field("class").unwrap_or("").to_string());
            }
            "C_FindObjects" => match searching.get(&session).map(String::as_str) {
                Some("CKO_PRIVATE_KEY") => {
                    private.extend(c.list("found").into_iter().map(str::to_string))
                }
                Some("CKO_DATA") => data.extend(c.list("found").into_iter().map(str::to_string)),
                _ => {}
            },
            "C_CreateObject" => {
                assert_eq!(
                    c.field("class"),
                    Some("CKO_DATA"),
                    "call {} creates an object other than a data object; {context}",
                    c.seq
                );
                data.extend(c.field("created").map(str::to_string));
            }
            "C_DestroyObject" => {
                assert!(
                    data.contains(object),
                    "call {} destroys object {object}, which is not hsmca's data object; {context}",
                    c.seq
                );
            }
            "C_GetAttributeValue" => {
                let secret: Vec<&str> = c
                    .list("attrs")
                    .into_iter()
                    .filter(|a| SECRET_ATTRIBUTES.contains(a))
                    .collect();
                // Stricter than needed: no object's secret attributes are ever asked for but
                // the value of hsmca's own data object; a private key's would be the leak.
                assert!(
                    secret.is_empty() || (data.contains(object) && secret == ["CKA_VALUE"]),
                    "call {} reads {secret:?} of object {object} (a private key: {}); {context}",
                    c.seq,
                    private.contains(object)
                );
            }
            _ => {}
        }
    }

    // Every session opened is closed, and each is used by one thread only once opened (a
    // signing thread's session is opened by the thread that starts it, then handed over).
    let opened: BTreeSet<&str> = calls
        .iter()
        .filter(|c| c.name == "C_OpenSession" && c.ok())
        .filter_map(|c| c.field("session"))
        .collect();
    let closed: BTreeSet<&str> = calls
        .iter()
        .filter(|c| c.name == "C_CloseSession" && c.ok())
        .filter_map(|c| c.field("session"))
        .collect();
    let close_all = calls
        .iter()
        .any(|c| c.name == "C_CloseAllSessions" && c.ok());
    assert!(
        close_all || opened == closed,
        "sessions opened {opened:?}, closed {closed:?}; {context}"
    );
    for s in &opened {
        let threads: BTreeSet<&str> = calls
            .iter()
            .filter(|c| c.name != "C_OpenSession" && c.field("session") == Some(s))
            .map(|c| c.tid.as_str())
            .collect();
        assert_eq!(
            threads.len(),
            1,
            "session {s} used by threads {threads:?}; {context}"
        );
    }
    if calls.iter().any(|c| c.name == "C_Initialize") {
        assert_eq!(
            names.last().copied(),
            Some("C_Finalize"),
            "the module must be finalized last; {context}"
        );
    }
    calls
}

/// A token with the spy, the CA key generated with `--ca-dir ca`, and a fresh spy log.
fn spied<S: AsRef<OsStr>>(
    t: &TestToken,
    what: &str,
    args: &[S],
    logins: usize,
) -> (Output, Vec<Call>) {
    t.clear_call_logs();
    let out = t.run(args);
    let calls = check_calls(what, t, logins);
    (out, calls)
}

/// Exit 1 with an `error:` and a `hint:` line (warnings, such as the PIN counter's, may come
/// first). Returns stderr.
#[track_caller]
fn fails(out: &Output) -> String {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("error: ")), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("hint: ")), "{stderr}");
    stderr
}

const KEY: &str = "pkcs11:token=Root%20CA;object=root-2026";

#[test_needs(softhsm2)]
fn every_command_makes_only_safe_calls() {
    let t = TestToken::new("Root CA").with_spy();

    let (out, calls) = spied(&t, "token list", &["token", "list"], 0);
    assert_ok(&out);
    assert!(calls.iter().all(|c| c.name != "C_OpenSession"));

    let (out, calls) = spied(
        &t,
        "key generate",
        &in_ca_dir(
            "ca",
            key_generate_args("Root CA", "root-2026", "ecdsa-p256")
                .with(&["--public-key-out", "root.pub"]),
        ),
        1,
    );
    assert_ok(&out);
    assert!(calls.iter().any(|c| c.name == "C_GenerateKeyPair"));
    // The parser sees templates: the policy attributes are read (never the secret ones).
    assert!(
        calls
            .iter()
            .any(|c| c.name == "C_GetAttributeValue" && c.list("attrs").contains(&"CKA_SENSITIVE")),
        "no CKA_SENSITIVE read seen: the trace parser is broken"
    );
    assert!(calls.iter().any(|c| c.name == "C_OpenSession" && c.ok()));

    // An RSA key too: its private object has the most secret attributes to not read.
    let (out, _) = spied(
        &t,
        "key generate rsa",
        &key_generate_args("Root CA", "rsa-key", "rsa-2048"),
        1,
    );
    assert_ok(&out);

    let (out, _) = spied(&t, "key list", &["key", "list", "--token", "Root CA"], 1);
    assert_ok(&out);

    let (out, _) = spied(
        &t,
        "root create",
        &in_ca_dir("ca", root_create_args(KEY, "20y", "root.crt")),
        1,
    );
    assert_ok(&out);

    t.inter_csr("Cluster A Int CA");
    let (out, calls) = spied(
        &t,
        "sign",
        &in_ca_dir(
            "ca",
            intermediate_args(KEY, "cluster/inter.csr", "5y", "inter.crt"),
        ),
        1,
    );
    assert_ok(&out);
    assert!(calls.iter().any(|c| c.name == "C_Sign"));

    // A batch on three sessions: one login for all, every session closed.
    for i in 1..=6 {
        make_csr(
            &t.path("batch"),
            &format!("req-{i}"),
            CsrAlg::P256,
            &format!("Batch {i}"),
        );
    }
    let batch =
        in_ca_dir("ca", batch_sign_args(KEY, "batch", "batch-out")).with(&["--sessions", "3"]);
    let (out, calls) = spied(&t, "sign --sessions 3", &batch, 1);
    assert_ok(&out);
    let opened = calls
        .iter()
        .filter(|c| c.name == "C_OpenSession" && c.ok())
        .count();
    assert_eq!(opened, 3, "one session per signing thread");

    let (out, _) = spied(
        &t,
        "crl",
        &[
            "--ca-dir",
            "ca",
            "crl",
            "--key",
            KEY,
            "--next-update",
            "30d",
            "--out",
            "root.crl",
        ],
        1,
    );
    assert_ok(&out);
}

#[test_needs(softhsm2)]
fn failures_log_in_at_most_once_and_clean_up() {
    let t = TestToken::new("Root CA").with_spy();
    t.generate_key("root-2026", "ecdsa-p256");
    t.create_root(KEY, "20y", "root.crt");
    t.inter_csr("Cluster A Int CA");
    let sign = |out: &str| {
        intermediate_args(KEY, "cluster/inter.csr", "5y", out).with(&["--issuer", "root.crt"])
    };

    // A wrong PIN: tried once, then the session closes and the module finalizes.
    t.clear_call_logs();
    let out = t.run_env(&[("HSMCA_PIN", Some("wrong-pin-0000"))], sign("a.crt"));
    assert_fails(&out);
    let calls = check_calls("wrong PIN", &t, 1);
    let login = calls.iter().find(|c| c.name == "C_Login").unwrap();
    assert_eq!(login.rv, "CKR_PIN_INCORRECT");

    // A URI naming no key: logged in once, nothing signed.
    t.clear_call_logs();
    let mut args = sign("b.crt");
    let k = args.iter().position(|a| a == KEY).unwrap();
    args[k] = "pkcs11:token=Root%20CA;object=no-such-key".into();
    let stderr = fails(&t.run(&args));
    // SoftHSM2 counts the wrong PIN above (CKF_USER_PIN_COUNT_LOW): hsmca warns before login.
    assert_mentions(
        &stderr,
        &["warning: the token reports failed user PIN attempts"],
    );
    let calls = check_calls("missing key", &t, 1);
    assert!(calls.iter().all(|c| c.name != "C_Sign"));

    // A label that exists: refused on the token, after the one login, nothing generated.
    t.clear_call_logs();
    fails(&t.run(key_generate_args("Root CA", "root-2026", "ecdsa-p256")));
    let calls = check_calls("existing key label", &t, 1);
    assert!(calls.iter().all(|c| c.name != "C_GenerateKeyPair"));

    // An existing output: refused before the token is touched at all.
    fs::write(t.path("exists.crt"), "taken").unwrap();
    t.clear_call_logs();
    fails(&t.run(sign("exists.crt")));
    let calls = check_calls("existing output", &t, 0);
    assert!(calls.is_empty(), "no PKCS#11 call expected: {calls:?}");

    // A token label that is not there: no session, no login, still finalized.
    t.clear_call_logs();
    let mut args = sign("c.crt");
    args[k] = "pkcs11:token=No%20Such%20Token;object=root-2026".into();
    fails(&t.run(&args));
    check_calls("unknown token", &t, 0);
}
