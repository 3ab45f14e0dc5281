//! Key ceremonies end to end against SoftHSM2 (each test with its own token): both example
//! ceremonies, plans that must fail, an interrupted and resumed run, transcript tampering, a
//! run without network, one C_Login per run. Every output passes openssl and pkilint.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

const TOKEN: &str = "Example Root CA";
const ROOT_FILE: &str = "root-ceremony.toml";
const CLUSTER_FILE: &str = "cluster-signing.toml";

/// A token labelled as the examples expect, with the example ceremony files and three cluster
/// CSRs.
fn setup() -> TestToken {
    let t = TestToken::new(TOKEN);
    for f in [ROOT_FILE, CLUSTER_FILE, ROLLOVER_FILE] {
        fs::copy(repo_root().join("examples").join(f), t.path(f)).unwrap();
    }
    let req = t.mkdir("requests");
    for c in ["a", "b", "c"] {
        make_csr(
            &req,
            &format!("cluster-{c}"),
            CsrAlg::P256,
            &format!("Cluster {} CA", c.to_uppercase()),
        );
    }
    t
}

/// Runs `hsmca ARGS` with `input` on stdin.
fn run_with_stdin(t: &TestToken, args: &[&str], input: &str) -> Output {
    let mut cmd = t.hsmca();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start hsmca");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn run_yes(t: &TestToken, file: &str) -> String {
    assert_ok(&t.run(["ceremony", "run", "--yes", file]))
}

/// Parses a command's `--json` output.
#[track_caller]
fn lint_cert(p: &Path) {
    let f = pkilint("lint_pkix_cert", &[], p);
    assert_no_findings_at_or_above_warning(&f, &[]);
}

fn lint_arl(p: &Path) {
    let f = pkilint("lint_crl", &["-t", "ARL", "-p", "PKIX"], p);
    assert_no_findings_at_or_above_warning(&f, &[]);
}

fn openssl_crl_ok(t: &TestToken, crl: &str, ca: &str) {
    let out = run_in(
        t.dir(),
        "openssl",
        &["crl", "-in", crl, "-CAfile", ca, "-noout"],
    );
    assert!(
        out.status.success() && stderr_of(&out).contains("verify OK"),
        "openssl crl {crl}: {}",
        stderr_of(&out)
    );
}

