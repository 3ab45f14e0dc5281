//! Human-readable descriptions of certificates, chains, CSRs, CRLs and public keys: what an
//! operator reads before and after a ceremony to check what is about to be, or was, signed.
//!
//! Describing never stops at the first problem: a weak key, a malformed extension or a bad
//! signature is reported in the text, and only input that cannot be decoded at all is an
//! error.

use core::fmt::Display;

use const_oid::db::rfc5280 as oids;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::certificate::Version;
use x509_cert::crl::CertificateList;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::constraints::name::GeneralSubtrees;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, CrlNumber, CrlReason, ExtendedKeyUsage, IssuingDistributionPoint,
    KeyUsage, KeyUsages, NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::request::CertReq;
use x509_cert::time::Time;

use super::algorithm::{PublicKeyInfo, key_identifier, spki_sha256};
use super::csr::Csr;
use super::decode::{
    CERTIFICATE_LABEL, CRL_LABEL, CSR_LABEL, Input, NEW_CSR_LABEL, PUBLIC_KEY_LABEL, PemBlock,
    read_input,
};
use super::error::{X509Error, oid_name};
use super::verify::{describe_algorithm, verify_certificate_der};

const WHAT: &str = "X.509 object";

/// Describes `bytes` as text: a certificate or PEM chain, a CSR, a CRL or a public key, in
/// PEM or DER. Fails only when the input cannot be decoded as any of these.
pub fn describe(bytes: &[u8]) -> Result<String, X509Error> {
    let mut out = Out::default();
    match read_input(bytes, WHAT)? {
        Input::Der(der) => describe_der(&mut out, der)?,
        Input::Pem(blocks) => describe_pem(&mut out, blocks)?,
    }
    Ok(out.text)
}

/// Text being built, with indentation.
#[derive(Default)]
struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, indent: usize, text: impl Display) {
        for _ in 0..indent {
            self.text.push_str("  ");
        }
        self.text.push_str(&text.to_string());
        self.text.push('\n');
    }
}

fn describe_pem(out: &mut Out, blocks: Vec<PemBlock>) -> Result<(), X509Error> {
    if blocks.iter().all(|b| b.label == CERTIFICATE_LABEL) {
        let ders: Vec<Vec<u8>> = blocks.into_iter().map(|b| b.der).collect();
        return describe_certificates(out, &ders);
    }
    let count = blocks.len();
    for (i, block) in blocks.into_iter().enumerate() {
        if count > 1 {
            if i > 0 {
                out.line(0, "");
            }
            out.line(
                0,
                format!(
                    "PEM block {} of {count} (line {}, {}):",
                    i + 1,
                    block.line,
                    block.label
                ),
            );
        }
        match block.label.as_str() {
            CERTIFICATE_LABEL => describe_certificates(out, &[block.der])?,
            CSR_LABEL | NEW_CSR_LABEL => describe_csr(out, Csr::from_der(block.der)?),
            CRL_LABEL => {
                let crl = super::decode::decode_der(&block.der, "CRL")?;
                describe_crl(out, &block.der, &crl);
            }
            PUBLIC_KEY_LABEL => {
                let spki = super::decode::decode_der(&block.der, "public key")?;
                describe_public_key(out, &spki);
            }
            _ => {
                return Err(X509Error::WrongPemLabel {
                    what: WHAT,
                    expected: "CERTIFICATE, CERTIFICATE REQUEST, X509 CRL or PUBLIC KEY",
                    found: block.label,
                    line: block.line,
                });
            }
        }
    }
    Ok(())
}

/// DER carries no label: try each structure in turn. A trailing-data error is reported as
/// such, since it means the structure was recognised.
fn describe_der(out: &mut Out, der: &[u8]) -> Result<(), X509Error> {
    let trailing = |e: &der::Error| matches!(e.kind(), der::ErrorKind::TrailingData { .. });
    let cert_err = match Certificate::from_der(der) {
        Ok(_) => return describe_certificates(out, &[der.to_vec()]),
        Err(e) if trailing(&e) => return Err(super::decode::der_error("certificate", e)),
        Err(e) => e,
    };
    let csr_err = match CertReq::from_der(der) {
        Ok(_) => {
            describe_csr(out, Csr::from_der(der.to_vec())?);
            return Ok(());
        }
        Err(e) if trailing(&e) => return Err(super::decode::der_error("CSR", e)),
        Err(e) => e,
    };
    let crl_err = match CertificateList::from_der(der) {
        Ok(crl) => {
            describe_crl(out, der, &crl);
            return Ok(());
        }
        Err(e) if trailing(&e) => return Err(super::decode::der_error("CRL", e)),
        Err(e) => e,
    };
    let key_err = match SubjectPublicKeyInfoOwned::from_der(der) {
        Ok(spki) => {
            describe_public_key(out, &spki);
            return Ok(());
        }
        Err(e) => e,
    };
    Err(X509Error::UnrecognizedInput {
        detail: format!(
            "as a certificate: {cert_err}; as a CSR: {csr_err}; as a CRL: {crl_err}; as a \
             public key: {key_err}"
        ),
    })
}

