//! Every PKCS#11 call hsmca makes, read from OpenSC's pkcs11-spy placed between hsmca and
//! SoftHSM2, for every command that touches a token and for its failures: one C_Login per
//! command that logs in (even with a wrong PIN: hardware tokens lock after a few tries), none
//! for a command refused before the token; never a read of a private key's secret attributes;
//! never C_WrapKey, C_CopyObject, C_SetAttributeValue, C_DestroyObject (nor token or PIN
//! administration); every session closed and the module finalized on every exit path.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Output;

use common::*;

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
const FORBIDDEN_CALLS: [&str; 8] = [
    "C_WrapKey",
    "C_CopyObject",
    "C_SetAttributeValue",
    "C_DestroyObject",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_GetOperationState",
];

/// One call in the spy's log.
#[derive(Debug)]
struct Call {
    seq: usize,
    name: String,
    /// Every line the spy wrote for it.
    lines: Vec<String>,
}

impl Call {
    /// The CKR_ name it returned ("" if the spy wrote none).
    fn rv(&self) -> &str {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix("Returned:"))
            .and_then(|r| r.split_whitespace().nth(1))
            .unwrap_or("")
    }

    /// `[in] NAME = VALUE` or `[out] NAME = VALUE`.
    fn field(&self, name: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| {
            let l = l
                .strip_prefix("[in] ")
                .or_else(|| l.strip_prefix("[out] "))?;
            l.strip_prefix(name)?.trim_start().strip_prefix("= ")
        })
    }

    /// The attribute types of the input template (`[in] pTemplate[n]:` and its lines).
    fn template_in(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut inside = false;
        for l in &self.lines {
            if l.starts_with("[in] pTemplate") {
                inside = true;
            } else if inside && l.starts_with("    CKA_") {
                out.push(l.split_whitespace().next().unwrap_or_default().to_string());
            } else if inside && !l.starts_with("    ") {
                inside = false;
            }
        }
        out
    }
}

/// Parses a pkcs11-spy log: `N: C_Name` starts a call, the lines after it are its details.
fn read_spy_log(path: &Path) -> Vec<Call> {
    let text = String::from_utf8_lossy(&fs::read(path).unwrap_or_default()).into_owned();
    let mut calls: Vec<Call> = Vec::new();
    for line in text.lines() {
        let start = line.split_once(": ").and_then(|(n, f)| {
            let f = f.trim_end();
            (!n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && f.starts_with("C_")
                && !f.contains(' '))
            .then(|| (n.parse::<usize>().unwrap(), f.to_string()))
        });
        match start {
            Some((seq, name)) => calls.push(Call {
                seq,
                name,
                lines: Vec::new(),
            }),
            None => {
                if let Some(c) = calls.last_mut() {
                    c.lines.push(line.to_string());
                }
            }
        }
    }
    calls
}

