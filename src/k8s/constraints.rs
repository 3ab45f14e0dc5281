//! The name constraints of a cluster's CAs, derived from the cluster file: every name any
//! preset puts in a certificate for this cluster is permitted, and nothing much beyond.

use std::net::IpAddr;

use x509_cert::Certificate;

use super::cluster::{Cluster, Host};
use crate::error::Result;
use crate::x509::constraints::{check_sans_permitted, dns_within};
use crate::x509::profile::{IpNet, PermittedSubtrees, San};

/// Single-label names Kubernetes components use as SANs (Kubernetes the Hard Way).
pub const COMPONENT_NAMES: [&str; 3] = ["kube-proxy", "kube-scheduler", "kube-controller-manager"];

/// What `k8s sign` flags change: the domain and ranges replace the cluster file's, the extra
/// subtrees are added.
#[derive(Debug, Clone, Default)]
pub struct ConstraintOverrides {
    /// Replaces the cluster domain.
    pub domain: Option<String>,
    /// Replaces the service range.
    pub service_cidr: Option<IpNet>,
    /// Replaces the node range.
    pub node_cidr: Option<IpNet>,
    /// Further permitted DNS subtrees.
    pub extra_dns: Vec<String>,
    /// Further permitted IP ranges.
    pub extra_ip: Vec<IpNet>,
}

/// `kubernetes.default.svc` and the forms with each leading part of `domain` appended
/// (`kubernetes.default.svc.cluster` for `cluster.local`, as Kubernetes the Hard Way lists).
pub fn service_names(domain: &str) -> Vec<String> {
    let mut names = vec![
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ];
    let labels: Vec<&str> = domain.split('.').collect();
    for i in 1..=labels.len() {
        names.push(format!("kubernetes.default.svc.{}", labels[..i].join(".")));
    }
    names
}

fn host_net(ip: IpAddr) -> IpNet {
    IpNet {
        addr: ip,
        prefix: if ip.is_ipv4() { 32 } else { 128 },
    }
}

/// The permitted subtrees for the cluster's CAs (RFC 5280 DNS form, no leading dot).
pub fn derive(cluster: &Cluster, o: &ConstraintOverrides) -> PermittedSubtrees {
    let domain = o.domain.clone().unwrap_or_else(|| cluster.domain.clone());
    let mut dns: Vec<String> = vec![domain.clone(), "localhost".into()];
    dns.extend(service_names(&domain));
    dns.extend(COMPONENT_NAMES.iter().map(|s| s.to_string()));
    dns.extend(cluster.nodes().map(|n| n.name.clone()));
    let mut ip: Vec<IpNet> = vec![
        o.service_cidr.unwrap_or(cluster.service_cidr),
        host_net(IpAddr::from([127, 0, 0, 1])),
        host_net(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    if let Some(n) = o.node_cidr.or(cluster.node_cidr) {
        ip.push(n);
    }
    ip.extend(
        cluster
            .nodes()
            .flat_map(|n| n.ips.iter().copied().map(host_net)),
    );
    match &cluster.api.host {
        Host::Dns(d) => dns.push(d.clone()),
        Host::Ip(a) => ip.push(host_net(*a)),
    }
    dns.extend(o.extra_dns.iter().cloned());
    ip.extend(o.extra_ip.iter().copied());
    PermittedSubtrees {
        dns: minimal_dns(dns),
        ip: minimal_ip(ip),
    }
}

/// Drops duplicates and names already covered by another subtree, keeping the order.
fn minimal_dns(all: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, d) in all.iter().enumerate() {
        let covered = all
            .iter()
            .enumerate()
            .any(|(j, e)| j != i && dns_within(d, e) && (d != e || j < i));
        if !covered {
            out.push(d.clone());
        }
    }
    out
}

fn minimal_ip(all: Vec<IpNet>) -> Vec<IpNet> {
    let mut out: Vec<IpNet> = Vec::new();
    for (i, n) in all.iter().enumerate() {
        let covered = all.iter().enumerate().any(|(j, m)| {
            j != i && m.prefix <= n.prefix && m.contains(n.addr) && (m != n || j < i)
        });
        if !covered {
            out.push(*n);
        }
    }
    out
}

/// Checks that every SAN is permitted by the issuing cluster CA's name constraints, naming the
/// name and the constraint when one is not.
pub fn check_sans(issuer: &Certificate, sans: &[San]) -> Result<()> {
    Ok(check_sans_permitted(issuer, sans)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_from_the_example() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/cluster.toml"
        ))
        .unwrap();
        let c = Cluster::parse(&text).unwrap();
        let p = derive(&c, &ConstraintOverrides::default());
        for d in [
            "cluster.local",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster",
            "kube-proxy",
        ] {
            assert!(
                p.dns.contains(&d.to_string()),
                "{d} missing from {:?}",
                p.dns
            );
        }
        // Covered by cluster.local: not listed again.
        assert!(
            !p.dns
                .contains(&"kubernetes.default.svc.cluster.local".to_string())
        );
        assert!(p.dns.iter().all(|d| !d.starts_with('.')));
        let ips: Vec<String> = p.ip.iter().map(|n| n.to_string()).collect();
        assert!(ips.contains(&"127.0.0.1/32".to_string()), "{ips:?}");
        assert!(ips.contains(&"::1/128".to_string()), "{ips:?}");
        assert!(ips.contains(&c.service_cidr.to_string()), "{ips:?}");
        let o = ConstraintOverrides {
            domain: Some("prod-a.internal".into()),
            extra_dns: vec!["example.com".into()],
            ..Default::default()
        };
        let p = derive(&c, &o);
        assert!(p.dns.contains(&"prod-a.internal".to_string()));
        assert!(!p.dns.contains(&"cluster.local".to_string()));
        assert!(p.dns.contains(&"example.com".to_string()));
    }

    #[test]
    fn minimal_lists() {
        let d = minimal_dns(vec![
            "a.example.com".into(),
            "example.com".into(),
            "example.com".into(),
            "kubernetes".into(),
        ]);
        assert_eq!(d, vec!["example.com", "kubernetes"]);
        let i = minimal_ip(vec![
            "10.0.0.5/32".parse().unwrap(),
            "10.0.0.0/16".parse().unwrap(),
            "10.0.0.0/16".parse().unwrap(),
            "192.168.1.1/32".parse().unwrap(),
        ]);
        let i: Vec<String> = i.iter().map(|n| n.to_string()).collect();
        assert_eq!(i, vec!["10.0.0.0/16", "192.168.1.1/32"]);
    }
}