#[test_needs(softhsm2)]
fn both_example_ceremonies_end_to_end() {
    let t = setup();
    let plan = assert_ok(&t.run(["ceremony", "plan", ROOT_FILE]));
    assert_mentions(&plan, &["Plan digest:"]);
    let digest = plan
        .lines()
        .find_map(|l| l.strip_prefix("Plan digest: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    // plan writes nothing
    assert!(!t.path("out").exists(), "plan must not create anything");
    // The same plan as data (README: JSON output).
    let report = json(&assert_ok(
        &t.run(["ceremony", "plan", ROOT_FILE, "--json"]),
    ));
    assert_eq!(report["digest_short"].as_str(), Some(digest.as_str()));
    assert_eq!(report["digest"].as_str().map(str::len), Some(64));
    assert_eq!(report["status"], "not_started");
    assert_eq!(report["next_step"], 1);
    let steps = report["steps"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["generate_key", "create_root", "crl"]);
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["number"], i + 1);
        assert_eq!(step["done"], false);
        // The step's text as the text plan shows it (the dry run's throwaway key differs
        // from run to run, so only its first line is compared).
        let first = step["text"].as_str().unwrap().lines().next().unwrap();
        assert!(plan.contains(first), "{first}");
        assert!(
            step["confirmation"]
                .as_str()
                .unwrap()
                .ends_with(&format!(" {}", i + 1))
        );
        assert!(step["items"].as_array().is_some_and(|i| !i.is_empty()));
    }
    assert_eq!(report["file"]["sha256"].as_str().map(str::len), Some(64));
    assert!(
        report["ca_key_uri"]
            .as_str()
            .unwrap()
            .starts_with("pkcs11:")
    );
    assert!(assert_ok(&t.run(["ceremony", "plan", ROOT_FILE, "-q"])).contains(&digest));

    let out = run_yes(&t, ROOT_FILE);
    assert!(
        out.contains(&digest),
        "run shows the reviewed digest\n{out}"
    );
    assert_ok(&t.run(["ceremony", "verify", "out/root-ceremony.transcript"]));

    let out = run_yes(&t, CLUSTER_FILE);
    assert_mentions(&out, &["ceremony complete"]);
    let v = assert_ok(&t.run(["ceremony", "verify", "out/cluster-signing.transcript"]));
    assert_mentions(&v, &["(OK)"]);
    let v = json(&assert_ok(&t.run([
        "ceremony",
        "verify",
        "out/cluster-signing.transcript",
        "--json",
    ])));
    assert_eq!(v["transcript"], "out/cluster-signing.transcript");
    assert!(v["files"].as_u64().is_some_and(|n| n >= 3), "{v}");
    assert!(v["records"].as_u64().is_some_and(|n| n >= 3), "{v}");
    assert!(v["log_seals"].as_u64().is_some_and(|n| n >= 1), "{v}");
    assert_eq!(
        v["ceremony"],
        "Example Root CA 2026: cluster intermediates, first batch"
    );
    // Complete: the plan says so, as data too.
    let done = json(&assert_ok(&t.run([
        "ceremony",
        "plan",
        CLUSTER_FILE,
        "--json",
    ])));
    assert_eq!(done["status"], "complete");
    assert_eq!(done["next_step"], serde_json::Value::Null);
    for step in done["steps"].as_array().unwrap() {
        for item in step["items"].as_array().unwrap() {
            assert!(item["done"]["record"].as_u64().is_some(), "{item}");
            assert_eq!(
                item["done"]["record_sha256"].as_str().map(str::len),
                Some(64)
            );
        }
    }

    let root = t.path("out/root.crt");
    openssl_verify(&root, &[], &root).unwrap();
    lint_cert(&root);
    for c in ["a", "b", "c"] {
        let crt = t.path(format!("out/cluster-{c}.crt"));
        openssl_verify(&root, &[], &crt).unwrap();
        lint_cert(&crt);
        let chain = pkilint_chain(&root, &crt);
        assert_no_findings_at_or_above_warning(&chain, &[]);
        let text = openssl_x509(&crt, &["-text"]);
        assert_mentions(&text, &["pathlen:0"]);
        assert_mentions(&text, &[&format!("DNS:cluster-{c}.example.com")]);
        assert_mentions(&text, &["http://pki.example.com/root-2026.crl"]);
    }
    let a = openssl_x509(&t.path("out/cluster-a.crt"), &["-text"]);
    assert_mentions(&a, &["Digital Signature, Certificate Sign, CRL Sign"]);
    for crl in ["out/root.crl", "out/root-after-clusters.crl"] {
        openssl_crl_ok(&t, crl, "out/root.crt");
        lint_arl(&t.path(crl));
    }
    // A finished ceremony run again does nothing.
    let again = run_yes(&t, CLUSTER_FILE);
    assert_mentions(&again, &["nothing to do"]);
    let log = assert_ok(&t.run(["--ca-dir", "out/root-ca", "log", "verify"]));
    assert!(!log.is_empty());
}

/// The cluster file rewritten by `edit`, saved as `name`.
fn variant(t: &TestToken, name: &str, edit: impl Fn(String) -> String) -> String {
    let text = fs::read_to_string(t.path(CLUSTER_FILE)).unwrap();
    fs::write(t.path(name), edit(text)).unwrap();
    name.to_string()
}

fn plan_fails(t: &TestToken, file: &str) -> String {
    let before = t.snapshot();
    let err = assert_fails(&t.run(["ceremony", "plan", file]));
    assert_same_files(&before, &t.snapshot());
    err
}

