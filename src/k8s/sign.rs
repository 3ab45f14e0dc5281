//! The root ceremony side: signs a cluster's three CA requests through the token (pathLen 0,
//! no EKU, name constraints from the cluster file), records them, and writes kubeadm's
//! `pki/ca.crt`, `pki/etcd/ca.crt`, `pki/front-proxy-ca.crt` with chain bundles beside them.
//! It reads CSRs only: never a private key file.

use std::path::{Path, PathBuf};

use x509_cert::Certificate;

use super::beneath::{check_no_links, create_dir_below, read_below};
use super::cluster::Cluster;
use super::{CaRole, check_key_algorithm, pki_dir, requests_dir};
use crate::ca::CheckedCsr;
use crate::ca::issuance::{Certify, Delivery, Order};
use crate::ca::recorder::Recorder;
use crate::ca::session::CaToken;
use crate::error::{Error, MAX_CSR, Result};
use crate::output::{Overwrite, check_free};
use crate::x509::csr::Csr;
use crate::x509::name::{display_name, parse_name};
use crate::x509::profile::{PermittedSubtrees, Profile};
use crate::x509::validity::ValidityPeriod;

/// One checked request: which CA, where its CSR is, and the hash of the bytes checked.
pub struct CheckedRequest {
    /// The CA it asks for.
    pub role: CaRole,
    /// The CSR file.
    pub path: PathBuf,
    sha256: [u8; 32],
}

/// Everything `k8s sign` will do, checked before the token is touched.
pub struct SignPlan {
    /// The cluster directory (CSRs under `requests/`, certificates to `pki/`).
    pub cluster_dir: PathBuf,
    /// The cluster's name.
    pub cluster: String,
    /// The three requests.
    pub requests: Vec<CheckedRequest>,
    /// The intermediate profile (pathLen 0, optional name constraints).
    pub profile: Profile,
    /// Validity of the three CAs.
    pub validity: ValidityPeriod,
    /// Whether existing certificate files may be replaced.
    pub overwrite: Overwrite,
}

fn about(path: &Path, e: Error) -> Error {
    let (cause, hint) = e.cause_and_hint();
    Error::invalid(
        format!("{}: {cause}", path.display()),
        hint.unwrap_or_else(|| "check that file".into()),
    )
}

/// Checks one CSR: self-signature, a key Kubernetes can use, and the subject this cluster's
/// CA of that role must have (so requests of two clusters cannot be swapped unnoticed).
fn check_request(
    role: CaRole,
    cluster: &str,
    bytes: &[u8],
    ca_keys: &crate::ca::CaKeys,
) -> Result<CheckedCsr> {
    let checked = CheckedCsr::check(Csr::parse(bytes)?, ca_keys)?;
    let info = checked.csr().public_key()?;
    let alg = info.key_algorithm().ok_or_else(|| {
        Error::invalid(
            format!("the request's key ({info}) is not one hsmca issues for"),
            "make the requests with 'hsmca k8s request'",
        )
    })?;
    check_key_algorithm(alg, "the request's key")?;
    let want = display_name(&parse_name(&role.subject(cluster))?);
    let got = display_name(checked.csr().subject());
    if want != got {
        return Err(Error::invalid(
            format!(
                "the request is for \"{got}\", but {} of cluster {cluster} is \"{want}\"",
                role.name()
            ),
            "check --requests and --config name the same cluster; make the requests with 'hsmca k8s request --cluster NAME'",
        ));
    }
    Ok(checked)
}