fn describe_certificates(out: &mut Out, ders: &[Vec<u8>]) -> Result<(), X509Error> {
    let certs = ders
        .iter()
        .map(|d| super::decode::decode_der::<Certificate>(d, "certificate"))
        .collect::<Result<Vec<_>, _>>()?;
    if certs.len() == 1 {
        describe_certificate(out, 0, &ders[0], &certs[0]);
        return Ok(());
    }
    out.line(
        0,
        format!("Certificate chain of {} certificates", certs.len()),
    );
    for (i, (der, cert)) in ders.iter().zip(&certs).enumerate() {
        out.line(0, "");
        out.line(0, format!("[{}]", i + 1));
        describe_certificate(out, 1, der, cert);
    }
    out.line(0, "");
    out.line(0, "Chain links:");
    for i in 1..certs.len() {
        let (child, parent) = (&certs[i - 1], &certs[i]);
        let names_match = child.tbs_certificate().issuer() == parent.tbs_certificate().subject();
        out.line(
            1,
            format!(
                "certificate {}'s issuer equals certificate {}'s subject: {}",
                i,
                i + 1,
                yes_no(names_match)
            ),
        );
        let verdict = match verify_certificate_der(
            &ders[i - 1],
            parent.tbs_certificate().subject_public_key_info(),
        ) {
            Ok(()) => "yes".to_owned(),
            Err(e) => format!("no ({e})"),
        };
        out.line(
            1,
            format!(
                "certificate {}'s signature verifies with certificate {}'s key: {verdict}",
                i,
                i + 1
            ),
        );
    }
    Ok(())
}

fn describe_certificate(out: &mut Out, indent: usize, der: &[u8], cert: &Certificate) {
    let tbs = cert.tbs_certificate();
    out.line(indent, "Certificate");
    let i = indent + 1;
    let version = match tbs.version() {
        Version::V1 => 1,
        Version::V2 => 2,
        Version::V3 => 3,
    };
    out.line(i, format!("Version: {version}"));
    out.line(
        i,
        format!("Serial: {}", serial_text(tbs.serial_number().as_bytes())),
    );
    out.line(i, format!("Subject: {}", name_text(tbs.subject())));
    out.line(i, format!("Issuer: {}", name_text(tbs.issuer())));
    out.line(i, "Validity:");
    let validity = tbs.validity();
    out.line(
        i + 1,
        format!("Not before: {}", time_text(&validity.not_before)),
    );
    out.line(
        i + 1,
        format!("Not after:  {}", time_text(&validity.not_after)),
    );
    out.line(
        i + 1,
        format!(
            "Period: {} (both ends inclusive)",
            period_text(&validity.not_before, &validity.not_after, true)
        ),
    );
    out.line(
        i,
        format!("Public key: {}", key_text(tbs.subject_public_key_info())),
    );
    out.line(
        i,
        format!(
            "Signature algorithm: {}",
            describe_algorithm(cert.signature_algorithm())
        ),
    );
    if tbs.signature() != cert.signature_algorithm() {
        out.line(
            i,
            format!(
                "WARNING: the TBS signature algorithm ({}) differs from the outer one",
                describe_algorithm(tbs.signature())
            ),
        );
    }
    describe_extensions(out, i, "Extensions", tbs.extensions().map(Vec::as_slice));
    // RFC 5280 and chain builders expect decode -> encode to give the same bytes.
    if cert.to_der().is_ok_and(|d| d != der) {
        out.line(
            i,
            "WARNING: re-encoding gives other bytes: the certificate is not canonical DER",
        );
    }
    if tbs.subject() == tbs.issuer() {
        let verdict = match verify_certificate_der(der, tbs.subject_public_key_info()) {
            Ok(()) => "verifies with its own key".to_owned(),
            Err(e) => format!("does NOT verify with its own key ({e})"),
        };
        out.line(i, format!("Self-signature: {verdict}"));
    }
    out.line(
        i,
        format!("SHA-256 fingerprint: {}", colon_hex(&Sha256::digest(der))),
    );
    out.line(
        i,
        format!(
            "SPKI SHA-256: {}",
            hex::encode(spki_sha256(tbs.subject_public_key_info()))
        ),
    );
}

