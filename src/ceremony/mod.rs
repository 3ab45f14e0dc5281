//! Declarative key ceremonies: a TOML file names the token, the CA key, the operator and
//! witnesses and an ordered list of steps; `plan` checks everything and prints what a witness
//! reads, `run` performs the steps with confirmations and writes a signed transcript, and
//! `verify` checks a transcript against the files and the audit log.
//!
//! A step counts as done when its outputs exist and match the audit log's records (keys: the
//! token's public key matches the recorded SPKI); a run resumes at the first step not done.

pub mod config;
pub mod plan;
pub mod run;
pub mod transcript;
