//! Tokens other than SoftHSM2 (issue 13): tpm2-pkcs11 on a software TPM (swtpm, with the
//! tpm2-abrmd resource manager on a private D-Bus), each test with a TPM of its own;
//! openCryptoki's soft token; SoftHSM2 without hashing RSA mechanisms. The test script installs
//! the Debian packages (scripts/install-deps.sh); where they are missing these tests are
//! skipped, saying what to install (`#[test_needs]`).

use crate::common::*;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TPM_MODULE: &str = locate::TPM2_PKCS11_MODULE;
const TPM_LABEL: &str = "TPM Root CA";
const TPM_PIN: &str = "userpin1234";

/// A software TPM with a tpm2-pkcs11 token on it, and the processes that serve it.
struct TpmToken {
    dir: tempfile::TempDir,
    dbus: String,
    children: Vec<Child>,
    swtpm_pid: PathBuf,
    dbus_pid: PathBuf,
}

/// A TCP port nothing listens on now (the software TPM takes it and the next one).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65000 && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free TCP ports in a row on 127.0.0.1");
}

/// `name` (a program on PATH or an absolute path) as a command; panics naming what to install
/// when it is missing, which `#[test_needs]` has already checked for.
fn tool(name: &str) -> Command {
    let found = if name.starts_with('/') {
        Path::new(name).is_file()
    } else {
        locate::on_path(name).is_some()
    };
    assert!(
        found,
        "{name} is missing: scripts/install-deps.sh installs swtpm, tpm2-abrmd, tpm2-tools, \
         tpm2-pkcs11 and opencryptoki"
    );
    Command::new(name)
}

impl TpmToken {
    /// Brings up swtpm, a D-Bus session bus and tpm2-abrmd in a temporary directory, and makes a
    /// token labelled [`TPM_LABEL`] in a tpm2-pkcs11 store there.
    fn new() -> TpmToken {
        assert!(
            Path::new(TPM_MODULE).is_file(),
            "{TPM_MODULE} is missing: scripts/install-deps.sh installs libtpm2-pkcs11-1"
        );
        let dir = tempfile::Builder::new()
            .prefix("hsmca-tpm-")
            .tempdir()
            .unwrap();
        let p = |rel: &str| dir.path().join(rel);
        fs::create_dir_all(p("state")).unwrap();
        fs::create_dir_all(p("store")).unwrap();
        assert_ok(&run_command(
            tool("swtpm_setup")
                .args(["--tpm2", "--overwrite", "--tpmstate"])
                .arg(p("state")),
        ));
        // The ports were free a moment ago; another test's process may take one before swtpm
        // binds it (swtpm fails before it forks then): a fresh pair, a few times.
        let swtpm_pid = p("swtpm.pid");
        let mut started = None;
        for _ in 0..5 {
            let port = free_port_pair();
            let out = run_command(
                tool("swtpm")
                    .args(["socket", "--tpm2", "--daemon"])
                    .arg("--tpmstate")
                    .arg(format!("dir={}", p("state").display()))
                    .args(["--flags", "not-need-init,startup-clear"])
                    .arg("--server")
                    .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                    .arg("--ctrl")
                    .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                    .arg("--pid")
                    .arg(format!("file={}", swtpm_pid.display())),
            );
            if out.status.success() {
                started = Some(port);
                break;
            }
            eprintln!(
                "swtpm did not start on ports {port}-{}: {}",
                port + 1,
                stderr_of(&out)
            );
        }
        let port = started.expect("swtpm did not start on any of five port pairs");
        let dbus = format!("unix:path={}", p("dbus.sock").display());
        let dbus_pid = p("dbus.pid");
        let forked = assert_ok(&run_command(
            tool("dbus-daemon")
                .args(["--session", "--fork", "--print-pid"])
                .arg(format!("--address={dbus}")),
        ));
        fs::write(&dbus_pid, forked.trim()).unwrap();
        let abrmd = tool("tpm2-abrmd")
            .args(["--session", "--allow-root", "--flush-all"])
            .arg(format!("--tcti=swtpm:host=127.0.0.1,port={port}"))
            .env("DBUS_SESSION_BUS_ADDRESS", &dbus)
            .stdout(Stdio::null())
            .stderr(fs::File::create(p("abrmd.log")).unwrap())
            .spawn()
            .unwrap();
        let mut t = TpmToken {
            dbus,
            children: vec![abrmd],
            swtpm_pid,
            dbus_pid,
            dir,
        };
        // The resource manager registers on the bus a moment after it starts.
        let started = Instant::now();
        loop {
            let out = run_command(
                t.env(&mut tool("tpm2_ptool"))
                    .arg("init")
                    .arg("--path")
                    .arg(t.path("store")),
            );
            if out.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "tpm2_ptool init never succeeded: {}",
                stderr_of(&out)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_ok(&run_command(
            t.env(&mut tool("tpm2_ptool"))
                .args(["addtoken", "--pid=1", "--sopin=sopin1234"])
                .arg(format!("--userpin={TPM_PIN}"))
                .arg(format!("--label={TPM_LABEL}"))
                .arg("--path")
                .arg(t.path("store")),
        ));
        t.children.shrink_to_fit();
        t
    }

    fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The environment that reaches the TPM through the resource manager.
    fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.current_dir(self.dir.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &self.dbus)
            .env("TPM2TOOLS_TCTI", "tabrmd:bus_type=session")
            .env("TPM2_PKCS11_TCTI", "tabrmd:bus_type=session")
            .env("TPM2_PKCS11_STORE", self.path("store"))
            .env("TPM2_PKCS11_LOG_LEVEL", "0")
    }

