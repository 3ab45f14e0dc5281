//! The CA directory (`--ca-dir`): issued-certificate records, revocation, the root's CRL (an
//! ARL, linted by pkilint) and the sealed audit log.

use crate::common::*;
use std::fs;
use std::process::Output;

/// Token + P-384 root key; `root create` and an intermediate `sign`, both recorded in `ca/`.
/// Returns (token, key URI, intermediate serial as openssl prints it).
fn recorded_ca() -> (TestToken, String, String) {
    let t = TestToken::new("Root CA");
    let key = t.generate_key("root-2026", "ecdsa-p384");
    assert_ok(&t.run(in_ca_dir(
        "ca",
        root_create_args(&key.uri, "20y", "root.crt"),
    )));
    t.inter_csr("Cluster A Intermediate CA");
    assert_ok(&t.run(in_ca_dir(
        "ca",
        sign_args(&key.uri, "root.crt", "cluster/inter.csr", "inter.crt"),
    )));
    let serial = openssl_x509(&t.path("inter.crt"), &["-serial"])
        .trim()
        .strip_prefix("serial=")
        .unwrap()
        .to_string();
    (t, key.uri, serial)
}

/// `hsmca --ca-dir ca crl --key URI --next-update NEXT_UPDATE --out OUT`.
fn run_crl(t: &TestToken, uri: &str, next_update: &str, out: &str) -> Output {
    t.run([
        "--ca-dir",
        "ca",
        "crl",
        "--key",
        uri,
        "--next-update",
        next_update,
        "--out",
        out,
    ])
}

#[test_needs(softhsm2)]
fn revoke_crl_and_audit_log() {
    let (t, uri, serial) = recorded_ca();
    let root = t.path("root.crt");
    let root_serial = openssl_x509(&root, &["-serial"]);
    let root_serial = root_serial.trim().strip_prefix("serial=").unwrap();

    let list = assert_ok(&t.run(["--ca-dir", "ca", "list"]));
    assert!(
        list.to_uppercase().contains(&serial.to_uppercase()),
        "{serial} not listed:\n{list}"
    );
    assert!(
        list.to_uppercase().contains(&root_serial.to_uppercase()),
        "{list}"
    );

    // export gives back the same certificate.
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "export",
        "--serial",
        &serial,
        "--out",
        "exported.crt",
    ]));
    assert_eq!(
        cert_der(&t.path("exported.crt")),
        cert_der(&t.path("inter.crt"))
    );

    // An empty CRL first, then one listing the revoked intermediate.
    assert_ok(&run_crl(&t, &uri, "90d", "empty.crl"));
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]));
    assert_ok(&run_crl(&t, &uri, "90d", "root.crl"));

    for crl in ["empty.crl", "root.crl"] {
        let crl = t.path(crl);
        // Signature by the root.
        let out = run_command(
            std::process::Command::new("openssl")
                .args(["crl", "-noout", "-in"])
                .arg(&crl)
                .arg("-CAfile")
                .arg(&root),
        );
        assert_ok(&out);
        assert_mentions(&stderr_of(&out), &["verify OK"]);
        // A root's CRL covers CA certificates only: pkilint lints it as an ARL.
        assert_no_findings_at_or_above_warning(
            &pkilint("lint_crl", &["-t", "ARL", "-p", "PKIX"], &crl),
            &[],
        );
    }

    // cRLNumber strictly increases; the revoked serial is listed with its reason.
    let crl_number = |name: &str| {
        let out = assert_ok(&run_in(
            t.dir(),
            "openssl",
            &["crl", "-noout", "-crlnumber", "-in", name],
        ));
        u128::from_str_radix(
            out.trim()
                .strip_prefix("crlNumber=0x")
                .unwrap_or(out.trim()),
            16,
        )
        .unwrap_or_else(|e| panic!("crlNumber in {out:?}: {e}"))
    };
    assert!(crl_number("root.crl") > crl_number("empty.crl"));
    let text = assert_ok(&run_in(
        t.dir(),
        "openssl",
        &["crl", "-noout", "-text", "-in", "root.crl"],
    ));
    assert!(
        text.to_uppercase().contains(&serial.to_uppercase()),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    let empty = assert_ok(&run_in(
        t.dir(),
        "openssl",
        &["crl", "-noout", "-text", "-in", "empty.crl"],
    ));
    assert!(empty.contains("No Revoked Certificates"), "{empty}");

    // openssl now refuses the intermediate when it checks the CRL.
    let bundle = t.path("root-and-crl.pem");
    concat_files(&bundle, &[&root, &t.path("root.crl")]);
    let out = run_in(
        t.dir(),
        "openssl",
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "root-and-crl.pem",
            "inter.crt",
        ],
    );
    assert!(!out.status.success(), "revoked intermediate still verifies");
    assert_mentions(&(stdout_of(&out) + &stderr_of(&out)), &["revoked"]);

    // The audit log verifies.
    assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
}

#[test_needs(softhsm2)]
fn crl_next_update_is_bounded() {
    let (t, uri, _) = recorded_ca();
    let before = t.snapshot();
    let out = run_crl(&t, &uri, "400d", "root.crl");
    assert_mentions(&assert_fails(&out), &["365", "next"]);
    assert!(!t.path("root.crl").exists());
    let after = t.snapshot();
    assert!(
        after
            .keys()
            .all(|p| before.contains_key(p) || p.starts_with("ca")),
        "a refused CRL wrote outside the CA directory"
    );
}

#[test_needs(softhsm2)]
fn tampered_audit_log_is_detected() {
    let (t, _, serial) = recorded_ca();
    let log = t.path("ca/audit.jsonl");
    let text = fs::read_to_string(&log).expect("ca/audit.jsonl");
    assert!(text.lines().count() >= 2, "{text}");
    // Change one hex digit of the intermediate's serial wherever the log mentions it.
    let upper = serial.to_uppercase();
    let lower = serial.to_lowercase();
    let flip = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[4] = if c[4] == '0' { '1' } else { '0' };
        c.into_iter().collect::<String>()
    };
    let tampered = text
        .replace(&upper, &flip(&upper))
        .replace(&lower, &flip(&lower));
    assert_ne!(tampered, text, "the log does not mention serial {serial}");
    fs::write(&log, tampered).unwrap();
    let out = t.run(["--ca-dir", "ca", "log", "verify"]);
    assert!(!out.status.success(), "a tampered audit log verified");
    assert!(
        stderr_of(&out).starts_with("error: "),
        "{}",
        stderr_of(&out)
    );
}