/// Reads and checks the cluster's three requests and that every output is free. A request
/// refused here is recorded as `request_refused`.
pub fn plan(
    cluster_dir: &Path,
    cluster: &Cluster,
    constraints: Option<PermittedSubtrees>,
    validity: ValidityPeriod,
    overwrite: Overwrite,
    rec: &mut Recorder,
) -> Result<SignPlan> {
    let req_dir = requests_dir(cluster_dir);
    let pki = pki_dir(cluster_dir);
    // The CA keys the requests may meet, in one pass over the CA-key index; the requests are
    // read again below, one by one, with the checks and refusals in their order.
    let wanted = CaRole::ALL
        .iter()
        .filter_map(|role| read_below(cluster_dir, &role.csr_path(&req_dir), MAX_CSR).ok())
        .filter_map(|bytes| Csr::parse(&bytes).ok())
        .map(|csr| crate::x509::algorithm::spki_sha256(csr.spki()))
        .collect();
    let ca_keys = rec.ca_keys(&wanted)?;
    let mut requests = Vec::new();
    let mut keys = Vec::new();
    for role in CaRole::ALL {
        let path = role.csr_path(&req_dir);
        let bytes =
            read_below(cluster_dir, &path, MAX_CSR).map_err(|e| rec.refuse("k8s sign", None, e))?;
        let checked = check_request(role, &cluster.name, &bytes, &ca_keys)
            .map_err(|e| rec.refuse("k8s sign", Some(&bytes), about(&path, e)))?;
        let spki = checked.csr().spki().clone();
        if keys.contains(&spki) {
            let e = Error::invalid(
                "two of the cluster's CA requests carry the same public key",
                "make the requests again with 'hsmca k8s request': each CA needs its own key",
            );
            return Err(rec.refuse("k8s sign", Some(&bytes), about(&path, e)));
        }
        keys.push(spki);
        requests.push(CheckedRequest {
            role,
            path,
            sha256: checked.csr().sha256(),
        });
    }
    for role in CaRole::ALL {
        for out in [role.cert_path(&pki), role.chain_path(&pki)] {
            check_no_links(cluster_dir, &out).map_err(|e| rec.refuse("k8s sign", None, e))?;
            check_free(&out, overwrite)?;
        }
    }
    Ok(SignPlan {
        cluster_dir: cluster_dir.to_path_buf(),
        cluster: cluster.name.clone(),
        requests,
        profile: Profile::Intermediate {
            path_len: Some(0),
            constraints,
        },
        validity,
        overwrite,
    })
}

/// Signs the planned requests through the token: each is recorded before its files are
/// written (`pki/<ca>.crt` holds the CA alone, `pki/<ca>-chain.crt` the CA and the root).
pub fn sign_cluster(
    ca: &mut CaToken<'_, '_, '_>,
    issuer: &Certificate,
    plan: &SignPlan,
) -> Result<Vec<(CaRole, Certificate)>> {
    let pki = pki_dir(&plan.cluster_dir);
    create_dir_below(&plan.cluster_dir, &pki.join("etcd"))?;
    let mut out = Vec::new();
    for r in &plan.requests {
        let csr = Csr::parse(&read_below(&plan.cluster_dir, &r.path, MAX_CSR)?)?;
        let checked = CheckedCsr::recheck(csr, &r.sha256).map_err(|e| about(&r.path, e))?;
        let cert_path = r.role.cert_path(&pki);
        let chain_path = r.role.chain_path(&pki);
        check_no_links(&plan.cluster_dir, &cert_path)?;
        check_no_links(&plan.cluster_dir, &chain_path)?;
        let order = Order {
            certify: Certify::Request(&checked),
            profile: plan.profile.clone(),
            subject: Some(parse_name(&r.role.subject(&plan.cluster))?),
            validity: plan.validity,
            extras: Default::default(),
            command: "k8s sign",
        };
        let delivery = Delivery {
            out: &cert_path,
            chain_out: Some(&chain_path),
            overwrite: plan.overwrite,
        };
        let cert = ca.issue(Some(issuer), &order, &delivery)?;
        out.push((r.role, cert));
    }
    Ok(out)
}

/// Private keys of the cluster found in its directory: the ceremony needs none of them.
pub fn keys_present(cluster_dir: &Path) -> Vec<PathBuf> {
    let pki = pki_dir(cluster_dir);
    CaRole::ALL
        .iter()
        .map(|r| r.key_path(&pki))
        .chain([pki.join("sa.key")])
        .filter(|p| p.exists())
        .collect()
}