    /// `hsmca ARGS` on the TPM's module, PIN from the environment.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = hsmca_on(self.dir.path(), TPM_MODULE, TPM_PIN);
        run_command(self.env(&mut cmd).args(args))
    }
}

impl Drop for TpmToken {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in [&self.swtpm_pid, &self.dbus_pid] {
            if let Some(pid) = fs::read_to_string(pid)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

/// A root ceremony on the token `label` (key `algorithm`, PSS when asked): generate the key,
/// create the root, issue its CRL. Written to `dir/ceremony.toml`.
fn ceremony_file(dir: &Path, label: &str, algorithm: &str, pss: bool) -> PathBuf {
    let file = dir.join("ceremony.toml");
    let ca_key = if pss { "pss = true\n" } else { "" };
    fs::write(
        &file,
        format!(
            r#"[ceremony]
name = "Root key generation on {label}"
operator = "Alice Kim"
witnesses = ["Bob Lee"]
ca_dir = "ceremony-ca"
transcript = "ceremony.transcript"

[token]
label = "{label}"

[ca_key]
label = "ceremony-root"
{ca_key}
[[step]]
kind = "generate_key"
label = "ceremony-root"
algorithm = "{algorithm}"

[[step]]
kind = "create_root"
subject = "CN=Ceremony Root CA,O=Example,C=KR"
validity = "10y"
out = "ceremony-root.crt"

[[step]]
kind = "crl"
next_update = "30d"
out = "ceremony-root.crl"
"#
        ),
    )
    .unwrap();
    file
}

/// `hsmca` in `dir` on `module`, PIN from the environment, nothing of SoftHSM2 or the fault
/// module's settings inherited.
fn hsmca_on(dir: &Path, module: &str, pin: &str) -> Command {
    let mut cmd = Command::new(hsmca_bin());
    cmd.current_dir(dir)
        .env("HSMCA_MODULE", module)
        .env("HSMCA_PIN", pin)
        .env_remove("HSMCA_CA_DIR")
        .env_remove("SOFTHSM2_CONF");
    for v in CALL_LOG_VARS {
        cmd.env_remove(v);
    }
    cmd
}

fn key_uri(label: &str) -> String {
    format!("pkcs11:token={};object={label}", pct_encode(TPM_LABEL))
}

/// `hsmca key generate` of `alg` keys on the token, each labelled `k-ALG`, and the refusals of
/// the algorithms it does not offer, each naming why.
fn generate_all(
    run: &dyn Fn(&[&str]) -> Output,
    token: &str,
    offered: &[&str],
    refused: &[(&str, &str)],
) {
    for alg in offered {
        let label = format!("k-{alg}");
        let out = assert_ok(&run(&[
            "key",
            "generate",
            "--token",
            token,
            "--label",
            &label,
            "--algorithm",
            alg,
        ]));
        assert_mentions(&out, &["sensitive, not extractable"]);
    }
    for (alg, why) in refused {
        let err = assert_fails(&run(&[
            "key",
            "generate",
            "--token",
            token,
            "--label",
            "no",
            "--algorithm",
            alg,
        ]));
        assert_mentions(&err, &[why]);
    }
}

/// The CA's flows with `key` (signature choice `extra`) in the CA directory `ca`, under `dir`:
/// a root, one intermediate, a batch of three on `sessions` sessions, a revocation, a CRL and
/// the log checked against the token's head; every certificate and the CRL checked by openssl
/// and pkilint.
fn ca_flows(
    dir: &Path,
    run: &dyn Fn(&[&str]) -> Output,
    ca: &str,
    key: &str,
    extra: &[&str],
    sessions: &str,
) {
    fn with<'a>(args: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [args, extra].concat()
    }
    let in_ca = |f: &str| format!("{ca}-{f}");
    let (root, one, out, crl) = (
        in_ca("root.crt"),
        in_ca("one.crt"),
        in_ca("out"),
        in_ca("root.crl"),
    );
    // A CA directory is started by the command that makes the CA.
    assert_ok(&run(&with(
        &[
            "--ca-dir",
            ca,
            "root",
            "create",
            "--key",
            key,
            "--subject",
            "CN=Token Root CA,O=Example,C=KR",
            "--validity",
            "10y",
            "--out",
            &root,
        ],
        extra,
    )));
    let csrs = dir.join(in_ca("csr"));
    make_csr(&csrs, "one", CsrAlg::P256, "Token One Int");
    let batch = dir.join(in_ca("batch"));
    for i in 1..=3 {
        make_csr(
            &batch,
            &format!("req-{i}"),
            CsrAlg::P256,
            &format!("Token Int {i}"),
        );
    }
    let one_csr = csrs.join("one.csr");
    let intermediate = [
        "--profile",
        "intermediate",
        "--path-len",
        "0",
        "--validity",
        "1y",
    ];
    let signed = assert_ok(&run(&with(
        &[
            &[
                "--ca-dir",
                ca,
                "sign",
                "--key",
                key,
                "--csr",
                one_csr.to_str().unwrap(),
                "--out",
                &one,
            ][..],
            &intermediate[..],
        ]
        .concat(),
        extra,
    )));
    assert_ok(&run(&with(
        &[
            &[
                "--ca-dir",
                ca,
                "sign",
                "--key",
                key,
                "--csr-dir",
                batch.to_str().unwrap(),
                "--out-dir",
                &out,
                "--sessions",
                sessions,
            ][..],
            &intermediate[..],
        ]
        .concat(),
        extra,
    )));
    let serial = signed
        .lines()
        .find_map(|l| l.strip_prefix("serial: "))
        .unwrap_or_default()
        .trim()
        .to_string();
    assert_ok(&run(&[
        "--ca-dir",
        ca,
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "superseded",
    ]));
    assert_ok(&run(&with(
        &[
            "--ca-dir",
            ca,
            "crl",
            "--key",
            key,
            "--next-update",
            "30d",
            "--out",
            &crl,
        ],
        extra,
    )));
    assert_mentions(
        &assert_ok(&run(&["--ca-dir", ca, "log", "verify", "--key", key])),
        &["was not cut back"],
    );

