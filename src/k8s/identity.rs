//! What Kubernetes reads from a certificate (issue 18): a client certificate's CN is the user
//! and its O values the groups; its extended key usage says whether it serves, connects, or
//! both; a serving certificate is known by its DNS and IP names. `inspect` and `k8s check`
//! show it in one shape.

use serde::Serialize;
use x509_cert::Certificate;

use crate::x509::name::{common_names, organizations};
use crate::x509::profile::{San, subject_alt_names, tls_usage};

/// A certificate as the API server, a kubelet or etcd sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// `ca`, `serving`, `client`, `serving and client`, or `none`.
    pub usage: &'static str,
    /// The user a client certificate authenticates as (its CN).
    pub user: Option<String>,
    /// The groups it is in (its O values).
    pub groups: Vec<String>,
    /// The DNS names it serves.
    pub dns: Vec<String>,
    /// The IP addresses it serves.
    pub ip: Vec<String>,
    /// What the names Kubernetes gives meaning to grant.
    pub notes: Vec<String>,
}

/// What Kubernetes makes of `cert`.
pub fn identity(cert: &Certificate) -> Identity {
    let tbs = cert.tbs_certificate();
    let is_ca = tbs
        .get_extension::<x509_cert::ext::pkix::BasicConstraints>()
        .ok()
        .flatten()
        .is_some_and(|(_, bc)| bc.ca);
    let (server, client) = tls_usage(cert);
    let usage = match (is_ca, server, client) {
        (true, _, _) => "ca",
        (false, true, true) => "serving and client",
        (false, true, false) => "serving",
        (false, false, true) => "client",
        (false, false, false) => "none",
    };
    let mut id = Identity {
        usage,
        user: None,
        groups: Vec::new(),
        dns: Vec::new(),
        ip: Vec::new(),
        notes: Vec::new(),
    };
    if is_ca {
        id.notes
            .push("a CA: Kubernetes trusts what it signs, it authenticates no one itself".into());
        return id;
    }
    if client {
        id.user = common_names(tbs.subject()).into_iter().next();
        id.groups = organizations(tbs.subject());
        id.notes = notes(id.user.as_deref(), &id.groups);
    }
    if server {
        for san in subject_alt_names(cert) {
            match san {
                San::Dns(d) => id.dns.push(d),
                San::Ip(ip) => id.ip.push(ip.to_string()),
            }
        }
    }
    id
}

/// The meaning of the users and groups Kubernetes and kubeadm define.
fn notes(user: Option<&str>, groups: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    for g in groups {
        let note = match g.as_str() {
            "system:masters" => {
                "group system:masters: unrestricted cluster-admin that no RBAC binding can take away (kubeadm's super-admin.conf only)".to_string()
            }
            "kubeadm:cluster-admins" => {
                "group kubeadm:cluster-admins: cluster-admin through the ClusterRoleBinding kubeadm creates (admin.conf, the API server's kubelet client)".to_string()
            }
            "system:nodes" => match user.and_then(|u| u.strip_prefix("system:node:")) {
                Some(node) => format!(
                    "group system:nodes with user system:node:{node}: the kubelet of node {node}, limited by the Node authorizer to that node's objects"
                ),
                None => "group system:nodes without a system:node:<name> user: the Node authorizer grants it nothing".to_string(),
            },
            "system:node-proxier" => "group system:node-proxier: kube-proxy's role (services, endpoints, nodes)".to_string(),
            "system:kube-scheduler" => "group system:kube-scheduler: the scheduler's role".to_string(),
            "system:kube-controller-manager" => {
                "group system:kube-controller-manager: the controller manager's role".to_string()
            }
            "system:authenticated" | "system:unauthenticated" | "system:serviceaccounts" => {
                format!("group {g}: set by the API server itself; a certificate naming it gains nothing more")
            }
            _ => continue,
        };
        notes.push(note);
    }
    match user {
        Some("system:kube-scheduler") => notes.push("user system:kube-scheduler: the scheduler (role system:kube-scheduler)".into()),
        Some("system:kube-controller-manager") => notes.push(
            "user system:kube-controller-manager: the controller manager (role system:kube-controller-manager)".into(),
        ),
        Some("system:kube-proxy") => notes.push("user system:kube-proxy: kube-proxy (role system:node-proxier)".into()),
        Some(u) if u.starts_with("system:node:") && !groups.iter().any(|g| g == "system:nodes") => {
            notes.push(format!("user {u} without group system:nodes: the Node authorizer ignores it"))
        }
        Some(u) if u.starts_with("system:serviceaccount:") => notes.push(format!(
            "user {u}: a service account's name, normally given by a token; as a certificate it gets that account's permissions"
        )),
        _ => {}
    }
    notes
}

impl Identity {
    /// The identity as indented lines (`inspect`, `k8s check`).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("usage: {}", self.usage)];
        if let Some(u) = &self.user {
            out.push(format!("user: {u}"));
        }
        if !self.groups.is_empty() {
            out.push(format!("groups: {}", self.groups.join(", ")));
        }
        if !self.dns.is_empty() {
            out.push(format!("dns: {}", self.dns.join(", ")));
        }
        if !self.ip.is_empty() {
            out.push(format!("ip: {}", self.ip.join(", ")));
        }
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out
    }
}
