//! Built-in RFC 5280 checks of a certificate, run on a copy signed by a throwaway key before the
//! token signs the same TBS (CA/B Forum BR 4.3.1.2), and again on the issued certificate.
//!
//! Each check is one rule of /work/shared/reference/ca-rules.md: serial, validity encoding,
//! keyUsage against basicConstraints, AKI/SKI, name-constraint forms, no EKU on CAs, issuer bytes
//! equal to the issuer's subject bytes, one instance of each extension.

use std::collections::HashSet;

use const_oid::AssociatedOid;
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    NameConstraints, SubjectKeyIdentifier,
};
use x509_cert::time::Time;

use super::algorithm::{KeyAlgorithm, PublicKeyInfo};
use super::error::{Result, X509Error};
use super::issue::PreparedCert;
use super::profile::check_dns_name;
use super::soft_key::SoftKey;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A short stable name of the rule (`serial.length`, `aki.mismatch`, ...).
    pub code: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Lints `cert`; `issuer` is the issuing CA's certificate (`None` for a self-signed one).
pub fn lint_certificate(cert: &Certificate, issuer: Option<&Certificate>) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    let tbs = cert.tbs_certificate();
    serial(&mut f, tbs.serial_number().as_bytes());
    validity(&mut f, tbs.validity());
    // The TBS signature algorithm equals the outer one.
    if tbs.signature() != cert.signature_algorithm() {
        f.add(
            "signature.algorithm_mismatch",
            "the TBS signature algorithm differs from the certificate's",
        );
    }
    let exts = Extensions::decode(&mut f, tbs);
    key_usage(&mut f, &exts);
    // No EKU on CAs.
    if exts.is_ca && exts.eku {
        f.add(
            "eku.on_ca",
            "a CA certificate must not carry extendedKeyUsage",
        );
    }
    key_identifiers(&mut f, tbs, &exts, issuer);
    if let Some((crit, nc)) = &exts.nc {
        name_constraints(&mut f, *crit, nc, exts.is_ca);
    }
    if exts.is_ca && tbs.subject().is_empty() {
        f.add("subject.empty", "a CA certificate needs a subject name");
    }
    f.0
}

/// The findings of one lint run.
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, code: &'static str, message: impl Into<String>) {
        self.0.push(Finding {
            code,
            message: message.into(),
        });
    }
}

/// The extensions the rules look at, decoded once (a malformed one is a finding).
struct Extensions {
    bc: Option<(bool, BasicConstraints)>,
    ku: Option<(bool, KeyUsage)>,
    ski: Option<(bool, SubjectKeyIdentifier)>,
    aki: Option<(bool, AuthorityKeyIdentifier)>,
    nc: Option<(bool, NameConstraints)>,
    eku: bool,
    is_ca: bool,
}

impl Extensions {
    /// Decodes them, checking v3 and one instance of each.
    fn decode(f: &mut Findings, tbs: &TbsCertificate) -> Extensions {
        let exts: &[Extension] = tbs.extensions().map(Vec::as_slice).unwrap_or_default();
        if !exts.is_empty() && tbs.version() != x509_cert::certificate::Version::V3 {
            f.add("version", "a certificate with extensions must be v3");
        }
        let mut seen = HashSet::new();
        for e in exts {
            if !seen.insert(e.extn_id) {
                f.add(
                    "extension.duplicate",
                    format!("extension {} appears more than once", e.extn_id),
                );
            }
        }
        let bc = decode_ext::<BasicConstraints>(exts, "basicConstraints", &mut f.0);
        let ku = decode_ext::<KeyUsage>(exts, "keyUsage", &mut f.0);
        let ski = decode_ext::<SubjectKeyIdentifier>(exts, "subjectKeyIdentifier", &mut f.0);
        let aki = decode_ext::<AuthorityKeyIdentifier>(exts, "authorityKeyIdentifier", &mut f.0);
        let nc = decode_ext::<NameConstraints>(exts, "nameConstraints", &mut f.0);
        let is_ca = bc.as_ref().is_some_and(|(_, bc)| bc.ca);
        Extensions {
            eku: exts.iter().any(|e| e.extn_id == ExtendedKeyUsage::OID),
            bc,
            ku,
            ski,
            aki,
            nc,
            is_ca,
        }
    }
}

