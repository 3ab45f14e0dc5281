//! The tamper-evident audit log: JSON Lines, one record per event, each holding the SHA-256 of
//! the previous line. Seal records carry a signature by the CA key over their whole record
//! (number, time, operator, tool, key URI, algorithm) and the hash of the chain before it, so
//! the CA certificate alone proves that no sealed record was changed, removed or reordered; the
//! token's copy of the log's head ([`super::anchor`]) proves that none was cut off the end.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::{Error, Result};
use crate::x509::signer::CaSigner;
use crate::x509::verify::verify_signature;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation for seal signatures, so they can never be mistaken for a TBS.
const SEAL_CONTEXT: &str = "hsmca-audit-seal-v2";
/// The same for seals that also sign the CA directory's state ([`SealState`]).
const SEAL_STATE_CONTEXT: &str = "hsmca-audit-seal-v3";

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// UTC time, RFC 3339.
    pub time: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// The operator, where known.
    pub operator: Option<String>,
    /// The tool and its version.
    pub tool: String,
    /// SHA-256 (hex) of the previous line's bytes.
    pub prev: String,
}

/// What a record records. DER values are base64, hashes hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A CA key was generated on the token.
    KeyGenerated {
        /// The key's URI.
        key_uri: String,
        /// Its algorithm.
        algorithm: String,
        /// SHA-256 of its SPKI.
        spki_sha256: String,
    },
    /// A CA key's M-of-N backup was made: the key wrapped under a key-encryption key that
    /// was split into shares (never recorded) and destroyed.
    KeyBackedUp {
        /// The key's URI.
        key_uri: String,
        /// SHA-256 of its SPKI.
        spki_sha256: String,
        /// SHA-256 of the wrapped key.
        wrapped_sha256: String,
        /// Shares needed to restore.
        threshold: u8,
        /// Shares made.
        shares: u8,
    },
    /// A CA key was restored onto a token from its backup.
    KeyRestored {
        /// The restored key's URI.
        key_uri: String,
        /// SHA-256 of its SPKI.
        spki_sha256: String,
        /// SHA-256 of the wrapped key it came from.
        wrapped_sha256: String,
        /// The token it was restored onto.
        token: String,
    },
    /// A self-signed root was created.
    RootCreated {
        /// Issued certificate.
        cert: IssuedCert,
    },
    /// A CSR was signed.
    CsrSigned {
        /// Issued certificate.
        cert: IssuedCert,
        /// SHA-256 of the CSR.
        csr_sha256: String,
        /// The CSR, DER base64.
        csr_der: String,
    },
    /// An existing CA certificate was cross-signed: same subject and key, this CA as issuer.
    CrossSigned {
        /// Issued certificate.
        cert: IssuedCert,
        /// SHA-256 of the cross-signed certificate's DER.
        source_sha256: String,
        /// The cross-signed certificate, DER base64.
        source_der: String,
    },
    /// A certificate request for a CA key was made and signed by it (`hsmca csr`).
    RequestCreated {
        /// The key's URI.
        key_uri: String,
        /// Subject, RFC 4514.
        subject: String,
        /// SHA-256 of the DER request.
        csr_sha256: String,
        /// The request, DER base64.
        csr_der: String,
    },
    /// A request was refused before signing.
    RequestRefused {
        /// The command.
        command: String,
        /// SHA-256 of the input, where there was one.
        input_sha256: Option<String>,
        /// Why.
        reason: String,
    },
    /// A certificate was revoked.
    CertificateRevoked {
        /// Serial, upper-case hex.
        serial: String,
        /// RFC 5280 reason name.
        reason: String,
        /// Revocation date, RFC 3339.
        revocation_date: String,
    },
    /// A CRL was issued.
    CrlIssued {
        /// CRL number.
        crl_number: u64,
        /// thisUpdate.
        this_update: String,
        /// nextUpdate.
        next_update: String,
        /// Serials listed.
        revoked: Vec<String>,
        /// SHA-256 of the DER CRL.
        crl_sha256: String,
        /// The CRL, DER base64.
        crl_der: String,
    },
    /// C_Login failed.
    LoginFailed {
        /// The token label.
        token: String,
        /// Why.
        reason: String,
    },
    /// The log ended in an unfinished record: a process stopped while appending it, so the
    /// command that wrote it got no further (its outputs come after a durable append). The
    /// next writer cut those bytes off and recorded them here.
    InterruptedAppendRemoved {
        /// Byte offset in the log where the unfinished record started.
        offset: u64,
        /// Its length in bytes.
        length: u64,
        /// SHA-256 (hex) of those bytes.
        sha256: String,
        /// Those bytes, base64.
        bytes: String,
    },
    /// A signature by the CA key over the chain up to the previous record.
    Seal {
        /// The key's URI.
        key_uri: String,
        /// DER AlgorithmIdentifier of the signature, base64.
        signature_algorithm: String,
        /// The signature, base64.
        signature: String,
        /// What the records before the seal add up to, signed with it: a command reads the
        /// log from its last seal on instead of from the start (older seals lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<SealState>,
    },
}

