//! Bad input: every case must fail with exit code 1 and an `error: ... hint: ...` message that
//! names the cause, create no file, and leave existing files byte-for-byte as they were.

use crate::common::*;
use std::ffi::OsStr;
use std::fs;
use std::process::Command;

/// A token with a P-256 root key, `root.crt` (20 years) and a good CSR in `cluster/inter.csr`.
fn setup(token: TestToken) -> (TestToken, GeneratedKey) {
    let key = token.root_ca("ecdsa-p256");
    token.inter_csr("Cluster A Intermediate CA");
    (token, key)
}

/// Runs `args`, expects the contract's failure shape, no change to the files; returns stderr.
#[track_caller]
fn fails_cleanly<S: AsRef<OsStr>>(t: &TestToken, args: &[S]) -> String {
    let before = t.snapshot();
    let out = t.run(args);
    let stderr = assert_fails(&out);
    assert_same_files(&before, &t.snapshot());
    stderr
}

#[test_needs(softhsm2)]
fn tampered_csr_is_rejected() {
    let (t, key) = setup(TestToken::new("Root CA"));
    let pem = fs::read_to_string(t.path("cluster/inter.csr")).unwrap();
    let (label, mut der) = pem_blocks(&pem).remove(0);
    // Change one character of the subject CN: still well-formed DER, signature now wrong.
    let at = der
        .windows(9)
        .position(|w| w == b"Cluster A")
        .expect("CN in CSR");
    der[at] ^= 0x01;
    fs::write(t.path("cluster/tampered.csr"), to_pem(&label, &der)).unwrap();
    let stderr = fails_cleanly(
        &t,
        &sign_args(&key.uri, "root.crt", "cluster/tampered.csr", "inter.crt"),
    );
    assert_mentions(&stderr, &["signature"]);
}

#[test_needs(softhsm2)]
fn truncated_csr_pem_is_rejected() {
    let (t, key) = setup(TestToken::new("Root CA"));
    let pem = fs::read_to_string(t.path("cluster/inter.csr")).unwrap();
    let lines: Vec<&str> = pem.lines().collect();
    let half = lines[..lines.len() / 2].join("\n") + "\n";
    fs::write(t.path("cluster/truncated.csr"), half).unwrap();
    let stderr = fails_cleanly(
        &t,
        &sign_args(&key.uri, "root.crt", "cluster/truncated.csr", "inter.crt"),
    );
    assert_mentions(
        &stderr,
        &["pem", "csr", "request", "truncat", "parse", "decode", "der"],
    );
}

#[test_needs(softhsm2)]
fn truncated_issuer_pem_is_rejected() {
    let (t, key) = setup(TestToken::new("Root CA"));
    let pem = fs::read_to_string(t.path("root.crt")).unwrap();
    fs::write(t.path("root-truncated.crt"), &pem[..pem.len() / 2]).unwrap();
    let stderr = fails_cleanly(
        &t,
        &sign_args(
            &key.uri,
            "root-truncated.crt",
            "cluster/inter.csr",
            "inter.crt",
        ),
    );
    assert_mentions(
        &stderr,
        &[
            "pem",
            "certificate",
            "issuer",
            "truncat",
            "parse",
            "decode",
            "der",
        ],
    );
}

#[test_needs(softhsm2)]
fn wrong_pin_logs_in_exactly_once() {
    let (t, key) = setup(TestToken::new("Root CA").with_spy());
    let before = t.snapshot();
    t.clear_call_logs();
    let wrong = "wrong-pin-5150";
    let out = t.run_env(
        &[("HSMCA_PIN", Some(wrong))],
        root_create_args(&key.uri, "20y", "root2.crt"),
    );
    let stderr = assert_fails(&out);
    assert_same_files(&before, &t.snapshot());
    assert_mentions(&stderr, &["pin"]);
    assert_mentions(&stderr, &["incorrect", "wrong"]);
    assert!(
        !stderr.contains(wrong) && !stdout_of(&out).contains(wrong),
        "the PIN must never be printed"
    );
    assert_eq!(
        t.login_calls(),
        1,
        "a wrong PIN must be tried exactly once (spy log: {})",
        t.spy_log().display()
    );
}

