//! `cluster.toml`: the cluster's names and addresses, the same file on the cluster side and at
//! the root ceremony. Parsed strictly (unknown fields are errors) and validated into types.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result, read_file};
use crate::x509::profile::{IpNet, check_dns_name};

/// The file as written: every field is checked by [`ClusterFile::validate`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Cluster name: one DNS label (goes into the CA subjects and kubeconfigs).
    pub name: String,
    /// Cluster DNS domain, e.g. `cluster.local`.
    pub domain: String,
    /// Service CIDR; its first address is the `kubernetes` service IP.
    pub service_cidr: String,
    /// Pod CIDR (checked for overlaps; pods get no certificates from these CAs).
    #[serde(default)]
    pub pod_cidr: Option<String>,
    /// The range the node addresses come from.
    #[serde(default)]
    pub node_cidr: Option<String>,
    /// API server endpoint clients use: `host` or `host:port` (default port 6443).
    pub api_endpoint: String,
    /// Control-plane nodes (at least one).
    #[serde(default)]
    pub control_plane: Vec<NodeFile>,
    /// Worker nodes.
    #[serde(default)]
    pub worker: Vec<NodeFile>,
}

/// One node as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// Node name (its hostname, as the kubelet registers it).
    pub name: String,
    /// Primary (advertise) address.
    pub ip: String,
    /// Further addresses, e.g. an IPv6 one.
    #[serde(default)]
    pub extra_ips: Vec<String>,
}

/// A host: DNS name or IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name (lower case).
    Dns(String),
    /// An address.
    Ip(IpAddr),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Dns(d) => f.write_str(d),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The API server endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEndpoint {
    /// Host clients connect to.
    pub host: Host,
    /// Port.
    pub port: u16,
}

impl ApiEndpoint {
    /// `https://host:port`.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }
}

/// A validated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Node name (valid DNS name, lower case).
    pub name: String,
    /// Addresses; the first is the advertise address.
    pub ips: Vec<IpAddr>,
}

impl Node {
    /// The advertise address.
    pub fn advertise_ip(&self) -> IpAddr {
        self.ips[0]
    }
}

/// A validated cluster description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Cluster name (one DNS label).
    pub name: String,
    /// DNS domain.
    pub domain: String,
    /// Service range.
    pub service_cidr: IpNet,
    /// Pod range.
    pub pod_cidr: Option<IpNet>,
    /// Node range.
    pub node_cidr: Option<IpNet>,
    /// API endpoint.
    pub api: ApiEndpoint,
    /// Control-plane nodes (at least one).
    pub control_plane: Vec<Node>,
    /// Worker nodes.
    pub workers: Vec<Node>,
}

/// The longest node name: the kubelet's certificate subject is `CN=system:node:<name>`, and a
/// CN holds at most 64 characters (RFC 5280 ub-common-name).
const MAX_NODE_NAME: usize = 64 - "system:node:".len();

/// The longest cluster domain: the API server's certificate names
/// `kubernetes.default.svc.<domain>`, and a DNS name holds at most 253 characters.
const MAX_DOMAIN: usize = 253 - "kubernetes.default.svc.".len();

/// A cluster DNS domain: a DNS name short enough for `kubernetes.default.svc.<domain>`.
pub fn check_cluster_domain(domain: &str) -> Result<String> {
    let domain = check_dns_name(domain, false)?;
    if domain.len() > MAX_DOMAIN {
        return Err(Error::invalid(
            format!(
                "the cluster domain is longer than {MAX_DOMAIN} characters, so \
                 kubernetes.default.svc.<domain> would exceed a DNS name's 253"
            ),
            "use a shorter cluster domain (kubelet --cluster-domain; cluster.local by default)",
        ));
    }
    Ok(domain)
}

fn bad(what: impl Into<String>) -> Error {
    Error::invalid(
        format!("cluster file: {}", what.into()),
        "fix the cluster file (see examples/cluster.toml)",
    )
}

