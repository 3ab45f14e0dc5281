//! Where a batch is killed: the 20 kill points, what each allows to be left, and the check that
//! the batch still makes the calls they are numbered from.

use std::fs;
use std::path::Path;

use super::super::sandbox::*;
use super::super::*;

/// Requests in the batch.
pub(super) const BATCH: usize = 8;
/// The certificate of the batch the middle kill points are in.
pub(super) const MID: usize = 5;
/// How many certificates the token's thread may be ahead of the writer's with one session.
pub(super) const TOKEN_LEAD: usize = token_lead(1);

/// How far the token may run ahead of the outputs with `sessions` signing: each session holds
/// one signed certificate, the channel to the writer two per session, the writer one. The
/// batch enforces it at every interleaving (`src/ca/batch.rs`: a window of permits, one taken
/// before each signature, one given back per output written), so the check holds whatever
/// the scheduler does; the figure is kept here, not imported, as the promise the test holds
/// the code to.
pub(super) const fn token_lead(sessions: usize) -> usize {
    3 * sessions + 1
}

/// How many of this batch's certificates are recorded, kept in `ca/certs/` and written to the
/// output directory after a kill, and whether the batch's seal is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) recorded: usize,
    pub(super) kept: usize,
    pub(super) outputs: usize,
    pub(super) sealed: bool,
}

/// What a kill point allows: each count in an inclusive range. Exact where the stop fixes the
/// writer's state (its own fsyncs; the token calls before the batch or after the writer
/// ended); a range where the token's thread stops while the writer runs beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Expect {
    pub(super) recorded: (usize, usize),
    pub(super) kept: (usize, usize),
    pub(super) outputs: (usize, usize),
    pub(super) sealed: bool,
}

impl Expect {
    pub(super) fn exact(recorded: usize, kept: usize, outputs: usize, sealed: bool) -> Expect {
        Expect {
            recorded: (recorded, recorded),
            kept: (kept, kept),
            outputs: (outputs, outputs),
            sealed,
        }
    }

    /// The token's thread stopped at certificate `k`'s signature (before or just after it,
    /// before handing it on): the writer may have done anything from certificate k - 4 whole
    /// to k - 1 whole, and nothing of k.
    pub(super) fn token_at(k: usize) -> Expect {
        let r = (k.saturating_sub(TOKEN_LEAD), k - 1);
        Expect {
            recorded: r,
            kept: r,
            outputs: r,
            sealed: false,
        }
    }

    pub(super) fn is_exact(&self) -> bool {
        self.recorded.0 == self.recorded.1
            && self.kept.0 == self.kept.1
            && self.outputs.0 == self.outputs.1
    }

    pub(super) fn allows(&self, f: &Found) -> bool {
        let within = |(lo, hi): (usize, usize), n: usize| lo <= n && n <= hi;
        within(self.recorded, f.recorded)
            && within(self.kept, f.kept)
            && within(self.outputs, f.outputs)
            && self.sealed == f.sealed
    }
}

/// Where a batch is stopped and killed: before or after the `n`-th call of `func`.
#[derive(Debug, Clone)]
pub(super) struct KillPoint {
    pub(super) what: String,
    pub(super) func: &'static str,
    pub(super) n: usize,
    pub(super) after: bool,
    pub(super) expect: Expect,
}

impl KillPoint {
    pub(super) fn when(&self) -> &'static str {
        if self.after { "after" } else { "before" }
    }
}

impl std::fmt::Display for KillPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} #{}: {}",
            self.when(),
            self.func,
            self.n,
            self.what
        )
    }
}

/// Certificate i's signature is C_Sign #i, after C_SignInit #i (one C_Sign per signature: no
/// length query); the seal's is C_Sign #(BATCH+1). See [`check_batch_shape`].
pub(super) fn sign_call(i: usize) -> usize {
    i
}

/// The writer's fsyncs: certificate i's record is fsync #3(i-1)+1, its kept copy +2, its
/// output +3; then #3·BATCH+1 the output directory, +2 `certs/`, +3 `crls/`, +4 the CA-key
/// index, +5 the seal's record, +6 the stamp kept after the token's head moved.
pub(super) fn fsync_call(i: usize, step: usize) -> usize {
    3 * (i - 1) + step
}

