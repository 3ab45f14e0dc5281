//! The root key stays in the token: its attributes say so, its value cannot be read, and no
//! command writes private key material anywhere.

use crate::common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROBE_ENV: &str = "HSMCA_TEST_PROBE";

/// Not a test: `probe()` runs this test binary again with only this function selected and
/// [`PROBE_ENV`] set, so that SoftHSM2 (one C_Initialize per process, configured by the
/// SOFTHSM2_CONF of the process) reads this test's token. Prints `PROBE name=value` lines.
#[test]
#[ignore = "helper run as a subprocess by the key attribute tests"]
fn pkcs11_probe_subprocess() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::object::{Attribute, AttributeType, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;

    let Ok(spec) = std::env::var(PROBE_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('\t').collect();
    let [module, token, object, pin] = parts[..] else {
        panic!("bad {PROBE_ENV}: {spec:?}");
    };
    let pkcs11 = Pkcs11::new(module).expect("load module");
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let slot = pkcs11
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .map(|i| i.label().trim_end() == token)
                .unwrap_or(false)
        })
        .expect("token not found");
    let session = pkcs11.open_ro_session(slot).expect("open session");
    session
        .login(UserType::User, Some(&AuthPin::new(pin.into())))
        .expect("login");
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(object.as_bytes().to_vec()),
        ])
        .expect("find objects");
    assert_eq!(found.len(), 1, "expected one private key labelled {object}");
    let h = found[0];
    let flags = [
        AttributeType::Token,
        AttributeType::Private,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::AlwaysSensitive,
        AttributeType::NeverExtractable,
        AttributeType::Local,
        AttributeType::Sign,
        AttributeType::Decrypt,
        AttributeType::Unwrap,
        AttributeType::Derive,
        AttributeType::SignRecover,
        AttributeType::Modifiable,
        AttributeType::Copyable,
    ];
    for attr in session.get_attributes(h, &flags).expect("get attributes") {
        // Debug of a boolean attribute is `Name(true)`.
        let d = format!("{attr:?}");
        if let Some((name, v)) = d.strip_suffix(')').and_then(|d| d.split_once('(')) {
            println!("PROBE {name}={v}");
        }
    }
    let secrets = [
        AttributeType::Value,
        AttributeType::PrivateExponent,
        AttributeType::Prime1,
        AttributeType::Prime2,
        AttributeType::Exponent1,
        AttributeType::Exponent2,
        AttributeType::Coefficient,
    ];
    let infos = session
        .get_attribute_info(h, &secrets)
        .expect("get attribute info");
    for (t, info) in secrets.iter().zip(infos) {
        println!("PROBE secret:{t:?}={info:?}");
    }
}

/// Reads a private key's attributes from the token (see [`pkcs11_probe_subprocess`]).
fn probe(t: &TestToken, object: &str) -> BTreeMap<String, String> {
    let spec = [t.module.to_str().unwrap(), &t.label, object, USER_PIN].join("\t");
    let out = run_command(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "key_security::pkcs11_probe_subprocess",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(PROBE_ENV, spec)
            .env("SOFTHSM2_CONF", &t.conf),
    );
    let stdout = assert_ok(&out);
    let map: BTreeMap<String, String> = stdout
        .lines()
        // libtest may print `test ... ` on the same line as the first PROBE.
        .filter_map(|l| l.split_once("PROBE ").map(|(_, rest)| rest))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(!map.is_empty(), "probe printed nothing:\n{stdout}");
    map
}

