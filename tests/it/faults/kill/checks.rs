//! What is left after a kill, checked; and the recovery an operator makes, checked step by step.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::super::sandbox::*;
use super::super::*;
use super::points::*;
use hsmca::internals::audit::{AuditLog, Event, IssuedCert};

/// Runs `args` told to stop at `point`, kills it (SIGKILL) once it is stopped there; returns
/// its stderr, or why the point was not reached.
pub(super) fn run_and_kill(
    sb: &Sandbox,
    args: &[String],
    point: &KillPoint,
    tag: &str,
) -> Result<String, String> {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::Duration;
    let log = sb.path(format!("calls-{tag}.txt"));
    let out_path = sb.path(format!("killed-{tag}.stdout"));
    let err_path = sb.path(format!("killed-{tag}.stderr"));
    let mut cmd = preloaded(sb, &log);
    cmd.args(args)
        .env("HSMCA_FAULT_STOP_FN", point.func)
        .env("HSMCA_FAULT_STOP_N", point.n.to_string())
        .env("HSMCA_FAULT_STOP_AT", point.when())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("start hsmca");
    let started = Instant::now();
    loop {
        // try_wait does not report a stopped child (no WUNTRACED): only an ended one.
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!(
                "it never stopped there: it ended ({status}): {}",
                fs::read_to_string(&err_path).unwrap_or_default().trim()
            ));
        }
        if process_state(child.id()) == Some('T') {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("it did not stop within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    if status.signal() != Some(9) {
        return Err(format!("it ended with {status}, not by SIGKILL"));
    }
    // The stop line ends the stopping thread's calls; the other threads may have logged a
    // call between it and the stop (the token's thread makes every token call, the writer
    // every fsync until the seal, which comes after it ended).
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    let want = format!("{} STOP {}", point.func, point.when());
    let lines: Vec<&str> = log_text.lines().collect();
    let same_thread = |l: &&str| (point.func == "fsync") == l.starts_with("fsync");
    match lines.iter().position(|l| *l == want) {
        Some(i) if !lines[i + 1..].iter().any(same_thread) => Ok(stderr),
        _ => Err(format!(
            "the call log does not end the stopped thread's calls with `{want}`: {:?}",
            &lines[lines.len().saturating_sub(3)..]
        )),
    }
}

/// Files under `dirs` that do not parse whole: certificates (`*.crt`, `*.pem`: PEM
/// certificates only, exactly as written), CRLs, the audit log (every line JSON, the chain
/// intact), the lock file (empty); the CA-key index and the stamp are whatever a kill left;
/// anything else is reported as unexpected.
pub(super) fn unparsable_files(sb: &Sandbox, dirs: &[&str]) -> Vec<String> {
    use der::Decode;
    let mut problems = Vec::new();
    for dir in dirs {
        for (rel, bytes) in files_in(&sb.path(dir)) {
            let name = Path::new(dir).join(&rel).display().to_string();
            let text = String::from_utf8_lossy(&bytes);
            let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or_default();
            let (label, pem_ok) = match ext {
                "crt" | "pem" => ("CERTIFICATE", true),
                "crl" => ("X509 CRL", true),
                _ => ("", false),
            };
            if pem_ok {
                let blocks = pem_blocks(&text);
                let again: String = blocks.iter().map(|(l, d)| to_pem(l, d)).collect();
                let parses = blocks.iter().all(|(l, d)| {
                    l == label
                        && match ext {
                            "crl" => <x509_cert::crl::CertificateList>::from_der(d).is_ok(),
                            _ => x509_cert::Certificate::from_der(d).is_ok(),
                        }
                });
                if blocks.is_empty() || !parses || again != text {
                    problems.push(format!("{name} is not whole {label} PEM"));
                }
            } else if rel == Path::new("audit.jsonl") {
                let lines_ok = text.ends_with('\n')
                    && text
                        .lines()
                        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok());
                let chain = AuditLog::new(&sb.path(dir).join(&rel)).read();
                if !lines_ok || chain.is_err() {
                    problems.push(format!("{name} is not whole JSON lines: {:?}", chain.err()));
                }
            } else if rel == Path::new("lock") {
                if !bytes.is_empty() {
                    problems.push(format!("{name} is not empty"));
                }
            } else if rel == Path::new("ca-keys") || rel == Path::new("stamp") {
                // The CA-key index (entries past the last seal's count are a stopped
                // command's, cut off by the next one) and the stamp (a hint, written in
                // place): neither is trusted as it stands (the seal's state and the token's
                // head decide).
            } else {
                problems.push(format!("unexpected file {name}"));
            }
        }
    }
    problems
}

