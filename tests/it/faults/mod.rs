//! Faults: what a failing token, a vanished token store or a full disk do to a command.
//!
//! The token faults come from `faultmod/` (built here into `target/faultmod`, or named by
//! `HSMCA_TEST_FAULTMOD`), a PKCS#11 module that forwards every call to SoftHSM2 and fails the
//! N-th call of one function with a chosen CKR_ value, which SoftHSM2 itself cannot produce.
//! For key generation, root creation, signing and CRL issuance, a first run lists the calls the
//! command makes; then every one of them is failed, with each of `sweep::CODES`. After every run:
//! a clear error (exit 1, `error:` and `hint:`, no panic) or, for a failed clean-up call only,
//! success; no temporary file left; outputs only when the command succeeded (or when only the
//! final seal failed: then every output, recorded, and an error naming the seal); the audit log
//! verifies; no serial recorded twice; every recorded certificate exports.
//!
//! `HSMCA_FAULT_SWEEP=quick` sweeps every call for two codes and the first and last call for
//! the others (the default is the whole cross product).
//!
//! SIGKILL during a batch (issue 6): the same module, preloaded so that it also sees fsync,
//! stops the process at 20 exact points (token calls and the file steps of each certificate);
//! the test kills it there, checks what is left (exactly at the writer's fsyncs, within the
//! pipeline's range at the token's calls) and recovers (see `kill`).
//!
//! The files: `sandbox` (a private copy of a prepared token and CA directory, `hsmca` run on it
//! through the fault module, and what must hold after every run), `sweep` (single commands,
//! every call failed in turn), `storage` (the token store gone, a full file system), `kill`
//! (SIGKILL at exact points during a batch, a batch under token faults).

mod kill;
mod sandbox;
mod storage;
mod sweep;

use crate::common::*;
use std::process::Output;

const KEY_LABEL: &str = "root-2026";

// ------------------------------------------------------------------------------------------------
// Prepared states, and the assertions every theme uses
// ------------------------------------------------------------------------------------------------

fn key_uri() -> String {
    format!("pkcs11:token=Root%20CA;object={KEY_LABEL}")
}

/// A token with the CA key, generated with `--ca-dir ca` (so the log holds its record).
fn with_key() -> TestToken {
    let t = TestToken::new("Root CA");
    assert_ok(&t.run(in_ca_dir(
        "ca",
        key_generate_args("Root CA", KEY_LABEL, "ecdsa-p256"),
    )));
    t
}

/// The key, its root recorded in `ca/`, and an intermediate's CSR in `cluster/inter.csr`.
fn with_root() -> TestToken {
    let t = with_key();
    assert_ok(&t.run(in_ca_dir(
        "ca",
        root_create_args(&key_uri(), "20y", "root.crt"),
    )));
    t.inter_csr("Cluster A Int CA");
    t
}

fn sign_args(tag: &str) -> Vec<String> {
    let out = format!("inter-{tag}.crt");
    let chain = format!("chain-{tag}.pem");
    in_ca_dir(
        "ca",
        intermediate_args(&key_uri(), "cluster/inter.csr", "5y", &out)
            .with(&["--chain-out", &chain]),
    )
}

/// A root that issued an intermediate and revoked it (so the CRL lists something).
fn with_revocation() -> TestToken {
    let t = with_root();
    let out = assert_ok(&t.run(sign_args("prepared")));
    let serial = out
        .lines()
        .find_map(|l| l.strip_prefix("serial: "))
        .expect("serial line")
        .trim()
        .to_string();
    assert_ok(&t.run([
        "--ca-dir",
        "ca",
        "revoke",
        "--serial",
        &serial,
        "--reason",
        "keyCompromise",
    ]));
    t
}
/// `hsmca log verify` on `ca/` succeeds.
#[track_caller]
fn assert_log_verifies(t: &TestToken) {
    assert_ok(&t.run(["--ca-dir", "ca", "log", "verify"]));
}
/// Asserts a command stopped part-way the way the CLI contract says: exit code 3, stderr
/// starting with `error: `, saying what was done, and holding a `hint: ` line. Returns stderr.
#[track_caller]
fn assert_partial(out: &Output) -> String {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(3), "expected exit code 3\n{stderr}");
    assert!(error_first(&stderr), "{stderr}");
    assert_mentions(&stderr, &["stopped part-way: "]);
    assert!(stderr.lines().any(|l| l.starts_with("hint: ")), "{stderr}");
    stderr
}