/// The 20 kill points, numbered per thread as the batch makes its calls (see
/// [`check_batch_shape`]).
pub(super) fn kill_points() -> Vec<KillPoint> {
    let e = Expect::exact;
    let t = Expect::token_at;
    let p = |what: String, func: &'static str, n: usize, after: bool, expect: Expect| KillPoint {
        what,
        func,
        n,
        after,
        expect,
    };
    let (b, m) = (BATCH, MID);
    let s = |t: &str| t.to_string();
    let (record, kept, output) = (1, 2, 3);
    vec![
        p(
            s("CA directory locked, log read, token untouched"),
            "C_Initialize",
            1,
            false,
            e(0, 0, 0, false),
        ),
        p(
            s("logged in, nothing signed"),
            "C_Login",
            1,
            true,
            e(0, 0, 0, false),
        ),
        p(
            s("certificate 1's TBS going to the token"),
            "C_Sign",
            sign_call(1),
            false,
            t(1),
        ),
        p(
            s("certificate 1's record written, not synced"),
            "fsync",
            fsync_call(1, record),
            false,
            e(1, 0, 0, false),
        ),
        p(
            s("certificate 1's record durable, no copy, no output"),
            "fsync",
            fsync_call(1, record),
            true,
            e(1, 0, 0, false),
        ),
        p(
            s("certificate 1's kept copy in an unnamed file"),
            "fsync",
            fsync_call(1, kept),
            false,
            e(1, 0, 0, false),
        ),
        p(
            s("certificate 1 kept, its output in an unnamed file"),
            "fsync",
            fsync_call(1, output),
            false,
            e(1, 1, 0, false),
        ),
        p(
            s("certificate 1's output synced, not linked"),
            "fsync",
            fsync_call(1, output),
            true,
            e(1, 1, 0, false),
        ),
        p(
            s("certificate 1's output linked, certificate 2's record written, not synced"),
            "fsync",
            fsync_call(2, record),
            false,
            e(2, 1, 1, false),
        ),
        p(
            format!("{} certificates signed, {m} not started", m - 1),
            "C_SignInit",
            m,
            false,
            t(m),
        ),
        p(
            format!("certificate {m} signed, not handed to the writer"),
            "C_Sign",
            sign_call(m),
            true,
            t(m),
        ),
        p(
            format!("certificate {m}'s record durable, no copy, no output"),
            "fsync",
            fsync_call(m, record),
            true,
            e(m, m - 1, m - 1, false),
        ),
        p(
            format!("certificate {m} kept, its output being written"),
            "fsync",
            fsync_call(m, output),
            false,
            e(m, m, m - 1, false),
        ),
        p(
            format!("the last certificate ({b}) signed, not handed to the writer"),
            "C_Sign",
            sign_call(b),
            true,
            t(b),
        ),
        p(
            s("every output durable, the seal not started"),
            "fsync",
            fsync_call(b + 1, 1),
            true,
            e(b, b, b, false),
        ),
        p(
            s("the kept copies durable, the CA-key index written, not synced, no seal"),
            "fsync",
            fsync_call(b + 1, 4),
            false,
            e(b, b, b, false),
        ),
        p(
            s("the seal signed, not recorded"),
            "C_Sign",
            sign_call(b + 1),
            true,
            e(b, b, b, false),
        ),
        p(
            s("the seal written, not synced"),
            "fsync",
            fsync_call(b + 1, 5),
            false,
            e(b, b, b, true),
        ),
        p(
            s("the seal durable, the token's head not yet moved past it"),
            "C_CreateObject",
            2,
            false,
            e(b, b, b, true),
        ),
        p(
            s("the token's head moved past the seal, its stamp not kept"),
            "fsync",
            fsync_call(b + 1, 6),
            false,
            e(b, b, b, true),
        ),
    ]
}

/// A root with a batch of requests in `batch/`.
pub(super) fn with_batch() -> TestToken {
    let t = with_root();
    for i in 1..=BATCH {
        make_csr(
            &t.path("batch"),
            &format!("req-{i:02}"),
            CsrAlg::P256,
            &format!("Batch Int CA {i:02}"),
        );
    }
    t
}

/// The batch's `sign`, on `sessions` token sessions (one keeps every token call in request
/// order, which the token's kill points and the shape check count on).
pub(super) fn batch_args(out_dir: &str, sessions: usize) -> Vec<String> {
    in_ca_dir("ca", batch_sign_args(&key_uri(), "batch", out_dir))
        .with(&["--sessions", &sessions.to_string()])
}