/// Serial: positive, at most 20 octets, at least 64 bits.
fn serial(f: &mut Findings, serial: &[u8]) {
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        f.add("serial.negative", "the serial number is negative");
    }
    if serial.len() > 20 {
        f.add(
            "serial.length",
            format!("the serial number is {} octets (at most 20)", serial.len()),
        );
    }
    let magnitude: Vec<u8> = serial.iter().copied().skip_while(|b| *b == 0).collect();
    let bits = magnitude
        .first()
        .map_or(0, |b| magnitude.len() * 8 - b.leading_zeros() as usize);
    if bits == 0 {
        f.add("serial.zero", "the serial number is zero");
    } else if bits < 64 {
        f.add(
            "serial.entropy",
            format!("the serial number has {bits} bits; at least 64 random bits are required"),
        );
    }
}

/// Validity: UTCTime through 2049, GeneralizedTime from 2050, whole seconds, Z; in order.
fn validity(f: &mut Findings, validity: &x509_cert::time::Validity) {
    for (name, t) in [
        ("notBefore", &validity.not_before),
        ("notAfter", &validity.not_after),
    ] {
        if let Some(why) = time_encoding_problem(t) {
            f.add("validity.encoding", format!("{name}: {why}"));
        }
    }
    if validity.not_after.to_unix_duration() < validity.not_before.to_unix_duration() {
        f.add("validity.order", "notAfter is before notBefore");
    }
}

/// keyUsage against basicConstraints.
fn key_usage(f: &mut Findings, exts: &Extensions) {
    let cert_sign = exts
        .ku
        .as_ref()
        .is_some_and(|(_, ku)| ku.0.contains(KeyUsages::KeyCertSign));
    if let Some((crit, bc)) = &exts.bc {
        if bc.ca && !crit {
            f.add(
                "basic_constraints.critical",
                "basicConstraints of a CA certificate must be critical",
            );
        }
        if bc.path_len_constraint.is_some() && !(bc.ca && cert_sign) {
            f.add(
                "basic_constraints.path_len",
                "pathLenConstraint is allowed only with cA and keyCertSign",
            );
        }
    }
    if exts.is_ca {
        match &exts.ku {
            None => f.add("key_usage.missing", "a CA certificate must have keyUsage"),
            Some((crit, ku)) => {
                if !crit {
                    f.add(
                        "key_usage.critical",
                        "keyUsage of a CA certificate must be critical",
                    );
                }
                if !ku.0.contains(KeyUsages::KeyCertSign) {
                    f.add(
                        "key_usage.cert_sign",
                        "a CA certificate's keyUsage lacks keyCertSign",
                    );
                }
            }
        }
    } else if cert_sign {
        f.add(
            "key_usage.cert_sign_without_ca",
            "keyCertSign requires basicConstraints cA TRUE",
        );
    }
    if exts.ku.as_ref().is_some_and(|(_, ku)| ku.0.is_empty()) {
        f.add("key_usage.empty", "keyUsage has no bit set");
    }
}

/// SKI on CAs (non-critical); AKI equal to the issuer's SKI; issuer bytes equal to the
/// issuer's subject bytes.
fn key_identifiers(
    f: &mut Findings,
    tbs: &TbsCertificate,
    exts: &Extensions,
    issuer: Option<&Certificate>,
) {
    if let Some((crit, _)) = &exts.ski
        && *crit
    {
        f.add("ski.critical", "subjectKeyIdentifier must be non-critical");
    }
    if exts.is_ca && exts.ski.is_none() {
        f.add(
            "ski.missing",
            "a CA certificate must have subjectKeyIdentifier",
        );
    }
    let aki_id = exts
        .aki
        .as_ref()
        .and_then(|(_, a)| a.key_identifier.as_ref())
        .map(|k| k.as_bytes().to_vec());
    if let Some((crit, _)) = &exts.aki
        && *crit
    {
        f.add(
            "aki.critical",
            "authorityKeyIdentifier must be non-critical",
        );
    }
    let Some(issuer) = issuer else {
        let self_issued = tbs.issuer().to_der().ok() == tbs.subject().to_der().ok();
        if !self_issued {
            f.add(
                "issuer.bytes",
                "a certificate checked as self-signed names another issuer",
            );
        }
        if let (Some(a), Some((_, s))) = (&aki_id, &exts.ski)
            && a.as_slice() != s.0.as_bytes()
        {
            f.add(
                "aki.mismatch",
                "a self-signed certificate's authorityKeyIdentifier differs from its own subjectKeyIdentifier",
            );
        }
        return;
    };
    let itbs = issuer.tbs_certificate();
    if itbs.subject().to_der().ok() != tbs.issuer().to_der().ok() {
        f.add(
            "issuer.bytes",
            "the issuer field differs from the issuer certificate's subject bytes",
        );
    }
    let issuer_ski = itbs
        .get_extension::<SubjectKeyIdentifier>()
        .ok()
        .flatten()
        .map(|(_, s)| s.0.as_bytes().to_vec());
    match (&aki_id, &issuer_ski) {
        (None, _) => f.add(
            "aki.missing",
            "authorityKeyIdentifier keyIdentifier is missing",
        ),
        (Some(_), None) => f.add(
            "aki.issuer_ski_missing",
            "the issuer certificate has no subjectKeyIdentifier to match",
        ),
        (Some(a), Some(s)) if a != s => f.add(
            "aki.mismatch",
            "authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier",
        ),
        _ => {}
    }
}