fn parse_ip(field: &str, s: &str) -> Result<IpAddr> {
    s.parse()
        .map_err(|_| bad(format!("{field} \"{s}\" is not an IP address")))
}

fn parse_net(field: &str, s: &str) -> Result<IpNet> {
    s.parse::<IpNet>().map_err(|e| bad(format!("{field}: {e}")))
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b.addr) || b.contains(a.addr)
}

/// Parses `host` or `host:port`, with IPv6 hosts in brackets.
fn parse_endpoint(s: &str) -> Result<ApiEndpoint> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| bad(format!("api_endpoint \"{s}\": unclosed '['")))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(p.strip_prefix(':').ok_or_else(|| {
                    bad(format!("api_endpoint \"{s}\": expected :port after ']'"))
                })?),
            ),
        }
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').unwrap_or((s, ""));
        (h, Some(p))
    } else {
        (s, None)
    };
    let port = match port {
        None => 6443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(format!("api_endpoint \"{s}\": bad port \"{p}\"")))?,
    };
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => {
            Host::Dns(check_dns_name(host, false).map_err(|e| bad(format!("api_endpoint: {e}")))?)
        }
    };
    Ok(ApiEndpoint { host, port })
}

impl ClusterFile {
    /// Checks every field and returns the typed cluster.
    pub fn validate(self) -> Result<Cluster> {
        let label_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !label_ok(&self.name) {
            return Err(bad(format!(
                "name \"{}\" must be one DNS label: lower-case letters, digits and '-'",
                self.name
            )));
        }
        let domain = check_cluster_domain(&self.domain).map_err(|e| bad(format!("domain: {e}")))?;
        let service_cidr = parse_net("service_cidr", &self.service_cidr)?;
        let host_bits = if service_cidr.addr.is_ipv4() { 32 } else { 128 } - service_cidr.prefix;
        if host_bits < 2 {
            return Err(bad(format!(
                "service_cidr {service_cidr} is too small to hold service addresses"
            )));
        }
        let pod_cidr = self
            .pod_cidr
            .as_deref()
            .map(|s| parse_net("pod_cidr", s))
            .transpose()?;
        let node_cidr = self
            .node_cidr
            .as_deref()
            .map(|s| parse_net("node_cidr", s))
            .transpose()?;
        let ranges: Vec<(&str, IpNet)> = [
            Some(("service_cidr", service_cidr)),
            pod_cidr.map(|n| ("pod_cidr", n)),
            node_cidr.map(|n| ("node_cidr", n)),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (i, (na, a)) in ranges.iter().enumerate() {
            for (nb, b) in &ranges[i + 1..] {
                if overlap(a, b) {
                    return Err(bad(format!("{na} {a} overlaps {nb} {b}")));
                }
            }
        }
        let api = parse_endpoint(&self.api_endpoint)?;
        if self.control_plane.is_empty() {
            return Err(bad(
                "no [[control_plane]] node: a cluster needs at least one",
            ));
        }
        let mut names = HashSet::new();
        let mut addrs = HashSet::new();
        let mut node = |n: NodeFile, kind: &str| -> Result<Node> {
            let name =
                check_dns_name(&n.name, false).map_err(|e| bad(format!("{kind} node: {e}")))?;
            if name.chars().count() > MAX_NODE_NAME {
                return Err(bad(format!(
                    "node name \"{name}\" is longer than {MAX_NODE_NAME} characters, so the \
                     kubelet's certificate subject CN=system:node:{name} would exceed 64"
                )));
            }
            if name == "localhost" || !names.insert(name.clone()) {
                return Err(bad(format!(
                    "node name \"{name}\" is used twice or reserved"
                )));
            }
            let mut ips = vec![parse_ip(&format!("node {name} ip"), &n.ip)?];
            for ip in &n.extra_ips {
                ips.push(parse_ip(&format!("node {name} extra_ips"), ip)?);
            }
            for ip in &ips {
                if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
                    return Err(bad(format!("node {name}: {ip} cannot be a node address")));
                }
                if service_cidr.contains(*ip) || pod_cidr.is_some_and(|p| p.contains(*ip)) {
                    return Err(bad(format!(
                        "node {name}: {ip} lies in the service or pod range"
                    )));
                }
                if !addrs.insert(*ip) {
                    return Err(bad(format!("node address {ip} is used twice")));
                }
            }
            Ok(Node { name, ips })
        };
        let control_plane = self
            .control_plane
            .into_iter()
            .map(|n| node(n, "control-plane"))
            .collect::<Result<Vec<_>>>()?;
        let workers = self
            .worker
            .into_iter()
            .map(|n| node(n, "worker"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Cluster {
            name: self.name,
            domain,
            service_cidr,
            pod_cidr,
            node_cidr,
            api,
            control_plane,
            workers,
        })
    }
}

impl Cluster {
    /// Parses and validates cluster.toml text.
    pub fn parse(text: &str) -> Result<Cluster> {
        let file: ClusterFile = toml::from_str(text).map_err(|e| {
            Error::invalid(
                format!("cluster file: {}", e.message()),
                "fix the cluster file (see examples/cluster.toml); unknown fields are errors",
            )
        })?;
        file.validate()
    }

