//! `k8s check` (issue 18): every certificate and kubeconfig of a cluster's set, read back as
//! Kubernetes will read it and held against the cluster file and the cluster CAs: who it is,
//! what it is for, its chain to the cluster CA and the offline root, its key, the names the
//! cluster file asks for, the days left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::CaRole;
use super::cluster::Cluster;
use super::identity::{Identity, identity};
use super::kubeconfig::embedded;
use super::presets::{LeafSpec, Preset, plan};
use crate::error::{Result, read_file};
use crate::x509::decode::load_certificates;
use crate::x509::profile::{San, subject_alt_names};
use crate::x509::signer::CaSigner;
use crate::x509::soft_key::SoftKey;
use crate::x509::validity::{fmt, from_x509_time};
use crate::x509::verify::verify_certificate;

/// One file of the set, checked.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedFile {
    /// The file.
    pub file: PathBuf,
    /// Its name in the set (`apiserver`, `admin.conf`, `kubernetes-ca`).
    pub label: String,
    /// `certificate`, `kubeconfig` or `ca`.
    pub kind: &'static str,
    /// `ok`, `expiring`, `expired`, `broken` or `missing`.
    pub status: &'static str,
    /// Subject, RFC 4514.
    pub subject: Option<String>,
    /// Issuer, RFC 4514.
    pub issuer: Option<String>,
    /// notAfter.
    pub not_after: Option<String>,
    /// Whole days until notAfter (negative once expired).
    pub days_left: Option<i64>,
    /// What Kubernetes sees (the same shape as `inspect --json`'s `kubernetes`).
    pub kubernetes: Option<Identity>,
    /// Everything wrong with it.
    pub problems: Vec<String>,
}

/// The whole check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The cluster's name.
    pub cluster: String,
    /// `kubeadm` or `hard-way`.
    pub preset: &'static str,
    /// The warning window in days.
    pub warn_days: i64,
    /// The cluster CAs, then every leaf file.
    pub files: Vec<CheckedFile>,
}

impl CheckReport {
    /// Whether anything is expired, broken, missing or expires within the window.
    pub fn needs_action(&self) -> bool {
        self.files.iter().any(|f| f.status != "ok")
    }
}

/// The preset a directory holds: kubeadm's when `pki/apiserver.crt` exists.
pub fn detect(pki: &Path) -> Preset {
    if pki.join("apiserver.crt").exists() {
        Preset::Kubeadm
    } else {
        Preset::HardWay
    }
}

/// A cluster CA as the check reads it: its certificate, and the root its chain file names.
struct CaView {
    cert: Option<Certificate>,
}

/// Checks the set `preset` lays out under `pki` and `out` for `cluster`.
pub fn check(
    preset: Preset,
    cluster: &Cluster,
    node: Option<&str>,
    (pki, out): (&Path, &Path),
    warn_days: i64,
    now: OffsetDateTime,
) -> Result<CheckReport> {
    let specs = plan(preset, cluster, node, pki, out)?;
    let mut files = Vec::new();
    let mut cas: HashMap<CaRole, CaView> = HashMap::new();
    for role in roles(&specs) {
        let (checked, view) = check_ca(role, pki, warn_days, now);
        files.push(checked);
        cas.insert(role, view);
    }
    for spec in &specs {
        let ca = cas.get(&spec.issuer).and_then(|c| c.cert.as_ref());
        if let Some((cert, key)) = &spec.files {
            files.push(check_leaf_file(spec, cert, key, ca, warn_days, now));
        }
        if let Some(kc) = &spec.kubeconfig {
            files.push(check_kubeconfig(spec, &kc.path, ca, warn_days, now));
        }
    }
    Ok(CheckReport {
        cluster: cluster.name.clone(),
        preset: match preset {
            Preset::Kubeadm => "kubeadm",
            Preset::HardWay => "hard-way",
        },
        warn_days,
        files,
    })
}

fn roles(specs: &[LeafSpec]) -> Vec<CaRole> {
    CaRole::ALL
        .into_iter()
        .filter(|r| specs.iter().any(|s| s.issuer == *r))
        .collect()
}

fn blank(file: &Path, label: &str, kind: &'static str) -> CheckedFile {
    CheckedFile {
        file: file.to_path_buf(),
        label: label.to_string(),
        kind,
        status: "ok",
        subject: None,
        issuer: None,
        not_after: None,
        days_left: None,
        kubernetes: None,
        problems: Vec::new(),
    }
}

