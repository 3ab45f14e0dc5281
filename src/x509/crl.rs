//! CRLs: v2, issuer copied from the CA certificate, AKI, CRL number, reason codes, and for a
//! root's CRL issuingDistributionPoint onlyContainsCACerts. Signed through a [`CaSigner`]
//! and verified before it is returned.

use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::ToExtension;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason};
use x509_cert::serial_number::SerialNumber;

use super::error::{Result, X509Error};
use super::issue::issuer_facts;
use super::signer::{BuilderKey, CaSigner};
use super::validity::{ValidityPeriod, from_x509_time, to_x509_time};
use super::verify::verify_signature;

/// id-ce-issuingDistributionPoint. x509-cert 0.3 attaches the wrong OID to its
/// IssuingDistributionPoint type, so the extension is built with this one explicitly.
pub const ID_CE_ISSUING_DISTRIBUTION_POINT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.28");

/// The longest CRL lifetime hsmca issues.
pub const MAX_CRL_DAYS: i64 = 365;

/// One revoked certificate.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// Its serial number.
    pub serial: SerialNumber,
    /// When it was revoked.
    pub date: OffsetDateTime,
    /// Why.
    pub reason: CrlReason,
}

/// Builds, signs and verifies the CRL of `issuer` (whose key is behind `signer`).
pub fn issue_crl(
    signer: &dyn CaSigner,
    issuer: &Certificate,
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: &[Revocation],
    url: Option<&str>,
) -> Result<CertificateList> {
    let facts = issuer_facts(issuer)?;
    if let Some(url) = url {
        super::profile::check_http_url(url)?;
    }
    if issuer.tbs_certificate().subject_public_key_info() != signer.public_key() {
        return Err(X509Error::refused(
            "the key is not the issuer's: its public key differs from the CA certificate's",
            "pass the key URI of the CA whose CRL this is",
        ));
    }
    let issuer_not_after = from_x509_time(&issuer.tbs_certificate().validity().not_after)?;
    if next_update <= this_update {
        return Err(X509Error::refused(
            "nextUpdate is not after thisUpdate",
            "check --next-update",
        ));
    }
    if next_update - this_update > time::Duration::days(MAX_CRL_DAYS) {
        return Err(X509Error::refused(
            format!("nextUpdate is more than {MAX_CRL_DAYS} days after thisUpdate"),
            "choose --next-update of at most 365d",
        ));
    }
    if next_update > issuer_not_after {
        return Err(X509Error::refused(
            "nextUpdate is after the issuer certificate's NotAfter",
            "choose an earlier --next-update",
        ));
    }
    let period = ValidityPeriod::between(this_update, next_update)?.to_x509()?;
    let enc = |e: der::Error| X509Error::internal(format!("CRL encoding: {e}"));
    let subject = issuer.tbs_certificate().subject();

    let mut entries = Vec::new();
    for r in revoked {
        let reason = (false, &r.reason).to_extension(subject, &[]).map_err(enc)?;
        entries.push(RevokedCert {
            serial_number: r.serial.clone(),
            revocation_date: to_x509_time(r.date)?,
            crl_entry_extensions: Some(vec![reason]),
        });
    }
    let mut exts = vec![
        (
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(facts.key_id.clone()).map_err(enc)?),
                ..Default::default()
            },
        )
            .to_extension(subject, &[])
            .map_err(enc)?,
        (
            false,
            &CrlNumber(der::asn1::Uint::new(&crl_number.to_be_bytes()).map_err(enc)?),
        )
            .to_extension(subject, &[])
            .map_err(enc)?,
    ];
    if facts.self_signed || url.is_some() {
        // A root signs only CA certificates: its CRL says so, and linters treat it as an ARL.
        // The URL it is published at goes in as the distribution point: rustls-webpki refuses
        // an issuingDistributionPoint without one.
        let distribution_point = url
            .map(|u| {
                Ok::<_, X509Error>(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(
                        der::asn1::Ia5String::new(u).map_err(enc)?,
                    ),
                ]))
            })
            .transpose()?;
        let idp = IssuingDistributionPoint {
            distribution_point,
            only_contains_user_certs: false,
            only_contains_ca_certs: facts.self_signed,
            only_some_reasons: None,
            indirect_crl: false,
            only_contains_attribute_certs: false,
        };
        exts.push(
            (ID_CE_ISSUING_DISTRIBUTION_POINT, true, &idp)
                .to_extension(subject, &[])
                .map_err(enc)?,
        );
    }
    let alg = signer.signature_algorithm().algorithm_identifier();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: alg.clone(),
        issuer: subject.clone(),
        this_update: period.not_before,
        next_update: Some(period.not_after),
        // An empty list is absent, not empty.
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(exts),
    };
    let tbs_der = tbs.to_der().map_err(enc)?;
    let signature = signer.sign(&tbs_der)?;
    verify_signature(signer.public_key(), &alg, &tbs_der, &signature)?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: alg,
        signature: BuilderKey::bit_string(&signature)?,
    };
    let der = crl.to_der().map_err(enc)?;
    let again: CertificateList = CertificateList::from_der(&der).map_err(enc)?;
    if again.to_der().map_err(enc)? != der {
        return Err(X509Error::internal(
            "the CRL does not round-trip through DER",
        ));
    }
    Ok(crl)
}