#[test_needs(softhsm2)]
fn plans_that_must_fail_name_the_cause() {
    let t = setup();
    run_yes(&t, ROOT_FILE);

    // A CSR whose signature does not verify.
    let good = fs::read(t.path("requests/cluster-b.csr")).unwrap();
    let blocks = pem_blocks(&String::from_utf8_lossy(&good));
    let mut der = blocks[0].1.clone();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    fs::write(
        t.path("requests/bad.csr"),
        to_pem("CERTIFICATE REQUEST", &der),
    )
    .unwrap();
    let f = variant(&t, "bad-csr.toml", |s| {
        s.replace("requests/cluster-b.csr", "requests/bad.csr")
    });
    let e = plan_fails(&t, &f);
    assert_mentions(&e, &["requests/bad.csr"]);
    assert_mentions(&e, &["signature"]);
    fs::write(t.path("requests/junk.csr"), b"not a CSR\n").unwrap();
    let f = variant(&t, "junk-csr.toml", |s| {
        s.replace("requests/cluster-b.csr", "requests/junk.csr")
    });
    assert_mentions(&plan_fails(&t, &f), &["requests/junk.csr"]);

    // A taken output path.
    fs::write(t.path("out/cluster-b.crt"), b"someone else's file\n").unwrap();
    let e = plan_fails(&t, CLUSTER_FILE);
    assert_mentions(&e, &["out/cluster-b.crt"]);
    assert_mentions(&e, &["taken"]);
    fs::remove_file(t.path("out/cluster-b.crt")).unwrap();

    // A validity past the issuer's (the root has 20 years).
    let f = variant(&t, "too-long.toml", |s| {
        s.replacen("validity = \"5y\"", "validity = \"25y\"", 1)
    });
    let e = plan_fails(&t, &f);
    assert_mentions(&e, &["issuer's NotAfter"]);
    assert_mentions(&e, &["step 1"]);

    // An unknown field: line and field named.
    let f = variant(&t, "unknown.toml", |s| {
        s.replacen("path_len = 0", "path_len = 0\npathlen = 0", 1)
    });
    let text = fs::read_to_string(t.path(&f)).unwrap();
    let line = text.lines().position(|l| l.starts_with("pathlen")).unwrap() + 1;
    let e = plan_fails(&t, &f);
    assert_mentions(&e, &[&format!("line {line}")]);
    assert_mentions(&e, &["unknown field `pathlen`"]);

    // A malformed name constraint and a bad URL.
    let f = variant(&t, "dot.toml", |s| {
        s.replacen("\"cluster-a.example.com\"", "\".cluster-a.example.com\"", 1)
    });
    assert_mentions(&plan_fails(&t, &f), &["leading dot"]);
    let f = variant(&t, "url.toml", |s| {
        s.replacen("http://pki.example.com/root-2026.crl", "https://pki", 1)
    });
    assert_mentions(&plan_fails(&t, &f), &["http://"]);

    // A key the token does not have.
    let f = variant(&t, "nokey.toml", |s| {
        s.replace("label = \"root-2026\"", "label = \"root-2027\"")
    });
    let e = plan_fails(&t, &f);
    assert_mentions(&e, &["missing key"]);
    assert_mentions(&e, &["root-2027"]);

    // Generating a key whose label is taken.
    let root = fs::read_to_string(t.path(ROOT_FILE)).unwrap();
    fs::write(t.path("again.toml"), root.replace("out/", "out2/")).unwrap();
    let e = plan_fails(&t, "again.toml");
    assert_mentions(
        &e,
        &[
            "already exists on the token",
            "already holds a root",
            "already has a CA certificate",
        ],
    );
}

#[test_needs(softhsm2)]
fn unknown_field_and_missing_key_fail_before_any_token_work() {
    let t = setup();
    let text = fs::read_to_string(t.path(ROOT_FILE)).unwrap();
    fs::write(
        t.path("typo.toml"),
        text.replace(
            "validity = \"20y\"",
            "validity = \"20y\"\nvalidty = \"20y\"",
        ),
    )
    .unwrap();
    let line = fs::read_to_string(t.path("typo.toml"))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("validty"))
        .unwrap()
        + 1;
    let e = plan_fails(&t, "typo.toml");
    assert_mentions(&e, &[&format!("line {line}")]);
    assert_mentions(&e, &["validty"]);
    // The cluster ceremony needs the root key, which this token does not have yet.
    let e = plan_fails(&t, CLUSTER_FILE);
    assert_mentions(&e, &["missing key"]);
}

/// What must be equal between two runs of the same ceremony on different tokens: everything
/// but serials, times, keys (and the key identifiers derived from them) and signatures.
fn cert_shape(p: &Path) -> String {
    let der = cert_der(p);
    let cert = Certificate::from_der(&der).unwrap();
    let tbs = cert.tbs_certificate();
    let mut s = format!(
        "subject={} issuer={} alg={:?} key={:?}\n",
        tbs.subject(),
        tbs.issuer(),
        cert.signature_algorithm().oid,
        tbs.subject_public_key_info().algorithm.oid
    );
    for e in tbs.extensions().unwrap() {
        let keyid = ["2.5.29.14", "2.5.29.35"].contains(&e.extn_id.to_string().as_str());
        let value = if keyid {
            "(key id)".to_string()
        } else {
            hex::encode(e.extn_value.as_bytes())
        };
        s.push_str(&format!("{} {} {value}\n", e.extn_id, e.critical));
    }
    s
}

fn crl_shape(p: &Path) -> String {
    let text = fs::read_to_string(p).unwrap();
    let der = pem_blocks(&text).remove(0).1;
    let crl = <CertificateList>::from_der(&der).unwrap();
    let tbs = &crl.tbs_cert_list;
    let mut s = format!(
        "issuer={} revoked={}\n",
        tbs.issuer,
        tbs.revoked_certificates.as_ref().map_or(0, Vec::len)
    );
    for e in tbs.crl_extensions.as_ref().unwrap() {
        let value = if e.extn_id.to_string() == "2.5.29.35" {
            "(key id)".into()
        } else {
            hex::encode(e.extn_value.to_der().unwrap())
        };
        s.push_str(&format!("{} {} {value}\n", e.extn_id, e.critical));
    }
    s
}

