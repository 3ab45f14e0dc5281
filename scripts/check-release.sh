#!/usr/bin/env bash
# Usage: scripts/check-release.sh
#
# Checks that the release is reproducible and that its package works (scripts/test.sh runs it):
#   1. clones this repository's HEAD into two directories of different names and depths and
#      runs scripts/release.sh in each, the second as another user would: its own HOME and its
#      own CARGO_HOME (a copy of this one's registry) — the two binaries and the two packages
#      must be byte-identical;
#   2. unpacks the package into a scratch root (dpkg -x) and checks that its hsmca runs and
#      names the commit, that its man pages render, and that its bash completion loads and
#      completes a value enum.
# Needs the commit to be committed (release.sh refuses uncommitted changes).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMMIT="$(git -C "$REPO" rev-parse HEAD)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
say() { printf 'check-release: %s\n' "$*"; }
fail() { printf 'check-release: FAILED: %s\n' "$*" >&2; exit 1; }

A="$WORK/a/hsmca"
B="$WORK/second-user/src/elsewhere/hsmca-$COMMIT"
git clone -q "$REPO" "$A"
git clone -q "$REPO" "$B"
git -C "$A" checkout -q "$COMMIT"
git -C "$B" checkout -q "$COMMIT"

say "build 1 in $A"
"$A/scripts/release.sh" --out "$WORK/out-a" >"$WORK/build-a.log" 2>&1 || {
    tail -30 "$WORK/build-a.log"
    fail "release build 1"
}

CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
OTHER_HOME="$WORK/second-user/home"
mkdir -p "$OTHER_HOME/.cargo"
cp -a "$CARGO_HOME_DIR/registry" "$OTHER_HOME/.cargo/registry"
say "build 2 in $B (HOME=$OTHER_HOME)"
env HOME="$OTHER_HOME" CARGO_HOME="$OTHER_HOME/.cargo" \
    RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
    "$B/scripts/release.sh" --out "$WORK/out-b" >"$WORK/build-b.log" 2>&1 || {
    tail -30 "$WORK/build-b.log"
    fail "release build 2"
}

cat "$WORK/out-a/SHA256SUMS"
if ! cmp -s "$WORK/out-a/SHA256SUMS" "$WORK/out-b/SHA256SUMS"; then
    cat "$WORK/out-b/SHA256SUMS"
    fail "the two builds differ"
fi
say "reproducible: two builds of $COMMIT in two directories by two users are identical"

DEB="$(ls "$WORK"/out-a/hsmca_*.deb)"
ROOT="$WORK/root"
dpkg-deb -x "$DEB" "$ROOT"
dpkg-deb -f "$DEB" Depends | grep -q libc6 || fail "the package does not depend on libc6"
version="$("$ROOT/usr/bin/hsmca" --version)"
case "$version" in
*"$COMMIT"*) say "package: $version" ;;
*) fail "hsmca --version ($version) does not name $COMMIT" ;;
esac
pages="$(find "$ROOT/usr/share/man/man1" -name 'hsmca*.1.gz' | wc -l)"
[ "$pages" -ge 20 ] || fail "only $pages man pages"
MANWIDTH=80 man -l "$ROOT/usr/share/man/man1/hsmca-sign.1.gz" 2>/dev/null | grep -q -- '--profile' ||
    fail "man page hsmca-sign(1) does not render"
say "package: $pages man pages; hsmca-sign(1) renders"
for f in usr/share/doc/hsmca/README.md usr/share/doc/hsmca/copyright \
    usr/share/zsh/vendor-completions/_hsmca usr/share/fish/vendor_completions.d/hsmca.fish; do
    [ -s "$ROOT/$f" ] || fail "the package lacks $f"
done
completed="$(bash -c '
    source "$1/usr/share/bash-completion/completions/hsmca"
    complete -p hsmca >/dev/null || exit 1
    COMP_WORDS=(hsmca key generate --algorithm "")
    COMP_CWORD=4
    COMP_LINE="hsmca key generate --algorithm "
    COMP_POINT=${#COMP_LINE}
    _hsmca hsmca "" --algorithm
    printf "%s\n" "${COMPREPLY[@]}"
' _ "$ROOT")" || fail "the bash completion does not load"
echo "$completed" | grep -qx 'ecdsa-p384' || fail "bash completion of --algorithm gave: $completed"
say "package: bash completion loads and completes --algorithm ($(echo "$completed" | tr '\n' ' '))"
