//! Descriptions of certificates, chains, CSRs, CRLs and public keys: what an operator reads
//! before and after a ceremony to check what is about to be, or was, signed.
//!
//! [`inspect`] decodes into a [`Description`], which serialises to JSON (`hsmca inspect
//! --json`) and lets code read fields; [`describe`] renders that description as indented text.
//!
//! Describing never stops at the first problem: a weak key, a malformed extension or a bad
//! signature is reported in the description, and only input that cannot be decoded at all is
//! an error.

use core::fmt::Display;

use const_oid::db::rfc5280 as oids;
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use serde::Serialize;
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
    inspect(bytes).map(|d| d.to_text())
}

/// Decodes `bytes` (as [`describe`] does) into a structured description. Fails only when the
/// input cannot be decoded as a certificate, chain, CSR, CRL or public key.
pub fn inspect(bytes: &[u8]) -> Result<Description, X509Error> {
    let objects = match read_input(bytes, WHAT)? {
        Input::Der(der) => vec![Object {
            pem_block: None,
            item: inspect_der(der)?,
        }],
        Input::Pem(blocks) => inspect_pem(blocks)?,
    };
    Ok(Description { objects })
}

/// What a file holds: one object per PEM block, except that a file of certificates only is
/// one certificate or one chain. Texts are those [`describe`] shows. In JSON, field names are
/// snake_case and an absent optional field is `null`, never left out.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    /// The objects, in file order.
    pub objects: Vec<Object>,
}

/// One object of the file, with the PEM block it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    /// Given when a PEM file has several blocks, not all certificates (the text then heads
    /// each object with its block); null for DER and for a file of certificates only.
    pub pem_block: Option<PemBlockInfo>,
    /// What the object is; in JSON its fields sit beside `pem_block`, `kind` naming it.
    #[serde(flatten)]
    pub item: Item,
}

/// Where a PEM block is in its file.
#[derive(Debug, Clone, Serialize)]
pub struct PemBlockInfo {
    /// 1-based position among the file's blocks.
    pub number: usize,
    /// 1-based line of its BEGIN line.
    pub line: usize,
    /// The label of its BEGIN line.
    pub label: String,
}

/// The kinds of object (`kind` in JSON: `certificate`, `chain`, `csr`, `crl`, `public_key`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    /// A certificate on its own.
    Certificate(CertificateInfo),
    /// Several certificates in one PEM file, checked pairwise in file order.
    Chain {
        /// The certificates, in file order.
        certificates: Vec<CertificateInfo>,
        /// One link per neighbouring pair: certificate n against certificate n + 1.
        links: Vec<ChainLink>,
    },
    /// A certificate signing request (PKCS#10).
    Csr(CsrInfo),
    /// A certificate revocation list.
    Crl(CrlInfo),
    /// A SubjectPublicKeyInfo.
    PublicKey(KeyInfo),
}

/// A certificate's fields and the checks made on it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateInfo {
    /// 1, 2 or 3.
    pub version: u8,
    /// Upper-case hex, with any RFC 5280 violation noted after it.
    pub serial: String,
    /// RFC 4514 text; empty for an empty name.
    pub subject: String,
    /// RFC 4514 text; empty for an empty name.
    pub issuer: String,
    /// Start of validity.
    pub not_before: TimeInfo,
    /// End of validity.
    pub not_after: TimeInfo,
    /// Length of the validity period, both ends inclusive ("365 days", "30 days + 1 s").
    pub period: String,
    /// Key type and size, or why this tool refuses the key ("REFUSED (...)").
    pub public_key: String,
    /// The outer signature algorithm.
    pub signature_algorithm: String,
    /// The TBS signature algorithm, only when it differs from the outer one (a defect).
    pub tbs_signature_algorithm: Option<String>,
    /// The extensions, in certificate order.
    pub extensions: Vec<ExtensionInfo>,
    /// False when re-encoding the decoded certificate gives other bytes.
    pub canonical_der: bool,
    /// The signature checked with the certificate's own key; only when subject equals issuer.
    pub self_signature: Option<SignatureCheck>,
    /// SHA-256 of the DER, colon-separated upper-case hex.
    pub sha256_fingerprint: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex.
    pub spki_sha256: String,
}

/// A time field as encoded.
#[derive(Debug, Clone, Serialize)]
pub struct TimeInfo {
    /// RFC 3339, UTC ("2026-11-01T00:00:00Z").
    pub time: String,
    /// `UTCTime` or `GeneralizedTime`.
    pub encoding: &'static str,
}