/// Fills in what the certificate says and judges its dates.
fn describe(c: &mut CheckedFile, cert: &Certificate, warn_days: i64, now: OffsetDateTime) {
    let tbs = cert.tbs_certificate();
    c.subject = Some(tbs.subject().to_string());
    c.issuer = Some(tbs.issuer().to_string());
    c.kubernetes = Some(identity(cert));
    match from_x509_time(&tbs.validity().not_after) {
        Ok(t) => {
            let days = (t - now).whole_days();
            c.not_after = Some(fmt(t));
            c.days_left = Some(days);
            if t <= now {
                c.problems.push(format!("expired on {}", fmt(t)));
            } else if days < warn_days {
                c.problems.push(format!(
                    "expires in {days} days, within the {warn_days}-day window"
                ));
            }
        }
        Err(e) => c.problems.push(format!("notAfter does not read: {e}")),
    }
    if let Ok(t) = from_x509_time(&tbs.validity().not_before)
        && t > now
    {
        c.problems.push(format!("not valid before {}", fmt(t)));
    }
}

/// The status the problems add up to.
fn status(c: &mut CheckedFile) {
    let only_dates = c
        .problems
        .iter()
        .all(|p| p.starts_with("expires in") || p.starts_with("expired on"));
    c.status = if c.problems.is_empty() {
        "ok"
    } else if !only_dates {
        "broken"
    } else if c.problems.iter().any(|p| p.starts_with("expired on")) {
        "expired"
    } else {
        "expiring"
    };
}

fn read_certs(path: &Path) -> std::result::Result<Vec<Certificate>, String> {
    let bytes = read_file(path).map_err(|e| e.to_string())?;
    load_certificates(&bytes).map_err(|e| e.to_string())
}

fn check_ca(
    role: CaRole,
    pki: &Path,
    warn_days: i64,
    now: OffsetDateTime,
) -> (CheckedFile, CaView) {
    let path = role.cert_path(pki);
    let mut c = blank(&path, role.name(), "ca");
    if !path.exists() {
        c.problems.push("missing".into());
        c.status = "missing";
        return (c, CaView { cert: None });
    }
    let cert = match read_certs(&path) {
        Ok(certs) if certs.len() == 1 => certs.into_iter().next(),
        Ok(certs) => {
            c.problems.push(format!(
                "holds {} certificates; kubeadm reads only the first",
                certs.len()
            ));
            certs.into_iter().next()
        }
        Err(e) => {
            c.problems.push(e);
            None
        }
    };
    if let Some(cert) = &cert {
        describe(&mut c, cert, warn_days, now);
        // The chain file names the offline root the CA is certified by.
        match read_certs(&role.chain_path(pki)) {
            Ok(chain) => match chain.as_slice() {
                [first, root, ..] if first == cert => {
                    let key = root.tbs_certificate().subject_public_key_info();
                    if let Err(e) = verify_certificate(cert, key) {
                        c.problems
                            .push(format!("not signed by the root in its chain file: {e}"));
                    }
                    if let Ok(t) = from_x509_time(&root.tbs_certificate().validity().not_after)
                        && t <= now
                    {
                        c.problems
                            .push(format!("the offline root expired on {}", fmt(t)));
                    }
                }
                _ => c.problems.push(format!(
                    "{} does not hold this CA and then the root",
                    role.chain_path(pki).display()
                )),
            },
            Err(e) => c.problems.push(format!("its chain file: {e}")),
        }
        match std::fs::read(role.key_path(pki)) {
            Ok(pem) => {
                let pem = Zeroizing::new(pem);
                key_matches(&mut c, cert, &pem, &role.key_path(pki));
            }
            Err(_) => c.problems.push(format!(
                "its key {} cannot be read (renewing leaves needs it)",
                role.key_path(pki).display()
            )),
        }
    }
    status(&mut c);
    (c, CaView { cert })
}

fn key_matches(c: &mut CheckedFile, cert: &Certificate, pem: &[u8], key_path: &Path) {
    let key = std::str::from_utf8(pem)
        .ok()
        .and_then(|t| SoftKey::from_pem(t).ok());
    match key {
        Some(k) if k.public_key() == cert.tbs_certificate().subject_public_key_info() => {}
        Some(_) => c.problems.push(format!(
            "its key file {} holds another key than the certificate's",
            key_path.display()
        )),
        None => c.problems.push(format!(
            "its key file {} is not a private key hsmca reads",
            key_path.display()
        )),
    }
}

/// Checks a leaf's chain, names and key against its spec and CA.
fn check_leaf(
    c: &mut CheckedFile,
    spec: &LeafSpec,
    cert: &Certificate,
    ca: Option<&Certificate>,
    warn_days: i64,
    now: OffsetDateTime,
) {
    describe(c, cert, warn_days, now);
    match ca {
        Some(ca) => {
            if let Err(e) = verify_certificate(cert, ca.tbs_certificate().subject_public_key_info())
            {
                c.problems.push(format!(
                    "not signed by the cluster's {}: {e}",
                    spec.issuer.name()
                ));
            }
        }
        None => c.problems.push(format!(
            "its CA {} cannot be read, so its chain is unchecked",
            spec.issuer.name()
        )),
    }
    let has = subject_alt_names(cert);
    let missing: Vec<String> = spec
        .sans
        .iter()
        .filter(|s| !has.contains(s))
        .map(|s| match s {
            San::Dns(d) => format!("DNS:{d}"),
            San::Ip(ip) => format!("IP:{ip}"),
        })
        .collect();
    if !missing.is_empty() {
        c.problems.push(format!(
            "lacks names the cluster file asks for: {}",
            missing.join(", ")
        ));
    }
    let want = crate::x509::name::parse_name(&spec.subject)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| spec.subject.clone());
    if c.subject.as_deref() != Some(want.as_str()) {
        c.problems.push(format!(
            "its subject is {}, the set's is {want}",
            c.subject.clone().unwrap_or_default()
        ));
    }
}

