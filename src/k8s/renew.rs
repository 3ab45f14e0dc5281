//! `k8s renew` (issue 18): issues again, signed by the cluster CAs, every leaf certificate of a
//! cluster's set that expires within a window, with its own key and its own names, so that the
//! renewed certificate differs from the old one only in serial and validity. The old files are
//! kept beside the new ones (`.old`); kubeconfigs get the new certificate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use super::kubeconfig::{Kubeconfig, embedded};
use super::presets::{ClusterCa, LeafSpec, load_ca};
use super::{CaRole, ValidityChoice, validity_under};
use crate::error::{Error, Result, read_file};
use crate::output::{Overwrite, write_atomic};
use crate::x509::decode::{certificate_to_pem, load_certificates};
use crate::x509::issue::{CertRequest, prepare};
use crate::x509::profile::{LeafUsage, Profile, subject_alt_names, tls_usage};
use crate::x509::serial::random_serial;
use crate::x509::signer::CaSigner;
use crate::x509::soft_key::SoftKey;
use crate::x509::validity::from_x509_time;

/// Which certificates to renew.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    /// Those that expire within this many days (or have expired).
    Within(i64),
    /// Every one.
    All,
}

/// A leaf as it stands: its certificate, its key's PEM, and where they live.
struct Current {
    cert: Certificate,
    key_pem: Zeroizing<String>,
}

fn bad(path: &Path, why: &str) -> Error {
    Error::invalid(
        format!("{} cannot be renewed: {why}", path.display()),
        "check it with 'hsmca k8s check'; a broken file is re-issued with 'hsmca k8s issue --force'",
    )
}

fn read_current_files(cert: &Path, key: &Path) -> Result<Current> {
    let certs = load_certificates(&read_file(cert)?)?;
    let cert_0 = certs
        .into_iter()
        .next()
        .ok_or_else(|| bad(cert, "it holds no certificate"))?;
    let key_pem = Zeroizing::new(
        String::from_utf8(read_file(key)?).map_err(|_| bad(key, "the key is not PEM text"))?,
    );
    Ok(Current {
        cert: cert_0,
        key_pem,
    })
}

fn read_current_kubeconfig(path: &Path) -> Result<Current> {
    let text = Zeroizing::new(
        String::from_utf8(read_file(path)?).map_err(|_| bad(path, "it is not text"))?,
    );
    let cert = embedded(&text, "client-certificate-data")
        .and_then(|pem| load_certificates(&pem).ok())
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| bad(path, "it holds no client certificate"))?;
    let key =
        embedded(&text, "client-key-data").ok_or_else(|| bad(path, "it holds no client key"))?;
    let key_pem = Zeroizing::new(
        String::from_utf8(key.to_vec()).map_err(|_| bad(path, "its key is not PEM text"))?,
    );
    Ok(Current { cert, key_pem })
}

/// Whether `cert` falls in `window` at `now`.
fn due(cert: &Certificate, window: Window, now: OffsetDateTime) -> Result<bool> {
    Ok(match window {
        Window::All => true,
        Window::Within(days) => {
            let not_after = from_x509_time(&cert.tbs_certificate().validity().not_after)?;
            (not_after - now).whole_days() < days
        }
    })
}

/// Keeps `path` as `path.old` (replacing an older `.old`), then writes `bytes` in its place.
fn replace_keeping_old(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf> {
    let mut old = path.as_os_str().to_owned();
    old.push(".old");
    let old = PathBuf::from(old);
    let current = read_file(path)?;
    write_atomic(&old, &current, mode, Overwrite::Replace)?;
    write_atomic(path, bytes, mode, Overwrite::Replace)?;
    Ok(old)
}

/// The same certificate again, signed by `ca` with a new serial and validity.
fn reissue(current: &Current, ca: &ClusterCa, choice: ValidityChoice) -> Result<Certificate> {
    let key = SoftKey::from_pem(&current.key_pem)?;
    let tbs = current.cert.tbs_certificate();
    if key.public_key() != tbs.subject_public_key_info() {
        return Err(Error::invalid(
            format!("the key beside {} is not its key", tbs.subject()),
            "check the set with 'hsmca k8s check'; re-issue it with 'hsmca k8s issue --force'",
        ));
    }
    let usage = match tls_usage(&current.cert) {
        (true, true) => LeafUsage::ServerClient,
        (true, false) => LeafUsage::Server,
        _ => LeafUsage::Client,
    };
    let req = CertRequest {
        profile: Profile::Leaf {
            usage,
            sans: subject_alt_names(&current.cert),
        },
        subject: tbs.subject().clone(),
        public_key: tbs.subject_public_key_info().clone(),
        validity: validity_under(&ca.cert, choice)?,
        issuer: Some(&ca.cert),
        serial: random_serial()?,
    };
    Ok(prepare(&req, &ca.key)?.sign(&ca.key)?)
}

/// Renews the leaves of `specs` that fall in `window`; returns the files written.
pub fn renew(
    specs: &[LeafSpec],
    cluster_name: &str,
    pki: &Path,
    window: Window,
    choice: ValidityChoice,
    now: OffsetDateTime,
) -> Result<Vec<PathBuf>> {
    let mut cas: HashMap<CaRole, ClusterCa> = HashMap::new();
    let mut written = Vec::new();
    for spec in specs {
        let current = match (&spec.files, &spec.kubeconfig) {
            (Some((cert, key)), _) => read_current_files(cert, key)?,
            (None, Some(kc)) => read_current_kubeconfig(&kc.path)?,
            (None, None) => continue,
        };
        if !due(&current.cert, window, now)? {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = cas.entry(spec.issuer) {
            e.insert(load_ca(spec.issuer, pki)?);
        }
        let ca = &cas[&spec.issuer];
        let cert = reissue(&current, ca, choice).map_err(|e| {
            Error::invalid(
                format!("{}: {e}", spec.label),
                "check the set with 'hsmca k8s check'",
            )
        })?;
        let cert_pem = certificate_to_pem(&cert)?;
        if let Some((cert_path, _)) = &spec.files {
            replace_keeping_old(cert_path, cert_pem.as_bytes(), 0o644)?;
            written.push(cert_path.clone());
        }
        if let Some(chain) = &spec.chain {
            let bundle = format!("{cert_pem}{}", certificate_to_pem(&ca.cert)?);
            replace_keeping_old(chain, bundle.as_bytes(), 0o644)?;
            written.push(chain.clone());
        }
        if let Some(kc) = &spec.kubeconfig {
            let yaml = Kubeconfig {
                cluster: cluster_name,
                server: &kc.server,
                ca_pem: &certificate_to_pem(&ca.cert)?,
                user: &kc.user,
                cert_pem: &cert_pem,
                key_pem: &current.key_pem,
            }
            .to_yaml()?;
            replace_keeping_old(&kc.path, yaml.as_bytes(), 0o600)?;
            written.push(kc.path.clone());
        }
    }
    Ok(written)
}