/// The outcome of a signature check.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    /// The signature verifies.
    pub verified: bool,
    /// Why it does not; null when it does.
    pub error: Option<String>,
}

/// The checks between certificate `child` and the next one in the file.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLink {
    /// 1-based position of the certificate checked.
    pub child: usize,
    /// 1-based position of the certificate expected to have issued it (`child` + 1).
    pub parent: usize,
    /// The child's issuer name equals the parent's subject name.
    pub issuer_matches_subject: bool,
    /// The child's signature checked with the parent's key.
    pub signature: SignatureCheck,
}

/// One extension of a certificate, CSR or CRL.
#[derive(Debug, Clone, Serialize)]
pub struct ExtensionInfo {
    /// Short name ("basicConstraints"), from the OID database for others; "unknown" if none.
    pub name: &'static str,
    /// Dotted OID.
    pub oid: String,
    /// The critical flag.
    pub critical: bool,
    /// An earlier extension has the same OID (RFC 5280 allows one instance).
    pub repeated: bool,
    /// The decoded value as text, "MALFORMED (...)" or "N bytes, not decoded".
    pub value: String,
    /// The value as data, for the extensions consumers read most; null for others and when
    /// malformed.
    pub detail: Option<ExtensionDetail>,
}

/// An extension value as data. In JSON an object with one key naming the extension, as
/// `{"key_usage": ["keyCertSign", "cRLSign"]}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionDetail {
    /// basicConstraints.
    BasicConstraints {
        /// The cA flag.
        ca: bool,
        /// pathLenConstraint; null when absent.
        path_len: Option<u8>,
    },
    /// keyUsage: the names of the bits set ("digitalSignature", "keyCertSign", ...).
    KeyUsage(Vec<&'static str>),
    /// extendedKeyUsage: the purposes as dotted OIDs.
    ExtendedKeyUsage(Vec<String>),
    /// subjectAltName: each name as shown in `value` ("DNS:example.com", "IP:192.0.2.7").
    SubjectAltNames(Vec<String>),
}

/// A certificate signing request's fields and the checks made on it.
#[derive(Debug, Clone, Serialize)]
pub struct CsrInfo {
    /// RFC 4514 text; empty for an empty name.
    pub subject: String,
    /// Key type and size, or why this tool refuses the key ("REFUSED (...)").
    pub public_key: String,
    /// The signature algorithm.
    pub signature_algorithm: String,
    /// The signature checked with the request's own key.
    pub self_signature: SignatureCheck,
    /// The extensionRequest attribute's extensions; empty when absent or unreadable.
    pub requested_extensions: Vec<ExtensionInfo>,
    /// Why the extensionRequest attribute could not be read; null when it could.
    pub requested_extensions_error: Option<String>,
    /// Attributes other than extensionRequest, as "name (OID)" or the dotted OID.
    pub other_attributes: Vec<String>,
    /// SHA-256 of the DER, colon-separated upper-case hex.
    pub sha256_fingerprint: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex.
    pub spki_sha256: String,
}

/// A CRL's fields.
#[derive(Debug, Clone, Serialize)]
pub struct CrlInfo {
    /// 1 or 2.
    pub version: u8,
    /// RFC 4514 text; empty for an empty name.
    pub issuer: String,
    /// The outer signature algorithm.
    pub signature_algorithm: String,
    /// The TBS signature algorithm, only when it differs from the outer one (a defect).
    pub tbs_signature_algorithm: Option<String>,
    /// thisUpdate.
    pub this_update: TimeInfo,
    /// nextUpdate; null when absent.
    pub next_update: Option<TimeInfo>,
    /// From thisUpdate to nextUpdate ("92 days"); null without nextUpdate.
    pub update_interval: Option<String>,
    /// The cRLNumber extension: decimal, or 0x-prefixed hex past 128 bits; null when absent
    /// or malformed.
    pub crl_number: Option<String>,
    /// Why the cRLNumber extension is malformed; null when it is not.
    pub crl_number_error: Option<String>,
    /// The CRL extensions, in order.
    pub extensions: Vec<ExtensionInfo>,
    /// The revoked certificates, in order.
    pub revoked: Vec<RevokedInfo>,
    /// SHA-256 of the DER, colon-separated upper-case hex.
    pub sha256_fingerprint: String,
}

