#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run): installs what the tests need, then checks
# formatting, lints, builds every target, runs every test, and checks that the release build is
# reproducible and its package works (scripts/check-release.sh). Exits non-zero on any failure.
# At the end it prints how long each step and the whole run took on this machine (CI has 90
# minutes on 2 cores), then the test counts as its last line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

STARTED=$SECONDS
TIMES=()
step_name=""
step_start=$SECONDS
step() {
    [ -n "$step_name" ] && TIMES+=("$(printf '%6ss  %s' $((SECONDS - step_start)) "$step_name")")
    step_name="$*"
    step_start=$SECONDS
    printf '\n==> %s\n' "$*"
}

SUMMARY="$(mktemp)"
finish() {
    local rc=$?
    [ -n "$step_name" ] && TIMES+=("$(printf '%6ss  %s' $((SECONDS - step_start)) "$step_name")")
    printf '\n==> wall time on %s cores\n' "$(nproc)"
    printf '%s\n' "${TIMES[@]}"
    printf '%6ss  in all (exit %s)\n' $((SECONDS - STARTED)) "$rc"
    # The runner's counts stay the last line ("N passed, N failed"), for whoever reads it.
    local counts
    counts="$(sed -n 's/.*Summary \[.*\] *[0-9]* tests\{0,1\} run: //p' "$SUMMARY" | tail -1 |
        sed 's/ ([^)]*)//g')"
    if [ -n "$counts" ]; then
        case "$counts" in *failed*) ;; *) counts="${counts/ passed/ passed, 0 failed}" ;; esac
        printf 'tests: %s\n' "$counts"
    fi
    rm -f "$SUMMARY"
}
trap finish EXIT

step "install dependencies"
bash scripts/install-deps.sh

# The integration tests find pkilint here (tests/it/common/mod.rs).
export HSMCA_PKILINT="$REPO/.venv-pkilint/bin"
# Everything is installed above, so no test may be skipped for a missing tool: under this, one
# that would be makes the run fail (tests/it/main.rs, no_test_is_skipped_for_a_missing_tool).
export HSMCA_REQUIRE_ALL_TOOLS=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "no import circles between source files (scripts/check-imports.py)"
python3 scripts/check-imports.py src

step "cargo build --all-targets"
cargo build --all-targets

if cargo nextest --version >/dev/null 2>&1; then
    # nextest runs each test in its own process; it does not run doctests, so those go first.
    if [ -f src/lib.rs ]; then
        step "cargo test --doc"
        cargo test --doc
    fi
    step "cargo nextest run"
    cargo nextest run --no-fail-fast 2>&1 | tee "$SUMMARY"
else
    step "cargo test"
    cargo test --no-fail-fast
fi

# Two release builds of HEAD (in two directories, as two users) must be byte-identical, and
# the Debian package must unpack and work. It builds what git holds at HEAD, not the working
# tree. HSMCA_SKIP_RELEASE_CHECK=1 skips it for a quick local run (CI never sets it).
if [ "${HSMCA_SKIP_RELEASE_CHECK:-0}" != 1 ]; then
    step "reproducible release and package (scripts/check-release.sh)"
    bash scripts/check-release.sh
fi
