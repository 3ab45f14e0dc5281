//! RFC 7512 PKCS#11 URIs: `pkcs11:token=Root%20CA;object=root-2026?pin-source=file:/run/pin`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::TokenError;

/// A parsed PKCS#11 URI naming a token and, optionally, a key on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// CKA_LABEL of the token (`token=`).
    pub token: Option<String>,
    /// Token serial number (`serial=`).
    pub serial: Option<String>,
    /// Slot id (`slot-id=`); only a filter, since SoftHSM2 renumbers slots.
    pub slot_id: Option<u64>,
    /// Token manufacturer (`manufacturer=`).
    pub manufacturer: Option<String>,
    /// Token model (`model=`).
    pub model: Option<String>,
    /// CKA_LABEL of the object (`object=`).
    pub object: Option<String>,
    /// CKA_ID of the object (`id=`), raw bytes.
    pub id: Option<Vec<u8>>,
    /// Object class (`type=`); hsmca only uses private keys.
    pub object_type: Option<String>,
    /// PKCS#11 module to load (`module-path=` query attribute).
    pub module_path: Option<PathBuf>,
    /// Where to read the PIN (`pin-source=` query attribute): a file path or `file:` URI.
    pub pin_source: Option<PathBuf>,
}

const PATH_ATTRS: &[&str] = &[
    "token",
    "serial",
    "slot-id",
    "manufacturer",
    "model",
    "object",
    "id",
    "type",
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
];

