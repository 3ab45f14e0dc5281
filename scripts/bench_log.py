#!/usr/bin/env python3
"""The log-scale phase of scripts/bench.sh (issue 12): a cold `hsmca sign` on a CA directory
holding ~100 records against the same on one holding ~100,000, alternated round by round.

Target: the large within 1.5x the small, in wall time and in peak memory (the cost of a
command must not grow with the log). Figures are printed, never asserted. Also printed, for
reference: what the whole-log checks cost on the large directory (`log verify`, and a `sign`
on a directory that was changed since the last command, which reads the whole log).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    say(msg)
    sys.exit(1)


def run(cmd, env, what):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{what} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r


def timed(cmd, env, what):
    """Wall time (s) and peak RSS (KiB, /usr/bin/time) of one process."""
    full = ["/usr/bin/time", "-f", "%M"] + cmd
    t0 = time.perf_counter()
    r = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        die(f"{what} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    rss = int(r.stderr.strip().splitlines()[-1])
    return wall, rss


def make_csrs(py, directory, count):
    """`count` CSRs, each with a key of its own (a CA key is certified under one subject)."""
    os.makedirs(directory)
    script = r'''
import os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
d, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"log {i}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    with open(os.path.join(d, f"l{i:06d}.csr"), "wb") as f:
        f.write(csr.public_bytes(serialization.Encoding.PEM))
'''
    subprocess.run([py, "-c", script, directory, str(count)], check=True)


def records(ca_dir):
    with open(os.path.join(ca_dir, "audit.jsonl"), "rb") as f:
        return sum(1 for _ in f)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hsmca", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--token", required=True, help="the token's label")
    p.add_argument("--csr", required=True, help="the request each measured sign signs")
    p.add_argument("--python", required=True, help="a python with 'cryptography'")
    p.add_argument("--records", type=int, default=100000)
    p.add_argument("--small", type=int, default=100)
    p.add_argument("--rounds", type=int, default=15)
    a = p.parse_args()
    env = dict(os.environ)
    work = os.path.join(a.work, "log-scale")
    os.makedirs(work)
    # A CA directory per size, each with a P-256 root key of its own: the token keeps one log
    # head per CA key, so two directories of one key would be one log cut back.
    dirs, keys = {}, {}
    for name in ("small", "large"):
        d = os.path.join(work, f"ca-{name}")
        run([a.hsmca, "--ca-dir", d, "key", "generate", "--token", a.token, "--label",
             f"log-{name}", "--algorithm", "ecdsa-p256"], env, f"the {name} directory's key")
        keys[name] = f"pkcs11:token={a.token.replace(' ', '%20')};object=log-{name}"
        run([a.hsmca, "--ca-dir", d, "root", "create", "--key", keys[name], "--subject",
             f"CN=Log Scale {name},O=hsmca bench", "--validity", "20y",
             "--out", os.path.join(work, f"root-{name}.crt")], env, f"the {name} root")
        dirs[name] = d
    base = records(dirs["large"])

    t0 = time.perf_counter()
    say(f"log scale: {a.records} requests, each with a key of its own")
    make_csrs(a.python, os.path.join(work, "csr"), a.records - base - 1)
    say(f"log scale: {a.records - base - 1} requests in {time.perf_counter() - t0:.0f} s")
    small_csr = os.path.join(work, "csr-small")
    os.makedirs(small_csr)
    names = sorted(os.listdir(os.path.join(work, "csr")))
    for n in names[: max(a.small - base - 1, 1)]:
        os.link(os.path.join(work, "csr", n), os.path.join(small_csr, n))

    for name, csrs in (("small", small_csr), ("large", os.path.join(work, "csr"))):
        d = dirs[name]
        t0 = time.perf_counter()
        run([a.hsmca, "--ca-dir", d, "sign", "--key", keys[name], "--csr-dir", csrs,
             "--out-dir", os.path.join(work, f"out-{name}"), "--profile", "intermediate",
             "--path-len", "0", "--validity", "1y"], env, f"the {name} directory's batch")
        say(f"log scale: {name} directory, {records(d)} records, "
            f"{os.path.getsize(os.path.join(d, 'audit.jsonl')) / 1e6:.1f} MB log "
            f"(batch {time.perf_counter() - t0:.0f} s)")

    os.makedirs(os.path.join(work, "out"))
    key_of = {d: keys[name] for name, d in dirs.items()}
    sign = lambda d, i: [a.hsmca, "--ca-dir", d, "sign", "--key", key_of[d], "--csr", a.csr,
                         "--profile", "intermediate", "--path-len", "0", "--validity", "1y",
                         "--out", os.path.join(work, "out", f"{os.path.basename(d)}-{i}.crt")]
    # One unmeasured sign each: the page cache holds what a sign reads, as in every round.
    for name, d in dirs.items():
        timed(sign(d, "warm"), env, f"sign on the {name} directory")
    figures = {name: ([], []) for name in dirs}
    for i in range(a.rounds):
        order = list(dirs.items()) if i % 2 == 0 else list(reversed(dirs.items()))
        for name, d in order:
            wall, rss = timed(sign(d, i), env, f"sign on the {name} directory")
            figures[name][0].append(wall)
            figures[name][1].append(rss)
    sizes = {name: records(d) for name, d in dirs.items()}

    # For reference: the whole-log checks on the large directory.
    large = dirs["large"]
    t0 = time.perf_counter()
    verify = timed([a.hsmca, "--ca-dir", large, "log", "verify"], env, "log verify")
    os.utime(os.path.join(large, "audit.jsonl"))  # changes the ctime: no longer as left
    whole = timed(sign(large, "whole"), env, "sign on a changed directory")
    after = timed(sign(large, "after"), env, "sign after it")

    print("\n## Log scale (issue 12): a cold `sign` against the size of the log\n")
    print("One process signing one intermediate (P-256 root on SoftHSM2, --ca-dir), "
          f"{a.rounds} rounds alternating the two directories; medians.\n")
    print("| CA directory | records | wall (ms) | p10-p90 (ms) | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for name in dirs:
        w, m = figures[name]
        q = statistics.quantiles(w, n=10)
        print(f"| {name} | {sizes[name]} | {statistics.median(w) * 1e3:.1f} | "
              f"{q[0] * 1e3:.1f}-{q[-1] * 1e3:.1f} | {statistics.median(m) / 1024:.1f} |")
    tw = statistics.median(figures["large"][0]) / statistics.median(figures["small"][0])
    tm = statistics.median(figures["large"][1]) / statistics.median(figures["small"][1])
    print(f"\nlarge/small: time {tw:.2f}x, peak memory {tm:.2f}x (target <= 1.5x each): "
          f"{'met' if tw <= 1.5 and tm <= 1.5 else 'MISSED'}\n")
    print("The whole-log checks on the large directory, for reference (one run each):\n")
    print(f"- `log verify`: {verify[0] * 1e3:.0f} ms, {verify[1] / 1024:.1f} MB")
    print(f"- `sign` on the directory after its log was touched (read whole): "
          f"{whole[0] * 1e3:.0f} ms, {whole[1] / 1024:.1f} MB")
    print(f"- the `sign` after that one (from the last seal again): "
          f"{after[0] * 1e3:.0f} ms, {after[1] / 1024:.1f} MB")


if __name__ == "__main__":
    main()
