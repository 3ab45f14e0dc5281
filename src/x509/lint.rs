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
    let mut f = Vec::new();
    let mut add = |code: &'static str, message: String| f.push(Finding { code, message });
    let tbs = cert.tbs_certificate();

    // Serial: positive, at most 20 octets, at least 64 bits.
    let serial = tbs.serial_number().as_bytes();
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        add("serial.negative", "the serial number is negative".into());
    }
    if serial.len() > 20 {
        add(
            "serial.length",
            format!("the serial number is {} octets (at most 20)", serial.len()),
        );
    }
    let magnitude: Vec<u8> = serial.iter().copied().skip_while(|b| *b == 0).collect();
    let bits = magnitude
        .first()
        .map_or(0, |b| magnitude.len() * 8 - b.leading_zeros() as usize);
    if bits == 0 {
        add("serial.zero", "the serial number is zero".into());
    } else if bits < 64 {
        add(
            "serial.entropy",
            format!("the serial number has {bits} bits; at least 64 random bits are required"),
        );
    }

    // Validity: UTCTime through 2049, GeneralizedTime from 2050, whole seconds, Z.
    let validity = tbs.validity();
    for (name, t) in [
        ("notBefore", &validity.not_before),
        ("notAfter", &validity.not_after),
    ] {
        if let Some(why) = time_encoding_problem(t) {
            add("validity.encoding", format!("{name}: {why}"));
        }
    }
    if validity.not_after.to_unix_duration() < validity.not_before.to_unix_duration() {
        add("validity.order", "notAfter is before notBefore".to_string());
    }

    // The TBS signature algorithm equals the outer one.
    if tbs.signature() != cert.signature_algorithm() {
        add(
            "signature.algorithm_mismatch",
            "the TBS signature algorithm differs from the certificate's".into(),
        );
    }

    // Extensions: v3, one instance each.
    let exts: &[Extension] = tbs.extensions().map(Vec::as_slice).unwrap_or_default();
    if !exts.is_empty() && tbs.version() != x509_cert::certificate::Version::V3 {
        add("version", "a certificate with extensions must be v3".into());
    }
    let mut seen = HashSet::new();
    for e in exts {
        if !seen.insert(e.extn_id) {
            add(
                "extension.duplicate",
                format!("extension {} appears more than once", e.extn_id),
            );
        }
    }
    let find = |oid| exts.iter().find(|e| e.extn_id == oid);
    let mut extra: Vec<Finding> = Vec::new();
    let bc = decode_ext::<BasicConstraints>(exts, "basicConstraints", &mut extra);
    let ku = decode_ext::<KeyUsage>(exts, "keyUsage", &mut extra);
    let ski = decode_ext::<SubjectKeyIdentifier>(exts, "subjectKeyIdentifier", &mut extra);
    let aki = decode_ext::<AuthorityKeyIdentifier>(exts, "authorityKeyIdentifier", &mut extra);
    let nc = decode_ext::<NameConstraints>(exts, "nameConstraints", &mut extra);
    for x in extra {
        add(x.code, x.message);
    }

    let is_ca = bc.as_ref().is_some_and(|(_, bc)| bc.ca);
    let cert_sign = ku
        .as_ref()
        .is_some_and(|(_, ku)| ku.0.contains(KeyUsages::KeyCertSign));

    // keyUsage vs basicConstraints.
    if let Some((crit, bc)) = &bc {
        if bc.ca && !crit {
            add(
                "basic_constraints.critical",
                "basicConstraints of a CA certificate must be critical".into(),
            );
        }
        if bc.path_len_constraint.is_some() && !(bc.ca && cert_sign) {
            add(
                "basic_constraints.path_len",
                "pathLenConstraint is allowed only with cA and keyCertSign".into(),
            );
        }
    }
    if is_ca {
        match &ku {
            None => add(
                "key_usage.missing",
                "a CA certificate must have keyUsage".into(),
            ),
            Some((crit, ku)) => {
                if !crit {
                    add(
                        "key_usage.critical",
                        "keyUsage of a CA certificate must be critical".into(),
                    );
                }
                if !ku.0.contains(KeyUsages::KeyCertSign) {
                    add(
                        "key_usage.cert_sign",
                        "a CA certificate's keyUsage lacks keyCertSign".into(),
                    );
                }
            }
        }
    } else if cert_sign {
        add(
            "key_usage.cert_sign_without_ca",
            "keyCertSign requires basicConstraints cA TRUE".into(),
        );
    }
    if ku.as_ref().is_some_and(|(_, ku)| ku.0.is_empty()) {
        add("key_usage.empty", "keyUsage has no bit set".into());
    }

    // No EKU on CAs.
    if is_ca && find(ExtendedKeyUsage::OID).is_some() {
        add(
            "eku.on_ca",
            "a CA certificate must not carry extendedKeyUsage".into(),
        );
    }

    // SKI on CAs (non-critical); AKI = issuer's SKI.
    if let Some((crit, _)) = &ski
        && *crit
    {
        add(
            "ski.critical",
            "subjectKeyIdentifier must be non-critical".into(),
        );
    }
    if is_ca && ski.is_none() {
        add(
            "ski.missing",
            "a CA certificate must have subjectKeyIdentifier".into(),
        );
    }
    let self_issued = tbs.issuer().to_der().ok() == tbs.subject().to_der().ok();
    let aki_id = aki
        .as_ref()
        .and_then(|(_, a)| a.key_identifier.as_ref())
        .map(|k| k.as_bytes().to_vec());
    if let Some((crit, _)) = &aki
        && *crit
    {
        add(
            "aki.critical",
            "authorityKeyIdentifier must be non-critical".into(),
        );
    }
    match issuer {
        Some(issuer) => {
            let itbs = issuer.tbs_certificate();
            if itbs.subject().to_der().ok() != tbs.issuer().to_der().ok() {
                add(
                    "issuer.bytes",
                    "the issuer field differs from the issuer certificate's subject bytes".into(),
                );
            }
            let issuer_ski = itbs
                .get_extension::<SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .map(|(_, s)| s.0.as_bytes().to_vec());
            match (&aki_id, &issuer_ski) {
                (None, _) => add(
                    "aki.missing",
                    "authorityKeyIdentifier keyIdentifier is missing".into(),
                ),
                (Some(_), None) => add(
                    "aki.issuer_ski_missing",
                    "the issuer certificate has no subjectKeyIdentifier to match".into(),
                ),
                (Some(a), Some(s)) if a != s => add(
                    "aki.mismatch",
                    "authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier".into(),
                ),
                _ => {}
            }
        }
        None => {
            if !self_issued {
                add(
                    "issuer.bytes",
                    "a certificate checked as self-signed names another issuer".into(),
                );
            }
            if let (Some(a), Some((_, s))) = (&aki_id, &ski)
                && a.as_slice() != s.0.as_bytes()
            {
                add(
                    "aki.mismatch",
                    "a self-signed certificate's authorityKeyIdentifier differs from its own subjectKeyIdentifier".into(),
                );
            }
        }
    }

    // Name constraints: CA only, critical, non-empty, well-formed bases.
    if let Some((crit, nc)) = &nc {
        if !is_ca {
            add(
                "name_constraints.not_ca",
                "nameConstraints appear in a certificate that is not a CA".into(),
            );
        }
        if !crit {
            add(
                "name_constraints.critical",
                "nameConstraints must be critical".into(),
            );
        }
        let permitted = nc.permitted_subtrees.as_deref().unwrap_or_default();
        let excluded = nc.excluded_subtrees.as_deref().unwrap_or_default();
        if permitted.is_empty() && excluded.is_empty() {
            add(
                "name_constraints.empty",
                "nameConstraints has no subtree".into(),
            );
        }
        for (which, list, present) in [
            ("permitted", permitted, nc.permitted_subtrees.is_some()),
            ("excluded", excluded, nc.excluded_subtrees.is_some()),
        ] {
            if present && list.is_empty() {
                add(
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
                    add("name_constraints.form", format!("{which}: {m}"));
                }
            }
        }
    }

    if is_ca && tbs.subject().is_empty() {
        add(
            "subject.empty",
            "a CA certificate needs a subject name".into(),
        );
    }
    f
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
