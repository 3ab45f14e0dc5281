//! The certificate layer: names, validity, serials, profiles, CSRs, signatures and inspection.
//! It knows the token only through [`signer::CaSigner`].

pub mod algorithm;
pub mod constraints;
pub mod crl;
pub mod csr;
pub mod decode;
pub(crate) mod ecdsa_sig;
mod ed25519_point;
pub mod error;
pub mod inspect;
pub mod issue;
pub mod lint;
pub mod name;
pub mod profile;
pub mod request;
pub mod serial;
pub mod signer;
pub mod soft_key;
pub mod validity;
pub mod verify;
pub mod weak_rsa;
