//! Kubernetes: `k8s request` (cluster side, no token), `k8s sign` (root ceremony, token, CSRs
//! only), `k8s issue` (cluster side, file keys), judged by real components: Debian's etcd and
//! etcdctl (Go's crypto/x509), openssl s_server/s_client mTLS, openssl verify, pkilint and
//! kubectl. Every server process is started here on 127.0.0.1 with free ports, bounded in time
//! and killed (by its own pid) when the test ends.

use crate::common::*;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Single-label DNS names the test clusters need (node names, Kubernetes' own names): the only
/// names for which pkilint's `pkix.invalid_domain_name_syntax` finding is accepted.
const SINGLE_LABEL_NAMES: &[&str] = &[
    "localhost",
    "kubernetes",
    "kube-proxy",
    "kube-scheduler",
    "kube-controller-manager",
    "cp-0",
    "node-0",
    "node-1",
    "intruder",
];

/// Files of kubeadm's set under pki/: (file stem, issuing CA cert, openssl subject, EKU text).
const KUBEADM_FILES: &[(&str, &str, &str, &str)] = &[
    (
        "apiserver",
        "ca.crt",
        "CN = kube-apiserver",
        "TLS Web Server Authentication",
    ),
    (
        "apiserver-kubelet-client",
        "ca.crt",
        "O = kubeadm:cluster-admins, CN = kube-apiserver-kubelet-client",
        "TLS Web Client Authentication",
    ),
    (
        "front-proxy-client",
        "front-proxy-ca.crt",
        "CN = front-proxy-client",
        "TLS Web Client Authentication",
    ),
    (
        "etcd/server",
        "etcd/ca.crt",
        "CN = cp-0",
        "TLS Web Server Authentication, TLS Web Client Authentication",
    ),
    (
        "etcd/peer",
        "etcd/ca.crt",
        "CN = cp-0",
        "TLS Web Server Authentication, TLS Web Client Authentication",
    ),
    (
        "etcd/healthcheck-client",
        "etcd/ca.crt",
        "CN = kube-etcd-healthcheck-client",
        "TLS Web Client Authentication",
    ),
    (
        "apiserver-etcd-client",
        "etcd/ca.crt",
        "CN = kube-apiserver-etcd-client",
        "TLS Web Client Authentication",
    ),
];

/// kubeadm's kubeconfigs: (file, user = CN, openssl subject, server).
const KUBEADM_CONFS: &[(&str, &str, &str, &str)] = &[
    (
        "admin.conf",
        "kubernetes-admin",
        "O = kubeadm:cluster-admins, CN = kubernetes-admin",
        "https://prod-a.example.com:6443",
    ),
    (
        "super-admin.conf",
        "kubernetes-super-admin",
        "O = system:masters, CN = kubernetes-super-admin",
        "https://prod-a.example.com:6443",
    ),
    (
        "kubelet.conf",
        "system:node:cp-0",
        "O = system:nodes, CN = system:node:cp-0",
        "https://prod-a.example.com:6443",
    ),
    (
        "controller-manager.conf",
        "system:kube-controller-manager",
        "CN = system:kube-controller-manager",
        "https://10.0.0.10:6443",
    ),
    (
        "scheduler.conf",
        "system:kube-scheduler",
        "CN = system:kube-scheduler",
        "https://10.0.0.10:6443",
    ),
];

// ------------------------------------------------------------------------------------------------
// Setup
// ------------------------------------------------------------------------------------------------

/// A token with a P-256 root key and its root certificate `root.crt`, recorded in `ca/`.
struct Ceremony {
    t: TestToken,
    uri: String,
}

fn ceremony() -> Ceremony {
    ceremony_of("ecdsa-p256")
}

/// [`ceremony`] with a root key of `alg`.
fn ceremony_of(alg: &str) -> Ceremony {
    let t = TestToken::new("Root CA");
    let key = t.generate_key("root-2026", alg);
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "root",
        "create",
        "--key",
        &key.uri,
        "--subject",
        ROOT_SUBJECT,
        // From long ago, so a cluster CA can start minutes before now (kubeadm's backdating)
        // and a leaf can already have expired inside a valid chain.
        "--not-before",
        "2020-01-01",
        "--validity",
        "25y",
        "--out",
        "root.crt",
    ]));
    Ceremony { t, uri: key.uri }
}

/// examples/cluster.toml with its name replaced and `extra` appended, written to `file`.
fn cluster_file(c: &Ceremony, file: &str, name: &str, extra: &str) -> PathBuf {
    let text = fs::read_to_string(repo_root().join("examples/cluster.toml")).unwrap();
    let text = text.replace("name = \"prod-a\"", &format!("name = \"{name}\""));
    assert!(text.contains(&format!("name = \"{name}\"")));
    let path = c.t.path(file);
    fs::write(&path, format!("{text}\n{extra}")).unwrap();
    path
}

/// `hsmca` for the cluster side: no module, no token store, no PIN in its environment.
fn cluster_side(c: &Ceremony, args: &[&str]) -> std::process::Output {
    c.t.run_env(
        &[
            ("HSMCA_MODULE", Some("/nonexistent/no-token-here.so")),
            ("SOFTHSM2_CONF", Some("/nonexistent/softhsm2.conf")),
            ("HSMCA_PIN", None),
        ],
        args,
    )
}

fn request(c: &Ceremony, dir: &str, name: &str, alg: &str) {
    assert_ok(&cluster_side(
        c,
        &[
            "k8s",
            "request",
            "--cluster",
            name,
            "--out",
            dir,
            "--algorithm",
            alg,
        ],
    ));
}

fn copy_tree(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) {
    for (rel, bytes) in files_in(from) {
        if keep(&rel) {
            let dst = to.join(&rel);
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            fs::write(dst, bytes).unwrap();
        }
    }
}

/// `--ca-dir ca k8s sign` of the requests in `dir` with `config`, under `root.crt`, confirmed.
fn k8s_sign_args(c: &Ceremony, dir: &str, config: &Path) -> Vec<String> {
    strings(&[
        "--ca-dir",
        "ca",
        "k8s",
        "sign",
        "--key",
        &c.uri,
        "--issuer",
        "root.crt",
        "--requests",
        dir,
        "--config",
        config.to_str().unwrap(),
        "--yes",
    ])
}

/// The ceremony as it happens: only `dir/requests` travels to `ceremony/dir`, `k8s sign` runs
/// there (recording in `ca/`), and only the certificates travel back into `dir/pki`.
fn sign_as_ceremony(
    c: &Ceremony,
    dir: &str,
    config: &Path,
    extra: &[&str],
) -> std::process::Output {
    let cdir = format!("ceremony/{dir}");
    copy_tree(
        &c.t.path(dir).join("requests"),
        &c.t.path(&cdir).join("requests"),
        &|_| true,
    );
    let out = c.t.run(k8s_sign_args(c, &cdir, config).with(extra));
    if out.status.success() {
        let ceremony_files = files_in(&c.t.path(&cdir));
        assert!(
            ceremony_files
                .keys()
                .all(|p| p.extension().is_none_or(|e| e != "key")),
            "the ceremony directory holds a key: {:?}",
            ceremony_files.keys()
        );
        for (p, bytes) in &ceremony_files {
            if let Some(why) = private_key_material(bytes) {
                panic!("{} at the ceremony holds {why}", p.display());
            }
        }
        copy_tree(
            &c.t.path(&cdir).join("pki"),
            &c.t.path(dir).join("pki"),
            &|_| true,
        );
    }
    out
}

fn issue(
    c: &Ceremony,
    pki: &str,
    preset: &str,
    config: &Path,
    extra: &[&str],
) -> std::process::Output {
    let config = config.to_str().unwrap();
    let mut args = vec![
        "k8s", "issue", "--pki", pki, "--preset", preset, "--config", config,
    ];
    args.extend_from_slice(extra);
    cluster_side(c, &args)
}

/// request + ceremony + kubeadm preset for cluster `name` in directory `dir`.
fn kubeadm_cluster(c: &Ceremony, dir: &str, name: &str, alg: &str) -> PathBuf {
    let cfg = cluster_file(c, &format!("{dir}.toml"), name, "");
    request(c, dir, name, alg);
    assert_ok(&sign_as_ceremony(c, dir, &cfg, &[]));
    assert_ok(&issue(c, &format!("{dir}/pki"), "kubeadm", &cfg, &[]));
    cfg
}

// ------------------------------------------------------------------------------------------------
// Judges
// ------------------------------------------------------------------------------------------------

