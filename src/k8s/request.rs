//! The cluster side of a new cluster, without any token: the keys of kubernetes-ca, etcd-ca and
//! front-proxy-ca and the service-account key pair, in kubeadm's layout, and the CSRs of the
//! three CAs that the root ceremony signs.

use std::path::{Path, PathBuf};

use der::Encode;
use rcgen::{CertificateParams, DistinguishedName, DnType};

use super::{CaRole, check_key_algorithm, create_dir, pki_dir, requests_dir};
use crate::error::{Error, Result};
use crate::output::{Overwrite, check_free, write_atomic};
use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::decode::to_pem;
use crate::x509::signer::CaSigner;
use crate::x509::soft_key::SoftKey;

/// What `k8s request` wrote.
pub struct Requested {
    /// Private keys (mode 0600).
    pub keys: Vec<PathBuf>,
    /// The service-account public key.
    pub sa_pub: PathBuf,
    /// The CSRs, for the root ceremony.
    pub csrs: Vec<PathBuf>,
}

/// The CSR of one cluster CA: subject [`CaRole::subject`], no extensions (the root ceremony
/// decides the profile).
pub fn ca_csr(role: CaRole, cluster: &str, key: &SoftKey) -> Result<String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, cluster);
    dn.push(DnType::CommonName, role.common_name());
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(key.key_pair())
        .map_err(|e| Error::invalid(format!("cannot make the CSR: {e}"), "report a bug"))?;
    csr.pem()
        .map_err(|e| Error::invalid(format!("cannot encode the CSR: {e}"), "report a bug"))
}

/// Makes the cluster's CA keys, the service-account key pair and the CSRs under `out`
/// (`pki/ca.key`, `pki/etcd/ca.key`, `pki/front-proxy-ca.key`, `pki/sa.key`, `pki/sa.pub`,
/// `requests/<ca>.csr`). Every output is checked free before any key is made.
pub fn make_requests(
    cluster: &str,
    out: &Path,
    algorithm: KeyAlgorithm,
    ow: Overwrite,
) -> Result<Requested> {
    check_key_algorithm(algorithm, "the requested key algorithm")?;
    let pki = pki_dir(out);
    let req = requests_dir(out);
    let sa_key = pki.join("sa.key");
    let sa_pub = pki.join("sa.pub");
    let mut all: Vec<PathBuf> = CaRole::ALL
        .iter()
        .flat_map(|r| [r.key_path(&pki), r.csr_path(&req)])
        .collect();
    all.extend([sa_key.clone(), sa_pub.clone()]);
    for p in &all {
        check_free(p, ow)?;
    }
    create_dir(&pki.join("etcd"))?;
    create_dir(&req)?;
    let mut keys = Vec::new();
    let mut csrs = Vec::new();
    for role in CaRole::ALL {
        let key = SoftKey::generate(algorithm)?;
        let csr = ca_csr(role, cluster, &key)?;
        // The key first: a CSR without its key would be signed for nothing.
        write_atomic(&role.key_path(&pki), key.to_pem().as_bytes(), 0o600, ow)?;
        keys.push(role.key_path(&pki));
        write_atomic(&role.csr_path(&req), csr.as_bytes(), 0o644, ow)?;
        csrs.push(role.csr_path(&req));
    }
    let sa = SoftKey::generate(algorithm)?;
    write_atomic(&sa_key, sa.to_pem().as_bytes(), 0o600, ow)?;
    keys.push(sa_key);
    let spki = sa
        .public_key()
        .to_der()
        .map_err(|e| Error::invalid(format!("public key encoding: {e}"), "report a bug"))?;
    write_atomic(&sa_pub, to_pem("PUBLIC KEY", &spki)?.as_bytes(), 0o644, ow)?;
    Ok(Requested { keys, sa_pub, csrs })
}