    let root = dir.join(&root);
    let mut certs = vec![dir.join(&one)];
    certs.extend((1..=3).map(|i| dir.join(&out).join(format!("req-{i}.crt"))));
    // The chain linter cannot check RSA-PSS signatures (see tests/policy.rs).
    let allowed: &[&str] = if extra.contains(&"--pss") {
        &["pkix.signature_verification_failed"]
    } else {
        &[]
    };
    assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], &root), &[]);
    for cert in &certs {
        openssl_verify(&root, &[], cert).unwrap_or_else(|e| panic!("{ca}: {e}"));
        assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], cert), &[]);
        assert_no_findings_at_or_above_warning(&pkilint_chain(&root, cert), allowed);
    }
    let crl = dir.join(&crl);
    let crl_check = run_command(
        Command::new("openssl")
            .args(["crl", "-noout", "-in"])
            .arg(&crl)
            .arg("-CAfile")
            .arg(&root),
    );
    assert_mentions(&stderr_of(&crl_check), &["verify OK"]);
    assert_no_findings_at_or_above_warning(
        &pkilint("lint_crl", &["-t", "ARL", "-p", "PKIX"], &crl),
        &[],
    );
}

/// A ceremony file on the token `label` (see [`ceremony_file`]), run and verified, and its
/// root checked by openssl and pkilint.
fn ceremony_flow(dir: &Path, run: &dyn Fn(&[&str]) -> Output, label: &str, alg: &str, pss: bool) {
    let file = ceremony_file(dir, label, alg, pss);
    assert_ok(&run(&["ceremony", "run", "--yes", file.to_str().unwrap()]));
    assert_ok(&run(&["ceremony", "verify", "ceremony.transcript"]));
    let root = dir.join("ceremony-root.crt");
    openssl_verify(&root, &[], &root).unwrap();
    assert_no_findings_at_or_above_warning(&pkilint("lint_pkix_cert", &[], &root), &[]);
}

