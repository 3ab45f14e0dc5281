//! What the reporting commands print with `--json`: one serde type per command, the shape the
//! README's "JSON output" section documents. The text output is rendered from the same values.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};

/// Prints `value` as pretty JSON on standard output.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::internal(format!("cannot encode the report as JSON: {e}")))?;
    say!("{text}");
    Ok(())
}

/// `token list --json`.
#[derive(Debug, Serialize)]
pub struct TokenList {
    /// The PKCS#11 module's path.
    pub module: String,
    /// One per slot with a token.
    pub tokens: Vec<Token>,
}

/// One token of `token list`.
#[derive(Debug, Serialize)]
pub struct Token {
    pub slot_id: u64,
    /// False for an empty (not initialised) slot; its label is then meaningless.
    pub initialized: bool,
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub flags: Vec<String>,
    /// The key algorithms hsmca can generate and sign with on it.
    pub algorithms: Vec<String>,
    /// Per algorithm: how, or why not.
    pub support: Vec<Support>,
    /// A token field that could not be read and was ignored.
    pub note: Option<String>,
}

/// Whether a token supports one key algorithm.
#[derive(Debug, Serialize)]
pub struct Support {
    pub algorithm: String,
    pub supported: bool,
    /// The mechanisms used, or why it cannot.
    pub detail: String,
}

/// `key list --json`.
#[derive(Debug, Serialize)]
pub struct KeyList {
    pub token: String,
    pub keys: Vec<Key>,
}

/// One private key of `key list`.
#[derive(Debug, Serialize)]
pub struct Key {
    pub label: String,
    pub uri: String,
    /// CKA_ID, hex.
    pub id: String,
    /// `null` when no matching public key was found.
    pub algorithm: Option<String>,
    pub spki_sha256: Option<String>,
    /// Security attributes by lower-case name without `CKA_`: "true", "false" or "absent".
    pub attributes: BTreeMap<String, String>,
    /// Whether the key passes the CA key policy.
    pub ca_key_policy_ok: bool,
    /// The attributes that break it, when it fails.
    pub ca_key_policy_violations: Option<String>,
}

/// One row of `list --json` (the output is an array of them).
#[derive(Debug, Serialize)]
pub struct Issued {
    /// The audit record that issued it.
    pub record: u64,
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub profile: String,
    pub not_before: String,
    pub not_after: String,
    /// "valid", "expired" or "revoked".
    pub status: &'static str,
    /// SHA-256 of the certificate's DER, hex.
    pub sha256: String,
}

/// `show --json`.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub record: u64,
    /// When it was recorded (RFC 3339).
    pub time: String,
    pub operator: Option<String>,
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub profile: String,
    pub not_before: String,
    pub not_after: String,
    /// The CA key that signed it.
    pub key_uri: String,
    pub revoked: Option<Revocation>,
    pub sha256: String,
    pub certificate_pem: String,
    /// The request it was signed from, for `sign` and `k8s sign`.
    pub csr_pem: Option<String>,
}

/// A recorded revocation.
#[derive(Debug, Serialize)]
pub struct Revocation {
    pub reason: String,
    pub date: String,
}

/// `log verify --json`: printed only when the log is intact (otherwise the command fails).
#[derive(Debug, Serialize)]
pub struct LogVerified {
    pub records: u64,
    pub seals: u64,
    /// The CA certificate the seals verified with.
    pub ca_certificate: String,
    /// The token's head: "in_log" (checked, found), "none_yet" (checked, the token keeps none)
    /// or "not_checked" (no --key).
    pub head: &'static str,
    /// The record the token's head names, when checked and found.
    pub head_record: Option<u64>,
    /// Records after the last seal (the next signing command seals them).
    pub unsealed_records: u64,
    /// Certificates issued after the last seal: their outputs may be missing.
    pub issued_after_last_seal: Vec<SerialSubject>,
    /// Certificates recorded without a kept copy in the CA directory, described.
    pub missing_copies: Option<String>,
    /// Length of an unfinished last record, in bytes.
    pub interrupted_append: Option<u64>,
}

/// A certificate named by serial and subject.
#[derive(Debug, Serialize)]
pub struct SerialSubject {
    pub serial: String,
    pub subject: String,
}

/// `ceremony plan --json`: what the witness reads, as data (the text is in each step's `text`).
#[derive(Debug, Serialize)]
pub struct CeremonyPlan {
    pub ceremony: String,
    pub file: FileHash,
    pub operator: String,
    pub witnesses: Vec<String>,
    pub token_label: String,
    pub token_serial: Option<String>,
    pub ca_key_uri: String,
    /// When the CA key exists on the token now.
    pub ca_key_spki_sha256: Option<String>,
    /// The step that generates it, if it does not exist yet.
    pub ca_key_generated_in_step: Option<usize>,
    pub ca_dir: String,
    pub transcript: String,
    pub steps: Vec<CeremonyStep>,
    pub notes: Vec<String>,
    /// "complete", "transcript_next", "not_started" or "resume".
    pub status: &'static str,
    /// The step the run starts or resumes at.
    pub next_step: Option<usize>,
    /// SHA-256 of the normalised plan, hex; and its first 64 bits as read aloud.
    pub digest: String,
    pub digest_short: String,
}

