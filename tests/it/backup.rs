//! M-of-N backup of a CA key (issue 16): generated in backup form, wrapped under a trusted
//! key-encryption key whose shares go to custodians, restored onto a fresh token from any M
//! of them; bad share sets and changed files are refused before the token is touched.

use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const WRAP_PROBE_ENV: &str = "HSMCA_TEST_WRAP_PROBE";
const ROOT_URI: &str = "pkcs11:token=Root%20CA;object=root-2027";

/// A second token in `t`'s SoftHSM2 store (the same SOFTHSM2_CONF), same PINs.
fn add_token(t: &TestToken, label: &str) {
    assert_ok(&run_command(
        Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", USER_PIN, "--so-pin", SO_PIN])
            .env("SOFTHSM2_CONF", &t.conf),
    ));
}

fn with_so_pin(t: &TestToken, args: &[&str]) -> Output {
    t.run_env(&[("HSMCA_SO_PIN", Some(SO_PIN))], args)
}

/// `key generate --backup 2-of-3` of an ecdsa-p384 key `root-2027` on "Root CA", recorded in
/// CA directory `ca`, with its root certificate `root.crt`.
fn backed_up_root(t: &TestToken) -> String {
    let out = with_so_pin(
        t,
        &[
            "--ca-dir",
            "ca",
            "key",
            "generate",
            "--token",
            "Root CA",
            "--label",
            "root-2027",
            "--algorithm",
            "ecdsa-p384",
            "--backup",
            "2-of-3",
            "--backup-out",
            "root.wrapped",
            "--shares-out",
            "shares",
        ],
    );
    let text = assert_ok(&out);
    assert!(
        text.contains("extractable only wrapped under a trusted key"),
        "{text}"
    );
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "root",
        "create",
        "--key",
        ROOT_URI,
        "--subject",
        "CN=Backup Test Root,O=hsmca tests",
        "--validity",
        "10y",
        "--out",
        "root.crt",
    ]));
    text
}

fn restore(t: &TestToken, token: &str, shares: &[&str]) -> Output {
    let mut args = vec![
        "--ca-dir",
        "ca",
        "key",
        "restore",
        "--token",
        token,
        "--wrapped",
        "root.wrapped",
    ];
    for s in shares {
        args.extend(["--share", s]);
    }
    with_so_pin(t, &args)
}

fn private_keys_on(t: &TestToken, token: &str) -> String {
    assert_ok(&t.run(["key", "list", "--token", token]))
}

#[test_needs(softhsm2)]
fn a_2_of_3_backup_restores_from_every_pair_and_the_restored_key_signs_for_the_old_root() {
    let t = TestToken::new("Root CA");
    let generated = backed_up_root(&t);
    let shares: Vec<String> = (1..=3)
        .map(|i| format!("shares/share-{i}-of-3.txt"))
        .collect();
    for s in &shares {
        let text = fs::read_to_string(t.path(s)).unwrap();
        assert!(text.starts_with("hsmca-share-v1 key="), "{text}");
        // No share is printed when they go to files, and none is recorded.
        let digits = text.split_whitespace().nth(5).unwrap();
        assert!(
            !generated.contains(digits),
            "a share was printed:\n{generated}"
        );
    }
    for (n, pair) in [[0, 1], [0, 2], [1, 2]].iter().enumerate() {
        let token = format!("New {n}");
        add_token(&t, &token);
        let out = restore(&t, &token, &[&shares[pair[0]], &shares[pair[1]]]);
        let text = assert_ok(&out);
        assert!(
            text.contains("restored ecdsa-p384 key \"root-2027\""),
            "{text}"
        );
        let list = private_keys_on(&t, &token);
        assert!(list.contains("ca-key-policy: ok"), "{list}");
        assert!(list.contains("wrap_with_trusted=true"), "{list}");
        assert!(list.contains("sensitive=true"), "{list}");
        assert!(list.contains("modifiable=false"), "{list}");
        // The restored key signs a CRL that verifies with the original root certificate.
        let crl = format!("crl-{n}.pem");
        let uri = format!("pkcs11:token=New%20{n};object=root-2027");
        assert_ok(&t.run([
            "--ca-dir",
            "ca",
            "crl",
            "--key",
            &uri,
            "--next-update",
            "7d",
            "--out",
            &crl,
        ]));
        let verify = run_in(
            t.dir(),
            "openssl",
            &["crl", "-in", &crl, "-CAfile", "root.crt", "-noout"],
        );
        assert!(
            stderr_of(&verify).contains("verify OK") || stdout_of(&verify).contains("verify OK"),
            "{}",
            stderr_of(&verify)
        );
    }
    // The log records the backup and each restore, and never a share.
    let log = fs::read_to_string(t.path("ca/audit.jsonl")).unwrap();
    assert_eq!(
        log.matches("\"event\":\"key_backed_up\"").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("\"event\":\"key_restored\"").count(),
        3,
        "{log}"
    );
    for s in &shares {
        let text = fs::read_to_string(t.path(s)).unwrap();
        for group in text.split_whitespace().skip(5).take(8) {
            assert!(
                !log.contains(group),
                "share digits {group} in the audit log"
            );
        }
    }
    assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
}

