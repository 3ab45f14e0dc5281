//! Certificate profiles: what each kind of certificate carries, as x509-cert extensions.
//!
//! | profile | basicConstraints | keyUsage | EKU | SAN |
//! |---|---|---|---|---|
//! | root | critical, CA, optional pathLen | critical keyCertSign, cRLSign | none | none; AKI = its own SKI |
//! | intermediate | critical, CA, pathLen | critical keyCertSign, cRLSign | none | none; optional critical nameConstraints |
//! | server / client / server-client | critical, not CA | critical digitalSignature (+keyEncipherment for RSA) | serverAuth / clientAuth / both | DNS and IP |

use std::net::IpAddr;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::asn1::{Ia5String, OctetString};
use der::referenced::OwnedToRef;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, NameConstraints};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;

use super::error::{Result, X509Error};

/// rsaEncryption: RSA leaves also get keyEncipherment.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The kind of certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// A self-signed root CA.
    Root {
        /// pathLenConstraint, if any (not recommended on roots).
        path_len: Option<u8>,
    },
    /// A subordinate CA.
    Intermediate {
        /// pathLenConstraint (0: it may sign only leaves).
        path_len: Option<u8>,
        /// Permitted DNS and IP subtrees, if constrained.
        constraints: Option<PermittedSubtrees>,
    },
    /// An end-entity certificate.
    Leaf {
        /// What it authenticates as.
        usage: LeafUsage,
        /// subjectAltName entries.
        sans: Vec<San>,
    },
}

/// The EKU of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafUsage {
    /// TLS server: serverAuth.
    Server,
    /// TLS client: clientAuth.
    Client,
    /// Both (etcd peers, Kubernetes components).
    ServerClient,
}

/// The profile names the CLI accepts for `sign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileName {
    /// `intermediate`
    Intermediate,
    /// `server`
    Server,
    /// `client`
    Client,
    /// `server-client`
    ServerClient,
}

/// A subjectAltName entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum San {
    /// dNSName.
    Dns(String),
    /// iPAddress.
    Ip(IpAddr),
}

