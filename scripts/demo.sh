#!/usr/bin/env bash
# Usage: scripts/demo.sh [--clean]
#
# A whole root CA ceremony on a throw-away SoftHSM2 token, end to end, using only the hsmca CLI
# on the root side:
#   1. make a token in demo-out/token
#   2. generate a P-384 root key on it (the private key never leaves the token)
#   3. create the self-signed root certificate
#   4. the cluster side (openssl, demo-out/cluster-a/): its own intermediate key and a CSR
#   5. sign that CSR as an intermediate (path length 0, name constraints)
#   6. inspect the results and check them with openssl verify
#   7. the CA's records: list, revoke a second intermediate, issue the root's CRL, check it
#      with openssl, and verify the audit log with the root certificate alone
#
# Refuses to run over an existing demo-out/ unless --clean is given. HSMCA_BIN=PATH uses that
# hsmca binary instead of building one.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUT="$REPO/demo-out"

CLEAN=0
for arg in "$@"; do
    case "$arg" in
    --clean) CLEAN=1 ;;
    -h | --help)
        sed -n '2,16p' "$0"
        exit 0
        ;;
    *)
        echo "demo: unknown argument $arg (usage: $0 [--clean])" >&2
        exit 2
        ;;
    esac
done

if [ -e "$OUT" ]; then
    if [ "$CLEAN" -eq 1 ]; then
        rm -rf "$OUT"
    else
        echo "demo: $OUT exists; run with --clean to remove it and start again" >&2
        exit 1
    fi
fi

step() { printf '\n==> %s\n' "$*"; }
# Show a command, then run it.
run() {
    printf '$'
    printf ' %q' "$@"
    printf '\n'
    "$@"
}

# Demo PINs only. In a real ceremony nobody sets HSMCA_PIN: hsmca prompts for the PIN on the
# terminal and the officer types it.
export HSMCA_PIN="${HSMCA_PIN:-demo-user-pin}"
export HSMCA_SO_PIN="${HSMCA_SO_PIN:-demo-so-pin}"

# Every signing command records into this CA directory (certificates and the audit log).
export HSMCA_CA_DIR="$OUT/root-ca"
export HSMCA_OPERATOR="${HSMCA_OPERATOR:-demo-operator}"

TOKEN_LABEL="Demo Root CA"
KEY_LABEL="root-2026"
ROOT_SUBJECT="CN=Example Root CA 2026,O=Example,C=KR"

step "dependencies"
bash scripts/install-deps.sh

if [ -n "${HSMCA_BIN:-}" ]; then
    # An already built hsmca (for example a packaged one) instead of building it here.
    HSMCA="$HSMCA_BIN"
else
    step "build hsmca (release)"
    cargo build --release --bin hsmca
    HSMCA="$REPO/target/release/hsmca"
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then HSMCA="$CARGO_TARGET_DIR/release/hsmca"; fi
fi

step "1. a SoftHSM2 token in demo-out/token"
mkdir -p "$OUT"
SETUP_OUTPUT="$(bash scripts/setup-token.sh "$OUT/token" "$TOKEN_LABEL")"
echo "$SETUP_OUTPUT"
# Its `export SOFTHSM2_CONF=... HSMCA_MODULE=...` lines (values quoted with printf %q).
eval "$(grep '^export ' <<<"$SETUP_OUTPUT")"
run "$HSMCA" token list

step "2. a P-384 root key on the token"
run "$HSMCA" key generate --token "$TOKEN_LABEL" --label "$KEY_LABEL" --algorithm ecdsa-p384 \
    --public-key-out "$OUT/root-2026.pub.pem" | tee "$OUT/key-generate.txt"
KEY_URI="$(sed -n 's/^uri: *//p' "$OUT/key-generate.txt" | head -n1)"
[ -n "$KEY_URI" ] || {
    echo "demo: no uri: line in key generate output" >&2
    exit 1
}
run "$HSMCA" key list --token "$TOKEN_LABEL"

step "3. the root certificate"
run "$HSMCA" root create --key "$KEY_URI" --subject "$ROOT_SUBJECT" --validity 20y \
    --out "$OUT/root.crt"
run "$HSMCA" inspect "$OUT/root.crt"

step "4. cluster side (not the root): intermediate key and CSR with openssl"
CLUSTER="$OUT/cluster-a"
mkdir -p "$CLUSTER"
(
    umask 077
    run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$CLUSTER/intermediate.key"
)
run openssl req -new -key "$CLUSTER/intermediate.key" \
    -subj "/C=KR/O=Example/CN=Cluster A Intermediate CA" -out "$CLUSTER/intermediate.csr"

step "5. sign the cluster intermediate (path length 0, name constraints)"
run "$HSMCA" sign --key "$KEY_URI" --issuer "$OUT/root.crt" --csr "$CLUSTER/intermediate.csr" \
    --profile intermediate --path-len 0 \
    --permit-dns cluster-a.example.com --permit-ip 10.96.0.0/12 \
    --validity 5y --out "$CLUSTER/intermediate.crt" --chain-out "$CLUSTER/chain.pem"

step "6. inspect and verify"
run "$HSMCA" inspect "$CLUSTER/intermediate.crt"
run openssl verify -x509_strict -CAfile "$OUT/root.crt" "$CLUSTER/intermediate.crt"

