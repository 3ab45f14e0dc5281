//! RFC 5280 name constraints as a relying party applies them (§4.2.1.10): read an issuer's
//! nameConstraints extension and decide whether DNS and IP subjectAltNames are permitted, so
//! a name the issuer may not certify is refused at issue time, not by a verifier later.

use std::fmt;
use std::net::IpAddr;

use x509_cert::Certificate;
use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, NameConstraints};
use x509_cert::ext::pkix::name::GeneralName;

use super::error::{Result, X509Error};
use super::name::display_name;
use super::profile::San;

/// One subtree of a nameConstraints extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subtree {
    /// dNSName: `example.com` covers it and every name under it; `.example.com` only names
    /// under it (a form RFC 5280 leaves to URIs, but Go and OpenSSL accept for DNS too).
    Dns(String),
    /// iPAddress: network address and mask, 4+4 or 16+16 octets.
    Ip {
        /// Network address.
        addr: Vec<u8>,
        /// Mask.
        mask: Vec<u8>,
    },
    /// rfc822Name or URI: forms Go understands that never match a DNS or IP name.
    OtherUnderstood(&'static str),
    /// Any other form (directoryName, otherName ...): Go rejects a critical extension with it.
    NotUnderstood(&'static str),
}

impl fmt::Display for Subtree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subtree::Dns(d) => write!(f, "DNS:{d}"),
            Subtree::Ip { addr, mask } => {
                let ip = match addr.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(addr.as_slice()).unwrap_or_default()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(addr.as_slice()).unwrap_or_default()),
                };
                match prefix_len(mask) {
                    Some(p) => write!(f, "IP:{ip}/{p}"),
                    None => write!(f, "IP:{ip}/mask {}", hex::encode(mask)),
                }
            }
            Subtree::OtherUnderstood(k) | Subtree::NotUnderstood(k) => write!(f, "{k}"),
        }
    }
}

/// The prefix length of a contiguous mask.
fn prefix_len(mask: &[u8]) -> Option<u32> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let contiguous = mask.iter().enumerate().all(|(i, b)| {
        let bits = (ones as usize).saturating_sub(i * 8).min(8);
        *b == if bits == 0 { 0 } else { 0xffu8 << (8 - bits) }
    });
    contiguous.then_some(ones)
}

/// A CA's name constraints: what it may certify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraintSet {
    /// permittedSubtrees (empty: no permitted list).
    pub permitted: Vec<Subtree>,
    /// excludedSubtrees.
    pub excluded: Vec<Subtree>,
}

fn subtree(s: &GeneralSubtree) -> Result<Subtree> {
    if s.minimum != 0 || s.maximum.is_some() {
        return Err(X509Error::refused(
            "the issuer's name constraints use minimum/maximum, which RFC 5280 forbids",
            "re-issue the CA certificate without them",
        ));
    }
    Ok(match &s.base {
        GeneralName::DnsName(d) => Subtree::Dns(d.as_str().to_ascii_lowercase()),
        GeneralName::IpAddress(o) => {
            let b = o.as_bytes();
            if b.len() != 8 && b.len() != 32 {
                return Err(X509Error::refused(
                    format!(
                        "the issuer's name constraints hold an iPAddress of {} octets (8 or 32 expected)",
                        b.len()
                    ),
                    "re-issue the CA certificate with well-formed IP constraints",
                ));
            }
            let (addr, mask) = b.split_at(b.len() / 2);
            Subtree::Ip {
                addr: addr.to_vec(),
                mask: mask.to_vec(),
            }
        }
        GeneralName::Rfc822Name(_) => Subtree::OtherUnderstood("rfc822Name"),
        GeneralName::UniformResourceIdentifier(_) => Subtree::OtherUnderstood("URI"),
        GeneralName::DirectoryName(_) => Subtree::NotUnderstood("directoryName"),
        GeneralName::OtherName(_) => Subtree::NotUnderstood("otherName"),
        GeneralName::RegisteredId(_) => Subtree::NotUnderstood("registeredID"),
        GeneralName::EdiPartyName(_) => Subtree::NotUnderstood("ediPartyName"),
    })
}

/// Whether DNS name `name` lies in the subtree `constraint` (case-insensitive, label-wise).
pub fn dns_within(name: &str, constraint: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let c = constraint.to_ascii_lowercase();
    if c.is_empty() {
        return true;
    }
    if c.starts_with('.') {
        return name.ends_with(&c);
    }
    name == c || name.ends_with(&format!(".{c}"))
}

/// Whether `ip` lies in the subtree `addr`/`mask` (never across IPv4 and IPv6).
pub fn ip_within(ip: IpAddr, addr: &[u8], mask: &[u8]) -> bool {
    let octets = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    octets.len() == addr.len()
        && octets
            .iter()
            .zip(addr)
            .zip(mask)
            .all(|((o, a), m)| o & m == a & m)
}

impl Subtree {
    /// Whether `san` is of this subtree's form and inside it.
    fn covers(&self, san: &San) -> bool {
        match (self, san) {
            (Subtree::Dns(c), San::Dns(n)) => dns_within(n, c),
            (Subtree::Ip { addr, mask }, San::Ip(ip)) => ip_within(*ip, addr, mask),
            _ => false,
        }
    }

    /// Whether this subtree constrains names of `san`'s form.
    fn same_form(&self, san: &San) -> bool {
        matches!(
            (self, san),
            (Subtree::Dns(_), San::Dns(_)) | (Subtree::Ip { .. }, San::Ip(_))
        )
    }
}

fn san_text(san: &San) -> String {
    match san {
        San::Dns(d) => format!("DNS:{d}"),
        San::Ip(ip) => format!("IP:{ip}"),
    }
}

