//! PKCS#10 certificate signing requests: strict parsing, self-signature check, key check and
//! the extensions the requester asked for.

use const_oid::AssociatedOid;
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, ExtensionReq};

use super::algorithm::{PublicKeyInfo, SignatureAlgorithm};
use super::decode::{CSR_LABEL, NEW_CSR_LABEL, decode_der, read_single};
use super::error::{X509Error, oid_name};
use super::verify::{split_signed, verify_signature};

const WHAT: &str = "CSR";

/// A parsed PKCS#10 request together with the DER it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csr {
    request: CertReq,
    der: Vec<u8>,
}

impl Csr {
    /// Reads one CSR: PEM labelled "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST", or
    /// DER; refuses empty, truncated, mislabelled, multi-block and trailing-data inputs.
    pub fn parse(bytes: &[u8]) -> Result<Csr, X509Error> {
        let der = read_single(
            bytes,
            WHAT,
            &[CSR_LABEL, NEW_CSR_LABEL],
            "CERTIFICATE REQUEST",
        )?;
        Self::from_der(der)
    }

    /// Decodes a DER CSR, refusing trailing bytes.
    pub fn from_der(der: Vec<u8>) -> Result<Csr, X509Error> {
        let request = decode_der(&der, WHAT)?;
        Ok(Csr { request, der })
    }

    /// The decoded request.
    pub fn request(&self) -> &CertReq {
        &self.request
    }

    /// The DER encoding, as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject the requester asked for.
    pub fn subject(&self) -> &Name {
        &self.request.info.subject
    }

