#!/usr/bin/env bash
# Usage: scripts/release.sh [--out DIR] [--allow-dirty]
#
# Builds hsmca's release from this checkout, reproducibly: two builds of the same commit, in
# any two directories and by any two users, give the same bytes. Writes into DIR (default
# dist/):
#   hsmca                      the binary (stripped; --version names the commit)
#   hsmca_<version>_<arch>.deb the Debian package: binary, man pages, bash/zsh/fish completions,
#                              README, LICENSE (depends only on libc; recommends softhsm2)
#   SHA256SUMS                 both hashes
#   BUILDINFO                  the commit and the toolchain (rustc, cargo) it was built with
# A witness recomputes the ceremony transcript's tool-sha256 by running this script on a clone
# of the commit that `hsmca --version` names, with the rustc BUILDINFO names, and comparing
# dist/hsmca's SHA-256. An offline build from vendored sources (README) gives the same bytes.
#
# What makes it reproducible: cargo build --locked; build paths (this checkout, CARGO_HOME,
# the toolchain) remapped in rustc's and the C compiler's output; no debug info or symbols;
# the package's file times set to the commit's time (SOURCE_DATE_EPOCH) and its owners to root.
# Refuses a checkout with uncommitted changes unless --allow-dirty (then the hash is not
# reproducible from any commit, and --version says "-dirty").
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUT="$REPO/dist"
ALLOW_DIRTY=0
while [ $# -gt 0 ]; do
    case "$1" in
    --out) OUT="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --allow-dirty) ALLOW_DIRTY=1; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "release: unknown argument $1 (see $0 --help)" >&2; exit 2 ;;
    esac
done

COMMIT="$(git rev-parse HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    if [ "$ALLOW_DIRTY" -ne 1 ]; then
        echo "release: the checkout has uncommitted changes; commit them (or pass --allow-dirty for a build no one can reproduce)" >&2
        exit 1
    fi
    COMMIT="$COMMIT-dirty"
fi
export HSMCA_COMMIT="$COMMIT"
export SOURCE_DATE_EPOCH="$(git log -1 --format=%ct HEAD)"

CARGO_HOME_DIR="$(mkdir -p "${CARGO_HOME:-$HOME/.cargo}" && cd "${CARGO_HOME:-$HOME/.cargo}" && pwd)"
SYSROOT="$(rustc --print sysroot)"
# rustc and gcc apply the last matching prefix, so the more specific ones come after: the
# crates' sources map to /deps whether they come from crates.io's cache or from an offline
# build's vendor/ directory (`cargo vendor --versioned-dirs`: the same <crate>-<version> names),
# so both builds give the same binary.
MAPS=("$SYSROOT=/rust" "$CARGO_HOME_DIR=/cargo" "$REPO=/hsmca" "$REPO/vendor=/deps")
for src in "$CARGO_HOME_DIR"/registry/src/index.crates.io-*; do
    [ -d "$src" ] && MAPS+=("$src=/deps")
done
RUSTFLAGS=""
CFLAGS_MAP=""
for m in "${MAPS[@]}"; do
    RUSTFLAGS="$RUSTFLAGS --remap-path-prefix=$m"
    CFLAGS_MAP="$CFLAGS_MAP -ffile-prefix-map=$m"
done
export RUSTFLAGS="${RUSTFLAGS# }"
export CFLAGS="${CFLAGS_MAP# }"
export CXXFLAGS="$CFLAGS"
# Its own target directory: the flags above would otherwise rebuild the everyday one.
export CARGO_TARGET_DIR="$REPO/target/release-build"

cargo build --release --locked -p hsmca --bin hsmca
BIN="$CARGO_TARGET_DIR/release/hsmca"

mkdir -p "$OUT"
install -m 0755 "$BIN" "$OUT/hsmca"

# The Debian package, assembled by hand (dpkg-deb): nothing to install but dpkg.
VERSION="$("$BIN" --version | awk '{print $2}')"
ARCH="$(dpkg --print-architecture)"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/hsmca"
install -D -m 0755 "$BIN" "$PKG/usr/bin/hsmca"
"$BIN" man-pages --out-dir "$STAGE/man"
for page in "$STAGE"/man/*.1; do
    gzip -9n -c "$page" >"$STAGE/$(basename "$page").gz"
    install -D -m 0644 "$STAGE/$(basename "$page").gz" "$PKG/usr/share/man/man1/$(basename "$page").gz"
done
mkdir -p "$PKG/usr/share/bash-completion/completions" "$PKG/usr/share/zsh/vendor-completions" \
    "$PKG/usr/share/fish/vendor_completions.d" "$PKG/usr/share/doc/hsmca"
"$BIN" completions bash >"$PKG/usr/share/bash-completion/completions/hsmca"
"$BIN" completions zsh >"$PKG/usr/share/zsh/vendor-completions/_hsmca"
"$BIN" completions fish >"$PKG/usr/share/fish/vendor_completions.d/hsmca.fish"
install -m 0644 README.md "$PKG/usr/share/doc/hsmca/README.md"
install -m 0644 LICENSE "$PKG/usr/share/doc/hsmca/LICENSE"
install -m 0644 LICENSE "$PKG/usr/share/doc/hsmca/copyright"
mkdir -p "$PKG/DEBIAN"
# The binary links libc only (cryptoki loads the PKCS#11 module at run time); the newest
# symbol version it uses is the libc it needs.
LIBC_VERSION="$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
cat >"$PKG/DEBIAN/control" <<CONTROL
Package: hsmca
Version: ${VERSION}
Architecture: ${ARCH}
Maintainer: hsmca developers <hsmca@localhost>
Depends: libc6 (>= ${LIBC_VERSION}), libgcc-s1
Recommends: softhsm2
Suggests: opensc, p11-kit
Section: admin
Priority: optional
Installed-Size: $(du -sk "$PKG/usr" | cut -f1)
Description: offline root certificate authority with its key in a PKCS#11 token
 hsmca generates a root CA key inside a hardware security module (or any
 PKCS#11 token), signs intermediate CAs and Kubernetes cluster CAs through it,
 keeps a tamper-evident audit log and runs key ceremonies from a file.
 Built from commit ${HSMCA_COMMIT}.
CONTROL
find "$PKG" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
DEB="$OUT/hsmca_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null

(cd "$OUT" && sha256sum hsmca "$(basename "$DEB")" >SHA256SUMS)
# What a witness needs to build the same bytes: the same commit and the same toolchain.
{
    echo "commit: $HSMCA_COMMIT"
    echo "rustc: $(rustc --version)"
    echo "cargo: $(cargo --version)"
    echo "source-date-epoch: $SOURCE_DATE_EPOCH"
} >"$OUT/BUILDINFO"
echo "release: hsmca $("$BIN" --version | cut -d' ' -f2-)"
cat "$OUT/SHA256SUMS"
