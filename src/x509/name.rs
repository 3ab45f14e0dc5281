//! Distinguished names from their RFC 4514 text ("CN=Example Root CA,O=Example,C=KR").
//!
//! Each attribute is its own RDN; C is PrintableString, DC IA5String, the rest UTF8String.
//! The text lists the most specific RDN first, so the encoded sequence is its reverse.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519;
use der::asn1::{Any, Ia5StringRef, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Decode, Encode};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{Error, Result};

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

fn bad(text: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid(
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