/// The DNS and IP subjectAltNames of `cert` (other forms are left out); none without the
/// extension or when it does not decode.
pub fn subject_alt_names(cert: &x509_cert::Certificate) -> Vec<San> {
    let Ok(Some((_, san))) = cert.tbs_certificate().get_extension::<SubjectAltName>() else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|n| match n {
            GeneralName::DnsName(d) => Some(San::Dns(d.as_str().to_string())),
            GeneralName::IpAddress(o) => match o.as_bytes().len() {
                4 => <[u8; 4]>::try_from(o.as_bytes())
                    .ok()
                    .map(|b| San::Ip(IpAddr::from(b))),
                16 => <[u8; 16]>::try_from(o.as_bytes())
                    .ok()
                    .map(|b| San::Ip(IpAddr::from(b))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// What `cert`'s extended key usage lets it do: (serverAuth, clientAuth). Without the
/// extension a certificate may do both (RFC 5280, 4.2.1.12).
pub fn tls_usage(cert: &x509_cert::Certificate) -> (bool, bool) {
    match cert.tbs_certificate().get_extension::<ExtendedKeyUsage>() {
        Ok(Some((_, eku))) => (
            eku.0.contains(&ID_KP_SERVER_AUTH),
            eku.0.contains(&ID_KP_CLIENT_AUTH),
        ),
        _ => (true, true),
    }
}

/// Permitted subtrees of a name-constrained CA (DNS and IP forms, which Go understands).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermittedSubtrees {
    /// DNS constraints in RFC 5280 form: `example.com` covers it and every name under it.
    pub dns: Vec<String>,
    /// IP ranges.
    pub ip: Vec<IpNet>,
}

impl PermittedSubtrees {
    /// Refuses subtrees that permit names the CA's owner cannot own: a DNS subtree that is a
    /// public suffix or top-level domain (the Public Suffix List: `com`, `co.uk`, `github.io`;
    /// single labels it does not list, such as `kubernetes` or a node name, stay allowed), and
    /// an IP range that covers every address (`0.0.0.0/0`, `::/0`, or an IPv6 range holding
    /// all of `::ffff:0:0/96`, every IPv4 address in mapped form).
    pub fn check(&self) -> Result<()> {
        for d in &self.dns {
            let name = d.trim_start_matches('.');
            if name.is_empty() || is_public_suffix(name) {
                return Err(X509Error::refused(
                    format!(
                        "the name constraint DNS:{d} is a public suffix: it would let this CA certify names under it that belong to anyone"
                    ),
                    "constrain the CA to a domain its owner holds (e.g. cluster-a.example.com), never a top-level domain or public suffix",
                ));
            }
        }
        let mapped = IpNet {
            addr: IpAddr::V6(std::net::Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)),
            prefix: 96,
        };
        for net in &self.ip {
            let what = match net.addr {
                IpAddr::V4(_) if net.prefix == 0 => "every IPv4 address",
                IpAddr::V6(_) if net.prefix == 0 => "every IPv6 address",
                IpAddr::V6(_) if net.prefix <= 96 && net.contains(mapped.addr) => {
                    "every IPv4 address (in IPv4-mapped IPv6 form)"
                }
                _ => continue,
            };
            return Err(X509Error::refused(
                format!("the name constraint IP:{net} covers {what}: it constrains nothing"),
                "permit only the ranges the CA's clusters use (e.g. 10.32.0.0/16)",
            ));
        }
        Ok(())
    }
}

/// Whether `name` is listed in the Public Suffix List as a suffix (a TLD, `co.uk`, ...).
fn is_public_suffix(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    psl::suffix(lower.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == lower.as_bytes())
}

/// An IP network such as 10.32.0.0/16, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl FromStr for IpNet {
    type Err = X509Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            X509Error::refused(
                format!("invalid IP range \"{s}\": {why}"),
                "write it in CIDR form, e.g. 10.32.0.0/16 or fd00::/8",
            )
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(bad("prefix length too large"));
        }
        let net = IpNet { addr, prefix };
        if net.octets().0 != ip_octets(addr) {
            return Err(bad("host bits are set after the prefix"));
        }
        Ok(net)
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNet {
    /// (masked address, mask) octets.
    fn octets(&self) -> (Vec<u8>, Vec<u8>) {
        let addr = ip_octets(self.addr);
        let mut mask = vec![0u8; addr.len()];
        for (i, m) in mask.iter_mut().enumerate() {
            let bits = (self.prefix as usize).saturating_sub(i * 8).min(8);
            *m = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
        }
        let masked = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
        (masked, mask)
    }

    /// The 8- or 32-octet iPAddress form of a name constraint: address then mask.
    pub fn constraint_octets(&self) -> Vec<u8> {
        let (mut a, m) = self.octets();
        a.extend(m);
        a
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (net, mask) = self.octets();
        ip_octets(ip)
            .iter()
            .zip(&mask)
            .zip(&net)
            .all(|((b, m), n)| b & m == *n)
    }
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Checks a DNS name (lower-cased). `wildcard` allows a leading `*.` label (SANs only).
pub fn check_dns_name(name: &str, wildcard: bool) -> Result<String> {
    let bad = |why: &str| {
        X509Error::refused(
            format!("invalid DNS name \"{name}\": {why}"),
            "use letters, digits and hyphens in dot-separated labels, e.g. cluster-a.example.com (no leading dot)",
        )
    };
    let lower = name.to_ascii_lowercase();
    let body = match lower.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        Some(_) => return Err(bad("a wildcard is not allowed here")),
        None => lower.as_str(),
    };
    if body.starts_with('.') {
        return Err(bad(
            "RFC 5280 DNS constraints have no leading dot: `example.com` already covers every name under it",
        ));
    }
    if body.is_empty() || body.len() > 253 {
        return Err(bad("empty or longer than 253 characters"));
    }
    for label in body.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad(&format!(
                "label \"{label}\" is not a valid hostname label"
            )));
        }
    }
    Ok(lower)
}

/// What a profile needs to know of the issuer.
pub enum IssuerRef<'a> {
    /// The certificate signs itself.
    SelfSigned,
    /// An issuing CA: its subject (copied as encoded) and subjectKeyIdentifier.
    Ca {
        /// The issuer's subject, used verbatim as this certificate's issuer.
        subject: &'a Name,
        /// The issuer's subjectKeyIdentifier, copied into authorityKeyIdentifier.
        key_id: &'a [u8],
    },
}

/// A profile bound to one certificate: subject, issuer and the extensions, computed up front.
pub(crate) struct BoundProfile {
    subject: Name,
    issuer: Option<Name>,
    extensions: Vec<Extension>,
}

