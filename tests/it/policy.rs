//! The issuance policy, against SoftHSM2, as an attacker and a careless operator would meet
//! it: every refusal names its cause, writes nothing and is recorded as `request_refused`;
//! what is issued passes openssl (-x509_strict), certtool and pkilint.
//!
//! The constrained intermediate here keeps its key on the token: `hsmca csr` makes its
//! request, the root certifies it, and then it signs leaves itself.

use std::fs;

use crate::common::*;

const ROOT: &str = "pkcs11:token=Root%20CA;object=root-2026";
const INTER: &str = "pkcs11:token=Root%20CA;object=inter-2026";

/// A root key of `alg` and its certificate `root.crt`, both recorded in `ca/`.
fn recorded_root(alg: &str) -> TestToken {
    let t = TestToken::new("Root CA");
    assert_ok(&t.run(in_ca_dir(
        "ca",
        key_generate_args("Root CA", "root-2026", alg),
    )));
    assert_ok(&t.run(in_ca_dir("ca", root_create_args(ROOT, "10y", "root.crt"))));
    t
}

/// A root (`root.crt`, recorded in `ca/`) and an intermediate on the same token
/// (`inter.crt`, recorded in `inter-ca/`) permitted DNS:example.com and IP:10.0.0.0/8.
fn token_intermediate() -> TestToken {
    let t = recorded_root("ecdsa-p384");
    t.generate_key("inter-2026", "ecdsa-p256");
    let out = assert_ok(&t.run([
        "--ca-dir",
        "inter-ca",
        "csr",
        "--key",
        INTER,
        "--subject",
        "CN=Token Intermediate CA,O=Example,C=KR",
        "--path-len",
        "0",
        "--out",
        "inter.csr",
    ]));
    assert_mentions(&out, &["signature verified"]);
    assert_eq!(
        records(&t, "inter-ca", "request_created"),
        1,
        "the CSR's signature by the CA key is recorded"
    );
    assert_ok(&t.run(in_ca_dir(
        "ca",
        intermediate_args(ROOT, "inter.csr", "5y", "inter.crt").with(&[
            "--permit-dns",
            "example.com",
            "--permit-ip",
            "10.0.0.0/8",
        ]),
    )));
    assert_eq!(cert_spki_sha256(&t.path("inter.crt")), {
        let csr_pub = run_command(std::process::Command::new("openssl").args([
            "req",
            "-in",
            t.path("inter.csr").to_str().unwrap(),
            "-noout",
            "-pubkey",
        ]));
        fs::write(t.path("inter.pub"), stdout_of(&csr_pub)).unwrap();
        pubkey_sha256(&t.path("inter.pub"))
    });
    t
}

/// How many records of `event` the log of CA directory `dir` holds.
fn records(t: &TestToken, dir: &str, event: &str) -> usize {
    fs::read_to_string(t.path(dir).join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("\"event\":\"{event}\"")))
        .count()
}

/// `sign` of a server leaf by the token intermediate, recorded in `inter-ca/`.
fn leaf_args(csr: &str, out: &str, names: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "--ca-dir",
        "inter-ca",
        "sign",
        "--key",
        INTER,
        "--issuer",
        "inter.crt",
        "--csr",
        csr,
        "--profile",
        "server",
        "--validity",
        "90d",
        "--out",
        out,
    ]);
    args.extend(names.iter().map(|s| s.to_string()));
    args
}

/// The command fails naming `cause`, writes `out` nowhere, changes no file but the log, and
/// the log gains one `request_refused`.
#[track_caller]
fn refused(t: &TestToken, args: &[String], out: &str, cause: &[&str]) {
    let before = records(t, "inter-ca", "request_refused");
    let files = t.snapshot();
    let stderr = assert_fails(&t.run(args));
    assert_mentions(&stderr, cause);
    assert!(!t.path(out).exists(), "{out} was written: {stderr}");
    let after = t.snapshot();
    for (p, bytes) in &after {
        if !p.starts_with("inter-ca") {
            assert_eq!(files.get(p), Some(bytes), "{} changed", p.display());
        }
    }
    assert_eq!(
        records(t, "inter-ca", "request_refused"),
        before + 1,
        "the refusal is not recorded: {stderr}"
    );
}

