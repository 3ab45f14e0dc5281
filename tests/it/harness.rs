//! Checks of the test harness itself (tests/common), independent of hsmca: the verifiers,
//! pkilint parsing, the spy's login count and the private-key scanner must catch what they are
//! there to catch, or the other tests prove nothing.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[track_caller]
fn openssl(dir: &Path, args: &[&str]) -> String {
    assert_ok(&run_in(dir, "openssl", args))
}

/// An openssl-made P-384 root (`/C=KR/O=Example/CN=Test Root`) and a P-256 intermediate.
fn openssl_pki(dir: &Path) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "r.key",
            "-subj",
            "/C=KR/O=Example/CN=Test Root",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "r.crt",
        ],
    );
    let (csr, _) = make_csr(dir, "i", CsrAlg::P256, "Test Intermediate");
    fs::write(
        dir.join("i.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\n\
         keyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n\
         nameConstraints=critical,permitted;DNS:example.com\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            "r.crt",
            "-CAkey",
            "r.key",
            "-days",
            "365",
            "-extfile",
            "i.ext",
            "-out",
            "i.crt",
        ],
    );
    (dir.join("r.crt"), dir.join("i.crt"))
}

#[test]
fn verifiers_accept_good_chains_and_reject_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (root, inter) = openssl_pki(dir.path());
    let (leaf_csr, _) = make_csr(dir.path(), "leaf", CsrAlg::P256, "www.example.com");
    let leaf = dir.path().join("leaf.crt");
    openssl_sign_leaf(
        &inter,
        &dir.path().join("i.key"),
        &leaf_csr,
        &["www.example.com"],
        &leaf,
    )
    .unwrap();
    openssl_verify(&root, &[&inter], &leaf).unwrap();
    let chain = dir.path().join("chain.pem");
    concat_files(&chain, &[&leaf, &inter, &root]);
    certtool_verify_chain(&chain).unwrap();

    // Missing intermediate, wrong root, chain without its root.
    assert!(openssl_verify(&root, &[], &leaf).is_err());
    assert!(openssl_verify(&inter, &[], &root).is_err());
    concat_files(&chain, &[&leaf, &inter]);
    assert!(certtool_verify_chain(&chain).is_err());
}

#[test]
fn pkilint_findings_are_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let (root, inter) = openssl_pki(dir.path());
    let findings = pkilint("lint_pkix_cert", &[], &root);
    assert!(
        findings.iter().any(
            |f| f.code == "pkix.subject_key_identifier_method_1_identified"
                && f.severity == Severity::Info
        ),
        "{findings:?}"
    );
    assert_no_findings_at_or_above_warning(&findings, &[]);
    assert_no_findings_at_or_above_warning(&pkilint_chain(&root, &inter), &[]);

    // CN before O and C breaks the Baseline Requirements' RDN order: an ERROR.
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "bad.key",
            "-subj",
            "/CN=Bad Root/O=Example/C=KR",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "bad.crt",
        ],
    );
    let bad = dir.path().join("bad.crt");
    let findings = pkilint("lint_cabf_serverauth_cert", &["-t", "ROOT-CA"], &bad);
    assert!(
        findings
            .iter()
            .any(|f| f.code == "cabf.serverauth.invalid_rdn_order"
                && f.severity == Severity::Error),
        "{findings:?}"
    );
    let caught =
        std::panic::catch_unwind(|| assert_no_findings_at_or_above_warning(&findings, &[]));
    assert!(caught.is_err());
    assert_no_findings_at_or_above_warning(&findings, &["cabf.serverauth.invalid_rdn_order"]);
}

