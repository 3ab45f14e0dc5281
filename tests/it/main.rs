//! The integration tests: one test binary (`it`; nextest calls it `hsmca::it`), one module per
//! theme, so that the shared harness in `common/` is compiled once rather than once per file.
//! A test's name is its module path: `cargo test faults::` or `cargo nextest run -E
//! 'test(/^faults::/)'` runs one theme.

mod common;

mod bad_input;
mod ca_dir;
mod ceremony;
mod faults;
mod harness;
mod k8s;
mod key_security;
mod pkcs11_audit;
mod policy;
mod records;
mod root_ca;
mod tokens;