fn check_key_attributes(t: &TestToken, object: &str) {
    let attrs = probe(t, object);
    let expect = |name: &str, want: &str| {
        assert_eq!(
            attrs.get(name).map(String::as_str),
            Some(want),
            "{object}: CKA_{name} should be {want}; all: {attrs:#?}"
        );
    };
    for name in [
        "Token",
        "Private",
        "Sensitive",
        "AlwaysSensitive",
        "NeverExtractable",
        "Local",
        "Sign",
    ] {
        expect(name, "true");
    }
    for name in [
        "Extractable",
        "Decrypt",
        "Unwrap",
        "Derive",
        "Modifiable",
        "Copyable",
    ] {
        expect(name, "false");
    }
    // The secret parts: sensitive (CKR_ATTRIBUTE_SENSITIVE) where the key type has them, never
    // readable.
    let secrets: Vec<(&String, &String)> = attrs
        .iter()
        .filter(|(k, _)| k.starts_with("secret:"))
        .collect();
    assert!(
        secrets.iter().any(|(_, v)| v.as_str() == "Sensitive"),
        "{object}: no secret attribute reported CKR_ATTRIBUTE_SENSITIVE: {secrets:?}"
    );
    for (k, v) in &secrets {
        assert!(
            v.as_str() == "Sensitive" || v.as_str() == "TypeInvalid",
            "{object}: {k} is {v}, should be sensitive"
        );
    }

    // A second witness: pkcs11-tool's view of the same object.
    let out = assert_ok(&run_command(
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&t.module)
            .args(["--token-label", &t.label, "--login", "--pin", USER_PIN])
            .args(["--list-objects", "--type", "privkey", "--label", object])
            .env("SOFTHSM2_CONF", &t.conf),
    ));
    let access = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Access:"))
        .unwrap_or_else(|| panic!("no Access: line from pkcs11-tool:\n{out}"));
    let access: Vec<&str> = access.split(',').map(str::trim).collect();
    for want in [
        "sensitive",
        "always sensitive",
        "never extractable",
        "local",
    ] {
        assert!(
            access.contains(&want),
            "{object}: Access lacks {want}: {access:?}"
        );
    }
    assert!(!access.contains(&"extractable"), "{object}: {access:?}");
    let usage = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage:"))
        .unwrap_or_else(|| panic!("no Usage: line from pkcs11-tool:\n{out}"));
    for bad in ["decrypt", "unwrap", "derive"] {
        assert!(
            !usage.contains(bad),
            "{object}: usage {usage} includes {bad}"
        );
    }
}

#[test_needs(softhsm2)]
fn generated_keys_are_sensitive_and_never_extractable() {
    let t = TestToken::new("Root CA");
    for alg in ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"] {
        let name = format!("key-{alg}");
        t.generate_key(&name, alg);
        check_key_attributes(&t, &name);
    }
}

/// Files and outputs of a full run; returns every command's stdout+stderr.
fn full_run(t: &TestToken) -> Vec<(String, Vec<u8>)> {
    let mut outputs = Vec::new();
    let mut run = |args: Vec<String>| {
        let out = t.run(&args);
        assert_ok(&out);
        let mut all = out.stdout.clone();
        all.extend(&out.stderr);
        outputs.push((args.join(" "), all));
        stdout_of(&out)
    };
    run(strings(&["token", "list"]));
    let generated = run(key_generate_args("Root CA", "root-2026", "ecdsa-p384")
        .with(&["--public-key-out", "out/root-2026.pub.pem"]));
    let key = parse_generated_key(&generated);
    run(key_generate_args("Root CA", "root-rsa", "rsa-2048")
        .with(&["--public-key-out", "out/root-rsa.pub.pem"]));
    run(strings(&["key", "list", "--token", "Root CA"]));
    run(in_ca_dir(
        "out/ca",
        root_create_args(&key.uri, "20y", "out/root.crt"),
    ));
    t.inter_csr("Cluster A Intermediate CA");
    run(in_ca_dir(
        "out/ca",
        sign_args(
            &key.uri,
            "out/root.crt",
            "cluster/inter.csr",
            "out/inter.crt",
        )
        .with(&["--chain-out", "out/chain.pem"]),
    ));
    run(strings(&["inspect", "out/root.crt"]));
    run(strings(&["inspect", "out/inter.crt"]));
    run(strings(&[
        "--ca-dir",
        "out/ca",
        "crl",
        "--key",
        &key.uri,
        "--next-update",
        "30d",
        "--out",
        "out/root.crl",
    ]));
    run(strings(&["inspect", "out/root.crl"]));
    run(strings(&["--ca-dir", "out/ca", "list"]));
    run(strings(&["--ca-dir", "out/ca", "log", "verify"]));
    outputs
}

