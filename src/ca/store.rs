//! The CA directory: the CA certificate, every issued certificate by serial, the audit log and
//! a lock file. What was issued and revoked, and the CRL number, are derived from the log.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::audit::{
    AuditLog, Entry, Event, InterruptedAppend, IssuedCert, LogReport, RootRef, SealState, Tail,
    b64, broken, sha256_hex, verify_seals,
};
use super::ca_keys::{CaKeys, KeyIndex, StaleIndex, entries_sha256};
use crate::error::{Error, Result};
use crate::x509::serial::Serials;

/// An open, locked CA directory with its log read and chain-checked.
pub struct CaDir {
    path: PathBuf,
    _lock: File,
    /// The audit log.
    pub log: AuditLog,
    /// Its records, as read under the lock (records this process appends are not kept): the
    /// whole log, or the records from the last seal that signs a state on
    /// ([`Reading::FromLastSeal`]).
    pub entries: Vec<Entry>,
    /// The state the first of `entries` signs, when the log was read from it.
    from_seal: Option<SealState>,
    tail: Tail,
    /// The last record's sequence number when the directory was opened.
    opened_at: u64,
    serials: Serials,
    interrupted: Option<InterruptedAppend>,
    derived: Derived,
    /// The log and the kept-file directories as this command found them.
    stamp_at_open: Option<Stamp>,
}

/// How much of the log a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Every record: the commands that need the whole history (CRLs, revocations, listings,
    /// log verify, ceremonies).
    Whole,
    /// From the last seal that signs the directory's state on, when the directory is as the
    /// last command left it (its `Stamp`): signing commands, whose cost must not grow with
    /// the log. Anything else reads the whole log.
    FromLastSeal,
}

/// What the records add up to, kept up to date as this process appends.
struct Derived {
    /// SHA-256 of the first record: the log's identity, which the token's anchor names.
    log_id: Option<String>,
    /// The highest CRL number recorded, this process's included.
    crl_number: u64,
    /// The last root recorded.
    root: Option<RootRef>,
    /// The CA keys certified.
    index: KeyIndex,
}

impl Derived {
    /// Takes in the record `seq` (read or appended).
    fn note(&mut self, seq: u64, hash: &str, event: &Event) -> Result<()> {
        if self.log_id.is_none() && seq == 1 {
            self.log_id = Some(hash.to_string());
        }
        match event {
            Event::CrlIssued { crl_number, .. } => {
                // RFC 5280 §5.2.3: CRL numbers rise and are never reused.
                if *crl_number <= self.crl_number {
                    return Err(Error::invalid(
                        format!(
                            "the audit log is broken at record {seq}: CRL number {crl_number} does not rise above {}",
                            self.crl_number
                        ),
                        "do not sign anything until the log is examined: CRL numbers are never reused",
                    ));
                }
                self.crl_number = *crl_number;
            }
            Event::RootCreated { cert } => {
                self.root = Some(RootRef {
                    serial: cert.serial.clone(),
                    subject: cert.subject.clone(),
                    cert_sha256: cert.cert_sha256.clone(),
                });
            }
            _ => {}
        }
        self.index.note(event)
    }
}

/// When the log, `certs/` and `crls/` last changed (their inode change times, which no one
/// without the system clock can set back): a command that finds them as the last command left
/// them (the token's head keeps the stamp) knows that no record before the last seal was
/// edited and no kept file added or removed since, without reading them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    log: FileStamp,
    certs: FileStamp,
    crls: FileStamp,
}

/// A file's identity, length and inode change time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    ctime: i64,
    ctime_nsec: i64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
        })
    }
}

impl Stamp {
    /// The stamp of the CA directory `dir` now (none without a log).
    fn of(dir: &Path) -> Option<Stamp> {
        Some(Stamp {
            log: FileStamp::of(&dir.join("audit.jsonl"))?,
            certs: FileStamp::of(&dir.join("certs"))?,
            crls: FileStamp::of(&dir.join("crls"))?,
        })
    }

