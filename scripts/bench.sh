#!/usr/bin/env bash
# Usage: scripts/bench.sh [--perf]
#
# hsmca's figures against the token's raw signing speed and against openssl and certtool
# (issue 6; results and analysis in BENCHMARKS.md). Prints, for ecdsa-p256, ecdsa-p384,
# rsa-2048 and rsa-3072:
#   - raw: the token's own C_Sign loop (`hsmca bench raw`), median of many signatures;
#   - batch: hsmca's cost per certificate when one `hsmca sign --csr-dir` process signs
#     N = 100 and N = 1000 CSRs, with and without --ca-dir, and its ratio to raw
#     (target <= 1.10x for p384 and rsa-3072);
#   - cold: one `hsmca sign` process (with --ca-dir, so it records) against
#     `openssl x509 -req` (libp11 engine) and `certtool --generate-certificate`, same CSR and
#     key, alternated round by round (target: hsmca/openssl and hsmca/certtool <= 1.0);
#   - memory: peak RSS (/usr/bin/time -f %M) of a p256 batch with --ca-dir, N = 100 and
#     N = 10000 (target: the larger <= 1.2x the smaller).
# The figures are printed, never asserted: a missed target is reported, not an error. The
# script exits non-zero only when something fails (build, token, a tool's command).
#
#   - log scale (scripts/bench_log.py): a cold `sign` on a CA directory of ~100 records
#     against one of ~100,000, alternated (target: the large <= 1.5x the small, time and
#     peak memory); BENCH_LOG_RECORDS sets the large size (0 skips the phase).
#
#   - network HSM (scripts/bench_latency.py): the PKCS#11 calls of a cold sign and of each
#     batch certificate, and a batch of 1000 through the fault module with 2 ms added to every
#     call, --sessions 1, 2, 4, 8, against the ideal (calls x delay / sessions).
#
# --log-only runs the log-scale phase alone (it builds its large directory: a few minutes);
# --latency-only the network-HSM phase alone; --batch-only the raw and batch phase alone (no
# cold, memory, network-HSM or log-scale phase).
#
# --perf also profiles a p384 batch of 1000 with --ca-dir (`perf record` with DWARF call
# graphs; needs perf, package linux-perf) and prints where the on-CPU time goes.
#
# Everything happens in a temporary directory (under $TMPDIR, default /tmp) that is removed at
# the end: a throw-away SoftHSM2 token with random PINs, CSRs, CA directories, outputs. The
# file system of that directory matters (every certificate is fsynced); the report names it.
#
# Environment:
#   HSMCA_BIN=PATH       use this hsmca instead of building one (cargo build --release)
#   BENCH_REPS=3         repetitions of the raw and batch measurements (medians are reported)
#   BENCH_BUDGET=300     seconds for those repetitions: the first always runs, a further one
#                        only if it fits (a slow disk makes a repetition take minutes)
#   BENCH_ROUNDS=20      rounds of the cold comparison (each round runs all three tools)
#   BENCH_RAW_COUNT=1000 signatures per `hsmca bench raw`
#   BENCH_BIG=10000      the large batch of the memory measurement
#   BENCH_ALGS="..."     the algorithms measured (default: ecdsa-p256 ecdsa-p384 rsa-2048
#                        rsa-3072; the batch targets are for ecdsa-p384 and rsa-3072)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

PERF=0
LOG_ONLY=0
LATENCY_ONLY=0
BATCH_ONLY=0
for arg in "$@"; do
    case "$arg" in
    --perf) PERF=1 ;;
    --log-only) LOG_ONLY=1 ;;
    --latency-only) LATENCY_ONLY=1 ;;
    --batch-only) BATCH_ONLY=1 ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
        exit 0
        ;;
    *)
        echo "bench: unknown argument $arg (usage: $0 [--perf] [--log-only] [--latency-only] [--batch-only])" >&2
        exit 2
        ;;
    esac
done

say() { printf 'bench: %s\n' "$*" >&2; }
STARTED=$(date +%s)

say "dependencies"
bash scripts/install-deps.sh >&2
for tool in openssl certtool softhsm2-util /usr/bin/time python3; do
    command -v "$tool" >/dev/null || {
        say "$tool not found (scripts/install-deps.sh should have installed it)"
        exit 1
    }
