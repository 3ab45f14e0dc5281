#!/usr/bin/env python3
"""The network-HSM phase of scripts/bench.sh (issue 13): the PKCS#11 calls hsmca makes, and a
batch through the fault-injecting module (faultmod/) with a fixed delay added to every call,
as a network HSM's round trip would, for --sessions 1, 2, 4 and 8.

The ideal for a batch is its calls x the delay / sessions: what the round trips alone cost
when the sessions overlap perfectly. Figures are printed, never asserted.
"""
import argparse
import collections
import os
import subprocess
import sys
import time


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    say(msg)
    sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hsmca", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--token", required=True, help="the token's label")
    p.add_argument("--module", required=True, help="the real module (SoftHSM2)")
    p.add_argument("--faultmod", required=True, help="libhsmca_faultmod.so")
    p.add_argument("--csr-dir", required=True, help="the batch's requests")
    p.add_argument("--csr", required=True, help="the cold sign's request")
    p.add_argument("--delay-us", type=int, default=2000)
    a = p.parse_args()
    work = os.path.join(a.work, "latency")
    os.makedirs(work)
    n = len([f for f in os.listdir(a.csr_dir) if f.endswith(".csr")])
    ca = os.path.join(work, "ca")
    key = f"pkcs11:token={a.token.replace(' ', '%20')};object=latency-p256"
    base = dict(os.environ, HSMCA_MODULE=a.module)

    def run(args, env, what):
        t0 = time.perf_counter()
        r = subprocess.run([a.hsmca] + args, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            die(f"{what} failed: {r.stderr.strip()[-1500:]}")
        return wall

    run(["--ca-dir", ca, "key", "generate", "--token", a.token, "--label", "latency-p256",
         "--algorithm", "ecdsa-p256"], base, "key generate")
    run(["--ca-dir", ca, "root", "create", "--key", key, "--subject",
         "CN=Latency Root,O=hsmca bench", "--validity", "20y", "--out",
         os.path.join(work, "root.crt")], base, "root create")
    seq = [0]

    def through_faultmod(args, delay_us, what):
        seq[0] += 1
        log = os.path.join(work, f"calls-{seq[0]}.txt")
        env = dict(base, HSMCA_MODULE=a.faultmod, HSMCA_FAULT_REAL=a.module,
                   HSMCA_FAULT_LOG=log)
        if delay_us:
            env["HSMCA_FAULT_DELAY_US"] = str(delay_us)
        wall = run(args, env, what)
        with open(log) as f:
            calls = collections.Counter(line.split()[0] for line in f if line.strip())
        calls.pop("fsync", None)
        return wall, calls

    out = lambda stem: os.path.join(work, f"{stem}-{seq[0] + 1}")
    sign_one = lambda: ["--ca-dir", ca, "sign", "--key", key, "--csr", a.csr, "--profile",
                        "intermediate", "--path-len", "0", "--validity", "1y",
                        "--out", out("cold") + ".crt"]
    batch = lambda d, sessions: ["--ca-dir", ca, "sign", "--key", key, "--csr-dir", d,
                                 "--out-dir", out("batch"), "--profile", "intermediate",
                                 "--path-len", "0", "--validity", "1y",
                                 "--sessions", str(sessions)]
    _, cold = through_faultmod(sign_one(), 0, "a cold sign")
    one_dir = os.path.join(work, "one")
    os.makedirs(one_dir)
    first = sorted(f for f in os.listdir(a.csr_dir) if f.endswith(".csr"))[0]
    os.link(os.path.join(a.csr_dir, first), os.path.join(one_dir, first))
    _, b1 = through_faultmod(batch(one_dir, 1), 0, "a batch of one")
    _, bn = through_faultmod(batch(a.csr_dir, 1), 0, f"a batch of {n}")
    per_cert = {f: (bn[f] - b1.get(f, 0)) / (n - 1) for f in bn if bn[f] != b1.get(f, 0)}

    print("\n## PKCS#11 calls, and a network HSM's round trips (issue 13)\n")
    print(f"Counted by the fault module (`HSMCA_FAULT_LOG`), P-256 root on SoftHSM2, `--ca-dir`.\n")
    print(f"- a cold `sign` of one intermediate: **{sum(cold.values())} calls**: " +
          ", ".join(f"{f} {c}" for f, c in sorted(cold.items(), key=lambda x: -x[1])))
    print(f"- each further certificate of a batch ((calls({n}) - calls(1)) / {n - 1}): "
          f"**{sum(per_cert.values()):.2f} calls**: " +
          ", ".join(f"{f} {c:.2f}" for f, c in sorted(per_cert.items(), key=lambda x: -x[1])))
    print(f"\nA batch of {n} with {a.delay_us / 1000:g} ms added to every call "
          "(`HSMCA_FAULT_DELAY_US`); ideal = calls × delay ÷ sessions:\n")
    print("| --sessions | calls | wall (s) | ideal (s) | wall / ideal |")
    print("|---:|---:|---:|---:|---:|")
    for sessions in (1, 2, 4, 8):
        wall, calls = through_faultmod(batch(a.csr_dir, sessions), a.delay_us,
                                       f"a batch on {sessions} sessions")
        total = sum(calls.values())
        ideal = total * a.delay_us / 1e6 / sessions
        print(f"| {sessions} | {total} | {wall:.2f} | {ideal:.2f} | {wall / ideal:.2f} |")
        say(f"latency: {sessions} sessions, {wall:.1f} s")


if __name__ == "__main__":
    main()
