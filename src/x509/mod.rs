//! The certificate layer: names, validity, serials, profiles, CSRs, signatures and inspection.

pub mod csr;
pub mod inspect;
pub mod verify;