    /// The copy of the last command's stamp kept in the CA directory: only a hint that spares
    /// a changed directory the token's login before it is read whole (the token's copy decides).
    fn kept(dir: &Path) -> Option<Stamp> {
        let bytes = std::fs::read(dir.join("stamp")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// How the directory is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Shared: list, show, export, log verify.
    Read,
    /// Exclusive: every command that appends to the log. A held lock is refused, not awaited.
    Write,
    /// [`Access::Write`], creating the directory if it does not exist (commands that start a
    /// CA); every other command refuses a directory that does not exist.
    Create,
}

impl CaDir {
    /// Opens (creating it for writers) and locks the directory, then reads the log.
    pub fn open(path: &Path, access: Access, reading: Reading) -> Result<CaDir> {
        let io = |step: &'static str| {
            let p = path.to_path_buf();
            move |source| {
                Error::from(crate::output::OutputError::Io {
                    path: p,
                    step,
                    source,
                })
            }
        };
        if !path.is_dir() && access != Access::Create {
            return Err(Error::invalid(
                format!("the CA directory {} does not exist", path.display()),
                "check --ca-dir (or HSMCA_CA_DIR): a CA directory is created only by the command that starts a CA (key generate, root create, csr, or a ceremony)",
            ));
        }
        if access != Access::Read {
            // Owner-only whatever the umask: the log, the lock and the directories. A mode is
            // set only where it differs: setting it changes the inode's change time, which
            // the directory's stamp compares.
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            let set_mode = |p: &Path, mode: u32| match std::fs::symlink_metadata(p) {
                Ok(m) if m.permissions().mode() & 0o7777 == mode => Ok(()),
                _ => std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)),
            };
            for dir in [path.to_path_buf(), path.join("certs"), path.join("crls")] {
                if !dir.is_dir() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&dir)
                        .map_err(io("creating the CA directory"))?;
                }
                set_mode(&dir, 0o700).map_err(io("setting the CA directory's mode"))?;
            }
            for file in ["audit.jsonl", "lock"] {
                let f = path.join(file);
                if f.exists() {
                    set_mode(&f, 0o600).map_err(io("setting the mode of a CA directory file"))?;
                }
            }
        }
        // No output of this process may land in here, --force or not.
        crate::output::protect(path).map_err(io("resolving the CA directory"))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path.join("lock"))
            .map_err(io("opening the lock file"))?;
        let locked = match access {
            Access::Write | Access::Create => lock.try_lock(),
            Access::Read => lock.try_lock_shared(),
        };
        if locked.is_err() {
            return Err(Error::invalid(
                format!(
                    "another hsmca process is using the CA directory {}",
                    path.display()
                ),
                "wait for it to finish and run the command again",
            ));
        }
        let log = AuditLog::new(&path.join("audit.jsonl"));
        let stamp_at_open = Stamp::of(path);
        let from_seal = match reading {
            Reading::FromLastSeal
                if stamp_at_open.is_some() && Stamp::kept(path) == stamp_at_open =>
            {
                // An unfinished append is a crash's: recovered from the whole log.
                log.read_from_last_state_seal()?
                    .filter(|(_, interrupted)| interrupted.is_none())
                    .map(|(entries, _)| entries)
            }
            _ => None,
        };
        let read_from_seal = from_seal.is_some();
        let (entries, interrupted) = match from_seal {
            Some(entries) => (entries, None),
            None => log.read_all()?,
        };
        let mut dir = CaDir {
            path: path.to_path_buf(),
            _lock: lock,
            log,
            from_seal: None,
            tail: Tail::after(&entries),
            opened_at: 0,
            serials: Serials::new(),
            interrupted,
            derived: Derived {
                log_id: None,
                crl_number: 0,
                root: None,
                index: KeyIndex::new(path, None),
            },
            entries,
            stamp_at_open,
        };
        dir.opened_at = dir.tail.seq;
        dir.derive(read_from_seal)?;
        Ok(dir)
    }

    /// Derives the state from the records read: from the state the first signs when they
    /// were read from a seal, else from nothing, checking every seal's state on the way.
    fn derive(&mut self, from_seal: bool) -> Result<()> {
        let base = match self.entries.first().map(|e| &e.record.event) {
            Some(Event::Seal {
                state: Some(state), ..
            }) if from_seal => Some(state.clone()),
            _ => None,
        };
        let mut derived = Derived {
            log_id: base.as_ref().and_then(|s| s.log.clone()),
            crl_number: base.as_ref().map_or(0, |s| s.crl_number),
            root: base.as_ref().and_then(|s| s.root.clone()),
            index: KeyIndex::new(
                &self.path,
                base.as_ref().map(|s| (s.ca_keys, s.ca_keys_sha256.clone())),
            ),
        };
        let mut serials = Serials::new();
        // The whole log: each seal's state is recomputed and must be what the seal signed.
        let mut keys = (0u64, <sha2::Sha256 as sha2::Digest>::new());
        for e in &self.entries {
            if base.is_none()
                && let Event::Seal {
                    state: Some(state), ..
                } = &e.record.event
            {
                let expected = SealState {
                    log: derived.log_id.clone().filter(|_| e.record.seq > 1),
                    crl_number: derived.crl_number,
                    root: derived.root.clone(),
                    ca_keys: keys.0,
                    ca_keys_sha256: entries_sha256(&keys.1),
                };
                if *state != expected {
                    return Err(broken(
                        e.record.seq,
                        "the state its seal signs is not what the records before it add up to",
                    ));
                }
            }
            derived.note(e.record.seq, &e.hash, &e.record.event)?;
            if base.is_none()
                && let Some(entry) = super::ca_keys::index_entry(&e.record.event)?
            {
                use sha2::Digest;
                keys.0 += 1;
                keys.1.update(entry);
            }
            if let Some(serial) = e
                .record
                .event
                .issued_cert()
                .and_then(|c| hex::decode(&c.serial).ok())
            {
                serials.insert(&serial);
            }
        }
        if let Some(first) = self.entries.first()
            && base.is_some()
            && derived.log_id.is_none()
        {
            derived.log_id = Some(first.hash.clone());
        }
        self.from_seal = base;
        self.derived = derived;
        self.serials = serials;
        Ok(())
    }

    /// Whether the records were read from the last seal on rather than whole.
    pub fn read_from_seal(&self) -> bool {
        self.from_seal.is_some()
    }

    /// Reads the whole log instead of the records from the last seal (the directory was not
    /// as the last command left it, or the CA-key index is stale). Records this process
    /// appended are among those read.
    pub fn read_whole(&mut self) -> Result<()> {
        let (entries, interrupted) = self.log.read_all()?;
        self.tail = Tail::after(&entries);
        self.entries = entries;
        self.interrupted = interrupted;
        self.derive(false)
    }

    /// The stamp of the directory when this command opened it.
    pub fn stamp_at_open(&self) -> Option<&Stamp> {
        self.stamp_at_open.as_ref()
    }

    /// The stamp of the directory now (after this command's last change).
    pub fn stamp_now(&self) -> Option<Stamp> {
        Stamp::of(&self.path)
    }

    /// Keeps a copy of `stamp` in the directory, which the next command compares before it
    /// logs in (the token's head holds the copy that counts). Written in place, with no
    /// temporary file: a copy a crash tore or lost only makes the next command read the whole
    /// log.
    pub fn keep_stamp(&self, stamp: &Stamp) -> Result<()> {
        let path = self.path.join("stamp");
        let io = |source| {
            Error::from(crate::output::OutputError::Io {
                path: path.clone(),
                step: "writing the stamp",
                source,
            })
        };
        let bytes = serde_json::to_vec(stamp)
            .map_err(|e| Error::internal(format!("stamp encoding: {e}")))?;
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        std::io::Write::write_all(&mut f, &bytes)
            .and_then(|()| f.sync_all())
            .map_err(io)
    }

    /// The record `seq`, if it was read (or `None`: before the records read, or after them).
    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        let first = self.entries.first()?.record.seq;
        let i = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.entries.get(i)
    }

    /// The records read after record `seq`.
    pub fn entries_after(&self, seq: u64) -> &[Entry] {
        let first = self.entries.first().map_or(1, |e| e.record.seq);
        let skip =
            usize::try_from(seq.saturating_add(1).saturating_sub(first)).unwrap_or(usize::MAX);
        &self.entries[skip.min(self.entries.len())..]
    }

    /// The CA keys among `wanted` (SHA-256 of request SPKIs) with their subjects: from the
    /// CA-key index when the log was read from a seal (a stale index: the whole log is read).
    pub fn ca_keys(&mut self, wanted: &std::collections::HashSet<[u8; 32]>) -> Result<CaKeys> {
        if self.from_seal.is_some() {
            match self.derived.index.lookup(wanted)? {
                Ok(keys) => return Ok(keys),
                Err(StaleIndex) => self.read_whole()?,
            }
        }
        CaKeys::of(&self.entries)
    }

    /// The state the next seal signs: the CA-key index written first (fsynced), and the kept
    /// files made durable, since the next command trusts both as of the seal.
    fn seal_state(&mut self) -> Result<SealState> {
        for sub in ["certs", "crls"] {
            let dir = self.path.join(sub);
            if dir.is_dir() {
                crate::output::sync_dir(&dir, &dir)?;
            }
        }
        let (ca_keys, ca_keys_sha256) = match self.derived.index.write()? {
            Ok(written) => written,
            Err(StaleIndex) => {
                self.read_whole()?;
                self.derived.index.write()?.map_err(|StaleIndex| {
                    Error::internal("the CA-key index could not be written anew")
                })?
            }
        };
        Ok(SealState {
            log: self.derived.log_id.clone(),
            crl_number: self.derived.crl_number,
            root: self.derived.root.clone(),
            ca_keys,
            ca_keys_sha256,
        })
    }

    /// The highest CRL number in the records up to `seq`.
    pub fn crl_number_at(&self, seq: u64) -> u64 {
        let base = self.from_seal.as_ref().map_or(0, |s| s.crl_number);
        self.entries
            .iter()
            .take_while(|e| e.record.seq <= seq)
            .filter_map(|e| match &e.record.event {
                Event::CrlIssued { crl_number, .. } => Some(*crl_number),
                _ => None,
            })
            .fold(base, u64::max)
    }

    /// Checks every seal of the records read when the directory was opened ([`AuditLog::verify`]
    /// without a second read; records this process appended since are not among them).
    pub fn verify(&self, ca_key: &spki::SubjectPublicKeyInfoOwned) -> Result<LogReport> {
        let mut report = verify_seals(&self.entries, ca_key)?;
        report.interrupted_append = self.interrupted.as_ref().map(|i| i.bytes.len() as u64);
        Ok(report)
    }

    /// If the log ends in an unfinished record (a process stopped inside its append), cuts
    /// it off and records what was removed; returns that record's number. Writers only.
    pub fn remove_interrupted_append(&mut self, operator: Option<&str>) -> Result<Option<u64>> {
        let Some(interrupted) = self.interrupted.take() else {
            return Ok(None);
        };
        self.log.remove_interrupted(&interrupted)?;
        self.append(
            Event::InterruptedAppendRemoved {
                offset: interrupted.offset,
                length: interrupted.bytes.len() as u64,
                sha256: sha256_hex(&interrupted.bytes),
                bytes: b64(&interrupted.bytes),
            },
            operator,
        )?;
        Ok(Some(self.tail.seq))
    }

    /// Appends a record (fsynced) and remembers what it changes (the serial it issues, the
    /// CRL number, the CA key).
    pub fn append(&mut self, event: Event, operator: Option<&str>) -> Result<()> {
        let serial = event
            .issued_cert()
            .and_then(|cert| hex::decode(&cert.serial).ok());
        let derived = &mut self.derived;
        append_noting(&self.log, &mut self.tail, derived, event, operator)?;
        if let Some(serial) = serial {
            self.serials.insert(&serial);
        }
        Ok(())
    }

    /// Appends a seal signed by `signer` over the chain so far and the directory's state.
    pub fn seal(
        &mut self,
        signer: &dyn crate::x509::signer::CaSigner,
        key_uri: &str,
        operator: Option<&str>,
    ) -> Result<()> {
        let state = self.seal_state()?;
        self.log
            .seal(&mut self.tail, signer, key_uri, operator, state)?;
        if self.derived.log_id.is_none() {
            self.derived.log_id = Some(self.tail.hash.clone());
        }
        Ok(())
    }

    /// The log's identity (SHA-256 of its first record), once it has one.
    pub fn log_id(&self) -> Option<&str> {
        self.derived.log_id.as_deref()
    }

    /// The last record's hash.
    pub fn last_hash(&self) -> &str {
        &self.tail.hash
    }

    /// The highest CRL number recorded.
    pub fn crl_number(&self) -> u64 {
        self.derived.crl_number
    }

    /// Whether this process appended to the log (a seal included).
    pub fn changed(&self) -> bool {
        self.tail.seq != self.opened_at
    }

    /// The sequence number of the last record.
    pub fn last_seq(&self) -> u64 {
        self.tail.seq
    }

    /// The serials issued so far (read-only) beside what appending needs, for a batch that
    /// picks serials on one thread and records on another. Records appended through the
    /// `LogAppender` do not add their serials: the batch adds them ([`CaDir::add_serials`]).
    pub fn split(&mut self) -> (TakenSerials<'_>, LogAppender<'_>) {
        (
            TakenSerials {
                set: &self.serials,
                kept: self.from_seal.is_some().then_some(&self.path),
            },
            LogAppender {
                log: &self.log,
                tail: &mut self.tail,
                derived: &mut self.derived,
                path: &self.path,
            },
        )
    }

    /// Adds serials issued through a `LogAppender`.
    pub fn add_serials(&mut self, serials: Serials) {
        self.serials.extend(serials);
    }

    /// Every serial this CA has issued, including in this process.
    pub fn serials(&self) -> TakenSerials<'_> {
        TakenSerials {
            set: &self.serials,
            kept: self.from_seal.is_some().then_some(&self.path),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The CA's own certificate, checked against the log: `ca.crt` exists exactly when the log
    /// records a root, and is that root. Anything else is a broken CA directory.
    pub fn recorded_ca_cert(&self) -> Result<Option<x509_cert::Certificate>> {
        let broken = |why: String| {
            Error::invalid(
                format!("the CA directory {} is broken: {why}", self.path.display()),
                "do not sign anything until it is examined: restore the CA directory from a backup (ca.crt and audit.jsonl together)",
            )
        };
        let recorded = self.derived.root.as_ref();
        match (std::fs::read(self.ca_cert_path()), recorded) {
            (Ok(bytes), Some(cert)) => {
                let ca = crate::x509::decode::load_certificate(&bytes)?;
                let der = der::Encode::to_der(&ca)
                    .map_err(|e| Error::internal(format!("certificate encoding: {e}")))?;
                if sha256_hex(&der) != cert.cert_sha256 {
                    return Err(broken(
                        "ca.crt is not the root certificate its audit log records".into(),
                    ));
                }
                Ok(Some(ca))
            }
            (Ok(_), None) if self.derived.log_id.is_none() => Err(broken(
                "ca.crt exists but the audit log is empty or missing".into(),
            )),
            (Ok(_), None) => Err(broken(
                "ca.crt exists but the audit log records no root".into(),
            )),
            (Err(_), Some(cert)) => Err(broken(format!(
                "the audit log records the root {} (serial {}), but ca.crt is missing",
                cert.subject, cert.serial
            ))),
            (Err(_), None) => Ok(None),
        }
    }

    /// Where the CA's own certificate is kept.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.path.join("ca.crt")
    }

    /// Where an issued certificate is kept.
    pub fn cert_path(&self, serial_hex: &str) -> PathBuf {
        self.path.join("certs").join(format!("{serial_hex}.pem"))
    }

    /// Where an issued CRL is kept.
    pub fn crl_path(&self, number: u64) -> PathBuf {
        self.path.join("crls").join(format!("{number}.crl"))
    }

    /// Checks the kept certificates and CRLs against the log, and returns what the log records
    /// that has no kept copy. A log cut back to an earlier seal still verifies on its own; the
    /// files issued after the cut give it away.
    pub fn check_files(&self) -> Result<MissingKept> {
        if self.from_seal.is_some() {
            return self.check_files_after_seal();
        }
        let ledger = self.ledger();
        // One index instead of a scan of the ledger per kept file.
        let cert_hashes: std::collections::HashMap<&str, &str> = ledger
            .issued
            .iter()
            .map(|(_, c)| (c.serial.as_str(), c.cert_sha256.as_str()))
            .collect();
        let cut = |file: &Path, why: &str| {
            Error::invalid(
                format!(
                    "{} {why}: the audit log was cut short or the file was planted",
                    file.display()
                ),
                "do not sign anything until the log is examined: restore the log from a backup or investigate",
            )
        };
        let mut kept_certs = std::collections::HashSet::new();
        let mut kept_crls = std::collections::HashSet::new();
        for (sub, ext) in [("certs", "pem"), ("crls", "crl")] {
            let Ok(entries) = std::fs::read_dir(self.path.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.path();
                if file.extension().and_then(|e| e.to_str()) != Some(ext) {
                    continue;
                }
                let name = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                let bytes = crate::error::read_file(&file)?;
                let der = match ext {
                    "pem" => crate::x509::decode::load_certificates_with_der(&bytes)
                        .ok()
                        .and_then(|mut c| c.pop())
                        .map(|c| c.der),
                    _ => pem_or_der(&bytes),
                };
                let hash = der.as_deref().map(super::audit::sha256_hex);
                let recorded = match ext {
                    "pem" => cert_hashes
                        .get(normalize_serial(name).as_str())
                        .map(|h| h.to_string()),
                    _ => name
                        .parse()
                        .ok()
                        .and_then(|n: u64| ledger.crls.get(&n).cloned()),
                };
                match (recorded, hash) {
                    (None, _) => return Err(cut(&file, "is not in the audit log")),
                    (Some(r), Some(h)) if r == h => {}
                    _ => return Err(cut(&file, "differs from what the audit log recorded")),
                }
                if ext == "pem" {
                    kept_certs.insert(normalize_serial(name));
                } else if let Ok(n) = name.parse::<u64>() {
                    kept_crls.insert(n);
                }
            }
        }
        let certs = ledger
            .issued
            .into_iter()
            .map(|(_, c)| c)
            .filter(|c| !kept_certs.contains(&c.serial))
            .collect();
        let crls = self
            .entries
            .iter()
            .filter_map(|e| match &e.record.event {
                Event::CrlIssued {
                    crl_number,
                    crl_der,
                    ..
                } if !kept_crls.contains(crl_number) => Some((*crl_number, crl_der.clone())),
                _ => None,
            })
            .collect();
        Ok(MissingKept { certs, crls })
    }

    /// [`CaDir::check_files`] for a log read from a seal: the kept copies of the records after
    /// it (those before it were durable when it was written, and the directories' stamps say
    /// that nothing was added or removed since; `log verify` checks every one).
    fn check_files_after_seal(&self) -> Result<MissingKept> {
        let mut missing = MissingKept::default();
        let differs = |file: &Path| {
            Error::invalid(
                format!(
                    "{} differs from what the audit log recorded: the file was changed",
                    file.display()
                ),
                "do not sign anything until the log is examined: restore the log from a backup or investigate",
            )
        };
        for e in &self.entries {
            match &e.record.event {
                Event::CrlIssued {
                    crl_number,
                    crl_sha256,
                    crl_der,
                    ..
                } => {
                    let file = self.crl_path(*crl_number);
                    match std::fs::read(&file) {
                        Ok(bytes) => {
                            if pem_or_der(&bytes).map(|d| sha256_hex(&d)).as_ref()
                                != Some(crl_sha256)
                            {
                                return Err(differs(&file));
                            }
                        }
                        Err(_) => missing.crls.push((*crl_number, crl_der.clone())),
                    }
                }
                event => {
                    let Some(cert) = event.issued_cert() else {
                        continue;
                    };
                    let file = self.cert_path(&cert.serial);
                    match std::fs::read(&file) {
                        Ok(bytes) => {
                            let der = crate::x509::decode::load_certificates_with_der(&bytes)
                                .ok()
                                .and_then(|mut c| c.pop())
                                .map(|c| c.der);
                            if der.map(|d| sha256_hex(&d)).as_ref() != Some(&cert.cert_sha256) {
                                return Err(differs(&file));
                            }
                        }
                        Err(_) => missing.certs.push(cert.clone()),
                    }
                }
            }
        }
        Ok(missing)
    }

    /// The ledger derived from the log; only a log read whole holds all of it.
    pub fn ledger(&self) -> Ledger {
        debug_assert!(
            self.from_seal.is_none(),
            "a ledger of a log read from a seal"
        );
        Ledger::from_entries(&self.entries)
    }
}