#[test_needs(softhsm2)]
fn leaves_outside_the_token_intermediates_constraints_are_refused() {
    let t = token_intermediate();
    let csr = |name: &str, cn: &str| {
        make_csr(&t.path("req"), name, CsrAlg::P256, cn);
        format!("req/{name}.csr")
    };
    let www = csr("www", "www.example.com");
    for (names, cause) in [
        (&["--dns", "www.evil.com"][..], "DNS:www.evil.com"),
        (
            &["--dns", "www.example.com", "--ip", "11.0.0.1"][..],
            "IP:11.0.0.1",
        ),
        (
            &["--dns", "www.example.com", "--ip", "2001:db8::1"][..],
            "IP:2001:db8::1",
        ),
    ] {
        refused(
            &t,
            &leaf_args(&www, "evil.crt", names),
            "evil.crt",
            &[cause],
        );
    }
    // A CN that reads as a host name, on a leaf with no DNS SAN.
    let evil_cn = csr("cn", "www.evil.com");
    refused(
        &t,
        &leaf_args(&evil_cn, "evil.crt", &["--ip", "10.0.0.1"]),
        "evil.crt",
        &["DNS:www.evil.com"],
    );

    // What is permitted is issued, and every verifier accepts the chain.
    assert_ok(&t.run(leaf_args(
        &www,
        "www.crt",
        &["--dns", "www.example.com", "--ip", "10.1.2.3"],
    )));
    let (root, inter, leaf) = (t.path("root.crt"), t.path("inter.crt"), t.path("www.crt"));
    openssl_verify(&root, &[&inter], &leaf).expect("openssl verify -x509_strict");
    concat_files(&t.path("full.pem"), &[&leaf, &inter, &root]);
    certtool_verify_chain(&t.path("full.pem")).expect("certtool --verify-chain");
    for cert in [&inter, &leaf] {
        assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], cert), &[]);
    }
    assert_no_findings_at_or_above_warning(&pkilint_chain(&inter, &leaf), &[]);
    assert_ok(&t.run([
        "--ca-dir",
        "inter-ca",
        "log",
        "verify",
        "--root",
        "inter.crt",
    ]));
}

#[test_needs(softhsm2)]
fn a_request_for_the_issuers_own_key_is_refused() {
    let t = token_intermediate();
    // The intermediate's own CSR, presented back to it as a leaf request.
    refused(
        &t,
        &leaf_args("inter.csr", "own.crt", &["--dns", "www.example.com"]),
        "own.crt",
        &["issuing CA's own public key"],
    );
    // The root's CA directory certified that key once: a request for it under another name is
    // refused before the token and recorded; under the same name it is a renewal.
    assert_ok(&t.run([
        "--ca-dir",
        "inter-ca",
        "csr",
        "--key",
        INTER,
        "--subject",
        "CN=Another Name CA,O=Example,C=KR",
        "--out",
        "renamed.csr",
    ]));
    let before = records(&t, "ca", "request_refused");
    let sign = |csr: &str, out: &str| {
        in_ca_dir("ca", intermediate_args(ROOT, csr, "5y", out))
            .with(&["--permit-dns", "example.com"])
    };
    assert_mentions(
        &assert_fails(&t.run(sign("renamed.csr", "renamed.crt"))),
        &["public key of a CA this CA directory certified as CN=Token Intermediate CA"],
    );
    assert!(!t.path("renamed.crt").exists());
    assert_eq!(records(&t, "ca", "request_refused"), before + 1);
    assert_ok(&t.run(sign("inter.csr", "renewed.crt")));
}

#[test_needs(softhsm2)]
fn constraints_that_permit_everyone_are_refused() {
    let t = TestToken::new("Root CA");
    t.root_ca("ecdsa-p256");
    t.inter_csr("Cluster A Int CA");
    for (flags, cause) in [
        (&["--permit-dns", "com"][..], "DNS:com is a public suffix"),
        (
            &["--permit-dns", "example.com", "--permit-dns", "co.uk"][..],
            "DNS:co.uk",
        ),
        (&["--permit-ip", "0.0.0.0/0"][..], "every IPv4 address"),
        (&["--permit-ip", "::/0"][..], "every IPv6 address"),
        (&["--permit-ip", "::ffff:0:0/96"][..], "IPv4-mapped"),
    ] {
        let args = sign_args(ROOT, "root.crt", "cluster/inter.csr", "inter.crt");
        // sign_args permits example.com; the flags under test come after it.
        let stderr = assert_fails(&t.run(args.with(flags)));
        assert_mentions(&stderr, &[cause]);
        assert!(!t.path("inter.crt").exists());
    }
}