fn describe_csr(out: &mut Out, csr: Csr) {
    out.line(0, "Certificate signing request");
    out.line(1, format!("Subject: {}", name_text(csr.subject())));
    out.line(1, format!("Public key: {}", key_text(csr.spki())));
    out.line(
        1,
        format!(
            "Signature algorithm: {}",
            describe_algorithm(&csr.request().algorithm)
        ),
    );
    let verdict = match csr.verify_self_signature() {
        Ok(()) => "verifies".to_owned(),
        Err(e) => format!("does NOT verify ({e})"),
    };
    out.line(1, format!("Self-signature: {verdict}"));
    match csr.requested_extensions() {
        Ok(exts) if exts.is_empty() => out.line(1, "Requested extensions: none"),
        Ok(exts) => describe_extensions(out, 1, "Requested extensions", Some(&exts)),
        Err(e) => out.line(1, format!("Requested extensions: unreadable ({e})")),
    }
    let others: Vec<String> = csr
        .request()
        .info
        .attributes
        .iter()
        .filter(|a| a.oid != <x509_cert::request::ExtensionReq as AssociatedOid>::OID)
        .map(|a| oid_text(&a.oid))
        .collect();
    if !others.is_empty() {
        out.line(1, format!("Other attributes: {}", others.join(", ")));
    }
    out.line(1, format!("SHA-256: {}", colon_hex(&csr.sha256())));
    out.line(
        1,
        format!("SPKI SHA-256: {}", hex::encode(spki_sha256(csr.spki()))),
    );
}

fn describe_crl(out: &mut Out, der: &[u8], crl: &CertificateList) {
    let tbs = &crl.tbs_cert_list;
    out.line(0, "Certificate revocation list");
    let version = match tbs.version {
        Version::V1 => 1,
        Version::V2 => 2,
        Version::V3 => 3,
    };
    out.line(1, format!("Version: {version}"));
    out.line(1, format!("Issuer: {}", name_text(&tbs.issuer)));
    out.line(
        1,
        format!(
            "Signature algorithm: {}",
            describe_algorithm(&crl.signature_algorithm)
        ),
    );
    if tbs.signature != crl.signature_algorithm {
        out.line(
            1,
            "WARNING: the TBS signature algorithm differs from the outer one",
        );
    }
    out.line(1, format!("This update: {}", time_text(&tbs.this_update)));
    match &tbs.next_update {
        Some(next) => {
            out.line(1, format!("Next update: {}", time_text(next)));
            out.line(
                1,
                format!(
                    "Update interval: {}",
                    period_text(&tbs.this_update, next, false)
                ),
            );
        }
        None => out.line(1, "Next update: absent"),
    }
    let crl_number = tbs
        .crl_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oids::ID_CE_CRL_NUMBER);
    match crl_number.map(|e| CrlNumber::from_der(e.extn_value.as_bytes())) {
        Some(Ok(n)) => out.line(1, format!("CRL number: {}", uint_text(n.0.as_bytes()))),
        Some(Err(e)) => out.line(1, format!("CRL number: malformed ({e})")),
        None => out.line(1, "CRL number: absent"),
    }
    describe_extensions(out, 1, "CRL extensions", tbs.crl_extensions.as_deref());
    match tbs.revoked_certificates.as_deref() {
        None | Some([]) => out.line(1, "Revoked certificates: none"),
        Some(revoked) => {
            out.line(1, format!("Revoked certificates ({}):", revoked.len()));
            for entry in revoked {
                let mut text = format!(
                    "Serial {}, revoked {}",
                    serial_text(entry.serial_number.as_bytes()),
                    time_text(&entry.revocation_date)
                );
                for ext in entry.crl_entry_extensions.iter().flatten() {
                    text.push_str(", ");
                    text.push_str(&entry_extension_text(ext));
                }
                out.line(2, text);
            }
        }
    }
    out.line(
        1,
        format!("SHA-256 fingerprint: {}", colon_hex(&Sha256::digest(der))),
    );
}

fn describe_public_key(out: &mut Out, spki: &SubjectPublicKeyInfoOwned) {
    out.line(0, "Public key");
    out.line(1, format!("Type: {}", key_text(spki)));
    out.line(
        1,
        format!("SPKI SHA-256: {}", hex::encode(spki_sha256(spki))),
    );
    out.line(
        1,
        format!(
            "Key identifier (SHA-1 of the key bits, RFC 5280 method 1): {}",
            colon_hex(&key_identifier(spki))
        ),
    );
}

fn describe_extensions(out: &mut Out, indent: usize, title: &str, exts: Option<&[Extension]>) {
    let exts = exts.unwrap_or(&[]);
    if exts.is_empty() {
        out.line(indent, format!("{title}: none"));
        return;
    }
    out.line(indent, format!("{title} ({}):", exts.len()));
    for (n, ext) in exts.iter().enumerate() {
        let critical = if ext.critical {
            "critical"
        } else {
            "not critical"
        };
        let repeated = if exts[..n].iter().any(|e| e.extn_id == ext.extn_id) {
            " [REPEATED: RFC 5280 allows one instance]"
        } else {
            ""
        };
        out.line(
            indent + 1,
            format!(
                "{} ({}), {critical}{repeated}: {}",
                extension_name(&ext.extn_id),
                ext.extn_id,
                extension_text(ext)
            ),
        );
    }
}