/// The CA directory's state as of the record before a seal: what a signing command needs from
/// the records, so that it need not read them (`log verify` recomputes it at every seal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealState {
    /// SHA-256 of the log's first record (none when the seal is the first record).
    pub log: Option<String>,
    /// The highest CRL number issued.
    pub crl_number: u64,
    /// The CA's own certificate (the last root recorded), if any.
    pub root: Option<RootRef>,
    /// How many entries the CA-key index (`ca-keys`) holds: one per CA certificate issued.
    pub ca_keys: u64,
    /// SHA-256 of those entries.
    pub ca_keys_sha256: String,
}

/// The root certificate a seal's state names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootRef {
    /// Serial, upper-case hex.
    pub serial: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// SHA-256 of the DER certificate.
    pub cert_sha256: String,
}

impl Event {
    /// The certificate this event issued, if it issued one.
    pub fn issued_cert(&self) -> Option<&IssuedCert> {
        match self {
            Event::RootCreated { cert }
            | Event::CsrSigned { cert, .. }
            | Event::CrossSigned { cert, .. } => Some(cert),
            _ => None,
        }
    }
}

/// A certificate as recorded when issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedCert {
    /// Serial, upper-case hex.
    pub serial: String,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Issuer, RFC 4514.
    pub issuer: String,
    /// Profile name.
    pub profile: String,
    /// NotBefore, RFC 3339.
    pub not_before: String,
    /// NotAfter, RFC 3339.
    pub not_after: String,
    /// SHA-256 of the DER certificate.
    pub cert_sha256: String,
    /// The certificate, DER base64.
    pub cert_der: String,
    /// The signing key's URI.
    pub key_uri: String,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo (records before it lack it): a command
    /// learns which keys the CA certified without decoding every certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_sha256: Option<String>,
}

impl IssuedCert {
    /// The certificate's DER.
    pub fn der(&self) -> Result<Vec<u8>> {
        der_of(&self.cert_der, "a recorded certificate")
    }
}

/// The DER a record holds as base64; `what` names it in the error.
pub fn der_of(base64: &str, what: &str) -> Result<Vec<u8>> {
    B64.decode(base64).map_err(|e| {
        Error::invalid(
            format!("{what} is not base64: {e}"),
            "run 'hsmca log verify'",
        )
    })
}

/// Base64 of DER, as records hold it.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A record with the hash of its own line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The record.
    pub record: Record,
    /// SHA-256 (hex) of its line.
    pub hash: String,
}

/// What `log verify` found in an intact log.
#[derive(Debug, Clone)]
pub struct LogReport {
    /// Records read.
    pub records: u64,
    /// Seals whose signature verified.
    pub seals: u64,
    /// Records after the last seal (a command that stopped before sealing).
    pub unsealed_tail: u64,
    /// Length of an unfinished last record, if the log ends in one.
    pub interrupted_append: Option<u64>,
}

/// Bytes after the log's last newline: an append that never finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedAppend {
    /// Where they start (the length of the log's whole records).
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The append-only log file.
pub struct AuditLog {
    path: PathBuf,
}