/// One revoked certificate of a CRL.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedInfo {
    /// As [`CertificateInfo::serial`].
    pub serial: String,
    /// revocationDate.
    pub date: TimeInfo,
    /// The reasonCode ("keyCompromise"); null when absent or malformed.
    pub reason: Option<&'static str>,
    /// Each entry extension as text ("reason: keyCompromise", "invalidity date: ...").
    pub extensions: Vec<String>,
}

/// A public key on its own.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Key type and size, or why this tool refuses the key ("REFUSED (...)").
    pub public_key: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex.
    pub spki_sha256: String,
    /// SHA-1 of the key bits (RFC 5280 method 1), colon-separated upper-case hex.
    pub key_identifier: String,
}

fn inspect_pem(blocks: Vec<PemBlock>) -> Result<Vec<Object>, X509Error> {
    if blocks.iter().all(|b| b.label == CERTIFICATE_LABEL) {
        let ders: Vec<Vec<u8>> = blocks.into_iter().map(|b| b.der).collect();
        return Ok(vec![Object {
            pem_block: None,
            item: inspect_certificates(&ders)?,
        }]);
    }
    let count = blocks.len();
    let mut objects = Vec::with_capacity(count);
    for (i, block) in blocks.into_iter().enumerate() {
        let pem_block = (count > 1).then(|| PemBlockInfo {
            number: i + 1,
            line: block.line,
            label: block.label.clone(),
        });
        let item = match block.label.as_str() {
            CERTIFICATE_LABEL => inspect_certificates(&[block.der])?,
            CSR_LABEL | NEW_CSR_LABEL => Item::Csr(csr_info(&Csr::from_der(block.der)?)),
            CRL_LABEL => {
                let crl = super::decode::decode_der(&block.der, "CRL")?;
                Item::Crl(crl_info(&block.der, &crl))
            }
            PUBLIC_KEY_LABEL => {
                let spki = super::decode::decode_der(&block.der, "public key")?;
                Item::PublicKey(key_info(&spki))
            }
            _ => {
                return Err(X509Error::WrongPemLabel {
                    what: WHAT,
                    expected: "CERTIFICATE, CERTIFICATE REQUEST, X509 CRL or PUBLIC KEY",
                    found: block.label,
                    line: block.line,
                });
            }
        };
        objects.push(Object { pem_block, item });
    }
    Ok(objects)
}

/// DER carries no label: try each structure in turn. A trailing-data error is reported as
/// such, since it means the structure was recognised.
fn inspect_der(der: &[u8]) -> Result<Item, X509Error> {
    let trailing = |e: &der::Error| matches!(e.kind(), der::ErrorKind::TrailingData { .. });
    let cert_err = match Certificate::from_der(der) {
        Ok(_) => return inspect_certificates(&[der.to_vec()]),
        Err(e) if trailing(&e) => return Err(super::decode::der_error("certificate", e)),
        Err(e) => e,
    };
    let csr_err = match CertReq::from_der(der) {
        Ok(_) => return Ok(Item::Csr(csr_info(&Csr::from_der(der.to_vec())?))),
        Err(e) if trailing(&e) => return Err(super::decode::der_error("CSR", e)),
        Err(e) => e,
    };
    let crl_err = match CertificateList::from_der(der) {
        Ok(crl) => return Ok(Item::Crl(crl_info(der, &crl))),
        Err(e) if trailing(&e) => return Err(super::decode::der_error("CRL", e)),
        Err(e) => e,
    };
    let key_err = match SubjectPublicKeyInfoOwned::from_der(der) {
        Ok(spki) => return Ok(Item::PublicKey(key_info(&spki))),
        Err(e) => e,
    };
    Err(X509Error::UnrecognizedInput {
        detail: format!(
            "as a certificate: {cert_err}; as a CSR: {csr_err}; as a CRL: {crl_err}; as a \
             public key: {key_err}"
        ),
    })
}