/// pkilint `lint_pkix_cert -s WARNING`: no finding at WARNING or above but
/// `pkix.invalid_domain_name_syntax` for a name in [`SINGLE_LABEL_NAMES`]. Returns those names.
#[track_caller]
fn lint_clean(cert: &Path) -> Vec<String> {
    let findings = pkilint("lint_pkix_cert", &["-s", "WARNING"], cert);
    let mut allowed = Vec::new();
    for f in findings.iter().filter(|f| f.severity >= Severity::Warning) {
        let name = f
            .message
            .as_deref()
            .and_then(|m| m.split('"').nth(1))
            .unwrap_or_default()
            .to_string();
        assert!(
            f.code == "pkix.invalid_domain_name_syntax"
                && !name.contains('.')
                && SINGLE_LABEL_NAMES.contains(&name.as_str()),
            "{}: pkilint finding outside the single-label exception: {f}",
            cert.display()
        );
        allowed.push(name);
    }
    allowed
}

#[track_caller]
fn verify_chain(root: &Path, ca: &Path, leaf: &Path) {
    if let Err(e) = openssl_verify(root, &[ca], leaf) {
        panic!(
            "{} does not verify to the root via {}: {e}",
            leaf.display(),
            ca.display()
        );
    }
}

fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    pem_blocks(&fs::read_to_string(path).unwrap())
        .into_iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, d)| d)
        .collect()
}

#[track_caller]
fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// What `kubectl config view --raw` reads from a kubeconfig.
struct KubeconfigView {
    server: String,
    user: String,
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
}

#[track_caller]
fn kubectl_view(kubeconfig: &Path) -> KubeconfigView {
    let out = assert_ok(&run_command(
        Command::new("kubectl")
            .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
            .arg(kubeconfig)
            .env_remove("KUBECONFIG"),
    ));
    let v = json(&out);
    let b64 = |x: &serde_json::Value| base64_decode(x.as_str().expect("string")).expect("base64");
    let ctx = v["current-context"].as_str().unwrap().to_string();
    let context = v["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == ctx.as_str())
        .expect("current context exists");
    let user = context["context"]["user"].as_str().unwrap().to_string();
    let u = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user.as_str())
        .unwrap();
    let cl = &v["clusters"][0]["cluster"];
    KubeconfigView {
        server: cl["server"].as_str().unwrap().to_string(),
        user,
        ca: b64(&cl["certificate-authority-data"]),
        cert: b64(&u["user"]["client-certificate-data"]),
        key: b64(&u["user"]["client-key-data"]),
    }
}

/// Checks one kubeconfig with kubectl: CA data is `ca`'s bytes, the client certificate is
/// `subject`'s, matches the embedded key, verifies to the root and lints clean. Writes the
/// client certificate and key to `<kubeconfig>.crt/.key` and returns their paths.
#[track_caller]
fn check_kubeconfig(
    kubeconfig: &Path,
    ca: &Path,
    root: &Path,
    user: &str,
    subject: &str,
    server: &str,
) -> (PathBuf, PathBuf) {
    assert_eq!(mode_of(kubeconfig), 0o600, "{}", kubeconfig.display());
    let v = kubectl_view(kubeconfig);
    assert_eq!(
        v.ca,
        fs::read(ca).unwrap(),
        "{}: CA data is not {}",
        kubeconfig.display(),
        ca.display()
    );
    assert_eq!(v.user, user);
    assert_eq!(v.server, server);
    let cert = PathBuf::from(format!("{}.crt", kubeconfig.display()));
    let key = PathBuf::from(format!("{}.key", kubeconfig.display()));
    fs::write(&cert, &v.cert).unwrap();
    fs::write(&key, &v.key).unwrap();
    assert_eq!(
        cert_spki_sha256(&cert),
        key_file_spki_sha256(&key),
        "{}",
        kubeconfig.display()
    );
    let subj = openssl_x509(&cert, &["-subject"]);
    assert_eq!(
        subj.trim(),
        format!("subject={subject}"),
        "{}",
        kubeconfig.display()
    );
    let eku = openssl_x509(&cert, &["-ext", "extendedKeyUsage,subjectAltName"]);
    assert!(
        eku.contains("TLS Web Client Authentication") && !eku.contains("Alternative Name"),
        "{eku}"
    );
    verify_chain(root, ca, &cert);
    lint_clean(&cert);
    (cert, key)
}

