//! The component certificates of a cluster, issued on the cluster side with the cluster CAs'
//! file keys: kubeadm's set in kubeadm's file names, or Kubernetes the Hard Way's set. Every
//! name is checked against the issuing CA's name constraints before anything is issued.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::beneath::{check_no_links, create_dir_below, read_below};
use super::cluster::{Cluster, Host};
use super::constraints::{check_sans, service_names};
use super::kubeconfig::Kubeconfig;
use super::{CaRole, ValidityChoice, check_key_algorithm, validity_under};
use crate::error::{Error, MAX_INPUT, Result};
use crate::output::{Overwrite, check_free, write_atomic};
use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::decode::{certificate_to_pem, load_certificates};
use crate::x509::issue::{CertRequest, issuer_facts, prepare};
use crate::x509::name::parse_name;
use crate::x509::profile::{LeafUsage, Profile, San, check_dns_name};
use crate::x509::serial::random_serial;
use crate::x509::signer::CaSigner;
use crate::x509::soft_key::SoftKey;

/// A certificate set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// kubeadm's set, signed by the three cluster CAs, in kubeadm's file names.
    Kubeadm,
    /// Kubernetes the Hard Way's set, signed by kubernetes-ca alone.
    HardWay,
}

/// A kubeconfig to write around a client certificate.
#[derive(Debug, Clone)]
pub struct KubeconfigSpec {
    /// Where.
    pub path: PathBuf,
    /// API server URL.
    pub server: String,
    /// User name.
    pub user: String,
}

/// One certificate of a preset.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Its name in messages (`apiserver`, `admin.conf`, `node-0`).
    pub label: String,
    /// The CA that signs it.
    pub issuer: CaRole,
    /// Subject, RFC 4514.
    pub subject: String,
    /// EKU.
    pub usage: LeafUsage,
    /// subjectAltNames.
    pub sans: Vec<San>,
    /// Certificate and key files, if any.
    pub files: Option<(PathBuf, PathBuf)>,
    /// A chain file (certificate, then its CA) for serving to clients anchored on the root.
    pub chain: Option<PathBuf>,
    /// A kubeconfig embedding the certificate, if any.
    pub kubeconfig: Option<KubeconfigSpec>,
}

fn dns(s: &str) -> San {
    San::Dns(s.to_string())
}

fn loopback4() -> San {
    San::Ip(IpAddr::from([127, 0, 0, 1]))
}

fn dedup(sans: Vec<San>) -> Vec<San> {
    let mut seen = Vec::new();
    for s in sans {
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen
}

fn host_san(h: &Host) -> San {
    match h {
        Host::Dns(d) => dns(d),
        Host::Ip(ip) => San::Ip(*ip),
    }
}

fn local_url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("https://[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("https://{v4}:{port}"),
    }
}

fn leaf(label: &str, issuer: CaRole, subject: &str, usage: LeafUsage, sans: Vec<San>) -> LeafSpec {
    LeafSpec {
        label: label.to_string(),
        issuer,
        subject: subject.to_string(),
        usage,
        sans: dedup(sans),
        files: None,
        chain: None,
        kubeconfig: None,
    }
}

fn with_files(mut l: LeafSpec, dir: &Path, stem: &str) -> LeafSpec {
    l.files = Some((
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    ));
    l
}

fn with_kubeconfig(mut l: LeafSpec, path: PathBuf, server: String, user: &str) -> LeafSpec {
    l.kubeconfig = Some(KubeconfigSpec {
        path,
        server,
        user: user.to_string(),
    });
    l
}