/// One certificate, or a chain when there are several (or none).
fn inspect_certificates(ders: &[Vec<u8>]) -> Result<Item, X509Error> {
    let certs = ders
        .iter()
        .map(|d| super::decode::decode_der::<Certificate>(d, "certificate"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut infos: Vec<CertificateInfo> = ders
        .iter()
        .zip(&certs)
        .map(|(der, cert)| certificate_info(der, cert))
        .collect();
    if infos.len() == 1
        && let Some(only) = infos.pop()
    {
        return Ok(Item::Certificate(only));
    }
    let links = certs
        .windows(2)
        .zip(ders)
        .enumerate()
        .map(|(i, (pair, child_der))| {
            let (child, parent) = (&pair[0], &pair[1]);
            let parent_key = parent.tbs_certificate().subject_public_key_info();
            ChainLink {
                child: i + 1,
                parent: i + 2,
                issuer_matches_subject: child.tbs_certificate().issuer()
                    == parent.tbs_certificate().subject(),
                signature: signature_check(verify_certificate_der(child_der, parent_key)),
            }
        })
        .collect();
    Ok(Item::Chain {
        certificates: infos,
        links,
    })
}

fn certificate_info(der: &[u8], cert: &Certificate) -> CertificateInfo {
    let tbs = cert.tbs_certificate();
    let validity = tbs.validity();
    let spki = tbs.subject_public_key_info();
    CertificateInfo {
        version: version_number(tbs.version()),
        serial: serial_text(tbs.serial_number().as_bytes()),
        subject: tbs.subject().to_string(),
        issuer: tbs.issuer().to_string(),
        not_before: time_info(&validity.not_before),
        not_after: time_info(&validity.not_after),
        period: period_text(&validity.not_before, &validity.not_after, true),
        public_key: key_text(spki),
        signature_algorithm: describe_algorithm(cert.signature_algorithm()),
        tbs_signature_algorithm: (tbs.signature() != cert.signature_algorithm())
            .then(|| describe_algorithm(tbs.signature())),
        extensions: extensions_info(tbs.extensions().map(Vec::as_slice)),
        // RFC 5280 and chain builders expect decode -> encode to give the same bytes.
        canonical_der: !cert.to_der().is_ok_and(|d| d != der),
        self_signature: (tbs.subject() == tbs.issuer())
            .then(|| signature_check(verify_certificate_der(der, spki))),
        sha256_fingerprint: colon_hex(&Sha256::digest(der)),
        spki_sha256: hex::encode(spki_sha256(spki)),
    }
}

fn csr_info(csr: &Csr) -> CsrInfo {
    let (requested_extensions, requested_extensions_error) = match csr.requested_extensions() {
        Ok(exts) => (extensions_info(Some(&exts)), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let other_attributes = csr
        .request()
        .info
        .attributes
        .iter()
        .filter(|a| a.oid != <x509_cert::request::ExtensionReq as AssociatedOid>::OID)
        .map(|a| oid_text(&a.oid))
        .collect();
    CsrInfo {
        subject: csr.subject().to_string(),
        public_key: key_text(csr.spki()),
        signature_algorithm: describe_algorithm(&csr.request().algorithm),
        self_signature: signature_check(csr.verify_self_signature()),
        requested_extensions,
        requested_extensions_error,
        other_attributes,
        sha256_fingerprint: colon_hex(&csr.sha256()),
        spki_sha256: hex::encode(spki_sha256(csr.spki())),
    }
}

fn crl_info(der: &[u8], crl: &CertificateList) -> CrlInfo {
    let tbs = &crl.tbs_cert_list;
    let crl_number = tbs
        .crl_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oids::ID_CE_CRL_NUMBER)
        .map(|e| CrlNumber::from_der(e.extn_value.as_bytes()));
    let (crl_number, crl_number_error) = match crl_number {
        Some(Ok(n)) => (Some(uint_text(n.0.as_bytes())), None),
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, None),
    };
    let revoked = tbs
        .revoked_certificates
        .iter()
        .flatten()
        .map(|entry| {
            let extensions = entry.crl_entry_extensions.iter().flatten();
            RevokedInfo {
                serial: serial_text(entry.serial_number.as_bytes()),
                date: time_info(&entry.revocation_date),
                reason: extensions
                    .clone()
                    .find(|e| e.extn_id == oids::ID_CE_CRL_REASONS)
                    .and_then(|e| CrlReason::from_der(e.extn_value.as_bytes()).ok())
                    .map(reason_name),
                extensions: extensions.map(entry_extension_text).collect(),
            }
        })
        .collect();
    CrlInfo {
        version: version_number(tbs.version),
        issuer: tbs.issuer.to_string(),
        signature_algorithm: describe_algorithm(&crl.signature_algorithm),
        tbs_signature_algorithm: (tbs.signature != crl.signature_algorithm)
            .then(|| describe_algorithm(&tbs.signature)),
        this_update: time_info(&tbs.this_update),
        next_update: tbs.next_update.as_ref().map(time_info),
        update_interval: tbs
            .next_update
            .as_ref()
            .map(|next| period_text(&tbs.this_update, next, false)),
        crl_number,
        crl_number_error,
        extensions: extensions_info(tbs.crl_extensions.as_deref()),
        revoked,
        sha256_fingerprint: colon_hex(&Sha256::digest(der)),
    }
}

fn key_info(spki: &SubjectPublicKeyInfoOwned) -> KeyInfo {
    KeyInfo {
        public_key: key_text(spki),
        spki_sha256: hex::encode(spki_sha256(spki)),
        key_identifier: colon_hex(&key_identifier(spki)),
    }
}

fn extensions_info(exts: Option<&[Extension]>) -> Vec<ExtensionInfo> {
    let exts = exts.unwrap_or(&[]);
    exts.iter()
        .enumerate()
        .map(|(n, ext)| ExtensionInfo {
            name: extension_name(&ext.extn_id),
            oid: ext.extn_id.to_string(),
            critical: ext.critical,
            repeated: exts[..n].iter().any(|e| e.extn_id == ext.extn_id),
            value: extension_text(ext),
            detail: extension_detail(ext),
        })
        .collect()
}

fn signature_check(result: Result<(), X509Error>) -> SignatureCheck {
    SignatureCheck {
        verified: result.is_ok(),
        error: result.err().map(|e| e.to_string()),
    }
}

fn version_number(version: Version) -> u8 {
    match version {
        Version::V1 => 1,
        Version::V2 => 2,
        Version::V3 => 3,
    }
}

impl Description {
    /// The indented text [`describe`] returns: the layout operators read and that
    /// `ceremony::plan` picks lines from by indentation.
    pub fn to_text(&self) -> String {
        let mut out = Out::default();
        for (n, object) in self.objects.iter().enumerate() {
            if let Some(block) = &object.pem_block {
                if n > 0 {
                    out.line(0, "");
                }
                out.line(
                    0,
                    format!(
                        "PEM block {} of {} (line {}, {}):",
                        block.number,
                        self.objects.len(),
                        block.line,
                        block.label
                    ),
                );
            }
            match &object.item {
                Item::Certificate(cert) => render_certificate(&mut out, 0, cert),
                Item::Chain {
                    certificates,
                    links,
                } => render_chain(&mut out, certificates, links),
                Item::Csr(csr) => render_csr(&mut out, csr),
                Item::Crl(crl) => render_crl(&mut out, crl),
                Item::PublicKey(key) => render_public_key(&mut out, key),
            }
        }
        out.text
    }
}

impl TimeInfo {
    fn text(&self) -> String {
        format!("{} ({})", self.time, self.encoding)
    }
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

fn render_chain(out: &mut Out, certs: &[CertificateInfo], links: &[ChainLink]) {
    out.line(
        0,
        format!("Certificate chain of {} certificates", certs.len()),
    );
    for (i, cert) in certs.iter().enumerate() {
        out.line(0, "");
        out.line(0, format!("[{}]", i + 1));
        render_certificate(out, 1, cert);
    }
    out.line(0, "");
    out.line(0, "Chain links:");
    for link in links {
        out.line(
            1,
            format!(
                "certificate {}'s issuer equals certificate {}'s subject: {}",
                link.child,
                link.parent,
                yes_no(link.issuer_matches_subject)
            ),
        );
        let verdict = match &link.signature.error {
            None => "yes".to_owned(),
            Some(e) => format!("no ({e})"),
        };
        out.line(
            1,
            format!(
                "certificate {}'s signature verifies with certificate {}'s key: {verdict}",
                link.child, link.parent
            ),
        );
    }
}

fn render_certificate(out: &mut Out, indent: usize, cert: &CertificateInfo) {
    out.line(indent, "Certificate");
    let i = indent + 1;
    out.line(i, format!("Version: {}", cert.version));
    out.line(i, format!("Serial: {}", cert.serial));
    out.line(i, format!("Subject: {}", shown_name(&cert.subject)));
    out.line(i, format!("Issuer: {}", shown_name(&cert.issuer)));
    out.line(i, "Validity:");
    out.line(i + 1, format!("Not before: {}", cert.not_before.text()));
    out.line(i + 1, format!("Not after:  {}", cert.not_after.text()));
    out.line(
        i + 1,
        format!("Period: {} (both ends inclusive)", cert.period),
    );
    out.line(i, format!("Public key: {}", cert.public_key));
    out.line(
        i,
        format!("Signature algorithm: {}", cert.signature_algorithm),
    );
    if let Some(tbs) = &cert.tbs_signature_algorithm {
        out.line(
            i,
            format!("WARNING: the TBS signature algorithm ({tbs}) differs from the outer one"),
        );
    }
    render_extensions(out, i, "Extensions", &cert.extensions);
    if !cert.canonical_der {
        out.line(
            i,
            "WARNING: re-encoding gives other bytes: the certificate is not canonical DER",
        );
    }
    if let Some(check) = &cert.self_signature {
        let verdict = match &check.error {
            None => "verifies with its own key".to_owned(),
            Some(e) => format!("does NOT verify with its own key ({e})"),
        };
        out.line(i, format!("Self-signature: {verdict}"));
    }
    out.line(
        i,
        format!("SHA-256 fingerprint: {}", cert.sha256_fingerprint),
    );
    out.line(i, format!("SPKI SHA-256: {}", cert.spki_sha256));
}

fn render_csr(out: &mut Out, csr: &CsrInfo) {
    out.line(0, "Certificate signing request");
    out.line(1, format!("Subject: {}", shown_name(&csr.subject)));
    out.line(1, format!("Public key: {}", csr.public_key));
    out.line(
        1,
        format!("Signature algorithm: {}", csr.signature_algorithm),
    );
    let verdict = match &csr.self_signature.error {
        None => "verifies".to_owned(),
        Some(e) => format!("does NOT verify ({e})"),
    };
    out.line(1, format!("Self-signature: {verdict}"));
    match &csr.requested_extensions_error {
        Some(e) => out.line(1, format!("Requested extensions: unreadable ({e})")),
        None => render_extensions(out, 1, "Requested extensions", &csr.requested_extensions),
    }
    if !csr.other_attributes.is_empty() {
        out.line(
            1,
            format!("Other attributes: {}", csr.other_attributes.join(", ")),
        );
    }
    out.line(1, format!("SHA-256: {}", csr.sha256_fingerprint));
    out.line(1, format!("SPKI SHA-256: {}", csr.spki_sha256));
}

fn render_crl(out: &mut Out, crl: &CrlInfo) {
    out.line(0, "Certificate revocation list");
    out.line(1, format!("Version: {}", crl.version));
    out.line(1, format!("Issuer: {}", shown_name(&crl.issuer)));
    out.line(
        1,
        format!("Signature algorithm: {}", crl.signature_algorithm),
    );
    if crl.tbs_signature_algorithm.is_some() {
        out.line(
            1,
            "WARNING: the TBS signature algorithm differs from the outer one",
        );
    }
    out.line(1, format!("This update: {}", crl.this_update.text()));
    match (&crl.next_update, &crl.update_interval) {
        (Some(next), interval) => {
            out.line(1, format!("Next update: {}", next.text()));
            let interval = interval.as_deref().unwrap_or_default();
            out.line(1, format!("Update interval: {interval}"));
        }
        (None, _) => out.line(1, "Next update: absent"),
    }
    match (&crl.crl_number, &crl.crl_number_error) {
        (Some(n), _) => out.line(1, format!("CRL number: {n}")),
        (None, Some(e)) => out.line(1, format!("CRL number: malformed ({e})")),
        (None, None) => out.line(1, "CRL number: absent"),
    }
    render_extensions(out, 1, "CRL extensions", &crl.extensions);
    if crl.revoked.is_empty() {
        out.line(1, "Revoked certificates: none");
    } else {
        out.line(1, format!("Revoked certificates ({}):", crl.revoked.len()));
        for entry in &crl.revoked {
            let mut text = format!("Serial {}, revoked {}", entry.serial, entry.date.text());
            for ext in &entry.extensions {
                text.push_str(", ");
                text.push_str(ext);
            }
            out.line(2, text);
        }
    }
    out.line(
        1,
        format!("SHA-256 fingerprint: {}", crl.sha256_fingerprint),
    );
}

fn render_public_key(out: &mut Out, key: &KeyInfo) {
    out.line(0, "Public key");
    out.line(1, format!("Type: {}", key.public_key));
    out.line(1, format!("SPKI SHA-256: {}", key.spki_sha256));
    out.line(
        1,
        format!(
            "Key identifier (SHA-1 of the key bits, RFC 5280 method 1): {}",
            key.key_identifier
        ),
    );
}

fn render_extensions(out: &mut Out, indent: usize, title: &str, exts: &[ExtensionInfo]) {
    if exts.is_empty() {
        out.line(indent, format!("{title}: none"));
        return;
    }
    out.line(indent, format!("{title} ({}):", exts.len()));
    for ext in exts {
        let critical = if ext.critical {
            "critical"
        } else {
            "not critical"
        };
        let repeated = if ext.repeated {
            " [REPEATED: RFC 5280 allows one instance]"
        } else {
            ""
        };
        out.line(
            indent + 1,
            format!(
                "{} ({}), {critical}{repeated}: {}",
                ext.name, ext.oid, ext.value
            ),
        );
    }
}

/// A name as the text shows it: an empty one is spelled out.
fn shown_name(name: &str) -> &str {
    if name.is_empty() { "(empty)" } else { name }
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

/// The value as data for the extensions consumers read most; `None` for others and when
/// the value is malformed (the text says why).
fn extension_detail(ext: &Extension) -> Option<ExtensionDetail> {
    let value = ext.extn_value.as_bytes();
    match ext.extn_id {
        oids::ID_CE_BASIC_CONSTRAINTS => {
            BasicConstraints::from_der(value)
                .ok()
                .map(|bc| ExtensionDetail::BasicConstraints {
                    ca: bc.ca,
                    path_len: bc.path_len_constraint,
                })
        }
        oids::ID_CE_KEY_USAGE => KeyUsage::from_der(value)
            .ok()
            .map(|ku| ExtensionDetail::KeyUsage(key_usage_names(&ku))),
        oids::ID_CE_EXT_KEY_USAGE => ExtendedKeyUsage::from_der(value).ok().map(|eku| {
            ExtensionDetail::ExtendedKeyUsage(eku.0.iter().map(ToString::to_string).collect())
        }),
        oids::ID_CE_SUBJECT_ALT_NAME => SubjectAltName::from_der(value).ok().map(|san| {
            ExtensionDetail::SubjectAltNames(san.0.iter().map(general_name_text).collect())
        }),
        _ => None,
    }
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
    let names = key_usage_names(ku);
    if names.is_empty() {
        "none set".to_owned()
    } else {
        names.join(", ")
    }
}

fn key_usage_names(ku: &KeyUsage) -> Vec<&'static str> {
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
    NAMES
        .iter()
        .filter(|(flag, _)| ku.0.contains(*flag))
        .map(|(_, name)| *name)
        .collect()
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

fn time_info(time: &Time) -> TimeInfo {
    let encoding = match time {
        Time::UtcTime(_) => "UTCTime",
        Time::GeneralTime(_) => "GeneralizedTime",
    };
    TimeInfo {
        time: time.to_date_time().to_string(),
        encoding,
    }
}

/// The length of a validity period (both ends inclusive, so one second more than the
/// difference) or of a CRL's update interval (an instant to an instant: `inclusive` false), in
/// days and seconds, so that an off-by-one-second period is visible.
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

    fn crl(ca: &Ca) -> rcgen::CertificateRevocationList {
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        let now = rcgen::date_time_ymd(2026, 11, 1);
        CertificateRevocationListParams {
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
        .unwrap()
    }

    #[test]
    fn describes_a_crl() {
        let crl = crl(&ca());
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
    fn inspects_a_certificate_as_data() {
        let ca = ca();
        let description = inspect(ca.cert.der()).unwrap();
        let json = serde_json::to_value(&description).unwrap();
        let cert = &json["objects"][0];
        assert_eq!(cert["kind"], "certificate");
        assert!(cert["pem_block"].is_null());
        assert_eq!(cert["version"], 3);
        assert_eq!(cert["serial"], "01ABCD");
        assert_eq!(cert["subject"], "O=hsmca tests,CN=Test Root CA");
        assert_eq!(cert["issuer"], cert["subject"]);
        assert_eq!(cert["not_before"]["encoding"], "UTCTime");
        assert_eq!(cert["public_key"], "ECDSA P-384");
        assert!(cert["tbs_signature_algorithm"].is_null());
        assert_eq!(cert["canonical_der"], true);
        assert_eq!(
            cert["self_signature"],
            serde_json::json!({"verified": true, "error": null})
        );
        assert_eq!(
            cert["sha256_fingerprint"],
            colon_hex(&Sha256::digest(ca.cert.der()))
        );
        let exts = cert["extensions"].as_array().unwrap();
        let find = |oid: &str| exts.iter().find(|e| e["oid"] == oid).unwrap();
        let bc = find("2.5.29.19");
        assert_eq!(bc["name"], "basicConstraints");
        assert_eq!(bc["critical"], true);
        assert_eq!(bc["repeated"], false);
        assert_eq!(bc["value"], "cA=true, pathLenConstraint=0");
        assert_eq!(
            bc["detail"],
            serde_json::json!({"basic_constraints": {"ca": true, "path_len": 0}})
        );
        assert_eq!(
            find("2.5.29.15")["detail"],
            serde_json::json!({"key_usage": ["keyCertSign", "cRLSign"]})
        );
        let nc = find("2.5.29.30");
        assert_eq!(nc["critical"], true);
        assert_eq!(
            nc["value"],
            "permitted: DNS:example.com; excluded: IP:10.0.0.0/8"
        );
        assert!(nc["detail"].is_null());
        // The text is rendered from the same description.
        assert_eq!(description.to_text(), describe(ca.cert.der()).unwrap());
    }

    #[test]
    fn inspects_a_chain_as_data() {
        let ca = ca();
        let pem = format!("{}{}", leaf(&ca).pem(), ca.cert.pem());
        let json = serde_json::to_value(inspect(pem.as_bytes()).unwrap()).unwrap();
        let chain = &json["objects"][0];
        assert_eq!(json["objects"].as_array().unwrap().len(), 1);
        assert_eq!(chain["kind"], "chain");
        assert_eq!(chain["certificates"].as_array().unwrap().len(), 2);
        assert_eq!(
            chain["links"],
            serde_json::json!([{
                "child": 1,
                "parent": 2,
                "issuer_matches_subject": true,
                "signature": {"verified": true, "error": null},
            }])
        );
        let leaf = &chain["certificates"][0];
        assert!(leaf["self_signature"].is_null());
        let details: Vec<&serde_json::Value> = leaf["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["detail"])
            .collect();
        assert!(details.contains(&&serde_json::json!({"subject_alt_names": [
            "DNS:www.example.com", "IP:192.0.2.7", "email:ops@example.com"
        ]})));
        assert!(
            details.contains(&&serde_json::json!({"extended_key_usage": [
                "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"
            ]}))
        );
    }

    #[test]
    fn inspects_a_crl_as_data() {
        let crl = crl(&ca());
        let json = serde_json::to_value(inspect(crl.der()).unwrap()).unwrap();
        let crl = &json["objects"][0];
        assert_eq!(crl["kind"], "crl");
        assert_eq!(crl["version"], 2);
        assert_eq!(crl["issuer"], "O=hsmca tests,CN=Test Root CA");
        assert_eq!(
            crl["next_update"],
            serde_json::json!({"time": "2027-02-01T00:00:00Z", "encoding": "UTCTime"})
        );
        assert_eq!(crl["update_interval"], "92 days");
        assert_eq!(crl["crl_number"], "7");
        assert!(crl["crl_number_error"].is_null());
        assert_eq!(
            crl["revoked"],
            serde_json::json!([{
                "serial": "1234",
                "date": {"time": "2026-11-01T00:00:00Z", "encoding": "UTCTime"},
                "reason": "keyCompromise",
                "extensions": ["reason: keyCompromise"],
            }])
        );
    }

    #[test]
    fn inspects_a_csr_and_a_key_in_one_file() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let params = CertificateParams::new(vec!["node-0".to_owned()]).unwrap();
        let req = params.serialize_request(&key).unwrap();
        let pem = format!("{}{}", req.pem().unwrap(), key.public_key_pem());
        let description = inspect(pem.as_bytes()).unwrap();
        let json = serde_json::to_value(&description).unwrap();
        let (csr, public_key) = (&json["objects"][0], &json["objects"][1]);
        assert_eq!(csr["kind"], "csr");
        assert_eq!(
            csr["pem_block"],
            serde_json::json!({"number": 1, "line": 1, "label": "CERTIFICATE REQUEST"})
        );
        assert_eq!(csr["self_signature"]["verified"], true);
        assert!(csr["requested_extensions_error"].is_null());
        assert_eq!(
            csr["requested_extensions"][0]["detail"],
            serde_json::json!({"subject_alt_names": ["DNS:node-0"]})
        );
        assert_eq!(public_key["kind"], "public_key");
        assert_eq!(public_key["pem_block"]["number"], 2);
        assert_eq!(public_key["public_key"], "Ed25519");
        // Each block is headed in the text, the way describe always showed mixed files.
        let text = description.to_text();
        assert!(
            text.starts_with(
                "PEM block 1 of 2 (line 1, CERTIFICATE REQUEST):\nCertificate signing request\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n\nPEM block 2 of 2 (line "), "{text}");
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
