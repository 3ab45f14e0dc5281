//! The integration tests: one test binary (`it`; nextest calls it `hsmca::it`), one module per
//! theme, so that the shared harness in `common/` is compiled once rather than once per file.
//! A test's name is its module path: `cargo test faults::` or `cargo nextest run -E
//! 'test(/^faults::/)'` runs one theme.
//!
//! # Missing tools: skipped, saying what to install
//!
//! The tests drive real outside tools, which `scripts/install-deps.sh` installs (and
//! `scripts/test.sh` runs first). Where one is missing, plain `cargo test` reports the tests
//! that need it as ignored, with the reason and the fix (`test tokens::... ignored, SoftHSM2 is
//! not installed: run scripts/install-deps.sh (or apt-get install softhsm2)`), rather than
//! failing them on "No such file or directory"; nextest counts them as skipped. How:
//!
//! - The package's build script (`build.rs`) probes each gate: `softhsm2` (softhsm2-util and
//!   its module), `etcd`, `kubectl`, `tpm2_pkcs11` (swtpm, tpm2-abrmd, tpm2-pkcs11),
//!   `opencryptoki` and `root` (root with CAP_SYS_ADMIN: tmpfs mounts, `unshare -n`,
//!   openCryptoki's system-wide store). For each one missing it sets the cfg `hsmca_no_GATE`
//!   and prints a build warning naming what is missing. It looks where the tests look
//!   (`common/locate.rs` is compiled into it) and runs again when a system directory of
//!   programs changes, so installing a package brings its tests back at the next build.
//! - A test that needs gates is marked `#[test_needs(softhsm2, etcd)]` instead of `#[test]`
//!   (testgate/): `#[test]` plus `#[cfg_attr(hsmca_no_GATE, ignore = "reason and fix")]`.
//!   libtest has no way to skip a test at run time, and an ignore reason must be a literal,
//!   hence a build-time cfg and an attribute macro rather than a check inside the test.
//! - Every other outside program (openssl, certtool, pkcs11-tool, OpenSC's pkcs11-spy,
//!   pkilint) fails the test that runs it, with a message naming what to install
//!   (`common::install_hint`).
//!
//! `HSMCA_TEST_HIDE=softhsm2,etcd` (or `all`) at build time treats those gates as missing, to
//! see the skips on a machine that has everything. Under `HSMCA_REQUIRE_ALL_TOOLS=1` (set by
//! `scripts/test.sh`, so in CI) nothing may be skipped: [`no_test_is_skipped_for_a_missing_tool`]
//! fails, naming the missing gates.

mod common;

mod backup;
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

/// What build.rs found missing, one `GATE: what` line each (empty when nothing is).
const MISSING_TOOLS: &str = include_str!(concat!(env!("OUT_DIR"), "/missing-test-tools.txt"));

/// Where every tool is required (`HSMCA_REQUIRE_ALL_TOOLS=1`: CI), a test skipped for a missing
/// one is a failure, not a skip: this test fails, naming them. Elsewhere it only lists them.
#[test]
fn no_test_is_skipped_for_a_missing_tool() {
    let required = std::env::var("HSMCA_REQUIRE_ALL_TOOLS").is_ok_and(|v| v == "1");
    assert!(
        !required || MISSING_TOOLS.is_empty(),
        "HSMCA_REQUIRE_ALL_TOOLS=1, but the tests were built to skip the tests of these gates \
         (run scripts/install-deps.sh, then build again):\n{MISSING_TOOLS}"
    );
    if !MISSING_TOOLS.is_empty() {
        eprintln!(
            "tests skipped for missing tools (HSMCA_REQUIRE_ALL_TOOLS is not 1):\n{MISSING_TOOLS}"
        );
    }
}