/// Name constraints: CA only, critical, non-empty, well-formed bases.
fn name_constraints(f: &mut Findings, crit: bool, nc: &NameConstraints, is_ca: bool) {
    if !is_ca {
        f.add(
            "name_constraints.not_ca",
            "nameConstraints appear in a certificate that is not a CA",
        );
    }
    if !crit {
        f.add(
            "name_constraints.critical",
            "nameConstraints must be critical",
        );
    }
    let permitted = nc.permitted_subtrees.as_deref().unwrap_or_default();
    let excluded = nc.excluded_subtrees.as_deref().unwrap_or_default();
    if permitted.is_empty() && excluded.is_empty() {
        f.add("name_constraints.empty", "nameConstraints has no subtree");
    }
    for (which, list, present) in [
        ("permitted", permitted, nc.permitted_subtrees.is_some()),
        ("excluded", excluded, nc.excluded_subtrees.is_some()),
    ] {
        if present && list.is_empty() {
            f.add(
                "name_constraints.empty",
                format!("{which}Subtrees is present but empty"),
            );
        }
        for st in list {
            // A zero-length dNSName excluded is how a CA says "no DNS names at all"
            // (CA/Browser Forum, technically constrained CAs); permitted, it would mean all.
            let exclude_all_dns = which == "excluded"
                && matches!(&st.base, GeneralName::DnsName(d) if d.as_str().is_empty());
            if exclude_all_dns && st.minimum == 0 && st.maximum.is_none() {
                continue;
            }
            for m in subtree_problems(st) {
                f.add("name_constraints.form", format!("{which}: {m}"));
            }
        }
    }
}

/// The first extension of type `T` with its criticality; a malformed one becomes a finding.
fn decode_ext<'a, T: Decode<'a> + AssociatedOid>(
    exts: &'a [Extension],
    what: &str,
    findings: &mut Vec<Finding>,
) -> Option<(bool, T)> {
    let ext = exts.iter().find(|e| e.extn_id == T::OID)?;
    match T::from_der(ext.extn_value.as_bytes()) {
        Ok(v) => Some((ext.critical, v)),
        Err(e) => {
            findings.push(Finding {
                code: "extension.malformed",
                message: format!("{what} does not decode: {e}"),
            });
            None
        }
    }
}

/// Why `t` is not encoded as RFC 5280 requires, if it is not.
fn time_encoding_problem(t: &Time) -> Option<String> {
    let year = t.to_date_time().year();
    let der = t.to_der().ok()?;
    // DER: tag, short length, then the characters.
    let text = der
        .get(2..)
        .map(|b| String::from_utf8_lossy(b).into_owned())?;
    match t {
        Time::UtcTime(_) if year >= 2050 => Some(format!(
            "{year} is encoded as UTCTime (GeneralizedTime from 2050)"
        )),
        Time::GeneralTime(_) if year < 2050 => Some(format!(
            "{year} is encoded as GeneralizedTime (UTCTime through 2049)"
        )),
        Time::UtcTime(_) if text.len() != 13 || !text.ends_with('Z') => {
            Some(format!("UTCTime \"{text}\" is not YYMMDDHHMMSSZ"))
        }
        Time::GeneralTime(_) if text.len() != 15 || !text.ends_with('Z') => Some(format!(
            "GeneralizedTime \"{text}\" is not YYYYMMDDHHMMSSZ (seconds, Z, no fraction)"
        )),
        _ => None,
    }
}