pub(crate) fn broken(n: u64, why: impl std::fmt::Display) -> Error {
    Error::invalid(
        format!("the audit log is broken at record {n}: {why}"),
        "do not sign anything until the log is examined: restore it from a backup or investigate the change; every signing command refuses meanwhile",
    )
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parses the whole lines of `bytes`, which start at byte `offset` of the log, as records
/// `first_seq`, `first_seq + 1`, ..., each holding the hash of the line before; the first
/// must hold `prev` (`None`: the first is taken as it is). Bytes after the last line end are
/// an unfinished append, unless they are a whole record (an edit).
fn parse(
    bytes: &[u8],
    offset: u64,
    first_seq: u64,
    prev: Option<String>,
) -> Result<(Vec<Entry>, Option<InterruptedAppend>)> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut prev = prev;
    let mut rest = bytes;
    let mut n = first_seq - 1;
    while !rest.is_empty() {
        n += 1;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            // One write puts a record and its line end down together: a whole record
            // without its line end is an edit (cutting it off as unfinished would drop it).
            if serde_json::from_slice::<Record>(rest)
                .is_ok_and(|r| r.seq == n && prev.as_ref().is_none_or(|p| r.prev == *p))
            {
                return Err(broken(
                    n,
                    "it is a whole record without its line end, which no interrupted append leaves (the log was edited)",
                ));
            }
            let interrupted = InterruptedAppend {
                offset: offset + (bytes.len() - rest.len()) as u64,
                bytes: rest.to_vec(),
            };
            return Ok((entries, Some(interrupted)));
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let record: Record = serde_json::from_slice(line)
            .map_err(|e| broken(n, format!("it is not a valid record ({e})")))?;
        if record.seq != n {
            return Err(broken(
                n,
                format!(
                    "its sequence number is {} (records removed or reordered)",
                    record.seq
                ),
            ));
        }
        if let Some(p) = &prev
            && record.prev != *p
        {
            // The record whose bytes no longer match is, almost always, the one before.
            return Err(if n == 1 {
                broken(
                    1,
                    "it does not start the chain (records were removed before it)",
                )
            } else {
                broken(
                    n - 1,
                    format!(
                        "its hash is not the one record {n} holds: record {} was changed (or record {n}'s link to it)",
                        n - 1
                    ),
                )
            });
        }
        let hash = sha256_hex(line);
        prev = Some(hash.clone());
        entries.push(Entry { record, hash });
    }
    Ok((entries, None))
}

impl AuditLog {
    /// The log at `path` (created on first append).
    pub fn new(path: &Path) -> Self {
        AuditLog {
            path: path.to_path_buf(),
        }
    }

    /// Reads every record and checks the hash chain and numbering (not the seals). An
    /// unfinished last line is not a record and is left out (see [`AuditLog::read_all`]).
    pub fn read(&self) -> Result<Vec<Entry>> {
        self.read_all().map(|(entries, _)| entries)
    }

    /// [`AuditLog::read`], and the bytes after the last newline if the log ends in an append
    /// that never finished. Each record is one `write` of a whole line, so only a process
    /// stopped inside that write leaves them; a damaged line before the end is still broken.
    pub fn read_all(&self) -> Result<(Vec<Entry>, Option<InterruptedAppend>)> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
            Err(source) => {
                return Err(Error::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        parse(&bytes, 0, 1, Some(GENESIS.to_string()))
    }

    /// The records from the last seal that signs the CA directory's state (`SealState`) to
    /// the end, chain-checked from that seal on, and an unfinished last line as
    /// [`AuditLog::read_all`] gives it; `None` when no seal signs a state (a log from before
    /// them, or without a seal). The log is read backwards from its end until that seal, so
    /// the cost is that of the records after it, whatever the log's length. The seal's own
    /// link to the record before it is not checked here: its signature covers it.
    pub fn read_from_last_state_seal(
        &self,
    ) -> Result<Option<(Vec<Entry>, Option<InterruptedAppend>)>> {
        use std::os::unix::fs::FileExt;
        let Some(file) = crate::error::open_existing(&self.path)? else {
            return Ok(None);
        };
        let read_err = |source| Error::Read {
            path: self.path.clone(),
            source,
        };
        let len = file.metadata().map_err(read_err)?.len();
        let mut window: u64 = 64 * 1024;
        loop {
            let start = len.saturating_sub(window);
            let mut bytes = vec![0u8; usize::try_from(len - start).unwrap_or(usize::MAX)];
            file.read_exact_at(&mut bytes, start).map_err(read_err)?;
            // Whole lines only: the first one may begin before the window, the bytes after
            // the last line end are an unfinished append.
            let first = if start == 0 {
                0
            } else {
                bytes
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(bytes.len(), |i| i + 1)
            };
            let whole_end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let mut end = whole_end;
            while end > first {
                let line_start = bytes[first..end - 1]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(first, |i| first + i + 1);
                let line = &bytes[line_start..end - 1];
                // A quick look before decoding: quotes inside a JSON string are escaped.
                if contains(line, b"\"event\":\"seal\"")
                    && contains(line, b"\"state\":")
                    && let Ok(record) = serde_json::from_slice::<Record>(line)
                    && matches!(record.event, Event::Seal { state: Some(_), .. })
                {
                    return parse(
                        &bytes[line_start..],
                        start + line_start as u64,
                        record.seq,
                        None,
                    )
                    .map(Some);
                }
                end = line_start;
            }
            if start == 0 {
                return Ok(None);
            }
            window = window.saturating_mul(4);
        }
    }

    /// Checks the chain and every seal's signature with the CA's public key; returns the
    /// records too.
    pub fn verify(&self, ca_key: &SubjectPublicKeyInfoOwned) -> Result<(LogReport, Vec<Entry>)> {
        let (entries, interrupted) = self.read_all()?;
        let mut report = verify_seals(&entries, ca_key)?;
        report.interrupted_append = interrupted.map(|i| i.bytes.len() as u64);
        Ok((report, entries))
    }

    /// Cuts an unfinished last record off (fsynced), under the writer's lock: the log must
    /// still end exactly as [`AuditLog::read_all`] found it.
    pub fn remove_interrupted(&self, interrupted: &InterruptedAppend) -> Result<()> {
        let (file, len) = self.open_for_writing(OpenOptions::new().write(true))?;
        if len != interrupted.offset + interrupted.bytes.len() as u64 {
            return Err(Error::invalid(
                "the audit log changed while this command had it locked",
                "find the process that writes to the CA directory without its lock; sign nothing until the log is examined",
            ));
        }
        file.set_len(interrupted.offset)
            .and_then(|()| file.sync_all())
            .map_err(self.io("removing an unfinished record from the audit log"))
    }

    /// An I/O error on the log, naming the step.
    fn io(&self, step: &'static str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| {
            Error::from(crate::output::OutputError::Io {
                path: self.path.clone(),
                step,
                source,
            })
        }
    }