done
ENGINE="$(dpkg -L libengine-pkcs11-openssl 2>/dev/null | grep -m1 '/engines-3/pkcs11\.so$' || true)"
if [ -z "$ENGINE" ] || [ ! -f "$ENGINE" ]; then
    say "openssl's pkcs11 engine (libengine-pkcs11-openssl) not found"
    exit 1
fi
if [ "$PERF" -eq 1 ] && ! perf version >/dev/null 2>&1; then
    say "--perf needs perf (apt-get install linux-perf)"
    exit 1
fi

if [ -n "${HSMCA_BIN:-}" ]; then
    HSMCA="$HSMCA_BIN"
    SOURCE="HSMCA_BIN=$HSMCA_BIN"
else
    SOURCE="built from $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        SOURCE="$SOURCE with uncommitted changes"
    fi
    say "build hsmca (release)"
    cargo build --release --bin hsmca >&2
    HSMCA="${CARGO_TARGET_DIR:-$REPO/target}/release/hsmca"
    case "$HSMCA" in /*) ;; *) HSMCA="$REPO/$HSMCA" ;; esac
fi
[ -x "$HSMCA" ] || {
    say "no hsmca binary at $HSMCA"
    exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hsmca-bench.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nothing from the caller's environment may point hsmca at a real CA directory or token.
unset HSMCA_CA_DIR HSMCA_PIN HSMCA_SO_PIN SOFTHSM2_CONF OPENSSL_CONF GNUTLS_PIN
export HSMCA_OPERATOR=bench
# Throw-away token, random PINs. They reach hsmca and certtool through the environment and
# openssl through a 0600 config file in $WORK, never through argv (setup-token.sh hands them to
# softhsm2-util for the token initialisation only).
HSMCA_PIN="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
HSMCA_SO_PIN="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
export HSMCA_PIN HSMCA_SO_PIN

LABEL="hsmca bench"
LABEL_URI="hsmca%20bench"
read -r -a ALGS <<<"${BENCH_ALGS:-ecdsa-p256 ecdsa-p384 rsa-2048 rsa-3072}"

say "token, keys and roots in $WORK"
SETUP_OUTPUT="$(bash scripts/setup-token.sh "$WORK/token" "$LABEL")"
eval "$(grep '^export ' <<<"$SETUP_OUTPUT")" # SOFTHSM2_CONF, HSMCA_MODULE
for alg in "${ALGS[@]}"; do
    "$HSMCA" key generate --token "$LABEL" --label "$alg" --algorithm "$alg" >/dev/null
    # `bench raw` refuses CA keys (their signatures are all recorded): a twin key of its own.
    "$HSMCA" key generate --token "$LABEL" --label "raw-$alg" --algorithm "$alg" >/dev/null
    # The CA directory as `root create` leaves it; every measured run records into a copy.
    "$HSMCA" --ca-dir "$WORK/ca-$alg" root create --key "pkcs11:token=$LABEL_URI;object=$alg" \
        --subject "CN=Bench Root $alg,O=hsmca bench" --validity 20y --out "$WORK/root-$alg.crt" >/dev/null
done

say "CSRs (a P-256 key each, /CN=cN)"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/csr.key" 2>/dev/null
openssl req -new -key "$WORK/csr.key" -subj "/O=hsmca bench/CN=Cold Intermediate CA" -out "$WORK/cold.csr"
PYCRYPTO=""
for py in "$REPO/.venv-pkilint/bin/python" python3; do
    if "$py" -c 'import cryptography' 2>/dev/null; then
        PYCRYPTO="$py"
        break
    fi
done
LOG_RECORDS="${BENCH_LOG_RECORDS:-100000}"
log_scale() {
    [ "$LOG_RECORDS" -gt 0 ] || return 0
    [ -n "$PYCRYPTO" ] || {
        say "the log-scale phase needs python's cryptography (scripts/install-deps.sh makes .venv-pkilint)"
        exit 1
    }
    say "log scale (a few minutes: $LOG_RECORDS requests are made and signed)"
    python3 "$REPO/scripts/bench_log.py" --hsmca "$HSMCA" --work "$WORK" --token "$LABEL" \
        --csr "$WORK/cold.csr" --python "$PYCRYPTO" --records "$LOG_RECORDS"
}
if [ "$LOG_ONLY" -eq 1 ]; then
    log_scale
    say "done in $(($(date +%s) - STARTED)) s"
    exit 0
fi
latency() {
    say "network HSM: the fault module with 2 ms per call"
    cargo build --quiet --release -p hsmca-faultmod --target-dir "$REPO/target/faultmod" >&2
    python3 "$REPO/scripts/bench_latency.py" --hsmca "$HSMCA" --work "$WORK" --token "$LABEL" \
        --module "$HSMCA_MODULE" --faultmod "$REPO/target/faultmod/release/libhsmca_faultmod.so" \
        --csr-dir "$WORK/csr1000" --csr "$WORK/cold.csr"
}
BIG="${BENCH_BIG:-10000}"
if ! [ "$BIG" -ge 1000 ] 2>/dev/null; then
    say "BENCH_BIG must be at least 1000 (the batches of 100 and 1000 are taken from it)"
    exit 2
fi
mkdir "$WORK/csr"
# pkilint's virtualenv (made by install-deps.sh) has python's cryptography: 10000 CSRs in a
# few seconds; otherwise one openssl process per CSR (a minute or two).
if [ -n "$PYCRYPTO" ]; then
    "$PYCRYPTO" - "$WORK/csr" "$BIG" <<'PY'
import os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
# A key per request: every run records into the algorithm's one CA directory, where a CA key
# certified under one subject is refused under another (signed again, a request is a renewal).
for i in range(1, int(sys.argv[2]) + 1):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"c{i}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    with open(os.path.join(sys.argv[1], f"c{i:05d}.csr"), "wb") as f:
        f.write(csr.public_bytes(serialization.Encoding.PEM))
PY
else
    for i in $(seq 1 "$BIG"); do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
            -subj "/CN=c$i" -out "$WORK/csr/$(printf 'c%05d' "$i").csr" 2>/dev/null
    done
fi
# Batches of the first N, as hard links.
CSRS=("$WORK"/csr/*.csr) # zero-padded names: the glob's order is the signing order
for n in 1 100 1000; do
    mkdir "$WORK/csr$n"
    ln "${CSRS[@]:0:n}" "$WORK/csr$n/"
done

# openssl's engine: module and PIN from a private config file (no PIN in argv).
(
    umask 077
    cat >"$WORK/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $HSMCA_MODULE
PIN = $HSMCA_PIN
init = 0
EOF
)
# The same intermediate profile for openssl and certtool: CA, pathLen 0, keyCertSign+cRLSign,
# SKI, AKI, one year.
cat >"$WORK/openssl-ext.cnf" <<'EOF'
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
cat >"$WORK/certtool.cfg" <<'EOF'
expiration_days = 365
ca
path_len = 0
cert_signing_key
crl_signing_key
EOF

say "measuring (a few minutes; more on a slow disk)"
PY_ARGS=(--hsmca "$HSMCA" --work "$WORK" --token-uri "token=$LABEL_URI" --module "$HSMCA_MODULE"
    --reps "${BENCH_REPS:-3}" --rounds "${BENCH_ROUNDS:-20}" --raw-count "${BENCH_RAW_COUNT:-1000}"
    --big "$BIG" --budget "${BENCH_BUDGET:-300}" --source "$SOURCE" --command "scripts/bench.sh${*:+ $*}" --algs "${ALGS[@]}")
[ "$PERF" -eq 1 ] && PY_ARGS+=(--perf)
[ "$BATCH_ONLY" -eq 1 ] && PY_ARGS+=(--batch-only)
if [ "$LATENCY_ONLY" -eq 1 ]; then
    latency
    say "done in $(($(date +%s) - STARTED)) s"
    exit 0
fi
python3 "$REPO/scripts/bench.py" "${PY_ARGS[@]}"
if [ "$BATCH_ONLY" -eq 1 ]; then
    say "done in $(($(date +%s) - STARTED)) s"
    exit 0
fi
latency
log_scale
say "done in $(($(date +%s) - STARTED)) s"
