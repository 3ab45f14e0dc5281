//! End-to-end: key on a SoftHSM2 token → root → cluster intermediate (from a CSR) → a leaf the
//! cluster signs itself with openssl; every result checked by openssl, certtool and pkilint.

use crate::common::*;
use std::fs;
use std::path::Path;

/// The whole flow for one root key algorithm.
///
/// `inter_alg` is the cluster intermediate's key (made outside the token, in `cluster/`).
/// `cabf_root_lint`: run `lint_cabf_serverauth_cert -t ROOT-CA` on the root (the Baseline
/// Requirements allow only RSA and ECDSA P-256/P-384/P-521 keys, so not for Ed25519).
fn full_chain(alg: &str, inter_alg: CsrAlg, cabf_root_lint: bool) {
    let t = TestToken::new("Root CA");
    let key = t.root_ca(alg);
    let root = t.path("root.crt");
    assert_eq!(
        cert_spki_sha256(&root),
        key.spki_sha256,
        "the root's public key should be the token key `key generate` reported"
    );

    // The cluster side: its own key and CSR, never on the token.
    let cluster = t.mkdir("cluster");
    let (_, inter_key) = make_csr(&cluster, "inter", inter_alg, "Cluster A Intermediate CA");
    assert_ok(
        &t.run(
            sign_args(&key.uri, "root.crt", "cluster/inter.csr", "inter.crt")
                .with(&["--chain-out", "chain.pem"]),
        ),
    );
    let inter = t.path("inter.crt");
    assert_eq!(
        cert_spki_sha256(&inter),
        key_file_spki_sha256(&inter_key),
        "the intermediate should certify the CSR's key"
    );

    // The chain file: the new certificate, then its issuer.
    let chain_text = fs::read_to_string(t.path("chain.pem")).unwrap();
    let chain: Vec<Vec<u8>> = pem_blocks(&chain_text)
        .into_iter()
        .map(|(label, der)| {
            assert_eq!(label, "CERTIFICATE");
            der
        })
        .collect();
    assert_eq!(
        chain,
        vec![cert_der(&inter), cert_der(&root)],
        "chain.pem should hold inter.crt then root.crt"
    );

    // Profile details, as openssl reads them.
    let text = openssl_x509(&inter, &["-text"]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("DNS:example.com"), "{text}");
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");

    // The cluster signs a leaf with its intermediate's key file.
    let (leaf_csr, _) = make_csr(&cluster, "leaf", CsrAlg::P256, "www.example.com");
    let leaf = cluster.join("leaf.crt");
    openssl_sign_leaf(&inter, &inter_key, &leaf_csr, &["www.example.com"], &leaf).unwrap();

    openssl_verify(&root, &[&inter], &leaf).expect("openssl verify root → intermediate → leaf");
    openssl_verify(&root, &[], &inter).expect("openssl verify root → intermediate");
    let full = cluster.join("full-chain.pem");
    concat_files(&full, &[&leaf, &t.path("chain.pem")]);
    certtool_verify_chain(&full).expect("certtool --verify-chain leaf, intermediate, root");
    certtool_verify_chain(&t.path("chain.pem")).expect("certtool --verify-chain chain.pem");

    // The name constraint is really there: a leaf outside it must not verify.
    let (evil_csr, _) = make_csr(&cluster, "evil", CsrAlg::P256, "www.example.org");
    let evil = cluster.join("evil.crt");
    openssl_sign_leaf(&inter, &inter_key, &evil_csr, &["www.example.org"], &evil).unwrap();
    let err = openssl_verify(&root, &[&inter], &evil)
        .expect_err("a leaf outside the permitted DNS subtree must not verify");
    assert_mentions(&err, &["permitted subtree", "name constraint"]);

    // pkilint.
    assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], &root), &[]);
    assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], &inter), &[]);
    if cabf_root_lint {
        assert_no_findings_at_or_above_warning(
            &pkilint("lint_cabf_serverauth_cert", &["-t", "ROOT-CA"], &root),
            &[],
        );
    }
    assert_no_findings_at_or_above_warning(&pkilint_chain(&root, &inter), &[]);

    // inspect shows the right fingerprint.
    for cert in [&root, &inter] {
        assert_inspect_fingerprint(&t, cert);
    }
}