#[test_needs(softhsm2)]
fn no_private_key_material_is_written() {
    let t = TestToken::new("Root CA");
    fs::create_dir(t.path("out")).unwrap();
    let outputs = full_run(&t);

    // The scanner itself must see the cluster's own key (made by the test in cluster/).
    let cluster_key = fs::read(t.path("cluster/inter.key")).unwrap();
    assert!(private_key_material(&cluster_key).is_some());

    let mut hits = Vec::new();
    for (path, bytes) in files_in(t.dir()) {
        if path.starts_with("cluster") {
            continue;
        }
        if let Some(why) = private_key_material(&bytes) {
            hits.push(format!("{}: {why}", path.display()));
        }
    }
    for (cmd, bytes) in &outputs {
        if let Some(why) = private_key_material(bytes) {
            hits.push(format!("output of `hsmca {cmd}`: {why}"));
        }
    }
    assert!(
        hits.is_empty(),
        "private key material found:\n{}",
        hits.join("\n")
    );

    // Everything hsmca wrote is in out/ (plus the token store and our own files).
    let written: Vec<PathBuf> = files_in(t.dir())
        .into_keys()
        .filter(|p| {
            !p.starts_with("cluster")
                && !p.starts_with("tokens")
                && !p.starts_with("out")
                && p.as_path() != Path::new("softhsm2.conf")
        })
        .collect();
    eprintln!("files written outside out/: {written:?}");
}

#[test_needs(softhsm2)]
fn key_list_shows_protection_attributes() {
    let t = TestToken::new("Root CA");
    t.generate_key("root-2026", "ecdsa-p256");
    let list = assert_ok(&t.run(["key", "list", "--token", "Root CA"]));
    assert!(list.contains("root-2026"), "{list}");
    assert!(list.contains("ecdsa-p256"), "{list}");
    let lower = list.to_lowercase();
    assert!(lower.contains("sensitive"), "{list}");
    assert!(lower.contains("extractable"), "{list}");
}

/// Control: the checks above do catch a key that is not protected (made by pkcs11-tool as
/// extractable, and with SoftHSM2's defaults: can decrypt, unwrap and derive).
#[test_needs(softhsm2)]
fn attribute_check_catches_an_unprotected_key() {
    let t = TestToken::new("Root CA");
    assert_ok(&run_command(
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&t.module)
            .args(["--token-label", &t.label, "--login", "--pin", USER_PIN])
            .args([
                "--keypairgen",
                "--key-type",
                "EC:prime256v1",
                "--label",
                "weak",
            ])
            .arg("--extractable")
            .env("SOFTHSM2_CONF", &t.conf),
    ));
    let attrs = probe(&t, "weak");
    eprintln!("{attrs:#?}");
    assert_eq!(attrs.get("Extractable").map(String::as_str), Some("true"));
    assert_eq!(attrs.get("Decrypt").map(String::as_str), Some("true"));
    let caught = std::panic::catch_unwind(|| check_key_attributes(&t, "weak"));
    assert!(
        caught.is_err(),
        "check_key_attributes accepted an unprotected key"
    );
    // hsmca names every attribute that breaks its policy, not only the first.
    let list = assert_ok(&t.run(["key", "list", "--token", "Root CA"]));
    let fails = list
        .lines()
        .find(|l| l.contains("ca-key-policy: FAILS"))
        .unwrap_or_else(|| panic!("no failing policy line:\n{list}"));
    for attr in [
        "CKA_EXTRACTABLE",
        "CKA_NEVER_EXTRACTABLE",
        "CKA_DECRYPT",
        "CKA_DERIVE",
    ] {
        assert!(fails.contains(attr), "{attr} not named: {fails}");
    }
}
