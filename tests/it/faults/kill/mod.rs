//! SIGKILL during a batch, at exact points, and the operator's recovery; a batch under token
//! faults; SIGKILL inside the write of an audit record.
//!
//! Issue 6: "send SIGKILL during a batch at 20 different points". The points are exact, not
//! timed: the fault module, preloaded (LD_PRELOAD) so that it also stands in front of libc's
//! fsync, stops the process (SIGSTOP) before or after a chosen call, a PKCS#11 call or an fsync;
//! the test waits until the process is stopped and kills it. The batch is a pipeline of three
//! threads (src/ca/batch.rs): a reader builds each TBS, the token's thread signs them in
//! request order, a writer records (fsync), keeps a copy (fsync) and writes the output (fsync)
//! of each certificate in turn; the output directory is fsynced when the writer ends, then the
//! seal is signed and recorded (fsync). Each thread's calls come in a fixed order
//! ([`check_batch_shape`]), their interleaving does not: a stop at one of the writer's fsyncs
//! fixes exactly what is on disk (kills land between the record and the output and in the
//! middle of file writes), while a stop at a token call during the batch leaves the writer
//! anywhere from [`TOKEN_LEAD`] certificates behind to just behind the token, so those points
//! allow a range. After each kill: the process died of SIGKILL; no temporary or partial file
//! anywhere (every file in the CA and output directories parses whole); `log verify` passes,
//! with its note exactly when the log ends unsealed; the records, kept copies and outputs are
//! the ones that point allows, in request order, each a prefix of the one before (record
//! first, then kept copy, then output), none ahead of the token's signatures and the token at
//! most [`TOKEN_LEAD`] ahead of the outputs; no serial twice; every kept copy is its record's
//! certificate, every recorded certificate exports and every output is a recorded certificate.
//! Then the recovery an operator makes: the same command again fails clearly if any output
//! exists (and changes nothing), the certificates recorded without an output are exported, the
//! requests not yet signed are signed (the lock died with the process), and the batch ends
//! complete: one certificate per request, each output its record, the log verified and sealed.

mod checks;
mod points;

use std::collections::BTreeSet;
use std::fs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::sandbox::*;
use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use checks::*;
use hsmca::internals::audit::{AuditLog, Event};
use points::*;