/// One batch run to kill: its output directory and the log and kept copies before it.
pub(super) struct Round {
    pub(super) out: String,
    /// Token sessions the batch signs on.
    pub(super) sessions: usize,
    pub(super) start_seq: u64,
    pub(super) kept_before: BTreeSet<PathBuf>,
    /// Serials recorded before the round: a signing command keeps again the copies of these
    /// that an earlier kill lost, which are not this round's.
    pub(super) serials_before: BTreeSet<String>,
}

impl Round {
    pub(super) fn start(sb: &Sandbox, out: String, sessions: usize) -> Round {
        let entries = AuditLog::new(&sb.path("ca/audit.jsonl")).read().unwrap();
        Round {
            out,
            sessions,
            start_seq: entries.last().map_or(0, |e| e.record.seq),
            kept_before: files_in(&sb.path("ca/certs")).into_keys().collect(),
            serials_before: entries
                .iter()
                .filter_map(|e| e.record.event.issued_cert())
                .map(|c| c.serial.clone())
                .collect(),
        }
    }

    /// The copies of this round's certificates kept in `ca/certs/`: file name → contents.
    pub(super) fn kept(&self, sb: &Sandbox) -> BTreeMap<PathBuf, Vec<u8>> {
        files_in(&sb.path("ca/certs"))
            .into_iter()
            .filter(|(p, _)| {
                let serial = p.to_string_lossy().trim_end_matches(".pem").to_string();
                !self.kept_before.contains(p) && !self.serials_before.contains(&serial)
            })
            .collect()
    }

    /// This round's records: (certificate, request SHA-256) of each signing, and whether it
    /// has a seal.
    pub(super) fn records(
        &self,
        sb: &Sandbox,
    ) -> Result<(Vec<(IssuedCert, String)>, bool), String> {
        let entries = AuditLog::new(&sb.path("ca/audit.jsonl"))
            .read()
            .map_err(|e| format!("the audit log does not read back: {e}"))?;
        let mut signed = Vec::new();
        let mut sealed = false;
        for e in entries
            .into_iter()
            .filter(|e| e.record.seq > self.start_seq)
        {
            match e.record.event {
                Event::CsrSigned {
                    cert, csr_sha256, ..
                } => signed.push((cert, csr_sha256)),
                Event::Seal { .. } => sealed = true,
                _ => {}
            }
        }
        Ok((signed, sealed))
    }

    pub(super) fn output(&self, sb: &Sandbox, stem: &str) -> PathBuf {
        sb.path(format!("{}/{stem}.crt", self.out))
    }
}

/// The batch's requests: SHA-256 of the DER (as records hold it) → file stem.
pub(super) fn batch_requests(sb: &Sandbox) -> BTreeMap<String, String> {
    files_in(&sb.path("batch"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "csr"))
        .map(|(p, bytes)| {
            let blocks = pem_blocks(&String::from_utf8_lossy(&bytes));
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (hsmca::internals::audit::sha256_hex(&blocks[0].1), stem)
        })
        .collect()
}