#[track_caller]
fn assert_inspect_fingerprint(t: &TestToken, cert: &Path) {
    let out = assert_ok(&t.run([Path::new("inspect"), cert]));
    let line = out
        .lines()
        .find(|l| l.contains("SHA-256 fingerprint:"))
        .unwrap_or_else(|| panic!("no `SHA-256 fingerprint:` in inspect output:\n{out}"));
    let shown = normalize_hex(line.split_once("SHA-256 fingerprint:").unwrap().1);
    assert_eq!(
        shown,
        cert_sha256_fingerprint(cert),
        "inspect output:\n{out}"
    );
}

#[test_needs(softhsm2)]
fn chain_ecdsa_p256() {
    full_chain("ecdsa-p256", CsrAlg::P256, true);
}

#[test_needs(softhsm2)]
fn chain_ecdsa_p384() {
    full_chain("ecdsa-p384", CsrAlg::P384, true);
}

#[test_needs(softhsm2)]
fn chain_rsa_2048() {
    full_chain("rsa-2048", CsrAlg::Rsa2048, true);
}

#[test_needs(softhsm2)]
fn chain_rsa_3072() {
    full_chain("rsa-3072", CsrAlg::P256, true);
}

#[test_needs(softhsm2)]
fn chain_ed25519() {
    full_chain("ed25519", CsrAlg::Ed25519, false);
}

/// RSA-4096 key generation is slow on SoftHSM2: one root, linted, no chain.
#[test_needs(softhsm2)]
fn root_rsa_4096() {
    let t = TestToken::new("Root CA");
    let key = t.generate_key("root-4096", "rsa-4096");
    t.create_root(&key.uri, "20y", "root.crt");
    let root = t.path("root.crt");
    assert_eq!(cert_spki_sha256(&root), key.spki_sha256);
    openssl_verify(&root, &[], &root).expect("self-signed root verifies");
    assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], &root), &[]);
    assert_no_findings_at_or_above_warning(
        &pkilint("lint_cabf_serverauth_cert", &["-t", "ROOT-CA"], &root),
        &[],
    );
}

#[test_needs(softhsm2)]
fn token_list_shows_token_and_algorithms() {
    let t = TestToken::new("Listed Token");
    let out = assert_ok(&t.run(["token", "list"]));
    assert!(out.contains("Listed Token"), "{out}");
    assert!(out.contains("SoftHSM"), "model should be shown:\n{out}");
    let algs = out
        .lines()
        .find_map(|l| l.split_once("algorithms:").map(|(_, a)| a.to_string()))
        .unwrap_or_else(|| panic!("no `algorithms:` line:\n{out}"));
    for alg in [
        "ecdsa-p256",
        "ecdsa-p384",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
        "ed25519",
    ] {
        assert!(algs.contains(alg), "{alg} missing from `algorithms:{algs}`");
    }
}

#[test_needs(softhsm2)]
fn key_generate_outputs_and_key_list() {
    let t = TestToken::new("Root CA");
    let out = assert_ok(&t.run(
        key_generate_args("Root CA", "root-2026", "ecdsa-p384").with(&[
            "--id",
            "0a0b0c",
            "--public-key-out",
            "root-2026.pub.pem",
        ]),
    ));
    let key = parse_generated_key(&out);
    assert!(
        key.uri.contains("token=Root%20CA"),
        "uri should name the token: {}",
        key.uri
    );
    assert!(key.uri.contains("object=root-2026"), "{}", key.uri);
    assert!(key.uri.contains("type=private"), "{}", key.uri);
    let id = key
        .uri
        .split(';')
        .find_map(|p| p.strip_prefix("id="))
        .unwrap_or_else(|| panic!("no id in {}", key.uri));
    assert_eq!(normalize_hex(id), "0a0b0c", "{}", key.uri);

    // The public key file is the key the token holds.
    let pubfile = t.path("root-2026.pub.pem");
    assert_eq!(pubkey_sha256(&pubfile), key.spki_sha256);
    assert!(private_key_material(&fs::read(&pubfile).unwrap()).is_none());

    // The printed URI works as --key as printed, and so does the short form.
    t.create_root(&key.uri, "1y", "a.crt");
    t.create_root(&t.key_uri("root-2026"), "1y", "b.crt");

    let list = assert_ok(&t.run(["key", "list", "--token", "Root CA"]));
    assert!(list.contains("root-2026"), "{list}");
    assert!(list.to_lowercase().contains("sensitive"), "{list}");
    assert!(list.contains("ecdsa-p384"), "{list}");
}

