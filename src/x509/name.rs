//! Distinguished names from their RFC 4514 text ("CN=Example Root CA,O=Example,C=KR").
//!
//! Each attribute is its own RDN; C is PrintableString, DC IA5String, the rest UTF8String.
//! The text lists the most specific RDN first, so the encoded sequence is its reverse.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519;
use der::asn1::{Any, Ia5StringRef, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::error::{Result, X509Error};

/// The attribute names accepted in a subject, with their OIDs.
const ATTRIBUTES: &[(&str, ObjectIdentifier)] = &[
    ("CN", rfc4519::COMMON_NAME),
    ("O", rfc4519::ORGANIZATION_NAME),
    ("OU", rfc4519::ORGANIZATIONAL_UNIT_NAME),
    ("C", rfc4519::COUNTRY_NAME),
    ("ST", rfc4519::ST),
    ("L", rfc4519::LOCALITY_NAME),
    ("DC", rfc4519::DOMAIN_COMPONENT),
    ("SERIALNUMBER", rfc4519::SERIAL_NUMBER),
];

fn bad(text: &str, why: impl std::fmt::Display) -> X509Error {
    X509Error::refused(
        format!("invalid subject \"{text}\": {why}"),
        "write it as RFC 4514 text, most specific first, e.g. \"CN=Example Root CA 2026,O=Example,C=KR\" (escape a comma in a value as \\,)",
    )
}

/// Parses RFC 4514 text into a DER-encodable [`Name`].
pub fn parse_name(text: &str) -> Result<Name> {
    let parts = split_unescaped(text).map_err(|why| bad(text, why))?;
    let mut rdns = Vec::new();
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad(text, format!("\"{part}\" has no '='")))?;
        let key_upper = key.trim().to_ascii_uppercase();
        let oid = ATTRIBUTES
            .iter()
            .find(|(n, _)| *n == key_upper)
            .map(|(_, oid)| *oid)
            .ok_or_else(|| {
                bad(
                    text,
                    format!(
                        "unknown attribute \"{}\" (use {})",
                        key.trim(),
                        ATTRIBUTES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        let value = unescape(value.trim());
        if value.is_empty() {
            return Err(bad(text, format!("{key_upper} is empty")));
        }
        let any = match key_upper.as_str() {
            "C" => {
                if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(bad(text, "C must be a two-letter ISO 3166 code such as KR"));
                }
                Any::encode_from(&PrintableStringRef::new(&value).map_err(|e| bad(text, e))?)
            }
            "SERIALNUMBER" => Any::encode_from(
                &PrintableStringRef::new(&value)
                    .map_err(|_| bad(text, "serialNumber must be a PrintableString"))?,
            ),
            "DC" => Any::encode_from(
                &Ia5StringRef::new(&value).map_err(|_| bad(text, "DC must be ASCII"))?,
            ),
            _ => {
                if value.chars().count() > 64 {
                    return Err(bad(
                        text,
                        format!("{key_upper} is longer than 64 characters"),
                    ));
                }
                Any::encode_from(&Utf8StringRef::new(&value).map_err(|e| bad(text, e))?)
            }
        }
        .map_err(|e| bad(text, e))?;
        let atv = AttributeTypeAndValue { oid, value: any };
        let set = SetOfVec::try_from(vec![atv]).map_err(|e| bad(text, e))?;
        rdns.push(RelativeDistinguishedName::from(set));
    }
    if rdns.is_empty() {
        return Err(bad(text, "it is empty"));
    }
    // RFC 4514 text is written in reverse order of the encoded sequence.
    rdns.reverse();
    let mut seq = RdnSequence::default();
    for rdn in rdns {
        seq.push(rdn);
    }
    let der = seq.to_der().map_err(|e| bad(text, e))?;
    Name::from_der(&der).map_err(|e| bad(text, e))
}

/// Most RDNs a subject may have (real subjects have a handful; a bound keeps hostile requests
/// from costing every verifier).
pub const MAX_RDNS: usize = 16;

/// The attributes a certified subject may hold, with the upper bound of RFC 5280 Appendix A
/// (characters) and whether the value must be a PrintableString (C, serialNumber) or an
/// IA5String (DC); the others are UTF8String or PrintableString.
const SUBJECT_ATTRIBUTES: &[(&str, ObjectIdentifier, usize)] = &[
    ("CN", rfc4519::COMMON_NAME, 64),
    ("O", rfc4519::ORGANIZATION_NAME, 64),
    ("OU", rfc4519::ORGANIZATIONAL_UNIT_NAME, 64),
    ("C", rfc4519::COUNTRY_NAME, 2),
    ("ST", rfc4519::ST, 128),
    ("L", rfc4519::LOCALITY_NAME, 128),
    ("DC", rfc4519::DOMAIN_COMPONENT, 63),
    ("SERIALNUMBER", rfc4519::SERIAL_NUMBER, 64),
];

fn bad_subject(subject: &str, why: impl std::fmt::Display) -> X509Error {
    X509Error::refused(
        format!("the subject {subject} cannot be certified: {why}"),
        "have the request made again with a plain subject (or give the whole subject with --subject, which replaces the request's)",
    )
}

/// Whether `c` may appear in a certified name: no NUL or other control character, no
/// bidirectional override, embedding or isolate (they make a name read differently than it
/// compares), no byte-order mark.
fn allowed_char(c: char) -> bool {
    !(c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'))
}

/// Checks a subject about to be certified, whoever wrote it (a CSR is copied as it is): at
/// most [`MAX_RDNS`] RDNs of one known attribute each; each value of a string type RFC 5280
/// allows for it and valid for that type (UTF-8 for UTF8String, the PrintableString alphabet,
/// ASCII for IA5String), within its upper bound, free of control and bidi characters.
pub fn check_subject(name: &Name) -> Result<()> {
    let shown: String = {
        let text = name.to_string();
        let short: String = text.chars().take(80).collect();
        let short = short.escape_debug().to_string();
        if text.chars().count() > 80 {
            format!("\"{short}…\"")
        } else {
            format!("\"{short}\"")
        }
    };
    let rdns: Vec<_> = name.iter_rdn().collect();
    if rdns.len() > MAX_RDNS {
        return Err(bad_subject(
            &shown,
            format!("it has {} RDNs (at most {MAX_RDNS})", rdns.len()),
        ));
    }
    for rdn in rdns {
        if rdn.len() != 1 {
            return Err(bad_subject(&shown, "a multi-valued RDN"));
        }
        for atv in rdn.iter() {
            let Some((attr, _, max)) = SUBJECT_ATTRIBUTES.iter().find(|(_, o, _)| *o == atv.oid)
            else {
                return Err(bad_subject(
                    &shown,
                    format!(
                        "the attribute {} is not one hsmca certifies ({})",
                        atv.oid,
                        SUBJECT_ATTRIBUTES
                            .iter()
                            .map(|(n, _, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            let value = attribute_text(attr, &atv.value).map_err(|why| bad_subject(&shown, why))?;
            let count = value.chars().count();
            if count == 0 {
                return Err(bad_subject(&shown, format!("{attr} is empty")));
            }
            if count > *max {
                return Err(bad_subject(
                    &shown,
                    format!("{attr} has {count} characters (RFC 5280 allows {max})"),
                ));
            }
            if *attr == "C" && !value.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad_subject(&shown, "C must be a two-letter ISO 3166 code"));
            }
            if let Some(c) = value.chars().find(|c| !allowed_char(*c)) {
                return Err(bad_subject(
                    &shown,
                    format!(
                        "{attr} holds the character U+{:04X} (control or bidirectional)",
                        c as u32
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The text of one attribute value, if its string type is one RFC 5280 allows for `attr` and
/// its bytes are valid for that type.
fn attribute_text(attr: &str, value: &Any) -> std::result::Result<String, String> {
    let tag = value.tag();
    let bytes = value.value();
    let allowed = match attr {
        "C" | "SERIALNUMBER" => &[Tag::PrintableString][..],
        "DC" => &[Tag::Ia5String][..],
        _ => &[Tag::Utf8String, Tag::PrintableString][..],
    };
    if !allowed.contains(&tag) {
        return Err(format!(
            "{attr} is a {tag}, not {}",
            allowed
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    match tag {
        Tag::Utf8String => String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{attr} is a UTF8String that is not valid UTF-8")),
        Tag::PrintableString => {
            let printable = |b: &u8| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(b);
            match bytes.iter().find(|b| !printable(b)) {
                Some(b) => Err(format!(
                    "{attr} is a PrintableString holding {:?}, outside that type's alphabet",
                    char::from(*b)
                )),
                None => Ok(String::from_utf8_lossy(bytes).into_owned()),
            }
        }
        _ => match bytes.iter().find(|b| !b.is_ascii()) {
            Some(b) => Err(format!(
                "{attr} is an IA5String holding the byte 0x{b:02x}, not ASCII"
            )),
            None => Ok(String::from_utf8_lossy(bytes).into_owned()),
        },
    }
}

/// The subject's common names, as text (those that decode).
pub fn common_names(name: &Name) -> Vec<String> {
    name.iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .filter(|atv| atv.oid == rfc4519::COMMON_NAME)
        .filter_map(|atv| attribute_text("CN", &atv.value).ok())
        .collect()
}

/// The subject's organization names (O), as text, in order.
pub fn organizations(name: &Name) -> Vec<String> {
    name.iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .filter(|atv| atv.oid == rfc4519::ORGANIZATION_NAME)
        .filter_map(|atv| attribute_text("O", &atv.value).ok())
        .collect()
}

/// Renders a name as RFC 4514 text.
pub fn display_name(name: &Name) -> String {
    name.to_string()
}

fn split_unescaped(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                cur.push(chars.next().ok_or("it ends with a lone backslash")?);
            }
            '+' => return Err("multi-valued RDNs (+) are not supported".into()),
            ',' => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    Ok(parts.into_iter().filter(|p| !p.trim().is_empty()).collect())
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Tagged;

    #[test]
    fn encodes_in_sequence_order_with_the_right_string_types() {
        let name = parse_name("CN=Example Root CA 2026,O=Example\\, Inc.,C=KR").unwrap();
        let rdns: Vec<_> = name.iter_rdn().collect();
        assert_eq!(rdns.len(), 3);
        let first = rdns[0].iter().next().unwrap();
        assert_eq!(first.oid, rfc4519::COUNTRY_NAME);
        assert_eq!(first.value.tag(), der::Tag::PrintableString);
        let last = rdns[2].iter().next().unwrap();
        assert_eq!(last.oid, rfc4519::COMMON_NAME);
        assert_eq!(last.value.tag(), der::Tag::Utf8String);
        assert_eq!(
            name.to_string(),
            "CN=Example Root CA 2026,O=Example\\, Inc.,C=KR"
        );
    }

    #[test]
    fn refuses_bad_subjects() {
        for bad in ["", "CN=", "XX=a", "C=Korea", "CN=a+O=b", "CN", "C=kr"] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod subject_tests {
    use super::*;

    /// A name of one RDN per (OID, tag, value bytes), in order.
    fn raw(attrs: &[(ObjectIdentifier, Tag, &[u8])]) -> Name {
        let mut seq = RdnSequence::default();
        for (oid, tag, bytes) in attrs {
            let atv = AttributeTypeAndValue {
                oid: *oid,
                value: Any::new(*tag, bytes.to_vec()).unwrap(),
            };
            seq.push(RelativeDistinguishedName::from(
                SetOfVec::try_from(vec![atv]).unwrap(),
            ));
        }
        Name::from_der(&seq.to_der().unwrap()).unwrap()
    }

    #[test]
    fn plain_subjects_pass() {
        check_subject(&parse_name("CN=Cluster A CA,O=Example\\, Inc.,C=KR").unwrap()).unwrap();
        check_subject(&parse_name("CN=system:node:worker-1,O=system:nodes").unwrap()).unwrap();
        let cn = rfc4519::COMMON_NAME;
        check_subject(&raw(&[(cn, Tag::PrintableString, b"Good CA (2026)")])).unwrap();
        check_subject(&raw(&[(cn, Tag::Utf8String, "서울 CA".as_bytes())])).unwrap();
    }

    #[test]
    fn hostile_subjects_are_refused_naming_the_cause() {
        let cn = rfc4519::COMMON_NAME;
        let long = "a".repeat(65);
        let many: Vec<(ObjectIdentifier, Tag, &[u8])> = (0..=MAX_RDNS)
            .map(|_| (cn, Tag::Utf8String, &b"x"[..]))
            .collect();
        let cases: Vec<(Name, &str)> = vec![
            (
                raw(&[(cn, Tag::Utf8String, b"bad \xff utf-8")]),
                "not valid UTF-8",
            ),
            (
                raw(&[(cn, Tag::PrintableString, b"a@b")]),
                "outside that type's alphabet",
            ),
            (
                raw(&[(cn, Tag::PrintableString, b"*.example.com")]),
                "alphabet",
            ),
            (
                raw(&[(cn, Tag::Utf8String, b"good.example.com\0.evil.com")]),
                "U+0000",
            ),
            (
                raw(&[(cn, Tag::Utf8String, "moc.\u{202e}evil".as_bytes())]),
                "U+202E",
            ),
            (
                raw(&[(cn, Tag::Utf8String, long.as_bytes())]),
                "65 characters",
            ),
            (raw(&[(cn, Tag::Utf8String, b"")]), "empty"),
            (raw(&many), "RDNs"),
            (
                raw(&[(cn, Tag::TeletexString, b"x")]),
                "not UTF8String or PrintableString",
            ),
            (
                raw(&[(rfc4519::COUNTRY_NAME, Tag::Utf8String, b"KR")]),
                "not PrintableString",
            ),
            (
                raw(&[(rfc4519::COUNTRY_NAME, Tag::PrintableString, b"KOR")]),
                "RFC 5280 allows 2",
            ),
            (
                raw(&[(rfc4519::DOMAIN_COMPONENT, Tag::Ia5String, b"\xe9")]),
                "not ASCII",
            ),
            (
                raw(&[(rfc4519::TITLE, Tag::Utf8String, b"Boss")]),
                "not one hsmca certifies",
            ),
        ];
        for (name, cause) in cases {
            let e = check_subject(&name).unwrap_err().to_string();
            assert!(e.contains(cause), "{cause}: {e}");
        }
    }
}