/// The main flows on tpm2-pkcs11: key generation for every algorithm the token offers (and a
/// refusal naming why for the others), then [`ca_flows`] with a P-256 root and with an
/// RSA-3072 root signing PSS (batches on four sessions), and a ceremony file.
#[test_needs(tpm2_pkcs11)]
fn tpm2_pkcs11_main_flows() {
    let t = TpmToken::new();
    let run = |args: &[&str]| t.run(args);
    let list = assert_ok(&t.run(&["token", "list"]));
    let algorithms = list
        .lines()
        .find(|l| l.trim_start().starts_with("algorithms:"))
        .unwrap_or_default()
        .to_string();
    // The TPM's mechanism info caps RSA at 3072 bits; there is no EdDSA.
    assert_eq!(
        algorithms.trim(),
        "algorithms: ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072",
        "{list}"
    );
    assert!(!list.contains('\0'), "NUL padding printed: {list:?}");
    // Per key type: how, or why not.
    assert_mentions(
        &list,
        &["rsa-4096: no: CKM_RSA_PKCS_KEY_PAIR_GEN makes 1024 to 3072 bits"],
    );
    assert_mentions(&list, &["ed25519: no: no CKM_EC_EDWARDS_KEY_PAIR_GEN"]);
    generate_all(
        &run,
        TPM_LABEL,
        &["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072"],
        &[
            ("rsa-4096", "1024 to 3072 bits"),
            ("ed25519", "CKM_EC_EDWARDS_KEY_PAIR_GEN"),
        ],
    );
    ca_flows(
        t.dir.path(),
        &run,
        "ca-p256",
        &key_uri("k-ecdsa-p256"),
        &[],
        "4",
    );
    ca_flows(
        t.dir.path(),
        &run,
        "ca-rsa",
        &key_uri("k-rsa-3072"),
        &["--pss"],
        "4",
    );
    ceremony_flow(t.dir.path(), &run, TPM_LABEL, "ecdsa-p384", false);
}

const OCK_MODULE: &str = locate::OPENCRYPTOKI_MODULE;
const OCK_LABEL: &str = "OCK Root CA";
const OCK_PIN: &str = "user1234";

