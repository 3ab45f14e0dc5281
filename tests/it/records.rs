//! The CA directory's records, end to end through the CLI: issuing, listing, revoking and the
//! root's CRL; tamper detection in the audit log (hash chain and token-signed seals); two
//! writers at once; a signing command killed at any moment; a wrong PIN.
//!
//! Every test has its own SoftHSM2 token and its own CA directory (`ca/` under the token's
//! temporary directory), so they run in parallel.

use crate::common::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The CA directory every test uses, relative to the token's directory.
const CA: &str = "ca";
/// What a refused second writer says.
const LOCK_MESSAGE: &str = "another hsmca process is using the CA directory";

// ------------------------------------------------------------------------------------------------
// A recorded CA
// ------------------------------------------------------------------------------------------------

/// A token with a P-384 root key, its root created with `--ca-dir ca`.
struct Ca {
    t: TestToken,
    /// The key's URI as `key generate` printed it.
    uri: String,
    /// The root's serial as `root create` printed it.
    root_serial: String,
}

impl Ca {
    #[track_caller]
    fn new() -> Ca {
        let t = TestToken::new("Root CA");
        // Recorded in `ca/` as done by operator alice.
        let alice =
            |args: Vec<String>| [strings(&["--ca-dir", CA, "--operator", "alice"]), args].concat();
        let key = parse_generated_key(&assert_ok(&t.run(alice(key_generate_args(
            &t.label,
            "root-2026",
            "ecdsa-p384",
        )))));
        let out = assert_ok(&t.run(alice(root_create_args(&key.uri, "10y", "root.crt"))));
        let root_serial = printed_serial(&out);
        Ca {
            t,
            uri: key.uri,
            root_serial,
        }
    }

    /// `hsmca --ca-dir ca ARGS`.
    fn run<S: AsRef<str>>(&self, args: &[S]) -> Output {
        self.run_dir(CA, args)
    }

    /// `hsmca --ca-dir DIR ARGS`.
    fn run_dir<S: AsRef<str>>(&self, dir: &str, args: &[S]) -> Output {
        let mut all = vec!["--ca-dir", dir];
        all.extend(args.iter().map(AsRef::as_ref));
        self.t.run(all)
    }

    /// `sign` arguments for an intermediate from `csr` to `out` (issuer: the CA directory's).
    fn sign_args(&self, csr: &str, out: &str) -> Vec<String> {
        intermediate_args(&self.uri, csr, "2y", out)
    }

    /// Makes `csr/NAME.csr` for `CN=<cn>`; returns its path relative to the token directory.
    fn csr(&self, name: &str, cn: &str) -> String {
        make_csr(&self.t.path("csr"), name, CsrAlg::P256, cn);
        format!("csr/{name}.csr")
    }

    /// Signs `csr` as an intermediate into `out`; returns the printed serial.
    #[track_caller]
    fn sign(&self, csr: &str, out: &str) -> String {
        printed_serial(&assert_ok(&self.run(&self.sign_args(csr, out))))
    }

    /// `list --json` of CA directory `dir`.
    #[track_caller]
    fn list_dir(&self, dir: &str) -> Vec<serde_json::Value> {
        let out = assert_ok(&self.run_dir(dir, &["list", "--json"]));
        let v = json(&out);
        v.as_array()
            .unwrap_or_else(|| panic!("list --json is not an array:\n{out}"))
            .clone()
    }

    #[track_caller]
    fn list(&self) -> Vec<serde_json::Value> {
        self.list_dir(CA)
    }

    /// `crl --next-update 90d --out OUT`.
    #[track_caller]
    fn crl(&self, out: &str) {
        assert_ok(&self.run(&[
            "crl",
            "--key",
            &self.uri,
            "--next-update",
            "90d",
            "--out",
            out,
        ]));
    }

    /// The lines of `DIR/audit.jsonl` (without newlines).
    /// The log's whole lines: an unfinished last line (a command killed inside an append) is
    /// not a record.
    fn log_lines(&self, dir: &str) -> Vec<String> {
        let text = fs::read_to_string(self.t.path(dir).join("audit.jsonl")).unwrap();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().map(str::to_string).collect()
    }
}

/// The `serial: HEX` line of a command's stdout, normalized.
#[track_caller]
fn printed_serial(stdout: &str) -> String {
    let s = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("serial:"))
        .unwrap_or_else(|| panic!("no `serial:` line in:\n{stdout}"));
    norm_serial(s)
}

/// Upper-case hex without separators or leading zero octets (how `list` prints serials).
fn norm_serial(s: &str) -> String {
    let hex = normalize_hex(s).to_uppercase();
    let trimmed = hex.trim_start_matches("00");
    if trimmed.is_empty() {
        hex
    } else {
        trimmed.to_string()
    }
}

/// A certificate file's serial as openssl reads it, normalized.
#[track_caller]
fn file_serial(cert: &Path) -> String {
    let out = openssl_x509(cert, &["-serial"]);
    norm_serial(out.trim().strip_prefix("serial=").unwrap())
}

/// The entry of `list` with this serial.
#[track_caller]
fn entry<'a>(list: &'a [serde_json::Value], serial: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|e| e["serial"].as_str().map(norm_serial).as_deref() == Some(serial))
        .unwrap_or_else(|| panic!("serial {serial} not in list: {list:#?}"))
}

/// The serials in `list`.
fn serials(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .map(|e| norm_serial(e["serial"].as_str().expect("serial is a string")))
        .collect()
}

/// The record numbers a message names as `record N`.
fn named_records(text: &str) -> Vec<u64> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("record ") {
        rest = &rest[i + 7..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            found.push(n);
        }
    }
    found
}

/// Parses a JSON line of the audit log.
#[track_caller]
/// The 1-based record numbers of the log lines whose event is `event`.
fn records_of(lines: &[String], event: &str) -> Vec<usize> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| json(l)["event"] == event)
        .map(|(i, _)| i + 1)
        .collect()
}

/// SHA-256 of `data`, lowercase hex, by `openssl dgst` (sha2 is not a dev-dependency).
#[track_caller]
fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start openssl dgst");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = assert_ok(&out);
    let hex = stdout.split_whitespace().next().unwrap().to_lowercase();
    assert_eq!(hex.len(), 64, "{stdout}");
    hex
}

/// Rewrites every line's `"prev":"..."` to the SHA-256 of the line before it (as written
/// now), as someone who edited a record and wanted the hash chain to check would.
fn rechain(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev = "0".repeat(64);
    for line in lines {
        let key = "\"prev\":\"";
        let at = line.rfind(key).expect("a prev field") + key.len();
        let mut new = line.clone();
        new.replace_range(at..at + 64, &prev);
        prev = sha256_hex(new.as_bytes());
        out.push(new);
    }
    out
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Puts `dir` back to `snapshot` (from [`files_in`]): rewrites every file, removes new ones.
fn restore_files(dir: &Path, snapshot: &BTreeMap<PathBuf, Vec<u8>>) {
    for p in files_in(dir).into_keys() {
        if !snapshot.contains_key(&p) {
            fs::remove_file(dir.join(&p)).unwrap();
        }
    }
    for (p, bytes) in snapshot {
        fs::write(dir.join(p), bytes).unwrap();
    }
}

/// Files under `dir` (recursively) whose name looks like a temporary file.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_in(dir)
        .into_keys()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".tmp") || (name.starts_with('.') && name.contains(".tmp"))
        })
        .collect()
}

/// `openssl crl -noout -crlnumber` as a number.
#[track_caller]
fn crl_number(t: &TestToken, crl: &str) -> u128 {
    let out = assert_ok(&run_in(
        t.dir(),
        "openssl",
        &["crl", "-noout", "-crlnumber", "-in", crl],
    ));
    let v = out.trim().strip_prefix("crlNumber=").unwrap_or(out.trim());
    let v = v.strip_prefix("0x").unwrap_or(v);
    u128::from_str_radix(v, 16).unwrap_or_else(|e| panic!("crlNumber in {out:?}: {e}"))
}

/// `openssl verify -crl_check -CAfile root.crt -CRLfile CRL CERT`.
fn openssl_crl_check(t: &TestToken, crl: &str, cert: &str) -> Output {
    run_in(
        t.dir(),
        "openssl",
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "root.crt",
            "-CRLfile",
            crl,
            cert,
        ],
    )
}

// ------------------------------------------------------------------------------------------------
// 1. Issue, list, revoke, CRL, export
// ------------------------------------------------------------------------------------------------