#[test_needs(softhsm2)]
fn wrong_pin_from_pin_file() {
    let (t, key) = setup(TestToken::new("Root CA").with_spy());
    fs::write(t.path("pin.txt"), "not-the-pin").unwrap();
    let before = t.snapshot();
    t.clear_call_logs();
    let out = t.run_env(
        &[("HSMCA_PIN", None)],
        [
            strings(&["--pin-file", "pin.txt"]),
            root_create_args(&key.uri, "20y", "root2.crt"),
        ]
        .concat(),
    );
    let stderr = assert_fails(&out);
    assert_same_files(&before, &t.snapshot());
    assert_mentions(&stderr, &["pin"]);
    assert_eq!(t.login_calls(), 1);
}

#[test_needs(softhsm2)]
fn no_pin_source_and_no_tty_fails_without_prompting() {
    let (t, key) = setup(TestToken::new("Root CA"));
    let before = t.snapshot();
    // setsid: no controlling terminal, so /dev/tty cannot be opened.
    let mut cmd = Command::new("setsid");
    t.configure(&mut cmd);
    cmd.env_remove("HSMCA_PIN")
        .arg("-w")
        .arg(hsmca_bin())
        .args(root_create_args(&key.uri, "20y", "root2.crt"));
    let out = run_command(&mut cmd);
    let stderr = assert_fails(&out);
    assert_same_files(&before, &t.snapshot());
    assert_mentions(&stderr, &["pin", "tty", "terminal"]);
}

#[test_needs(softhsm2)]
fn unknown_token_label() {
    let (t, _) = setup(TestToken::new("Root CA"));
    let uri = "pkcs11:token=No%20Such%20Token;object=root-2026";
    let stderr = fails_cleanly(&t, &root_create_args(uri, "20y", "root2.crt"));
    assert_mentions(&stderr, &["No Such Token", "not found", "no token"]);
    let stderr = fails_cleanly(
        &t,
        &sign_args(uri, "root.crt", "cluster/inter.csr", "inter.crt"),
    );
    assert_mentions(&stderr, &["No Such Token", "not found", "no token"]);
    let stderr = fails_cleanly(&t, &key_generate_args("No Such Token", "k", "ecdsa-p256"));
    assert_mentions(&stderr, &["No Such Token", "not found", "no token"]);
    let stderr = fails_cleanly(&t, &["key", "list", "--token", "No Such Token"]);
    assert_mentions(&stderr, &["No Such Token", "not found", "no token"]);
}

#[test_needs(softhsm2)]
fn uri_naming_no_key() {
    let (t, _) = setup(TestToken::new("Root CA"));
    let uri = t.key_uri("no-such-key");
    let stderr = fails_cleanly(&t, &root_create_args(&uri, "20y", "root2.crt"));
    assert_mentions(
        &stderr,
        &["no-such-key", "not found", "no key", "no private key"],
    );
    let stderr = fails_cleanly(
        &t,
        &sign_args(&uri, "root.crt", "cluster/inter.csr", "inter.crt"),
    );
    assert_mentions(
        &stderr,
        &["no-such-key", "not found", "no key", "no private key"],
    );
}

#[test_needs(softhsm2)]
fn uri_with_pin_value_is_refused() {
    let (t, key) = setup(TestToken::new("Root CA").with_spy());
    t.clear_call_logs();
    for uri in [
        format!("{}?pin-value={USER_PIN}", t.key_uri("root-2026")),
        format!("{};pin-value={USER_PIN}", t.key_uri("root-2026")),
        format!("{}?pin-value={USER_PIN}", key.uri),
    ] {
        let stderr = fails_cleanly(&t, &root_create_args(&uri, "20y", "root2.crt"));
        assert_mentions(&stderr, &["pin-value"]);
        assert!(!stderr.contains(USER_PIN), "the PIN must not be echoed");
    }
    assert_eq!(t.login_calls(), 0, "a refused URI must not lead to a login");
}

#[test_needs(softhsm2)]
fn module_that_is_not_pkcs11() {
    let (t, key) = setup(TestToken::new("Root CA"));
    fs::write(t.path("not-a-module.so"), "this is a text file\n").unwrap();
    let not_a_lib = t.path("not-a-module.so");
    let missing = t.path("missing-module.so");
    for module in [
        "/bin/ls".to_string(),
        not_a_lib.to_str().unwrap().to_string(),
        missing.to_str().unwrap().to_string(),
    ] {
        let stderr = fails_cleanly(&t, &["--module", &module, "token", "list"]);
        assert_mentions(&stderr, &["module", "pkcs#11", "pkcs11", "library"]);
        let stderr = fails_cleanly(
            &t,
            &[
                strings(&["--module", &module]),
                root_create_args(&key.uri, "20y", "root2.crt"),
            ]
            .concat(),
        );
        assert_mentions(&stderr, &["module", "pkcs#11", "pkcs11", "library"]);
        // The same through the environment variable.
        let before = t.snapshot();
        let out = t.run_env(&[("HSMCA_MODULE", Some(&module))], ["token", "list"]);
        assert_mentions(
            &assert_fails(&out),
            &["module", "pkcs#11", "pkcs11", "library"],
        );
        assert_same_files(&before, &t.snapshot());
    }
}