/// What is wrong with one name-constraint subtree.
fn subtree_problems(st: &GeneralSubtree) -> Vec<String> {
    let mut out = Vec::new();
    if st.minimum != 0 {
        out.push(format!("minimum is {} (must be 0)", st.minimum));
    }
    if st.maximum.is_some() {
        out.push("maximum is present (must be absent)".into());
    }
    match &st.base {
        GeneralName::DnsName(d) => {
            let name = d.as_str();
            if name.starts_with('.') {
                out.push(format!(
                    "DNS constraint \"{name}\" has a leading dot (RFC 5280 form has none)"
                ));
            } else if let Err(e) = check_dns_name(name, false) {
                out.push(format!("DNS constraint: {}", e));
            }
        }
        GeneralName::IpAddress(ip) => {
            let b = ip.as_bytes();
            if b.len() != 8 && b.len() != 32 {
                out.push(format!(
                    "IP constraint of {} octets (8 for IPv4, 32 for IPv6)",
                    b.len()
                ));
            } else {
                let (addr, mask) = b.split_at(b.len() / 2);
                let bits: Vec<bool> = mask
                    .iter()
                    .flat_map(|m| (0..8).rev().map(move |i| m & (1 << i) != 0))
                    .collect();
                if bits.windows(2).any(|w| !w[0] && w[1]) {
                    out.push("IP constraint mask is not contiguous".into());
                }
                if addr.iter().zip(mask).any(|(a, m)| a & !m != 0) {
                    out.push("IP constraint address has host bits set".into());
                }
            }
        }
        _ => {}
    }
    out
}

/// Lint-before-sign: signs `prepared`'s exact TBS with a fresh in-memory key of `key`'s
/// algorithm, lints that certificate and refuses on any finding. Nothing touches the token.
pub fn lint_before_signing(
    prepared: &PreparedCert,
    signing_key: &spki::SubjectPublicKeyInfoOwned,
    issuer: Option<&Certificate>,
) -> Result<Certificate> {
    // A throwaway key that signs exactly as the token will: same key type, same signature
    // algorithm (PKCS#1 v1.5 or PSS, SHA-256/384/512).
    let alg = throwaway_algorithm(signing_key)?;
    let throwaway = SoftKey::generate_for(alg, prepared.signature_algorithm()?)?;
    let copy = prepared.sign_copy(&throwaway)?;
    refuse_findings(&copy, issuer, "before signing")?;
    Ok(copy)
}

/// The in-memory key algorithm that signs like `key` (same key type and signature).
pub fn throwaway_algorithm(key: &spki::SubjectPublicKeyInfoOwned) -> Result<KeyAlgorithm> {
    let info = PublicKeyInfo::from_spki(key)?;
    info.key_algorithm().ok_or_else(|| {
        X509Error::refused(
            format!("no in-memory key type matches the CA key ({info})"),
            "use an ECDSA P-256/P-384, RSA 2048/3072/4096 or Ed25519 CA key",
        )
    })
}

