//! The keys of the CA certificates a CA directory records, and the subjects certified for each:
//! a request may carry one only to renew that CA (same key, same subject), never to put the
//! key under another name.
//!
//! A signing command does not read the whole log to learn them: the CA-key index (`ca-keys`
//! in the CA directory) holds one 96-byte entry per CA certificate: the SHA-256 of its SPKI,
//! the SHA-256 of its subject and its serial (naming the certificate in a refusal); each seal signs how many entries the index held and their SHA-256
//! ([`super::audit::SealState`]). A command streams the index once, checking it against that
//! hash; an index that does not match is only a cache gone stale, and the command reads the
//! whole log instead (the next seal writes the index again).

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use der::Decode;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;

use super::audit::{Entry, Event};
use crate::error::{Error, Result};
use crate::x509::algorithm::spki_sha256;

/// One index entry: SHA-256 of the CA certificate's SPKI, SHA-256 of its subject (RFC 4514),
/// its serial (right-aligned, zero-padded).
pub type KeyEntry = [u8; ENTRY];

/// The size of an index entry.
const ENTRY: usize = 96;

/// The subjects certified for a CA key, by SHA-256 (and by name where the record was read).
#[derive(Debug, Default, Clone)]
struct Certified {
    subjects: Vec<[u8; 32]>,
    names: Vec<String>,
}

/// The CA keys a request may meet, with the subjects certified for each.
#[derive(Debug, Default, Clone)]
pub struct CaKeys(BTreeMap<[u8; 32], Certified>);

impl CaKeys {
    /// The CA keys of the records `entries` (the whole log: a ceremony's plan).
    pub fn of(entries: &[Entry]) -> Result<CaKeys> {
        let mut keys = CaKeys::default();
        for e in entries {
            if let Some(entry) = index_entry(&e.record.event)? {
                keys.add(&entry, ca_subject(&e.record.event));
            }
        }
        Ok(keys)
    }

    fn add(&mut self, entry: &KeyEntry, name: Option<&str>) {
        let (key, subject) = split(entry);
        let certified = self.0.entry(key).or_default();
        if !certified.subjects.contains(&subject) {
            certified.subjects.push(subject);
        }
        if let Some(name) = name
            && !certified.names.iter().any(|n| n == name)
        {
            certified.names.push(name.to_string());
        }
    }

    /// Why a request for `spki` (the SHA-256 of its SPKI) under `subject` must be refused:
    /// its key is a CA's, certified under other subjects only.
    pub fn refusal(&self, spki: &[u8; 32], subject: &str) -> Option<Error> {
        self.refusal_by_hash(spki, &sha256(subject))
    }