/// A file and its SHA-256 (hex).
#[derive(Debug, Serialize)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
}

/// One step of a ceremony plan.
#[derive(Debug, Serialize)]
pub struct CeremonyStep {
    pub number: usize,
    /// Its `kind` in the ceremony file.
    pub kind: &'static str,
    /// Line of its `[[step]]` header in the ceremony file.
    pub line: usize,
    /// What the operator types to perform it.
    pub confirmation: String,
    pub done: bool,
    pub items: Vec<CeremonyItem>,
    /// The step as the text plan shows it.
    pub text: String,
}

/// One unit of work of a step: a key, a certificate, a revocation or a CRL.
#[derive(Debug, Serialize)]
pub struct CeremonyItem {
    pub what: String,
    pub inputs: Vec<FileHash>,
    /// The evidence that it is done: `null` while it is not.
    pub done: Option<CeremonyEvidence>,
}

/// Why a unit of work counts as done.
#[derive(Debug, Serialize)]
pub struct CeremonyEvidence {
    /// The audit record.
    pub record: u64,
    pub time: String,
    /// SHA-256 of the record's line.
    pub record_sha256: String,
    pub outputs: Vec<FileHash>,
    pub key_uri: Option<String>,
    pub key_spki_sha256: Option<String>,
}

impl CeremonyPlan {
    /// The plan as data.
    pub fn of(plan: &crate::ceremony::plan::Plan) -> CeremonyPlan {
        use crate::ceremony::plan::FileHash as Hashed;
        let hashes = |v: &[Hashed]| {
            v.iter()
                .map(|h| FileHash {
                    path: h.path.display().to_string(),
                    sha256: h.sha256.clone(),
                })
                .collect()
        };
        let f = &plan.file;
        let todo = plan.first_todo().map(|s| s.located.number);
        let status = match todo {
            None if plan.transcript_exists => "complete",
            None => "transcript_next",
            Some(_) if plan.steps.iter().all(|s| !s.done()) => "not_started",
            Some(_) => "resume",
        };
        CeremonyPlan {
            ceremony: f.ceremony.name.clone(),
            file: FileHash {
                path: f.path.display().to_string(),
                sha256: hex::encode(f.sha256),
            },
            operator: f.ceremony.operator.clone(),
            witnesses: f.ceremony.witnesses.clone(),
            token_label: f.token.label.clone(),
            token_serial: f.token.serial.clone(),
            ca_key_uri: plan.ca_key_uri().to_string(),
            ca_key_spki_sha256: plan
                .ca_key_spki
                .as_ref()
                .map(|k| hex::encode(crate::x509::algorithm::spki_sha256(k))),
            ca_key_generated_in_step: plan.ca_key_generated_in,
            ca_dir: f.ceremony.ca_dir.display().to_string(),
            transcript: f.ceremony.transcript.display().to_string(),
            steps: plan
                .steps
                .iter()
                .map(|s| CeremonyStep {
                    number: s.located.number,
                    kind: s.located.step.kind(),
                    line: s.located.line,
                    confirmation: s.confirmation(),
                    done: s.done(),
                    items: s
                        .items
                        .iter()
                        .map(|i| CeremonyItem {
                            what: i.what.clone(),
                            inputs: hashes(&i.inputs),
                            done: i.done.as_ref().map(|e| CeremonyEvidence {
                                record: e.seq,
                                time: e.time.clone(),
                                record_sha256: e.record_hash.clone(),
                                outputs: hashes(&e.outputs),
                                key_uri: e.key.as_ref().map(|k| k.0.clone()),
                                key_spki_sha256: e.key.as_ref().map(|k| k.1.clone()),
                            }),
                        })
                        .collect(),
                    text: s.rendering.clone(),
                })
                .collect(),
            notes: plan.notes.clone(),
            status,
            next_step: todo,
            digest: plan.digest_hex(),
            digest_short: plan.digest_short(),
        }
    }
}

/// `ceremony verify --json`: printed only when the transcript verifies.
#[derive(Debug, Serialize)]
pub struct CeremonyVerified {
    pub transcript: String,
    pub ceremony: String,
    pub plan_digest_short: String,
    /// SHA-256 fingerprint of the CA certificate the signature verified with.
    pub ca_certificate_sha256: String,
    /// Files listed, every hash matching.
    pub files: usize,
    /// Audit records the transcript names, unchanged.
    pub records: usize,
    pub log_records: u64,
    pub log_seals: u64,
}

/// `inspect --json`: the description, and each certificate as Kubernetes sees it.
#[derive(Serialize)]
pub struct Inspected {
    /// What the file holds.
    #[serde(flatten)]
    pub description: crate::x509::inspect::Description,
    /// Per certificate, in order: its usage, user, groups and serving names.
    pub kubernetes: Vec<crate::k8s::identity::Identity>,
}