#[test_needs(softhsm2)]
fn existing_outputs_are_not_touched() {
    let (t, key) = setup(TestToken::new("Root CA").with_spy());
    let keep = b"existing file: must stay as it is\n";
    fs::write(t.path("taken.crt"), keep).unwrap();
    t.clear_call_logs();

    // root create --out existing
    let stderr = fails_cleanly(&t, &root_create_args(&key.uri, "20y", "taken.crt"));
    assert_mentions(&stderr, &["exist"]);

    // sign --out existing
    let stderr = fails_cleanly(
        &t,
        &sign_args(&key.uri, "root.crt", "cluster/inter.csr", "taken.crt"),
    );
    assert_mentions(&stderr, &["exist"]);

    // sign --chain-out existing: inter.crt must not be written either.
    let args = sign_args(&key.uri, "root.crt", "cluster/inter.csr", "inter.crt")
        .with(&["--chain-out", "taken.crt"]);
    let stderr = fails_cleanly(&t, &args);
    assert_mentions(&stderr, &["exist"]);

    // key generate --public-key-out existing: no key may be created on the token either.
    let stderr = fails_cleanly(
        &t,
        &key_generate_args("Root CA", "another-key", "ecdsa-p256")
            .with(&["--public-key-out", "taken.crt"]),
    );
    assert_mentions(&stderr, &["exist"]);

    assert_eq!(fs::read(t.path("taken.crt")).unwrap(), keep);
    assert_eq!(
        t.login_calls(),
        0,
        "an existing output must be refused before any token call"
    );
    t.clear_call_logs();
    let list = assert_ok(&t.run(["key", "list", "--token", "Root CA"]));
    assert!(
        !list.contains("another-key"),
        "key generate failed but left a key behind:\n{list}"
    );
}

#[test_needs(softhsm2)]
fn validity_past_issuer_not_after() {
    let (t, key) = setup(TestToken::new("Root CA"));
    t.create_root(&key.uri, "1y", "root1y.crt");
    let stderr = fails_cleanly(
        &t,
        &sign_args(&key.uri, "root1y.crt", "cluster/inter.csr", "inter.crt"),
    );
    assert_mentions(
        &stderr,
        &[
            "notafter",
            "not after",
            "not-after",
            "validity",
            "expires",
            "issuer",
        ],
    );
}

#[test_needs(softhsm2)]
fn key_generate_refuses_an_existing_label() {
    let (t, _) = setup(TestToken::new("Root CA"));
    let stderr = fails_cleanly(&t, &key_generate_args("Root CA", "root-2026", "ecdsa-p384"));
    assert_mentions(&stderr, &["exist", "already"]);
}

#[test_needs(softhsm2)]
fn issuer_certificate_of_another_key_is_refused() {
    let (t, _) = setup(TestToken::new("Root CA"));
    let other = t.generate_key("other-key", "ecdsa-p256");
    // root.crt belongs to root-2026, not to other-key.
    let stderr = fails_cleanly(
        &t,
        &sign_args(&other.uri, "root.crt", "cluster/inter.csr", "inter.crt"),
    );
    assert_mentions(&stderr, &["match", "public key", "issuer"]);
}

#[test_needs(softhsm2)]
fn root_does_not_issue_leaves_directly() {
    let (t, key) = setup(TestToken::new("Root CA"));
    make_csr(&t.path("cluster"), "leaf", CsrAlg::P256, "www.example.com");
    for profile in ["server", "client", "server-client"] {
        let stderr = fails_cleanly(
            &t,
            &[
                "sign",
                "--key",
                &key.uri,
                "--issuer",
                "root.crt",
                "--csr",
                "cluster/leaf.csr",
                "--profile",
                profile,
                "--dns",
                "www.example.com",
                "--validity",
                "90d",
                "--out",
                "leaf.crt",
            ],
        );
        assert_mentions(&stderr, &["root", "intermediate", "end-entity"]);
    }
}