#[test_needs(softhsm2)]
fn a_ca_constrained_in_one_form_excludes_the_other() {
    let t = TestToken::new("Root CA");
    t.root_ca("ecdsa-p256");
    t.inter_csr("Cluster A Int CA");
    assert_ok(&t.run(sign_args(
        ROOT,
        "root.crt",
        "cluster/inter.csr",
        "dns-only.crt",
    )));
    let text = openssl_x509(&t.path("dns-only.crt"), &["-text"]);
    assert_mentions(&text, &["Excluded:"]);
    assert!(
        text.contains("IP:0.0.0.0/0.0.0.0") && text.contains("IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0"),
        "{text}"
    );
    assert_ok(&t.run(
        intermediate_args(ROOT, "cluster/inter.csr", "5y", "ip-only.crt").with(&[
            "--issuer",
            "root.crt",
            "--permit-ip",
            "10.0.0.0/8",
        ]),
    ));
    let text = openssl_x509(&t.path("ip-only.crt"), &["-text"]);
    assert!(
        text.contains("Excluded:") && text.contains("DNS:"),
        "{text}"
    );
    for cert in ["dns-only.crt", "ip-only.crt"] {
        let cert = t.path(cert);
        openssl_verify(&t.path("root.crt"), &[], &cert).unwrap();
        assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], &cert), &[]);
        assert_no_findings_at_or_above_warning(&pkilint_chain(&t.path("root.crt"), &cert), &[]);
    }
}

#[test_needs(softhsm2)]
fn hostile_subjects_and_weak_keys_are_refused() {
    let t = recorded_root("ecdsa-p256");
    let sign = |csr: &str| {
        in_ca_dir("ca", intermediate_args(ROOT, csr, "5y", "out.crt"))
            .with(&["--permit-dns", "example.com"])
    };
    let refused_here = |csr: &str, cause: &[&str]| {
        let before = records(&t, "ca", "request_refused");
        let stderr = assert_fails(&t.run(sign(csr)));
        assert_mentions(&stderr, cause);
        assert!(!t.path("out.crt").exists());
        assert_eq!(records(&t, "ca", "request_refused"), before + 1, "{stderr}");
    };
    // openssl writes what the attacker asks for (-utf8 takes the bytes as they are).
    let openssl_csr = |name: &str, subj: &str, newkey: &[&str]| {
        let csr = format!("req/{name}.csr");
        fs::create_dir_all(t.path("req")).unwrap();
        let mut args = vec!["req", "-new", "-nodes", "-utf8", "-subj", subj];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&["-keyout", "req/key.pem", "-out", &csr]);
        assert_ok(&run_in(t.dir(), "openssl", &args));
        csr
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let bidi = openssl_csr("bidi", "/CN=moc.\u{202e}evil Cluster CA", &ec);
    refused_here(&bidi, &["U+202E"]);
    let email = openssl_csr("email", "/CN=Cluster CA/emailAddress=a@example.com", &ec);
    refused_here(&email, &["not one hsmca certifies"]);

    // RSA with e = 3: a key openssl makes on request, and a CA must refuse.
    let e3 = openssl_csr(
        "e3",
        "/CN=Exponent Three CA",
        &["-newkey", "rsa:2048", "-pkeyopt", "rsa_keygen_pubexp:3"],
    );
    refused_here(&e3, &["public exponent is 3"]);
    assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
}