    /// Reads, parses and validates a cluster file.
    pub fn load(path: &Path) -> Result<Cluster> {
        let bytes = read_file(path)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::invalid(
                format!("{} is not UTF-8 text", path.display()),
                "give the cluster.toml file",
            )
        })?;
        Self::parse(&text).map_err(|e| {
            let (cause, hint) = e.cause_and_hint();
            Error::invalid(
                format!("{}: {cause}", path.display()),
                hint.unwrap_or_default(),
            )
        })
    }

    /// The first address of the service range: the `kubernetes` service's ClusterIP.
    pub fn first_service_ip(&self) -> IpAddr {
        match self.service_cidr.addr {
            IpAddr::V4(v4) => IpAddr::from(u32::from(v4).wrapping_add(1).to_be_bytes()),
            IpAddr::V6(v6) => IpAddr::from(u128::from(v6).wrapping_add(1).to_be_bytes()),
        }
    }

    /// Every node, control plane first.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.control_plane.iter().chain(&self.workers)
    }

    /// The control-plane node named `name`, or the first one.
    pub fn control_plane_node(&self, name: Option<&str>) -> Result<&Node> {
        match name {
            None => Ok(&self.control_plane[0]),
            Some(n) => self
                .control_plane
                .iter()
                .find(|c| c.name == n)
                .ok_or_else(|| {
                    Error::invalid(
                        format!(
                            "\"{n}\" is not a control-plane node of cluster {}",
                            self.name
                        ),
                        format!(
                            "use one of: {}",
                            self.control_plane
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                }),
        }
    }

    /// `kubernetes.default.svc.<domain>`.
    pub fn service_fqdn(&self) -> String {
        format!("kubernetes.default.svc.{}", self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "prod-a"
domain = "cluster.local"
service_cidr = "10.96.0.0/12"
pod_cidr = "10.244.0.0/16"
node_cidr = "10.0.0.0/16"
api_endpoint = "prod-a.example.com:6443"

[[control_plane]]
name = "cp-0"
ip = "10.0.0.10"

[[worker]]
name = "node-0"
ip = "10.0.0.20"
extra_ips = ["fd00::20"]
"#;

    #[test]
    fn parses_the_example() {
        let c = Cluster::parse(GOOD).unwrap();
        assert_eq!(c.first_service_ip().to_string(), "10.96.0.1");
        assert_eq!(c.api.url(), "https://prod-a.example.com:6443");
        assert_eq!(c.workers[0].ips.len(), 2);
        assert_eq!(c.control_plane_node(None).unwrap().name, "cp-0");
        assert!(c.control_plane_node(Some("node-0")).is_err());
        let example = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/cluster.toml"
        ))
        .unwrap();
        Cluster::parse(&example).unwrap();
    }

    #[test]
    fn refuses_bad_files() {
        let cases = [
            (GOOD.replace("domain =", "dommain ="), "unknown field"),
            (GOOD.replace("extra_ips", "extra_ipz"), "unknown field"),
            (GOOD.replace("\"prod-a\"", "\"Prod A\""), "one DNS label"),
            (GOOD.replace("10.244.0.0/16", "10.96.0.0/16"), "overlaps"),
            (GOOD.replace("10.0.0.20", "10.0.0.10"), "used twice"),
            (GOOD.replace("\"node-0\"", "\"cp-0\""), "used twice"),
            (GOOD.replace("\"node-0\"", "\"node_0\""), "node_0"),
            (
                GOOD.replace("10.0.0.20", "10.96.0.9"),
                "service or pod range",
            ),
            (GOOD.replace(":6443\"", ":0\""), "bad port"),
            (GOOD.replace("10.96.0.0/12", "10.96.0.1/12"), "host bits"),
        ];
        for (text, want) in &cases {
            let e = Cluster::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "want {want:?} in {e}");
        }
        let no_cp = GOOD.replace(
            "[[control_plane]]\nname = \"cp-0\"\nip = \"10.0.0.10\"\n",
            "",
        );
        assert!(
            Cluster::parse(&no_cp)
                .unwrap_err()
                .to_string()
                .contains("control_plane")
        );
    }

    /// Fuzz finding (cluster_config): a 53-character node name passed the cluster file, then
    /// `k8s issue` refused its own plan (CN=system:node:<name> longer than 64 characters).
    #[test]
    fn refuses_node_names_too_long_for_a_kubelet_subject() {
        let text = "name = \"v6\"\ndomain = \"e\"\nservice_cidr = \"fd00:244::/56\"\n\
                    api_endpoint = \"[fd1::100]:43\"\n[[control_plane]]\n\
                    name = \"cp-0.example.orgna7YYYYYYYYYYYYYYYYYYYYYYYYYYYYYY77me\"\n\
                    ip = \"f::11\"\n";
        let e = Cluster::parse(text).unwrap_err().to_string();
        assert!(e.contains("longer than 52 characters"), "{e}");
        let longest = format!("{}.{}", "a".repeat(40), "b".repeat(11));
        assert_eq!(longest.len(), 52);
        let c = Cluster::parse(&GOOD.replace("\"node-0\"", &format!("\"{longest}\""))).unwrap();
        assert_eq!(c.workers[0].name, longest);
        let e = Cluster::parse(&GOOD.replace("\"node-0\"", &format!("\"{longest}b\"")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 52"), "{e}");
    }

    /// Found with the cluster_config fuzz target's SAN check: a domain over 230 characters passed
    /// the cluster file, then `k8s issue` refused the API server's SAN
    /// kubernetes.default.svc.<domain> (over 253).
    #[test]
    fn refuses_domains_too_long_for_the_service_name() {
        let label = "a".repeat(56);
        let longest = format!("{label}.{label}.{label}.{label}.kk"); // 230 characters
        assert_eq!(longest.len(), 230);
        let c =
            Cluster::parse(&GOOD.replace("\"cluster.local\"", &format!("\"{longest}\""))).unwrap();
        assert_eq!(c.service_fqdn().len(), 253);
        let e = Cluster::parse(&GOOD.replace("\"cluster.local\"", &format!("\"{longest}k\"")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 230 characters"), "{e}");
        // The same limit for `k8s sign --cluster-domain`, which feeds the name constraints.
        assert_eq!(check_cluster_domain(&longest).unwrap(), longest);
        assert!(check_cluster_domain(&format!("{longest}k")).is_err());
    }

    #[test]
    fn endpoints() {
        let e = parse_endpoint("10.0.0.1").unwrap();
        assert_eq!(e.url(), "https://10.0.0.1:6443");
        let e = parse_endpoint("[fd00::1]:443").unwrap();
        assert_eq!(e.url(), "https://[fd00::1]:443");
        assert!(parse_endpoint("bad_host:1").is_err());
    }
}