/// Fails with every finding listed when `cert` breaks a rule.
pub fn refuse_findings(cert: &Certificate, issuer: Option<&Certificate>, when: &str) -> Result<()> {
    let findings = lint_certificate(cert, issuer);
    if findings.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = findings.iter().map(ToString::to_string).collect();
    Err(X509Error::refused(
        format!(
            "the certificate fails the RFC 5280 lint {when}: {}",
            list.join("; ")
        ),
        "nothing was signed by the token; fix the ceremony file (or report a bug) and run it again",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::issue::{CertRequest, prepare};
    use crate::x509::name::parse_name;
    use crate::x509::profile::{IpNet, PermittedSubtrees, Profile};
    use crate::x509::serial::random_serial;
    use crate::x509::signer::CaSigner;
    use crate::x509::validity::{Lifetime, ValidityPeriod};

    fn root(key: &SoftKey) -> Certificate {
        let req = CertRequest {
            profile: Profile::Root { path_len: None },
            subject: parse_name("CN=Lint Root,O=Example,C=KR").unwrap(),
            public_key: key.public_key().clone(),
            validity: ValidityPeriod::starting(
                time::OffsetDateTime::now_utc(),
                Lifetime::Years(10),
            )
            .unwrap(),
            issuer: None,
            serial: random_serial().unwrap(),
        };
        prepare(&req, key).unwrap().sign(key).unwrap()
    }

    #[test]
    fn hsmca_certificates_are_clean() {
        let key = SoftKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let root = root(&key);
        assert_eq!(lint_certificate(&root, None), vec![]);
        let sub = SoftKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CertRequest {
            profile: Profile::Intermediate {
                path_len: Some(0),
                constraints: Some(PermittedSubtrees {
                    dns: vec!["cluster-a.example.com".into()],
                    ip: vec!["10.0.0.0/8".parse::<IpNet>().unwrap()],
                }),
            },
            subject: parse_name("CN=Cluster A CA").unwrap(),
            public_key: sub.public_key().clone(),
            validity: ValidityPeriod::starting(time::OffsetDateTime::now_utc(), Lifetime::Years(1))
                .unwrap(),
            issuer: Some(&root),
            serial: random_serial().unwrap(),
        };
        let prepared = prepare(&req, &key).unwrap();
        let copy = lint_before_signing(&prepared, key.public_key(), Some(&root)).unwrap();
        assert_eq!(copy.tbs_certificate().to_der().unwrap(), prepared.tbs_der());
        let cert = prepared.sign(&key).unwrap();
        assert_eq!(lint_certificate(&cert, Some(&root)), vec![]);
        // Against the wrong issuer: AKI and issuer bytes no longer match.
        let other = root_other();
        let codes: Vec<&str> = lint_certificate(&cert, Some(&other))
            .iter()
            .map(|f| f.code)
            .collect();
        assert!(codes.contains(&"aki.mismatch"), "{codes:?}");
        assert!(codes.contains(&"issuer.bytes"), "{codes:?}");
    }

    fn root_other() -> Certificate {
        let key = SoftKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CertRequest {
            profile: Profile::Root { path_len: None },
            subject: parse_name("CN=Other Root").unwrap(),
            public_key: key.public_key().clone(),
            validity: ValidityPeriod::starting(
                time::OffsetDateTime::now_utc(),
                Lifetime::Years(10),
            )
            .unwrap(),
            issuer: None,
            serial: random_serial().unwrap(),
        };
        prepare(&req, &key).unwrap().sign(&key).unwrap()
    }

    #[test]
    fn subtree_forms() {
        let dns = |s: &str| GeneralSubtree {
            base: GeneralName::DnsName(der::asn1::Ia5String::new(s).unwrap()),
            minimum: 0,
            maximum: None,
        };
        let ip = |b: &[u8]| GeneralSubtree {
            base: GeneralName::IpAddress(der::asn1::OctetString::new(b).unwrap()),
            minimum: 0,
            maximum: None,
        };
        assert!(subtree_problems(&dns("example.com")).is_empty());
        assert!(!subtree_problems(&dns(".example.com")).is_empty());
        assert!(subtree_problems(&ip(&[10, 0, 0, 0, 255, 0, 0, 0])).is_empty());
        assert!(!subtree_problems(&ip(&[10, 0, 0, 0])).is_empty());
        assert!(!subtree_problems(&ip(&[10, 0, 0, 1, 255, 0, 0, 0])).is_empty());
        assert!(!subtree_problems(&ip(&[10, 0, 0, 0, 255, 0, 255, 0])).is_empty());
        let mut st = dns("example.com");
        st.minimum = 1;
        assert!(!subtree_problems(&st).is_empty());
    }

    #[test]
    fn time_encodings() {
        use der::asn1::{GeneralizedTime, UtcTime};
        let dt = der::DateTime::new(2030, 1, 1, 0, 0, 0).unwrap();
        assert!(
            time_encoding_problem(&Time::UtcTime(UtcTime::from_date_time(dt).unwrap())).is_none()
        );
        assert!(
            time_encoding_problem(&Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
                .is_some()
        );
        let late = der::DateTime::new(2050, 1, 1, 0, 0, 0).unwrap();
        assert!(
            time_encoding_problem(&Time::GeneralTime(GeneralizedTime::from_date_time(late)))
                .is_none()
        );
    }
}