/// Requests and certificates as other tools write them: certtool's request with its text dump
/// before the block, an issuer certificate from `openssl x509 -text`, a request with CRLF line
/// ends, and DER.
#[test_needs(softhsm2)]
fn other_tools_files_are_read() {
    let t = TestToken::new("Root CA");
    t.root_ca("ecdsa-p256");
    fs::create_dir_all(t.path("req")).unwrap();
    assert_ok(&run_in(
        t.dir(),
        "certtool",
        &[
            "--generate-privkey",
            "--key-type=ecdsa",
            "--curve=secp256r1",
            "--outfile",
            "req/ct.key",
        ],
    ));
    fs::write(
        t.path("req/ct.tmpl"),
        "cn = \"Cluster G CA\"\norganization = \"Example\"\n",
    )
    .unwrap();
    assert_ok(&run_in(
        t.dir(),
        "certtool",
        &[
            "--generate-request",
            "--load-privkey",
            "req/ct.key",
            "--template",
            "req/ct.tmpl",
            "--outfile",
            "req/ct.csr",
        ],
    ));
    let text = fs::read_to_string(t.path("req/ct.csr")).unwrap();
    assert!(
        !text.starts_with("-----BEGIN"),
        "certtool wrote no text dump:\n{text}"
    );

    // The issuer as `openssl x509 -text` prints it: the dump, then the block.
    let dump = run_command(std::process::Command::new("openssl").args([
        "x509",
        "-in",
        t.path("root.crt").to_str().unwrap(),
        "-text",
    ]));
    fs::write(t.path("root-text.crt"), stdout_of(&dump)).unwrap();
    let issuer = |args: Vec<String>| args.with(&["--issuer", "root-text.crt"]);
    assert_ok(
        &t.run(issuer(
            intermediate_args(ROOT, "req/ct.csr", "5y", "ct.crt")
                .with(&["--permit-dns", "example.com"]),
        )),
    );
    let subject = openssl_x509(&t.path("ct.crt"), &["-subject", "-nameopt", "RFC2253"]);
    assert_eq!(subject.trim(), "subject=CN=Cluster G CA,O=Example");
    openssl_verify(&t.path("root.crt"), &[], &t.path("ct.crt")).unwrap();

    // CRLF line ends, and DER.
    t.inter_csr("Cluster H CA");
    let pem = fs::read_to_string(t.path("cluster/inter.csr")).unwrap();
    fs::write(t.path("req/crlf.csr"), pem.replace('\n', "\r\n")).unwrap();
    assert_ok(&run_in(
        t.dir(),
        "openssl",
        &[
            "req",
            "-in",
            "cluster/inter.csr",
            "-outform",
            "DER",
            "-out",
            "req/der.csr",
        ],
    ));
    for (csr, out) in [("req/crlf.csr", "crlf.crt"), ("req/der.csr", "der.crt")] {
        assert_ok(&t.run(issuer(
            intermediate_args(ROOT, csr, "5y", out).with(&["--permit-dns", "example.com"]),
        )));
        openssl_verify(&t.path("root.crt"), &[], &t.path(out)).unwrap();
    }
}

/// A request that is not a regular file, or too large, is refused at once: reading a FIFO or
/// /dev/zero would block or never end.
#[test_needs(softhsm2)]
fn requests_that_are_not_small_regular_files_are_refused_without_blocking() {
    let t = TestToken::new("Root CA");
    t.root_ca("ecdsa-p256");
    fs::create_dir_all(t.path("req")).unwrap();
    assert_ok(&run_in(t.dir(), "mkfifo", &["req/fifo.csr"]));
    t.inter_csr("Cluster A Int CA");
    let mut big = fs::read_to_string(t.path("cluster/inter.csr")).unwrap();
    while big.len() <= 64 * 1024 {
        big.push_str("explanatory text line, padding the request past its limit\n");
    }
    fs::write(t.path("req/big.csr"), big).unwrap();
    for (csr, cause) in [
        ("req/fifo.csr", "is a FIFO"),
        ("/dev/zero", "is a device"),
        ("req", "is a directory"),
        ("req/big.csr", "more than the 65536"),
    ] {
        let started = std::time::Instant::now();
        let args = sign_args(ROOT, "root.crt", csr, "out.crt");
        let stderr = assert_fails(&t.run(&args));
        assert_mentions(&stderr, &[cause]);
        assert!(!t.path("out.crt").exists());
        eprintln!("{csr}: refused in {:?}", started.elapsed());
    }
}

/// No output lands in the CA directory, --force or not, by its path or through a symlinked
/// directory; refused before the token is touched, the CA directory unchanged.
#[test_needs(softhsm2)]
fn outputs_never_land_in_the_ca_directory() {
    let t = recorded_root("ecdsa-p256");
    t.inter_csr("Cluster A Int CA");
    std::os::unix::fs::symlink("ca", t.path("innocent")).unwrap();
    let before = files_in(&t.path("ca"));
    for out in [
        "ca/ca.crt",
        "ca/certs/new.crt",
        "innocent/x.crt",
        "./ca/../ca/y.crt",
    ] {
        let sign = in_ca_dir(
            "ca",
            intermediate_args(ROOT, "cluster/inter.csr", "5y", out),
        )
        .with(&["--permit-dns", "example.com", "--force"]);
        let stderr = assert_fails(&t.run(&sign));
        assert_mentions(&stderr, &["inside the CA directory"]);
    }
    let crl = strings(&[
        "--ca-dir",
        "ca",
        "crl",
        "--key",
        ROOT,
        "--next-update",
        "30d",
        "--out",
        "ca/crls/99.crl",
    ]);
    assert_mentions(&assert_fails(&t.run(&crl)), &["inside the CA directory"]);
    let export = strings(&[
        "--ca-dir", "ca", "export", "--serial", "01", "--out", "ca/x.pem",
    ]);
    let _ = t.run(&export);
    assert_eq!(before, files_in(&t.path("ca")), "the CA directory changed");
    assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
}