#[test_needs(softhsm2)]
fn bad_shares_and_a_changed_wrapped_file_are_refused_and_nothing_is_created() {
    let t = TestToken::new("Root CA");
    backed_up_root(&t);
    add_token(&t, "Fresh");
    // Shares of another backup (another key on the same token).
    assert_ok(&with_so_pin(
        &t,
        &[
            "key",
            "generate",
            "--token",
            "Root CA",
            "--label",
            "other",
            "--algorithm",
            "ecdsa-p256",
            "--backup",
            "2-of-3",
            "--backup-out",
            "other.wrapped",
            "--shares-out",
            "other-shares",
        ],
    ));
    let one = "shares/share-1-of-3.txt";
    let two = "shares/share-2-of-3.txt";
    // A share with one digit changed.
    let text = fs::read_to_string(t.path(two)).unwrap();
    let mut words: Vec<String> = text.split_whitespace().map(String::from).collect();
    let group = &mut words[6];
    let first = group.remove(0);
    group.insert(0, if first == '0' { '1' } else { '0' });
    fs::write(t.path("typo.txt"), words.join(" ")).unwrap();
    // The wrapped file with one byte of the wrapped key changed.
    let wrapped = fs::read_to_string(t.path("root.wrapped")).unwrap();
    let at = wrapped.find("wrapped = \"").unwrap() + 12;
    let mut changed = wrapped.clone().into_bytes();
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    fs::write(t.path("changed.wrapped"), changed).unwrap();
    let log_before = fs::read(t.path("ca/audit.jsonl")).unwrap();

    let cases: [(&str, Vec<&str>, &str, &[&str]); 4] = [
        ("one share alone", vec![one], "root.wrapped", &["needs 2"]),
        (
            "a changed digit",
            vec![one, "typo.txt"],
            "root.wrapped",
            &["checksum", "mistyped"],
        ),
        (
            "a share of another backup",
            vec![one, "other-shares/share-2-of-3.txt"],
            "root.wrapped",
            &["another backup"],
        ),
        (
            "a changed wrapped file",
            vec![one, two],
            "changed.wrapped",
            &["does not hold together"],
        ),
    ];
    for (what, shares, file, expect) in cases {
        let mut args = vec![
            "--ca-dir",
            "ca",
            "key",
            "restore",
            "--token",
            "Fresh",
            "--wrapped",
            file,
        ];
        for s in &shares {
            args.extend(["--share", s]);
        }
        let err = assert_fails(&with_so_pin(&t, &args));
        assert_mentions(&err, expect);
        assert!(
            private_keys_on(&t, "Fresh").contains("no private keys"),
            "{what}: something was left on the token"
        );
        assert_eq!(
            fs::read(t.path("ca/audit.jsonl")).unwrap(),
            log_before,
            "{what}: the log changed"
        );
    }
    // A wrong SO PIN: refused by the token, nothing created.
    let err = assert_fails(&t.run_env(
        &[("HSMCA_SO_PIN", Some("wrong-so-pin"))],
        [
            "key",
            "restore",
            "--token",
            "Fresh",
            "--wrapped",
            "root.wrapped",
            "--share",
            one,
            "--share",
            two,
        ],
    ));
    assert_mentions(&err, &["security officer PIN"]);
    assert!(private_keys_on(&t, "Fresh").contains("no private keys"));
}