    /// [`CaKeys::refusal`] with the subject's SHA-256 (`subject_sha256`).
    pub fn refusal_by_hash(&self, spki: &[u8; 32], subject: &[u8; 32]) -> Option<Error> {
        let certified = self.0.get(spki)?;
        if certified.subjects.contains(subject) {
            return None;
        }
        let under = if certified.names.is_empty() {
            String::new()
        } else {
            format!(" as {}", certified.names.join(" and "))
        };
        Some(Error::invalid(
            format!(
                "the request carries the public key of a CA this CA directory certified{under}, under another subject"
            ),
            "refuse this request: a CA's key is certified again only to renew that CA (same subject); whoever made it does not hold a key of their own",
        ))
    }
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The SHA-256 of a subject (RFC 4514) as the index and [`CaKeys::refusal_by_hash`] take it.
pub fn subject_sha256(subject: &str) -> [u8; 32] {
    sha256(subject)
}

fn split(entry: &KeyEntry) -> ([u8; 32], [u8; 32]) {
    let mut key = [0u8; 32];
    let mut subject = [0u8; 32];
    key.copy_from_slice(&entry[..32]);
    subject.copy_from_slice(&entry[32..64]);
    (key, subject)
}

/// The subject of the certificate an entry names, from its kept copy (for a refusal's message).
fn kept_subject(dir: &Path, entry: &KeyEntry) -> Option<String> {
    let serial = &entry[64..];
    let serial = &serial[serial.iter().position(|b| *b != 0)?..];
    let path = dir
        .join("certs")
        .join(format!("{}.pem", hex::encode_upper(serial)));
    let cert = crate::x509::decode::load_certificate(&std::fs::read(path).ok()?).ok()?;
    Some(cert.tbs_certificate().subject().to_string())
}

fn ca_subject(event: &Event) -> Option<&str> {
    event.issued_cert().map(|c| c.subject.as_str())
}

/// The index entry of a record that issued a CA certificate (a root, an intermediate, a
/// cross-certificate), if it did.
pub fn index_entry(event: &Event) -> Result<Option<KeyEntry>> {
    let Some(cert) = event.issued_cert() else {
        return Ok(None);
    };
    let is_ca = matches!(cert.profile.as_str(), "root" | "intermediate")
        || matches!(event, Event::CrossSigned { .. });
    if !is_ca {
        return Ok(None);
    }
    let recorded = cert
        .spki_sha256
        .as_deref()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    let key = match recorded {
        Some(key) => key,
        // Records from before the field: the certificate says.
        None => {
            let parsed = Certificate::from_der(&cert.der()?).map_err(|e| {
                Error::invalid(
                    format!("a recorded CA certificate does not decode: {e}"),
                    "run hsmca log verify",
                )
            })?;
            spki_sha256(parsed.tbs_certificate().subject_public_key_info())
        }
    };
    // The record's subject is the certificate's, as `Name::to_string` wrote it.
    let mut entry = [0u8; ENTRY];
    entry[..32].copy_from_slice(&key);
    entry[32..64].copy_from_slice(&sha256(&cert.subject));
    let serial = hex::decode(&cert.serial).unwrap_or_default();
    if let Some(at) = ENTRY.checked_sub(serial.len()).filter(|at| *at >= 64) {
        entry[at..].copy_from_slice(&serial);
    }
    Ok(Some(entry))
}

/// SHA-256 of the entries `entries`, hex, as a seal's state names them.
pub fn entries_sha256(hasher: &Sha256) -> String {
    hex::encode(hasher.clone().finalize())
}

/// The CA-key index of a CA directory: the entries a seal vouches for, on disk, and those
/// recorded since, written after them as a command goes on and vouched for by its seal.
pub struct KeyIndex {
    path: PathBuf,
    /// Entries on disk that the last seal's state vouches for (count, SHA-256 hex); `None`:
    /// the file is not trusted and is written anew from `pending`.
    signed: Option<(u64, String)>,
    /// The hasher after the signed entries and those this process wrote after them, once the
    /// signed ones were read and matched (or there are none to trust).
    verified: Option<Sha256>,
    /// Entries this process wrote after the signed ones, not yet sealed.
    written: u64,
    /// Whether this process cut the file back to the signed entries (a stopped command's
    /// entries after them go) before writing after them.
    cut: bool,
    /// CA-key entries recorded after those, in memory.
    pending: Vec<KeyEntry>,
}

/// How many entries a command keeps in memory before it writes them to the index.
const PENDING_MAX: usize = 1024;

/// The index is not the one the last seal names (a cache gone stale or edited).
pub struct StaleIndex;

impl KeyIndex {
    /// The index of the CA directory `dir`, as the seal's state `signed` names it (`None`:
    /// rebuilt from the records).
    pub fn new(dir: &Path, signed: Option<(u64, String)>) -> KeyIndex {
        KeyIndex {
            path: dir.join("ca-keys"),
            signed,
            verified: None,
            written: 0,
            cut: false,
            pending: Vec::new(),
        }
    }

    /// Notes a record this CA directory holds after the signed entries.
    pub fn note(&mut self, event: &Event) -> Result<()> {
        if let Some(entry) = index_entry(event)? {
            self.pending.push(entry);
        }
        Ok(())
    }

