//! PKCS#10 requests for a CA key kept on the token: an intermediate asking a root elsewhere to
//! certify it, or a root asking another CA to cross-sign it. The request is built with
//! x509-cert, signed through a [`CaSigner`] and its self-signature verified before anyone sees
//! it.

use der::Encode;
use x509_cert::builder::Builder;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::request::RequestBuilder;

use super::csr::Csr;
use super::error::{Result, X509Error};
use super::name::check_subject;
use super::signer::{BuilderKey, CaSigner};

fn build_err(e: impl std::fmt::Display) -> X509Error {
    X509Error::refused(
        format!("cannot build the certificate request: {e}"),
        "check the subject",
    )
}

/// A request for a CA certificate for `signer`'s key: `subject`, and an extensionRequest for
/// what a CA certificate carries (basicConstraints cA with `path_len`, keyUsage keyCertSign
/// and cRLSign, both critical); the issuer decides the rest.
pub fn ca_request(subject: Name, path_len: Option<u8>, signer: &dyn CaSigner) -> Result<Csr> {
    check_subject(&subject)?;
    if subject.is_empty() {
        return Err(X509Error::refused(
            "a CA certificate request needs a subject name",
            "pass --subject, e.g. \"CN=Cluster A CA,O=Example\"",
        ));
    }
    let mut builder = RequestBuilder::new(subject).map_err(build_err)?;
    let bc = BasicConstraints {
        ca: true,
        path_len_constraint: path_len,
    };
    builder.add_extension((true, &bc)).map_err(build_err)?;
    let ku = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    builder.add_extension((true, &ku)).map_err(build_err)?;
    let key = BuilderKey::new(signer);
    let info = builder.finalize(&key).map_err(build_err)?;
    let signature = BuilderKey::bit_string(&signer.sign(&info)?)?;
    let request = builder.assemble(signature, &key).map_err(build_err)?;
    let der = request.to_der().map_err(build_err)?;
    let csr = Csr::from_der(der)?;
    // Checked as a CA checks what it receives, before anyone sees it.
    csr.verify_self_signature()?;
    if csr.spki() != signer.public_key() {
        return Err(X509Error::internal(
            "the request's public key is not the signing key's; nothing was written",
        ));
    }
    Ok(csr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::algorithm::KeyAlgorithm;
    use crate::x509::name::parse_name;
    use crate::x509::soft_key::SoftKey;

    #[test]
    fn a_ca_request_verifies_and_asks_for_a_ca() {
        for alg in [KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
            let key = SoftKey::generate(alg).unwrap();
            let csr = ca_request(
                parse_name("CN=Cluster A CA,O=Example").unwrap(),
                Some(0),
                &key,
            )
            .unwrap();
            assert_eq!(csr.subject().to_string(), "CN=Cluster A CA,O=Example");
            let asked = csr.requested_extensions().unwrap();
            assert_eq!(asked.len(), 2);
            assert!(asked.iter().all(|e| e.critical));
            let again = Csr::parse(csr.der()).unwrap();
            again.verify_self_signature().unwrap();
        }
    }
}