/// kubeadm's set for control-plane node `node`: certificates under `pki`, kubeconfigs in `out`.
fn kubeadm(cluster: &Cluster, node: Option<&str>, pki: &Path, out: &Path) -> Result<Vec<LeafSpec>> {
    use CaRole::*;
    use LeafUsage::*;
    let n = cluster.control_plane_node(node)?;
    let adv = n.advertise_ip();
    let mut api_sans = vec![
        dns(&n.name),
        dns("kubernetes"),
        dns("kubernetes.default"),
        dns("kubernetes.default.svc"),
        dns(&cluster.service_fqdn()),
        host_san(&cluster.api.host),
        San::Ip(cluster.first_service_ip()),
        San::Ip(adv),
    ];
    api_sans.sort_by_key(|s| matches!(s, San::Ip(_)));
    let etcd_sans = vec![
        dns(&n.name),
        dns("localhost"),
        San::Ip(adv),
        loopback4(),
        San::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    let mut apiserver = with_files(
        leaf(
            "apiserver",
            Kubernetes,
            "CN=kube-apiserver",
            Server,
            api_sans,
        ),
        pki,
        "apiserver",
    );
    apiserver.chain = Some(pki.join("apiserver-chain.crt"));
    let endpoint = cluster.api.url();
    let local = local_url(adv, cluster.api.port);
    let node_user = format!("system:node:{}", n.name);
    let conf = |file: &str, subject: &str, user: &str, server: &str| {
        with_kubeconfig(
            leaf(file, Kubernetes, subject, Client, vec![]),
            out.join(file),
            server.to_string(),
            user,
        )
    };
    Ok(vec![
        apiserver,
        with_files(
            leaf(
                "apiserver-kubelet-client",
                Kubernetes,
                "CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins",
                Client,
                vec![],
            ),
            pki,
            "apiserver-kubelet-client",
        ),
        with_files(
            leaf(
                "front-proxy-client",
                FrontProxy,
                "CN=front-proxy-client",
                Client,
                vec![],
            ),
            pki,
            "front-proxy-client",
        ),
        with_files(
            leaf(
                "etcd/server",
                Etcd,
                &format!("CN={}", n.name),
                ServerClient,
                etcd_sans.clone(),
            ),
            pki,
            "etcd/server",
        ),
        with_files(
            leaf(
                "etcd/peer",
                Etcd,
                &format!("CN={}", n.name),
                ServerClient,
                etcd_sans,
            ),
            pki,
            "etcd/peer",
        ),
        with_files(
            leaf(
                "etcd/healthcheck-client",
                Etcd,
                "CN=kube-etcd-healthcheck-client",
                Client,
                vec![],
            ),
            pki,
            "etcd/healthcheck-client",
        ),
        with_files(
            leaf(
                "apiserver-etcd-client",
                Etcd,
                "CN=kube-apiserver-etcd-client",
                Client,
                vec![],
            ),
            pki,
            "apiserver-etcd-client",
        ),
        conf(
            "admin.conf",
            "CN=kubernetes-admin,O=kubeadm:cluster-admins",
            "kubernetes-admin",
            &endpoint,
        ),
        conf(
            "super-admin.conf",
            "CN=kubernetes-super-admin,O=system:masters",
            "kubernetes-super-admin",
            &endpoint,
        ),
        conf(
            "kubelet.conf",
            &format!("CN={node_user},O=system:nodes"),
            &node_user,
            &endpoint,
        ),
        conf(
            "controller-manager.conf",
            "CN=system:kube-controller-manager",
            "system:kube-controller-manager",
            &local,
        ),
        conf(
            "scheduler.conf",
            "CN=system:kube-scheduler",
            "system:kube-scheduler",
            &local,
        ),
    ])
}

/// Kubernetes the Hard Way's set, all in `out`, signed by kubernetes-ca.
fn hard_way(cluster: &Cluster, out: &Path) -> Vec<LeafSpec> {
    use CaRole::Kubernetes;
    use LeafUsage::*;
    let endpoint = cluster.api.url();
    let local = local_url(IpAddr::from([127, 0, 0, 1]), cluster.api.port);
    let mut v = Vec::new();
    let both = |label: &str, subject: &str, sans: Vec<San>, server: &str, user: &str| {
        with_kubeconfig(
            with_files(
                leaf(label, Kubernetes, subject, ServerClient, sans),
                out,
                label,
            ),
            out.join(format!("{label}.kubeconfig")),
            server.to_string(),
            user,
        )
    };
    v.push(with_kubeconfig(
        with_files(
            leaf(
                "admin",
                Kubernetes,
                "CN=admin,O=system:masters",
                Client,
                vec![],
            ),
            out,
            "admin",
        ),
        out.join("admin.kubeconfig"),
        local.clone(),
        "admin",
    ));
    for n in &cluster.workers {
        let user = format!("system:node:{}", n.name);
        let mut sans = vec![dns(&n.name), loopback4()];
        sans.extend(n.ips.iter().map(|ip| San::Ip(*ip)));
        v.push(both(
            &n.name,
            &format!("CN={user},O=system:nodes"),
            sans,
            &endpoint,
            &user,
        ));
    }
    for (name, subject, user, server) in [
        (
            "kube-proxy",
            "CN=system:kube-proxy,O=system:node-proxier",
            "system:kube-proxy",
            &endpoint,
        ),
        (
            "kube-scheduler",
            "CN=system:kube-scheduler,O=system:kube-scheduler",
            "system:kube-scheduler",
            &local,
        ),
        (
            "kube-controller-manager",
            "CN=system:kube-controller-manager,O=system:kube-controller-manager",
            "system:kube-controller-manager",
            &local,
        ),
    ] {
        v.push(both(
            name,
            subject,
            vec![dns(name), loopback4()],
            server,
            user,
        ));
    }
    let mut api_sans: Vec<San> = service_names(&cluster.domain)
        .iter()
        .map(|s| dns(s))
        .collect();
    api_sans.push(host_san(&cluster.api.host));
    for n in &cluster.control_plane {
        api_sans.push(dns(&n.name));
        api_sans.extend(n.ips.iter().map(|ip| San::Ip(*ip)));
    }
    api_sans.push(loopback4());
    api_sans.push(San::Ip(cluster.first_service_ip()));
    api_sans.sort_by_key(|s| matches!(s, San::Ip(_)));
    let mut api = with_files(
        leaf(
            "kube-api-server",
            Kubernetes,
            "CN=kubernetes",
            ServerClient,
            api_sans,
        ),
        out,
        "kube-api-server",
    );
    api.chain = Some(out.join("kube-api-server-chain.crt"));
    v.push(api);
    v.push(with_files(
        leaf(
            "service-accounts",
            Kubernetes,
            "CN=service-accounts",
            Client,
            vec![],
        ),
        out,
        "service-accounts",
    ));
    v
}

/// The certificates of `preset` for `cluster`: kubeadm's under `pki` (kubeconfigs in `out`),
/// the Hard Way's in `out`. `node` picks the control-plane node (kubeadm; default the first).
pub fn plan(
    preset: Preset,
    cluster: &Cluster,
    node: Option<&str>,
    pki: &Path,
    out: &Path,
) -> Result<Vec<LeafSpec>> {
    match preset {
        Preset::Kubeadm => kubeadm(cluster, node, pki, out),
        Preset::HardWay => {
            if node.is_some() {
                return Err(Error::invalid(
                    "--node applies to the kubeadm preset",
                    "leave --node out: the hard-way preset issues for every node of the cluster file",
                ));
            }
            Ok(hard_way(cluster, out))
        }
    }
}

/// A cluster CA as the cluster side holds it: certificate and file key.
pub struct ClusterCa {
    /// The CA certificate (`pki/ca.crt` ...).
    pub cert: Certificate,
    /// Its private key (`pki/ca.key` ...).
    pub key: SoftKey,
}

/// Loads a cluster CA from `pki`: exactly one certificate in its `.crt` (kubeadm reads only
/// the first), a key Kubernetes can use, and the key must be the certificate's.
pub fn load_ca(role: CaRole, pki: &Path) -> Result<ClusterCa> {
    let cert_path = role.cert_path(pki);
    let certs = load_certificates(&read_below(pki, &cert_path, MAX_INPUT)?)?;
    let [cert] = <[Certificate; 1]>::try_from(certs).map_err(|v| {
        Error::invalid(
            format!(
                "{} holds {} certificates; kubeadm reads only the first, so it must hold the CA alone",
                cert_path.display(),
                v.len()
            ),
            "keep the CA certificate alone in it; the chain goes in the -chain.crt file beside it",
        )
    })?;
    issuer_facts(&cert)?;
    let key_path = role.key_path(pki);
    let pem = Zeroizing::new(read_below(pki, &key_path, MAX_INPUT)?);
    let text = std::str::from_utf8(&pem).map_err(|_| {
        Error::invalid(
            format!("{} is not a PEM private key", key_path.display()),
            "give the key 'hsmca k8s request' wrote",
        )
    })?;
    let key = SoftKey::from_pem(text)?;
    check_key_algorithm(key.algorithm(), &format!("{}", key_path.display()))?;
    if key.public_key() != cert.tbs_certificate().subject_public_key_info() {
        return Err(Error::invalid(
            format!(
                "{} is not the key of {}",
                key_path.display(),
                cert_path.display()
            ),
            "keep each CA's key and certificate together as 'k8s request' and 'k8s sign' wrote them",
        ));
    }
    Ok(ClusterCa { cert, key })
}

fn about(label: &str, e: impl Into<Error>) -> Error {
    let e = e.into();
    let (cause, hint) = e.cause_and_hint();
    Error::invalid(format!("{label}: {cause}"), hint.unwrap_or_default())
}

/// Issues every certificate of `specs` and writes its files; returns the paths written. All
/// checks (CA files, names against name constraints, validity, free outputs) run first.
pub fn issue(
    specs: &[LeafSpec],
    cluster: &Cluster,
    pki: &Path,
    out: &Path,
    algorithm: Option<KeyAlgorithm>,
    validity: ValidityChoice,
    ow: Overwrite,
) -> Result<Vec<PathBuf>> {
    // Each output lies under --pki or --out (the directory the operator named) and is reached
    // from there without following a link.
    let base = |p: &Path| -> PathBuf {
        [pki, out]
            .into_iter()
            .filter(|b| p.starts_with(b))
            .max_by_key(|b| b.components().count())
            .unwrap_or(out)
            .to_path_buf()
    };
    let write = |p: &Path, bytes: &[u8], mode: u32| -> Result<()> {
        let b = base(p);
        if let Some(parent) = p.parent() {
            create_dir_below(&b, parent)?;
        }
        check_no_links(&b, p)?;
        write_atomic(p, bytes, mode, ow)?;
        Ok(())
    };
    let mut cas: HashMap<CaRole, ClusterCa> = HashMap::new();
    for s in specs {
        if let std::collections::hash_map::Entry::Vacant(e) = cas.entry(s.issuer) {
            e.insert(load_ca(s.issuer, pki)?);
        }
    }
    let algorithm = match algorithm {
        Some(a) => a,
        None => cas
            .get(&CaRole::Kubernetes)
            .or_else(|| cas.values().next())
            .map(|c| c.key.algorithm())
            .ok_or_else(|| Error::internal("nothing to issue"))?,
    };
    check_key_algorithm(algorithm, "the leaf key algorithm")?;
    let mut periods = HashMap::new();
    for (role, ca) in &cas {
        periods.insert(
            *role,
            validity_under(&ca.cert, validity).map_err(|e| about(role.name(), e))?,
        );
    }
    let mut outputs = HashSet::new();
    for s in specs {
        let ca = &cas[&s.issuer];
        for san in &s.sans {
            if let San::Dns(d) = san {
                check_dns_name(d, false).map_err(|e| about(&s.label, e))?;
            }
        }
        check_sans(&ca.cert, &s.sans).map_err(|e| about(&s.label, e))?;
        parse_name(&s.subject)?;
        let paths = s
            .files
            .iter()
            .flat_map(|(c, k)| [c, k])
            .chain(&s.chain)
            .chain(s.kubeconfig.as_ref().map(|k| &k.path));
        for p in paths {
            if !outputs.insert(p.clone()) {
                return Err(Error::invalid(
                    format!(
                        "two certificates of the set would be written to {}",
                        p.display()
                    ),
                    format!(
                        "rename the node whose name clashes with a component file ({})",
                        s.label
                    ),
                ));
            }
            check_free(p, ow)?;
        }
    }
    let mut written = Vec::new();
    for s in specs {
        let ca = &cas[&s.issuer];
        let key = SoftKey::generate(algorithm)?;
        let req = CertRequest {
            profile: Profile::Leaf {
                usage: s.usage,
                sans: s.sans.clone(),
            },
            subject: parse_name(&s.subject)?,
            public_key: key.public_key().clone(),
            validity: periods[&s.issuer],
            issuer: Some(&ca.cert),
            serial: random_serial()?,
        };
        let cert = prepare(&req, &ca.key)
            .and_then(|p| p.sign(&ca.key))
            .map_err(|e| about(&s.label, e))?;
        let cert_pem = certificate_to_pem(&cert)?;
        let key_pem = key.to_pem();
        if let Some((c, k)) = &s.files {
            write(k, key_pem.as_bytes(), 0o600)?;
            write(c, cert_pem.as_bytes(), 0o644)?;
            written.extend([c.clone(), k.clone()]);
        }
        if let Some(chain) = &s.chain {
            let bundle = format!("{cert_pem}{}", certificate_to_pem(&ca.cert)?);
            write(chain, bundle.as_bytes(), 0o644)?;
            written.push(chain.clone());
        }
        if let Some(kc) = &s.kubeconfig {
            let b = base(&kc.path);
            if let Some(parent) = kc.path.parent() {
                create_dir_below(&b, parent)?;
            }
            check_no_links(&b, &kc.path)?;
            Kubeconfig {
                cluster: &cluster.name,
                server: &kc.server,
                ca_pem: &certificate_to_pem(&ca.cert)?,
                user: &kc.user,
                cert_pem: &cert_pem,
                key_pem: &key_pem,
            }
            .write(&kc.path, ow)?;
            written.push(kc.path.clone());
        }
    }
    Ok(written)
}