#[test_needs(softhsm2)]
fn a_token_without_backup_support_or_a_bad_m_of_n_is_refused_before_the_key_exists() {
    let t = TestToken::new("Root CA");
    for bad in ["1-of-3", "4-of-3", "3of5", "2-of-256"] {
        let err = assert_fails(&with_so_pin(
            &t,
            &[
                "key",
                "generate",
                "--token",
                "Root CA",
                "--label",
                "k",
                "--algorithm",
                "ecdsa-p256",
                "--backup",
                bad,
                "--backup-out",
                "k.wrapped",
            ],
        ));
        assert_mentions(&err, &["M-of-N"]);
    }
    // A wrong SO PIN stops it before the key is generated.
    let err = assert_fails(&t.run_env(
        &[("HSMCA_SO_PIN", Some("wrong-so-pin"))],
        [
            "key",
            "generate",
            "--token",
            "Root CA",
            "--label",
            "k",
            "--algorithm",
            "ecdsa-p256",
            "--backup",
            "2-of-3",
            "--backup-out",
            "k.wrapped",
        ],
    ));
    assert_mentions(&err, &["security officer PIN"]);
    assert!(private_keys_on(&t, "Root CA").contains("no private keys"));
    assert!(!t.path("k.wrapped").exists());
    // A token that refuses a trusted key-encryption key (the fault module answers the SO's
    // C_CreateObject as a token without CKA_TRUSTED would, CKR_ATTRIBUTE_READ_ONLY = 0x10):
    // refused before the key exists.
    let module = faultmod().to_str().unwrap().to_string();
    let real = softhsm_module().to_str().unwrap().to_string();
    let err = assert_fails(&t.run_env(
        &[
            ("HSMCA_SO_PIN", Some(SO_PIN)),
            ("HSMCA_MODULE", Some(&module)),
            ("HSMCA_FAULT_REAL", Some(&real)),
            ("HSMCA_FAULT_FN", Some("C_CreateObject")),
            ("HSMCA_FAULT_RV", Some("0x10")),
        ],
        [
            "key",
            "generate",
            "--token",
            "Root CA",
            "--label",
            "k",
            "--algorithm",
            "ecdsa-p256",
            "--backup",
            "2-of-3",
            "--backup-out",
            "k.wrapped",
        ],
    ));
    assert_mentions(&err, &["cannot keep a wrapped backup"]);
    assert!(private_keys_on(&t, "Root CA").contains("no private keys"));
    assert!(!t.path("k.wrapped").exists());
}

/// Not a test: run as a subprocess by [`wrapping_under_an_untrusted_key_is_refused_by_the_token`]
/// (SoftHSM2 reads the SOFTHSM2_CONF of its process). Creates an AES key as the user (not
/// trusted) and asks C_WrapKey to wrap the CA key under it; prints `WRAP <result>`.
#[test]
#[ignore = "helper run as a subprocess by the untrusted-wrap test"]
fn untrusted_wrap_subprocess() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;

    let Ok(spec) = std::env::var(WRAP_PROBE_ENV) else {
        return;
    };
    let [module, token, object] = spec.split('\t').collect::<Vec<_>>()[..] else {
        panic!("bad {WRAP_PROBE_ENV}: {spec:?}");
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
    let session = pkcs11.open_rw_session(slot).expect("open session");
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .expect("login");
    let key = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(object.as_bytes().to_vec()),
        ])
        .expect("find")[0];
    let kek = session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Wrap(true),
            Attribute::Value(vec![7u8; 32]),
        ])
        .expect("create an untrusted AES key");
    match session.wrap_key(&Mechanism::AesKeyWrapPad, kek, key) {
        Ok(blob) => println!("WRAP ok {} bytes", blob.len()),
        Err(e) => println!("WRAP refused {e:?}"),
    }
    // Setting CKA_TRUSTED as the user is refused too.
    match session.update_attributes(kek, &[Attribute::Trusted(true)]) {
        Ok(()) => println!("TRUSTED set"),
        Err(e) => println!("TRUSTED refused {e:?}"),
    }
}