/// Appends `event` after `tail` and takes it into `derived`.
fn append_noting(
    log: &AuditLog,
    tail: &mut Tail,
    derived: &mut Derived,
    event: Event,
    operator: Option<&str>,
) -> Result<()> {
    // Checked before the append: a record the state refuses (a CRL number that does not
    // rise) is never written.
    if let Event::CrlIssued { crl_number, .. } = &event
        && *crl_number <= derived.crl_number
    {
        return Err(Error::internal(format!(
            "CRL number {crl_number} does not rise above {}",
            derived.crl_number
        )));
    }
    let noted = event.clone();
    log.append(tail, event, operator)?;
    derived.note(tail.seq, &tail.hash, &noted)?;
    derived.index.appended()
}

/// The serials a CA directory's CA issued: those of the records read and appended, and, when
/// the log was read from a seal, those with a kept copy (every certificate before the seal
/// has one: the seal is written once `certs/` is durable).
#[derive(Clone, Copy)]
pub struct TakenSerials<'a> {
    set: &'a Serials,
    kept: Option<&'a PathBuf>,
}

impl<'a> TakenSerials<'a> {
    /// The serials of `set` only.
    pub fn none(set: &'a Serials) -> TakenSerials<'a> {
        TakenSerials { set, kept: None }
    }

    /// Whether `serial` (its content octets) was issued.
    pub fn contains(&self, serial: &[u8]) -> bool {
        self.set.contains(serial)
            || self.kept.is_some_and(|dir| {
                std::fs::symlink_metadata(
                    dir.join("certs")
                        .join(format!("{}.pem", hex::encode_upper(serial))),
                )
                .is_ok()
            })
    }
}

/// Appends to a CA directory's log while its serials are read elsewhere ([`CaDir::split`]).
pub struct LogAppender<'a> {
    log: &'a AuditLog,
    tail: &'a mut Tail,
    derived: &'a mut Derived,
    path: &'a Path,
}