/// `hsmca log verify`: its problem, if any; a note must come exactly when the log ends
/// unsealed, naming the certificates `unsealed_certs` (issued after the last seal).
pub(super) fn log_verify_problem(sb: &Sandbox, unsealed_certs: &[&str]) -> Option<String> {
    let entries = AuditLog::new(&sb.path("ca/audit.jsonl")).read().ok()?;
    let unsealed = !matches!(
        entries.last().map(|e| &e.record.event),
        Some(Event::Seal { .. })
    );
    let out = run_command(
        sb.hsmca(None, None)
            .args(["--ca-dir", "ca", "log", "verify"]),
    );
    let stdout = stdout_of(&out);
    if !out.status.success() {
        return Some(format!("'log verify' fails: {}", stderr_of(&out).trim()));
    }
    if unsealed != stdout.contains("\nnote: ") {
        return Some(format!(
            "'log verify' on a log {} says:\n{stdout}",
            if unsealed {
                "ending unsealed"
            } else {
                "ending sealed"
            }
        ));
    }
    if let Some(s) = unsealed_certs.iter().find(|s| !stdout.contains(**s)) {
        return Some(format!(
            "'log verify' does not name {s}, issued after the last seal:\n{stdout}"
        ));
    }
    None
}

/// Every output of the round is a certificate the round recorded for that request.
pub(super) fn outputs_recorded(
    sb: &Sandbox,
    round: &Round,
    signed: &[(IssuedCert, String)],
    requests: &BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> usize {
    let files = files_in(&sb.path(&round.out));
    let mut serials = BTreeSet::new();
    for (rel, bytes) in &files {
        let stem = rel.file_stem().unwrap().to_string_lossy().into_owned();
        let blocks = pem_blocks(&String::from_utf8_lossy(bytes));
        let Some((_, der)) = blocks.first() else {
            continue; // reported by unparsable_files
        };
        let hash = hsmca::internals::audit::sha256_hex(der);
        match signed.iter().find(|(c, _)| c.cert_sha256 == hash) {
            None => problems.push(format!("{}/{stem}.crt is not recorded", round.out)),
            Some((c, csr)) => {
                if requests.get(csr) != Some(&stem) {
                    problems.push(format!(
                        "{}/{stem}.crt holds the certificate of another request",
                        round.out
                    ));
                }
                if !serials.insert(c.serial.clone()) {
                    problems.push(format!("serial {} written twice", c.serial));
                }
            }
        }
    }
    files.len()
}

/// The signatures the batch's token thread made before the kill, from the call log (a C_Sign
/// logged but stopped before it reached the token does not count; the seal's is left out).
pub(super) fn batch_signatures(log: &Path, point: &KillPoint) -> usize {
    let lines = read_log_lines(log);
    let mut c_sign = lines
        .iter()
        .filter(|(f, rest)| f == "C_Sign" && rest.is_empty())
        .count();
    if point.func == "C_Sign" && !point.after {
        c_sign -= 1;
    }
    c_sign.min(BATCH)
}

/// The checks right after the kill. Besides the counts the point allows: what the writer did
/// is a prefix in request order, one step behind the other (outputs ≤ kept ≤ records ≤
/// signatures, each kept copy and output its record's certificate), and the token was at most
/// [`TOKEN_LEAD`] certificates ahead of the last output. Returns the problems and what was
/// found.
pub(super) fn check_after_kill(
    sb: &Sandbox,
    round: &Round,
    point: &KillPoint,
    call_log: &Path,
    requests: &BTreeMap<String, String>,
    exported: &mut BTreeSet<String>,
) -> (Vec<String>, Option<(Found, usize)>) {
    let mut problems = Vec::new();
    let temps = leftover_temp_files(sb.dir.path());
    if !temps.is_empty() {
        problems.push(format!("temporary files left: {temps:?}"));
    }
    problems.extend(unparsable_files(sb, &["ca", &round.out]));
    check_ca_dir(sb, exported, &mut problems);
    let (signed, sealed) = match round.records(sb) {
        Ok(r) => r,
        Err(e) => {
            problems.push(e);
            return (problems, None);
        }
    };
    let unsealed: Vec<&str> = match sealed {
        true => Vec::new(),
        false => signed.iter().map(|(c, _)| c.serial.as_str()).collect(),
    };
    problems.extend(log_verify_problem(sb, &unsealed));
    let outputs = outputs_recorded(sb, round, &signed, requests, &mut problems);
    let kept = round.kept(sb);
    let got = Found {
        recorded: signed.len(),
        kept: kept.len(),
        outputs,
        sealed,
    };
    // In request order (the files of --csr-dir sorted by name, as `requests` is by stem).
    let mut order: Vec<&String> = requests.values().collect();
    order.sort();
    let recorded_stems: Vec<Option<&String>> =
        signed.iter().map(|(_, csr)| requests.get(csr)).collect();
    let first = |n: usize| order.iter().take(n).map(|s| Some(*s)).collect::<Vec<_>>();
    if recorded_stems != first(signed.len()) {
        problems.push(format!(
            "the records are not the first requests in order: {recorded_stems:?}"
        ));
    }
    for (name, bytes) in &kept {
        let serial = name.to_string_lossy().trim_end_matches(".pem").to_string();
        match signed.iter().position(|(c, _)| c.serial == serial) {
            Some(i) if i < kept.len() => {
                let blocks = pem_blocks(&String::from_utf8_lossy(bytes));
                let der = signed[i].0.der().ok();
                if blocks.len() != 1 || Some(&blocks[0].1) != der.as_ref() {
                    problems.push(format!(
                        "ca/certs/{} is not its record's certificate",
                        name.display()
                    ));
                }
            }
            Some(i) => problems.push(format!(
                "ca/certs/{} is record {} of {}: kept copies are not the first records",
                name.display(),
                i + 1,
                signed.len()
            )),
            None => problems.push(format!(
                "ca/certs/{} is not recorded by this batch",
                name.display()
            )),
        }
    }
    let written: BTreeSet<String> = files_in(&sb.path(&round.out))
        .into_keys()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = order.iter().take(outputs).map(|s| s.to_string()).collect();
    if written != want {
        problems.push(format!(
            "the outputs are not the first requests: {written:?}"
        ));
    }
    let signatures = batch_signatures(call_log, point);
    if !(got.outputs <= got.kept && got.kept <= got.recorded && got.recorded <= signatures) {
        problems.push(format!(
            "not outputs ≤ kept ≤ records ≤ signatures ({signatures}): {got:?}"
        ));
    }
    let lead = token_lead(round.sessions);
    if signatures > got.outputs + lead {
        problems.push(format!(
            "the token made {signatures} signatures, more than {lead} ahead of {} outputs",
            got.outputs
        ));
    }
    if !point.expect.allows(&got) {
        problems.push(format!("expected {:?}, found {got:?}", point.expect));
    }
    (problems, Some((got, signatures)))
}

/// What an operator does after the kill, checked step by step; then the batch must be whole.
pub(super) fn recover(
    sb: &Sandbox,
    round: &Round,
    requests: &BTreeMap<String, String>,
    exported: &mut BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (signed, _) = match round.records(sb) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    // The same command again: refused before the token if any output exists, nothing changed.
    if !files_in(&sb.path(&round.out)).is_empty() {
        let before = (files_in(&sb.path("ca")), files_in(&sb.path(&round.out)));
        let out = sb.run(&batch_args(&round.out, round.sessions), None, None);
        let stderr = stderr_of(&out);
        if out.status.code() != Some(1)
            || !error_first(&stderr)
            || !stderr.contains("already exists")
            || !stderr.lines().any(|l| l.starts_with("hint: "))
        {
            problems.push(format!(
                "the same command again: not a clear refusal (exit {:?}): {stderr}",
                out.status.code()
            ));
        }
        if before != (files_in(&sb.path("ca")), files_in(&sb.path(&round.out))) {
            problems.push("the refused command again changed files".into());
        }
    }
    // Recorded but not written: exported from the log.
    for (cert, csr) in &signed {
        let Some(stem) = requests.get(csr) else {
            problems.push(format!("{} signs a request not in the batch", cert.serial));
            continue;
        };
        let out = round.output(sb, stem);
        if !out.exists() {
            let run = sb.run(
                &strings(&[
                    "--ca-dir",
                    "ca",
                    "export",
                    "--serial",
                    &cert.serial,
                    "--out",
                ])
                .into_iter()
                .chain([out.display().to_string()])
                .collect::<Vec<_>>(),
                None,
                None,
            );
            if !run.status.success() {
                problems.push(format!(
                    "export of {} fails: {}",
                    cert.serial,
                    stderr_of(&run)
                ));
            }
        }
    }
    // Not yet signed: signed now.
    let rest: Vec<&String> = requests
        .iter()
        .filter(|(sha, _)| !signed.iter().any(|(_, c)| c == *sha))
        .map(|(_, stem)| stem)
        .collect();
    if !rest.is_empty() {
        let mut args = strings(&["--ca-dir", "ca", "sign", "--key"]);
        args.push(key_uri());
        for stem in &rest {
            args.extend(["--csr".into(), format!("batch/{stem}.csr")]);
        }
        args.extend(["--out-dir".into(), round.out.clone()]);
        args.extend(strings(&[
            "--profile",
            "intermediate",
            "--path-len",
            "0",
            "--validity",
            "5y",
        ]));
        let out = sb.run(&args, None, None);
        if !out.status.success() {
            problems.push(format!(
                "signing the {} requests left fails: {}",
                rest.len(),
                stderr_of(&out)
            ));
        }
    }
    // The batch is whole.
    problems.extend(log_verify_problem(sb, &[]));
    check_ca_dir(sb, exported, &mut problems);
    problems.extend(unparsable_files(sb, &["ca", &round.out]));
    let temps = leftover_temp_files(sb.dir.path());
    if !temps.is_empty() {
        problems.push(format!("temporary files left: {temps:?}"));
    }
    let (signed, sealed) = match round.records(sb) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    if !rest.is_empty() && !sealed {
        problems.push("the recovering sign did not seal the log".into());
    }
    let outputs = outputs_recorded(sb, round, &signed, requests, &mut problems);
    for (sha, stem) in requests {
        let n = signed.iter().filter(|(_, c)| c == sha).count();
        if n != 1 {
            problems.push(format!("{stem} signed {n} times"));
        }
    }
    if outputs != BATCH || signed.len() != BATCH {
        problems.push(format!(
            "after recovery: {} records, {outputs} outputs, for {BATCH} requests",
            signed.len()
        ));
    }
    problems
}

/// Kills, checks and recovers one round; returns the problems, each naming the point.
pub(super) fn kill_round(
    sb: &Sandbox,
    round: &Round,
    point: &KillPoint,
    tag: &str,
    exported: &mut BTreeSet<String>,
) -> Vec<String> {
    let requests = batch_requests(sb);
    let args = batch_args(&round.out, round.sessions);
    let mut problems = match run_and_kill(sb, &args, point, tag) {
        Err(e) => vec![e],
        Ok(stderr) if stderr.contains("panicked") || stderr.contains("error:") => {
            vec![format!("stderr before the kill: {stderr}")]
        }
        Ok(_) => {
            let log = sb.path(format!("calls-{tag}.txt"));
            let (problems, found) = check_after_kill(sb, round, point, &log, &requests, exported);
            if let Some((f, signatures)) = found {
                eprintln!(
                    "[{point}] {signatures} signed, {} recorded, {} kept, {} written{}{}",
                    f.recorded,
                    f.kept,
                    f.outputs,
                    if f.sealed { ", sealed" } else { "" },
                    if point.expect.is_exact() {
                        ""
                    } else {
                        " (a range)"
                    },
                );
            }
            problems
        }
    };
    problems.extend(recover(sb, round, &requests, exported));
    problems
        .into_iter()
        .map(|p| format!("[{point}] {p}"))
        .collect()
}
