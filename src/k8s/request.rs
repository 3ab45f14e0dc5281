//! The cluster side of a new cluster, without any token: the keys of kubernetes-ca, etcd-ca and
//! front-proxy-ca and the service-account key pair, in kubeadm's layout, and the CSRs of the
//! three CAs that the root ceremony signs.

use std::path::{Path, PathBuf};

use const_oid::db::rfc4519::{COMMON_NAME, ORGANIZATION_NAME};
use der::asn1::{Any, BitString, SetOfVec, Utf8StringRef};
use der::{Decode, Encode};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::request::{CertReq, CertReqInfo, Version};

use super::{CaRole, check_key_algorithm, create_dir, pki_dir, requests_dir};
use crate::error::{Error, Result};
use crate::output::{Overwrite, check_free, write_atomic};
use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::decode::{CSR_LABEL, to_pem};
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

/// The CSR of one cluster CA: subject `O=<cluster>, CN=<kubeadm's name>` (in that order in
/// the DER, both UTF8String), no attributes and so no extensions (the root ceremony decides
/// the profile), signed by `key`. Built directly rather than with x509-cert's RequestBuilder,
/// which always adds an extensionRequest attribute, empty here (RFC 5280's Extensions has at
/// least one element).
pub fn ca_csr(role: CaRole, cluster: &str, key: &SoftKey) -> Result<String> {
    let bug = |what: &str, e: &dyn std::fmt::Display| {
        Error::internal(format!("cannot make the CSR: {what}: {e}"))
    };
    let mut subject = RdnSequence::default();
    for (oid, value) in [
        (ORGANIZATION_NAME, cluster),
        (COMMON_NAME, role.common_name()),
    ] {
        let value = Utf8StringRef::new(value)
            .and_then(|v| Any::encode_from(&v))
            .map_err(|e| bug("a subject attribute", &e))?;
        let rdn = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }])
            .map_err(|e| bug("a subject attribute", &e))?;
        subject.push(RelativeDistinguishedName::from(rdn));
    }
    let subject = Name::from_der(&subject.to_der().map_err(|e| bug("the subject", &e))?)
        .map_err(|e| bug("the subject", &e))?;
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: key.public_key().clone(),
        attributes: Default::default(),
    };
    let tbs = info
        .to_der()
        .map_err(|e| bug("CertificationRequestInfo", &e))?;
    let signature = key.sign(&tbs)?;
    let request = CertReq {
        info,
        algorithm: key.signature_algorithm().algorithm_identifier(),
        signature: BitString::from_bytes(&signature).map_err(|e| bug("the signature", &e))?,
    };
    let der = request.to_der().map_err(|e| bug("the request", &e))?;
    Ok(to_pem(CSR_LABEL, &der)?)
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
        .map_err(|e| Error::internal(format!("public key encoding: {e}")))?;
    write_atomic(&sa_pub, to_pem("PUBLIC KEY", &spki)?.as_bytes(), 0o644, ow)?;
    Ok(Requested { keys, sa_pub, csrs })
}

/// `k8s request --renew`: the CSRs of the three cluster CAs again, with the keys they already
/// have (`pki/*.key` under `out`), for the next root ceremony. The renewed CAs keep subject and
/// key, so every certificate they issued stays valid. Writes only the CSRs.
pub fn renew_requests(cluster: Option<&str>, out: &Path, ow: Overwrite) -> Result<Vec<PathBuf>> {
    let pki = pki_dir(out);
    // The cluster's name is the O of its current kubernetes-ca.
    let cluster = match cluster {
        Some(c) => c.to_string(),
        None => {
            let path = CaRole::Kubernetes.cert_path(&pki);
            let cert = crate::x509::decode::load_certificate(&crate::error::read_file(&path)?)?;
            crate::x509::name::organizations(cert.tbs_certificate().subject())
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Error::invalid(
                        format!("{} names no cluster (no O in its subject)", path.display()),
                        "pass --cluster NAME",
                    )
                })?
        }
    };
    let req = requests_dir(out);
    for role in CaRole::ALL {
        check_free(&role.csr_path(&req), ow)?;
    }
    let mut keys = Vec::new();
    for role in CaRole::ALL {
        let path = role.key_path(&pki);
        let pem = zeroize::Zeroizing::new(crate::error::read_file(&path)?);
        let text = std::str::from_utf8(&pem).map_err(|_| {
            Error::invalid(
                format!("{} is not a PEM private key", path.display()),
                "give the cluster directory 'hsmca k8s request' wrote",
            )
        })?;
        keys.push((role, SoftKey::from_pem(text)?));
    }
    create_dir(&req)?;
    let mut csrs = Vec::new();
    for (role, key) in keys {
        write_atomic(
            &role.csr_path(&req),
            ca_csr(role, &cluster, &key)?.as_bytes(),
            0o644,
            ow,
        )?;
        csrs.push(role.csr_path(&req));
    }
    Ok(csrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::csr::Csr;
    use crate::x509::name::display_name;

    #[test]
    fn ca_csrs_are_self_signed_with_the_cluster_as_o_and_no_attributes() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            let key = SoftKey::generate(alg).unwrap();
            let pem = ca_csr(CaRole::Etcd, "prod, eu-1", &key).unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
            let csr = Csr::parse(pem.as_bytes()).unwrap();
            csr.verify_self_signature().unwrap();
            assert_eq!(csr.spki(), key.public_key());
            assert_eq!(csr.signature_algorithm().unwrap(), alg.default_signature());
            // RFC 4514 text lists the last RDN first: CN, then O (a comma escaped).
            assert_eq!(display_name(csr.subject()), "CN=etcd-ca,O=prod\\, eu-1");
            assert!(csr.request().info.attributes.is_empty());
        }
    }
}
