//! hsmca: an offline root certificate authority whose private key lives in a PKCS#11 token.
//!
//! Layers: `token` speaks PKCS#11 and knows nothing of X.509; `x509` builds and checks
//! certificates and knows a signing key only through its `CaSigner` trait; `ca` is the one
//! bridge between the two and owns the issuance path; `k8s` and `ceremony` build on `ca`;
//! `cli` parses arguments and calls them. All of it is private: the binary calls [`main`], and
//! [`internals`] opens what the fuzz targets, integration tests and benchmarks reach.

#![forbid(unsafe_code)]

mod ca;
mod ceremony;
mod cli;
mod error;
mod k8s;
mod notice;
mod output;
mod token;
mod x509;

pub use cli::main;

/// The version and the commit it was built from (build.rs): `--version` and transcripts.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HSMCA_COMMIT"),
    ")"
);

/// What the fuzz targets (`fuzz/`), the integration tests and the benchmarks call: the
/// readers of every input hsmca accepts and the host-side keys and checks. Not a stable API.
pub mod internals {
    /// The CA directory's audit log and its records.
    pub mod audit {
        pub use crate::ca::audit::{AuditLog, Event, IssuedCert, Record, sha256_hex};
    }
    /// The CA directory and the request checks that precede every signature.
    pub mod ca {
        pub use crate::ca::store::{Access, CaDir, Reading};
        pub use crate::ca::{CaKeys, CheckedCsr};
    }
    /// Ceremony files.
    pub mod ceremony {
        pub use crate::ceremony::config::{Step, normal_step, parse, step_outputs};
    }
    /// Cluster files, presets and derived name constraints.
    pub mod k8s {
        pub use crate::k8s::cluster::Cluster;
        pub use crate::k8s::constraints::{ConstraintOverrides, derive};
        pub use crate::k8s::presets::{Preset, plan};
    }
    /// PKCS#11 URIs.
    pub mod token {
        pub use crate::token::Pkcs11Uri;
    }
    /// Certificates, requests, names, validity periods, keys and signatures.
    pub mod x509 {
        pub use crate::x509::algorithm::KeyAlgorithm;
        pub use crate::x509::constraints::dns_within;
        pub use crate::x509::csr::Csr;
        pub use crate::x509::decode::{
            load_certificate, load_certificates, load_certificates_with_der,
        };
        pub use crate::x509::inspect::describe;
        pub use crate::x509::issue::issuer_facts;
        pub use crate::x509::name::parse_name;
        pub use crate::x509::profile::{San, check_dns_name};
        pub use crate::x509::signer::CaSigner;
        pub use crate::x509::soft_key::SoftKey;
        pub use crate::x509::validity::{Lifetime, ValidityPeriod, parse_time};
        pub use crate::x509::verify::verify_signature;
    }
}