impl BoundProfile {
    /// Computes the extensions of `profile` for a certificate on `spki` under `issuer`.
    pub(crate) fn new(
        profile: &Profile,
        subject: Name,
        spki: &SubjectPublicKeyInfoOwned,
        issuer: &IssuerRef<'_>,
    ) -> Result<Self> {
        let enc = |e: der::Error| X509Error::internal(format!("extension encoding: {e}"));
        let mut exts: Vec<Extension> = Vec::new();
        let mut push = |critical: bool, ext: std::result::Result<Extension, der::Error>| {
            ext.map(|mut e| {
                e.critical = critical;
                exts.push(e)
            })
        };
        let ski = SubjectKeyIdentifier::try_from(spki.owned_to_ref())
            .map_err(|e| X509Error::internal(format!("subject key identifier: {e}")))?;
        match profile {
            Profile::Root { path_len } | Profile::Intermediate { path_len, .. } => {
                let bc = BasicConstraints {
                    ca: true,
                    path_len_constraint: *path_len,
                };
                push(true, (true, &bc).to_extension(&subject, &[])).map_err(enc)?;
                let ku = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
                push(true, (true, &ku).to_extension(&subject, &[])).map_err(enc)?;
            }
            Profile::Leaf { usage, .. } => {
                let bc = BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                };
                push(true, (true, &bc).to_extension(&subject, &[])).map_err(enc)?;
                let mut flags = KeyUsages::DigitalSignature.into();
                if spki.algorithm.oid == RSA_ENCRYPTION {
                    flags |= KeyUsages::KeyEncipherment;
                }
                push(true, (true, &KeyUsage(flags)).to_extension(&subject, &[])).map_err(enc)?;
                let ekus = match usage {
                    LeafUsage::Server => vec![ID_KP_SERVER_AUTH],
                    LeafUsage::Client => vec![ID_KP_CLIENT_AUTH],
                    LeafUsage::ServerClient => vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH],
                };
                push(
                    false,
                    (false, &ExtendedKeyUsage(ekus)).to_extension(&subject, &[]),
                )
                .map_err(enc)?;
            }
        }
        push(false, (false, &ski).to_extension(&subject, &[])).map_err(enc)?;
        // A self-signed root names its own key: RFC 5280 allows it and the CA/Browser Forum
        // recommends it, and CRLs of the root then carry the same identifier.
        let (issuer_name, aki_id) = match issuer {
            IssuerRef::SelfSigned => (None, ski.0.as_bytes()),
            IssuerRef::Ca { subject: s, key_id } => (Some((*s).clone()), *key_id),
        };
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(aki_id).map_err(enc)?),
            ..Default::default()
        };
        push(false, (false, &aki).to_extension(&subject, &[])).map_err(enc)?;
        match profile {
            Profile::Leaf { sans, usage } => {
                if sans.is_empty() && *usage != LeafUsage::Client {
                    return Err(X509Error::refused(
                        "a server certificate needs at least one subjectAltName: clients ignore the CN",
                        "add --dns NAME and/or --ip ADDRESS",
                    ));
                }
                if !sans.is_empty() {
                    // An empty subject makes the SAN the only identity: then it must be critical.
                    let critical = subject.is_empty();
                    let san = SubjectAltName(general_names(sans).map_err(enc)?);
                    push(critical, (critical, &san).to_extension(&subject, &[])).map_err(enc)?;
                }
            }
            Profile::Intermediate {
                constraints: Some(c),
                ..
            } => {
                let nc = c.name_constraints()?;
                push(true, (true, &nc).to_extension(&subject, &[])).map_err(enc)?;
            }
            _ => {}
        }
        Ok(BoundProfile {
            subject,
            issuer: issuer_name,
            extensions: exts,
        })
    }
}

/// The subjectAltName entries of `sans`.
fn general_names(sans: &[San]) -> std::result::Result<Vec<GeneralName>, der::Error> {
    sans.iter()
        .map(|s| {
            Ok(match s {
                San::Dns(d) => GeneralName::DnsName(Ia5String::new(d)?),
                San::Ip(ip) => GeneralName::IpAddress(OctetString::new(ip_octets(*ip))?),
            })
        })
        .collect()
}