impl FromStr for Pkcs11Uri {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, TokenError> {
        let bad = |reason: String| TokenError::InvalidUri { reason };
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("it does not start with \"pkcs11:\"".into()))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<String> = Vec::new();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("path attribute \"{attr}\" has no '='")))?;
            if seen.iter().any(|n| n == name) {
                return Err(bad(format!("attribute \"{name}\" appears twice")));
            }
            seen.push(name.to_string());
            let bytes = percent_decode(value).map_err(bad)?;
            match name {
                "id" => uri.id = Some(bytes),
                "slot-id" => {
                    let text = utf8(name, bytes).map_err(bad)?;
                    uri.slot_id =
                        Some(text.parse().map_err(|_| {
                            bad(format!("slot-id \"{text}\" is not a decimal number"))
                        })?)
                }
                _ if PATH_ATTRS.contains(&name) || name.starts_with("x-") => {
                    let text = utf8(name, bytes).map_err(bad)?;
                    match name {
                        "token" => uri.token = Some(text),
                        "serial" => uri.serial = Some(text),
                        "manufacturer" => uri.manufacturer = Some(text),
                        "model" => uri.model = Some(text),
                        "object" => uri.object = Some(text),
                        "type" => {
                            if text != "private" {
                                return Err(bad(format!(
                                    "type={text}: hsmca signs with private keys only (type=private)"
                                )));
                            }
                            uri.object_type = Some(text)
                        }
                        // Library and slot descriptions narrow nothing hsmca relies on.
                        _ => {}
                    }
                }
                _ => return Err(bad(format!("unknown path attribute \"{name}\""))),
            }
        }
        for attr in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|a| !a.is_empty())
        {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad(format!("query attribute \"{attr}\" has no '='")))?;
            match name {
                // The PIN in argv is visible to every user of the machine (ps, /proc).
                "pin-value" => return Err(TokenError::PinValueInUri),
                "pin-source" => {
                    let text = utf8(name, percent_decode(value).map_err(bad)?).map_err(bad)?;
                    let path = text
                        .strip_prefix("file://")
                        .or(text.strip_prefix("file:"))
                        .unwrap_or(&text);
                    if path.is_empty() {
                        return Err(bad("pin-source names no file".into()));
                    }
                    uri.pin_source = Some(PathBuf::from(path));
                }
                "module-path" => {
                    let text = utf8(name, percent_decode(value).map_err(bad)?).map_err(bad)?;
                    uri.module_path = Some(PathBuf::from(text));
                }
                "module-name" => {
                    // A module p11-kit registers (RFC 7512): loaded by name; a module-path wins.
                    let text = utf8(name, percent_decode(value).map_err(bad)?).map_err(bad)?;
                    if text.is_empty() || text.contains('/') {
                        return Err(bad(
                            "module-name is a name p11-kit registers (p11-kit list-modules), not a path: use module-path for a file".into(),
                        ));
                    }
                    if uri.module_path.is_none() {
                        uri.module_path = Some(PathBuf::from(text));
                    }
                }
                _ => return Err(bad(format!("unknown query attribute \"{name}\""))),
            }
        }
        Ok(uri)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut text = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{name}={}", percent_encode(v.as_bytes())));
            }
        };
        text("token", &self.token);
        text("serial", &self.serial);
        text("manufacturer", &self.manufacturer);
        text("model", &self.model);
        text("object", &self.object);
        if let Some(slot) = self.slot_id {
            parts.push(format!("slot-id={slot}"));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02X}")).collect();
            parts.push(format!("id={hex}"));
        }
        if let Some(t) = &self.object_type {
            parts.push(format!("type={t}"));
        }
        write!(f, "pkcs11:{}", parts.join(";"))?;
        let mut query = Vec::new();
        if let Some(p) = &self.module_path {
            query.push(format!(
                "module-path={}",
                percent_encode(p.to_string_lossy().as_bytes())
            ));
        }
        if let Some(p) = &self.pin_source {
            let path = p.to_string_lossy();
            // "file://" would swallow a path's own leading "//" as an empty authority.
            let scheme = if path.starts_with("//") {
                "file://"
            } else {
                "file:"
            };
            query.push(format!(
                "pin-source={scheme}{}",
                percent_encode(path.as_bytes())
            ));
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

fn utf8(name: &str, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("attribute \"{name}\" is not UTF-8"))
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in \"{s}\""))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn percent_encode(bytes: &[u8]) -> String {
    // RFC 7512 "pchar" minus the attribute separators.
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let uri: Pkcs11Uri = "pkcs11:token=Root%20CA;object=root-2026;id=%01%ab;type=private"
            .parse()
            .unwrap();
        assert_eq!(uri.token.as_deref(), Some("Root CA"));
        assert_eq!(uri.object.as_deref(), Some("root-2026"));
        assert_eq!(uri.id, Some(vec![0x01, 0xab]));
        let again: Pkcs11Uri = uri.to_string().parse().unwrap();
        assert_eq!(again, uri);
        let uri: Pkcs11Uri =
            "pkcs11:token=A;slot-id=7?pin-source=file:/run/pin&module-path=/usr/lib/x.so"
                .parse()
                .unwrap();
        assert_eq!(uri.slot_id, Some(7));
        assert_eq!(uri.pin_source, Some(PathBuf::from("/run/pin")));
        assert_eq!(uri.module_path, Some(PathBuf::from("/usr/lib/x.so")));
    }

    #[test]
    fn refuses_pin_value_and_junk() {
        assert!(matches!(
            "pkcs11:token=A?pin-value=1234".parse::<Pkcs11Uri>(),
            Err(TokenError::PinValueInUri)
        ));
        for bad in [
            "token=A",
            "pkcs11:token=A;token=B",
            "pkcs11:tokn=A",
            "pkcs11:token=%zz",
            "pkcs11:slot-id=x",
            "pkcs11:type=cert",
            "pkcs11:token",
        ] {
            assert!(bad.parse::<Pkcs11Uri>().is_err(), "{bad}");
        }
    }

    // Found by fuzz/fuzz_targets/pkcs11_uri.rs: a pin-source path starting with "//" is
    // printed as "file://..." and that parses back as another path ("//run/pin" -> "run/pin").
    #[test]
    fn pin_source_survives_printing() {
        let uri: Pkcs11Uri = "pkcs11:token=A?pin-source=//run/pin".parse().unwrap();
        let again: Pkcs11Uri = uri.to_string().parse().unwrap();
        assert_eq!(uri, again, "printed as {uri}");
    }
}
