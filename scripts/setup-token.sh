#!/usr/bin/env bash
# Usage: scripts/setup-token.sh DIR LABEL
#
# Makes a private SoftHSM2 token store in DIR (DIR/softhsm2.conf and DIR/tokens/) and
# initialises one token labelled LABEL in it. Nothing outside DIR is touched, so the system-wide
# SoftHSM2 store (/var/lib/softhsm/tokens) is left alone.
#
# PINs come from the environment: HSMCA_PIN (user PIN) and HSMCA_SO_PIN (security officer PIN).
# The defaults below are for demos and tests ONLY: a real token gets PINs typed at the ceremony,
# never PINs written in a script.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 DIR LABEL" >&2
    exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$1"
LABEL="$2"

# Demo-only defaults (see above).
: "${HSMCA_PIN:=demo-user-pin}"
: "${HSMCA_SO_PIN:=demo-so-pin}"

find_softhsm_module() {
    local c
    for c in "${HSMCA_SOFTHSM_MODULE:-}" \
        /usr/lib/softhsm/libsofthsm2.so \
        /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
        /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
        /usr/local/lib/softhsm/libsofthsm2.so \
        /usr/lib64/pkcs11/libsofthsm2.so; do
        if [ -n "$c" ] && [ -f "$c" ]; then
            echo "$c"
            return 0
        fi
    done
    c="$(dpkg -L libsofthsm2 2>/dev/null | grep -m1 '/libsofthsm2\.so$' || true)"
    if [ -n "$c" ] && [ -f "$c" ]; then
        echo "$c"
        return 0
    fi
    return 1
}

MODULE="$(find_softhsm_module)" || {
    echo "setup-token: libsofthsm2.so not found; run scripts/install-deps.sh" >&2
    exit 1
}
command -v softhsm2-util >/dev/null || {
    echo "setup-token: softhsm2-util not found; run scripts/install-deps.sh" >&2
    exit 1
}

mkdir -p "$DIR/tokens"
DIR="$(cd "$DIR" && pwd)"
chmod 700 "$DIR/tokens"
CONF="$DIR/softhsm2.conf"
TEMPLATE="$(cat "$REPO/softhsm/softhsm2.conf.in")"
TOKENDIR="$DIR/tokens"
printf '%s\n' "${TEMPLATE//@TOKENDIR@/"$TOKENDIR"}" >"$CONF"  # quoted: no '&' expansion (bash 5.2)
export SOFTHSM2_CONF="$CONF"

if softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]+$(printf '%s' "$LABEL" | sed 's/[][\.*^$/]/\\&/g')[[:space:]]*$"; then
    echo "setup-token: a token labelled '$LABEL' already exists in $DIR/tokens" >&2
    exit 1
fi

softhsm2-util --init-token --free --label "$LABEL" --pin "$HSMCA_PIN" --so-pin "$HSMCA_SO_PIN" >/dev/null
echo "setup-token: initialised token '$LABEL' in $DIR/tokens"
echo
echo "# To use it:"
printf 'export SOFTHSM2_CONF=%q\n' "$CONF"
printf 'export HSMCA_MODULE=%q\n' "$MODULE"