#[test_needs(softhsm2)]
fn root_subject_serial_and_profile() {
    let t = TestToken::new("Root CA");
    let key = t.root_ca("ecdsa-p256");
    t.create_root(&key.uri, "20y", "root2.crt");
    let root = t.path("root.crt");

    // RFC 4514 string "CN=..,O=..,C=KR" is encoded C, O, CN: RFC 2253 output reverses it back.
    let subject = openssl_x509(&root, &["-subject", "-nameopt", "RFC2253"]);
    assert_eq!(subject.trim(), format!("subject={ROOT_SUBJECT}"));
    let issuer = openssl_x509(&root, &["-issuer", "-nameopt", "RFC2253"]);
    assert_eq!(issuer.trim(), format!("issuer={ROOT_SUBJECT}"));

    // Serial: positive, at most 20 octets, at least 64 bits, different each time.
    let serial = |p: &Path| {
        let s = openssl_x509(p, &["-serial"]);
        s.trim().strip_prefix("serial=").unwrap().to_string()
    };
    let s1 = serial(&root);
    let s2 = serial(&t.path("root2.crt"));
    assert_ne!(s1, s2, "two roots got the same serial");
    for s in [&s1, &s2] {
        assert!(s.len() >= 16, "serial {s} shorter than 64 bits");
        let octets = s.len().div_ceil(2) + usize::from(s.len() % 2 == 0 && s.as_bytes()[0] >= b'8');
        assert!(octets <= 20, "serial {s} needs {octets} DER octets");
    }

    let text = openssl_x509(&root, &["-text"]);
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(
        !text.contains("Extended Key Usage"),
        "a root has no EKU:\n{text}"
    );
    assert!(
        !text.contains("pathlen"),
        "no path length unless asked:\n{text}"
    );
    assert!(
        text.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{text}"
    );
}

#[test_needs(softhsm2)]
fn root_validity_is_inclusive() {
    let t = TestToken::new("Root CA");
    let key = t.generate_key("root-2026", "ecdsa-p256");
    t.create_root(&key.uri, "90d", "root90d.crt");
    let (nb, na) = cert_validity(&t.path("root90d.crt"));
    assert_eq!(
        na - nb,
        90 * 86400 - 1,
        "90d means NotAfter = NotBefore + 90 days - 1 s"
    );

    t.create_root(&key.uri, "12h", "root12h.crt");
    let (nb, na) = cert_validity(&t.path("root12h.crt"));
    assert_eq!(na - nb, 12 * 3600 - 1);

    // Explicit dates, crossing 2050: UTCTime before, GeneralizedTime from 2050 on.
    assert_ok(&t.run([
        "root",
        "create",
        "--key",
        &key.uri,
        "--subject",
        ROOT_SUBJECT,
        "--not-before",
        "2026-01-01T00:00:00Z",
        "--not-after",
        "2055-06-30T23:59:59Z",
        "--out",
        "root-dates.crt",
    ]));
    let p = t.path("root-dates.crt");
    assert_eq!(cert_validity(&p), (1_767_225_600, 2_698_012_799));
    let der = cert_der(&p);
    let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(b"\x17\x0d260101000000Z"),
        "NotBefore should be UTCTime 260101000000Z"
    );
    assert!(
        has(b"\x18\x0f20550630235959Z"),
        "NotAfter should be GeneralizedTime 20550630235959Z"
    );
}

/// A root (ALG) and `inter.crt` for a P-256 request `CN=cn`, signed for 5 years with
/// `--profile intermediate --path-len 0` and `extra` (its name constraints, a subject).
fn constrained_intermediate(alg: &str, cn: &str, extra: &[&str]) -> TestToken {
    let t = TestToken::new("Root CA");
    let key = t.root_ca(alg);
    t.inter_csr(cn);
    let args = intermediate_args(&key.uri, "cluster/inter.csr", "5y", "inter.crt")
        .with(&["--issuer", "root.crt"])
        .with(extra);
    assert_ok(&t.run(args));
    t
}

#[test_needs(softhsm2)]
fn intermediate_with_ip_constraints() {
    let t = constrained_intermediate(
        "ecdsa-p384",
        "Cluster B Intermediate CA",
        &[
            "--permit-dns",
            "cluster-b.example.com",
            "--permit-dns",
            "example.net",
            "--permit-ip",
            "10.0.0.0/8",
            "--permit-ip",
            "fd00::/8",
            "--subject",
            "CN=Cluster B Intermediate CA,O=Example,C=KR",
        ],
    );
    let inter = t.path("inter.crt");
    let text = openssl_x509(&inter, &["-text"]);
    for needle in [
        "DNS:cluster-b.example.com",
        "DNS:example.net",
        "IP:10.0.0.0/255.0.0.0",
        "IP:FD00:0:0:0:0:0:0:0/FF00:0:0:0:0:0:0:0",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let subject = openssl_x509(&inter, &["-subject", "-nameopt", "RFC2253"]);
    assert_eq!(
        subject.trim(),
        "subject=CN=Cluster B Intermediate CA,O=Example,C=KR"
    );
    openssl_verify(&t.path("root.crt"), &[], &inter).unwrap();
    assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], &inter), &[]);
    assert_no_findings_at_or_above_warning(&pkilint_chain(&t.path("root.crt"), &inter), &[]);
}

