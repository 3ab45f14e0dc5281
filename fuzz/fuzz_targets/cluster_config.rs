//! cluster.toml: `Cluster::parse` (TOML decoding and `ClusterFile::validate`), then everything
//! `k8s request|issue|sign` derive from a valid cluster without keys or files: the API URL, the
//! `kubernetes` service IP, both presets' certificate plans and the CAs' name constraints.
//! Must never panic, and a valid cluster must give plans whose subjects parse and whose every
//! SAN is a valid name the derived name constraints permit (else `k8s issue` would refuse its
//! own cluster).
//!
//! Left out: `Cluster::load`'s file read (a UTF-8 check in front of `parse`).
#![no_main]

use std::path::Path;

use hsmca::internals::k8s::Cluster;
use hsmca::internals::k8s::{ConstraintOverrides, derive};
use hsmca::internals::k8s::{Preset, plan};
use hsmca::internals::x509::dns_within;
use hsmca::internals::x509::parse_name;
use hsmca::internals::x509::{San, check_dns_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cluster = match Cluster::parse(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = cluster.api.url();
    let _ = cluster.service_fqdn();
    let first = cluster.first_service_ip();
    assert!(
        cluster.service_cidr.contains(first),
        "{first} outside {:?}",
        cluster.service_cidr
    );
    for n in cluster.nodes() {
        let _ = n.advertise_ip();
        assert_eq!(
            cluster.control_plane_node(Some(&n.name)).is_ok(),
            cluster.control_plane.contains(n)
        );
    }
    let permitted = derive(&cluster, &ConstraintOverrides::default());
    let (pki, out) = (Path::new("pki"), Path::new("out"));
    let mut plans = vec![plan(Preset::HardWay, &cluster, None, pki, out)];
    for cp in &cluster.control_plane {
        plans.push(plan(Preset::Kubeadm, &cluster, Some(&cp.name), pki, out));
    }
    plans.push(plan(Preset::Kubeadm, &cluster, None, pki, out));
    for specs in plans {
        let specs = specs.unwrap_or_else(|e| panic!("no plan for a valid cluster: {e}"));
        for s in &specs {
            parse_name(&s.subject).unwrap_or_else(|e| {
                panic!("{}: subject {:?} does not parse: {e}", s.label, s.subject)
            });
            for san in &s.sans {
                if let San::Dns(d) = san {
                    check_dns_name(d, false)
                        .unwrap_or_else(|e| panic!("{}: SAN {d:?} is not valid: {e}", s.label));
                }
                let ok = match san {
                    San::Dns(d) => permitted.dns.iter().any(|c| dns_within(d, c)),
                    San::Ip(ip) => permitted.ip.iter().any(|n| n.contains(*ip)),
                };
                assert!(ok, "{}: {san:?} not within {permitted:?}", s.label);
            }
        }
    }
});
