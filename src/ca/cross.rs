//! Cross-signing: another CA's certificate issued again under this CA, same subject and key.
//! Used for rollover: an old root signs the new one (or the reverse), so relying parties that
//! trust either root accept chains to the other.

use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};

use crate::error::{Error, Result};
use crate::x509::algorithm::PublicKeyInfo;
use crate::x509::decode::{ParsedCertificate, load_certificate_with_der};
use crate::x509::name::display_name;
use crate::x509::verify::verify_certificate_der;

/// A CA certificate checked fit to be cross-signed: a CA, with a supported key, whose signature
/// verified (its own if self-signed, else its issuer's), and whose key is not the signing CA's.
pub struct CrossSource {
    parsed: ParsedCertificate,
    subject_key_id: Option<Vec<u8>>,
    self_signed: bool,
}

fn refuse(cause: String, hint: &str) -> Error {
    Error::invalid(cause, hint)
}

impl CrossSource {
    /// Checks `bytes` (PEM or DER) as a certificate to cross-sign under the CA key `ca_key`;
    /// `issuer` is the certificate that signed it, required when it is not self-signed.
    pub fn check(
        bytes: &[u8],
        issuer: Option<&[u8]>,
        ca_key: &SubjectPublicKeyInfoOwned,
    ) -> Result<CrossSource> {
        let parsed = load_certificate_with_der(bytes)?;
        let tbs = parsed.certificate.tbs_certificate();
        let subject = display_name(tbs.subject());
        if tbs.subject().is_empty() {
            return Err(refuse(
                "the certificate to cross-sign has an empty subject".into(),
                "cross-sign a CA certificate: CAs are named by their subject",
            ));
        }
        let bc = tbs.get_extension::<BasicConstraints>().map_err(|e| {
            refuse(
                format!("its basicConstraints do not decode: {e}"),
                "check the file",
            )
        })?;
        if !bc.is_some_and(|(_, bc)| bc.ca) {
            return Err(refuse(
                format!("{subject} is not a CA certificate (basicConstraints cA is not true)"),
                "only CA certificates are cross-signed; leaf certificates are issued from CSRs",
            ));
        }
        let ku = tbs.get_extension::<KeyUsage>().map_err(|e| {
            refuse(
                format!("its keyUsage does not decode: {e}"),
                "check the file",
            )
        })?;
        if let Some((_, ku)) = ku
            && !ku.0.contains(KeyUsages::KeyCertSign)
        {
            return Err(refuse(
                format!(
                    "{subject} has a keyUsage without keyCertSign: its key may not sign certificates"
                ),
                "cross-sign the certificate of a CA key that signs certificates",
            ));
        }
        PublicKeyInfo::from_spki(tbs.subject_public_key_info())?;
        if tbs.subject_public_key_info() == ca_key {
            return Err(refuse(
                format!("{subject} has the signing CA's own key"),
                "cross-signing pairs two different CA keys; this CA's own certificate needs no cross-certificate",
            ));
        }
        let self_signed = tbs.issuer() == tbs.subject();
        match (self_signed, issuer) {
            (true, None) => {
                verify_certificate_der(&parsed.der, tbs.subject_public_key_info()).map_err(
                    |e| {
                        refuse(
                            format!("the self-signature of {subject} does not verify: {e}"),
                            "the file is damaged or not the CA's certificate; get it again from its CA",
                        )
                    },
                )?;
            }
            (_, Some(issuer_bytes)) => {
                let issuer = load_certificate_with_der(issuer_bytes)?;
                let itbs = issuer.certificate.tbs_certificate();
                if itbs.subject() != tbs.issuer() {
                    return Err(refuse(
                        format!(
                            "certificate_issuer is {}, but {subject} was issued by {}",
                            display_name(itbs.subject()),
                            display_name(tbs.issuer())
                        ),
                        "name the certificate of the CA that issued it",
                    ));
                }
                verify_certificate_der(&parsed.der, itbs.subject_public_key_info()).map_err(
                    |e| {
                        refuse(
                            format!("the signature on {subject} does not verify with its issuer's key: {e}"),
                            "name the right issuer certificate, or get the certificate again",
                        )
                    },
                )?;
            }
            (false, None) => {
                return Err(refuse(
                    format!(
                        "{subject} is not self-signed (issuer {}), so its key holder is not proven by the file alone",
                        display_name(tbs.issuer())
                    ),
                    "add certificate_issuer = \"path of its issuer's certificate\" so its signature can be checked",
                ));
            }
        }
        let subject_key_id = tbs
            .get_extension::<SubjectKeyIdentifier>()
            .map_err(|e| {
                refuse(
                    format!("its subjectKeyIdentifier does not decode: {e}"),
                    "check the file",
                )
            })?
            .map(|(_, ski)| ski.0.as_bytes().to_vec())
            .filter(|id| !id.is_empty());
        Ok(CrossSource {
            parsed,
            subject_key_id,
            self_signed,
        })
    }

    /// The certificate to cross-sign.
    pub fn certificate(&self) -> &Certificate {
        &self.parsed.certificate
    }

    /// Its DER as read.
    pub fn der(&self) -> &[u8] {
        &self.parsed.der
    }

    /// Its subjectKeyIdentifier, which the cross-certificate keeps.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.subject_key_id.as_deref()
    }

    /// Whether it signs itself (a root).
    pub fn self_signed(&self) -> bool {
        self.self_signed
    }
}