#[test_needs(softhsm2)]
fn trace_and_spy_count_logins() {
    let t = TestToken::new("Spy Token").with_spy();
    let out = run_command(
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(faultmod())
            .args([
                "--token-label",
                "Spy Token",
                "--login",
                "--pin",
                "wrong-pin",
            ])
            .arg("--list-objects")
            .env("SOFTHSM2_CONF", &t.conf)
            .env("HSMCA_FAULT_REAL", spy_module())
            .env("HSMCA_FAULT_TRACE", t.trace_log())
            .env("PKCS11SPY", &t.module)
            .env("PKCS11SPY_OUTPUT", t.spy_log()),
    );
    assert!(!out.status.success());
    // Both saw it (login_calls checks that they agree), the trace with its return value.
    assert_eq!(t.login_calls(), 1);
    let trace = fs::read_to_string(t.trace_log()).unwrap();
    assert!(
        trace
            .lines()
            .any(|l| l.contains(" C_Login CKR_PIN_INCORRECT ") && !l.contains("wrong-pin")),
        "{trace}"
    );
    t.clear_call_logs();
    assert_eq!(t.login_calls(), 0);
}

#[test]
fn private_key_scanner_finds_keys_and_ignores_public_material() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (root, inter) = openssl_pki(d);
    let mut keys: Vec<PathBuf> = Vec::new();
    for (name, args) in [
        (
            "ec",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
        ),
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
        ("ed", &["-algorithm", "ED25519"][..]),
    ] {
        let pem = format!("{name}.pem");
        let mut a = vec!["genpkey"];
        a.extend_from_slice(args);
        a.extend(["-out", &pem]);
        openssl(d, &a);
        let der = format!("{name}.der");
        openssl(d, &["pkey", "-in", &pem, "-outform", "DER", "-out", &der]);
        let pubpem = format!("{name}.pub.pem");
        openssl(d, &["pkey", "-in", &pem, "-pubout", "-out", &pubpem]);
        let pubder = format!("{name}.pub.der");
        openssl(
            d,
            &[
                "pkey", "-in", &pem, "-pubout", "-outform", "DER", "-out", &pubder,
            ],
        );
        keys.push(d.join(&pem));
        keys.push(d.join(&der));
        // Public halves must not be flagged.
        for p in [pubpem, pubder] {
            let why = private_key_material(&fs::read(d.join(&p)).unwrap());
            assert!(why.is_none(), "{p} flagged: {why:?}");
        }
    }
    // Traditional encodings: SEC1 and PKCS#1, DER.
    openssl(
        d,
        &[
            "ec",
            "-in",
            "ec.pem",
            "-outform",
            "DER",
            "-out",
            "ec.sec1.der",
        ],
    );
    openssl(
        d,
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-outform",
            "DER",
            "-out",
            "rsa.pkcs1.der",
        ],
    );
    keys.push(d.join("ec.sec1.der"));
    keys.push(d.join("rsa.pkcs1.der"));
    for k in &keys {
        let bytes = fs::read(k).unwrap();
        assert!(
            private_key_material(&bytes).is_some(),
            "{} not flagged",
            k.display()
        );
        // Also when embedded in something else, and PEM-wrapped under another label.
        let mut wrapped = b"prefix ".to_vec();
        wrapped.extend(&bytes);
        assert!(private_key_material(&wrapped).is_some());
        if bytes[0] == 0x30 {
            let pem = to_pem("SOMETHING", &bytes);
            assert!(private_key_material(pem.as_bytes()).is_some());
            let json = format!("{{\"key\":\"{}\"}}", base64_encode(&bytes));
            assert!(
                private_key_material(json.as_bytes()).is_some(),
                "{} in JSON base64 not flagged",
                k.display()
            );
        }
    }
    // Certificates (PEM and DER) and CSRs are public.
    for p in [&root, &inter, &d.join("i.csr")] {
        let bytes = fs::read(p).unwrap();
        assert!(private_key_material(&bytes).is_none(), "{}", p.display());
        for (_, der) in pem_blocks(&String::from_utf8_lossy(&bytes)) {
            assert!(private_key_material(&der).is_none(), "{}", p.display());
        }
    }
}

#[test]
fn base64_round_trip() {
    for n in 0..70u8 {
        let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
        let pem = to_pem("TEST", &data);
        let blocks = pem_blocks(&pem);
        assert_eq!(blocks, vec![("TEST".to_string(), data)]);
    }
}