/// openCryptoki's soft token (slot 3 of the shipped configuration). Version 3.8.1 compiles its
/// store in (`/var/lib/opencryptoki/swtok`, shared memory under `/dev/shm`), so the store is
/// wiped and the token initialised afresh, by one test only, as root.
struct OckToken {
    dir: tempfile::TempDir,
}

impl OckToken {
    fn new() -> OckToken {
        assert!(
            Path::new(OCK_MODULE).is_file(),
            "{OCK_MODULE} is missing: scripts/install-deps.sh installs opencryptoki"
        );
        let uid = run_command(Command::new("id").arg("-u"));
        assert_eq!(
            stdout_of(&uid).trim(),
            "0",
            "openCryptoki 3.8.1 keeps its store in /var/lib/opencryptoki: this test runs as root"
        );
        let _ = Command::new("pkill").arg("-x").arg("pkcsslotd").status();
        std::thread::sleep(Duration::from_millis(300));
        let swtok = Path::new("/var/lib/opencryptoki/swtok");
        let _ = fs::remove_dir_all(swtok);
        fs::create_dir_all(swtok.join("TOK_OBJ")).unwrap();
        for entry in fs::read_dir("/dev/shm").unwrap().flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("var.lib.opencryptoki")
            {
                let _ = fs::remove_file(entry.path());
            }
        }
        assert_ok(&run_command(&mut tool("/usr/sbin/pkcsslotd")));
        let mut init = tool("pkcsconf")
            .args(["-I", "-c", "3", "-S", "87654321"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            init.stdin.as_mut().unwrap(),
            format!("{OCK_LABEL}\n").as_bytes(),
        )
        .unwrap();
        assert_ok(&init.wait_with_output().unwrap());
        for args in [
            ["-c", "3", "-P", "-S", "87654321", "-n", "so123456"],
            ["-c", "3", "-u", "-S", "so123456", "-n", "user1111"],
            ["-c", "3", "-p", "-U", "user1111", "-n", OCK_PIN],
        ] {
            assert_ok(&run_command(tool("pkcsconf").args(args)));
        }
        OckToken {
            dir: tempfile::Builder::new()
                .prefix("hsmca-ock-")
                .tempdir()
                .unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        run_command(hsmca_on(self.dir.path(), OCK_MODULE, OCK_PIN).args(args))
    }
}

impl Drop for OckToken {
    fn drop(&mut self) {
        let _ = Command::new("pkill").arg("-x").arg("pkcsslotd").status();
    }
}

/// The main flows on openCryptoki's soft token, a Cryptoki 2.20 module with a malformed clock
/// field, no EC and no CKM_SHA256_RSA_PKCS: its token information is read without the clock
/// (with a note), keys are generated without CKA_COPYABLE, PKCS#1 v1.5 signs through
/// CKM_RSA_PKCS over a DigestInfo built on the host and PSS through CKM_SHA256_RSA_PKCS_PSS.
#[test_needs(opencryptoki, root)]
fn opencryptoki_main_flows() {
    let t = OckToken::new();
    let run = |args: &[&str]| t.run(args);
    let list = t.run(&["token", "list"]);
    let listed = assert_ok(&list);
    assert_mentions(&listed, &["algorithms: rsa-2048 rsa-3072 rsa-4096"]);
    assert_mentions(
        &listed,
        &["CKM_RSA_PKCS over a DigestInfo built on the host"],
    );
    assert_mentions(&listed, &["ecdsa-p256: no: no CKM_EC_KEY_PAIR_GEN"]);
    assert_mentions(&stderr_of(&list), &["clock"]);
    // Every algorithm it offers is generated (rsa-3072 by the ceremony below), and the rest
    // refused naming the missing mechanism.
    generate_all(
        &run,
        OCK_LABEL,
        &["rsa-2048", "rsa-4096"],
        &[
            ("ecdsa-p256", "CKM_EC_KEY_PAIR_GEN"),
            ("ecdsa-p384", "CKM_EC_KEY_PAIR_GEN"),
            ("ed25519", "CKM_EC_EDWARDS_KEY_PAIR_GEN"),
        ],
    );
    let key = format!("pkcs11:token={};object=k-rsa-2048", pct_encode(OCK_LABEL));
    ca_flows(t.dir.path(), &run, "ca-pkcs1", &key, &[], "2");
    // A CA directory per key: the token keeps one log head per CA key.
    let big = format!("pkcs11:token={};object=k-rsa-4096", pct_encode(OCK_LABEL));
    ca_flows(t.dir.path(), &run, "ca-pss", &big, &["--pss"], "2");
    ceremony_flow(t.dir.path(), &run, OCK_LABEL, "rsa-3072", true);
}

/// A token with no hashing RSA mechanisms (SoftHSM2 behind the fault module, which leaves
/// CKM_SHAx_RSA_PKCS and CKM_SHAx_RSA_PKCS_PSS out of its mechanism list): PKCS#1 v1.5 signs
/// through CKM_RSA_PKCS over a DigestInfo built on the host, PSS through CKM_RSA_PKCS_PSS over
/// a host digest, and the token is asked for nothing else.
#[test_needs(softhsm2)]
fn a_token_without_hashing_rsa_mechanisms_signs_through_the_raw_ones() {
    let t = TestToken::new("Root CA");
    let trace = t.path("trace.log");
    let trace_s = trace.to_str().unwrap().to_string();
    let module = t.module.to_str().unwrap().to_string();
    let faultmod = faultmod().to_str().unwrap().to_string();
    // CKM_SHA256/384/512/224_RSA_PKCS and their _PSS.
    let hidden = "0x40,0x41,0x42,0x43,0x44,0x45,0x46,0x47";
    let env = [
        ("HSMCA_MODULE", Some(faultmod.as_str())),
        ("HSMCA_FAULT_REAL", Some(module.as_str())),
        ("HSMCA_FAULT_HIDE_MECHS", Some(hidden)),
        ("HSMCA_FAULT_TRACE", Some(trace_s.as_str())),
    ];
    let list = assert_ok(&t.run_env(&env, ["token", "list"]));
    assert_mentions(
        &list,
        &["CKM_RSA_PKCS over a DigestInfo built on the host; PSS CKM_RSA_PKCS_PSS"],
    );
    let key = parse_generated_key(&assert_ok(&t.run_env(
        &env,
        in_ca_dir("ca", key_generate_args("Root CA", "root-2026", "rsa-3072")),
    )));
    assert_ok(&t.run_env(
        &env,
        in_ca_dir("ca", root_create_args(&key.uri, "5y", "root.crt")),
    ));
    let root = t.path("root.crt");
    for (name, extra) in [
        ("pkcs1-256", &[][..]),
        ("pkcs1-384", &["--hash", "384"][..]),
        ("pss-256", &["--pss"][..]),
        ("pss-512", &["--pss", "--hash", "512"][..]),
    ] {
        make_csr(
            &t.path("csr"),
            name,
            CsrAlg::P256,
            &format!("Raw {name} CA"),
        );
        let out = format!("{name}.crt");
        let args = in_ca_dir(
            "ca",
            intermediate_args(&key.uri, &format!("csr/{name}.csr"), "1y", &out),
        )
        .with(extra);
        assert_ok(&t.run_env(&env, args));
        openssl_verify(&root, &[], &t.path(&out)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // Every C_SignInit asked for a mechanism the token listed: CKM_ECDSA (no), CKM_RSA_PKCS
    // (0x1) or CKM_RSA_PKCS_PSS (0xd).
    let traced = fs::read_to_string(&trace).unwrap();
    let inits: Vec<&str> = traced
        .lines()
        .filter(|l| l.contains("C_SignInit"))
        .collect();
    assert!(!inits.is_empty(), "no C_SignInit traced");
    for line in inits {
        assert!(
            line.contains("mechanism=0x1 ")
                || line.contains("mechanism=0xd ")
                || line.ends_with("mechanism=0x1")
                || line.ends_with("mechanism=0xd"),
            "a C_SignInit asked for a mechanism the token did not list: {line}"
        );
    }
}