/// Short names for the extensions this tool decodes; others come from the OID database.
fn extension_name(oid: &ObjectIdentifier) -> &'static str {
    match *oid {
        oids::ID_CE_BASIC_CONSTRAINTS => "basicConstraints",
        oids::ID_CE_KEY_USAGE => "keyUsage",
        oids::ID_CE_EXT_KEY_USAGE => "extendedKeyUsage",
        oids::ID_CE_SUBJECT_KEY_IDENTIFIER => "subjectKeyIdentifier",
        oids::ID_CE_AUTHORITY_KEY_IDENTIFIER => "authorityKeyIdentifier",
        oids::ID_CE_SUBJECT_ALT_NAME => "subjectAltName",
        oids::ID_CE_NAME_CONSTRAINTS => "nameConstraints",
        oids::ID_CE_CRL_DISTRIBUTION_POINTS => "cRLDistributionPoints",
        oids::ID_CE_CERTIFICATE_POLICIES => "certificatePolicies",
        oids::ID_PE_AUTHORITY_INFO_ACCESS => "authorityInfoAccess",
        oids::ID_CE_CRL_NUMBER => "cRLNumber",
        oids::ID_CE_ISSUING_DISTRIBUTION_POINT => "issuingDistributionPoint",
        oids::ID_CE_CRL_REASONS => "reasonCode",
        _ => oid_name(oid),
    }
}