impl LogAppender<'_> {
    /// Appends a record (fsynced).
    pub fn append(&mut self, event: Event, operator: Option<&str>) -> Result<()> {
        append_noting(self.log, self.tail, self.derived, event, operator)
    }

    /// Where an issued certificate is kept.
    pub fn cert_path(&self, serial_hex: &str) -> PathBuf {
        self.path.join("certs").join(format!("{serial_hex}.pem"))
    }
}

/// What the log records but the CA directory lacks: kept copies lost by a crash between a
/// record (durable first) and its file (`certs/` is not fsynced).
#[derive(Debug, Default)]
pub struct MissingKept {
    /// Issued certificates with no file in `certs/`.
    pub certs: Vec<IssuedCert>,
    /// CRLs with no file in `crls/`: number and DER (base64, as recorded).
    pub crls: Vec<(u64, String)>,
}

impl MissingKept {
    /// Nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty() && self.crls.is_empty()
    }

    /// "2 certificates and 1 CRL", for notes.
    pub fn describe(&self) -> String {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        match (self.certs.len(), self.crls.len()) {
            (c, 0) => plural(c, "certificate"),
            (0, r) => plural(r, "CRL"),
            (c, r) => format!("{} and {}", plural(c, "certificate"), plural(r, "CRL")),
        }
    }
}

