#!/usr/bin/env bash
# Usage: scripts/backend-bench/run.sh [--no-builds] [--hsmca REV...] [ROUNDS]
#
# The figures of BENCHMARKS.md's "Host crypto backend (issue 15)":
#   - for each candidate backend (aws-lc, ring, rustcrypto): a clean release build and a clean
#     dev build of this bench crate with that backend alone (wall time, -j of the machine),
#     whether the build compiles C (the `cc` crate in its build graph), the stripped release
#     binary's size, then the bench itself: median µs of a verification per algorithm (key
#     parsed from its SubjectPublicKeyInfo bytes each time, as hsmca does), of generating a
#     throwaway key per key type, and of one signature (ROUNDS verifications, default 2000);
#   - with --hsmca REV...: a clean release and a clean dev build of hsmca at each git revision
#     (exported with `git archive`, built with --locked in a fresh target directory), and the
#     size of its stripped release binary (the release profile strips).
# --no-builds skips the clean builds of the bench crate (only builds what is missing and runs).
#
# Clean builds take minutes each on a 2-core machine; everything goes under
# ${BENCH_TARGET:-target/backend-bench} (removed and rebuilt per measured build).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="$REPO/scripts/backend-bench"
OUT="${BENCH_TARGET:-$REPO/target/backend-bench}"
BUILDS=1
REVS=()
ROUNDS=2000
while [ "$#" -gt 0 ]; do
    case "$1" in
    --no-builds) BUILDS=0 ;;
    --hsmca)
        shift
        while [ "$#" -gt 0 ] && [[ "$1" != --* ]] && ! [[ "$1" =~ ^[0-9]+$ ]]; do
            REVS+=("$1")
            shift
        done
        continue
        ;;
    [0-9]*) ROUNDS="$1" ;;
    *)
        echo "usage: $0 [--no-builds] [--hsmca REV...] [ROUNDS]" >&2
        exit 2
        ;;
    esac
    shift
done
mkdir -p "$OUT"

say() { printf 'backend-bench: %s\n' "$*" >&2; }
secs() { local t0=$1; echo "$(($(date +%s) - t0))"; }

# Times a clean `cargo build $*` in target directory $dir, printing the seconds.
clean_build() {
    local dir=$1
    shift
    rm -rf "$dir"
    local t0
    t0=$(date +%s)
    CARGO_TARGET_DIR="$dir" cargo build --quiet --locked "$@" >&2
    secs "$t0"
}

echo "# Host crypto backends: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rustc: $(rustc --version); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo
echo "| backend | clean release build (s) | clean dev build (s) | compiles C | stripped binary (KiB) |"
echo "|---|---:|---:|---|---:|"
for backend in aws-lc ring rustcrypto; do
    dir="$OUT/$backend"
    args=(--manifest-path "$BENCH/Cargo.toml" --no-default-features --features "$backend")
    if [ "$BUILDS" -eq 1 ]; then
        say "clean builds with $backend"
        dev=$(clean_build "$dir-dev" "${args[@]}")
        release=$(clean_build "$dir" --release "${args[@]}")
    else
        CARGO_TARGET_DIR="$dir" cargo build --quiet --locked --release "${args[@]}" >&2
        dev="–"
        release="–"
    fi
    c="no"
    if cargo tree --locked "${args[@]}" -e build -i cc >/dev/null 2>&1; then
        c="yes (cc)"
    fi
    size=$(($(stat -c %s "$dir/release/hsmca-backend-bench") / 1024))
    echo "| $backend | $release | $dev | $c | $size |"
done
echo
for backend in aws-lc ring rustcrypto; do
    say "measuring $backend"
    "$OUT/$backend/release/hsmca-backend-bench" "$ROUNDS"
    echo
done

if [ "${#REVS[@]}" -gt 0 ]; then
    echo "| hsmca at | clean release build (s) | clean dev build (s) | stripped release binary (KiB) |"
    echo "|---|---:|---:|---:|"
    for rev in "${REVS[@]}"; do
        src="$OUT/src-$rev"
        rm -rf "$src"
        mkdir -p "$src"
        git -C "$REPO" archive "$rev" | tar -x -C "$src"
        say "clean builds of hsmca at $rev"
        dev=$(cd "$src" && clean_build "$OUT/hsmca-$rev-dev" --bin hsmca)
        release=$(cd "$src" && clean_build "$OUT/hsmca-$rev" --release --bin hsmca)
        size=$(($(stat -c %s "$OUT/hsmca-$rev/release/hsmca") / 1024))
        echo "| $rev ($(git -C "$REPO" log -1 --format=%s "$rev" | cut -c1-50)) | $release | $dev | $size |"
    done
fi