/// Checks one command's calls against every rule; `logins` is how many C_Login it must make.
#[track_caller]
fn check_calls(what: &str, log: &Path, logins: usize) -> Vec<Call> {
    let calls = read_spy_log(log);
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    let context = format!("{what}: calls {names:?} (spy log {})", log.display());
    let login_calls = calls
        .iter()
        .filter(|c| c.name == "C_Login" || c.name == "C_LoginUser")
        .count();
    assert_eq!(login_calls, logins, "C_Login count; {context}");

    for c in &calls {
        assert!(
            !FORBIDDEN_CALLS.contains(&c.name.as_str()),
            "call {} {} is forbidden; {context}",
            c.seq,
            c.name
        );
    }

    // Private key handles: generated ones, and those found by a CKO_PRIVATE_KEY search.
    let mut private: BTreeSet<String> = BTreeSet::new();
    let mut searching_private = false;
    for c in &calls {
        match c.name.as_str() {
            "C_GenerateKeyPair" => private.extend(c.field("hPrivateKey").map(str::to_string)),
            "C_FindObjectsInit" => {
                searching_private = c.lines.iter().any(|l| {
                    l.trim_start().starts_with("CKA_CLASS") && l.contains("CKO_PRIVATE_KEY")
                })
            }
            "C_FindObjects" if searching_private => {
                for l in &c.lines {
                    if let Some(h) = l
                        .strip_prefix("Object ")
                        .and_then(|r| r.strip_suffix(" matches"))
                    {
                        private.insert(h.to_string());
                    }
                }
            }
            "C_GetAttributeValue" => {
                let object = c.field("hObject").unwrap_or("?");
                let secret: Vec<String> = c
                    .template_in()
                    .into_iter()
                    .filter(|a| SECRET_ATTRIBUTES.contains(&a.as_str()))
                    .collect();
                // Stricter than needed: no object's secret attributes are ever asked for; a
                // private key's would be the leak.
                assert!(
                    secret.is_empty(),
                    "call {} reads {secret:?} of object {object} (a private key: {}); {context}",
                    c.seq,
                    private.contains(object)
                );
            }
            _ => {}
        }
    }

    let opened = calls
        .iter()
        .filter(|c| c.name == "C_OpenSession" && c.rv() == "CKR_OK")
        .count();
    let closed = calls
        .iter()
        .filter(|c| c.name == "C_CloseSession" && c.rv() == "CKR_OK")
        .count();
    let close_all = calls.iter().any(|c| c.name == "C_CloseAllSessions");
    assert!(
        close_all || opened == closed,
        "{opened} sessions opened, {closed} closed; {context}"
    );
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
    t.clear_spy_log();
    let out = t.run(args);
    let calls = check_calls(what, t.spy_log(), logins);
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

#[test]
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
        calls.iter().any(|c| c.name == "C_GetAttributeValue"
            && c.template_in().iter().any(|a| a == "CKA_SENSITIVE")),
        "no CKA_SENSITIVE read seen: the spy log parser is broken"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.name == "C_OpenSession" && c.rv() == "CKR_OK")
    );

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
        .filter(|c| c.name == "C_OpenSession" && c.rv() == "CKR_OK")
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

#[test]
fn failures_log_in_at_most_once_and_clean_up() {
    let t = TestToken::new("Root CA").with_spy();
    t.generate_key("root-2026", "ecdsa-p256");
    t.create_root(KEY, "20y", "root.crt");
    t.inter_csr("Cluster A Int CA");
    let sign = |out: &str| {
        intermediate_args(KEY, "cluster/inter.csr", "5y", out).with(&["--issuer", "root.crt"])
    };

    // A wrong PIN: tried once, then the session closes and the module finalizes.
    t.clear_spy_log();
    let out = t.run_env(&[("HSMCA_PIN", Some("wrong-pin-0000"))], sign("a.crt"));
    assert_fails(&out);
    let calls = check_calls("wrong PIN", t.spy_log(), 1);
    let login = calls.iter().find(|c| c.name == "C_Login").unwrap();
    assert_eq!(login.rv(), "CKR_PIN_INCORRECT");

    // A URI naming no key: logged in once, nothing signed.
    t.clear_spy_log();
    let mut args = sign("b.crt");
    let k = args.iter().position(|a| a == KEY).unwrap();
    args[k] = "pkcs11:token=Root%20CA;object=no-such-key".into();
    let stderr = fails(&t.run(&args));
    // SoftHSM2 counts the wrong PIN above (CKF_USER_PIN_COUNT_LOW): hsmca warns before login.
    assert_mentions(
        &stderr,
        &["warning: the token reports failed user PIN attempts"],
    );
    let calls = check_calls("missing key", t.spy_log(), 1);
    assert!(calls.iter().all(|c| c.name != "C_Sign"));

    // A label that exists: refused on the token, after the one login, nothing generated.
    t.clear_spy_log();
    fails(&t.run(key_generate_args("Root CA", "root-2026", "ecdsa-p256")));
    let calls = check_calls("existing key label", t.spy_log(), 1);
    assert!(calls.iter().all(|c| c.name != "C_GenerateKeyPair"));

    // An existing output: refused before the token is touched at all.
    fs::write(t.path("exists.crt"), "taken").unwrap();
    t.clear_spy_log();
    fails(&t.run(sign("exists.crt")));
    let calls = check_calls("existing output", t.spy_log(), 0);
    assert!(calls.is_empty(), "no PKCS#11 call expected: {calls:?}");

    // A token label that is not there: no session, no login, still finalized.
    t.clear_spy_log();
    let mut args = sign("c.crt");
    args[k] = "pkcs11:token=No%20Such%20Token;object=root-2026".into();
    fails(&t.run(&args));
    check_calls("unknown token", t.spy_log(), 0);
}
