//! Kubernetes: per-cluster intermediates signed by the offline root, and the component
//! certificates and kubeconfigs of a cluster, in kubeadm's layout.
//!
//! The cluster side ([`request`], [`presets`], [`kubeconfig`]) holds the cluster's file keys
//! and never touches a token; the root ceremony ([`sign`]) holds the token and reads only CSRs.

pub mod beneath;
pub mod check;
pub mod cluster;
pub mod constraints;
pub mod identity;
pub mod kubeconfig;
pub mod presets;
pub mod renew;
pub mod request;
pub mod sign;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::x509::algorithm::KeyAlgorithm;

/// One of kubeadm's three cluster CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaRole {
    /// kubernetes-ca: the API server, kubelets and every client of the API.
    Kubernetes,
    /// etcd-ca: etcd's servers, peers and clients.
    Etcd,
    /// front-proxy-ca: the aggregation layer's client.
    FrontProxy,
}

impl CaRole {
    /// The three, in signing order.
    pub const ALL: [CaRole; 3] = [CaRole::Kubernetes, CaRole::Etcd, CaRole::FrontProxy];

    /// kubeadm's name for the CA (also the CSR's file stem).
    pub fn name(self) -> &'static str {
        match self {
            CaRole::Kubernetes => "kubernetes-ca",
            CaRole::Etcd => "etcd-ca",
            CaRole::FrontProxy => "front-proxy-ca",
        }
    }

    /// The CN kubeadm gives the CA.
    pub fn common_name(self) -> &'static str {
        match self {
            CaRole::Kubernetes => "kubernetes",
            CaRole::Etcd => "etcd-ca",
            CaRole::FrontProxy => "front-proxy-ca",
        }
    }

    /// The CA's subject: kubeadm's CN, and the cluster name as O so that the CAs of two
    /// clusters under one root are told apart.
    pub fn subject(self, cluster: &str) -> String {
        format!("CN={},O={cluster}", self.common_name())
    }

    fn stem(self) -> &'static str {
        match self {
            CaRole::Kubernetes => "ca",
            CaRole::Etcd => "etcd/ca",
            CaRole::FrontProxy => "front-proxy-ca",
        }
    }

    /// `pki/ca.key`, `pki/etcd/ca.key`, `pki/front-proxy-ca.key` under `pki`.
    pub fn key_path(self, pki: &Path) -> PathBuf {
        pki.join(format!("{}.key", self.stem()))
    }

    /// The CA certificate (one certificate, as kubeadm reads it).
    pub fn cert_path(self, pki: &Path) -> PathBuf {
        pki.join(format!("{}.crt", self.stem()))
    }

    /// The chain bundle beside it: the CA, then the offline root.
    pub fn chain_path(self, pki: &Path) -> PathBuf {
        pki.join(format!("{}-chain.crt", self.stem()))
    }

    /// The CSR in the requests directory.
    pub fn csr_path(self, requests: &Path) -> PathBuf {
        requests.join(format!("{}.csr", self.name()))
    }
}

/// The directory `k8s request` writes CSRs to, and `k8s sign` reads them from.
pub fn requests_dir(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("requests")
}

/// The directory of kubeadm's PKI under a cluster directory.
pub fn pki_dir(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("pki")
}

/// Refuses key algorithms Kubernetes cannot use.
pub fn check_key_algorithm(alg: KeyAlgorithm, what: &str) -> Result<()> {
    if alg == KeyAlgorithm::Ed25519 {
        return Err(Error::invalid(
            format!(
                "{what} is Ed25519, which Kubernetes cannot use: kubeadm loads only RSA and ECDSA keys, and the API server's service-account token signing rejects Ed25519"
            ),
            "use --algorithm ecdsa-p256 (or ecdsa-p384, rsa-2048, rsa-3072, rsa-4096)",
        ));
    }
    Ok(())
}

/// Creates `dir` and its parents (mode 0755).
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| {
            crate::output::OutputError::Io {
                path: dir.to_path_buf(),
                step: "creating the directory",
                source,
            }
            .into()
        })
}

/// How long a certificate is valid: a default lifetime starting five minutes ago (kubeadm's
/// allowance for clock skew, never before the issuer's NotBefore), or an explicit period.
#[derive(Debug, Clone, Copy)]
pub enum ValidityChoice {
    /// Lifetime from now minus five minutes.
    Default(crate::x509::validity::Lifetime),
    /// Exactly this period.
    Explicit(crate::x509::validity::ValidityPeriod),
}

/// Resolves `choice` under `issuer`; the result lies within the issuer's validity or is an
/// error (hsmca never shortens a period by itself).
pub fn validity_under(
    issuer: &x509_cert::Certificate,
    choice: ValidityChoice,
) -> Result<crate::x509::validity::ValidityPeriod> {
    use crate::x509::validity::{ValidityPeriod, from_x509_time};
    let iv = issuer.tbs_certificate().validity();
    let period = match choice {
        ValidityChoice::Explicit(p) => p,
        ValidityChoice::Default(lifetime) => {
            let now = time::OffsetDateTime::now_utc();
            let nb = (now - time::Duration::minutes(5)).max(from_x509_time(&iv.not_before)?);
            ValidityPeriod::starting(nb, lifetime)?
        }
    };
    period.check_within(iv)?;
    Ok(period)
}