/// The CA certificate checks every cluster CA must pass.
#[track_caller]
fn check_cluster_ca(ca: &Path, chain: &Path, root: &Path, cn_o: &str, constrained: bool) {
    assert_eq!(
        pem_certs(ca).len(),
        1,
        "{} must hold one certificate",
        ca.display()
    );
    let chain_certs = pem_certs(chain);
    assert_eq!(chain_certs.len(), 2, "{}: CA + root", chain.display());
    assert_eq!(chain_certs[0], cert_der(ca));
    assert_eq!(chain_certs[1], cert_der(root));
    let text = openssl_x509(ca, &["-text"]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(
        !text.contains("Extended Key Usage"),
        "a CA with an EKU: {text}"
    );
    assert_eq!(
        text.contains("Name Constraints: critical"),
        constrained,
        "{text}"
    );
    assert_eq!(
        openssl_x509(ca, &["-subject"]).trim(),
        format!("subject={cn_o}")
    );
    if let Err(e) = openssl_verify(root, &[], ca) {
        panic!("{}: {e}", ca.display());
    }
    lint_clean(ca);
}

// ------------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------------

/// A child process killed (by its pid) and reaped when dropped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for the process to exit by itself.
    fn wait_exit(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_logged(cmd: &mut Command, log: &Path, stdin: Stdio) -> Running {
    let f = fs::File::create(log).unwrap();
    let child = cmd
        .stdin(stdin)
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Running {
        child,
        log: log.to_path_buf(),
    }
}

/// A loopback port for a server this test starts, reserved for the life of the test process:
/// taken from 20000–29999, below Linux's ephemeral range (32768–60999), so no outgoing
/// connection of another test can be given it, and claimed with an exclusive lock on
/// `/tmp/hsmca-test-ports/PORT.lock`, so no other test (each runs in its own process) or
/// second call here takes it before the server binds it. (A port from binding port 0 and
/// closing the socket is free only until someone else's connection or server takes it.)
fn free_port() -> u16 {
    use std::sync::Mutex;
    static HELD: Mutex<Vec<fs::File>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("hsmca-test-ports");
    fs::create_dir_all(&dir).unwrap();
    let start = std::process::id() as usize;
    for i in 0..10_000 {
        let port = 20_000 + ((start + i * 7) % 10_000) as u16;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{port}.lock")))
            .unwrap();
        if lock.try_lock().is_err() {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            HELD.lock().unwrap().push(lock);
            return port;
        }
    }
    panic!("no free loopback port in 20000-29999");
}

/// etcd started on `pki` (see [`start_etcd`]), once its healthcheck client is answered as
/// healthy: the event waited for (at most a minute, failing early if etcd exits).
fn healthy_etcd(c: &Ceremony, pki: &Path) -> (Running, String) {
    let (mut etcd, url) = start_etcd(c, pki);
    let ca = pki.join("etcd/ca.crt");
    let hc = (
        pki.join("etcd/healthcheck-client.crt"),
        pki.join("etcd/healthcheck-client.key"),
    );
    let start = Instant::now();
    loop {
        let out = etcdctl(&url, &ca, Some((&hc.0, &hc.1)), &["endpoint", "health"]);
        if out.status.success() {
            assert_mentions(
                &format!("{}{}", stdout_of(&out), stderr_of(&out)),
                &["is healthy"],
            );
            return (etcd, url);
        }
        if let Ok(Some(st)) = etcd.child.try_wait() {
            panic!("etcd exited ({st}):\n{}", etcd.log_text());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "etcd never became healthy:\n{}\n{}",
            stderr_of(&out),
            etcd.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// etcd with kubeadm's flags: server and peer certificates from etcd-ca, client certificates
/// required and checked against `pki/etcd/ca.crt` (the intermediate alone).
fn start_etcd(c: &Ceremony, pki: &Path) -> (Running, String) {
    let (client, peer) = (free_port(), free_port());
    let url = format!("https://127.0.0.1:{client}");
    let peer_url = format!("https://127.0.0.1:{peer}");
    let p = |f: &str| pki.join(f).to_str().unwrap().to_string();
    let data = c.t.path("etcd-data");
    let mut cmd = Command::new("etcd");
    cmd.args(["--name", "cp-0", "--data-dir"])
        .arg(&data)
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("cp-0={peer_url}")])
        .args([
            "--cert-file",
            &p("etcd/server.crt"),
            "--key-file",
            &p("etcd/server.key"),
        ])
        .args(["--client-cert-auth", "--trusted-ca-file", &p("etcd/ca.crt")])
        .args([
            "--peer-cert-file",
            &p("etcd/peer.crt"),
            "--peer-key-file",
            &p("etcd/peer.key"),
        ])
        .args([
            "--peer-client-cert-auth",
            "--peer-trusted-ca-file",
            &p("etcd/ca.crt"),
        ])
        .env_remove("ETCD_NAME");
    let run = spawn_logged(&mut cmd, &c.t.path("etcd.log"), Stdio::null());
    (run, url)
}

fn etcdctl(
    url: &str,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "20",
        "etcdctl",
        "--endpoints",
        url,
        "--dial-timeout=3s",
        "--command-timeout=5s",
    ])
    .arg("--cacert")
    .arg(ca)
    .env("ETCDCTL_API", "3");
    if let Some((crt, key)) = cert {
        cmd.arg("--cert").arg(crt).arg("--key").arg(key);
    }
    cmd.args(args);
    run_command(&mut cmd)
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

/// The whole flow with kubeadm's set: layout, modes, profiles, openssl verify, pkilint and
/// kubectl on everything issued, and the three CAs.
#[test_needs(softhsm2, kubectl)]
fn kubeadm_preset_layout_verify_lint_kubectl() {
    let c = ceremony();
    let cfg = cluster_file(&c, "cluster.toml", "prod-a", "");
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    let pki = c.t.path("prod-a/pki");
    for k in ["ca.key", "etcd/ca.key", "front-proxy-ca.key", "sa.key"] {
        assert_eq!(mode_of(&pki.join(k)), 0o600, "{k}");
    }
    assert!(
        fs::read_to_string(pki.join("sa.pub"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    let req = c.t.path("prod-a/requests");
    for r in ["kubernetes-ca.csr", "etcd-ca.csr", "front-proxy-ca.csr"] {
        let bytes = fs::read(req.join(r)).unwrap();
        assert!(private_key_material(&bytes).is_none(), "{r}");
    }
    // The request side never overwrites a key.
    let again = cluster_side(
        &c,
        &["k8s", "request", "--cluster", "prod-a", "--out", "prod-a"],
    );
    assert_mentions(&assert_fails(&again), &["already exists"]);

    let signed = assert_ok(&sign_as_ceremony(&c, "prod-a", &cfg, &[]));
    assert!(signed.contains("kubernetes.default.svc"), "{signed}");
    let root = c.t.path("root.crt");
    for (crt, chain, subj) in [
        ("ca.crt", "ca-chain.crt", "O = prod-a, CN = kubernetes"),
        (
            "etcd/ca.crt",
            "etcd/ca-chain.crt",
            "O = prod-a, CN = etcd-ca",
        ),
        (
            "front-proxy-ca.crt",
            "front-proxy-ca-chain.crt",
            "O = prod-a, CN = front-proxy-ca",
        ),
    ] {
        check_cluster_ca(&pki.join(crt), &pki.join(chain), &root, subj, true);
    }
    // The three CAs are recorded in the CA directory.
    let list = assert_ok(&c.t.run(["--ca-dir", "ca", "list"]));
    for crt in ["ca.crt", "etcd/ca.crt", "front-proxy-ca.crt"] {
        let serial = openssl_x509(&pki.join(crt), &["-serial"]);
        let serial = serial.trim().strip_prefix("serial=").unwrap();
        assert!(
            list.to_uppercase().contains(&serial.to_uppercase()),
            "{serial} not in\n{list}"
        );
    }
    assert_ok(&c.t.run(["--ca-dir", "ca", "log", "verify"]));
    // Signing again refuses to replace the certificates, before any token call.
    let again = sign_as_ceremony(&c, "prod-a", &cfg, &[]);
    assert_mentions(&assert_fails(&again), &["already exists"]);

    assert_ok(&issue(&c, "prod-a/pki", "kubeadm", &cfg, &[]));
    let mut single_labels = Vec::new();
    for (stem, ca, subject, eku) in KUBEADM_FILES {
        let crt = pki.join(format!("{stem}.crt"));
        let key = pki.join(format!("{stem}.key"));
        assert_eq!(mode_of(&key), 0o600, "{stem}.key");
        assert_eq!(pem_certs(&crt).len(), 1, "{stem}.crt");
        assert_eq!(cert_spki_sha256(&crt), key_file_spki_sha256(&key), "{stem}");
        assert_eq!(
            openssl_x509(&crt, &["-subject"]).trim(),
            format!("subject={subject}"),
            "{stem}"
        );
        let text = openssl_x509(&crt, &["-text"]);
        assert!(
            text.contains(&format!("Extended Key Usage: \n                {eku}\n")),
            "{stem}: {text}"
        );
        assert!(text.contains("CA:FALSE"), "{stem}");
        assert!(text.contains("Digital Signature"), "{stem}");
        if eku.contains("Server") {
            assert!(
                text.contains("Subject Alternative Name"),
                "{stem}: server without SANs"
            );
        } else {
            assert!(
                !text.contains("Subject Alternative Name"),
                "{stem}: client with SANs"
            );
        }
        verify_chain(&root, &pki.join(ca), &crt);
        single_labels.extend(lint_clean(&crt));
    }
    let api = openssl_x509(&pki.join("apiserver.crt"), &["-ext", "subjectAltName"]);
    for san in [
        "DNS:cp-0",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:prod-a.example.com",
        "IP Address:10.96.0.1",
        "IP Address:10.0.0.10",
    ] {
        assert!(api.contains(san), "apiserver lacks {san}: {api}");
    }
    let etcd = openssl_x509(&pki.join("etcd/server.crt"), &["-ext", "subjectAltName"]);
    for san in [
        "DNS:cp-0",
        "DNS:localhost",
        "IP Address:10.0.0.10",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ] {
        assert!(etcd.contains(san), "etcd/server lacks {san}: {etcd}");
    }
    // The served chain: leaf, then its CA.
    let chain = pem_certs(&pki.join("apiserver-chain.crt"));
    assert_eq!(
        chain,
        vec![
            cert_der(&pki.join("apiserver.crt")),
            cert_der(&pki.join("ca.crt"))
        ]
    );

    for (file, user, subject, server) in KUBEADM_CONFS {
        check_kubeconfig(
            &c.t.path("prod-a").join(file),
            &pki.join("ca.crt"),
            &root,
            user,
            subject,
            server,
        );
    }
    single_labels.sort();
    single_labels.dedup();
    eprintln!("single-label names pkilint flagged (the allowed exception): {single_labels:?}");
    assert!(single_labels.contains(&"kubernetes".to_string()));
}

/// Kubernetes the Hard Way's set: one cluster CA signs all; kubeconfigs match the files.
#[test_needs(softhsm2, kubectl)]
fn hard_way_preset_verify_lint_kubectl() {
    let c = ceremony();
    let cfg = cluster_file(&c, "cluster.toml", "prod-a", "");
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    assert_ok(&sign_as_ceremony(&c, "prod-a", &cfg, &[]));
    let out = issue(
        &c,
        "prod-a/pki",
        "hard-way",
        &cfg,
        &["--out", "prod-a/hard-way"],
    );
    assert_ok(&out);
    let hw = c.t.path("prod-a/hard-way");
    let ca = c.t.path("prod-a/pki/ca.crt");
    let root = c.t.path("root.crt");
    let both = "TLS Web Server Authentication, TLS Web Client Authentication";
    let client = "TLS Web Client Authentication";
    let set: &[(&str, &str, &str, &[&str])] = &[
        ("admin", "O = system:masters, CN = admin", client, &[]),
        (
            "node-0",
            "O = system:nodes, CN = system:node:node-0",
            both,
            &["DNS:node-0", "IP Address:127.0.0.1", "IP Address:10.0.0.20"],
        ),
        (
            "node-1",
            "O = system:nodes, CN = system:node:node-1",
            both,
            &["DNS:node-1", "IP Address:127.0.0.1", "IP Address:10.0.0.21"],
        ),
        (
            "kube-proxy",
            "O = system:node-proxier, CN = system:kube-proxy",
            both,
            &["DNS:kube-proxy", "IP Address:127.0.0.1"],
        ),
        (
            "kube-scheduler",
            "O = system:kube-scheduler, CN = system:kube-scheduler",
            both,
            &["DNS:kube-scheduler", "IP Address:127.0.0.1"],
        ),
        (
            "kube-controller-manager",
            "O = system:kube-controller-manager, CN = system:kube-controller-manager",
            both,
            &["DNS:kube-controller-manager", "IP Address:127.0.0.1"],
        ),
        (
            "kube-api-server",
            "CN = kubernetes",
            both,
            &[
                "IP Address:127.0.0.1",
                "IP Address:10.96.0.1",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster",
                "DNS:kubernetes.default.svc.cluster.local",
                "DNS:prod-a.example.com",
            ],
        ),
        ("service-accounts", "CN = service-accounts", client, &[]),
    ];
    for (name, subject, eku, sans) in set {
        let crt = hw.join(format!("{name}.crt"));
        let key = hw.join(format!("{name}.key"));
        assert_eq!(mode_of(&key), 0o600);
        assert_eq!(
            openssl_x509(&crt, &["-subject"]).trim(),
            format!("subject={subject}")
        );
        let text = openssl_x509(&crt, &["-text"]);
        assert!(
            text.contains(&format!("Extended Key Usage: \n                {eku}\n")),
            "{name}: {text}"
        );
        for s in *sans {
            assert!(
                text.contains(&format!("{s},")) || text.contains(&format!("{s}\n")),
                "{name} lacks {s}: {text}"
            );
        }
        assert_eq!(
            text.contains("Subject Alternative Name"),
            !sans.is_empty(),
            "{name}"
        );
        verify_chain(&root, &ca, &crt);
        lint_clean(&crt);
    }
    let kubeconfigs = [
        ("admin", "admin", "https://127.0.0.1:6443"),
        (
            "node-0",
            "system:node:node-0",
            "https://prod-a.example.com:6443",
        ),
        (
            "node-1",
            "system:node:node-1",
            "https://prod-a.example.com:6443",
        ),
        (
            "kube-proxy",
            "system:kube-proxy",
            "https://prod-a.example.com:6443",
        ),
        (
            "kube-scheduler",
            "system:kube-scheduler",
            "https://127.0.0.1:6443",
        ),
        (
            "kube-controller-manager",
            "system:kube-controller-manager",
            "https://127.0.0.1:6443",
        ),
    ];
    for (name, user, server) in kubeconfigs {
        let kc = hw.join(format!("{name}.kubeconfig"));
        let v = kubectl_view(&kc);
        // The embedded certificate and key are the files' bytes.
        assert_eq!(
            v.cert,
            fs::read(hw.join(format!("{name}.crt"))).unwrap(),
            "{name}"
        );
        assert_eq!(
            v.key,
            fs::read(hw.join(format!("{name}.key"))).unwrap(),
            "{name}"
        );
        assert_eq!(v.user, user);
        assert_eq!(v.server, server);
        assert_eq!(v.ca, fs::read(&ca).unwrap());
        assert_eq!(mode_of(&kc), 0o600);
    }
}

/// etcd (Go's crypto/x509) accepts the healthcheck client and the API server's etcd client,
/// and refuses: no client certificate, a client of another cluster's etcd-ca, an expired one.
#[test_needs(softhsm2, etcd)]
fn etcd_accepts_this_cluster_and_refuses_others() {
    let c = ceremony();
    kubeadm_cluster(&c, "prod-a", "prod-a", "ecdsa-p256");
    kubeadm_cluster(&c, "prod-b", "prod-b", "ecdsa-p256");
    // An expired leaf from prod-a's own etcd-ca: valid for one minute from the CA's NotBefore.
    let a_pki = c.t.path("prod-a/pki");
    let x_pki = c.t.path("expired/pki");
    copy_tree(&a_pki, &x_pki, &|p| {
        [
            "ca.crt",
            "ca.key",
            "etcd/ca.crt",
            "etcd/ca.key",
            "front-proxy-ca.crt",
            "front-proxy-ca.key",
        ]
        .iter()
        .any(|f| p == Path::new(f))
    });
    let (ca_nb, _) = cert_validity(&a_pki.join("etcd/ca.crt"));
    let t = |s: i64| {
        let out = assert_ok(&run_command(Command::new("date").args([
            "-u",
            "-d",
            &format!("@{s}"),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])));
        out.trim().to_string()
    };
    let (nb, na) = (t(ca_nb), t(ca_nb + 60));
    let cfg = c.t.path("prod-a.toml");
    assert_ok(&issue(
        &c,
        "expired/pki",
        "kubeadm",
        &cfg,
        &["--not-before", &nb, "--not-after", &na],
    ));
    let (_, x_na) = cert_validity(&x_pki.join("etcd/healthcheck-client.crt"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(x_na < now, "the expired leaf is not expired");

    let (etcd, url) = healthy_etcd(&c, &a_pki);
    let ca = a_pki.join("etcd/ca.crt");
    let hc = (
        a_pki.join("etcd/healthcheck-client.crt"),
        a_pki.join("etcd/healthcheck-client.key"),
    );
    // The API server's client writes and reads.
    let ac = (
        a_pki.join("apiserver-etcd-client.crt"),
        a_pki.join("apiserver-etcd-client.key"),
    );
    assert_ok(&etcdctl(
        &url,
        &ca,
        Some((&ac.0, &ac.1)),
        &["put", "/registry/hsmca", "ok"],
    ));
    let got = assert_ok(&etcdctl(
        &url,
        &ca,
        Some((&ac.0, &ac.1)),
        &["get", "/registry/hsmca", "--print-value-only"],
    ));
    assert_eq!(got.trim(), "ok");

    let refused = |cert: Option<(&Path, &Path)>, why: &str, log_says: &str| {
        let out = etcdctl(&url, &ca, cert, &["endpoint", "health"]);
        assert!(
            !out.status.success(),
            "etcd accepted {why}:\n{}",
            stdout_of(&out)
        );
        let start = Instant::now();
        while !etcd.log_text().contains(log_says) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            etcd.log_text().contains(log_says),
            "etcd's log does not say {log_says:?} for {why}:\n{}",
            etcd.log_text()
        );
    };
    refused(
        None,
        "no client certificate",
        "didn't provide a certificate",
    );
    let b_pki = c.t.path("prod-b/pki");
    refused(
        Some((
            &b_pki.join("etcd/healthcheck-client.crt"),
            &b_pki.join("etcd/healthcheck-client.key"),
        )),
        "another cluster's client",
        "certificate signed by unknown authority",
    );
    refused(
        Some((
            &x_pki.join("etcd/healthcheck-client.crt"),
            &x_pki.join("etcd/healthcheck-client.key"),
        )),
        "an expired client",
        "certificate has expired",
    );
    // Still healthy for its own client afterwards.
    assert_ok(&etcdctl(
        &url,
        &ca,
        Some((&hc.0, &hc.1)),
        &["endpoint", "health"],
    ));
    drop(etcd);
}

/// `openssl s_server` for one connection with `pki`'s API server certificate, `client_auth`
/// adding its chain and client verification; returns once it accepts, logging to `name.log`.
fn s_server(
    c: &Ceremony,
    name: &str,
    pki: &Path,
    client_auth: impl FnOnce(&mut Command),
) -> (Running, u16, std::process::ChildStdin) {
    let port = free_port();
    let mut cmd = Command::new("timeout");
    cmd.args([
        "60",
        "openssl",
        "s_server",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-naccept",
        "1",
    ])
    .arg("-cert")
    .arg(pki.join("apiserver.crt"))
    .arg("-key")
    .arg(pki.join("apiserver.key"));
    client_auth(&mut cmd);
    let mut run = spawn_logged(&mut cmd, &c.t.path(format!("{name}.log")), Stdio::piped());
    // s_server quits at end of stdin: keep it open while the test runs.
    let stdin = run.child.stdin.take().unwrap();
    let start = Instant::now();
    while !run.log_text().contains("ACCEPT") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "s_server did not start:\n{}",
            run.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (run, port, stdin)
}

fn s_client(port: u16, cert: &Path, key: &Path, chain: &Path, root: &Path) -> std::process::Output {
    run_command(
        Command::new("timeout")
            .args([
                "20",
                "openssl",
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
            ])
            .args([
                "-servername",
                "prod-a.example.com",
                "-verify_hostname",
                "prod-a.example.com",
            ])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .arg("-cert_chain")
            .arg(chain)
            .arg("-CAfile")
            .arg(root)
            .arg("-verify_return_error"),
    )
}

/// openssl mTLS, both sides anchored on the offline root only: the API server serves its chain
/// (leaf + kubernetes-ca) and the admin client sends its chain; another cluster's admin fails.
#[test_needs(softhsm2, kubectl)]
fn apiserver_and_admin_mtls_anchored_on_the_root() {
    let c = ceremony();
    kubeadm_cluster(&c, "prod-a", "prod-a", "ecdsa-p256");
    kubeadm_cluster(&c, "prod-b", "prod-b", "ecdsa-p256");
    let root = c.t.path("root.crt");
    let a_pki = c.t.path("prod-a/pki");
    let (cert, key) = check_kubeconfig(
        &c.t.path("prod-a/admin.conf"),
        &a_pki.join("ca.crt"),
        &root,
        "kubernetes-admin",
        "O = kubeadm:cluster-admins, CN = kubernetes-admin",
        "https://prod-a.example.com:6443",
    );
    let (mut server, port, stdin) = s_server(&c, "s_server", &a_pki, |cmd| {
        cmd.arg("-cert_chain")
            .arg(a_pki.join("ca.crt"))
            .args(["-Verify", "2", "-verify_return_error", "-CAfile"])
            .arg(&root);
    });
    let out = s_client(port, &cert, &key, &a_pki.join("ca.crt"), &root);
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(out.status.success(), "s_client failed:\n{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(
        text.contains("Verified peername: prod-a.example.com"),
        "{text}"
    );
    assert!(
        text.contains("depth=1 O = prod-a, CN = kubernetes"),
        "the server did not serve its chain:\n{text}"
    );
    assert!(
        server.wait_exit(Duration::from_secs(20)),
        "s_server did not finish:\n{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(
        log.contains("depth=0 O = kubeadm:cluster-admins, CN = kubernetes-admin"),
        "{log}"
    );
    assert!(
        log.contains("depth=2 C = KR, O = Example, CN = Example Root CA 2026"),
        "{log}"
    );
    assert!(!log.contains("verify error"), "{log}");
    drop(stdin);
    drop(server);

    // prod-b's admin chains to the same root, so a server of prod-a trusts only prod-a's
    // kubernetes-ca, as the API server's --client-ca-file does: prod-b's admin is refused.
    let b = c.t.path("prod-b");
    let (b_cert, b_key) = check_kubeconfig(
        &b.join("admin.conf"),
        &b.join("pki/ca.crt"),
        &root,
        "kubernetes-admin",
        "O = kubeadm:cluster-admins, CN = kubernetes-admin",
        "https://prod-a.example.com:6443",
    );
    let (mut server, port, stdin) = s_server(&c, "s_server_b", &a_pki, |cmd| {
        cmd.args(["-Verify", "2", "-verify_return_error", "-CAfile"])
            .arg(a_pki.join("ca.crt"))
            .arg("-partial_chain");
    });
    let _ = s_client(port, &b_cert, &b_key, &b.join("pki/ca.crt"), &root);
    assert!(
        server.wait_exit(Duration::from_secs(20)) || server.log_text().contains("verify error")
    );
    let log = server.log_text();
    assert!(
        log.contains("verify error") || log.contains("certificate verify failed"),
        "prod-b's admin was accepted:\n{log}"
    );
    drop(stdin);
}

/// A name the cluster file asks for that the CA's name constraints do not permit fails at issue
/// time, naming the name and the constraint; nothing is written. Without constraints it issues.
#[test_needs(softhsm2)]
fn names_outside_the_constraints_fail_at_issue_time() {
    let c = ceremony();
    let cfg = cluster_file(&c, "cluster.toml", "prod-a", "");
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    assert_ok(&sign_as_ceremony(&c, "prod-a", &cfg, &[]));
    let bad_node = cluster_file(
        &c,
        "bad-node.toml",
        "prod-a",
        "[[worker]]\nname = \"intruder\"\nip = \"10.0.0.99\"\n",
    );
    // An advertise address outside the node range: the kubeadm apiserver and etcd certificates.
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("ip = \"10.0.0.10\"", "ip = \"192.168.50.10\"");
    let bad_ip = c.t.path("bad-ip.toml");
    fs::write(&bad_ip, text).unwrap();
    let before = c.t.snapshot();
    let err = assert_fails(&issue(
        &c,
        "prod-a/pki",
        "hard-way",
        &bad_node,
        &["--out", "hw"],
    ));
    assert_mentions(&err, &["DNS:intruder"]);
    assert_mentions(&err, &["DNS:cluster.local"]);
    assert_mentions(&err, &["not permitted by the name constraints"]);
    assert_same_files(&before, &c.t.snapshot());
    let err = assert_fails(&issue(&c, "prod-a/pki", "kubeadm", &bad_ip, &[]));
    assert_mentions(&err, &["IP:192.168.50.10"]);
    assert_mentions(&err, &["IP:10.0.0.0/16"]);
    assert_same_files(&before, &c.t.snapshot());

    // The same cluster signed without name constraints issues the same names.
    request(&c, "free", "prod-a", "ecdsa-p256");
    assert_ok(&sign_as_ceremony(
        &c,
        "free",
        &cfg,
        &["--no-name-constraints"],
    ));
    let root = c.t.path("root.crt");
    let free = c.t.path("free/pki");
    check_cluster_ca(
        &free.join("ca.crt"),
        &free.join("ca-chain.crt"),
        &root,
        "O = prod-a, CN = kubernetes",
        false,
    );
    assert_ok(&issue(
        &c,
        "free/pki",
        "hard-way",
        &bad_node,
        &["--out", "free/hw"],
    ));
    verify_chain(
        &root,
        &free.join("ca.crt"),
        &c.t.path("free/hw/intruder.crt"),
    );
    lint_clean(&c.t.path("free/hw/intruder.crt"));
    assert_ok(&issue(&c, "free/pki", "kubeadm", &bad_ip, &[]));
    verify_chain(
        &root,
        &free.join("etcd/ca.crt"),
        &free.join("etcd/server.crt"),
    );

    // Flags replace the domain and add a subtree: the kubeadm set of the file's domain then
    // fails at issue time, naming the name and the replaced constraint.
    request(&c, "other", "prod-a", "ecdsa-p256");
    let out = assert_ok(&sign_as_ceremony(
        &c,
        "other",
        &cfg,
        &[
            "--cluster-domain",
            "prod-a.internal",
            "--dns",
            "example.net",
            "--service-cidr",
            "10.32.0.0/16",
        ],
    ));
    assert!(
        out.contains("prod-a.internal")
            && out.contains("example.net")
            && !out.contains("cluster.local"),
        "{out}"
    );
    let nc = openssl_x509(&c.t.path("other/pki/ca.crt"), &["-ext", "nameConstraints"]);
    assert!(
        nc.contains("DNS:prod-a.internal")
            && nc.contains("DNS:example.net")
            && nc.contains("IP:10.32.0.0/255.255.0.0"),
        "{nc}"
    );
    assert!(
        !nc.contains("cluster.local") && !nc.contains("10.96.0.0"),
        "{nc}"
    );
    let err = assert_fails(&issue(&c, "other/pki", "kubeadm", &cfg, &[]));
    assert_mentions(&err, &["DNS:kubernetes.default.svc.cluster.local"]);
    assert_mentions(&err, &["DNS:prod-a.internal"]);
}

/// A revoked cluster intermediate: `hsmca revoke` + the root's CRL, judged by
/// `openssl verify -crl_check` (etcd and the Kubernetes components take no CRL for an
/// intermediate, so a CRL-checking verifier stands in for them here).
#[test_needs(softhsm2)]
fn revoked_intermediate_is_refused_by_a_crl_checking_verifier() {
    let c = ceremony();
    kubeadm_cluster(&c, "prod-a", "prod-a", "ecdsa-p256");
    let root = c.t.path("root.crt");
    let etcd_ca = c.t.path("prod-a/pki/etcd/ca.crt");
    let crl_verify = |crl: &str| {
        run_command(
            Command::new("openssl")
                .args([
                    "verify",
                    "-x509_strict",
                    "-crl_check",
                    "-CRLfile",
                    crl,
                    "-CAfile",
                ])
                .arg(&root)
                .arg(&etcd_ca)
                .current_dir(c.t.dir()),
        )
    };
    assert_ok(&c.t.run([
        "--ca-dir",
        "ca",
        "crl",
        "--key",
        &c.uri,
        "--next-update",
        "30d",
        "--out",
        "root-1.crl",
    ]));
    let ok = crl_verify("root-1.crl");
    assert!(
        ok.status.success() && stdout_of(&ok).contains(": OK"),
        "{}{}",
        stdout_of(&ok),
        stderr_of(&ok)
    );
    let serial = openssl_x509(&etcd_ca, &["-serial"]);
    let serial = serial.trim().strip_prefix("serial=").unwrap();
    assert_ok(&c.t.run([
        "--ca-dir",
        "ca",
        "revoke",
        "--serial",
        serial,
        "--reason",
        "keyCompromise",
    ]));
    assert_ok(&c.t.run([
        "--ca-dir",
        "ca",
        "crl",
        "--key",
        &c.uri,
        "--next-update",
        "30d",
        "--out",
        "root-2.crl",
    ]));
    let refused = crl_verify("root-2.crl");
    assert!(!refused.status.success(), "a revoked intermediate verified");
    assert_mentions(
        &format!("{}{}", stdout_of(&refused), stderr_of(&refused)),
        &["certificate revoked"],
    );
    // The other two intermediates of the cluster still verify against the new CRL.
    for other in ["ca.crt", "front-proxy-ca.crt"] {
        let out = run_command(
            Command::new("openssl")
                .args([
                    "verify",
                    "-x509_strict",
                    "-crl_check",
                    "-CRLfile",
                    "root-2.crl",
                    "-CAfile",
                ])
                .arg(&root)
                .arg(c.t.path("prod-a/pki").join(other))
                .current_dir(c.t.dir()),
        );
        assert!(out.status.success(), "{other}: {}", stdout_of(&out));
    }
}

/// Ed25519 is refused with the reason at every step; requests of another cluster are refused;
/// the cluster side never needs the token and the ceremony never needs a key.
#[test_needs(softhsm2)]
fn refusals_ed25519_swapped_requests_and_key_separation() {
    let c = ceremony();
    let err = assert_fails(&cluster_side(
        &c,
        &[
            "k8s",
            "request",
            "--cluster",
            "prod-a",
            "--out",
            "ed",
            "--algorithm",
            "ed25519",
        ],
    ));
    assert_mentions(&err, &["kubeadm loads only RSA and ECDSA"]);
    assert!(!c.t.path("ed").exists());

    let cfg = cluster_file(&c, "cluster.toml", "prod-a", "");
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    // An Ed25519 CSR in place of etcd-ca's: refused before the token is used.
    let ed = c.t.mkdir("ed25519");
    assert_ok(&run_command(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ed25519",
                "-nodes",
                "-subj",
                "/O=prod-a/CN=etcd-ca",
                "-keyout",
            ])
            .arg(ed.join("k.pem"))
            .arg("-out")
            .arg(ed.join("etcd-ca.csr")),
    ));
    fs::create_dir_all(c.t.path("edreq/requests")).unwrap();
    for f in ["kubernetes-ca.csr", "front-proxy-ca.csr"] {
        fs::copy(
            c.t.path("prod-a/requests").join(f),
            c.t.path("edreq/requests").join(f),
        )
        .unwrap();
    }
    fs::copy(
        ed.join("etcd-ca.csr"),
        c.t.path("edreq/requests/etcd-ca.csr"),
    )
    .unwrap();
    let err = assert_fails(&sign_as_ceremony(&c, "edreq", &cfg, &[]));
    assert_mentions(&err, &["Ed25519"]);
    assert!(!c.t.path("ceremony/edreq/pki").exists());

    // Without a CA directory nothing is signed: the CAs must be recorded to be revocable.
    let err = assert_fails(&c.t.run([
        "k8s",
        "sign",
        "--key",
        &c.uri,
        "--issuer",
        "root.crt",
        "--requests",
        "prod-a",
        "--config",
        cfg.to_str().unwrap(),
    ]));
    assert_mentions(&err, &["--ca-dir"]);
    assert!(!c.t.path("prod-a/pki/ca.crt").exists());

    // prod-a's requests signed as prod-b: refused, naming both.
    let cfg_b = cluster_file(&c, "prod-b.toml", "prod-b", "");
    let err = assert_fails(&sign_as_ceremony(&c, "prod-a", &cfg_b, &[]));
    assert_mentions(&err, &["prod-b"]);
    assert!(!c.t.path("ceremony/prod-a/pki/ca.crt").exists());

    // The ceremony never touches private keys (sign_as_ceremony checks its directory holds
    // none) and the cluster side never touches the token (no module in its environment).
    assert_ok(&sign_as_ceremony(&c, "prod-a", &cfg, &[]));
    assert_ok(&issue(&c, "prod-a/pki", "kubeadm", &cfg, &[]));
    // A leaf algorithm of Ed25519 is refused too, and a ca.crt holding a chain.
    let err = assert_fails(&issue(
        &c,
        "prod-a/pki",
        "hard-way",
        &cfg,
        &["--out", "hw", "--algorithm", "ed25519"],
    ));
    assert_mentions(&err, &["Ed25519"]);
    let pki = c.t.path("prod-a/pki");
    fs::copy(pki.join("ca-chain.crt"), pki.join("ca.crt")).unwrap();
    let err = assert_fails(&issue(&c, "prod-a/pki", "hard-way", &cfg, &["--out", "hw"]));
    assert_mentions(&err, &["holds 2 certificates"]);
    // An unknown field in the cluster file is an error.
    let typo = cluster_file(
        &c,
        "typo.toml",
        "prod-a",
        "[[worker]]\nname = \"node-9\"\nip = \"10.0.0.9\"\nrole = \"x\"\n",
    );
    let err = assert_fails(&issue(
        &c,
        "prod-a/pki",
        "hard-way",
        &typo,
        &["--out", "hw"],
    ));
    assert_mentions(&err, &["unknown field"]);
}

/// One RSA-2048 run of the kubeadm set: every certificate verifies and lints clean, leaves
/// carry keyEncipherment, and etcd's healthcheck works.
#[test_needs(softhsm2, etcd)]
fn kubeadm_preset_rsa_2048() {
    let c = ceremony();
    kubeadm_cluster(&c, "prod-a", "prod-a", "rsa-2048");
    let root = c.t.path("root.crt");
    let pki = c.t.path("prod-a/pki");
    for (stem, ca, _, _) in KUBEADM_FILES {
        let crt = pki.join(format!("{stem}.crt"));
        let text = openssl_x509(&crt, &["-text"]);
        assert!(text.contains("Public-Key: (2048 bit)"), "{stem}");
        assert!(
            text.contains("Digital Signature, Key Encipherment"),
            "{stem}: {text}"
        );
        assert!(text.contains("sha256WithRSAEncryption"), "{stem}");
        verify_chain(&root, &pki.join(ca), &crt);
        lint_clean(&crt);
    }
    for crt in ["ca.crt", "etcd/ca.crt", "front-proxy-ca.crt"] {
        lint_clean(&pki.join(crt));
    }
    healthy_etcd(&c, &pki);
}

/// An RSA root signs the cluster CAs with RSASSA-PSS (`--pss`) and with PKCS#1 v1.5 SHA-384
/// (`--hash 384`): the lint before signing uses exactly that algorithm, the chains verify
/// with openssl and lint clean, and etcd (Go's crypto/x509) accepts the PSS chain.
/// `k8s sign` with a root of `alg` signing with `flags`: the three cluster CAs name
/// `sig_name`, pass openssl (-x509_strict), certtool and pkilint, and the kubeadm set issued
/// under them verifies to the root. Returns the ceremony and the cluster's pki directory.
fn k8s_sign_with(c: &Ceremony, dir: &str, flags: &[&str], sig_name: &str) -> PathBuf {
    let root = c.t.path("root.crt");
    let cfg = cluster_file(c, &format!("{dir}.toml"), dir, "");
    request(c, dir, dir, "ecdsa-p256");
    assert_ok(&sign_as_ceremony(c, dir, &cfg, flags));
    assert_ok(&issue(c, &format!("{dir}/pki"), "kubeadm", &cfg, &[]));
    let pki = c.t.path(dir).join("pki");
    for (ca, chain) in [
        ("ca.crt", "ca-chain.crt"),
        ("etcd/ca.crt", "etcd/ca-chain.crt"),
        ("front-proxy-ca.crt", "front-proxy-ca-chain.crt"),
    ] {
        let text = openssl_x509(&pki.join(ca), &["-text"]);
        assert!(text.contains(sig_name), "{dir} {ca}: {text}");
        openssl_verify(&root, &[], &pki.join(ca)).unwrap();
        if let Err(e) = certtool_verify_chain(&pki.join(chain)) {
            panic!("certtool {dir} {chain}: {e}");
        }
        lint_clean(&pki.join(ca));
    }
    verify_chain(&root, &pki.join("ca.crt"), &pki.join("apiserver.crt"));
    pki
}

/// k8s sign with each root key type and signature: RSA-3072 with PKCS#1 v1.5, RSA-PSS and
/// SHA-384, and ECDSA P-384; etcd accepts the chains of the PSS and SHA-384 roots.
#[test_needs(softhsm2, etcd)]
fn k8s_sign_with_pss_and_sha384_roots() {
    let c = ceremony_of("rsa-3072");
    k8s_sign_with(&c, "pkcs1", &[], "sha256WithRSAEncryption");
    let pss = k8s_sign_with(&c, "pss", &["--pss"], "rsassaPss");
    let sha384 = k8s_sign_with(&c, "sha384", &["--hash", "384"], "sha384WithRSAEncryption");
    healthy_etcd(&c, &pss);
    healthy_etcd(&c, &sha384);
    let p384 = ceremony_of("ecdsa-p384");
    k8s_sign_with(&p384, "p384", &[], "ecdsa-with-SHA384");
}

/// A cluster file is the cluster side's: one that would get the root to sign a cluster CA
/// permitted for a whole top-level domain (a worker named `com`, `domain = "com"`, an API
/// endpoint `net:6443`) is refused before the token signs, naming the constraint; the root's
/// CA directory records the refusal and issues nothing.
#[test_needs(softhsm2)]
fn cluster_files_that_constrain_nothing_are_refused() {
    let c = ceremony();
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    let text = fs::read_to_string(repo_root().join("examples/cluster.toml")).unwrap();
    let worker = cluster_file(
        &c,
        "worker-com.toml",
        "prod-a",
        "[[worker]]\nname = \"com\"\nip = \"10.0.0.77\"\n",
    );
    let domain = c.t.path("domain-com.toml");
    fs::write(
        &domain,
        text.replace("domain = \"cluster.local\"", "domain = \"com\""),
    )
    .unwrap();
    let endpoint = c.t.path("endpoint-net.toml");
    let endpoint_text = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("api_endpoint") {
                "api_endpoint = \"net:6443\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&endpoint, endpoint_text).unwrap();
    let refusals = || {
        fs::read_to_string(c.t.path("ca/audit.jsonl"))
            .unwrap_or_default()
            .matches("\"event\":\"request_refused\"")
            .count()
    };
    for (cfg, cause) in [
        (&worker, "DNS:com"),
        (&domain, "DNS:com"),
        (&endpoint, "DNS:net"),
    ] {
        let before = refusals();
        let out = sign_as_ceremony(&c, "prod-a", cfg, &[]);
        let err = assert_fails(&out);
        assert_mentions(&err, &[cause]);
        assert_mentions(&err, &["public suffix"]);
        assert!(!c.t.path("ceremony/prod-a/pki/ca.crt").exists());
        assert_eq!(refusals(), before + 1, "{err}");
    }
}

/// k8s sign shows the cluster CAs before the token signs and asks for the go-ahead: without a
/// terminal and without --yes it refuses, having logged in nowhere and signed nothing.
#[test_needs(softhsm2)]
fn k8s_sign_asks_before_the_root_signs() {
    let c = ceremony();
    let cfg = cluster_file(&c, "prod-a.toml", "prod-a", "");
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    let log_before = fs::read(c.t.path("ca/audit.jsonl")).unwrap();
    let out = c.t.run([
        "--ca-dir",
        "ca",
        "k8s",
        "sign",
        "--key",
        &c.uri,
        "--requests",
        "prod-a",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_mentions(&stderr_of(&out), &["--yes"]);
    let shown = stdout_of(&out);
    for what in [
        "kubernetes-ca",
        "etcd-ca",
        "front-proxy-ca",
        "name constraints",
        "DNS: ",
        "IP: ",
    ] {
        assert!(shown.contains(what), "{what} not shown:\n{shown}");
    }
    assert!(!c.t.path("prod-a/pki/ca.crt").exists());
    assert_eq!(fs::read(c.t.path("ca/audit.jsonl")).unwrap(), log_before);
}

/// A link planted in the cluster directory is never followed: `k8s sign` with `pki` pointing
/// at the CA directory (or a request that is a link) and `k8s issue` with a certificate name
/// that is a link each fail naming the link, write nothing through it, and `k8s sign` records
/// the refusal.
#[test_needs(softhsm2)]
fn links_planted_in_the_cluster_directory_are_refused() {
    let c = ceremony();
    let cfg = cluster_file(&c, "prod-a.toml", "prod-a", "");
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    let refusals = || {
        fs::read_to_string(c.t.path("ca/audit.jsonl"))
            .unwrap()
            .matches("\"event\":\"request_refused\"")
            .count()
    };
    let sign = |dir: &str| c.t.run(k8s_sign_args(&c, dir, &cfg).with(&["--force"]));
    let ca_files = files_in(&c.t.path("ca"));

    // 1. pki -> the CA directory: refused, naming the link, with --force too.
    let planted = c.t.path("prod-a/pki");
    fs::rename(&planted, c.t.path("prod-a/pki.real")).unwrap();
    std::os::unix::fs::symlink(c.t.path("ca"), &planted).unwrap();
    let before = refusals();
    let err = assert_fails(&sign("prod-a"));
    assert_mentions(&err, &["prod-a/pki", "symbolic link"]);
    assert_eq!(refusals(), before + 1, "{err}");
    fs::remove_file(&planted).unwrap();
    fs::rename(c.t.path("prod-a/pki.real"), &planted).unwrap();

    // 2. A request that is a link to a CSR elsewhere.
    let real = c.t.path("elsewhere.csr");
    fs::rename(c.t.path("prod-a/requests/etcd-ca.csr"), &real).unwrap();
    std::os::unix::fs::symlink(&real, c.t.path("prod-a/requests/etcd-ca.csr")).unwrap();
    let err = assert_fails(&sign("prod-a"));
    assert_mentions(&err, &["etcd-ca.csr", "symbolic link"]);
    fs::remove_file(c.t.path("prod-a/requests/etcd-ca.csr")).unwrap();
    fs::rename(&real, c.t.path("prod-a/requests/etcd-ca.csr")).unwrap();
    let after_ca: std::collections::BTreeMap<_, _> = files_in(&c.t.path("ca"))
        .into_iter()
        .filter(|(p, _)| p != Path::new("audit.jsonl"))
        .collect();
    let before_ca: std::collections::BTreeMap<_, _> = ca_files
        .into_iter()
        .filter(|(p, _)| p != Path::new("audit.jsonl"))
        .collect();
    assert_eq!(after_ca, before_ca, "the CA directory changed");
    assert!(
        !fs::read_to_string(c.t.path("ca/audit.jsonl"))
            .unwrap()
            .contains("csr_signed")
    );

    // 3. Signed properly, then k8s issue with apiserver.crt planted as a link: refused, and
    //    the file it points at is untouched.
    assert_ok(&sign("prod-a"));
    let target = c.t.path("victim.crt");
    fs::write(&target, b"not to be replaced\n").unwrap();
    std::os::unix::fs::symlink(&target, c.t.path("prod-a/pki/apiserver.crt")).unwrap();
    let err = assert_fails(&issue(&c, "prod-a/pki", "kubeadm", &cfg, &["--force"]));
    assert_mentions(&err, &["apiserver.crt", "symbolic link"]);
    assert_eq!(fs::read(&target).unwrap(), b"not to be replaced\n");
}

// ------------------------------------------------------------------------------------------------
// Over their lifetime (issue 18): check, renew, request --renew
// ------------------------------------------------------------------------------------------------

/// `k8s check --json` of a set: its report and whether it exited 0.
fn k8s_check(c: &Ceremony, pki: &str, cfg: &Path, extra: &[&str]) -> (serde_json::Value, bool) {
    let cfg = cfg.to_str().unwrap();
    let mut args = vec!["k8s", "check", "--pki", pki, "--config", cfg, "--json"];
    args.extend_from_slice(extra);
    let out = cluster_side(c, &args);
    (json(&stdout_of(&out)), out.status.success())
}

fn statuses(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A set issued for 2 days: `check --warn 30d` lists every leaf as expiring and exits 1;
/// `renew --within 30d` renews them; `check` then exits 0. Each renewed certificate differs
/// from the old one only in serial and validity; etcd accepts the renewed healthcheck client
/// and refuses another cluster's; the renewed API server serves `s_client` anchored on the root.
#[test_needs(softhsm2, etcd)]
fn an_expiring_kubeadm_set_is_checked_renewed_and_still_trusted() {
    let c = ceremony();
    let cfg = cluster_file(&c, "prod-a.toml", "prod-a", "");
    request(&c, "prod-a", "prod-a", "ecdsa-p256");
    assert_ok(&sign_as_ceremony(&c, "prod-a", &cfg, &[]));
    assert_ok(&issue(
        &c,
        "prod-a/pki",
        "kubeadm",
        &cfg,
        &["--validity", "2d"],
    ));
    kubeadm_cluster(&c, "prod-b", "prod-b", "ecdsa-p256");

    let (report, ok) = k8s_check(&c, "prod-a/pki", &cfg, &["--warn", "30d"]);
    assert!(!ok, "check passed an expiring set");
    let files = statuses(&report);
    assert!(files.len() >= 15, "{files:?}");
    for (kind, file, status) in &files {
        let want = if kind == "ca" { "ok" } else { "expiring" };
        assert_eq!(status, want, "{file}");
    }
    // The same shape as inspect --json: who the admin is.
    let admin = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"].as_str().unwrap().ends_with("admin.conf"))
        .unwrap();
    assert_eq!(admin["kubernetes"]["user"], "kubernetes-admin");
    assert_eq!(admin["kubernetes"]["groups"][0], "kubeadm:cluster-admins");
    let inspected = json(&assert_ok(&c.t.run([
        "inspect",
        "prod-a/pki/apiserver-kubelet-client.crt",
        "--json",
    ])));
    assert_eq!(
        inspected["kubernetes"][0]["groups"][0],
        "kubeadm:cluster-admins"
    );

    let pki = c.t.path("prod-a/pki");
    let before: Vec<(String, Vec<u8>)> = [
        "apiserver.crt",
        "etcd/healthcheck-client.crt",
        "front-proxy-client.crt",
    ]
    .iter()
    .map(|f| (f.to_string(), cert_der(&pki.join(f))))
    .collect();
    let renewed = assert_ok(&cluster_side(
        &c,
        &[
            "k8s",
            "renew",
            "--pki",
            "prod-a/pki",
            "--config",
            cfg.to_str().unwrap(),
            "--within",
            "30d",
        ],
    ));
    assert!(renewed.contains("renewed"), "{renewed}");
    let (report, ok) = k8s_check(&c, "prod-a/pki", &cfg, &["--warn", "30d"]);
    assert!(ok, "check after renew: {report:#}");
    // The renewed certificates lint clean and chain to the root as the first ones did.
    for (f, ca) in [
        ("apiserver.crt", "ca.crt"),
        ("etcd/server.crt", "etcd/ca.crt"),
        ("apiserver-kubelet-client.crt", "ca.crt"),
    ] {
        lint_clean(&pki.join(f));
        verify_chain(&c.t.path("root.crt"), &pki.join(ca), &pki.join(f));
    }

    for (f, old) in &before {
        assert_eq!(
            cert_der(&pki.join(format!("{f}.old"))),
            *old,
            "{f}.old is not the old one"
        );
        let new = cert_der(&pki.join(f));
        let old = <x509_cert::Certificate as der::Decode>::from_der(old).unwrap();
        let new = <x509_cert::Certificate as der::Decode>::from_der(&new).unwrap();
        let (o, n) = (old.tbs_certificate(), new.tbs_certificate());
        assert_ne!(o.serial_number(), n.serial_number(), "{f}");
        assert_ne!(o.validity(), n.validity(), "{f}");
        assert_eq!(o.subject(), n.subject(), "{f}");
        assert_eq!(o.issuer(), n.issuer(), "{f}");
        assert_eq!(
            o.subject_public_key_info(),
            n.subject_public_key_info(),
            "{f}"
        );
        assert_eq!(o.signature(), n.signature(), "{f}");
        assert_eq!(o.extensions(), n.extensions(), "{f}: extensions changed");
    }

    // etcd accepts the renewed healthcheck client (healthy_etcd asks with it), refuses prod-b's.
    let (etcd, url) = healthy_etcd(&c, &pki);
    let ca = pki.join("etcd/ca.crt");
    let b = c.t.path("prod-b/pki");
    let foreign = etcdctl(
        &url,
        &ca,
        Some((
            &b.join("etcd/healthcheck-client.crt"),
            &b.join("etcd/healthcheck-client.key"),
        )),
        &["endpoint", "health"],
    );
    assert!(!foreign.status.success(), "etcd accepted prod-b's client");
    drop(etcd);

    // The renewed API server serves its chain to s_client anchored on the root.
    let root = c.t.path("root.crt");
    let (mut server, port, stdin) = s_server(&c, "s_server_renewed", &pki, |cmd| {
        cmd.arg("-cert_chain").arg(pki.join("ca.crt"));
    });
    let out = s_client(
        port,
        &pki.join("apiserver-kubelet-client.crt"),
        &pki.join("apiserver-kubelet-client.key"),
        &pki.join("ca.crt"),
        &root,
    );
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    drop(stdin);
    let _ = server.wait_exit(Duration::from_secs(20));
}

/// The Hard Way set too: expiring, renewed, clean.
#[test_needs(softhsm2)]
fn an_expiring_hard_way_set_is_checked_and_renewed() {
    let c = ceremony();
    let cfg = cluster_file(&c, "hw.toml", "hw", "");
    request(&c, "hw", "hw", "ecdsa-p256");
    assert_ok(&sign_as_ceremony(&c, "hw", &cfg, &[]));
    assert_ok(&issue(
        &c,
        "hw/pki",
        "hard-way",
        &cfg,
        &["--validity", "2d"],
    ));
    let (report, ok) = k8s_check(&c, "hw/pki", &cfg, &["--warn", "30d"]);
    assert!(!ok);
    assert_eq!(report["preset"], "hard-way");
    for (kind, file, status) in statuses(&report) {
        assert_eq!(
            status,
            if kind == "ca" { "ok" } else { "expiring" },
            "{file}"
        );
    }
    assert_ok(&cluster_side(
        &c,
        &[
            "k8s",
            "renew",
            "--pki",
            "hw/pki",
            "--config",
            cfg.to_str().unwrap(),
            "--within",
            "30d",
        ],
    ));
    let (report, ok) = k8s_check(&c, "hw/pki", &cfg, &["--warn", "30d"]);
    assert!(ok, "{report:#}");
}

/// A key file that no longer matches, a kubeconfig that trusts another CA, and a serving
/// certificate lacking a name the cluster file asks for are each reported with the file.
#[test_needs(softhsm2)]
fn check_names_a_wrong_key_a_foreign_ca_and_a_missing_name() {
    let c = ceremony();
    let cfg = kubeadm_cluster(&c, "prod-a", "prod-a", "ecdsa-p256");
    kubeadm_cluster(&c, "prod-b", "prod-b", "ecdsa-p256");
    let (_, ok) = k8s_check(&c, "prod-a/pki", &cfg, &[]);
    assert!(ok, "a fresh set is not clean");
    let a = c.t.path("prod-a");
    let b = c.t.path("prod-b");
    fs::copy(
        b.join("pki/front-proxy-client.key"),
        a.join("pki/front-proxy-client.key"),
    )
    .unwrap();
    fs::copy(b.join("scheduler.conf"), a.join("scheduler.conf")).unwrap();
    let moved =
        fs::read_to_string(&cfg)
            .unwrap()
            .replacen("ip = \"10.0.0.10\"", "ip = \"10.0.0.11\"", 1);
    let moved_cfg = c.t.path("moved.toml");
    fs::write(&moved_cfg, moved).unwrap();

    let (report, ok) = k8s_check(&c, "prod-a/pki", &moved_cfg, &[]);
    assert!(!ok);
    let problems = |suffix: &str| -> String {
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["file"].as_str().unwrap().ends_with(suffix))
            .map(|f| f["problems"].to_string())
            .unwrap_or_else(|| panic!("{suffix} not reported: {report:#}"))
    };
    assert_mentions(&problems("front-proxy-client.crt"), &["another key"]);
    assert_mentions(&problems("scheduler.conf"), &["trusts another CA"]);
    assert_mentions(
        &problems("pki/apiserver.crt"),
        &["lacks names", "IP:10.0.0.11"],
    );
    let text = stderr_of(&cluster_side(
        &c,
        &[
            "k8s",
            "check",
            "--pki",
            "prod-a/pki",
            "--config",
            moved_cfg.to_str().unwrap(),
        ],
    ));
    assert_mentions(&text, &["need action"]);
}

/// Renewed cluster CAs (same key, same subject, new validity, signed in a root ceremony from
/// `k8s request --renew`) keep the old leaves valid.
#[test_needs(softhsm2)]
fn renewed_cluster_cas_keep_the_old_leaves_valid() {
    let c = ceremony();
    let cfg = kubeadm_cluster(&c, "prod-a", "prod-a", "ecdsa-p256");
    let pki = c.t.path("prod-a/pki");
    let old_ca = cert_der(&pki.join("ca.crt"));
    fs::remove_dir_all(c.t.path("prod-a/requests")).unwrap();
    fs::remove_dir_all(c.t.path("ceremony/prod-a")).unwrap();
    let out = assert_ok(&cluster_side(
        &c,
        &["k8s", "request", "--renew", "--out", "prod-a"],
    ));
    assert_mentions(&out, &["existing key"]);
    assert_ok(&sign_as_ceremony(&c, "prod-a", &cfg, &["--force"]));
    let new_ca = cert_der(&pki.join("ca.crt"));
    assert_ne!(old_ca, new_ca, "the CA was not renewed");
    let (o, n) = (
        <x509_cert::Certificate as der::Decode>::from_der(&old_ca).unwrap(),
        <x509_cert::Certificate as der::Decode>::from_der(&new_ca).unwrap(),
    );
    assert_eq!(o.tbs_certificate().subject(), n.tbs_certificate().subject());
    assert_eq!(
        o.tbs_certificate().subject_public_key_info(),
        n.tbs_certificate().subject_public_key_info()
    );
    // The leaves issued under the old CA verify under the new one, anchored on the root.
    verify_chain(
        &c.t.path("root.crt"),
        &pki.join("ca.crt"),
        &pki.join("apiserver.crt"),
    );
    let (_, ok) = k8s_check(&c, "prod-a/pki", &cfg, &[]);
    assert!(ok);
}