/// The lines of a preloaded run's call log: the function (or `fsync`) and the rest of the
/// line (an fsync's file; `STOP before|after` for the stop point).
pub(super) fn read_log_lines(path: &Path) -> Vec<(String, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((f, rest)) => (f.to_string(), rest.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// What an fsync of a batch into `out` was for, from the file the call log names
/// (`sandbox/DIR/FILE`, `sandbox/DIR/#INODE (deleted)` for an unnamed file).
pub(super) fn fsync_kind(sandbox: &Path, file: &str, out: &str) -> String {
    let rel = Path::new(file)
        .strip_prefix(sandbox)
        .map_or_else(|_| file.to_string(), |p| p.display().to_string());
    let unnamed = |dir: &str| {
        rel.strip_prefix(dir)
            .and_then(|r| r.strip_prefix("/#"))
            .is_some_and(|r| r.ends_with(" (deleted)"))
    };
    if rel == "ca/audit.jsonl" {
        "record".into()
    } else if unnamed("ca/certs") {
        "kept".into()
    } else if unnamed(out) {
        "output".into()
    } else if rel == out {
        "output dir".into()
    } else {
        rel
    }
}

/// Runs the batch once unkilled and checks what the kill points are numbered from, per thread,
/// since the threads interleave differently in every run: the token calls (one C_Initialize
/// and C_Login; per certificate, in order, C_SignInit, C_Sign; the
/// seal's three; then C_Logout, C_CloseSession, C_Finalize) and the writer's fsyncs (per
/// certificate its record, its kept copy, its output; then the output directory, then the
/// seal's record), and the orders between them that do not depend on timing: certificate i
/// is recorded after its signature, the seal is signed after the writer's last fsync and
/// recorded before C_Logout.
pub(super) fn check_batch_shape(prepared: &Path) {
    let sb = Sandbox::copy_of(prepared);
    let log = sb.path("calls.txt");
    assert_ok(&run_command(
        preloaded(&sb, &log).args(batch_args("out", 1)),
    ));
    let lines = read_log_lines(&log);
    let sandbox = sb.dir.path().canonicalize().unwrap();
    let calls: Vec<String> = lines
        .iter()
        .map(|(f, rest)| match f.as_str() {
            "fsync" => format!("fsync:{}", fsync_kind(&sandbox, rest, "out")),
            _ => f.clone(),
        })
        .collect();
    let mut problems = Vec::new();
    // The token's thread.
    let signing: Vec<&str> = calls
        .iter()
        .map(String::as_str)
        .filter(|c| ["C_SignInit", "C_Sign"].contains(c))
        .collect();
    let want_signing: Vec<&str> = std::iter::repeat_n(["C_SignInit", "C_Sign"], BATCH + 1)
        .flatten()
        .collect();
    if signing != want_signing {
        problems.push(format!(
            "signing calls: not C_SignInit, C_Sign for each of {BATCH} certificates and the seal"
        ));
    }
    let count = |f: &str| calls.iter().filter(|c| *c == f).count();
    if count("C_Initialize") != 1 || count("C_Login") != 1 {
        problems.push("not one C_Initialize and one C_Login".into());
    }
    let first = |f: &str| calls.iter().position(|c| c == f);
    if first("C_Login") > first("C_SignInit") {
        problems.push("C_Login is not before the first C_SignInit".into());
    }
    // The head on the token is marked open once (the second C_CreateObject moves it past the
    // seal), after the login and before the first signature.
    let creates: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "C_CreateObject")
        .map(|(i, _)| i)
        .collect();
    let seal_fsync = calls.iter().rposition(|c| c == "fsync:record");
    let stamp_fsync = calls.iter().rposition(|c| c == "fsync:ca/stamp");
    if creates.len() != 2
        || first("C_SignInit").is_none_or(|s| creates[0] > s)
        || seal_fsync.is_none_or(|f| creates[1] < f)
        || stamp_fsync.is_none_or(|f| creates[1] > f)
    {
        problems.push(
            "the token's head is not written twice: opened before the first C_SignInit, moved after the seal's record's fsync and before the stamp's".into(),
        );
    }
    if !calls.ends_with(&strings(&[
        "C_CreateObject",
        "C_DestroyObject",
        "fsync:ca/stamp",
        "C_Logout",
        "C_CloseSession",
        "C_Finalize",
    ])) {
        problems.push(
            "the end is not the head's replacement on the token, the stamp, C_Logout, C_CloseSession, C_Finalize".into(),
        );
    }
    // The writer's thread.
    let fsyncs: Vec<&str> = calls
        .iter()
        .filter_map(|c| c.strip_prefix("fsync:"))
        .collect();
    let mut want_fsyncs: Vec<&str> = std::iter::repeat_n(["record", "kept", "output"], BATCH)
        .flatten()
        .collect();
    want_fsyncs.extend([
        "output dir",
        "ca/certs",
        "ca/crls",
        "ca/ca-keys",
        "record",
        "ca/stamp",
    ]);
    if fsyncs != want_fsyncs {
        problems.push(format!(
            "fsyncs: not record, kept copy, output for each of {BATCH} certificates, then the \
             output directory, certs/, crls/, the CA-key index, the seal's record and the \
             stamp: {fsyncs:?}"
        ));
    }
    // The orders between them (positions of the n-th call of each kind in the whole log).
    let nth = |pred: &dyn Fn(&str) -> bool, n: usize| {
        calls
            .iter()
            .enumerate()
            .filter(|(_, c)| pred(c))
            .nth(n - 1)
            .map(|(i, _)| i)
    };
    let sign = |n| nth(&|c| c == "C_Sign", n);
    let fsync = |n| nth(&|c| c.starts_with("fsync:"), n);
    for i in 1..=BATCH {
        if fsync(fsync_call(i, 1)) < sign(sign_call(i)) {
            problems.push(format!("certificate {i} is recorded before its signature"));
        }
    }
    if nth(&|c| c == "C_SignInit", BATCH + 1) < fsync(fsync_call(BATCH + 1, 4)) {
        problems.push("the seal is signed before the writer's last fsync".into());
    }
    assert!(
        problems.is_empty(),
        "the kill points assume another call sequence than the batch makes now; renumber \
         kill_points() (and fix check_batch_shape):\n{}\n\n{}",
        problems.join("\n"),
        calls.join(" ")
    );
}