    /// Opens the log with `options` and returns it with its length.
    fn open_for_writing(&self, options: &OpenOptions) -> Result<(std::fs::File, u64)> {
        let file = options
            .open(&self.path)
            .map_err(self.io("opening the audit log"))?;
        let len = file
            .metadata()
            .map_err(self.io("reading the audit log's length"))?
            .len();
        Ok((file, len))
    }
}

/// Checks every seal of `entries` (read, so chain-checked, by [`AuditLog::read`]) with the
/// CA's public key.
pub fn verify_seals(entries: &[Entry], ca_key: &SubjectPublicKeyInfoOwned) -> Result<LogReport> {
    let mut seals = 0;
    let mut last_seal = 0;
    for (i, e) in entries.iter().enumerate() {
        if matches!(e.record.event, Event::Seal { .. }) {
            verify_seal(entries, i, ca_key)?;
            seals += 1;
            last_seal = e.record.seq;
        }
    }
    Ok(LogReport {
        records: entries.len() as u64,
        seals,
        unsealed_tail: entries.len() as u64 - last_seal,
        interrupted_append: None,
    })
}

/// Checks the last seal of `entries` (read, so chain-checked, by [`AuditLog::read`]): what it
/// signs is the hash of the chain before it, which binds every earlier record and seal, so
/// one verification proves them all. When it fails, every seal is checked so the error names
/// the first one that does not verify.
pub fn verify_last_seal(entries: &[Entry], ca_key: &SubjectPublicKeyInfoOwned) -> Result<()> {
    let Some(last) = entries
        .iter()
        .rposition(|e| matches!(e.record.event, Event::Seal { .. }))
    else {
        return Ok(());
    };
    match verify_seal(entries, last, ca_key) {
        Ok(()) => Ok(()),
        Err(e) => Err(verify_seals(entries, ca_key).err().unwrap_or(e)),
    }
}

/// Whether the last seal of `entries` verifies with `key` (`None` without a seal).
pub fn last_seal_verifies(entries: &[Entry], key: &SubjectPublicKeyInfoOwned) -> Option<bool> {
    let last = entries
        .iter()
        .rposition(|e| matches!(e.record.event, Event::Seal { .. }))?;
    Some(verify_seal(entries, last, key).is_ok())
}

/// Checks the signature of the seal `entries[i]`.
fn verify_seal(entries: &[Entry], i: usize, ca_key: &SubjectPublicKeyInfoOwned) -> Result<()> {
    let e = &entries[i];
    let Event::Seal {
        key_uri,
        signature_algorithm,
        signature,
        state,
    } = &e.record.event
    else {
        return Ok(());
    };
    let n = e.record.seq;
    let alg = B64
        .decode(signature_algorithm)
        .ok()
        .and_then(|d| AlgorithmIdentifierOwned::from_der(&d).ok())
        .ok_or_else(|| broken(n, "its signature algorithm does not decode"))?;
    let sig = B64
        .decode(signature)
        .map_err(|_| broken(n, "its signature is not base64"))?;
    let message = seal_message(&e.record, key_uri, signature_algorithm, state.as_ref());
    verify_signature(ca_key, &alg, &message, &sig).map_err(|_| {
        broken(n, "the seal's signature does not verify with the CA certificate's key (the seal or records before it were changed, or it was made by another key)")
    })
}