/// `sign ... | head -1`: the batch goes on when standard output closes, every certificate is
/// recorded, written and sealed, and the command ends with a one-line error, not a panic.
#[test_needs(softhsm2)]
fn a_closed_standard_output_ends_a_batch_cleanly() {
    use std::process::Stdio;
    let t = recorded_root("ecdsa-p256");
    for i in 0..12 {
        make_csr(
            &t.path("batch"),
            &format!("req-{i:02}"),
            CsrAlg::P256,
            &format!("Batch {i} CA"),
        );
    }
    // A pipe whose reader is gone before the command starts: every write to standard output
    // fails (EPIPE), as after `head -1` has read its line and exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = t
        .hsmca()
        .args(in_ca_dir("ca", batch_sign_args(ROOT, "batch", "out")))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
    assert_mentions(&stderr, &["standard output"]);
    assert_eq!(
        files_in(&t.path("out")).len(),
        12,
        "every certificate written"
    );
    let verify = assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
    assert!(
        !verify.contains("note:"),
        "the log is not sealed:\n{verify}"
    );
}

// ------------------------------------------------------------------------------------------------
// The issuance matrix: each profile × CA key type × one-by-one and batch signing
// ------------------------------------------------------------------------------------------------

/// Judges one issued certificate under `issuer` (`root.crt` itself, or an intermediate under
/// it): `openssl verify -x509_strict`, `certtool --verify-chain` (certificate, issuer, root),
/// pkilint alone and as a chain with its issuer.
#[track_caller]
fn judged(t: &TestToken, issuer: &std::path::Path, cert: &std::path::Path) {
    let root = t.path("root.crt");
    let under_root = issuer == root.as_path();
    let untrusted: &[&std::path::Path] = if under_root { &[] } else { &[issuer] };
    if let Err(e) = openssl_verify(&root, untrusted, cert) {
        panic!("openssl verify {}: {e}", cert.display());
    }
    let chain = cert.with_extension("chain-for-certtool.pem");
    if under_root {
        concat_files(&chain, &[cert, &root]);
    } else {
        concat_files(&chain, &[cert, issuer, &root]);
    }
    if let Err(e) = certtool_verify_chain(&chain) {
        panic!("certtool {}: {e}", cert.display());
    }
    assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], cert), &[]);
    // pkilint 0.13.3's signer-signee chain linter verifies every RSA signature as PKCS#1 v1.5
    // (pkix/certificate/certificate_key.py passes no signature algorithm to verify_signature;
    // digicert/pkilint#183 taught only the single-certificate path RSASSA-PSS), so it reports
    // a PSS signature as failing. openssl and certtool above verified that signature.
    let pss = openssl_x509(cert, &["-text"]).contains("rsassaPss");
    let allowed: &[&str] = if pss {
        &["pkix.signature_verification_failed"]
    } else {
        &[]
    };
    assert_no_findings_at_or_above_warning(&pkilint_chain(issuer, cert), allowed);
}

/// Signs `profile` with `key` (under `issuer` when given) one by one and as a two-session
/// batch of two, recording in `ca_dir`; returns the certificates.
fn sign_both_ways(
    t: &TestToken,
    ca_dir: &str,
    key: &str,
    issuer: Option<&str>,
    profile: &str,
    cn: &str,
    extra: &[&str],
) -> Vec<std::path::PathBuf> {
    let mut base = strings(&[
        "--ca-dir",
        ca_dir,
        "sign",
        "--key",
        key,
        "--profile",
        profile,
        "--validity",
        "1y",
    ])
    .with(extra);
    if let Some(issuer) = issuer {
        base = base.with(&["--issuer", issuer]);
    }
    let req = t.path(format!("req-{ca_dir}-{profile}"));
    make_csr(&req, "one", CsrAlg::P256, cn);
    let one = t.path(format!("{ca_dir}-{profile}.crt"));
    assert_ok(&t.run(base.clone().with(&[
        "--csr",
        req.join("one.csr").to_str().unwrap(),
        "--out",
        one.to_str().unwrap(),
    ])));
    let batch = t.path(format!("req-{ca_dir}-{profile}-batch"));
    make_csr(&batch, "a", CsrAlg::P384, cn);
    make_csr(&batch, "b", CsrAlg::Rsa2048, cn);
    let out_dir = t.path(format!("out-{ca_dir}-{profile}"));
    assert_ok(&t.run(base.with(&[
        "--csr-dir",
        batch.to_str().unwrap(),
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--sessions",
        "2",
    ])));
    vec![one, out_dir.join("a.crt"), out_dir.join("b.crt")]
}

