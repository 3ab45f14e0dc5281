//! The closed sets of values the command line takes, as clap value enums: `--help` lists them
//! and the shell completes them. The library's own types, so nothing is parsed twice.

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::k8s::presets::Preset;
use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::profile::ProfileName;

impl ValueEnum for KeyAlgorithm {
    fn value_variants<'a>() -> &'a [Self] {
        &KeyAlgorithm::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

/// A key algorithm for Kubernetes: Ed25519 is accepted by the parser but not offered, so that
/// it is refused with the reason (kubeadm and the API server cannot use it).
#[derive(Debug, Clone, Copy)]
pub struct K8sAlgorithm(pub KeyAlgorithm);

impl ValueEnum for K8sAlgorithm {
    fn value_variants<'a>() -> &'a [Self] {
        // KeyAlgorithm's list, wrapped (arrays cannot be mapped in a const yet).
        const ALL: [K8sAlgorithm; KeyAlgorithm::ALL.len()] = {
            let mut all = [K8sAlgorithm(KeyAlgorithm::ALL[0]); KeyAlgorithm::ALL.len()];
            let mut i = 1;
            while i < all.len() {
                all[i] = K8sAlgorithm(KeyAlgorithm::ALL[i]);
                i += 1;
            }
            all
        };
        &ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let value = PossibleValue::new(self.0.name());
        Some(value.hide(self.0 == KeyAlgorithm::Ed25519))
    }
}

impl ValueEnum for ProfileName {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            ProfileName::Intermediate,
            ProfileName::Server,
            ProfileName::Client,
            ProfileName::ServerClient,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            ProfileName::Intermediate => PossibleValue::new("intermediate")
                .help("a CA below this one (--path-len, --permit-dns, --permit-ip)"),
            ProfileName::Server => PossibleValue::new("server").help("TLS server (serverAuth)"),
            ProfileName::Client => PossibleValue::new("client").help("TLS client (clientAuth)"),
            ProfileName::ServerClient => {
                PossibleValue::new("server-client").help("both (etcd peers, components)")
            }
        })
    }
}

impl ValueEnum for Preset {
    fn value_variants<'a>() -> &'a [Self] {
        &[Preset::Kubeadm, Preset::HardWay]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Preset::Kubeadm => {
                PossibleValue::new("kubeadm").help("kubeadm's set, signed by the three cluster CAs")
            }
            Preset::HardWay => PossibleValue::new("hard-way")
                .help("Kubernetes the Hard Way's set, signed by kubernetes-ca"),
        })
    }
}

/// The hash of an RSA signature, by its size in bits.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HashBits {
    /// SHA-256
    #[value(name = "256")]
    Sha256,
    /// SHA-384
    #[value(name = "384")]
    Sha384,
    /// SHA-512
    #[value(name = "512")]
    Sha512,
}

impl HashBits {
    /// The size in bits, as the signer takes it.
    pub fn bits(self) -> u16 {
        match self {
            HashBits::Sha256 => 256,
            HashBits::Sha384 => 384,
            HashBits::Sha512 => 512,
        }
    }
}

/// A revocation reason, by its RFC 5280 name (the names `revoke` records).
pub fn reason_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(crate::ca::REVOCATION_REASONS.iter().map(|(n, _)| *n))
}
