#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), one after the other:
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Seeds come from fuzz/corpus/TARGET (committed, small, made from real outputs, no private keys);
# what libFuzzer finds on top goes to target/fuzz-corpus/TARGET (not committed). A crash stops
# the script with libFuzzer's report; its input is in fuzz/artifacts/TARGET/: turn it into a
# regression #[test] in the module of the parser.
#
# cargo-fuzz needs nightly flags (-Zsanitizer); on a stable toolchain RUSTC_BOOTSTRAP=1 enables
# them. FUZZ_NICE (default 10) is the niceness the fuzzers run at, so builds beside them keep
# their CPU.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO/fuzz"

SECONDS_EACH="${1:-60}"
shift || true
NICE="${FUZZ_NICE:-10}"

say() { printf 'fuzz: %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

# Nightly toolchains need nothing; stable ones accept the -Z flags with RUSTC_BOOTSTRAP=1.
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

say "building ${targets[*]}"
cargo fuzz build

for t in "${targets[@]}"; do
    work="$REPO/target/fuzz-corpus/$t"
    mkdir -p "$work"
    say "$t for ${SECONDS_EACH}s (corpus $work + fuzz/corpus/$t)"
    nice -n "$NICE" cargo fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" \
        -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
done
say "every target ran ${SECONDS_EACH}s without a crash"