    /// After an append: many pending entries are written out, so that a batch's memory does
    /// not grow by them (only once the signed entries are known to match).
    pub fn appended(&mut self) -> Result<()> {
        if self.pending.len() >= PENDING_MAX && (self.verified.is_some() || self.signed.is_none()) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending entries after the signed and written ones (not fsynced: the seal
    /// does that). The signed ones must have matched, or be none.
    fn flush(&mut self) -> Result<()> {
        let mut hasher = match (&self.signed, self.verified.take()) {
            (_, Some(h)) => h,
            (None, None) => Sha256::new(),
            (Some(_), None) => {
                return Err(Error::internal(
                    "the CA-key index was written before it was checked",
                ));
            }
        };
        let io = |step: &'static str| {
            let path = self.path.clone();
            move |source| Error::from(crate::output::OutputError::Io { path, step, source })
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io("opening the CA-key index"))?;
        let base = self.signed.as_ref().map_or(0, |(n, _)| *n);
        if !self.cut {
            file.set_len(base * ENTRY as u64)
                .map_err(io("writing the CA-key index"))?;
            self.cut = true;
        }
        let mut bytes = Vec::with_capacity(self.pending.len() * ENTRY);
        for entry in &self.pending {
            bytes.extend_from_slice(entry);
        }
        file.seek(SeekFrom::Start((base + self.written) * ENTRY as u64))
            .and_then(|_| file.write_all(&bytes))
            .map_err(io("writing the CA-key index"))?;
        hasher.update(&bytes);
        self.written += self.pending.len() as u64;
        self.pending.clear();
        self.verified = Some(hasher);
        Ok(())
    }

    /// The CA keys among `wanted` (SHA-256 of SPKIs), with their subjects: one pass over the
    /// signed entries (checked against their hash as they are read), then the pending ones.
    pub fn lookup(
        &mut self,
        wanted: &HashSet<[u8; 32]>,
    ) -> Result<std::result::Result<CaKeys, StaleIndex>> {
        let mut keys = CaKeys::default();
        if let Some((count, sha)) = self.signed.clone() {
            let mut found = Vec::new();
            let Some(hasher) = self.read_signed(count, &sha, |e| {
                if wanted.contains(&split(e).0) {
                    found.push(*e);
                }
            })?
            else {
                return Ok(Err(StaleIndex));
            };
            let dir = self.path.parent().unwrap_or(Path::new("."));
            for entry in &found {
                keys.add(entry, kept_subject(dir, entry).as_deref());
            }
            // Entries this process already wrote after them are its own; the hasher then
            // already covers them.
            if self.written == 0 {
                self.verified = Some(hasher);
            } else {
                let mut ours = Vec::new();
                self.read_range(count, self.written, |e| {
                    if wanted.contains(&split(e).0) {
                        ours.push(*e);
                    }
                })?;
                for entry in &ours {
                    keys.add(entry, kept_subject(dir, entry).as_deref());
                }
            }
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        for entry in &self.pending {
            if wanted.contains(&split(entry).0) {
                keys.add(entry, kept_subject(dir, entry).as_deref());
            }
        }
        Ok(Ok(keys))
    }

    /// Hands the `count` entries from entry `first` on to `visit` (none if the file is short).
    fn read_range(&self, first: u64, count: u64, mut visit: impl FnMut(&KeyEntry)) -> Result<()> {
        let bytes = std::fs::read(&self.path).map_err(|source| Error::Read {
            path: self.path.clone(),
            source,
        })?;
        let from = usize::try_from(first * ENTRY as u64).unwrap_or(usize::MAX);
        let to = usize::try_from((first + count) * ENTRY as u64).unwrap_or(usize::MAX);
        if let Some(range) = bytes.get(from..to) {
            for chunk in range.chunks_exact(ENTRY) {
                if let Ok(entry) = <&KeyEntry>::try_from(chunk) {
                    visit(entry);
                }
            }
        }
        Ok(())
    }

    /// Reads the `count` signed entries, hashing them and handing each to `visit`; the
    /// hasher if they hash to `sha`, `None` if the file is short, missing or different.
    fn read_signed(
        &self,
        count: u64,
        sha: &str,
        mut visit: impl FnMut(&KeyEntry),
    ) -> Result<Option<Sha256>> {
        let mut hasher = Sha256::new();
        if count == 0 {
            return Ok((entries_sha256(&hasher) == sha).then_some(hasher));
        }
        let Some(mut file) = crate::error::open_existing(&self.path)? else {
            return Ok(None);
        };
        // A fixed buffer: the memory a command needs does not grow with the index.
        let mut buf = vec![0u8; ENTRY * 1024];
        let mut left = count.saturating_mul(ENTRY as u64);
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            if let Err(e) = file.read_exact(&mut buf[..want]) {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    return Ok(None);
                }
                return Err(Error::Read {
                    path: self.path.clone(),
                    source: e,
                });
            }
            hasher.update(&buf[..want]);
            for chunk in buf[..want].chunks_exact(ENTRY) {
                if let Ok(entry) = <&KeyEntry>::try_from(chunk) {
                    visit(entry);
                }
            }
            left -= want as u64;
        }
        Ok((entries_sha256(&hasher) == sha).then_some(hasher))
    }

    /// Writes the pending entries after the signed ones (fsynced) and returns what the next
    /// seal signs: the count and SHA-256 of every entry. `Err(StaleIndex)`: the signed entries
    /// no longer match, and the caller must read the whole log and write the index anew.
    pub fn write(&mut self) -> Result<std::result::Result<(u64, String), StaleIndex>> {
        if let (Some((count, sha)), None) = (self.signed.clone(), &self.verified) {
            match self.read_signed(count, &sha, |_| {})? {
                Some(hasher) => self.verified = Some(hasher),
                None => return Ok(Err(StaleIndex)),
            }
        }
        self.flush()?;
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(|source| {
                Error::from(crate::output::OutputError::Io {
                    path: self.path.clone(),
                    step: "syncing the CA-key index",
                    source,
                })
            });
        file?;
        let total = self.signed.as_ref().map_or(0, |(n, _)| *n) + self.written;
        let sha = self
            .verified
            .as_ref()
            .map(entries_sha256)
            .unwrap_or_default();
        self.signed = Some((total, sha.clone()));
        self.written = 0;
        Ok(Ok((total, sha)))
    }
}
