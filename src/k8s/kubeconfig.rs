//! kubeconfig files: one cluster, one user, one context, with the CA certificate and the
//! client certificate and key embedded as base64 PEM (the `*-data` fields), written 0600.
//!
//! The YAML is written by hand: it is a fixed shape, and every string is emitted as a
//! double-quoted JSON string, which YAML reads as the same string.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::output::{Overwrite, write_atomic};

/// One kubeconfig.
pub struct Kubeconfig<'a> {
    /// Cluster name.
    pub cluster: &'a str,
    /// API server URL, `https://host:port`.
    pub server: &'a str,
    /// The CA certificate clients trust for the server (PEM).
    pub ca_pem: &'a str,
    /// User name (the client certificate's CN).
    pub user: &'a str,
    /// Client certificate (PEM).
    pub cert_pem: &'a str,
    /// Client private key (PEM).
    pub key_pem: &'a str,
}

fn quote(s: &str) -> Result<String> {
    serde_json::to_string(s).map_err(|e| Error::internal(format!("kubeconfig encoding: {e}")))
}

/// A base64 `*-data` field of a kubeconfig (`client-certificate-data`, ...), decoded: the
/// fields this file writes, and kubeadm's, each on one line.
pub fn embedded(text: &str, name: &str) -> Option<Zeroizing<Vec<u8>>> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
        .find_map(|v| B64.decode(v).ok().map(Zeroizing::new))
}

impl Kubeconfig<'_> {
    /// The YAML text (holds the private key: zeroized when dropped).
    pub fn to_yaml(&self) -> Result<Zeroizing<String>> {
        let context = format!("{}@{}", self.user, self.cluster);
        let key_b64 = Zeroizing::new(B64.encode(self.key_pem.as_bytes()));
        let mut y = Zeroizing::new(String::new());
        y.push_str("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n");
        y.push_str(&format!(
            "    certificate-authority-data: {}\n",
            B64.encode(self.ca_pem.as_bytes())
        ));
        y.push_str(&format!("    server: {}\n", quote(self.server)?));
        y.push_str(&format!("  name: {}\n", quote(self.cluster)?));
        y.push_str("contexts:\n- context:\n");
        y.push_str(&format!("    cluster: {}\n", quote(self.cluster)?));
        y.push_str(&format!("    user: {}\n", quote(self.user)?));
        y.push_str(&format!("  name: {}\n", quote(&context)?));
        y.push_str(&format!("current-context: {}\n", quote(&context)?));
        y.push_str("preferences: {}\nusers:\n");
        y.push_str(&format!("- name: {}\n  user:\n", quote(self.user)?));
        y.push_str(&format!(
            "    client-certificate-data: {}\n",
            B64.encode(self.cert_pem.as_bytes())
        ));
        y.push_str("    client-key-data: ");
        y.push_str(&key_b64);
        y.push('\n');
        Ok(y)
    }

    /// Writes the kubeconfig atomically, mode 0600.
    pub fn write(&self, path: &Path, ow: Overwrite) -> Result<()> {
        write_atomic(path, self.to_yaml()?.as_bytes(), 0o600, ow)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_string() {
        let k = Kubeconfig {
            cluster: "prod-a",
            server: "https://[fd00::1]:6443",
            ca_pem: "CA",
            user: "system:node:node-0",
            cert_pem: "CERT",
            key_pem: "KEY",
        };
        let y = k.to_yaml().unwrap();
        assert!(
            y.contains("    server: \"https://[fd00::1]:6443\"\n"),
            "{}",
            *y
        );
        assert!(y.contains("- name: \"system:node:node-0\"\n"), "{}", *y);
        assert!(y.contains("current-context: \"system:node:node-0@prod-a\"\n"));
        assert!(y.contains(&format!("client-key-data: {}\n", B64.encode("KEY"))));
    }
}