impl PermittedSubtrees {
    /// The nameConstraints extension value of these subtrees.
    fn name_constraints(&self) -> Result<NameConstraints> {
        let enc = |e: der::Error| X509Error::internal(format!("extension encoding: {e}"));
        if self.dns.is_empty() && self.ip.is_empty() {
            return Err(X509Error::refused(
                "name constraints were requested but none given",
                "add --permit-dns or --permit-ip, or leave constraints out",
            ));
        }
        let mut permitted = Vec::new();
        for d in &self.dns {
            permitted.push(GeneralSubtree {
                base: GeneralName::DnsName(Ia5String::new(d).map_err(enc)?),
                minimum: 0,
                maximum: None,
            });
        }
        for net in &self.ip {
            permitted.push(GeneralSubtree {
                base: GeneralName::IpAddress(
                    OctetString::new(net.constraint_octets()).map_err(enc)?,
                ),
                minimum: 0,
                maximum: None,
            });
        }
        // A CA constrained in one form only is excluded from the other entirely (the
        // CA/Browser Forum's technically constrained CA): otherwise every IP address,
        // or every DNS name, would stay permitted.
        self.check()?;
        let mut excluded = Vec::new();
        if self.ip.is_empty() {
            for everything in ["0.0.0.0/0", "::/0"] {
                let net: IpNet = everything.parse()?;
                excluded.push(GeneralSubtree {
                    base: GeneralName::IpAddress(
                        OctetString::new(net.constraint_octets()).map_err(enc)?,
                    ),
                    minimum: 0,
                    maximum: None,
                });
            }
        }
        if self.dns.is_empty() {
            excluded.push(GeneralSubtree {
                base: GeneralName::DnsName(Ia5String::new("").map_err(enc)?),
                minimum: 0,
                maximum: None,
            });
        }
        Ok(NameConstraints {
            permitted_subtrees: Some(permitted),
            excluded_subtrees: (!excluded.is_empty()).then_some(excluded),
        })
    }
}

/// Optional extensions of a CA certificate beyond what its profile always carries. The
/// default adds nothing, so certificates made without extras are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaExtras {
    /// cRLDistributionPoints: one fullName URI (http://), where relying parties fetch the CRL.
    pub crl_url: Option<String>,
    /// authorityInfoAccess caIssuers: one URI (http://) where the issuer's certificate is.
    pub ca_issuers_url: Option<String>,
    /// certificatePolicies: policy OIDs, without qualifiers.
    pub policies: Vec<ObjectIdentifier>,
    /// keyUsage digitalSignature besides keyCertSign and cRLSign (e.g. for OCSP responses).
    pub digital_signature: bool,
    /// subjectKeyIdentifier to keep instead of computing one: a cross-signed certificate keeps
    /// the original's, so certificates that name it in their authorityKeyIdentifier chain to both.
    pub subject_key_id: Option<Vec<u8>>,
}

impl CaExtras {
    /// Whether nothing is added.
    pub fn is_empty(&self) -> bool {
        self == &CaExtras::default()
    }
}

/// Checks a URL for a CRL distribution point or caIssuers entry: plain http (relying parties
/// fetch these without TLS, and https would need a chain to validate a chain), ASCII, a host.
pub fn check_http_url(url: &str) -> Result<()> {
    let bad = |why: &str| {
        X509Error::refused(
            format!("invalid URL \"{url}\": {why}"),
            "write a plain http URL such as http://pki.example.com/root.crl",
        )
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("it must start with http://"))?;
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("only printable ASCII without spaces is allowed"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    Ok(())
}

impl BoundProfile {
    /// Adds `extras` to a CA profile's extensions (keyUsage is extended in place, so there is
    /// still one instance of it). A root takes no CRL distribution point or caIssuers: it is
    /// its own issuer and appears on no CRL.
    pub(crate) fn with_extras(mut self, profile: &Profile, extras: &CaExtras) -> Result<Self> {
        if extras.is_empty() {
            return Ok(self);
        }
        let enc = |e: der::Error| X509Error::internal(format!("extension encoding: {e}"));
        match profile {
            Profile::Leaf { .. } => {
                return Err(X509Error::refused(
                    "CRL distribution point, caIssuers, policies and extra key usages are offered for CA certificates only",
                    "leave them out of leaf certificates",
                ));
            }
            Profile::Root { .. } if extras.subject_key_id.is_some() => {
                return Err(X509Error::refused(
                    "a root certificate's subjectKeyIdentifier is computed from its key",
                    "keep a subjectKeyIdentifier only when cross-signing another CA's certificate",
                ));
            }
            Profile::Root { .. } if extras.crl_url.is_some() || extras.ca_issuers_url.is_some() => {
                return Err(X509Error::refused(
                    "a root certificate carries no CRL distribution point or caIssuers URL",
                    "put crl_url and ca_issuers_url on the intermediates the root signs",
                ));
            }
            _ => {}
        }
        if extras.digital_signature {
            let ku =
                KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature);
            let ext = (true, &ku).to_extension(&self.subject, &[]).map_err(enc)?;
            let slot = self
                .extensions
                .iter_mut()
                .find(|e| e.extn_id == ext.extn_id)
                .ok_or_else(|| X509Error::internal("the CA profile has no keyUsage"))?;
            *slot = ext;
        }
        if let Some(id) = &extras.subject_key_id {
            if id.is_empty() {
                return Err(X509Error::refused(
                    "an empty subjectKeyIdentifier cannot be kept",
                    "cross-sign a certificate whose subjectKeyIdentifier has content",
                ));
            }
            let ski = SubjectKeyIdentifier(OctetString::new(id.as_slice()).map_err(enc)?);
            let ext = (false, &ski)
                .to_extension(&self.subject, &[])
                .map_err(enc)?;
            let slot = self
                .extensions
                .iter_mut()
                .find(|e| e.extn_id == ext.extn_id)
                .ok_or_else(|| X509Error::internal("the CA profile has no subjectKeyIdentifier"))?;
            *slot = ext;
        }
        if let Some(url) = &extras.crl_url {
            check_http_url(url)?;
            let uri = GeneralName::UniformResourceIdentifier(Ia5String::new(url).map_err(enc)?);
            let dps = CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri])),
                reasons: None,
                crl_issuer: None,
            }]);
            let ext = (false, &dps)
                .to_extension(&self.subject, &[])
                .map_err(enc)?;
            self.extensions.push(ext);
        }
        if let Some(url) = &extras.ca_issuers_url {
            check_http_url(url)?;
            let aia = AuthorityInfoAccessSyntax(vec![AccessDescription {
                access_method: ID_AD_CA_ISSUERS,
                access_location: GeneralName::UniformResourceIdentifier(
                    Ia5String::new(url).map_err(enc)?,
                ),
            }]);
            let ext = (false, &aia)
                .to_extension(&self.subject, &[])
                .map_err(enc)?;
            self.extensions.push(ext);
        }
        if !extras.policies.is_empty() {
            let mut seen = Vec::new();
            for p in &extras.policies {
                if seen.contains(p) {
                    return Err(X509Error::refused(
                        format!("policy {p} is listed twice"),
                        "list each certificate policy OID once",
                    ));
                }
                seen.push(*p);
            }
            let policies = CertificatePolicies(
                extras
                    .policies
                    .iter()
                    .map(|oid| PolicyInformation {
                        policy_identifier: *oid,
                        policy_qualifiers: None,
                    })
                    .collect(),
            );
            let ext = (false, &policies)
                .to_extension(&self.subject, &[])
                .map_err(enc)?;
            self.extensions.push(ext);
        }
        Ok(self)
    }
}

