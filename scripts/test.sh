#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run): installs what the tests need, then checks
# formatting, lints, builds every target and runs every test. Exits non-zero on any failure.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

step() { printf '\n==> %s\n' "$*"; }

step "install dependencies"
bash scripts/install-deps.sh

# The integration tests find pkilint here (tests/common/mod.rs).
export HSMCA_PKILINT="$REPO/.venv-pkilint/bin"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo build --all-targets"
cargo build --all-targets

if cargo nextest --version >/dev/null 2>&1; then
    # nextest runs each test in its own process; it does not run doctests, so those go first
    # (nextest's summary stays the last word).
    if [ -f src/lib.rs ]; then
        step "cargo test --doc"
        cargo test --doc
    fi
    step "cargo nextest run"
    cargo nextest run --no-fail-fast
else
    step "cargo test"
    cargo test --no-fail-fast
fi