fn extension_text(ext: &Extension) -> String {
    let value = ext.extn_value.as_bytes();
    let decoded = match ext.extn_id {
        oids::ID_CE_BASIC_CONSTRAINTS => BasicConstraints::from_der(value).map(|bc| {
            let path = bc
                .path_len_constraint
                .map_or("absent".to_owned(), |p| p.to_string());
            format!("cA={}, pathLenConstraint={path}", bc.ca)
        }),
        oids::ID_CE_KEY_USAGE => KeyUsage::from_der(value).map(|ku| key_usage_text(&ku)),
        oids::ID_CE_EXT_KEY_USAGE => ExtendedKeyUsage::from_der(value)
            .map(|eku| eku.0.iter().map(eku_name).collect::<Vec<_>>().join(", ")),
        oids::ID_CE_SUBJECT_KEY_IDENTIFIER => {
            SubjectKeyIdentifier::from_der(value).map(|ski| colon_hex(ski.0.as_bytes()))
        }
        oids::ID_CE_AUTHORITY_KEY_IDENTIFIER => {
            AuthorityKeyIdentifier::from_der(value).map(|aki| aki_text(&aki))
        }
        oids::ID_CE_SUBJECT_ALT_NAME => {
            SubjectAltName::from_der(value).map(|san| general_names_text(&san.0))
        }
        oids::ID_CE_NAME_CONSTRAINTS => {
            NameConstraints::from_der(value).map(|nc| name_constraints_text(&nc))
        }
        oids::ID_CE_CRL_DISTRIBUTION_POINTS => CrlDistributionPoints::from_der(value).map(|dps| {
            dps.0
                .iter()
                .map(distribution_point_text)
                .collect::<Vec<_>>()
                .join("; ")
        }),
        oids::ID_CE_CERTIFICATE_POLICIES => CertificatePolicies::from_der(value).map(|cp| {
            cp.0.iter()
                .map(|p| oid_text(&p.policy_identifier))
                .collect::<Vec<_>>()
                .join(", ")
        }),
        oids::ID_PE_AUTHORITY_INFO_ACCESS => {
            AuthorityInfoAccessSyntax::from_der(value).map(|aia| {
                aia.0
                    .iter()
                    .map(|ad| {
                        let method = match ad.access_method.to_string().as_str() {
                            "1.3.6.1.5.5.7.48.1" => "OCSP".to_owned(),
                            "1.3.6.1.5.5.7.48.2" => "caIssuers".to_owned(),
                            _ => oid_text(&ad.access_method),
                        };
                        format!("{method} {}", general_name_text(&ad.access_location))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        }
        oids::ID_CE_CRL_NUMBER => CrlNumber::from_der(value).map(|n| uint_text(n.0.as_bytes())),
        oids::ID_CE_ISSUING_DISTRIBUTION_POINT => {
            IssuingDistributionPoint::from_der(value).map(|idp| idp_text(&idp))
        }
        _ => Ok(format!("{} bytes, not decoded", value.len())),
    };
    decoded.unwrap_or_else(|e| format!("MALFORMED ({e})"))
}

fn entry_extension_text(ext: &Extension) -> String {
    let value = ext.extn_value.as_bytes();
    match ext.extn_id {
        oids::ID_CE_CRL_REASONS => match CrlReason::from_der(value) {
            Ok(reason) => format!("reason: {}", reason_name(reason)),
            Err(e) => format!("reason: MALFORMED ({e})"),
        },
        oids::ID_CE_INVALIDITY_DATE => match der::asn1::GeneralizedTime::from_der(value) {
            Ok(t) => format!("invalidity date: {}", t.to_date_time()),
            Err(e) => format!("invalidity date: MALFORMED ({e})"),
        },
        _ => format!("{} ({})", extension_name(&ext.extn_id), ext.extn_id),
    }
}

fn reason_name(reason: CrlReason) -> &'static str {
    match reason {
        CrlReason::Unspecified => "unspecified",
        CrlReason::KeyCompromise => "keyCompromise",
        CrlReason::CaCompromise => "cACompromise",
        CrlReason::AffiliationChanged => "affiliationChanged",
        CrlReason::Superseded => "superseded",
        CrlReason::CessationOfOperation => "cessationOfOperation",
        CrlReason::CertificateHold => "certificateHold",
        CrlReason::RemoveFromCRL => "removeFromCRL",
        CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        CrlReason::AaCompromise => "aACompromise",
    }
}

fn key_usage_text(ku: &KeyUsage) -> String {
    const NAMES: [(KeyUsages, &str); 9] = [
        (KeyUsages::DigitalSignature, "digitalSignature"),
        (KeyUsages::NonRepudiation, "nonRepudiation"),
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
        (KeyUsages::DataEncipherment, "dataEncipherment"),
        (KeyUsages::KeyAgreement, "keyAgreement"),
        (KeyUsages::KeyCertSign, "keyCertSign"),
        (KeyUsages::CRLSign, "cRLSign"),
        (KeyUsages::EncipherOnly, "encipherOnly"),
        (KeyUsages::DecipherOnly, "decipherOnly"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(flag, _)| ku.0.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "none set".to_owned()
    } else {
        names.join(", ")
    }
}

fn eku_name(oid: &ObjectIdentifier) -> String {
    let name = match *oid {
        oids::ID_KP_SERVER_AUTH => "serverAuth",
        oids::ID_KP_CLIENT_AUTH => "clientAuth",
        oids::ID_KP_CODE_SIGNING => "codeSigning",
        oids::ID_KP_EMAIL_PROTECTION => "emailProtection",
        oids::ID_KP_TIME_STAMPING => "timeStamping",
        oids::ID_KP_OCSP_SIGNING => "OCSPSigning",
        _ if oid.to_string() == "2.5.29.37.0" => "anyExtendedKeyUsage",
        _ => return oid_text(oid),
    };
    name.to_owned()
}

fn aki_text(aki: &AuthorityKeyIdentifier) -> String {
    let mut parts = Vec::new();
    if let Some(id) = &aki.key_identifier {
        parts.push(format!("keyid {}", colon_hex(id.as_bytes())));
    }
    if let Some(names) = &aki.authority_cert_issuer {
        parts.push(format!("issuer {}", general_names_text(names)));
    }
    if let Some(serial) = &aki.authority_cert_serial_number {
        parts.push(format!("serial {}", serial_text(serial.as_bytes())));
    }
    if parts.is_empty() {
        "empty".to_owned()
    } else {
        parts.join(", ")
    }
}

fn name_constraints_text(nc: &NameConstraints) -> String {
    let subtrees = |label: &str, trees: &Option<GeneralSubtrees>| {
        trees.as_ref().map(|t| {
            let items: Vec<String> = t
                .iter()
                .map(|s| {
                    let mut text = general_name_text(&s.base);
                    if s.minimum != 0 {
                        text.push_str(&format!(" (minimum {})", s.minimum));
                    }
                    if let Some(max) = s.maximum {
                        text.push_str(&format!(" (maximum {max})"));
                    }
                    text
                })
                .collect();
            format!("{label}: {}", items.join(", "))
        })
    };
    let parts: Vec<String> = [
        subtrees("permitted", &nc.permitted_subtrees),
        subtrees("excluded", &nc.excluded_subtrees),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "EMPTY (RFC 5280 forbids an empty nameConstraints)".to_owned()
    } else {
        parts.join("; ")
    }
}

fn distribution_point_text(dp: &DistributionPoint) -> String {
    let mut parts = Vec::new();
    match &dp.distribution_point {
        Some(DistributionPointName::FullName(names)) => parts.push(general_names_text(names)),
        Some(DistributionPointName::NameRelativeToCRLIssuer(rdn)) => {
            parts.push(format!("relative name {rdn}"))
        }
        None => {}
    }
    if dp.reasons.is_some() {
        parts.push("for some reasons only".to_owned());
    }
    if let Some(issuer) = &dp.crl_issuer {
        parts.push(format!("CRL issuer {}", general_names_text(issuer)));
    }
    parts.join(", ")
}

fn idp_text(idp: &IssuingDistributionPoint) -> String {
    let mut parts = Vec::new();
    if let Some(DistributionPointName::FullName(names)) = &idp.distribution_point {
        parts.push(general_names_text(names));
    }
    for (set, text) in [
        (idp.only_contains_user_certs, "onlyContainsUserCerts"),
        (idp.only_contains_ca_certs, "onlyContainsCACerts"),
        (idp.indirect_crl, "indirectCRL"),
        (
            idp.only_contains_attribute_certs,
            "onlyContainsAttributeCerts",
        ),
    ] {
        if set {
            parts.push(text.to_owned());
        }
    }
    if idp.only_some_reasons.is_some() {
        parts.push("onlySomeReasons".to_owned());
    }
    if parts.is_empty() {
        "empty".to_owned()
    } else {
        parts.join(", ")
    }
}

fn general_names_text(names: &[GeneralName]) -> String {
    names
        .iter()
        .map(general_name_text)
        .collect::<Vec<_>>()
        .join(", ")
}

fn general_name_text(name: &GeneralName) -> String {
    match name {
        GeneralName::DnsName(s) => format!("DNS:{}", ia5(s)),
        GeneralName::Rfc822Name(s) => format!("email:{}", ia5(s)),
        GeneralName::UniformResourceIdentifier(s) => format!("URI:{}", ia5(s)),
        GeneralName::IpAddress(ip) => format!("IP:{}", ip_text(ip)),
        GeneralName::DirectoryName(n) => format!("DirName:{}", name_text(n)),
        GeneralName::RegisteredId(oid) => format!("RID:{oid}"),
        GeneralName::OtherName(other) => format!("otherName:{}", oid_text(&other.type_id)),
        GeneralName::EdiPartyName(_) => "ediPartyName".to_owned(),
    }
}

fn ia5(s: &Ia5String) -> &str {
    s.as_ref()
}

/// An iPAddress: 4 or 16 bytes in a SAN, address + mask (8 or 32 bytes) in a name
/// constraint, shown as CIDR when the mask is contiguous.
fn ip_text(ip: &OctetString) -> String {
    let b = ip.as_bytes();
    match b.len() {
        4 => ipv4(b),
        16 => ipv6(b),
        8 => with_mask(ipv4(&b[..4]), &b[4..], ipv4),
        32 => with_mask(ipv6(&b[..16]), &b[16..], ipv6),
        _ => format!("<{} bytes: {}>", b.len(), hex::encode(b)),
    }
}

fn with_mask(addr: String, mask: &[u8], show: fn(&[u8]) -> String) -> String {
    let ones: u32 = mask.iter().map(|m| m.count_ones()).sum();
    let contiguous = mask.iter().enumerate().all(|(i, m)| {
        let bits_before = u32::try_from(i).unwrap_or(u32::MAX).saturating_mul(8);
        let expected = match ones.saturating_sub(bits_before) {
            0 => 0u8,
            n if n >= 8 => 0xFF,
            n => 0xFFu8 << (8 - n),
        };
        *m == expected
    });
    if contiguous {
        format!("{addr}/{ones}")
    } else {
        format!("{addr} mask {} (not a prefix)", show(mask))
    }
}

fn ipv4(b: &[u8]) -> String {
    <[u8; 4]>::try_from(b).map_or_else(
        |_| hex::encode(b),
        |a| core::net::Ipv4Addr::from(a).to_string(),
    )
}

fn ipv6(b: &[u8]) -> String {
    <[u8; 16]>::try_from(b).map_or_else(
        |_| hex::encode(b),
        |a| core::net::Ipv6Addr::from(a).to_string(),
    )
}

fn name_text(name: &x509_cert::name::Name) -> String {
    let text = name.to_string();
    if text.is_empty() {
        "(empty)".to_owned()
    } else {
        text
    }
}

fn key_text(spki: &SubjectPublicKeyInfoOwned) -> String {
    match PublicKeyInfo::from_spki(spki) {
        Ok(info) => info.to_string(),
        Err(e) => format!("REFUSED ({e})"),
    }
}

fn time_text(time: &Time) -> String {
    let encoding = match time {
        Time::UtcTime(_) => "UTCTime",
        Time::GeneralTime(_) => "GeneralizedTime",
    };
    format!("{} ({encoding})", time.to_date_time())
}

/// The length of a validity or update interval counting both ends, in days and seconds, so
/// that an off-by-one-second period is visible.
/// The length of a validity period (both ends inclusive, so one second more than the
/// difference) or of a CRL's update interval (an instant to an instant: `inclusive` false).
fn period_text(from: &Time, to: &Time, inclusive: bool) -> String {
    let (from, to) = (from.to_unix_duration(), to.to_unix_duration());
    if to < from {
        return "NEGATIVE (ends before it starts)".to_owned();
    }
    let secs = (to - from).as_secs() + u64::from(inclusive);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    if rest == 0 {
        format!("{days} days")
    } else {
        format!("{days} days + {rest} s")
    }
}

/// A serial as upper-case hex without colons or sign padding, with notes on RFC 5280
/// violations (negative, zero, over 20 octets).
fn serial_text(bytes: &[u8]) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let encoded_len = bytes.len();
    let trimmed = match bytes.iter().position(|&b| b != 0) {
        Some(first) => &bytes[first..],
        None => &[][..],
    };
    let mut text = if trimmed.is_empty() {
        "00".to_owned()
    } else {
        hex::encode_upper(trimmed)
    };
    if negative {
        text.push_str(" (NEGATIVE: RFC 5280 requires a positive serial)");
    } else if trimmed.is_empty() {
        text.push_str(" (ZERO: RFC 5280 requires a positive serial)");
    }
    if encoded_len > 20 {
        text.push_str(&format!(" ({encoded_len} octets: over the 20 allowed)"));
    }
    text
}

/// An unsigned integer: decimal when it fits in 128 bits, else hex.
fn uint_text(bytes: &[u8]) -> String {
    if bytes.len() <= 16 {
        let value = bytes
            .iter()
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        value.to_string()
    } else {
        format!("0x{}", hex::encode_upper(bytes))
    }
}

fn oid_text(oid: &ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints as RcBasic, CertificateParams, CertificateRevocationListParams,
        CidrSubnet, CrlDistributionPoint, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
        Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints as RcNameConstraints,
        RevocationReason, RevokedCertParams, SanType, SerialNumber,
    };

    struct Ca {
        cert: rcgen::Certificate,
        params: CertificateParams,
        key: KeyPair,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "Test Root CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "hsmca tests");
        params.is_ca = IsCa::Ca(RcBasic::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.name_constraints = Some(RcNameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![GeneralSubtree::IpAddress(CidrSubnet::V4(
                [10, 0, 0, 0],
                [255, 0, 0, 0],
            ))],
        });
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://crl.example.com/root.crl".into()],
        }];
        params.serial_number = Some(SerialNumber::from_slice(&[0x01, 0xAB, 0xCD]));
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, params, key }
    }

    fn leaf(ca: &Ca) -> rcgen::Certificate {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec!["www.example.com".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("192.0.2.7".parse().unwrap()));
        params
            .subject_alt_names
            .push(SanType::Rfc822Name("ops@example.com".try_into().unwrap()));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        params.signed_by(&key, &issuer).unwrap()
    }

    #[test]
    fn describes_a_ca_certificate() {
        let ca = ca();
        let text = describe(ca.cert.pem().as_bytes()).unwrap();
        for expected in [
            "Subject: O=hsmca tests,CN=Test Root CA",
            "Issuer: O=hsmca tests,CN=Test Root CA",
            "Serial: 01ABCD",
            "(UTCTime)",
            "Public key: ECDSA P-384",
            "Signature algorithm: ECDSA with SHA-384",
            "basicConstraints (2.5.29.19), critical: cA=true, pathLenConstraint=0",
            "keyUsage (2.5.29.15), critical: keyCertSign, cRLSign",
            "subjectKeyIdentifier (2.5.29.14), not critical: ",
            "nameConstraints (2.5.29.30), critical: permitted: DNS:example.com; excluded: \
             IP:10.0.0.0/8",
            "cRLDistributionPoints (2.5.29.31), not critical: URI:http://crl.example.com/root.crl",
            "Self-signature: verifies with its own key",
            "SHA-256 fingerprint: ",
            "SPKI SHA-256: ",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        let fingerprint = colon_hex(&Sha256::digest(ca.cert.der()));
        assert!(text.contains(&fingerprint));
        // The same certificate in DER gives the same description.
        assert_eq!(describe(ca.cert.der()).unwrap(), text);
    }

    #[test]
    fn describes_a_chain() {
        let ca = ca();
        let leaf = leaf(&ca);
        let pem = format!("{}{}", leaf.pem(), ca.cert.pem());
        let text = describe(pem.as_bytes()).unwrap();
        for expected in [
            "Certificate chain of 2 certificates",
            "[1]",
            "[2]",
            "subjectAltName (2.5.29.17), not critical: DNS:www.example.com, IP:192.0.2.7, \
             email:ops@example.com",
            "extendedKeyUsage (2.5.29.37), not critical: serverAuth, clientAuth",
            "authorityKeyIdentifier (2.5.29.35), not critical: keyid ",
            "certificate 1's issuer equals certificate 2's subject: yes",
            "certificate 1's signature verifies with certificate 2's key: yes",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        // In the wrong order the link is reported broken, not hidden.
        let reversed = format!("{}{}", ca.cert.pem(), leaf.pem());
        let text = describe(reversed.as_bytes()).unwrap();
        assert!(
            text.contains("certificate 1's issuer equals certificate 2's subject: NO"),
            "{text}"
        );
    }

    #[test]
    fn describes_a_csr() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let params = CertificateParams::new(vec!["node-0".to_owned()]).unwrap();
        let req = params.serialize_request(&key).unwrap();
        let text = describe(req.pem().unwrap().as_bytes()).unwrap();
        for expected in [
            "Certificate signing request",
            "Public key: Ed25519",
            "Signature algorithm: Ed25519",
            "Self-signature: verifies",
            "Requested extensions (1):",
            "subjectAltName (2.5.29.17), not critical: DNS:node-0",
            "SHA-256: ",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(text.contains(&colon_hex(&Sha256::digest(req.der()))));

        // A tampered CSR is still described, with the failure stated.
        let mut der = req.der().to_vec();
        let pos = der.windows(6).position(|w| w == b"node-0").unwrap();
        der[pos] = b'm';
        let text = describe(&der).unwrap();
        assert!(text.contains("Self-signature: does NOT verify"), "{text}");
    }

    #[test]
    fn describes_a_crl() {
        let ca = ca();
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        let now = rcgen::date_time_ymd(2026, 11, 1);
        let crl = CertificateRevocationListParams {
            this_update: now,
            next_update: rcgen::date_time_ymd(2027, 2, 1),
            crl_number: SerialNumber::from(7u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[0x12, 0x34]),
                revocation_time: now,
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap();
        let text = describe(crl.pem().unwrap().as_bytes()).unwrap();
        for expected in [
            "Certificate revocation list",
            "Version: 2",
            "Issuer: O=hsmca tests,CN=Test Root CA",
            "This update: 2026-11-01T00:00:00Z (UTCTime)",
            "Next update: 2027-02-01T00:00:00Z (UTCTime)",
            "Update interval: 92 days",
            "CRL number: 7",
            "Serial 1234, revoked 2026-11-01T00:00:00Z (UTCTime), reason: keyCompromise",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert_eq!(describe(crl.der()).unwrap(), text);
    }

    #[test]
    fn describes_a_public_key() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let text = describe(key.public_key_pem().as_bytes()).unwrap();
        assert!(text.contains("Type: ECDSA P-256"), "{text}");
        assert!(text.contains("SPKI SHA-256: "), "{text}");
        assert!(text.contains("Key identifier"), "{text}");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(describe(b""), Err(X509Error::EmptyInput { .. })));
        assert!(matches!(
            describe(b"\x30\x03\x02\x01\x01"),
            Err(X509Error::UnrecognizedInput { .. })
        ));
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let private = key.serialize_pem();
        let err = describe(private.as_bytes()).unwrap_err();
        assert!(matches!(err, X509Error::WrongPemLabel { .. }), "{err:?}");
        let mut trailing = ca().cert.der().to_vec();
        trailing.push(0);
        assert!(matches!(
            describe(&trailing),
            Err(X509Error::TrailingData { .. })
        ));
    }

    #[test]
    fn ip_masks_and_serials() {
        let v4 = OctetString::new(vec![192, 168, 0, 0, 255, 255, 0, 0]).unwrap();
        assert_eq!(ip_text(&v4), "192.168.0.0/16");
        let odd = OctetString::new(vec![10, 0, 0, 0, 255, 0, 255, 0]).unwrap();
        assert!(ip_text(&odd).contains("not a prefix"));
        let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
        v6.extend_from_slice(&[0; 12]);
        v6.extend_from_slice(&[0xff; 4]);
        v6.extend_from_slice(&[0; 12]);
        let v6 = OctetString::new(v6).unwrap();
        assert_eq!(ip_text(&v6), "2001:db8::/32");
        assert_eq!(serial_text(&[0x00, 0x80, 0x01]), "8001");
        assert!(serial_text(&[0xFF]).contains("NEGATIVE"));
        assert!(serial_text(&[0x00]).contains("ZERO"));
    }

    #[test]
    #[ignore = "prints sample output for a human to read"]
    fn print_samples() {
        let ca = ca();
        let leaf = leaf(&ca);
        println!(
            "{}",
            describe(format!("{}{}", leaf.pem(), ca.cert.pem()).as_bytes()).unwrap()
        );
    }
}
