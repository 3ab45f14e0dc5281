#!/usr/bin/env bash
# scripts/soak.sh N: runs the whole test suite N times in a row on the current checkout (one
# build, then N `cargo nextest run`s) and prints every failure with its test name, so that a
# test that fails by chance shows up before it blocks a landing. Exits 1 if any run failed.
#
#   scripts/soak.sh 20            # 20 runs; each run's output is kept in target/soak/run-K.log
#   SOAK_FILTER='test(/^faults::/)' scripts/soak.sh 50    # a nextest filter expression
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

N="${1:-}"
case "$N" in
'' | *[!0-9]* | 0)
    echo "usage: scripts/soak.sh N   (N runs of the whole suite, N >= 1)" >&2
    exit 2
    ;;
esac

bash scripts/install-deps.sh >/dev/null
export HSMCA_PKILINT="$REPO/.venv-pkilint/bin"
export HSMCA_REQUIRE_ALL_TOOLS=1  # as scripts/test.sh: a test skipped for a missing tool fails
export CARGO_TERM_COLOR=never
cargo build --all-targets --quiet
cargo nextest list >/dev/null  # builds the test binaries nextest runs

LOGS="$REPO/target/soak"
rm -rf "$LOGS"
mkdir -p "$LOGS"
FILTER=()
[ -n "${SOAK_FILTER:-}" ] && FILTER=(-E "$SOAK_FILTER")

failed_runs=0
: >"$LOGS/failures.txt"
started=$SECONDS
for k in $(seq 1 "$N"); do
    log="$LOGS/run-$k.log"
    t0=$SECONDS
    rc=0
    cargo nextest run --no-fail-fast "${FILTER[@]}" >"$log" 2>&1 || rc=$?
    summary="$(grep -E '^ *Summary \[' "$log" | tail -1 | sed 's/^ *//')"
    printf 'run %d/%d: exit %d in %ds  %s\n' "$k" "$N" "$rc" $((SECONDS - t0)) "${summary:-(no summary: see $log)}"
    if [ "$rc" -ne 0 ]; then
        failed_runs=$((failed_runs + 1))
        # nextest's result lines: "        FAIL [   1.234s] (3/176) hsmca::it faults::sweep::name"
        fails="$(grep -E '^ *(FAIL|TIMEOUT|SIGSEGV|SIGABRT|SIGKILL|ABORT) \[' "$log" |
            sed -E 's/^ *([A-Z]+) \[[^]]*\] (\([0-9/]+\) )?/\1 /' | sort -u)"
        [ -n "$fails" ] || fails="(no test named: the run itself failed, see $log)"
        while IFS= read -r f; do
            printf '    %s\n' "$f"
            printf 'run %d: %s\n' "$k" "$f" >>"$LOGS/failures.txt"
        done <<<"$fails"
    fi
done

printf '\nsoak: %d run(s) in %ds, %d failed\n' "$N" $((SECONDS - started)) "$failed_runs"
if [ "$failed_runs" -gt 0 ]; then
    echo "failures by test:"
    sed -E 's/^run [0-9]+: //' "$LOGS/failures.txt" | sort | uniq -c | sort -rn
    echo "logs: $LOGS"
    exit 1
fi