    /// The requester's SubjectPublicKeyInfo, unchecked (see [`Self::public_key`]).
    pub fn spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.request.info.public_key
    }

    /// The requester's key, checked: refuses unknown types, unsupported curves and RSA
    /// outside 2048..=8192 bits.
    pub fn public_key(&self) -> Result<PublicKeyInfo, X509Error> {
        PublicKeyInfo::from_spki(self.spki())
    }

    /// The algorithm the request is signed with, if it is a supported one.
    pub fn signature_algorithm(&self) -> Result<SignatureAlgorithm, X509Error> {
        SignatureAlgorithm::from_algorithm_identifier(&self.request.algorithm)
    }

    /// Checks the proof of possession: the signature over CertificationRequestInfo, taken
    /// byte for byte from the input (not re-encoded), with the key the request contains.
    pub fn verify_self_signature(&self) -> Result<(), X509Error> {
        let parts = split_signed(&self.der, WHAT)?;
        verify_signature(self.spki(), &parts.algorithm, parts.tbs, parts.signature).map_err(|e| {
            match e {
                X509Error::BadSignature => X509Error::BadCsrSignature,
                other => other,
            }
        })
    }

    /// The extensions asked for in the extensionRequest attribute (1.2.840.113549.1.9.14);
    /// empty when there is none. A repeated attribute, an attribute with other than one
    /// value, or a repeated extension is refused.
    pub fn requested_extensions(&self) -> Result<Vec<Extension>, X509Error> {
        let mut found = self
            .request
            .info
            .attributes
            .iter()
            .filter(|a| a.oid == ExtensionReq::OID);
        let Some(attribute) = found.next() else {
            return Ok(Vec::new());
        };
        if found.next().is_some() {
            return Err(X509Error::MalformedExtensionRequest {
                detail: "the attribute appears more than once".into(),
            });
        }
        let mut values = attribute.values.iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(X509Error::MalformedExtensionRequest {
                detail: format!(
                    "the attribute must hold exactly one value but holds {}",
                    attribute.values.len()
                ),
            });
        };
        let extensions: Vec<Extension> =
            value
                .decode_as()
                .map_err(|e| X509Error::MalformedExtensionRequest {
                    detail: format!("its value is not a SEQUENCE OF Extension: {e}"),
                })?;
        for (i, ext) in extensions.iter().enumerate() {
            if extensions[..i].iter().any(|e| e.extn_id == ext.extn_id) {
                return Err(X509Error::DuplicateExtension {
                    oid: ext.extn_id,
                    name: oid_name(&ext.extn_id),
                });
            }
        }
        Ok(extensions)
    }

    /// SHA-256 of the CSR's DER, for audit records and for the operator to compare with
    /// the requester out of band.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::verify::tests::{MARKER, flip_marker, params, rsa_rcgen_key};
    use rcgen::{KeyPair, SanType};
    use x509_cert::ext::pkix::SubjectAltName;

    fn csr_for(alg: &'static rcgen::SignatureAlgorithm) -> rcgen::CertificateSigningRequest {
        let key = KeyPair::generate_for(alg).unwrap();
        params().serialize_request(&key).unwrap()
    }

    fn check_good_and_flipped(req: &rcgen::CertificateSigningRequest, kind: &str) {
        let pem = req.pem().unwrap();
        let csr = Csr::parse(pem.as_bytes()).unwrap();
        csr.verify_self_signature().unwrap();
        assert_eq!(csr.public_key().unwrap().to_string(), kind);
        assert!(
            csr.subject()
                .to_string()
                .contains(std::str::from_utf8(MARKER).unwrap())
        );
        assert_eq!(csr.der(), req.der().as_ref());
        assert_eq!(csr.sha256().to_vec(), Sha256::digest(req.der()).to_vec());

        let from_der = Csr::parse(req.der()).unwrap();
        assert_eq!(from_der, csr);

        let flipped = Csr::parse(&flip_marker(req.der())).unwrap();
        let err = flipped.verify_self_signature().unwrap_err();
        assert!(matches!(err, X509Error::BadCsrSignature), "{err:?}");
        assert!(
            err.hint()
                .is_some_and(|h| h.contains("ask the requester for a new CSR"))
        );
    }

    #[test]
    fn p256_csr() {
        check_good_and_flipped(&csr_for(&rcgen::PKCS_ECDSA_P256_SHA256), "ECDSA P-256");
    }

    #[test]
    fn p384_csr() {
        check_good_and_flipped(&csr_for(&rcgen::PKCS_ECDSA_P384_SHA384), "ECDSA P-384");
    }

    #[test]
    fn ed25519_csr() {
        check_good_and_flipped(&csr_for(&rcgen::PKCS_ED25519), "Ed25519");
    }

    #[test]
    fn rsa_csr() {
        let req = params().serialize_request(&rsa_rcgen_key()).unwrap();
        check_good_and_flipped(&req, "RSA 2048");
    }

    #[test]
    fn truncated_pem_is_refused_clearly() {
        let pem = csr_for(&rcgen::PKCS_ECDSA_P256_SHA256).pem().unwrap();
        let cut = &pem[..pem.len() - 30];
        let err = Csr::parse(cut.as_bytes()).unwrap_err();
        assert!(matches!(err, X509Error::MalformedPem { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("truncated") && msg.contains("CSR"), "{msg}");
    }

    #[test]
    fn wrong_label_and_two_blocks_are_refused() {
        let pem = csr_for(&rcgen::PKCS_ECDSA_P256_SHA256).pem().unwrap();
        let as_cert = pem.replace("CERTIFICATE REQUEST", "CERTIFICATE");
        assert!(matches!(
            Csr::parse(as_cert.as_bytes()),
            Err(X509Error::WrongPemLabel { .. })
        ));
        let legacy = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        Csr::parse(legacy.as_bytes())
            .unwrap()
            .verify_self_signature()
            .unwrap();
        let two = format!("{pem}{pem}");
        assert!(matches!(
            Csr::parse(two.as_bytes()),
            Err(X509Error::WrongCount { found: 2, .. })
        ));
    }

    #[test]
    fn requested_extensions_are_returned() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = params();
        p.subject_alt_names
            .push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        let req = p.serialize_request(&key).unwrap();
        let csr = Csr::parse(req.der()).unwrap();
        let exts = csr.requested_extensions().unwrap();
        let san = exts
            .iter()
            .find(|e| e.extn_id == SubjectAltName::OID)
            .expect("SAN requested");
        let san: SubjectAltName = der::Decode::from_der(san.extn_value.as_bytes()).unwrap();
        assert_eq!(san.0.len(), 2);
    }

    #[test]
    fn no_extension_request_gives_empty_list() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "no extensions");
        let req = p.serialize_request(&key).unwrap();
        let csr = Csr::parse(req.der()).unwrap();
        assert!(csr.requested_extensions().unwrap().is_empty());
        csr.verify_self_signature().unwrap();
    }
}