impl BuilderProfile for BoundProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_nets() {
        let n: IpNet = "10.32.0.0/16".parse().unwrap();
        assert_eq!(n.constraint_octets(), vec![10, 32, 0, 0, 255, 255, 0, 0]);
        assert!(n.contains("10.32.1.2".parse().unwrap()));
        assert!(!n.contains("10.33.0.1".parse().unwrap()));
        assert!("10.32.0.1/16".parse::<IpNet>().is_err());
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert_eq!(v6.constraint_octets().len(), 32);
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
    }

    #[test]
    fn dns_names() {
        assert_eq!(
            check_dns_name("Cluster-A.example.com", false).unwrap(),
            "cluster-a.example.com"
        );
        assert!(check_dns_name(".example.com", false).is_err());
        assert!(check_dns_name("*.example.com", false).is_err());
        assert!(check_dns_name("*.example.com", true).is_ok());
        assert!(check_dns_name("bad_label.com", false).is_err());
        assert!(check_dns_name("-a.com", false).is_err());
        assert!(check_dns_name("node-0", false).is_ok());
    }

    #[test]
    fn constraints_that_constrain_nothing_are_refused() {
        let dns = |d: &[&str]| PermittedSubtrees {
            dns: d.iter().map(|s| s.to_string()).collect(),
            ip: vec![],
        };
        let ip = |n: &str| PermittedSubtrees {
            dns: vec![],
            ip: vec![n.parse().unwrap()],
        };
        for ok in [
            "cluster-a.example.com",
            "example.com",
            "kubernetes",
            "node-0",
            "svc.cluster.local",
        ] {
            dns(&[ok]).check().unwrap();
        }
        for (bad, why) in [
            (dns(&["com"]), "DNS:com is a public suffix"),
            (dns(&["example.com", "net"]), "DNS:net"),
            (dns(&["co.uk"]), "DNS:co.uk"),
            (dns(&["github.io"]), "DNS:github.io"),
            (dns(&["KR"]), "DNS:KR"),
            (ip("0.0.0.0/0"), "every IPv4 address"),
            (ip("::/0"), "every IPv6 address"),
            (ip("::ffff:0:0/96"), "IPv4-mapped"),
            (ip("::/80"), "IPv4-mapped"),
        ] {
            let e = bad.check().unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        ip("10.0.0.0/8").check().unwrap();
        ip("fd00::/8").check().unwrap();
    }
}