fn check_leaf_file(
    spec: &LeafSpec,
    cert_path: &Path,
    key_path: &Path,
    ca: Option<&Certificate>,
    warn_days: i64,
    now: OffsetDateTime,
) -> CheckedFile {
    let mut c = blank(cert_path, &spec.label, "certificate");
    if !cert_path.exists() {
        c.problems.push("missing".into());
        c.status = "missing";
        return c;
    }
    match read_certs(cert_path) {
        Ok(certs) => {
            if let Some(cert) = certs.first() {
                check_leaf(&mut c, spec, cert, ca, warn_days, now);
                match std::fs::read(key_path) {
                    Ok(pem) => key_matches(&mut c, cert, &Zeroizing::new(pem), key_path),
                    Err(e) => c.problems.push(format!(
                        "its key {} cannot be read: {e}",
                        key_path.display()
                    )),
                }
            }
        }
        Err(e) => c.problems.push(e),
    }
    status(&mut c);
    c
}

fn check_kubeconfig(
    spec: &LeafSpec,
    path: &Path,
    ca: Option<&Certificate>,
    warn_days: i64,
    now: OffsetDateTime,
) -> CheckedFile {
    let label = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.label.clone());
    let mut c = blank(path, &label, "kubeconfig");
    let text = match read_file(path) {
        Ok(bytes) => Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
        Err(_) if !path.exists() => {
            c.problems.push("missing".into());
            c.status = "missing";
            return c;
        }
        Err(e) => {
            c.problems.push(e.to_string());
            status(&mut c);
            return c;
        }
    };
    let cert = embedded(&text, "client-certificate-data")
        .and_then(|pem| load_certificates(&pem).ok())
        .and_then(|certs| certs.into_iter().next());
    let Some(cert) = cert else {
        c.problems
            .push("no client certificate (client-certificate-data) in it".into());
        status(&mut c);
        return c;
    };
    check_leaf(&mut c, spec, &cert, ca, warn_days, now);
    match embedded(&text, "client-key-data") {
        Some(pem) => key_matches(&mut c, &cert, &pem, path),
        None => c
            .problems
            .push("no client key (client-key-data) in it".into()),
    }
    let trusted = embedded(&text, "certificate-authority-data")
        .and_then(|pem| load_certificates(&pem).ok())
        .and_then(|certs| certs.into_iter().next());
    match (trusted, ca) {
        // A renewed CA (same subject and key) still verifies what it signed.
        (Some(t), Some(ca))
            if t.tbs_certificate().subject() == ca.tbs_certificate().subject()
                && t.tbs_certificate().subject_public_key_info()
                    == ca.tbs_certificate().subject_public_key_info() =>
        {
            if let Ok(end) = from_x509_time(&t.tbs_certificate().validity().not_after)
                && (end - now).whole_days() < warn_days
            {
                c.problems.push(format!(
                    "the copy of the CA certificate it trusts expires on {}; the cluster's is renewed, so issue the kubeconfig again",
                    fmt(end)
                ));
            }
        }
        (Some(t), _) => c.problems.push(format!(
            "it trusts another CA ({}) than the cluster's {}",
            t.tbs_certificate().subject(),
            spec.issuer.name()
        )),
        (None, _) => c
            .problems
            .push("no CA certificate (certificate-authority-data) in it".into()),
    }
    status(&mut c);
    c
}

impl CheckedFile {
    /// The file as indented text lines (`k8s check` without `--json`).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "{} {} ({}, {}): {}",
            self.kind,
            self.label,
            self.file.display(),
            self.days_left
                .map(|d| if d == 1 {
                    "1 day left".to_string()
                } else {
                    format!("{d} days left")
                })
                .unwrap_or_else(|| "no date".into()),
            self.status
        )];
        if let Some(s) = &self.subject {
            out.push(format!("  subject: {s}"));
        }
        if let Some(i) = &self.issuer {
            out.push(format!("  issuer: {i}"));
        }
        if let Some(k) = &self.kubernetes {
            out.extend(k.lines().into_iter().map(|l| format!("  {l}")));
        }
        out.extend(self.problems.iter().map(|p| format!("  problem: {p}")));
        out
    }
}
