//! The ceremony transcript: a text record of what ran (tool and its hash, ceremony file hash,
//! plan digest, people, times, every input and output with its hash, the audit records of each
//! step), ending with a signature by the CA key through the token. `verify` checks the
//! signature against the CA certificate, every listed file's hash and the audit log.

use std::path::{Component, Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;

use super::config::normalise;
use super::plan::{CaState, Plan};
use crate::ca::audit::{AuditLog, sha256_hex};
use crate::error::{Error, Result, read_file};
use crate::output::{Overwrite, write_atomic};
use crate::x509::algorithm::spki_sha256;
use crate::x509::decode::load_certificate_with_der;
use crate::x509::signer::CaSigner;
use crate::x509::validity::fmt;
use crate::x509::verify::verify_signature;

/// First line of every transcript.
const HEADER: &str = "hsmca ceremony transcript v1";
/// Domain separation: a transcript signature can never pass for a TBS or an audit seal.
const CONTEXT: &str = "hsmca-ceremony-transcript-v1\n";
const SIG_ALG: &str = "signature-algorithm: ";
const SIG: &str = "signature: ";

/// SHA-256 (hex) of the running executable, read from /proc/self/exe.
pub fn own_binary_sha256() -> Result<String> {
    let path = PathBuf::from("/proc/self/exe");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) => {
            let exe = std::env::current_exe().map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            std::fs::read(&exe).map_err(|source| Error::Read { path: exe, source })?
        }
    };
    Ok(sha256_hex(&bytes))
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Builds the transcript of a completed ceremony, signs it with `signer` (the CA key on the
/// token), writes it to `path`; records after `last_seq_before_run` count as this run's (never over an existing file) and returns its text.
pub fn write(
    plan: &Plan,
    state: &CaState,
    signer: &dyn CaSigner,
    run_started: OffsetDateTime,
    last_seq_before_run: u64,
    path: &Path,
) -> Result<String> {
    let f = &plan.file;
    let c = &f.ceremony;
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let started = run_started.replace_nanosecond(0).unwrap_or(run_started);
    let mut b = String::new();
    let mut line = |k: &str, v: &str| {
        b.push_str(k);
        b.push_str(": ");
        b.push_str(&one_line(v));
        b.push('\n');
    };
    let file_name = f
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base_abs = std::fs::canonicalize(&f.base).unwrap_or_else(|_| f.base.clone());
    line("ceremony", &c.name);
    line(
        "ceremony-file",
        &format!("{}  {file_name}", hex::encode(f.sha256)),
    );
    line("base-dir", &base_abs.display().to_string());
    line(
        "transcript-path",
        &normalise(&c.transcript).display().to_string(),
    );
    line("plan-digest", &plan.digest_hex());
    line("plan-digest-short", &plan.digest_short());
    line("tool", &format!("hsmca {}", crate::VERSION));
    line("tool-sha256", &own_binary_sha256()?);
    line("operator", &c.operator);
    for w in &c.witnesses {
        line("witness", w);
    }
    line("token", &f.token.label);
    if let Some(s) = &f.token.serial {
        line("token-serial", s);
    }
    line("ca-key", &plan.ca_key_uri().to_string());
    line(
        "ca-key-spki-sha256",
        &hex::encode(spki_sha256(signer.public_key())),
    );
    line("ca-dir", &normalise(&c.ca_dir).display().to_string());
    if let Some(sha) = &state.ca_cert_sha256 {
        line("ca-certificate-sha256", sha);
    }
    line("run-started", &fmt(started));
    line("run-finished", &fmt(now));
    for step in &plan.steps {
        for (i, item) in step.items.iter().enumerate() {
            let Some(ev) = &item.done else {
                return Err(Error::invalid(
                    format!("step {} is not done", step.located.number),
                    "report a bug",
                ));
            };
            // By sequence number, not time: a resumed run can start within the same second.
            let when = if ev.seq > last_seq_before_run {
                "this run"
            } else {
                "an earlier run"
            };
            line(
                "record",
                &format!(
                    "{}.{} {} seq={} sha256={} time={} ({when}): {}",
                    step.located.number,
                    i + 1,
                    step.located.step.kind(),
                    ev.seq,
                    ev.record_hash,
                    ev.time,
                    item.what
                ),
            );
        }
    }
    for step in &plan.steps {
        for item in &step.items {
            for input in &item.inputs {
                line(
                    "input",
                    &format!("{}  {}", input.sha256, input.path.display()),
                );
            }
        }
    }
    for step in &plan.steps {
        for item in &step.items {
            if let Some(ev) = &item.done {
                for out in &ev.outputs {
                    line("output", &format!("{}  {}", out.sha256, out.path.display()));
                }
                if let Some((uri, sha)) = &ev.key {
                    line("key", &format!("{sha}  {uri}"));
                }
            }
        }
    }
    let entries = &state.entries;
    line("audit-log-records", &entries.len().to_string());
    if let Some(last) = entries.last() {
        line("audit-log-last-sha256", &last.hash);
    }
    let body = format!("{HEADER}\n{b}");
    let mut message = CONTEXT.as_bytes().to_vec();
    message.extend_from_slice(body.as_bytes());
    let signature = signer.sign(&message)?;
    let alg = signer
        .signature_algorithm()
        .algorithm_identifier()
        .to_der()
        .map_err(|e| Error::invalid(format!("algorithm encoding: {e}"), "report a bug"))?;
    let text = format!(
        "{body}{SIG_ALG}{}\n{SIG}{}\n",
        B64.encode(alg),
        B64.encode(signature)
    );
    write_atomic(path, text.as_bytes(), 0o644, Overwrite::Refuse)?;
    Ok(text)
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The ceremony's name.
    pub ceremony: String,
    /// The plan digest (short form).
    pub plan_digest_short: String,
    /// SHA-256 fingerprint of the CA certificate the signature verified with.
    pub ca_fingerprint: String,
    /// Files whose hash matched.
    pub files: usize,
    /// Audit records referenced and found unchanged.
    pub records: usize,
    /// Records in the audit log, and its seals.
    pub log_records: u64,
    /// Seals that verified.
    pub log_seals: u64,
}

fn bad(why: impl Into<String>) -> Error {
    Error::invalid(
        format!("the transcript does not verify: {}", why.into()),
        "treat the ceremony's record as untrustworthy until the difference is explained",
    )
}

/// The directory the transcript's relative paths start from.
fn base_of(transcript: &Path, rel: &Path, recorded: &str) -> PathBuf {
    if rel.is_absolute() {
        return PathBuf::from(recorded);
    }
    let mut base = transcript
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    for c in rel
        .parent()
        .map(|p| p.components().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if matches!(c, Component::Normal(_)) {
            base.push("..");
        }
    }
    base
}

/// Checks a transcript: its signature by the CA key (with the CA certificate `ca_cert`, by
/// default the CA directory's), every listed file's hash, and the audit log with the records
/// each step names.
pub fn verify(path: &Path, ca_cert: Option<&Path>) -> Result<Report> {
    verify_anchored(path, Anchor::Cert(ca_cert))
}

/// [`verify`] right after a run, with the CA key's public key: a ceremony that only made a
/// request has no CA certificate yet.
pub fn verify_with_key(path: &Path, key: &spki::SubjectPublicKeyInfoOwned) -> Result<Report> {
    verify_anchored(path, Anchor::Key(key))
}

/// What a transcript's signature is checked with.
enum Anchor<'a> {
    /// A CA certificate file (default: the CA directory's ca.crt).
    Cert(Option<&'a Path>),
    /// The CA key's public key.
    Key(&'a spki::SubjectPublicKeyInfoOwned),
}

fn verify_anchored(path: &Path, anchor: Anchor<'_>) -> Result<Report> {
    let bytes = read_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("it is not UTF-8 text"))?;
    let at = text
        .rfind(&format!("\n{SIG_ALG}"))
        .ok_or_else(|| bad("it has no signature"))?;
    let (body, tail) = text.split_at(at + 1);
    let mut tail_lines = tail.split_inclusive('\n');
    let alg_line = tail_lines.next().unwrap_or_default();
    let sig_line = tail_lines.next().unwrap_or_default();
    if tail_lines.next().is_some() || !sig_line.ends_with('\n') {
        return Err(bad("there is text after the signature"));
    }
    let alg_b64 = alg_line
        .strip_prefix(SIG_ALG)
        .map(str::trim_end)
        .ok_or_else(|| bad("the signature algorithm line is malformed"))?;
    let sig_b64 = sig_line
        .strip_prefix(SIG)
        .map(|s| s.trim_end_matches('\n'))
        .ok_or_else(|| bad("the signature line is malformed"))?;
    let alg = B64
        .decode(alg_b64)
        .ok()
        .and_then(|d| AlgorithmIdentifierOwned::from_der(&d).ok())
        .ok_or_else(|| bad("the signature algorithm does not decode"))?;
    let signature = B64
        .decode(sig_b64)
        .map_err(|_| bad("the signature is not base64"))?;

    let mut lines = body.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad(format!("the first line is not \"{HEADER}\"")));
    }
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for l in lines {
        let (k, v) = l
            .split_once(": ")
            .ok_or_else(|| bad(format!("line \"{l}\" is not `key: value`")))?;
        fields.push((k, v));
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .ok_or_else(|| bad(format!("it has no `{k}` line")))
    };
    let rel = PathBuf::from(get("transcript-path")?);
    let base = base_of(path, &rel, get("base-dir")?);
    let resolve = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let ca_dir = resolve(get("ca-dir")?);
    let (ca_path, ca_spki, ca_fingerprint) = match anchor {
        Anchor::Key(key) => (
            PathBuf::from("the CA key"),
            key.clone(),
            hex::encode_upper(spki_sha256(key)),
        ),
        Anchor::Cert(ca_cert) => {
            let ca_path = ca_cert
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ca_dir.join("ca.crt"));
            if ca_cert.is_none() && !ca_path.exists() {
                return Err(Error::invalid(
                    format!(
                        "{} does not exist: the ceremony made a request, and no CA certificate for its key is in the CA directory",
                        ca_path.display()
                    ),
                    "pass --ca-cert with the certificate the other CA issued for this key",
                ));
            }
            let ca = load_certificate_with_der(&read_file(&ca_path)?)?;
            (
                ca_path,
                ca.certificate
                    .tbs_certificate()
                    .subject_public_key_info()
                    .clone(),
                hex::encode_upper(<sha2::Sha256 as sha2::Digest>::digest(&ca.der)),
            )
        }
    };
    let ca_spki = &ca_spki;
    if hex::encode(spki_sha256(ca_spki)) != get("ca-key-spki-sha256")? {
        return Err(bad(format!(
            "it names a CA key other than the one of {}",
            ca_path.display()
        )));
    }
    let mut message = CONTEXT.as_bytes().to_vec();
    message.extend_from_slice(body.as_bytes());
    verify_signature(ca_spki, &alg, &message, &signature).map_err(|_| {
        bad(format!(
            "its signature does not verify with the key of {} (the text was changed, or another key signed it)",
            ca_path.display()
        ))
    })?;

    let mut problems = Vec::new();
    let mut files = 0;
    // The ceremony file sits in the base directory; a transcript kept apart from it is still
    // checked for everything else.
    if let Some((sha, name)) = get("ceremony-file")?.split_once("  ")
        && let Ok(b) = std::fs::read(base.join(name))
    {
        if sha256_hex(&b) == sha {
            files += 1;
        } else {
            problems.push(format!(
                "the ceremony file {name} no longer has the SHA-256 the transcript lists"
            ));
        }
    }
    for (k, v) in &fields {
        if *k != "input" && *k != "output" {
            continue;
        }
        let (sha, p) = v
            .split_once("  ")
            .ok_or_else(|| bad(format!("{k} line \"{v}\" is malformed")))?;
        match std::fs::read(resolve(p)) {
            Ok(b) if sha256_hex(&b) == sha => files += 1,
            Ok(_) => problems.push(format!(
                "{k} {p} no longer has the SHA-256 the transcript lists"
            )),
            Err(e) => problems.push(format!("{k} {p} cannot be read: {e}")),
        }
    }
    let log = AuditLog::new(&ca_dir.join("audit.jsonl"));
    let (report, entries) = log.verify(ca_spki)?;
    let mut records = 0;
    for (k, v) in &fields {
        if *k != "record" {
            continue;
        }
        let field = |name: &str| {
            v.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_string)
        };
        let (Some(seq), Some(sha)) = (
            field("seq=").and_then(|s| s.parse::<usize>().ok()),
            field("sha256="),
        ) else {
            return Err(bad(format!("record line \"{v}\" is malformed")));
        };
        match entries.get(seq.wrapping_sub(1)) {
            Some(e) if e.hash == sha => records += 1,
            _ => problems.push(format!(
                "audit record {seq} is missing or differs from the one the transcript names"
            )),
        }
    }
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    Ok(Report {
        ceremony: get("ceremony")?.to_string(),
        plan_digest_short: get("plan-digest-short")?.to_string(),
        ca_fingerprint,
        files,
        records,
        log_records: report.records,
        log_seals: report.seals,
    })
}