#[test_needs(softhsm2)]
fn global_flags_pin_file_and_module() {
    let t = TestToken::new("Root CA");
    fs::write(t.path("pin.txt"), USER_PIN).unwrap();
    let module = t.module.to_str().unwrap().to_string();
    let no_env = [("HSMCA_PIN", None), ("HSMCA_MODULE", None)];
    // Global flags before the subcommand...
    let out = assert_ok(
        &t.run_env(
            &no_env,
            [
                strings(&["--pin-file", "pin.txt", "--module", &module]),
                key_generate_args("Root CA", "root-2026", "ecdsa-p256"),
            ]
            .concat(),
        ),
    );
    let key = parse_generated_key(&out);
    // ...and after it.
    assert_ok(&t.run_env(
        &no_env,
        root_create_args(&key.uri, "1y", "root.crt").with(&[
            "--pin-file",
            "pin.txt",
            "--module",
            &module,
        ]),
    ));
    openssl_verify(&t.path("root.crt"), &[], &t.path("root.crt")).unwrap();
}

/// A module p11-kit registers is found by its name: `--module softhsm2` and RFC 7512's
/// `module-name=softhsm2` in a key URI (Debian's softhsm2-common registers it); a name nobody
/// registers is refused with the names that are.
#[test_needs(softhsm2)]
fn modules_registered_with_p11_kit_are_found_by_name() {
    let t = TestToken::new("Root CA");
    let no_module = [("HSMCA_MODULE", None)];
    let list = assert_ok(&t.run_env(&no_module, ["--module", "softhsm2", "token", "list"]));
    assert_mentions(&list, &["Root CA"]);
    let key = parse_generated_key(&assert_ok(
        &t.run_env(
            &no_module,
            [
                strings(&["--module", "softhsm2"]),
                key_generate_args("Root CA", "root-2026", "ecdsa-p256"),
            ]
            .concat(),
        ),
    ));
    let by_name = format!("{}?module-name=softhsm2", key.uri);
    assert_ok(&t.run_env(&no_module, root_create_args(&by_name, "1y", "root.crt")));
    openssl_verify(&t.path("root.crt"), &[], &t.path("root.crt")).unwrap();
    let err = assert_fails(&t.run_env(&no_module, ["--module", "no-such-hsm", "token", "list"]));
    assert_mentions(&err, &["no-such-hsm"]);
    assert_mentions(&err, &["softhsm2"]);
}

#[test_needs(softhsm2)]
fn force_replaces_an_existing_output() {
    let t = TestToken::new("Root CA");
    let key = t.generate_key("root-2026", "ecdsa-p256");
    fs::write(t.path("root.crt"), b"old contents\n").unwrap();
    assert_ok(&t.run(root_create_args(&key.uri, "1y", "root.crt").with(&["--force"])));
    openssl_verify(&t.path("root.crt"), &[], &t.path("root.crt")).unwrap();
}

/// Kubernetes needs single-label names (`kubernetes`), which pkilint reports as
/// `pkix.invalid_domain_name_syntax`: a reviewed exception for those names only.
#[test_needs(softhsm2)]
fn single_label_name_constraint_is_the_only_lint_exception() {
    let t = constrained_intermediate(
        "ecdsa-p256",
        "Cluster K Intermediate CA",
        &[
            "--permit-dns",
            "kubernetes",
            "--permit-dns",
            "cluster.local",
        ],
    );
    let findings = pkilint("lint_pkix_cert", &[], &t.path("inter.crt"));
    for f in &findings {
        if f.code == "pkix.invalid_domain_name_syntax" {
            assert!(
                f.message
                    .as_deref()
                    .unwrap_or_default()
                    .contains("\"kubernetes\""),
                "the exception covers single-label names only: {f}"
            );
        }
    }
    assert_no_findings_at_or_above_warning(&findings, &["pkix.invalid_domain_name_syntax"]);
}