/// A revocation as recorded.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    /// RFC 5280 reason name.
    pub reason: String,
    /// RFC 3339 date.
    pub date: String,
}

/// What the CA issued and revoked, derived from the log (the one source of truth).
#[derive(Debug, Default)]
pub struct Ledger {
    /// Every certificate issued, in order, with the record number.
    pub issued: Vec<(u64, IssuedCert)>,
    /// Revoked serials.
    pub revoked: BTreeMap<String, RevokedEntry>,
    /// The highest CRL number issued so far.
    pub last_crl_number: u64,
    /// SHA-256 of each CRL issued, by number.
    pub crls: BTreeMap<u64, String>,
}

impl Ledger {
    fn from_entries(entries: &[Entry]) -> Ledger {
        let mut l = Ledger::default();
        for e in entries {
            if let Some(cert) = e.record.event.issued_cert() {
                l.issued.push((e.record.seq, cert.clone()));
            }
            match &e.record.event {
                Event::CertificateRevoked {
                    serial,
                    reason,
                    revocation_date,
                } => {
                    l.revoked.insert(
                        serial.clone(),
                        RevokedEntry {
                            reason: reason.clone(),
                            date: revocation_date.clone(),
                        },
                    );
                }
                Event::CrlIssued {
                    crl_number,
                    crl_sha256,
                    ..
                } => {
                    l.last_crl_number = l.last_crl_number.max(*crl_number);
                    l.crls.insert(*crl_number, crl_sha256.clone());
                }
                _ => {}
            }
        }
        l
    }

    /// Serials already used, as raw bytes.
    pub fn serials(&self) -> Serials {
        self.issued
            .iter()
            .filter_map(|(_, c)| hex::decode(&c.serial).ok())
            .collect()
    }

    /// The issued certificate with this serial (hex, any case, colons allowed).
    pub fn find(&self, serial: &str) -> Option<&IssuedCert> {
        let want = normalize_serial(serial);
        self.issued
            .iter()
            .map(|(_, c)| c)
            .find(|c| c.serial == want)
    }
}

/// The DER of a PEM (any label) or DER file.
fn pem_or_der(bytes: &[u8]) -> Option<Vec<u8>> {
    match der::pem::decode_vec(bytes) {
        Ok((_, der)) => Some(der),
        Err(_) => Some(bytes.to_vec()),
    }
}

/// Upper-case hex without separators or leading zero octets.
pub fn normalize_serial(serial: &str) -> String {
    let hex: String = serial
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let trimmed = hex.trim_start_matches("00");
    if trimmed.is_empty() {
        hex
    } else {
        trimmed.to_string()
    }
}