fn output_files(t: &TestToken) -> BTreeSet<PathBuf> {
    files_in(&t.path("out"))
        .into_keys()
        .filter(|p| !p.starts_with("root-ca/certs"))
        .collect()
}

fn event_kinds(t: &TestToken) -> Vec<String> {
    fs::read_to_string(t.path("out/root-ca/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| json(l)["event"].as_str().unwrap().to_string())
        .filter(|e| e != "seal")
        .collect()
}

#[test_needs(softhsm2)]
fn interrupted_run_resumes_and_matches_an_uninterrupted_one() {
    let interrupted = setup();
    let out = run_with_stdin(
        &interrupted,
        &["ceremony", "run", ROOT_FILE],
        "generate_key 1\ncreate_root 2\nno\n",
    );
    // Steps 1 and 2 were done by this run: it stopped part-way (exit 3), and says so.
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(error_first(&err), "{err}");
    assert_mentions(&err, &["did not confirm step 3"]);
    assert_mentions(&err, &["resume at step 3"]);
    assert_mentions(&err, &["stopped part-way: 2 step(s) of this run are done"]);
    assert!(interrupted.path("out/root.crt").is_file());
    assert!(!interrupted.path("out/root.crl").exists());
    assert!(!interrupted.path("out/root-ceremony.transcript").exists());
    // The completed steps are recorded and sealed: the log verifies.
    assert_ok(&interrupted.run(["--ca-dir", "out/root-ca", "log", "verify"]));
    let plan = assert_ok(&interrupted.run(["ceremony", "plan", ROOT_FILE]));
    assert_mentions(&plan, &["resumes at step 3"]);
    // A wrong confirmation stops too, without doing step 3.
    let out = run_with_stdin(&interrupted, &["ceremony", "run", ROOT_FILE], "crl 2\n");
    assert_mentions(&assert_fails(&out), &["did not confirm step 3"]);
    let out = run_with_stdin(&interrupted, &["ceremony", "run", ROOT_FILE], "crl 3\n");
    let stdout = assert_ok(&out);
    assert_mentions(&stdout, &["Resuming at step 3"]);
    assert!(
        !stdout.contains("Step 1 of 3"),
        "done steps are not shown again\n{stdout}"
    );

    let straight = setup();
    run_yes(&straight, ROOT_FILE);

    for t in [&interrupted, &straight] {
        run_yes(t, CLUSTER_FILE);
        assert_ok(&t.run(["ceremony", "verify", "out/root-ceremony.transcript"]));
    }
    assert_eq!(output_files(&interrupted), output_files(&straight));
    for p in output_files(&straight) {
        let name = p.to_string_lossy().to_string();
        let (a, b) = (
            interrupted.path("out").join(&p),
            straight.path("out").join(&p),
        );
        if name.ends_with(".crt") {
            assert_eq!(cert_shape(&a), cert_shape(&b), "{name}");
        } else if name.ends_with(".crl") {
            assert_eq!(crl_shape(&a), crl_shape(&b), "{name}");
        }
    }
    assert_eq!(event_kinds(&interrupted), event_kinds(&straight));
    // The resumed ceremony's transcript covers every step, earlier runs included.
    let tr = fs::read_to_string(interrupted.path("out/root-ceremony.transcript")).unwrap();
    assert_eq!(tr.lines().filter(|l| l.starts_with("record: ")).count(), 3);
    assert_mentions(&tr, &["(an earlier run)"]);
}

#[test_needs(softhsm2)]
fn a_transcript_with_one_changed_byte_fails_verify() {
    let t = setup();
    run_yes(&t, ROOT_FILE);
    let path = t.path("out/root-ceremony.transcript");
    let good = fs::read(&path).unwrap();
    assert_ok(&t.run(["ceremony", "verify", "out/root-ceremony.transcript"]));
    let text = String::from_utf8(good.clone()).unwrap();
    let positions = [
        text.find("operator: ").unwrap() + 10,
        text.find("plan-digest: ").unwrap() + 14,
        text.find("output: ").unwrap() + 9,
        text.find("signature: ").unwrap() + 20,
        good.len() - 5,
    ];
    for pos in positions {
        let mut bad = good.clone();
        bad[pos] = if bad[pos] == b'A' { b'B' } else { b'A' };
        fs::write(&path, &bad).unwrap();
        let e = assert_fails(&t.run(["ceremony", "verify", "out/root-ceremony.transcript"]));
        assert_mentions(&e, &["does not verify"]);
    }
    fs::write(&path, &good).unwrap();
    assert_ok(&t.run(["ceremony", "verify", "out/root-ceremony.transcript"]));
    // An output that changed after the ceremony.
    let mut crl = fs::read(t.path("out/root.crl")).unwrap();
    crl.push(b'\n');
    fs::write(t.path("out/root.crl"), crl).unwrap();
    let e = assert_fails(&t.run(["ceremony", "verify", "out/root-ceremony.transcript"]));
    assert_mentions(&e, &["out/root.crl"]);
}

#[test_needs(softhsm2)]
fn one_pin_and_one_login_for_the_whole_run() {
    let t = setup().with_spy();
    t.clear_call_logs();
    run_yes(&t, ROOT_FILE);
    assert_eq!(t.login_calls(), 1, "one C_Login for the whole ceremony");
    t.clear_call_logs();
    assert_ok(&t.run(["ceremony", "plan", CLUSTER_FILE]));
    assert_eq!(t.login_calls(), 0, "plan never logs in");
}

#[test_needs(softhsm2, root)]
fn a_whole_ceremony_runs_without_network() {
    let t = setup();
    let probe = run_command(Command::new("unshare").args(["-n", "true"]));
    assert!(
        probe.status.success(),
        "unshare -n is not permitted here, although the tests were built by root: {}",
        stderr_of(&probe).trim()
    );
    let mut cmd = Command::new("unshare");
    t.configure(&mut cmd);
    cmd.args([
        "-n",
        "--",
        hsmca_bin(),
        "ceremony",
        "run",
        "--yes",
        ROOT_FILE,
    ]);
    assert_ok(&run_command(&mut cmd));
    let mut cmd = Command::new("unshare");
    t.configure(&mut cmd);
    cmd.args([
        "-n",
        "--",
        hsmca_bin(),
        "ceremony",
        "run",
        "--yes",
        CLUSTER_FILE,
    ]);
    assert_ok(&run_command(&mut cmd));
    assert_ok(&t.run(["ceremony", "verify", "out/cluster-signing.transcript"]));
}

const ROLLOVER_FILE: &str = "root-rollover.toml";

/// The example root ceremony rewritten for the successor root: key root-2031, its own CA
/// directory, its own outputs.
fn successor_root_file(t: &TestToken) -> &'static str {
    let text = fs::read_to_string(t.path(ROOT_FILE)).unwrap();
    let text = text
        .replace("root-2026", "root-2031")
        .replace("Example Root CA 2026", "Example Root CA 2031")
        .replace("out/root-ca", "out/root-2031-ca")
        .replace(
            "out/root-ceremony.transcript",
            "out/root-2031-ceremony.transcript",
        )
        .replace("out/root.crt", "out/root-2031.crt")
        .replace("out/root.crl", "out/root-2031.crl");
    fs::write(t.path("root-2031.toml"), text).unwrap();
    "root-2031.toml"
}

/// Events of a CA directory's log, by name.
fn events_in(t: &TestToken, ca_dir: &str) -> Vec<serde_json::Value> {
    fs::read_to_string(t.path(format!("{ca_dir}/audit.jsonl")))
        .unwrap()
        .lines()
        .map(json)
        .collect()
}

#[test_needs(softhsm2)]
fn rollover_cross_signs_the_successor_root() {
    let t = setup();
    run_yes(&t, ROOT_FILE);
    let successor = successor_root_file(&t);
    run_yes(&t, successor);

    let plan = assert_ok(&t.run(["ceremony", "plan", ROLLOVER_FILE]));
    assert_mentions(&plan, &["Cross-certificate for CN=Example Root CA 2031"]);
    assert_mentions(&plan, &["self-signature verified"]);
    assert_mentions(&plan, &["out/root-2031.crt SHA-256"]);
    let out = run_yes(&t, ROLLOVER_FILE);
    assert_mentions(&out, &["cross-certificate for CN=Example Root CA 2031"]);
    assert_ok(&t.run(["ceremony", "verify", "out/root-rollover.transcript"]));

    // Same subject, key and SKI as the 2031 root; issuer and AKI are the 2026 root's.
    let new_root = t.path("out/root-2031.crt");
    let old_root = t.path("out/root.crt");
    let cross = t.path("out/root-2031-by-2026.crt");
    let c = Certificate::from_der(&cert_der(&cross)).unwrap();
    let n = Certificate::from_der(&cert_der(&new_root)).unwrap();
    let o = Certificate::from_der(&cert_der(&old_root)).unwrap();
    assert_eq!(
        c.tbs_certificate().subject().to_der().unwrap(),
        n.tbs_certificate().subject().to_der().unwrap()
    );
    assert_eq!(
        c.tbs_certificate().issuer().to_der().unwrap(),
        o.tbs_certificate().subject().to_der().unwrap()
    );
    assert_eq!(cert_spki_sha256(&cross), cert_spki_sha256(&new_root));
    let ski = |p: &Path| {
        let text = openssl_x509(p, &["-noout", "-ext", "subjectKeyIdentifier"]);
        text.lines().last().unwrap().trim().to_string()
    };
    assert_eq!(ski(&cross), ski(&new_root));
    openssl_verify(&old_root, &[], &cross).unwrap();
    lint_cert(&cross);
    assert_no_findings_at_or_above_warning(&pkilint_chain(&old_root, &cross), &[]);

    // The point of the rollover: a CA under the 2031 root validates for a relying party that
    // trusts only the 2026 root, through the cross-certificate, and for one that trusts 2031.
    let req = t.mkdir("requests-2031");
    let (csr, _key) = make_csr(&req, "cluster-d", CsrAlg::P256, "Cluster D CA");
    let key = t.key_uri("root-2031");
    assert_ok(&t.run(in_ca_dir(
        "out/root-2031-ca",
        intermediate_args(&key, csr.to_str().unwrap(), "2y", "out/cluster-d.crt"),
    )));
    let int = t.path("out/cluster-d.crt");
    openssl_verify(&old_root, &[&cross], &int).unwrap();
    openssl_verify(&new_root, &[], &int).unwrap();
    assert!(
        openssl_verify(&old_root, &[], &int).is_err(),
        "without the cross-certificate the 2026 root alone does not vouch for it"
    );
    let chain = t.path("out/cluster-d-chain.pem");
    concat_files(&chain, &[&int, &cross, &old_root]);
    certtool_verify_chain(&chain).unwrap();

    // Recorded as a cross-certificate, listed, exportable and revocable like any issued one.
    let events = events_in(&t, "out/root-ca");
    let rec = events
        .iter()
        .find(|e| e["event"] == "cross_signed")
        .expect("a cross_signed record");
    assert_eq!(rec["cert"]["profile"], "cross");
    let serial = rec["cert"]["serial"].as_str().unwrap().to_string();
    let list = assert_ok(&t.run(["--ca-dir", "out/root-ca", "list"]));
    assert_mentions(&list, &[&serial]);
    assert_ok(&t.run([
        "--ca-dir",
        "out/root-ca",
        "export",
        "--serial",
        &serial,
        "--out",
        "out/exported-cross.crt",
    ]));
    assert_eq!(
        cert_der(&t.path("out/exported-cross.crt")),
        cert_der(&cross)
    );
    openssl_crl_ok(&t, "out/root-after-rollover.crl", "out/root.crt");
    lint_arl(&t.path("out/root-after-rollover.crl"));

    // Run again: done, nothing signed twice.
    let again = run_yes(&t, ROLLOVER_FILE);
    assert_mentions(&again, &["nothing to do"]);
    assert_eq!(
        events_in(&t, "out/root-ca")
            .iter()
            .filter(|e| e["event"] == "cross_signed")
            .count(),
        1
    );
}

/// `openssl x509 -req` in `dir`: signs `csr` with `key` (self-signed when `ca` is None, else
/// under the certificate `ca`), extensions from `ext`, into `out`.
fn openssl_sign_req(dir: &Path, csr: &Path, key: &Path, ca: Option<&Path>, ext: &Path, out: &Path) {
    let mut args = vec!["x509", "-req", "-in", csr.to_str().unwrap()];
    match ca {
        None => args.extend(["-key", key.to_str().unwrap()]),
        Some(ca) => args.extend(["-CA", ca.to_str().unwrap(), "-CAkey", key.to_str().unwrap()]),
    }
    args.extend([
        "-days",
        "30",
        "-out",
        out.to_str().unwrap(),
        "-extfile",
        ext.to_str().unwrap(),
    ]);
    let o = run_in(dir, "openssl", &args);
    assert!(o.status.success(), "{}", stderr_of(&o));
}

#[test_needs(softhsm2)]
fn cross_sign_plans_that_must_fail() {
    let t = setup();
    run_yes(&t, ROOT_FILE);
    let rollover = |name: &str, cert: &str, extra: &str| {
        let text = fs::read_to_string(t.path(ROLLOVER_FILE)).unwrap();
        let text = text.replace(
            "certificate = \"out/root-2031.crt\"",
            &format!("certificate = \"{cert}\"\n{extra}"),
        );
        fs::write(t.path(name), text).unwrap();
        name.to_string()
    };

    // Nothing to cross-sign yet.
    let e = plan_fails(&t, ROLLOVER_FILE);
    assert_mentions(&e, &["out/root-2031.crt"]);

    // This CA's own certificate.
    let f = rollover("own.toml", "out/root.crt", "");
    assert_mentions(&plan_fails(&t, &f), &["signing CA's own key"]);

    // Not a CA: a leaf signed by openssl under a throwaway CA.
    let req = t.mkdir("leafy");
    let (ca_csr, ca_key) = make_csr(&req, "other-ca", CsrAlg::P256, "Other CA");
    let other_ca = req.join("other-ca.crt");
    let ext = req.join("ca.ext");
    fs::write(
        &ext,
        "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    openssl_sign_req(&req, &ca_csr, &ca_key, None, &ext, &other_ca);
    let (leaf_csr, _) = make_csr(&req, "leaf", CsrAlg::P256, "Just A Leaf");
    let leaf = req.join("leaf.crt");
    let leaf_ext = req.join("leaf.ext");
    fs::write(&leaf_ext, "basicConstraints=critical,CA:false\n").unwrap();
    openssl_sign_req(&req, &leaf_csr, &ca_key, Some(&other_ca), &leaf_ext, &leaf);
    let f = rollover(
        "leaf.toml",
        "leafy/leaf.crt",
        "certificate_issuer = \"leafy/other-ca.crt\"",
    );
    assert_mentions(&plan_fails(&t, &f), &["not a CA certificate"]);

    // A subordinate CA without its issuer: its key holder is not proven.
    let (sub_csr, _) = make_csr(&req, "sub", CsrAlg::P256, "Other Sub CA");
    let sub = req.join("sub.crt");
    openssl_sign_req(&req, &sub_csr, &ca_key, Some(&other_ca), &ext, &sub);
    let f = rollover("sub.toml", "leafy/sub.crt", "");
    assert_mentions(
        &plan_fails(&t, &f),
        &["not self-signed", "certificate_issuer"],
    );
    // With its issuer named, it plans.
    let f = rollover(
        "sub-ok.toml",
        "leafy/sub.crt",
        "certificate_issuer = \"leafy/other-ca.crt\"",
    );
    let plan = assert_ok(&t.run(["ceremony", "plan", &f]));
    assert_mentions(&plan, &["issued by CN=Other CA, signature verified"]);

    // A self-signed CA certificate whose signature is damaged.
    let der = cert_der(&other_ca);
    let mut bad = der.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    fs::write(req.join("bad.crt"), to_pem("CERTIFICATE", &bad)).unwrap();
    let f = rollover("bad.toml", "leafy/bad.crt", "");
    assert_mentions(&plan_fails(&t, &f), &["does not verify"]);
}

/// A `csr` step: an intermediate kept on the token asks a root elsewhere (here the example
/// root, signing with `hsmca sign`) for its certificate. The request is recorded and sealed,
/// the run resumes as done, and the certificate the root issues chains and lints clean.
#[test_needs(softhsm2)]
fn a_csr_step_asks_another_ca_to_certify_the_key() {
    let t = setup();
    run_yes(&t, ROOT_FILE);
    fs::write(
        t.path("inter.toml"),
        r#"
[ceremony]
name = "Example Intermediate 2026: key and request"
operator = "Alice Kim"
ca_dir = "out/inter-ca"
transcript = "out/inter.transcript"

[token]
label = "Example Root CA"

[ca_key]
label = "inter-2026"

[[step]]
kind = "generate_key"
label = "inter-2026"
algorithm = "ecdsa-p256"

[[step]]
kind = "csr"
subject = "CN=Example Intermediate 2026,O=Example,C=KR"
path_len = 0
out = "out/inter.csr"
"#,
    )
    .unwrap();
    let plan = assert_ok(&t.run(["ceremony", "plan", "inter.toml"]));
    assert_mentions(
        &plan,
        &[
            "Certificate request",
            "CN=Example Intermediate 2026",
            "pathLenConstraint 0",
        ],
    );
    run_yes(&t, "inter.toml");
    // No CA certificate for the key yet: verify says what to pass.
    let err = assert_fails(&t.run(["ceremony", "verify", "out/inter.transcript"]));
    assert_mentions(&err, &["--ca-cert"]);
    let kinds: Vec<String> = events_in(&t, "out/inter-ca")
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let created = kinds.iter().position(|k| k == "request_created");
    assert!(created.is_some(), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("seal"), "{kinds:?}");
    assert_mentions(
        &assert_ok(&t.run(["ceremony", "run", "--yes", "inter.toml"])),
        &["nothing to do"],
    );
    let req = run_in(
        t.dir(),
        "openssl",
        &["req", "-in", "out/inter.csr", "-verify", "-noout"],
    );
    assert!(req.status.success(), "{}", stderr_of(&req));

    assert_ok(&t.run([
        "--ca-dir",
        "out/root-ca",
        "sign",
        "--key",
        &t.key_uri("root-2026"),
        "--profile",
        "intermediate",
        "--path-len",
        "0",
        "--csr",
        "out/inter.csr",
        "--validity",
        "5y",
        "--out",
        "inter.crt",
    ]));
    let root = t.path("out/root.crt");
    openssl_verify(&root, &[], &t.path("inter.crt")).unwrap();
    lint_cert(&t.path("inter.crt"));
    assert_ok(&t.run([
        "ceremony",
        "verify",
        "out/inter.transcript",
        "--ca-cert",
        "inter.crt",
    ]));
}

/// Both example ceremonies with a CA key of `alg` (signing with RSASSA-PSS when `pss`): every
/// certificate passes `openssl verify -x509_strict`, `certtool --verify-chain` and pkilint,
/// every CRL openssl and pkilint, and each names the signature algorithm `sig_name` (which
/// the plan the witnesses read calls `plan_name`).
fn example_ceremonies_with(alg: &str, pss: bool, sig_name: &str, plan_name: &str) {
    let t = setup();
    let key_line = if pss {
        "label = \"root-2026\"\npss = true"
    } else {
        "label = \"root-2026\""
    };
    for f in [ROOT_FILE, CLUSTER_FILE] {
        let text = fs::read_to_string(t.path(f)).unwrap();
        let edited = text
            .replacen(
                "algorithm = \"ecdsa-p384\"",
                &format!("algorithm = \"{alg}\""),
                1,
            )
            .replacen("label = \"root-2026\"", key_line, 1);
        fs::write(t.path(f), edited).unwrap();
    }
    let plan = assert_ok(&t.run(["ceremony", "plan", ROOT_FILE]));
    assert_mentions(&plan, &[&format!("Signature:  {plan_name}")]);
    run_yes(&t, ROOT_FILE);
    run_yes(&t, CLUSTER_FILE);
    let root = t.path("out/root.crt");
    let mut certs = vec![root.clone()];
    certs.extend(["a", "b", "c"].map(|c| t.path(format!("out/cluster-{c}.crt"))));
    for crt in &certs {
        let text = openssl_x509(crt, &["-text"]);
        assert!(text.contains(sig_name), "{}: {text}", crt.display());
        openssl_verify(&root, &[], crt).unwrap();
        let chain = crt.with_extension("certtool-chain.pem");
        if crt == &root {
            concat_files(&chain, &[&root]);
        } else {
            concat_files(&chain, &[crt, &root]);
        }
        certtool_verify_chain(&chain).unwrap();
        lint_cert(crt);
        if crt != &root {
            // pkilint's chain linter checks RSA signatures as PKCS#1 v1.5 only (see
            // tests/policy.rs `judged`); openssl and certtool verified the PSS signature.
            let allowed: &[&str] = if pss {
                &["pkix.signature_verification_failed"]
            } else {
                &[]
            };
            assert_no_findings_at_or_above_warning(&pkilint_chain(&root, crt), allowed);
        }
    }
    for crl in ["out/root.crl", "out/root-after-clusters.crl"] {
        openssl_crl_ok(&t, crl, "out/root.crt");
        lint_arl(&t.path(crl));
    }
    for transcript in [
        "out/root-ceremony.transcript",
        "out/cluster-signing.transcript",
    ] {
        assert_ok(&t.run(["ceremony", "verify", transcript]));
    }
}

#[test_needs(softhsm2)]
fn example_ceremonies_with_an_ecdsa_p256_key() {
    example_ceremonies_with(
        "ecdsa-p256",
        false,
        "ecdsa-with-SHA256",
        "ECDSA with SHA-256",
    );
}

#[test_needs(softhsm2)]
fn example_ceremonies_with_an_rsa_3072_key() {
    example_ceremonies_with(
        "rsa-3072",
        false,
        "sha256WithRSAEncryption",
        "RSA PKCS#1 v1.5 with SHA-256",
    );
}

#[test_needs(softhsm2)]
fn example_ceremonies_with_an_rsa_3072_key_signing_pss() {
    example_ceremonies_with("rsa-3072", true, "rsassaPss", "RSA-PSS with SHA-256");
}