impl NameConstraintSet {
    /// The issuer's nameConstraints, or `None` when it has none. A critical extension with a
    /// form Go does not understand is an error: Go would refuse every chain through it.
    pub fn from_certificate(cert: &Certificate) -> Result<Option<NameConstraintSet>> {
        let found = cert
            .tbs_certificate()
            .get_extension::<NameConstraints>()
            .map_err(|e| {
                X509Error::refused(
                    format!("the issuer's nameConstraints extension is malformed: {e}"),
                    "re-issue the CA certificate",
                )
            })?;
        let Some((critical, nc)) = found else {
            return Ok(None);
        };
        let read = |v: &Option<Vec<GeneralSubtree>>| -> Result<Vec<Subtree>> {
            v.iter().flatten().map(subtree).collect()
        };
        let set = NameConstraintSet {
            permitted: read(&nc.permitted_subtrees)?,
            excluded: read(&nc.excluded_subtrees)?,
        };
        if let Some(bad) = set
            .permitted
            .iter()
            .chain(&set.excluded)
            .find(|s| matches!(s, Subtree::NotUnderstood(_)))
            && critical
        {
            return Err(X509Error::refused(
                format!(
                    "the issuer's critical nameConstraints hold a {bad} subtree, which Go's crypto/x509 refuses"
                ),
                "re-issue the CA certificate with DNS and IP constraints only",
            ));
        }
        Ok(Some(set))
    }

    /// Checks one subjectAltName: it must lie in a permitted subtree of its form (when the
    /// permitted list has any of that form) and in no excluded subtree.
    pub fn check(&self, san: &San, issuer: &str) -> Result<()> {
        if let Some(ex) = self.excluded.iter().find(|s| s.covers(san)) {
            return Err(X509Error::refused(
                format!(
                    "the name {} lies in the excluded subtree {ex} of the name constraints of {issuer}",
                    san_text(san)
                ),
                "remove that name from the request, or have the CA re-issued without that exclusion",
            ));
        }
        let same_form: Vec<&Subtree> = self.permitted.iter().filter(|s| s.same_form(san)).collect();
        if !same_form.is_empty() && !same_form.iter().any(|s| s.covers(san)) {
            let list: Vec<String> = same_form.iter().map(|s| s.to_string()).collect();
            return Err(X509Error::refused(
                format!(
                    "the name {} is not permitted by the name constraints of {issuer} (permitted: {})",
                    san_text(san),
                    list.join(", ")
                ),
                "fix the name in the request, or have the root ceremony re-sign this CA with constraints that cover it",
            ));
        }
        Ok(())
    }
}

/// Checks that every name in `sans` is permitted by `issuer`'s name constraints (if any).
pub fn check_sans_permitted(issuer: &Certificate, sans: &[San]) -> Result<()> {
    let Some(set) = NameConstraintSet::from_certificate(issuer)? else {
        return Ok(());
    };
    let who = display_name(issuer.tbs_certificate().subject());
    for san in sans {
        set.check(san, &who)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_matching_is_label_wise() {
        assert!(dns_within("cluster.local", "cluster.local"));
        assert!(dns_within(
            "kubernetes.default.svc.cluster.local",
            "cluster.local"
        ));
        assert!(dns_within("A.Cluster.Local", "cluster.local"));
        assert!(!dns_within("evilcluster.local", "cluster.local"));
        assert!(!dns_within("kubernetes", "cluster.local"));
        assert!(dns_within("kubernetes", "kubernetes"));
        assert!(!dns_within("kubernetes.default", "kubernetes"));
        assert!(dns_within("x.kubernetes", "kubernetes"));
        assert!(!dns_within("cluster.local", ".cluster.local"));
        assert!(dns_within("a.cluster.local", ".cluster.local"));
        assert!(dns_within("anything", ""));
    }

    #[test]
    fn ip_matching() {
        let addr = [10, 96, 0, 0];
        let mask = [255, 240, 0, 0];
        assert!(ip_within("10.96.0.1".parse().unwrap(), &addr, &mask));
        assert!(ip_within("10.111.255.255".parse().unwrap(), &addr, &mask));
        assert!(!ip_within("10.112.0.0".parse().unwrap(), &addr, &mask));
        assert!(!ip_within("::1".parse().unwrap(), &addr, &mask));
    }

    #[test]
    fn check_names_the_name_and_the_constraint() {
        let set = NameConstraintSet {
            permitted: vec![
                Subtree::Dns("cluster.local".into()),
                Subtree::Ip {
                    addr: vec![127, 0, 0, 1],
                    mask: vec![255; 4],
                },
            ],
            excluded: vec![Subtree::Dns("bad.cluster.local".into())],
        };
        set.check(&San::Dns("a.cluster.local".into()), "CN=x")
            .unwrap();
        set.check(&San::Ip("127.0.0.1".parse().unwrap()), "CN=x")
            .unwrap();
        let e = set
            .check(&San::Dns("node-9".into()), "CN=x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("DNS:node-9") && e.contains("DNS:cluster.local"),
            "{e}"
        );
        assert!(!e.contains("IP:127"), "{e}");
        let e = set
            .check(&San::Ip("10.0.0.1".parse().unwrap()), "CN=x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("IP:10.0.0.1") && e.contains("IP:127.0.0.1/32"),
            "{e}"
        );
        let e = set
            .check(&San::Dns("x.bad.cluster.local".into()), "CN=x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("excluded subtree DNS:bad.cluster.local"), "{e}");
        // A form with no permitted subtree is not constrained (RFC 5280, Go).
        let only_dns = NameConstraintSet {
            permitted: vec![Subtree::Dns("cluster.local".into())],
            excluded: vec![],
        };
        only_dns
            .check(&San::Ip("::1".parse().unwrap()), "CN=x")
            .unwrap();
    }
}