#[test_needs(softhsm2)]
fn issue_list_revoke_crl_export() {
    let ca = Ca::new();
    let t = &ca.t;
    let csr1 = ca.csr("inter1", "Cluster 1 Intermediate CA");
    let csr2 = ca.csr("inter2", "Cluster 2 Intermediate CA");
    let s1 = ca.sign(&csr1, "inter1.crt");
    let s2 = ca.sign(&csr2, "inter2.crt");
    let root = ca.root_serial.clone();

    // What `root create` and `sign` printed is what they wrote.
    assert_eq!(file_serial(&t.path("root.crt")), root);
    assert_eq!(file_serial(&t.path("inter1.crt")), s1);
    assert_eq!(file_serial(&t.path("inter2.crt")), s2);
    assert_eq!(
        cert_der(&t.path("ca/ca.crt")),
        cert_der(&t.path("root.crt")),
        "ca/ca.crt is not the root written by root create"
    );
    for (serial, file) in [
        (&root, "root.crt"),
        (&s1, "inter1.crt"),
        (&s2, "inter2.crt"),
    ] {
        let kept = t.path(format!("ca/certs/{serial}.pem"));
        assert!(kept.is_file(), "{} missing", kept.display());
        assert_eq!(
            cert_der(&kept),
            cert_der(&t.path(file)),
            "{}",
            kept.display()
        );
    }

    // list --json: 3 certificates, right profiles, all valid.
    let list = ca.list();
    assert_eq!(list.len(), 3, "{list:#?}");
    let uniq: BTreeSet<_> = serials(&list).into_iter().collect();
    assert_eq!(uniq.len(), 3, "duplicate serials: {list:#?}");
    for (serial, profile, file) in [
        (&root, "root", "root.crt"),
        (&s1, "intermediate", "inter1.crt"),
        (&s2, "intermediate", "inter2.crt"),
    ] {
        let e = entry(&list, serial);
        assert_eq!(e["profile"], profile, "{e}");
        assert_eq!(e["status"], "valid", "{e}");
        assert_eq!(
            e["sha256"].as_str().map(str::to_lowercase),
            Some(cert_sha256_fingerprint(&t.path(file))),
            "{e}"
        );
        for field in ["record", "subject", "issuer", "not_before", "not_after"] {
            assert!(!e[field].is_null(), "list entry without {field}: {e}");
        }
    }
    assert_eq!(entry(&list, &s1)["subject"], "CN=Cluster 1 Intermediate CA");
    assert_eq!(entry(&list, &s1)["issuer"], entry(&list, &root)["subject"]);

    // Revoke the first intermediate.
    let before_revoke = ca.log_lines(CA).len();
    assert_ok(&ca.run(&["revoke", "--serial", &s1, "--reason", "keyCompromise"]));
    let lines = ca.log_lines(CA);
    assert_eq!(
        lines.len(),
        before_revoke + 2,
        "revoke adds its record and a seal (a revocation is a CA act)"
    );
    assert_eq!(json(lines.last().unwrap())["event"], "seal");
    let rec = json(&lines[lines.len() - 2]);
    assert_eq!(rec["event"], "certificate_revoked", "{rec}");
    assert_eq!(rec["reason"], "keyCompromise", "{rec}");
    let list = ca.list();
    assert_eq!(list.len(), 3, "{list:#?}");
    assert_eq!(entry(&list, &s1)["status"], "revoked");
    assert_eq!(entry(&list, &s2)["status"], "valid");
    assert_eq!(entry(&list, &root)["status"], "valid");
    let shown = assert_ok(&ca.run(&["show", "--serial", &s1]));
    assert_mentions(&shown, &["revoked"]);
    assert_mentions(&shown, &["BEGIN CERTIFICATE REQUEST"]);

    // Refusals: unknown serial, twice, the root's own, a bad reason. None changes the records.
    let log_before = fs::read(t.path("ca/audit.jsonl")).unwrap();
    let unknown = "7A".repeat(20);
    let err = assert_fails(&ca.run(&["revoke", "--serial", &unknown, "--reason", "keyCompromise"]));
    assert_mentions(&err, &["no certificate", "unknown serial", "not issued"]);
    let err = assert_fails(&ca.run(&["revoke", "--serial", &s1, "--reason", "superseded"]));
    assert_mentions(&err, &["already revoked"]);
    let err = assert_fails(&ca.run(&["revoke", "--serial", &root, "--reason", "keyCompromise"]));
    assert_mentions(&err, &["own", "root"]);
    // An unknown reason is a usage error (exit 2): --help and the shell list the reasons.
    let out = ca.run(&["revoke", "--serial", &s2, "--reason", "notAReason"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert_mentions(&stderr_of(&out), &["keyCompromise, caCompromise"]);
    assert_eq!(
        fs::read(t.path("ca/audit.jsonl")).unwrap(),
        log_before,
        "a refused revoke changed the audit log"
    );
    assert_eq!(entry(&ca.list(), &s2)["status"], "valid");

    // The root's CRL.
    ca.crl("root.crl");
    let out = run_in(
        t.dir(),
        "openssl",
        &[
            "crl", "-noout", "-in", "root.crl", "-verify", "-CAfile", "root.crt",
        ],
    );
    assert_ok(&out);
    assert_mentions(&stderr_of(&out), &["verify OK"]);
    let text = assert_ok(&run_in(
        t.dir(),
        "openssl",
        &["crl", "-noout", "-text", "-in", "root.crl"],
    ));
    assert!(
        text.contains("Only CA Certificates"),
        "no onlyContainsCACerts:\n{text}"
    );
    assert!(
        text.to_uppercase().contains(&s1),
        "{s1} not listed:\n{text}"
    );
    assert!(!text.to_uppercase().contains(&s2), "{s2} listed:\n{text}");
    assert!(text.contains("Key Compromise"), "{text}");

    let revoked = openssl_crl_check(t, "root.crl", "inter1.crt");
    assert!(
        !revoked.status.success(),
        "the revoked intermediate verifies with the CRL:\n{}",
        stdout_of(&revoked)
    );
    assert_mentions(
        &(stdout_of(&revoked) + &stderr_of(&revoked)),
        &["certificate revoked"],
    );
    let good = openssl_crl_check(t, "root.crl", "inter2.crt");
    assert!(
        good.status.success() && stdout_of(&good).trim_end().ends_with(": OK"),
        "the unrevoked intermediate does not verify with the CRL:\n{}{}",
        stdout_of(&good),
        stderr_of(&good)
    );

    assert_no_findings_at_or_above_warning(
        &pkilint(
            "lint_crl",
            &["-t", "ARL", "-p", "PKIX"],
            &t.path("root.crl"),
        ),
        &[],
    );

    // CRL numbers come from the log: 1, then 2.
    assert_eq!(crl_number(t, "root.crl"), 1);
    ca.crl("root2.crl");
    assert_eq!(crl_number(t, "root2.crl"), 2);

    // nextUpdate past 365 days is refused and writes nothing.
    let log_before = fs::read(t.path("ca/audit.jsonl")).unwrap();
    let err = assert_fails(&ca.run(&[
        "crl",
        "--key",
        &ca.uri,
        "--next-update",
        "400d",
        "--out",
        "long.crl",
    ]));
    assert_mentions(&err, &["365"]);
    assert!(!t.path("long.crl").exists());
    assert_eq!(fs::read(t.path("ca/audit.jsonl")).unwrap(), log_before);
    // The next CRL still takes number 3: the refused one used none.
    ca.crl("root3.crl");
    assert_eq!(crl_number(t, "root3.crl"), 3);

    // export gives back each certificate exactly as it was written when signed.
    for (serial, file) in [
        (&root, "root.crt"),
        (&s1, "inter1.crt"),
        (&s2, "inter2.crt"),
    ] {
        let out = format!("export-{serial}.pem");
        assert_ok(&ca.run(&["export", "--serial", serial, "--out", &out]));
        assert_eq!(
            cert_der(&t.path(&out)),
            cert_der(&t.path(file)),
            "export of {serial} differs from {file}"
        );
    }
    // Lower case and colons name the same serial.
    let colon: String = s2
        .to_lowercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    assert_ok(&ca.run(&["export", "--serial", &colon, "--out", "export-colon.pem"]));
    assert_eq!(
        cert_der(&t.path("export-colon.pem")),
        cert_der(&t.path("inter2.crt"))
    );
    let err = assert_fails(&ca.run(&["export", "--serial", &unknown, "--out", "nope.pem"]));
    assert_mentions(&err, &["no certificate"]);
    assert!(!t.path("nope.pem").exists());

    // The log: every record has its fields, numbered 1.. with the first prev all zeros, and
    // verifies as a whole (with the CA directory's certificate and with --root).
    let lines = ca.log_lines(CA);
    for (i, l) in lines.iter().enumerate() {
        let r = json(l);
        assert_eq!(r["seq"], i as u64 + 1, "{l}");
        for field in ["time", "event", "tool", "prev"] {
            assert!(
                r[field].is_string(),
                "record {} without {field}: {l}",
                i + 1
            );
        }
        assert!(
            r.get("operator").is_some(),
            "record {} without operator: {l}",
            i + 1
        );
    }
    assert_eq!(json(&lines[0])["prev"], "0".repeat(64));
    assert_eq!(json(&lines[0])["event"], "key_generated");
    assert_eq!(json(&lines[0])["operator"], "alice");
    assert!(!records_of(&lines, "seal").is_empty());
    assert_eq!(records_of(&lines, "root_created").len(), 1);
    assert_eq!(records_of(&lines, "csr_signed").len(), 2);
    assert_eq!(records_of(&lines, "crl_issued").len(), 3);
    let out = assert_ok(&ca.run(&["log", "verify"]));
    assert_mentions(&out, &["intact"]);
    assert_ok(&ca.run(&["log", "verify", "--root", "root.crt"]));
}

// ------------------------------------------------------------------------------------------------
// 2. Tamper detection
// ------------------------------------------------------------------------------------------------

/// Every reporting command's `--json` parses and carries the fields the README documents
/// (section "JSON output"); `-q` quiets notes.
#[test_needs(softhsm2)]
fn json_reports_carry_the_documented_fields() {
    let ca = Ca::new();
    let csr = ca.csr("a", "Cluster A CA");
    let serial = ca.sign(&csr, "a.crt");
    assert_ok(&ca.run(&["revoke", "--serial", &serial, "--reason", "superseded"]));
    let parse = |out: &Output| json(&assert_ok(out));

    let tokens = parse(&ca.run(&["token", "list", "--json"]));
    assert!(
        tokens["module"]
            .as_str()
            .is_some_and(|m| m.ends_with(".so"))
    );
    let token = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "Root CA")
        .unwrap_or_else(|| panic!("no Root CA token: {tokens}"));
    assert_eq!(token["initialized"], true);
    assert!(token["slot_id"].as_u64().is_some());
    for field in ["serial", "manufacturer", "model"] {
        assert!(token[field].is_string(), "{field}: {token}");
    }
    assert!(
        token["algorithms"]
            .as_array()
            .unwrap()
            .contains(&"ecdsa-p384".into())
    );
    let support = token["support"].as_array().unwrap();
    assert!(
        support.iter().any(|s| s["algorithm"] == "ecdsa-p384"
            && s["supported"] == true
            && s["detail"]
                .as_str()
                .is_some_and(|d| d.contains("CKM_ECDSA"))),
        "{support:?}"
    );

    let keys = parse(&ca.run(&["key", "list", "--token", "Root CA", "--json"]));
    assert_eq!(keys["token"], "Root CA");
    let key = &keys["keys"][0];
    assert_eq!(key["label"], "root-2026");
    assert_eq!(key["algorithm"], "ecdsa-p384");
    assert_eq!(key["ca_key_policy_ok"], true);
    assert_eq!(key["ca_key_policy_violations"], serde_json::Value::Null);
    assert_eq!(key["attributes"]["sensitive"], "true");
    assert_eq!(key["attributes"]["extractable"], "false");
    assert_eq!(key["spki_sha256"].as_str().map(str::len), Some(64));
    assert!(key["uri"].as_str().unwrap().contains("object=root-2026"));

    let list = ca.list();
    let row = entry(&list, &serial);
    for field in [
        "record",
        "serial",
        "subject",
        "issuer",
        "profile",
        "not_before",
        "not_after",
        "status",
        "sha256",
    ] {
        assert!(!row[field].is_null(), "list: {field} missing: {row}");
    }
    assert_eq!(row["status"], "revoked");

    let shown = parse(&ca.run(&["show", "--serial", &serial, "--json"]));
    assert_eq!(norm_serial(shown["serial"].as_str().unwrap()), serial);
    assert_eq!(shown["profile"], "intermediate");
    assert!(
        shown["operator"].is_null(),
        "signed without --operator: {shown}"
    );
    let root = parse(&ca.run(&["show", "--serial", &ca.root_serial, "--json"]));
    assert_eq!(root["operator"], "alice");
    assert_eq!(root["profile"], "root");
    assert!(root["csr_pem"].is_null());
    assert_eq!(shown["revoked"]["reason"], "superseded");
    assert!(
        shown["certificate_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        shown["csr_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
    );
    assert_eq!(shown["sha256"], row["sha256"]);

    let inspected = parse(&ca.t.run(["inspect", "a.crt", "--json"]));
    let cert = &inspected["objects"][0];
    assert_eq!(cert["kind"], "certificate");
    assert_eq!(cert["subject"], "CN=Cluster A CA");
    assert_eq!(cert["version"], 3);
    let bc = cert["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["oid"] == "2.5.29.19")
        .unwrap_or_else(|| panic!("no basicConstraints: {cert}"));
    assert_eq!(bc["critical"], true);
    assert_eq!(bc["detail"]["basic_constraints"]["ca"], true);
    assert_eq!(bc["detail"]["basic_constraints"]["path_len"], 0);
    assert_eq!(cert["spki_sha256"].as_str().map(str::len), Some(64));

    let verified = parse(&ca.run(&["log", "verify", "--key", &ca.uri, "--json"]));
    assert_eq!(verified["head"], "in_log");
    assert!(verified["head_record"].as_u64().is_some(), "{verified}");
    assert!(
        verified["records"].as_u64().is_some_and(|n| n >= 4),
        "{verified}"
    );
    assert!(
        verified["seals"].as_u64().is_some_and(|n| n >= 3),
        "{verified}"
    );
    assert_eq!(verified["unsealed_records"], 0);
    assert_eq!(verified["issued_after_last_seal"], serde_json::json!([]));
    let unchecked = parse(&ca.run(&["log", "verify", "--json"]));
    assert_eq!(unchecked["head"], "not_checked");

    // A note (a request asking for extensions the profile decides) and -q.
    let noisy = ca.t.path("csr/ext.csr");
    let out = run_in(
        ca.t.dir(),
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "csr/ext.key",
            "-subj",
            "/CN=Cluster E CA",
            "-addext",
            "subjectAltName=DNS:e.example.com",
            "-out",
            noisy.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let loud = ca.run(&ca.sign_args("csr/ext.csr", "e.crt"));
    assert_ok(&loud);
    assert_mentions(&stderr_of(&loud), &["note: ", "ignored"]);
    let mut args = vec!["-q".to_string()];
    args.extend(ca.sign_args("csr/ext.csr", "e2.crt"));
    let quiet = ca.run(&args);
    assert_ok(&quiet);
    assert!(
        !stderr_of(&quiet).contains("note:"),
        "{}",
        stderr_of(&quiet)
    );
}

/// A batch draws a progress bar on a terminal (here a pseudo-terminal from util-linux's
/// `script`), and nothing but its report when stderr is not a terminal or with `-q`.
#[test_needs(softhsm2)]
fn a_batch_shows_progress_only_on_a_terminal() {
    let ca = Ca::new();
    for i in 0..12 {
        make_csr(
            &ca.t.path("batch"),
            &format!("r{i:02}"),
            CsrAlg::P256,
            &format!("Batch {i} CA"),
        );
    }
    let args = |out: &str| in_ca_dir(CA, batch_sign_args(&ca.uri, "batch", out));
    // No terminal: stderr stays empty.
    let plain = ca.t.run(args("plain"));
    assert_ok(&plain);
    assert_eq!(stderr_of(&plain), "", "no terminal, nothing extra");
    // A terminal: the bar with its count appears, the report still goes to stdout.
    let quote = |a: &[String]| {
        a.iter()
            .map(|s| format!("'{}'", s.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let line = |extra: &str, out: &str| {
        format!(
            "{} {extra} {} > stdout-{out}.txt",
            hsmca_bin(),
            quote(&args(out))
        )
    };
    let mut cmd = Command::new("script");
    ca.t.configure(&mut cmd);
    let tty = run_command(cmd.args(["-qec", &line("", "tty"), "/dev/null"]));
    assert!(tty.status.success(), "{}", stderr_of(&tty));
    let drawn = String::from_utf8_lossy(&tty.stdout);
    assert_mentions(&drawn, &["signing", "/12"]);
    let report = fs::read_to_string(ca.t.path("stdout-tty.txt")).unwrap();
    assert_eq!(report.lines().count(), 13, "{report}");
    // -q: no bar on the terminal either.
    let mut cmd = Command::new("script");
    ca.t.configure(&mut cmd);
    let quiet = run_command(cmd.args(["-qec", &line("-q", "quiet"), "/dev/null"]));
    assert!(quiet.status.success(), "{}", stderr_of(&quiet));
    let drawn = String::from_utf8_lossy(&quiet.stdout);
    assert!(!drawn.contains("/12"), "-q draws no bar: {drawn}");
}

/// A CA with a few operations recorded: root, two intermediates, a revocation, a CRL.
fn tamper_setup() -> (Ca, Vec<String>) {
    let ca = Ca::new();
    let csr1 = ca.csr("inter1", "Cluster 1 Intermediate CA");
    let csr2 = ca.csr("inter2", "Cluster 2 Intermediate CA");
    let s1 = ca.sign(&csr1, "inter1.crt");
    ca.sign(&csr2, "inter2.crt");
    assert_ok(&ca.run(&["revoke", "--serial", &s1, "--reason", "superseded"]));
    ca.crl("root.crl");
    ca.csr("late", "Late Intermediate CA");
    let lines = ca.log_lines(CA);
    assert!(lines.len() >= 10, "{lines:#?}");
    let out = assert_ok(&ca.run(&["log", "verify"]));
    assert!(
        !out.contains("note:"),
        "a fresh log has an unsealed tail:\n{out}"
    );
    (ca, lines)
}

/// Copies `ca/` to `name/` with `audit.jsonl` replaced by `log` (raw bytes).
fn tampered_copy(ca: &Ca, name: &str, log: &[u8]) {
    copy_dir(&ca.t.path(CA), &ca.t.path(name));
    fs::write(ca.t.path(name).join("audit.jsonl"), log).unwrap();
}

/// `log verify` on CA directory `dir` fails naming record `want`, and so does a `sign`, which
/// writes nothing. Returns log verify's stderr.
#[track_caller]
fn assert_broken_at(ca: &Ca, dir: &str, want: usize, what: &str) -> String {
    let out = ca.run_dir(dir, &["log", "verify"]);
    let stderr = assert_fails(&out);
    let named = named_records(&stderr);
    assert!(
        named.contains(&(want as u64)),
        "{what}: log verify should name record {want}, it names {named:?}:\n{stderr}"
    );

    // A signing command refuses with the same error and writes nothing.
    let before = files_in(&ca.t.path(dir));
    let out_file = format!("{dir}-signed.crt");
    let sign = ca.run_dir(dir, &ca.sign_args("csr/late.csr", &out_file));
    let sign_err = assert_fails(&sign);
    assert_eq!(
        sign_err.lines().next(),
        stderr.lines().next(),
        "{what}: sign should refuse with log verify's error"
    );
    assert!(
        !ca.t.path(&out_file).exists(),
        "{what}: sign wrote {out_file} on a broken log"
    );
    assert_same_files(&before, &files_in(&ca.t.path(dir)));
    stderr
}

/// The first csr_signed record: a middle record of the log.
fn middle_record(lines: &[String]) -> usize {
    let k = records_of(lines, "csr_signed")[0];
    assert!(k > 1 && k < lines.len(), "record {k} is not in the middle");
    k
}

fn joined(lines: &[String]) -> Vec<u8> {
    let mut bytes = lines.join("\n").into_bytes();
    bytes.push(b'\n');
    bytes
}

#[test_needs(softhsm2)]
fn tamper_one_character_of_a_subject() {
    let (ca, lines) = tamper_setup();
    let k = middle_record(&lines);
    let mut edited = lines.clone();
    let from = "\"subject\":\"CN=Cluster 1 Intermediate CA\"";
    assert!(edited[k - 1].contains(from), "{}", edited[k - 1]);
    edited[k - 1] = edited[k - 1].replacen(from, "\"subject\":\"CN=Cluster 7 Intermediate CA\"", 1);
    json(&edited[k - 1]);
    tampered_copy(&ca, "ca-subject", &joined(&edited));
    assert_broken_at(
        &ca,
        "ca-subject",
        k,
        &format!("subject changed in record {k}"),
    );
}

#[test_needs(softhsm2)]
fn tamper_one_character_of_a_base64_field() {
    let (ca, lines) = tamper_setup();
    let k = middle_record(&lines);
    let mut edited = lines.clone();
    let key = "\"cert_der\":\"";
    let at = edited[k - 1].find(key).unwrap() + key.len() + 40;
    let old = edited[k - 1].as_bytes()[at];
    let new = if old == b'A' { "B" } else { "A" };
    edited[k - 1].replace_range(at..at + 1, new);
    json(&edited[k - 1]);
    tampered_copy(&ca, "ca-base64", &joined(&edited));
    assert_broken_at(
        &ca,
        "ca-base64",
        k,
        &format!("base64 changed in record {k}"),
    );
}

#[test_needs(softhsm2)]
fn tamper_deleted_record() {
    let (ca, lines) = tamper_setup();
    let k = records_of(&lines, "csr_signed")[0];
    let mut edited = lines.clone();
    edited.remove(k - 1);
    tampered_copy(&ca, "ca-deleted", &joined(&edited));
    assert_broken_at(&ca, "ca-deleted", k, "record deleted");
}

#[test_needs(softhsm2)]
fn tamper_swapped_records() {
    let (ca, lines) = tamper_setup();
    let signed = records_of(&lines, "csr_signed");
    let (k, j) = (signed[0], signed[1]);
    assert!(j > k + 1);

    // Two neighbours.
    let mut edited = lines.clone();
    edited.swap(k - 1, k);
    tampered_copy(&ca, "ca-swap1", &joined(&edited));
    assert_broken_at(
        &ca,
        "ca-swap1",
        k,
        &format!("records {k} and {} swapped", k + 1),
    );

    // The two csr_signed records, further apart.
    let mut edited = lines.clone();
    edited.swap(k - 1, j - 1);
    tampered_copy(&ca, "ca-swap2", &joined(&edited));
    assert_broken_at(&ca, "ca-swap2", k, &format!("records {k} and {j} swapped"));
}

/// A last line without its newline is an append that never finished: a process stopped inside
/// the one `write` of a record, so its command wrote nothing after it (outputs follow a durable
/// append). It hides nothing (the records the token's head covers are whole): `log verify`
/// passes with a note, reading commands leave the bytes, and the next signing command cuts
/// them off, records exactly what it removed, and goes on. (Cutting a sealed record in half
/// is refused instead: see `the_head_on_the_token_catches_a_log_cut_back`.)
#[test_needs(softhsm2)]
fn unfinished_last_line_is_an_interrupted_append() {
    let (ca, lines) = tamper_setup();
    let mut text = fs::read(ca.t.path("ca/audit.jsonl")).unwrap();
    let whole = text.len();
    // The first half of a record as the next command would have begun it.
    let partial = lines.last().unwrap().as_bytes()[..lines.last().unwrap().len() / 2].to_vec();
    text.extend_from_slice(&partial);
    let cut = text.len();
    let partial = &partial[..];
    tampered_copy(&ca, "ca-cut", &text[..cut]);

    let out = assert_ok(&ca.run_dir("ca-cut", &["log", "verify"]));
    assert!(
        out.contains(&format!("unfinished record of {} bytes", partial.len())),
        "log verify should name the unfinished record:\n{out}"
    );
    assert_ok(&ca.run_dir("ca-cut", &["list"]));
    assert_eq!(
        fs::read(ca.t.path("ca-cut/audit.jsonl")).unwrap(),
        &text[..cut],
        "a reading command changed the log"
    );

    let sign = ca.run_dir("ca-cut", &ca.sign_args("csr/late.csr", "ca-cut-signed.crt"));
    assert_ok(&sign);
    assert!(
        stderr_of(&sign).contains("unfinished record"),
        "sign should say it removed the unfinished record:\n{}",
        stderr_of(&sign)
    );
    let after = fs::read(ca.t.path("ca-cut/audit.jsonl")).unwrap();
    assert_eq!(
        &after[..whole],
        &text[..whole],
        "whole records were changed"
    );
    let new_lines = ca.log_lines("ca-cut");
    let removed = json(&new_lines[lines.len()]);
    assert_eq!(removed["event"], "interrupted_append_removed", "{removed}");
    assert_eq!(removed["seq"], lines.len() as u64 + 1);
    assert_eq!(removed["offset"], whole as u64);
    assert_eq!(removed["length"], partial.len() as u64);
    assert_eq!(removed["sha256"], sha256_hex(partial));
    assert_eq!(
        B64.decode(removed["bytes"].as_str().unwrap()).unwrap(),
        partial
    );
    assert!(
        new_lines[lines.len()..]
            .iter()
            .any(|l| json(l)["event"] == "csr_signed"),
        "the sign after the removal is not recorded"
    );
    let out = assert_ok(&ca.run_dir("ca-cut", &["log", "verify"]));
    assert!(!out.contains("note:"), "{out}");
}

/// A crash between a record and its kept copy loses the file (`certs/` is not fsynced); the
/// record holds it. `log verify` names what is missing and the next signing command keeps the
/// certificate and the CRL again, byte for byte.
#[test_needs(softhsm2)]
fn lost_kept_copies_are_kept_again_by_the_next_signing_command() {
    let (ca, _) = tamper_setup();
    let kept = files_in(&ca.t.path("ca/certs"));
    let (lost_cert, lost_bytes) = kept.iter().next().unwrap();
    let crl_bytes = fs::read(ca.t.path("ca/crls/1.crl")).unwrap();
    fs::remove_file(ca.t.path("ca/certs").join(lost_cert)).unwrap();
    fs::remove_file(ca.t.path("ca/crls/1.crl")).unwrap();

    let out = assert_ok(&ca.run(&["log", "verify"]));
    assert!(
        out.contains("1 certificate and 1 CRL recorded in the log have no kept copy"),
        "log verify should name what is missing:\n{out}"
    );
    assert_ok(&ca.run(&["list"]));
    assert!(
        !ca.t.path("ca/crls/1.crl").exists(),
        "a reading command wrote"
    );

    let sign = ca.run(&ca.sign_args("csr/late.csr", "late.crt"));
    assert_ok(&sign);
    assert!(
        stderr_of(&sign)
            .contains("1 certificate and 1 CRL recorded in the audit log had no kept copy"),
        "{}",
        stderr_of(&sign)
    );
    assert_eq!(
        &fs::read(ca.t.path("ca/certs").join(lost_cert)).unwrap(),
        lost_bytes
    );
    assert_eq!(fs::read(ca.t.path("ca/crls/1.crl")).unwrap(), crl_bytes);
    let out = assert_ok(&ca.run(&["log", "verify"]));
    assert!(!out.contains("note:"), "{out}");
}

/// An unfinished line anywhere but at the end is damage, not an interrupted append.
#[test_needs(softhsm2)]
fn tamper_unfinished_line_before_the_end() {
    let (ca, lines) = tamper_setup();
    let k = middle_record(&lines);
    let mut edited = lines.clone();
    let half = edited[k - 1].len() / 2;
    edited[k - 1].truncate(half);
    tampered_copy(&ca, "ca-cut-middle", &joined(&edited));
    assert_broken_at(&ca, "ca-cut-middle", k, "a middle line cut");
}

#[test_needs(softhsm2)]
fn tamper_with_recomputed_hash_chain_is_caught_by_the_seal() {
    let (ca, lines) = tamper_setup();

    // The rechaining helper reproduces the product's hashes on an untouched log.
    assert_eq!(
        rechain(&lines),
        lines,
        "rechain() does not reproduce the hash chain"
    );

    let k = records_of(&lines, "csr_signed")[0];
    let seal_after = *records_of(&lines, "seal")
        .iter()
        .find(|&&s| s > k)
        .expect("a seal after the edited record");
    let mut edited = lines.clone();
    edited[k - 1] = edited[k - 1].replacen(
        "CN=Cluster 1 Intermediate CA",
        "CN=Cluster 7 Intermediate CA",
        1,
    );
    assert_ne!(edited, lines);
    let edited = rechain(&edited);
    tampered_copy(&ca, "ca-rechained", &joined(&edited));
    let stderr = assert_broken_at(
        &ca,
        "ca-rechained",
        seal_after,
        "edit with a recomputed chain",
    );
    assert_mentions(&stderr, &["seal", "signature"]);
}

// ------------------------------------------------------------------------------------------------
// 3. Two writers at once
// ------------------------------------------------------------------------------------------------

/// The meeting the race above leaves to chance, made certain: a sign stopped (by the fault
/// module, just before its C_Sign) while it holds the CA directory; another sign and a `log
/// verify` started then are refused with the lock's message and change nothing; resumed, the
/// first one finishes and the log verifies sealed.
#[test_needs(softhsm2)]
fn a_signer_holding_the_lock_refuses_the_others() {
    let ca = Ca::new();
    let t = &ca.t;
    let first = ca.csr("holder", "Lock Holder CA");
    let mut holder = t.hsmca();
    holder
        .arg("--ca-dir")
        .arg(CA)
        .args(ca.sign_args(&first, "holder.crt"))
        .env("HSMCA_MODULE", faultmod())
        .env("HSMCA_FAULT_REAL", &t.module)
        .env("HSMCA_FAULT_STOP_FN", "C_Sign")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut holder = holder.spawn().expect("spawn hsmca sign");
    wait_until_stopped(&mut holder, "the sign holding the lock");
    let before = files_in(&t.path(CA));

    let second = ca.csr("waiter", "Lock Waiter CA");
    let refused = [
        ca.run(&ca.sign_args(&second, "waiter.crt")),
        ca.run(&["log", "verify"]),
    ];
    let unchanged = before == files_in(&t.path(CA));
    // Resume the holder before any assertion can fail and leave it stopped.
    let resumed = Command::new("kill")
        .args(["-CONT", &holder.id().to_string()])
        .status();
    let done = holder.wait_with_output().unwrap();
    assert!(resumed.is_ok_and(|s| s.success()), "kill -CONT failed");
    for out in &refused {
        assert_mentions(&assert_fails(out), &[LOCK_MESSAGE]);
    }
    assert!(!t.path("waiter.crt").exists());
    assert!(unchanged, "a refused command changed the CA directory");

    let serial = printed_serial(&assert_ok(&done));
    assert_eq!(file_serial(&t.path("holder.crt")), serial);
    let out = assert_ok(&ca.run(&["log", "verify"]));
    assert!(!out.contains("note:"), "unsealed records:\n{out}");
}

#[test_needs(softhsm2)]
fn concurrent_signers_are_serialized() {
    let ca = Ca::new();
    let t = &ca.t;
    const ROUNDS: usize = 6;
    const STAGGER_MS: [u64; ROUNDS] = [0, 0, 0, 10, 30, 150];
    let mut succeeded: Vec<(String, String)> = Vec::new(); // (serial, out file)
    let mut refused = 0;
    for (round, stagger_ms) in STAGGER_MS.into_iter().enumerate() {
        let mut children = Vec::new();
        for who in 0..2 {
            let name = format!("r{round}-{who}");
            let csr = ca.csr(&name, &format!("Round {round} Signer {who} CA"));
            let out = format!("{name}.crt");
            let mut cmd = t.hsmca();
            cmd.arg("--ca-dir")
                .arg(CA)
                .args(ca.sign_args(&csr, &out))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            children.push((out, cmd));
        }
        // A reader in the race too: it either reads an intact log or is told to wait.
        let mut reader = t.hsmca();
        reader
            .args(["--ca-dir", CA, "log", "verify"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Start the first signer and the reader back to back, and the second signer with
        // them or a little later (so that it meets the first in another phase, or after
        // it); then wait for all three.
        let stagger = Duration::from_millis(stagger_ms);
        let mut spawned = Vec::new();
        let mut reader_child = None;
        for (n, (out, cmd)) in children.iter_mut().enumerate() {
            if n == 1 {
                std::thread::sleep(stagger);
            }
            spawned.push((out.clone(), cmd.spawn().expect("spawn hsmca sign")));
            if n == 0 {
                reader_child = Some(reader.spawn().expect("spawn hsmca log verify"));
            }
        }
        let reader = reader_child.unwrap();
        for (out, child) in spawned {
            let o = child.wait_with_output().unwrap();
            let stderr = stderr_of(&o);
            if o.status.success() {
                let serial = printed_serial(&stdout_of(&o));
                assert_eq!(file_serial(&t.path(&out)), serial);
                succeeded.push((serial, out.clone()));
            } else {
                let err = assert_fails(&o);
                assert!(
                    err.contains(LOCK_MESSAGE),
                    "round {round}: a sign failed for another reason than the lock:\n{err}"
                );
                assert!(!t.path(&out).exists(), "a refused sign wrote {out}");
                refused += 1;
            }
            eprintln!(
                "round {round} (stagger {stagger:?}) {out}: {}",
                stderr.lines().next().unwrap_or("ok")
            );
        }
        let r = reader.wait_with_output().unwrap();
        if !r.status.success() {
            let err = assert_fails(&r);
            assert!(
                err.contains(LOCK_MESSAGE),
                "round {round}: log verify failed:\n{err}"
            );
        }
        assert_ok(&ca.run(&["log", "verify"]));
    }
    // Whether the rounds overlapped, and who won, is up to the scheduler (the reader holds the
    // lock too, so both signers of a round can be refused):
    // a_signer_holding_the_lock_refuses_the_others makes them meet for sure.
    eprintln!("{refused} of {} signs met the lock", 2 * ROUNDS);

    let out = assert_ok(&ca.run(&["log", "verify"]));
    assert!(
        !out.contains("note:"),
        "unsealed records after the race:\n{out}"
    );
    let list = ca.list();
    let all = serials(&list);
    let uniq: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(uniq.len(), all.len(), "duplicate serials in list: {all:?}");
    assert_eq!(list.len(), 1 + succeeded.len(), "{list:#?}");
    for (serial, out) in &succeeded {
        let e = entry(&list, serial);
        assert_eq!(
            e["sha256"].as_str().map(str::to_lowercase),
            Some(cert_sha256_fingerprint(&t.path(out))),
            "{e}"
        );
    }
    assert!(temp_files(t.dir()).is_empty(), "{:?}", temp_files(t.dir()));
}

// ------------------------------------------------------------------------------------------------
// 4. SIGKILL at any moment
// ------------------------------------------------------------------------------------------------

#[test_needs(softhsm2)]
fn sign_killed_at_any_moment_leaves_a_consistent_ca() {
    let ca = Ca::new();
    let t = &ca.t;
    fs::create_dir(t.path("out")).unwrap();

    // How long an uninterrupted sign takes, to spread the kills over it.
    let csr = ca.csr("timing", "Timing CA");
    let start = Instant::now();
    let timing_serial = ca.sign(&csr, "out/timing.crt");
    let full_ms = start.elapsed().as_millis() as u64;
    eprintln!("an uninterrupted sign took {full_ms} ms");

    // Fixed delays, then a finer sweep over the last part of a sign, where the record, the
    // kept copy and the output file are written. Bounded: about 50 kills.
    let mut delays_ms: BTreeSet<u64> = [0, 1, 2, 5, 10, 15, 20, 30, 40, 60, 80].into();
    let mut d = full_ms * 40 / 100;
    while d <= full_ms * 120 / 100 {
        delays_ms.insert(d);
        d += 2;
    }
    let delays_ms: Vec<u64> = delays_ms
        .into_iter()
        .filter(|d| *d <= 400)
        .take(60)
        .collect();

    // SoftHSM2 2.6.1 rewrites its token.object in place on every C_Login, so a SIGKILL
    // during the login can leave the token unreadable ("no token with label ..."): a property
    // of the test token, not of hsmca. A damaged token store is put back as it was before that
    // command (the damage comes before hsmca changed anything on it: the log's head moves only
    // after the login), so that each kill tests the CA directory only.
    let token_store = t.path("tokens");
    let mut token_damaged = Vec::new();

    let mut problems: Vec<String> = Vec::new();
    let mut outcomes = Vec::new();
    let mut seen_temps: BTreeSet<PathBuf> = BTreeSet::new();
    for (i, delay) in delays_ms.iter().enumerate() {
        let before_command = files_in(&token_store);
        let name = format!("kill-{i}");
        let csr = ca.csr(&name, &format!("Killed {i} CA"));
        let out = format!("out/{name}.crt");
        let mut cmd = t.hsmca();
        cmd.arg("--ca-dir")
            .arg(CA)
            .args(ca.sign_args(&csr, &out))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn hsmca sign");
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let what = format!("kill after {delay} ms ({status})");
        let tokens_now = run_command(
            Command::new("softhsm2-util")
                .arg("--show-slots")
                .env("SOFTHSM2_CONF", &t.conf),
        );
        if !stdout_of(&tokens_now).contains(&format!("Label:            {}", t.label)) {
            token_damaged.push(*delay);
            restore_files(&token_store, &before_command);
        }

        // The log is intact (perhaps with an unsealed tail).
        let v = ca.run(&["log", "verify"]);
        if !v.status.success() {
            problems.push(format!(
                "{what}: log verify fails: {}",
                stderr_of(&v).trim()
            ));
            break; // every later sign would refuse
        }
        // No temporary files anywhere.
        for tmp in temp_files(t.dir()) {
            if seen_temps.insert(tmp.clone()) {
                problems.push(format!("{what}: temporary file left: {}", tmp.display()));
            }
        }
        // No partial output: what exists is whole and recorded.
        let list = ca.list();
        let listed: BTreeSet<String> = serials(&list).into_iter().collect();
        let written = t.path(&out).exists();
        if written {
            let serial = file_serial(&t.path(&out));
            if !listed.contains(&serial) {
                problems.push(format!("{what}: {out} was written but is not recorded"));
            } else if entry(&list, &serial)["sha256"]
                .as_str()
                .map(str::to_lowercase)
                != Some(cert_sha256_fingerprint(&t.path(&out)))
            {
                problems.push(format!("{what}: {out} differs from its record"));
            }
        }
        for f in files_in(&t.path("ca/certs")).into_keys() {
            let serial = f.file_stem().unwrap().to_string_lossy().to_string();
            if f.extension().is_none_or(|e| e != "pem") {
                continue; // temporary files are reported above
            }
            if !listed.contains(&serial) {
                problems.push(format!("{what}: ca/certs/{} is not recorded", f.display()));
            } else if entry(&list, &serial)["sha256"]
                .as_str()
                .map(str::to_lowercase)
                != Some(cert_sha256_fingerprint(&t.path("ca/certs").join(&f)))
            {
                problems.push(format!(
                    "{what}: ca/certs/{} is partial or differs from its record",
                    f.display()
                ));
            }
        }
        let recorded = records_of(&ca.log_lines(CA), "csr_signed").len();
        outcomes.push(format!(
            "{what}: out {}; {} listed, {recorded} csr_signed; {}",
            if written { "written" } else { "absent" },
            list.len(),
            stdout_of(&v).lines().last().unwrap_or("")
        ));
    }
    for o in &outcomes {
        eprintln!("{o}");
    }
    eprintln!(
        "SoftHSM2 token store damaged (and restored) by the kills after {token_damaged:?} ms"
    );
    assert!(
        problems.is_empty(),
        "after SIGKILL:\n  {}",
        problems.join("\n  ")
    );

    // Every listed certificate can be exported, equal to its record.
    let list = ca.list();
    assert!(list.iter().any(|e| e["serial"] == timing_serial.as_str()));
    for e in &list {
        let serial = norm_serial(e["serial"].as_str().unwrap());
        let out = format!("out/export-{serial}.pem");
        assert_ok(&ca.run(&["export", "--serial", &serial, "--out", &out]));
        assert_eq!(
            e["sha256"].as_str().map(str::to_lowercase),
            Some(cert_sha256_fingerprint(&t.path(&out))),
            "export of {serial}"
        );
    }

    // The CA still works, and the next command seals whatever the killed ones left.
    let csr = ca.csr("after", "After The Kills CA");
    let serial = ca.sign(&csr, "out/after.crt");
    let out = assert_ok(&ca.run(&["log", "verify"]));
    assert!(
        !out.contains("note:"),
        "unsealed records after a complete sign:\n{out}"
    );
    let list = ca.list();
    entry(&list, &serial);
    let all = serials(&list);
    let uniq: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(uniq.len(), all.len(), "duplicate serials: {all:?}");
}

// ------------------------------------------------------------------------------------------------
// 5. Wrong PIN
// ------------------------------------------------------------------------------------------------

#[test_needs(softhsm2)]
fn wrong_pin_is_recorded_and_issues_nothing() {
    let ca = Ca::new();
    let t = &ca.t;
    let wrong = [("HSMCA_PIN", Some("not-the-pin"))];

    // sign
    let csr = ca.csr("inter", "Wrong PIN CA");
    let certs_before = files_in(&t.path("ca/certs"));
    let lines_before = ca.log_lines(CA);
    let args = in_ca_dir(CA, ca.sign_args(&csr, "inter.crt"));
    let err = assert_fails(&t.run_env(&wrong, &args));
    assert_mentions(&err, &["PIN"]);
    assert!(
        !t.path("inter.crt").exists(),
        "sign with a wrong PIN wrote a certificate"
    );
    assert_same_files(&certs_before, &files_in(&t.path("ca/certs")));
    let lines = ca.log_lines(CA);
    assert_eq!(&lines[..lines_before.len()], &lines_before[..]);
    let new: Vec<_> = lines[lines_before.len()..]
        .iter()
        .map(|l| json(l))
        .collect();
    assert!(
        new.iter().any(|r| r["event"] == "login_failed"),
        "no login_failed record: {new:#?}"
    );
    assert!(
        new.iter()
            .all(|r| r["event"] != "csr_signed" && r["event"] != "seal"),
        "{new:#?}"
    );
    let failed = new.iter().find(|r| r["event"] == "login_failed").unwrap();
    assert_eq!(failed["token"], t.label.as_str(), "{failed}");
    assert_eq!(
        ca.list().len(),
        1,
        "a certificate was listed after a wrong PIN"
    );
    assert_ok(&ca.run(&["log", "verify"]));

    // root create into a new CA directory
    let err = assert_fails(&t.run_env(
        &wrong,
        [
            "--ca-dir",
            "ca2",
            "root",
            "create",
            "--key",
            &ca.uri,
            "--subject",
            ROOT_SUBJECT,
            "--validity",
            "10y",
            "--out",
            "root2.crt",
        ],
    ));
    assert_mentions(&err, &["PIN"]);
    assert!(!t.path("root2.crt").exists());
    assert!(!t.path("ca2/ca.crt").exists());
    assert!(files_in(&t.path("ca2/certs")).is_empty());
    let log2 = fs::read_to_string(t.path("ca2/audit.jsonl")).unwrap_or_default();
    assert!(log2.contains("login_failed"), "ca2/audit.jsonl: {log2:?}");
    assert!(!log2.contains("root_created"), "{log2}");

    // The right PIN still works afterwards (a wrong one is never retried, never locks SoftHSM2).
    ca.sign(&csr, "inter.crt");
}

/// A log cut back to an earlier seal verifies on its own; the certificates and CRLs kept in
/// the CA directory after the cut give it away, and signing refuses.
#[test_needs(softhsm2)]
fn log_cut_back_to_an_earlier_seal_is_caught_by_the_kept_files() {
    let (ca, lines) = tamper_setup();
    // The seal that ends the first `sign`: everything after it (a certificate, a revocation,
    // a CRL and their seals) is cut.
    let first_signed = records_of(&lines, "csr_signed")[0];
    let seal = records_of(&lines, "seal")
        .into_iter()
        .find(|s| *s > first_signed)
        .expect("a seal after the first csr_signed");
    tampered_copy(&ca, "ca-cut", &joined(&lines[..seal]));
    let out = ca.run_dir("ca-cut", &["log", "verify"]);
    let stderr = assert_fails(&out);
    assert!(
        stderr.contains("is not in the audit log") && stderr.contains("cut short"),
        "{stderr}"
    );
    let sign = ca.run_dir("ca-cut", &ca.sign_args("csr/late.csr", "ca-cut-signed.crt"));
    assert_eq!(
        assert_fails(&sign).lines().next(),
        stderr.lines().next(),
        "sign should refuse with log verify's error"
    );
    assert!(!ca.t.path("ca-cut-signed.crt").exists());
}

/// Signing a request this CA already signed is allowed (a renewal) but said, with the serial to
/// export: after a run that stopped between the record and the output, exporting is the fix.
/// Such a run leaves its record unsealed and the directory changed since the last command, so
/// the next command reads the whole log; here the log's inode is changed to the same effect
/// (a directory as the last command left it is read from its last seal: only requests signed
/// since are named).
#[test_needs(softhsm2)]
fn signing_an_already_signed_request_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let ca = Ca::new();
    let csr = ca.csr("again", "Again CA");
    let first = ca.sign(&csr, "again-1.crt");
    fs::set_permissions(
        ca.t.path("ca/audit.jsonl"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = ca.run(&ca.sign_args(&csr, "again-2.crt"));
    let stdout = assert_ok(&out);
    let stderr = stderr_of(&out);
    assert_mentions(&stderr, &["already signed by this CA"]);
    assert_mentions(&norm_serial(&stderr), &[&norm_serial(&first)]);
    assert_mentions(&stderr, &["hsmca export --serial"]);
    assert_ne!(printed_serial(&stdout), first, "a new certificate");
    // A request never signed gets no note.
    let other = ca.csr("other", "Other CA");
    let out = ca.run(&ca.sign_args(&other, "other.crt"));
    assert_ok(&out);
    assert!(
        !stderr_of(&out).contains("already signed"),
        "{}",
        stderr_of(&out)
    );
}

// ------------------------------------------------------------------------------------------------
// 3. The head on the token: someone with write access to the CA directory, without the PIN
// ------------------------------------------------------------------------------------------------

/// The CA directory after `edit`, and the refusals every command that logs in gives: `sign`,
/// `crl` and `revoke` refuse naming `cause` and change nothing; `log verify --key` fails too.
#[track_caller]
fn refused_by_the_head(ca: &Ca, dir: &str, cause: &[&str]) {
    let before = files_in(&ca.t.path(dir));
    let out_file = format!("{dir}-signed.crt");
    let crl_file = format!("{dir}.crl");
    // A serial this directory's log lets one revoke (so the refusal is the head's, if any).
    let text = fs::read_to_string(ca.t.path(dir).join("audit.jsonl")).unwrap_or_default();
    let records: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let serial = records
        .iter()
        .filter(|r| r["event"] == "csr_signed")
        .map(|r| r["cert"]["serial"].as_str().unwrap_or_default().to_string())
        .find(|s| {
            !records
                .iter()
                .any(|r| r["event"] == "certificate_revoked" && r["serial"] == s.as_str())
        })
        .unwrap_or_else(|| ca.root_serial.clone());
    for (what, out) in [
        (
            "sign",
            ca.run_dir(dir, &ca.sign_args("csr/late.csr", &out_file)),
        ),
        (
            "crl",
            ca.run_dir(
                dir,
                &[
                    "crl",
                    "--key",
                    &ca.uri,
                    "--next-update",
                    "30d",
                    "--out",
                    &crl_file,
                ],
            ),
        ),
        (
            "revoke",
            ca.run_dir(
                dir,
                &[
                    "revoke",
                    "--key",
                    &ca.uri,
                    "--serial",
                    &serial,
                    "--reason",
                    "superseded",
                ],
            ),
        ),
        (
            "log verify --key",
            ca.run_dir(dir, &["log", "verify", "--key", &ca.uri]),
        ),
    ] {
        let err = assert_fails(&out);
        assert!(
            cause.iter().any(|c| err.contains(c)),
            "{what} on {dir}: expected one of {cause:?}:\n{err}"
        );
    }
    assert!(!ca.t.path(&out_file).exists() && !ca.t.path(&crl_file).exists());
    assert_same_files(&before, &files_in(&ca.t.path(dir)));
}

/// `revoke` logs in and seals; a revocation dropped by cutting the log back to the seal before
/// it (its kept CRL deleted too), a forged one appended after the last seal with the chain
/// recomputed, and a CRL number forged to 2^64-1 are each caught by the head on the token,
/// although `log verify` without the token still passes the first (and says freshness was
/// not checked).
#[test_needs(softhsm2)]
fn the_head_on_the_token_catches_a_log_cut_back_or_extended() {
    let (ca, lines) = tamper_setup();
    let revoked = records_of(&lines, "certificate_revoked")[0];
    assert_eq!(
        json(&lines[revoked])["event"],
        "seal",
        "revoke seals its record"
    );

    // 1. Cut back to the seal before the revocation; the CRL after it deleted.
    let seal_before = *records_of(&lines, "seal")
        .iter()
        .rfind(|s| **s < revoked)
        .unwrap();
    tampered_copy(&ca, "ca-cut", &joined(&lines[..seal_before]));
    let _ = fs::remove_dir_all(ca.t.path("ca-cut/crls"));
    fs::create_dir(ca.t.path("ca-cut/crls")).unwrap();
    for f in files_in(&ca.t.path("ca-cut/certs")).into_keys() {
        let serial = f.file_stem().unwrap().to_string_lossy().to_string();
        if !lines[..seal_before].iter().any(|l| l.contains(&serial)) {
            fs::remove_file(ca.t.path("ca-cut/certs").join(f)).unwrap();
        }
    }
    let quiet = assert_ok(&ca.run_dir("ca-cut", &["log", "verify"]));
    assert_mentions(&quiet, &["not checked"]);
    refused_by_the_head(&ca, "ca-cut", &["cut off"]);

    // 2. A forged revocation after the last seal, the chain recomputed.
    let mut forged = lines.clone();
    let template = json(&lines[revoked - 1]);
    let mut fake = template.clone();
    fake["seq"] = serde_json::json!(lines.len() + 1);
    fake["serial"] = serde_json::json!(ca.root_serial.clone());
    fake["reason"] = serde_json::json!("keyCompromise");
    forged.push(serde_json::to_string(&fake).unwrap());
    tampered_copy(&ca, "ca-forged", &joined(&rechain(&forged)));
    refused_by_the_head(&ca, "ca-forged", &["records were added"]);

    // 3. A forged CRL number 2^64-1 after the last seal.
    let crl = records_of(&lines, "crl_issued")[0];
    let mut fake = json(&lines[crl - 1]);
    fake["seq"] = serde_json::json!(lines.len() + 1);
    fake["crl_number"] = serde_json::json!(u64::MAX);
    let mut forged = lines.clone();
    forged.push(serde_json::to_string(&fake).unwrap());
    tampered_copy(&ca, "ca-crlnum", &joined(&rechain(&forged)));
    refused_by_the_head(&ca, "ca-crlnum", &["records were added"]);

    // The real CA directory is untouched by all that and goes on.
    let head = assert_ok(&ca.run(&["log", "verify", "--key", &ca.uri]));
    assert_mentions(&head, &["was not cut back"]);
    ca.sign("csr/late.csr", "late.crt");
}

/// Edits no seal can catch without the token: an emptied log beside `ca.crt`, a hidden
/// `ca.crt`, a stripped final newline, a seal's own time changed. Each is refused by
/// `log verify` and by `sign`, which writes nothing.
#[test_needs(softhsm2)]
fn a_ca_directory_someone_edited_is_refused() {
    let (ca, lines) = tamper_setup();

    copy_dir(&ca.t.path(CA), &ca.t.path("ca-empty"));
    fs::write(ca.t.path("ca-empty/audit.jsonl"), b"").unwrap();
    for sub in ["certs", "crls"] {
        fs::remove_dir_all(ca.t.path("ca-empty").join(sub)).unwrap();
        fs::create_dir(ca.t.path("ca-empty").join(sub)).unwrap();
    }
    assert_mentions(
        &assert_fails(&ca.run_dir("ca-empty", &["log", "verify"])),
        &["audit log is empty or missing"],
    );
    refused_by_the_head(&ca, "ca-empty", &["audit log is empty or missing"]);

    copy_dir(&ca.t.path(CA), &ca.t.path("ca-hidden"));
    fs::rename(ca.t.path("ca-hidden/ca.crt"), ca.t.path("hidden.crt")).unwrap();
    refused_by_the_head(&ca, "ca-hidden", &["ca.crt is missing"]);

    let text = fs::read(ca.t.path("ca/audit.jsonl")).unwrap();
    tampered_copy(&ca, "ca-newline", &text[..text.len() - 1]);
    assert_mentions(
        &assert_fails(&ca.run_dir("ca-newline", &["log", "verify"])),
        &["without its line end"],
    );
    refused_by_the_head(&ca, "ca-newline", &["without its line end"]);

    let last_seal = *records_of(&lines, "seal").last().unwrap();
    let mut edited = lines.clone();
    let mut seal = json(&edited[last_seal - 1]);
    seal["time"] = serde_json::json!("2030-01-01T00:00:00Z");
    edited[last_seal - 1] = serde_json::to_string(&seal).unwrap();
    tampered_copy(&ca, "ca-sealtime", &joined(&rechain(&edited)));
    assert_mentions(
        &assert_fails(&ca.run_dir("ca-sealtime", &["log", "verify"])),
        &["seal's signature does not verify"],
    );
}

/// A mistyped --ca-dir is refused (and not created) by every command but those that start a
/// CA; `bench raw` refuses a CA key; under umask 000 the CA directory, its log and lock are
/// still owner-only.
#[test_needs(softhsm2)]
fn ca_directories_are_created_on_purpose_and_owner_only() {
    let ca = Ca::new();
    let csr = ca.csr("one", "One CA");
    let out = ca.run_dir("cA", &ca.sign_args(&csr, "one.crt"));
    assert_mentions(&assert_fails(&out), &["does not exist"]);
    assert!(!ca.t.path("cA").exists());

    let err = assert_fails(&ca.t.run(["bench", "raw", "--key", &ca.uri, "--count", "3"]));
    assert_mentions(&err, &["is a CA key"]);
    assert!(
        !fs::read_to_string(ca.t.path("ca/audit.jsonl"))
            .unwrap()
            .contains("bench")
    );

    let t = &ca.t;
    t.generate_key("umask-key", "ecdsa-p256");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(hsmca_bin())
        .args(["--ca-dir", "open-ca"])
        .args(root_create_args(
            &t.key_uri("umask-key"),
            "1y",
            "umask-root.crt",
        ));
    t.configure(&mut cmd);
    assert_ok(&run_command(&mut cmd));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| fs::metadata(t.path(p)).unwrap().permissions().mode() & 0o777;
    for dir in ["open-ca", "open-ca/certs", "open-ca/crls"] {
        assert_eq!(mode(dir), 0o700, "{dir}");
    }
    for file in ["open-ca/audit.jsonl", "open-ca/lock"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

/// The root's CRL as rustls-webpki reads it. Without a URL its issuingDistributionPoint has no
/// distributionPoint, which webpki refuses; with `crl --url` it loads, a chain through a
/// valid intermediate verifies with it, and once that intermediate is revoked (and the next
/// CRL issued) webpki reports the chain revoked.
#[test_needs(softhsm2)]
fn the_roots_crl_with_a_url_works_in_rustls_webpki() {
    use rustls_pki_types::{CertificateDer, UnixTime};
    use webpki::{
        BorrowedCertRevocationList, CertRevocationList, EndEntityCert, KeyUsage,
        RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
    };
    let ca = Ca::new();
    let t = &ca.t;
    let (inter_csr, inter_key) = make_csr(&t.path("csr"), "inter", CsrAlg::P256, "Web CA");
    let inter_serial = ca.sign(inter_csr.to_str().unwrap(), "inter.crt");
    let (leaf_csr, _) = make_csr(&t.path("csr"), "leaf", CsrAlg::P256, "www.example.com");
    openssl_sign_leaf(
        &t.path("inter.crt"),
        &inter_key,
        &leaf_csr,
        &["www.example.com"],
        &t.path("leaf.crt"),
    )
    .unwrap();
    let der = |p: &str| cert_der(&t.path(p));
    let crl_der = |p: &str| {
        pem_blocks(&fs::read_to_string(t.path(p)).unwrap())[0]
            .1
            .clone()
    };
    let (root, inter, leaf) = (der("root.crt"), der("inter.crt"), der("leaf.crt"));
    let verify = |crl: &[u8]| {
        let crl = CertRevocationList::Borrowed(BorrowedCertRevocationList::from_der(crl).unwrap());
        let crls = [&crl];
        let revocation = RevocationOptionsBuilder::new(&crls)
            .unwrap()
            .with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Allow)
            .build();
        let root = CertificateDer::from(root.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&root).unwrap();
        let intermediates = [CertificateDer::from(inter.clone())];
        let leaf = CertificateDer::from(leaf.as_slice());
        EndEntityCert::try_from(&leaf)
            .unwrap()
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &[anchor],
                &intermediates,
                UnixTime::since_unix_epoch(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap(),
                ),
                KeyUsage::server_auth(),
                Some(revocation),
                None,
            )
            .map(|_| ())
    };

    ca.crl("no-url.crl");
    assert!(
        BorrowedCertRevocationList::from_der(&crl_der("no-url.crl")).is_err(),
        "webpki now loads an IDP without a distributionPoint: the --url advice can be relaxed"
    );
    let url = "http://pki.example.com/root-2026.crl";
    let crl = |out: &str| {
        assert_ok(&ca.run(&[
            "crl",
            "--key",
            &ca.uri,
            "--next-update",
            "30d",
            "--url",
            url,
            "--out",
            out,
        ]));
        let text = openssl_x509_crl_text(t, out);
        assert!(text.contains(url), "{text}");
        crl_der(out)
    };
    verify(&crl("before.crl")).unwrap();
    assert_no_findings_at_or_above_warning(
        &pkilint(
            "lint_crl",
            &["-t", "ARL", "-p", "PKIX"],
            &t.path("before.crl"),
        ),
        &[],
    );
    assert_ok(&ca.run(&[
        "revoke",
        "--serial",
        &inter_serial,
        "--reason",
        "keyCompromise",
    ]));
    assert_eq!(verify(&crl("after.crl")), Err(webpki::Error::CertRevoked));
}

/// `openssl crl -text` of a CRL file.
fn openssl_x509_crl_text(t: &TestToken, crl: &str) -> String {
    assert_ok(&run_in(
        t.dir(),
        "openssl",
        &["crl", "-in", crl, "-noout", "-text"],
    ))
}

// ------------------------------------------------------------------------------------------------
// 4. Reading from the last seal: the stamp and the CA-key index
// ------------------------------------------------------------------------------------------------

/// The stamp hsmca keeps of `dir` (its log, `certs/` and `crls/`) as they are now.
fn stamp_of(dir: &Path) -> serde_json::Value {
    use std::os::unix::fs::MetadataExt;
    let one = |p: PathBuf| {
        let m = fs::symlink_metadata(p).unwrap();
        serde_json::json!({
            "dev": m.dev(), "ino": m.ino(), "size": m.size(),
            "ctime": m.ctime(), "ctime_nsec": m.ctime_nsec(),
        })
    };
    serde_json::json!({
        "log": one(dir.join("audit.jsonl")),
        "certs": one(dir.join("certs")),
        "crls": one(dir.join("crls")),
    })
}

/// A signing command reads the log from its last seal when the directory is as the last
/// command left it. Someone who edits a record before that seal in place and rewrites the
/// stamp kept in the directory to match gets past the look before the login, not past the
/// token's copy of the stamp: `sign`, `crl` and `revoke` read the whole log then and refuse
/// with the error `log verify` gives, changing nothing.
#[test_needs(softhsm2)]
fn an_edit_before_the_last_seal_with_a_forged_stamp_is_caught_by_the_token() {
    let (ca, lines) = tamper_setup();
    let dir = ca.t.path(CA);
    let stamp = fs::read(dir.join("stamp")).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&stamp).unwrap(),
        stamp_of(&dir),
        "the kept stamp is the directory's as the last command left it"
    );
    let k = middle_record(&lines);
    let mut edited = lines.clone();
    edited[k - 1] = edited[k - 1].replacen(
        "CN=Cluster 1 Intermediate CA",
        "CN=Cluster 7 Intermediate CA",
        1,
    );
    assert_ne!(edited, lines);
    // In place: the same inode, the same length.
    let mut log = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("audit.jsonl"))
        .unwrap();
    log.write_all(&joined(&edited)).unwrap();
    drop(log);
    fs::write(
        dir.join("stamp"),
        serde_json::to_vec(&stamp_of(&dir)).unwrap(),
    )
    .unwrap();
    let verify = assert_fails(&ca.run(&["log", "verify"]));
    assert!(named_records(&verify).contains(&(k as u64)), "{verify}");
    refused_by_the_head(&ca, CA, &[verify.lines().next().unwrap()]);
}

/// The CA-key index is a cache the seals vouch for: emptied, or with an entry removed, it no
/// longer matches the last seal, so the next signing command reads the whole log (and still
/// refuses a CA's key under another subject) and its seal writes the index anew.
#[test_needs(softhsm2)]
fn a_ca_key_index_that_does_not_match_its_seal_is_rebuilt_from_the_log() {
    let ca = Ca::new();
    let csr = ca.csr("inter", "Indexed Intermediate CA");
    ca.sign(&csr, "inter.crt");
    let index = ca.t.path("ca/ca-keys");
    let whole = fs::read(&index).unwrap();
    assert_eq!(
        whole.len(),
        2 * 96,
        "the root's and the intermediate's entries"
    );

    // The intermediate's key under another subject, with its entry gone from the index.
    fs::write(&index, &whole[..96]).unwrap();
    let key = ca.t.path("csr/inter.key");
    assert!(key.exists(), "the request's key is kept beside it");
    let renamed = ca.t.path("csr/renamed.csr");
    assert_ok(&run_command(
        Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=Renamed CA", "-key"])
            .arg(&key)
            .arg("-out")
            .arg(&renamed),
    ));
    let refused = ca.run(&ca.sign_args("csr/renamed.csr", "renamed.crt"));
    assert_mentions(
        &assert_fails(&refused),
        &["public key of a CA this CA directory certified as CN=Indexed Intermediate CA"],
    );
    assert!(!ca.t.path("renamed.crt").exists());

    // Emptied: the next sign reads the whole log and its seal writes the index again.
    fs::write(&index, b"").unwrap();
    let other = ca.csr("other", "Other Intermediate CA");
    ca.sign(&other, "other.crt");
    assert_eq!(fs::read(&index).unwrap().len(), 3 * 96);
    assert_eq!(&fs::read(&index).unwrap()[..2 * 96], &whole[..]);
    assert_ok(&ca.run(&["log", "verify"]));
}