# The cluster then issues its own leaves with the intermediate key, for example:
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$CLUSTER/leaf.key" -subj "/CN=api.cluster-a.example.com" \
    -out "$CLUSTER/leaf.csr" 2>/dev/null
printf '%s\n' "basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature" \
    "extendedKeyUsage = serverAuth" "subjectAltName = DNS:api.cluster-a.example.com" \
    >"$CLUSTER/leaf.ext"
openssl x509 -req -days 30 -in "$CLUSTER/leaf.csr" -CA "$CLUSTER/intermediate.crt" \
    -CAkey "$CLUSTER/intermediate.key" -extfile "$CLUSTER/leaf.ext" \
    -out "$CLUSTER/leaf.crt" 2>/dev/null
run openssl verify -x509_strict -CAfile "$OUT/root.crt" -untrusted "$CLUSTER/intermediate.crt" \
    "$CLUSTER/leaf.crt"

if [ -x "$REPO/.venv-pkilint/bin/lint_pkix_cert" ]; then
    step "pkilint (findings at WARNING or above; none expected)"
    for c in "$OUT/root.crt" "$CLUSTER/intermediate.crt"; do
        # pkilint exits with the number of findings; with -s WARNING, none means clean.
        findings="$("$REPO/.venv-pkilint/bin/lint_pkix_cert" lint -s WARNING "$c" || true)"
        echo "lint_pkix_cert ${c#"$REPO"/}: ${findings:-no findings}"
    done
fi

step "7. records, revocation and the root's CRL"
run openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$OUT/cluster-b.key" -subj "/O=Example/CN=Cluster B Intermediate CA" \
    -out "$OUT/cluster-b.csr"
run "$HSMCA" sign --key "$KEY_URI" --csr "$OUT/cluster-b.csr" --profile intermediate \
    --path-len 0 --validity 1y --out "$OUT/cluster-b.crt" | tee "$OUT/sign-b.txt"
SERIAL_B="$(sed -n 's/^serial: *//p' "$OUT/sign-b.txt")"
run "$HSMCA" list
run "$HSMCA" revoke --serial "$SERIAL_B" --reason superseded
run "$HSMCA" crl --key "$KEY_URI" --next-update 90d --out "$OUT/root.crl"
run "$HSMCA" inspect "$OUT/root.crl"
run openssl verify -crl_check -CAfile "$OUT/root.crt" -CRLfile "$OUT/root.crl" \
    "$CLUSTER/intermediate.crt"
if openssl verify -crl_check -CAfile "$OUT/root.crt" -CRLfile "$OUT/root.crl" \
    "$OUT/cluster-b.crt" >/dev/null 2>&1; then
    echo "demo: the revoked intermediate still verifies" >&2
    exit 1
fi
echo "cluster-b.crt: revoked (openssl verify -crl_check refuses it, as it should)"
run "$HSMCA" log verify --root "$OUT/root.crt"

step "8. declarative ceremonies (examples/): root ceremony, three cluster CSRs, then a rollover, on a second token"
CER="$OUT/ceremony"
mkdir -p "$CER/requests"
cp examples/root-ceremony.toml examples/cluster-signing.toml examples/root-rollover.toml "$CER/"
# The successor root's ceremony: the root ceremony with the 2031 key, name, CA directory and files.
sed -e 's/root-2026/root-2031/g; s/Root CA 2026/Root CA 2031/g; s#out/root-ca#out/root-2031-ca#' \
    -e 's#out/root-ceremony.transcript#out/root-2031-ceremony.transcript#; s#out/root\.cr\([tl]\)#out/root-2031.cr\1#' \
    examples/root-ceremony.toml >"$CER/root-2031-ceremony.toml"
for c in a b c; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$CER/requests/cluster-$c.key" -subj "/O=Example/CN=Cluster ${c^^} CA" \
        -out "$CER/requests/cluster-$c.csr" 2>/dev/null
done
(
    eval "$(bash scripts/setup-token.sh "$CER/token" "Example Root CA" | grep '^export ')"
    run "$HSMCA" ceremony plan "$CER/root-ceremony.toml"
    run "$HSMCA" ceremony run --yes "$CER/root-ceremony.toml"
    run "$HSMCA" ceremony run --yes "$CER/cluster-signing.toml"
    run "$HSMCA" ceremony verify "$CER/out/cluster-signing.transcript"
    run openssl verify -x509_strict -CAfile "$CER/out/root.crt" "$CER"/out/cluster-?.crt
    run "$HSMCA" ceremony run --yes "$CER/root-2031-ceremony.toml"
    run "$HSMCA" ceremony plan "$CER/root-rollover.toml"
    run "$HSMCA" ceremony run --yes "$CER/root-rollover.toml"
    run "$HSMCA" ceremony verify "$CER/out/root-rollover.transcript"
    # A relying party that trusts only the 2026 root accepts the 2031 root through the cross-certificate.
    run openssl verify -x509_strict -CAfile "$CER/out/root.crt" "$CER/out/root-2031-by-2026.crt"
)

step "done"
echo "root:         $OUT/root.crt"
echo "intermediate: $CLUSTER/intermediate.crt (chain: $CLUSTER/chain.pem)"
echo "CRL:          $OUT/root.crl"
echo "records:      $HSMCA_CA_DIR (audit log: $HSMCA_CA_DIR/audit.jsonl)"
echo "token:        SOFTHSM2_CONF=$SOFTHSM2_CONF"