/// A root key of `alg` signing with `flags` (`--pss`, `--hash`) certifies intermediates (one
/// of them kept on the token, of the same key type and signature), which issues each leaf
/// profile; both one by one and as a two-session batch. Every certificate passes every judge
/// and names the signature algorithm `sig_name`, and every one is recorded.
fn issuance_matrix(alg: &str, flags: &[&str], sig_name: &str) {
    let t = TestToken::new("Root CA");
    assert_ok(&t.run(in_ca_dir(
        "ca",
        key_generate_args("Root CA", "root-2026", alg),
    )));
    assert_ok(&t.run(in_ca_dir("ca", root_create_args(ROOT, "10y", "root.crt")).with(flags)));
    let root = t.path("root.crt");
    t.generate_key("inter-2026", alg);
    assert_ok(
        &t.run(
            strings(&[
                "--ca-dir",
                "inter-ca",
                "csr",
                "--key",
                INTER,
                "--subject",
                "CN=Matrix Intermediate CA,O=Example,C=KR",
                "--path-len",
                "1",
                "--out",
                "inter.csr",
            ])
            .with(flags),
        ),
    );
    let constraints = ["--permit-dns", "example.com", "--permit-ip", "10.0.0.0/8"];
    assert_ok(
        &t.run(
            strings(&[
                "--ca-dir",
                "ca",
                "sign",
                "--key",
                ROOT,
                "--csr",
                "inter.csr",
                "--profile",
                "intermediate",
                "--path-len",
                "1",
                "--validity",
                "5y",
                "--out",
                "inter.crt",
            ])
            .with(&constraints)
            .with(flags),
        ),
    );
    let inter = t.path("inter.crt");
    let mut judged_certs = vec![(root.clone(), inter.clone())];
    for cert in sign_both_ways(
        &t,
        "ca",
        ROOT,
        None,
        "intermediate",
        "Matrix Sub CA",
        &[&["--path-len", "0"][..], &constraints, flags].concat(),
    ) {
        judged_certs.push((root.clone(), cert));
    }
    let leaves: [(&str, &str, &[&str]); 3] = [
        ("server", "www.example.com", &["--dns", "www.example.com"]),
        ("client", "Client One", &[]),
        (
            "server-client",
            "node-1.example.com",
            &["--dns", "node-1.example.com", "--ip", "10.0.0.1"],
        ),
    ];
    for (profile, cn, extra) in leaves {
        for cert in sign_both_ways(
            &t,
            "inter-ca",
            INTER,
            Some("inter.crt"),
            profile,
            cn,
            &[extra, flags].concat(),
        ) {
            judged_certs.push((inter.clone(), cert));
        }
    }
    for (issuer, cert) in &judged_certs {
        let text = openssl_x509(cert, &["-text"]);
        assert!(text.contains(sig_name), "{}: {text}", cert.display());
        judged(&t, issuer, cert);
    }
    assert_eq!(
        records(&t, "ca", "csr_signed") + records(&t, "inter-ca", "csr_signed"),
        judged_certs.len()
    );
    assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
}

#[test_needs(softhsm2)]
fn issuance_matrix_ecdsa_p256() {
    issuance_matrix("ecdsa-p256", &[], "ecdsa-with-SHA256");
}

#[test_needs(softhsm2)]
fn issuance_matrix_ecdsa_p384() {
    issuance_matrix("ecdsa-p384", &[], "ecdsa-with-SHA384");
}

#[test_needs(softhsm2)]
fn issuance_matrix_rsa_3072() {
    issuance_matrix("rsa-3072", &[], "sha256WithRSAEncryption");
}

#[test_needs(softhsm2)]
fn issuance_matrix_rsa_3072_pss() {
    issuance_matrix("rsa-3072", &["--pss"], "rsassaPss");
}