#[test_needs(softhsm2)]
fn wrapping_under_an_untrusted_key_is_refused_by_the_token() {
    let t = TestToken::new("Root CA");
    backed_up_root(&t);
    let spec = [t.module.to_str().unwrap(), "Root CA", "root-2027"].join("\t");
    let out = run_command(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "backup::untrusted_wrap_subprocess",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(WRAP_PROBE_ENV, spec)
            .env("SOFTHSM2_CONF", &t.conf),
    );
    let stdout = assert_ok(&out);
    assert!(stdout.contains("WRAP refused"), "{stdout}");
    assert!(stdout.contains("KeyNotWrappable"), "{stdout}");
    assert!(
        stdout.contains("TRUSTED refused Pkcs11(AttributeReadOnly"),
        "{stdout}"
    );
}

#[test_needs(softhsm2)]
fn no_pin_so_pin_or_share_reaches_a_file_and_no_secret_value_is_read() {
    let t = TestToken::new("Root CA").with_spy();
    backed_up_root(&t);
    add_token(&t, "Fresh");
    assert_ok(&restore(
        &t,
        "Fresh",
        &["shares/share-1-of-3.txt", "shares/share-3-of-3.txt"],
    ));
    // pkcs11-spy logs every call with its template (the key-encryption key's value included,
    // which is why it is a test tool only); no C_GetAttributeValue asks for a secret value.
    let spy = fs::read_to_string(t.spy_log()).unwrap();
    assert!(
        spy.contains("C_WrapKey") && spy.contains("C_UnwrapKey"),
        "the spy saw no wrap"
    );
    let calls: Vec<&str> = spy
        .split("C_GetAttributeValue")
        .skip(1)
        .map(|call| call.split(": C_").next().unwrap_or_default())
        .collect();
    let object = |call: &str| {
        call.split("hObject = ")
            .nth(1)
            .and_then(|r| r.lines().next())
            .map(str::to_string)
    };
    // hsmca's log head is a data object whose CKA_VALUE it reads: not a secret.
    let log_heads: Vec<String> = calls
        .iter()
        .filter(|c| c.contains("log-head"))
        .filter_map(|c| object(c))
        .collect();
    let secret_reads: Vec<&&str> = calls
        .iter()
        .filter(|c| !object(c).is_some_and(|o| log_heads.contains(&o)))
        .filter(|c| {
            [
                "CKA_VALUE ",
                "CKA_PRIVATE_EXPONENT",
                "CKA_PRIME_1",
                "CKA_COEFFICIENT",
            ]
            .iter()
            .any(|a| c.contains(a))
        })
        .collect();
    assert!(
        secret_reads.is_empty(),
        "secret values read: {secret_reads:?}"
    );
    let shares: Vec<String> = (1..=3)
        .map(|i| fs::read_to_string(t.path(format!("shares/share-{i}-of-3.txt"))).unwrap())
        .collect();
    for (file, bytes) in files_in(&t.path("ca")) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(
            !text.contains(USER_PIN) && !text.contains(SO_PIN),
            "a PIN in {}",
            file.display()
        );
        for share in &shares {
            let digits = share.split_whitespace().nth(5).unwrap();
            assert!(!text.contains(digits), "a share in {}", file.display());
        }
    }
    let wrapped = fs::read_to_string(t.path("root.wrapped")).unwrap();
    assert!(!wrapped.contains(USER_PIN) && !wrapped.contains(SO_PIN));
    assert_no_private_key(Path::new(&t.path("root.wrapped")));
}

fn assert_no_private_key(p: &Path) {
    let bytes = fs::read(p).unwrap();
    assert!(
        private_key_material(&bytes).is_none(),
        "{} holds a private key",
        p.display()
    );
}