impl AuditLog {
    /// Appends one record after `tail` (the log's last record, as read under the lock), fsyncs
    /// it and moves `tail` on. Nothing else of the record stays in memory.
    pub fn append(&self, tail: &mut Tail, event: Event, operator: Option<&str>) -> Result<()> {
        self.write_record(tail, Record::next(tail, operator, event))
    }

    /// Writes `record` (numbered after `tail`) as one line.
    fn write_record(&self, tail: &mut Tail, record: Record) -> Result<()> {
        let mut line = serde_json::to_vec(&record)
            .map_err(|e| Error::internal(format!("audit record encoding: {e}")))?;
        let hash = sha256_hex(&line);
        line.push(b'\n');
        let (mut file, before) =
            self.open_for_writing(OpenOptions::new().create(true).append(true).mode(0o600))?;
        // One write of the whole line: a crash leaves the line whole or an unfinished last
        // line (`read_all`; the next writer removes it), never a record that silently differs.
        // A failed write (a full disk) is cut back off, so the log stays readable and the
        // error is the only trace.
        if let Err(e) = file.write_all(&line).and_then(|()| file.sync_all()) {
            let _ = file.set_len(before).and_then(|()| file.sync_all());
            return Err(self.io("appending to the audit log")(e));
        }
        *tail = Tail {
            seq: record.seq,
            hash,
        };
        Ok(())
    }

    /// Appends a seal: the CA key signs the seal's own record (number, time, operator, tool,
    /// key URI, algorithm, the directory's `state`) with the hash of the chain up to the last
    /// record.
    pub fn seal(
        &self,
        tail: &mut Tail,
        signer: &dyn CaSigner,
        key_uri: &str,
        operator: Option<&str>,
        state: SealState,
    ) -> Result<()> {
        let alg = signer
            .signature_algorithm()
            .algorithm_identifier()
            .to_der()
            .map_err(|e| Error::internal(format!("algorithm encoding: {e}")))?;
        let mut record = Record::next(
            tail,
            operator,
            Event::Seal {
                key_uri: key_uri.to_string(),
                signature_algorithm: b64(&alg),
                signature: String::new(),
                state: Some(state.clone()),
            },
        );
        let message = seal_message(&record, key_uri, &b64(&alg), Some(&state));
        let signed = b64(&signer.sign(&message)?);
        if let Event::Seal { signature, .. } = &mut record.event {
            *signature = signed;
        }
        self.write_record(tail, record)
    }
}

impl Record {
    /// The record after `tail`, timed now.
    fn next(tail: &Tail, operator: Option<&str>, event: Event) -> Record {
        let now = time::OffsetDateTime::now_utc();
        Record {
            seq: tail.seq + 1,
            time: crate::x509::validity::fmt(now.replace_nanosecond(0).unwrap_or(now)),
            event,
            operator: operator.map(str::to_string),
            tool: format!("hsmca {}", env!("CARGO_PKG_VERSION")),
            prev: tail.hash.clone(),
        }
    }
}

/// The log's last record: its number and hash, all an append needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    /// Sequence number of the last record (0 for an empty log).
    pub seq: u64,
    /// SHA-256 (hex) of its line ([`GENESIS`] for an empty log).
    pub hash: String,
}

impl Tail {
    /// The tail after `entries`.
    pub fn after(entries: &[Entry]) -> Tail {
        match entries.last() {
            Some(e) => Tail {
                seq: e.record.seq,
                hash: e.hash.clone(),
            },
            None => Tail {
                seq: 0,
                hash: GENESIS.to_string(),
            },
        }
    }
}

/// What the seal `record` signs: a context string and every field of its record but the
/// signature, JSON-encoded so no value can run into the next. A seal with a state signs it
/// under its own context, so a state can be neither added to a seal nor removed from one.
fn seal_message(
    record: &Record,
    key_uri: &str,
    signature_algorithm: &str,
    state: Option<&SealState>,
) -> Vec<u8> {
    let fields = (
        record.seq,
        &record.time,
        &record.operator,
        &record.tool,
        key_uri,
        signature_algorithm,
        &record.prev,
    );
    match state {
        Some(state) => serde_json::to_vec(&(SEAL_STATE_CONTEXT, fields, state)),
        // A v2 seal's message, byte for byte as those seals signed it.
        None => serde_json::to_vec(&(
            SEAL_CONTEXT,
            fields.0,
            fields.1,
            fields.2,
            fields.3,
            fields.4,
            fields.5,
            fields.6,
        )),
    }
    .unwrap_or_default()
}
