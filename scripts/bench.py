#!/usr/bin/env python3
"""The measuring half of scripts/bench.sh (which builds hsmca and prepares the token, keys,
roots, CSRs and tool configurations in a temporary directory, then runs this). Python 3
standard library only.

Every timed process is started with stdout to /dev/null and reaped with wait4, which gives its
wall time (perf_counter around fork to reap), user and system CPU time and peak RSS. Runs that
are compared are alternated (algorithms rotated per repetition, with/without --ca-dir in
alternating order, the cold tools rotated per round) so a change in the machine's load hits
every variant alike. Nothing measured here is deleted before the end (bench.sh removes the
whole directory): on some file systems (ext4 without a journal) a burst of deletions makes the
next file creations slower, which would penalise whichever run came next.

Output: Markdown tables on stdout, progress on stderr. Exit 1 only when a command fails.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

TIMEOUT_S = 900  # per process; a hang is a failure, not a figure


def note(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    note(msg)
    sys.exit(1)


@dataclass
class Run:
    wall: float  # s
    user: float  # s
    sys: float  # s

    @property
    def cpu(self):
        return self.user + self.sys


def run(cmd, env, what, stdout_path=None):
    """Runs cmd, returns its Run; dies (exit 1) when it fails or hangs."""
    with tempfile.TemporaryFile() as err:
        out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
        try:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
            timer = threading.Timer(TIMEOUT_S, p.kill)
            timer.start()
            _, status, ru = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t0
            timer.cancel()
        finally:
            if stdout_path:
                out.close()
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            msg = err.read().decode(errors="replace").strip()
            die(f"{what} failed (exit {p.returncode}): {' '.join(map(str, cmd))}\n{msg}")
    return Run(wall, ru.ru_utime, ru.ru_stime)


def capture(cmd, env, what):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    if p.returncode != 0:
        die(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p.stdout


def first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def med(xs):
    return statistics.median(xs)


def rotate(xs, k):
    k %= len(xs)
    return xs[k:] + xs[:k]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def durable_create_ms(directory, count=30):
    """Median time to create a 1 KiB file durably in `directory` (create, write, fsync, fsync
    of the directory): the price the file system puts on each file hsmca writes."""
    probe = os.path.join(directory, f"probe-{time.monotonic_ns()}")
    os.mkdir(probe)
    dfd = os.open(probe, os.O_RDONLY | os.O_DIRECTORY)
    times = []
    try:
        for i in range(count):
            t0 = time.perf_counter()
            fd = os.open(os.path.join(probe, str(i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"x" * 1024)
            os.fsync(fd)
            os.close(fd)
            os.fsync(dfd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(dfd)
    return med(times) * 1e3


def filesystem_of(path):
    """(mount point, fs type with journal note for ext4, mount options) of the fs holding path."""
    path = os.path.realpath(path)
    best = ("/", "?", "", "")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            mnt = mnt.replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[0]):
                best = (mnt, fstype, dev, opts)
    mnt, fstype, dev, opts = best
    extra = ""
    if fstype == "ext4":
        jt = f"/sys/fs/ext4/{os.path.basename(dev)}/journal_task"
        try:
            with open(jt) as f:
                extra = " (no journal)" if f.read().strip() == "<none>" else " (journaled)"
        except OSError:
            pass
    return mnt, fstype + extra, opts


class Bench:
    def __init__(self, a):
        self.a = a
        self.w = a.work
        self.hsmca = a.hsmca
        base = {k: v for k, v in os.environ.items() if k not in ("HSMCA_PIN", "HSMCA_SO_PIN")}
        pin = os.environ["HSMCA_PIN"]
        # Each tool gets its own way to the PIN, and only that.
        self.env_hsmca = dict(base, HSMCA_PIN=pin)
        self.env_openssl = dict(base, OPENSSL_CONF=os.path.join(self.w, "openssl.cnf"))
        self.env_certtool = dict(base, GNUTLS_PIN=pin)
        self.seq = 0
        self.loads = []  # (label, loadavg)
        self.fsyncs = []  # (label, ms)

    # --- helpers -----------------------------------------------------------------------------
    def fresh(self, stem):
        self.seq += 1
        return os.path.join(self.w, "runs", f"{stem}-{self.seq}")

    def uri(self, alg, private=False):
        u = f"pkcs11:{self.a.token_uri};object={alg}"
        return u + ";type=private" if private else u

    def root(self, alg):
        return os.path.join(self.w, f"root-{alg}.crt")

    def ca_copy(self, alg):
        # The algorithm's one CA directory: the token keeps one log head per CA key, so a copy
        # of a directory another run recorded into is a log cut back, which hsmca refuses. Every
        # run records into it in turn; since issue 12 a command's cost does not grow with the
        # log (the log-scale phase measures that), and its requests, signed again, are renewals.
        return os.path.join(self.w, f"ca-{alg}")

    def checkpoint(self, label):
        self.loads.append((label, loadavg()))
        self.fsyncs.append((label, durable_create_ms(os.path.join(self.w, "runs"))))

    def sign_batch_cmd(self, alg, csr_dir, out_dir, ca_dir):
        cmd = [self.hsmca]
        if ca_dir:
            cmd += ["--ca-dir", ca_dir]
        return cmd + ["sign", "--key", self.uri(alg), "--issuer", self.root(alg),
                      "--csr-dir", csr_dir, "--profile", "intermediate", "--path-len", "0",
                      "--validity", "1y", "--out-dir", out_dir]

    def batch(self, alg, n, cadir, timed_with=None):
        ca = self.ca_copy(alg) if cadir else None
        out = self.fresh(f"out-{alg}-{n}")
        # csr/ holds all the CSRs (the large batch); csrN/ the first N of them.
        csr_dir = os.path.join(self.w, "csr" if n == self.a.big else f"csr{n}")
        cmd = self.sign_batch_cmd(alg, csr_dir, out, ca)
        if timed_with:
            cmd = timed_with + cmd
        r = run(cmd, self.env_hsmca, f"hsmca sign batch {alg} N={n}")
        got = len(os.listdir(out))
        if got != n:
            die(f"hsmca sign batch {alg} N={n} wrote {got} certificates")
        return r, ca

    # --- raw and batches -----------------------------------------------------------------------
    def phase_batches(self):
        a = self.a
        sizes = (1, 100, 1000)
        self.raw = {alg: [] for alg in a.algs}  # per rep: (median, p10, p90) us
        self.runs = {}  # (alg, n, cadir) -> [Run] in rep order
        t0 = time.monotonic()
        self.reps_done = 0
        for rep in range(a.reps):
            elapsed = time.monotonic() - t0
            if rep > 0 and elapsed + elapsed / rep > a.budget:
                note(f"stopping after {rep} repetitions: another would pass the "
                     f"{a.budget} s budget of this phase (BENCH_BUDGET)")
                break
            self.checkpoint(f"batches rep {rep + 1}")
            note(f"raw and batches, repetition {rep + 1}/{a.reps} (load {loadavg()}, "
                 f"durable file creation {self.fsyncs[-1][1]:.2f} ms)")
            for alg in rotate(list(a.algs), rep):
                out = capture([self.hsmca, "bench", "raw", "--key", self.uri(f"raw-{alg}"), "--count",
                               str(a.raw_count)], self.env_hsmca, f"hsmca bench raw {alg}")
                m = re.search(r"median ([\d.]+) us, p10 ([\d.]+) us, p90 ([\d.]+) us", out)
                if not m:
                    die(f"unexpected 'hsmca bench raw' output: {out!r}")
                self.raw[alg].append(tuple(float(x) for x in m.groups()))
                for i, n in enumerate(sizes):
                    modes = (False, True) if (rep + i) % 2 == 0 else (True, False)
                    for cadir in modes:
                        r, _ = self.batch(alg, n, cadir)
                        self.runs.setdefault((alg, n, cadir), []).append(r)
            self.reps_done = rep + 1

    def report_batches(self):
        a = self.a
        print("## Raw signing time of the token (`hsmca bench raw`)\n")
        print(f"{a.raw_count} C_Sign per run, {self.reps_done} runs; the median of the runs' medians "
              "(and the runs' range).\n")
        print("| algorithm | raw C_Sign median (µs) | p10 (µs) | p90 (µs) |")
        print("|---|---:|---:|---:|")
        for alg in a.algs:
            meds = [x[0] for x in self.raw[alg]]
            print(f"| {alg} | {med(meds):.1f} ({min(meds):.1f}–{max(meds):.1f}) | "
                  f"{med([x[1] for x in self.raw[alg]]):.1f} | "
                  f"{med([x[2] for x in self.raw[alg]]):.1f} |")
        print()
        print("## Batch signing: cost per certificate in one `hsmca sign --csr-dir` process\n")
        print("Method: the whole process is timed (fork to exit: module load, login, CSR "
              "checks, then per certificate TBS, C_Sign, host verification, record, atomic "
              "write) and divided by N — startup included, nothing subtracted. `marginal` is "
              "(wall(N) − wall(1)) / (N − 1) within the same repetition: the per-certificate "
              "cost with the measured fixed startup removed. `CPU` is the process's user + "
              "system time per certificate, summed over its threads (the batch is a pipeline: "
              "the token signs on two sessions, each on its own thread (`sign --sessions`, "
              "default 2), while others verify, record and write, so CPU can exceed wall). "
              "Ratios "
              "are to the raw median of the same algorithm. Medians of "
              f"{self.reps_done} runs (range of the per-certificate figure in parentheses).\n")
        print("| algorithm | N | --ca-dir | per cert = wall/N (µs) | × raw | marginal (µs) | "
              "× raw | CPU/cert (µs) | target ≤ 1.10× |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---|")
        self.batch_verdicts = []
        for alg in a.algs:
            raw = med([x[0] for x in self.raw[alg]])
            for n in (100, 1000):
                for cadir in (False, True):
                    rs = self.runs[(alg, n, cadir)]
                    ones = self.runs[(alg, 1, cadir)]
                    per = [r.wall / n * 1e6 for r in rs]
                    marg = [(r.wall - o.wall) / (n - 1) * 1e6 for r, o in zip(rs, ones)]
                    cpu = [r.cpu / n * 1e6 for r in rs]
                    ratio = med(per) / raw
                    target = ""
                    if alg in ("ecdsa-p384", "rsa-3072"):
                        ok = ratio <= 1.10
                        target = "met" if ok else "**not met**"
                        self.batch_verdicts.append((alg, n, cadir, ratio, ok))
                    print(f"| {alg} | {n} | {'yes' if cadir else 'no'} | {med(per):.0f} "
                          f"({min(per):.0f}–{max(per):.0f}) | {ratio:.2f} | {med(marg):.0f} | "
                          f"{med(marg) / raw:.2f} | {med(cpu):.0f} | {target} |")
        print()
        print("Fixed startup, measured as a batch of N = 1 (wall, ms; includes one certificate):\n")
        print("| algorithm | no --ca-dir | --ca-dir |")
        print("|---|---:|---:|")
        for alg in a.algs:
            print(f"| {alg} | {med([r.wall for r in self.runs[(alg, 1, False)]]) * 1e3:.1f} | "
                  f"{med([r.wall for r in self.runs[(alg, 1, True)]]) * 1e3:.1f} |")
        print()

    # --- cold single certificate -----------------------------------------------------------------
    def cold_cmd(self, tool, alg, out):
        cold_csr = os.path.join(self.w, "cold.csr")
        hash_ = "384" if alg == "ecdsa-p384" else "256"
        if tool.startswith("hsmca"):
            cmd = [self.hsmca]
            if tool == "hsmca":
                cmd += ["--ca-dir", self.ca_copy(alg)]
            return cmd + ["sign", "--key", self.uri(alg), "--issuer", self.root(alg), "--csr",
                          cold_csr, "--profile", "intermediate", "--path-len", "0",
                          "--validity", "1y", "--out", out], self.env_hsmca
        if tool == "openssl":
            return ["openssl", "x509", "-req", "-in", cold_csr, "-CA", self.root(alg),
                    "-engine", "pkcs11", "-CAkeyform", "engine", "-CAkey",
                    self.uri(alg, private=True), f"-sha{hash_}", "-days", "365", "-extfile",
                    os.path.join(self.w, "openssl-ext.cnf"), "-out", out], self.env_openssl
        if tool == "certtool":
            return ["certtool", "--generate-certificate", "--provider", self.a.module,
                    "--load-ca-privkey", self.uri(alg, private=True), "--load-ca-certificate",
                    self.root(alg), "--load-request", cold_csr, "--template",
                    os.path.join(self.w, "certtool.cfg"), "--hash", f"SHA{hash_}",
                    "--outfile", out], self.env_certtool
        raise ValueError(tool)

    COLD_TOOLS = ["hsmca", "openssl", "certtool", "hsmca-no-ca-dir"]

    def phase_cold(self):
        a = self.a
        self.cold = {}  # (alg, tool) -> [wall s]
        self.cold_sigalg = {}
        for alg in a.algs:
            self.checkpoint(f"cold {alg}")
            note(f"cold single certificate, {alg}: {a.rounds} rounds (load {loadavg()})")
            for rnd in range(a.rounds):
                for tool in rotate(self.COLD_TOOLS, rnd):
                    out = self.fresh(f"cold-{tool}-{alg}") + ".crt"
                    cmd, env = self.cold_cmd(tool, alg, out)  # the CA dir copy is made here
                    r = run(cmd, env, f"cold {tool} {alg}")
                    self.cold.setdefault((alg, tool), []).append(r.wall)
                    if rnd == 0:
                        self.check_cold_output(alg, tool, out)

    def check_cold_output(self, alg, tool, out):
        v = subprocess.run(["openssl", "verify", "-CAfile", self.root(alg), out],
                           capture_output=True, text=True)
        if v.returncode != 0:
            die(f"{tool}'s certificate for {alg} does not verify: {v.stdout}{v.stderr}")
        text = capture(["openssl", "x509", "-in", out, "-noout", "-text"], None, "openssl x509")
        sig = re.search(r"Signature Algorithm: (\S+)", text)
        ca = "CA:TRUE, pathlen:0" in text
        self.cold_sigalg[(alg, tool)] = (sig.group(1) if sig else "?", ca)

    def report_cold(self):
        a = self.a
        print("## One cold process: sign one intermediate from a CSR\n")
        print(f"{a.rounds} rounds; each round runs every variant once, in an order rotated "
              "round by round. Wall time from fork to exit; medians (p10–p90). "
              "`hsmca` = load module, log in, check the CA directory's log, sign, verify, record "
              "(fsync), keep and write the certificate (fsync), seal the log (a second C_Sign, "
              "fsync), recording into the algorithm's CA directory. "
              "`hsmca-no-ca-dir` is the same command without --ca-dir (no record, no seal), for "
              "reference. openssl and certtool load only SoftHSM2 (`MODULE_PATH`, "
              "`--provider`), sign the same CSR with the same key and hash, and neither "
              "verifies the signature they get nor fsyncs.\n")
        print("| algorithm | hsmca (ms) | openssl (ms) | certtool (ms) | hsmca-no-ca-dir (ms) | "
              "hsmca/openssl | hsmca/certtool | target ≤ 1.0 |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        self.cold_verdicts = []

        def cell(xs):
            xs = sorted(xs)
            lo, hi = xs[int(0.1 * (len(xs) - 1))], xs[int(round(0.9 * (len(xs) - 1)))]
            return f"{med(xs) * 1e3:.1f} ({lo * 1e3:.1f}–{hi * 1e3:.1f})"

        for alg in a.algs:
            h, o, c, n = (self.cold[(alg, t)] for t in self.COLD_TOOLS)
            ro, rc = med(h) / med(o), med(h) / med(c)
            ok = ro <= 1.0 and rc <= 1.0
            self.cold_verdicts.append((alg, ro, rc, ok))
            print(f"| {alg} | {cell(h)} | {cell(o)} | {cell(c)} | {cell(n)} | {ro:.2f} | "
                  f"{rc:.2f} | {'met' if ok else '**not met**'} |")
        print()
        print("Signature algorithm of each tool's certificate (all verify with `openssl verify` "
              "against the root; `CA` = basicConstraints CA:TRUE, pathlen:0):\n")
        for alg in a.algs:
            parts = [f"{t} {self.cold_sigalg[(alg, t)][0]}{' CA' if self.cold_sigalg[(alg, t)][1] else ''}"
                     for t in self.COLD_TOOLS]
            print(f"- {alg}: " + ", ".join(parts))
        print()

    # --- memory ------------------------------------------------------------------------------
    def phase_memory(self):
        a = self.a
        alg = "ecdsa-p256"
        self.checkpoint("memory")
        note(f"peak memory: {alg} with --ca-dir, N = 100 and N = {a.big} (load {loadavg()})")
        self.mem = {100: [], a.big: []}
        self.mem_wall = {100: [], a.big: []}
        for n in (100, a.big, 100):
            f = self.fresh("time") + ".txt"
            # /usr/bin/time, not wait4 here: Linux keeps a process's peak RSS across exec, so
            # the ru_maxrss of a child forked from this Python includes the interpreter's RSS.
            r, _ = self.batch(alg, n, True,
                               timed_with=["/usr/bin/time", "-f", "%M", "-o", f])
            with open(f) as fh:
                self.mem[n].append(int(fh.read().strip().splitlines()[-1]))
            self.mem_wall[n].append(r.wall)

    def report_memory(self):
        a = self.a
        small, large = med(self.mem[100]), med(self.mem[a.big])
        ratio = large / small
        self.mem_verdict = (small, large, ratio, ratio <= 1.2)
        print("## Peak resident memory of a batch (ecdsa-p256, --ca-dir)\n")
        print("`/usr/bin/time -f %M` (KiB). N = 100 twice (before and after the large batch), "
              f"N = {a.big} once.\n")
        print("| N | peak RSS (KiB) | wall (s) | per cert (µs) |")
        print("|---:|---:|---:|---:|")
        for n in (100, a.big):
            w = med(self.mem_wall[n])
            print(f"| {n} | {', '.join(str(x) for x in self.mem[n])} | {w:.2f} | "
                  f"{w / n * 1e6:.0f} |")
        growth = (large - small) * 1024 / (a.big - 100)
        print(f"\nRatio N={a.big} / N=100: **{ratio:.3f}** (target ≤ 1.2: "
              f"{'met' if ratio <= 1.2 else '**not met**'}); growth ≈ {growth:.0f} bytes per "
              "certificate.\n")

    # --- perf (optional) -----------------------------------------------------------------------
    CATEGORIES = [
        ("startup: module load, session, login, key lookup",
         ("Module::load", "C_Initialize", "C_Login", "C_OpenSession", "TokenSession::open",
          "open_key", "C_FindObjects", "C_GetSlotList", "C_GetTokenInfo")),
        ("token C_Sign (SoftHSM2 and the libcrypto under it)",
         ("C_Sign", "signing_macing", "TokenSession::sign")),
        ("host verification of each issued certificate (AWS-LC)",
         ("verify_certificate", "PreparedCert::finish")),
        ("CSR checks before signing (parse, self-signature)",
         ("CheckedCsr::check", "verify_self_signature", "check_requests")),
        ("audit log: record building (JSON, base64) and append (write, fsync)",
         ("AuditLog::append", "AuditLog::seal", "issued_record", "CaDir::append")),
        ("opening the CA directory (read and verify the log, check kept files)",
         ("Recorder::open", "CaDir::open", "check_files")),
        ("certificate files: O_TMPFILE create, write, fsync, link, directory fsync",
         ("write_atomic", "write_pem_certs")),
        ("TBS building, serial, encoding, post-sign decode/encode checks",
         ("sign_csr", "prepare_csr", "PreparedCert", "issue::prepare")),
        ("request and output path checks",
         ("certificate_paths", "request_paths", "check_free", "Requests::", "Outputs::")),
        ("reading and re-hashing CSRs", ("Csr::parse", "read_file", "CheckedCsr::recheck")),
    ]

    def phase_perf(self):
        alg, n = "ecdsa-p384", 1000
        note(f"perf record of a {alg} batch, N = {n}, --ca-dir (load {loadavg()})")
        data = self.fresh("perf") + ".data"
        freq = 999
        self.batch(alg, n, True, timed_with=["perf", "record", "-q", "-F", str(freq),
                                             "--call-graph", "dwarf,16384", "-o", data, "--"])
        note("perf script (unwinding the samples takes a minute)")
        script = self.fresh("perf") + ".txt"
        run(["perf", "script", "-i", data, "-F", "comm,ip,sym,dso"], None, "perf script",
            stdout_path=script)
        counts, sub_inode, sub_fsync, total = {}, 0, 0, 0

        def classify(frames):
            syms = [s for s, _ in frames]
            for name, keys in self.CATEGORIES:
                if any(k in s for s in syms for k in keys):
                    return name
            if any("libsofthsm2" in d or "libcrypto" in d for _, d in frames):
                return self.CATEGORIES[1][0]  # unwinding stopped inside SoftHSM2/libcrypto
            return "other (process start, allocator, unresolved frames)"

        def flush(frames):
            nonlocal sub_inode, sub_fsync, total
            if not frames:
                return
            total += 1
            c = classify(frames)
            counts[c] = counts.get(c, 0) + 1
            if c == self.CATEGORIES[6][0] or c == self.CATEGORIES[4][0]:
                syms = [s for s, _ in frames]
                if any("__ext4_new_inode" in s for s in syms):
                    sub_inode += 1
                if any(k in s for s in syms for k in ("do_fsync", "sync_all", "sync_data")):
                    sub_fsync += 1

        frame_re = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$")
        frames = []
        with open(script, errors="replace") as f:
            for line in f:
                if not line.strip():
                    flush(frames)
                    frames = []
                    continue
                m = frame_re.match(line)
                if m:
                    frames.append((m.group(1), m.group(2)))
        flush(frames)
        self.perf = (counts, sub_inode, sub_fsync, total, freq)

    def report_perf(self):
        counts, sub_inode, sub_fsync, total, freq = self.perf
        rs = self.runs.get(("ecdsa-p384", 1000, True), [])
        print("## Where the time goes: `perf record` of an ecdsa-p384 batch, N = 1000, --ca-dir\n")
        print(f"{total} on-CPU samples at {freq} Hz (DWARF call graphs), each assigned to the "
              "first category (in this order) one of its frames belongs to.\n")
        print("| category (on-CPU time) | share |")
        print("|---|---:|")
        for name, _ in self.CATEGORIES + [("other (process start, allocator, unresolved frames)", ())]:
            if name in counts:
                print(f"| {name} | {counts[name] / total * 100:.1f} % |")
        print(f"| … of the file and audit categories: ext4 inode allocation (O_TMPFILE) | "
              f"{sub_inode / total * 100:.1f} % |")
        print(f"| … of the file and audit categories: fsync (on-CPU part) | "
              f"{sub_fsync / total * 100:.1f} % |")
        if rs:
            wall, cpu = med([r.wall for r in rs]), med([r.cpu for r in rs])
            print(f"\nOff-CPU: in the timed runs of this batch (no perf), CPU time was "
                  f"{cpu:.2f} s of {wall:.2f} s wall: {(1 - cpu / wall) * 100:.0f} % of the "
                  "wall time the process waited, for fsync and, on a busy machine, for a CPU.")
        print()

    # --- summary -------------------------------------------------------------------------------
    def report_header(self):
        a = self.a
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
        osname = "?"
        try:
            with open("/etc/os-release") as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        osname = line.split("=", 1)[1].strip().strip('"')
        except OSError:
            pass
        mnt, fs, opts = filesystem_of(self.w)
        pkgs = capture(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "libsofthsm2",
                        "libengine-pkcs11-openssl", "gnutls-bin", "openssl"], None, "dpkg-query")
        print("# hsmca benchmark results\n")
        print(f"- date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(self.started))}")
        print(f"- command: `{a.command}` (repetitions {self.reps_done} of {a.reps}, cold rounds "
              f"{a.rounds}, raw count {a.raw_count}, large batch {a.big})")
        print(f"- machine: {cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB, "
              f"{osname}, kernel {os.uname().release}")
        print(f"- work directory: {self.w} on {mnt} ({fs}, {opts})")
        print(f"- {first_line([self.hsmca, '--version'])} ({a.source}); "
              f"{first_line(['openssl', 'version'])}; {first_line(['certtool', '--version'])}; "
              f"SoftHSM2 {first_line(['softhsm2-util', '--version'])}")
        print("- packages: " + ", ".join(pkgs.split("\n")).strip(", "))
        print()

    def report_conditions(self):
        print("## Conditions during the run\n")
        print("Load average (1, 5, 15 min) and the median time to create a 1 KiB file durably "
              "in the work directory (create, write, fsync, directory fsync — what each "
              "certificate file costs), at the start of each phase:\n")
        print("| phase | load average | durable file creation (ms) |")
        print("|---|---|---:|")
        for (label, load), (_, ms) in zip(self.loads, self.fsyncs):
            print(f"| {label} | {load} | {ms:.2f} |")
        print()

    def report_summary(self):
        print("## Targets\n")
        for alg, n, cadir, ratio, ok in self.batch_verdicts:
            print(f"- batch {alg} N={n} {'with' if cadir else 'without'} --ca-dir: "
                  f"{ratio:.2f}× raw — target ≤ 1.10×: {'met' if ok else 'NOT met'}")
        if self.a.batch_only:
            print()
            return
        for alg, ro, rc, ok in self.cold_verdicts:
            print(f"- cold {alg}: hsmca/openssl {ro:.2f}, hsmca/certtool {rc:.2f} — "
                  f"target ≤ 1.0: {'met' if ok else 'NOT met'}")
        small, large, ratio, ok = self.mem_verdict
        print(f"- memory: {large} / {small} KiB = {ratio:.3f} — target ≤ 1.2: "
              f"{'met' if ok else 'NOT met'}")
        print()

    def main(self):
        self.started = time.time()
        os.makedirs(os.path.join(self.w, "runs"), exist_ok=True)
        self.phase_batches()
        if not self.a.batch_only:
            self.phase_cold()
            self.phase_memory()
        if self.a.perf:
            self.phase_perf()
        self.checkpoint("end")
        self.report_header()
        self.report_conditions()
        self.report_batches()
        if not self.a.batch_only:
            self.report_cold()
            self.report_memory()
        if self.a.perf:
            self.report_perf()
        self.report_summary()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hsmca", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--token-uri", required=True, help="e.g. token=hsmca%%20bench")
    p.add_argument("--module", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--raw-count", type=int, default=1000)
    p.add_argument("--big", type=int, default=10000)
    p.add_argument("--perf", action="store_true")
    p.add_argument("--batch-only", action="store_true",
                   help="the raw and batch phase alone (no cold, memory or perf phase)")
    p.add_argument("--budget", type=int, default=300,
                   help="seconds for the raw and batch repetitions (at least one is run)")
    p.add_argument("--source", default="?", help="what the hsmca binary was built from")
    p.add_argument("--command", default="scripts/bench.sh")
    p.add_argument("--algs", nargs="+", required=True)
    a = p.parse_args()
    if a.reps < 1 or a.rounds < 1 or a.big <= 100:
        die("--reps and --rounds must be at least 1, --big more than 100")
    Bench(a).main()


if __name__ == "__main__":
    main()
