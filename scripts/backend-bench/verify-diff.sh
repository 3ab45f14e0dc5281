#!/usr/bin/env bash
# Usage: scripts/backend-bench/verify-diff.sh REV_A REV_B
#
# Whether two revisions of hsmca accept and refuse the same signatures: generates a corpus of
# edge cases (verify-diff/gen_corpus.py, python's cryptography from .venv-pkilint or python3),
# builds verify-diff/verify_corpus.rs as an example of each revision (exported with git archive,
# release, --locked) and prints the diff of their verdicts (key check and verify_signature's
# result, error kinds included). Exits 0 either way; the diff is the result.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/scripts/backend-bench/verify-diff"
OUT="${BENCH_TARGET:-$REPO/target/backend-bench}/verify-diff"
[ "$#" -eq 2 ] || {
    echo "usage: $0 REV_A REV_B" >&2
    exit 2
}
PY=python3
[ -x "$REPO/.venv-pkilint/bin/python" ] && PY="$REPO/.venv-pkilint/bin/python"
mkdir -p "$OUT"
"$PY" "$HERE/gen_corpus.py" >"$OUT/corpus.txt"
for rev in "$@"; do
    src="$OUT/src-$rev"
    rm -rf "$src"
    mkdir -p "$src"
    git -C "$REPO" archive "$rev" | tar -x -C "$src"
    mkdir -p "$src/examples"
    cp "$HERE/verify_corpus.rs" "$src/examples/"
    (cd "$src" && CARGO_TARGET_DIR="$OUT/target-$rev" cargo build --quiet --release --locked --example verify_corpus)
    "$OUT/target-$rev/release/examples/verify_corpus" "$OUT/corpus.txt" >"$OUT/verdicts-$rev.txt"
done
echo "$(wc -l <"$OUT/corpus.txt") cases; verdicts that differ ($1 < > $2):"
diff "$OUT/verdicts-$1.txt" "$OUT/verdicts-$2.txt" || true