/// SIGKILL inside the one `write` of an audit record, the only place a kill can cut a record
/// short (the 20 points above are all between calls): the certificate's record, and the seal.
/// The killed command wrote nothing after the cut; `log verify` passes and names the
/// unfinished record; the next `sign` removes it, records what it removed and signs.
#[test_needs(softhsm2)]
fn sigkill_inside_an_audit_append() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::Duration;
    let prepared = with_root();
    let mut problems = Vec::new();
    for (n, torn, output_written) in [(1, "csr_signed", false), (2, "seal", true)] {
        let sb = Sandbox::copy_of(prepared.dir());
        let log_before = fs::read(sb.path("ca/audit.jsonl")).unwrap();
        let mut child = preloaded(&sb, &sb.path(format!("calls-{n}.txt")))
            .args(sign_args(&format!("torn-{n}")))
            .env("HSMCA_FAULT_TEAR", "ca/audit.jsonl")
            .env("HSMCA_FAULT_TEAR_N", n.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while process_state(child.id()) != Some('T') {
            assert!(
                child.try_wait().unwrap().is_none(),
                "write {n} of the audit log: the command ended before it"
            );
            assert!(started.elapsed() < Duration::from_secs(60), "never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(9));
        let what = format!("killed inside the write of the {torn} record");

        let log = fs::read(sb.path("ca/audit.jsonl")).unwrap();
        let whole = log.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let partial = &log[whole..];
        let partial_text = String::from_utf8_lossy(partial);
        if partial.is_empty() || !partial_text.contains(&format!("\"event\":\"{torn}\"")) {
            problems.push(format!(
                "{what}: the log does not end in half a {torn} record: {partial_text:?}"
            ));
            continue;
        }
        assert!(log.starts_with(&log_before));
        if sb.path(format!("inter-torn-{n}.crt")).exists() != output_written {
            problems.push(format!("{what}: the output exists: {}", !output_written));
        }
        let verify = run_command(
            sb.hsmca(None, None)
                .args(["--ca-dir", "ca", "log", "verify"]),
        );
        if !verify.status.success()
            || !stdout_of(&verify)
                .contains(&format!("unfinished record of {} bytes", partial.len()))
        {
            problems.push(format!(
                "{what}: log verify should pass and name the unfinished record: {}{}",
                stdout_of(&verify),
                stderr_of(&verify)
            ));
        }

        // The next sign removes it, records that, and signs.
        let next = sb.run(&sign_args(&format!("after-{n}")), None, None);
        if !next.status.success() || !stderr_of(&next).contains("unfinished record") {
            problems.push(format!(
                "{what}: the next sign should remove it and sign: {}",
                stderr_of(&next)
            ));
            continue;
        }
        let entries = AuditLog::new(&sb.path("ca/audit.jsonl")).read().unwrap();
        let removed = entries.iter().find_map(|e| match &e.record.event {
            Event::InterruptedAppendRemoved { offset, bytes, .. } => Some((*offset, bytes.clone())),
            _ => None,
        });
        match removed {
            Some((offset, bytes))
                if offset == whole as u64
                    && B64.decode(&bytes).ok().as_deref() == Some(partial) => {}
            other => problems.push(format!(
                "{what}: the removal is not recorded as it was: {other:?}"
            )),
        }
        let mut exported = BTreeSet::new();
        check_ca_dir(&sb, &mut exported, &mut problems);
        let verify = run_command(
            sb.hsmca(None, None)
                .args(["--ca-dir", "ca", "log", "verify"]),
        );
        if !verify.status.success() || stdout_of(&verify).contains("note:") {
            problems.push(format!(
                "{what}: after the next sign, log verify: {}",
                stdout_of(&verify)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each of the 20 points in a fresh copy of the same CA and token.
#[test_needs(softhsm2)]
fn sigkill_during_a_batch_at_20_points() {
    let started = Instant::now();
    let prepared = with_batch();
    check_batch_shape(prepared.dir());
    let points = kill_points();
    assert_eq!(points.len(), 20);
    let next = AtomicUsize::new(0);
    let problems: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some(point) = points.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let sb = Sandbox::copy_of(prepared.dir());
                    let mut exported = BTreeSet::new();
                    check_ca_dir(&sb, &mut exported, &mut Vec::new());
                    let round = Round::start(&sb, "out".into(), 1);
                    let found = kill_round(&sb, &round, point, "kill", &mut exported);
                    problems.lock().unwrap().extend(found);
                }
            });
        }
    });
    eprintln!(
        "SIGKILL at {} points, each in a fresh CA: {:.1}s",
        points.len(),
        started.elapsed().as_secs_f64()
    );
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A batch on two sessions under token faults. The token refusing the second session leaves
/// one to sign the whole batch, with a note. A device error on a signature, whichever session
/// makes it, stops the batch with the CKR named; what came before it in request order is
/// recorded and written, and the operator's recovery (export, sign the rest) completes it.
#[test_needs(softhsm2)]
fn faults_in_a_two_session_batch() {
    let prepared = with_batch();

    let sb = Sandbox::copy_of(prepared.dir());
    let refused = Fault {
        func: "C_OpenSession".into(),
        n: 2,
        rv: "CKR_SESSION_COUNT",
    };
    let out = sb.run(&batch_args("out", 2), Some(&refused), None);
    assert_ok(&out);
    assert!(
        stderr_of(&out).contains("the token refused another one"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(files_in(&sb.path("out")).len(), BATCH);
    let mut problems = Vec::new();
    check_ca_dir(&sb, &mut BTreeSet::new(), &mut problems);
    assert!(problems.is_empty(), "{problems:?}");

    let sb = Sandbox::copy_of(prepared.dir());
    let mut exported = BTreeSet::new();
    let round = Round::start(&sb, "out".into(), 2);
    let requests = batch_requests(&sb);
    let failed = Fault {
        func: "C_Sign".into(),
        n: sign_call(MID),
        rv: "CKR_DEVICE_ERROR",
    };
    let out = sb.run(&batch_args("out", 2), Some(&failed), None);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert_mentions(&stderr, &["CKR_DEVICE_ERROR"]);
    let (signed, _) = round.records(&sb).unwrap();
    let written = outputs_recorded(&sb, &round, &signed, &requests, &mut problems);
    // Exit 3 exactly when the batch wrote some certificates before it stopped.
    if written > 0 {
        assert_partial(&out);
    } else {
        assert_fails(&out);
    }
    assert!(
        written < BATCH,
        "{written} written after a failed signature"
    );
    problems.extend(unparsable_files(&sb, &["ca", "out"]));
    check_ca_dir(&sb, &mut exported, &mut problems);
    problems.extend(recover(&sb, &round, &requests, &mut exported));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// With two sessions signing, the token's calls interleave, but the writer's fsyncs keep their
/// order: the kill points among them, each in a fresh CA, with the same checks and expectations
/// (the token's lead bounded for two sessions).
#[test_needs(softhsm2)]
fn sigkill_during_a_two_session_batch_at_the_writers_points() {
    let prepared = with_batch();
    let points: Vec<KillPoint> = kill_points()
        .into_iter()
        .filter(|p| p.func == "fsync")
        .collect();
    assert!(points.len() >= 8, "{points:?}");
    let mut problems = Vec::new();
    for (i, point) in points.iter().enumerate() {
        let sb = Sandbox::copy_of(prepared.dir());
        let mut exported = BTreeSet::new();
        check_ca_dir(&sb, &mut exported, &mut Vec::new());
        let round = Round::start(&sb, "out".into(), 2);
        problems.extend(kill_round(
            &sb,
            &round,
            point,
            &format!("two-{i:02}"),
            &mut exported,
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The 20 points one after the other in one CA: each batch killed, recovered, and the next
/// one killed again; the log and the records accumulate.
#[test_needs(softhsm2)]
fn sigkill_at_20_points_into_one_ca() {
    let started = Instant::now();
    let prepared = with_batch();
    check_batch_shape(prepared.dir());
    let sb = Sandbox::copy_of(prepared.dir());
    let mut exported = BTreeSet::new();
    check_ca_dir(&sb, &mut exported, &mut Vec::new());
    let mut problems = Vec::new();
    for (r, point) in kill_points().iter().enumerate() {
        let round = Round::start(&sb, format!("out-{r:02}"), 1);
        problems.extend(kill_round(
            &sb,
            &round,
            point,
            &format!("kill-{r:02}"),
            &mut exported,
        ));
    }
    let issued = recorded_serials(&sb.path("ca"));
    let unique: BTreeSet<&String> = issued.iter().collect();
    assert_eq!(unique.len(), issued.len(), "a serial issued twice");
    assert_eq!(issued.len(), 1 + 20 * BATCH, "the root and 20 batches");
    eprintln!(
        "SIGKILL at 20 points into one CA: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
