#!/usr/bin/env bash
# Installs what hsmca's tests and demo need on Debian 12, and nothing that is already there:
#   softhsm2       the PKCS#11 token used by the tests and the demo
#   opensc         pkcs11-tool (reads key attributes back in the key-security tests)
#   opensc-pkcs11  pkcs11-spy.so (logs PKCS#11 calls; tests only, it logs PINs)
#   gnutls-bin     certtool --verify-chain (a second chain verifier)
#   openssl        openssl verify, CSRs for the cluster side
#   python3-venv   for the pkilint virtualenv
#   libengine-pkcs11-openssl, time   scripts/bench.sh (openssl's PKCS#11 engine; /usr/bin/time)
#   cmake          aws-lc-sys (hsmca's crypto backend) under scripts/fuzz.sh: a sanitizer build
#                  of AWS-LC goes through cmake; ordinary builds need only the C compiler
#   etcd-server, etcd-client, kubernetes-client (kubectl)   tests/it/k8s.rs's real components
#   swtpm, swtpm-tools, tpm2-abrmd, libtss2-tcti-tabrmd0, dbus, tpm2-tools, libtpm2-pkcs11-1,
#   libtpm2-pkcs11-tools   tests/it/tokens.rs: tpm2-pkcs11 on a software TPM
#   opencryptoki   tests/it/tokens.rs: openCryptoki's soft token (pkcsslotd, pkcsconf)
#   binutils, man-db   scripts/release.sh (objdump: the libc version the binary needs) and
#                  scripts/check-release.sh (man renders the packaged pages)
# and pkilint (PyPI, pinned) in a virtualenv at $REPO/.venv-pkilint.
#
# Runs as root without a tty (CI). Idempotent: `apt-get update` only runs when a package is
# missing, and the venv is only built when pkilint is missing or the wrong version.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKILINT_VERSION="0.13.3"
VENV="$REPO/.venv-pkilint"

say() { printf 'install-deps: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(softhsm2 opensc opensc-pkcs11 gnutls-bin openssl python3 python3-venv ca-certificates
    etcd-server etcd-client libengine-pkcs11-openssl time cmake
    swtpm swtpm-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus tpm2-tools libtpm2-pkcs11-1
    libtpm2-pkcs11-tools opencryptoki binutils man-db)
# kubectl for tests/it/k8s.rs: Debian's kubernetes-client, unless a kubectl is already installed
# (another kubectl package owns /usr/bin/kubectl and the two cannot both be installed).
command -v kubectl >/dev/null 2>&1 || APT_PACKAGES+=(kubernetes-client)

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO=(sudo -n)
        else
            say "missing packages (${missing[*]}) and not root; install them and re-run" >&2
            exit 1
        fi
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "Debian packages present (${APT_PACKAGES[*]})"
fi

# --- pkilint virtualenv --------------------------------------------------------------------------
# Debian's own python3 (the one python3-venv belongs to); any python3 as a fallback.
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3)"

pkilint_ok() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/lint_pkix_cert" ] &&
        [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("pkilint"))' 2>/dev/null || true)" = "$PKILINT_VERSION" ]
}

if pkilint_ok; then
    say "pkilint $PKILINT_VERSION present in $VENV"
else
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        say "creating venv $VENV"
        rm -rf "$VENV"
        "$PY" -m venv "$VENV"
    fi
    say "pip install pkilint==$PKILINT_VERSION into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "pkilint==$PKILINT_VERSION"
    pkilint_ok || { say "pkilint install failed" >&2; exit 1; }
fi

# --- Rust toolchain (not installed here: the machine provides it) -------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found on PATH: install a Rust toolchain (rust-version in Cargo.toml)" >&2
    exit 1
fi
