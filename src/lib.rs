//! hsmca: an offline root certificate authority whose private key lives in a PKCS#11 token.
//!
//! Layers: [`token`] speaks PKCS#11 and knows nothing of X.509; [`x509`] builds and checks
//! certificates and knows the token only through [`x509::signer::CaSigner`]; [`cli`] parses
//! arguments and calls the other two.

#![forbid(unsafe_code)]

pub mod ca;
pub mod ceremony;
pub mod cli;
pub mod error;
pub mod k8s;
pub mod notice;
pub mod output;
pub mod token;
pub mod x509;
