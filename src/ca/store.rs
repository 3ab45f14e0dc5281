//! The CA directory: the CA certificate, every issued certificate by serial, the audit log and
//! a lock file. What was issued and revoked, and the CRL number, are derived from the log.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::audit::{
    AuditLog, Entry, Event, InterruptedAppend, IssuedCert, LogReport, Tail, b64, sha256_hex,
    verify_seals,
};
use crate::error::{Error, Result};
use crate::x509::serial::Serials;

/// An open, locked CA directory with its log read and chain-checked.
pub struct CaDir {
    path: PathBuf,
    _lock: File,
    /// The audit log.
    pub log: AuditLog,
    /// Its records, as read under the lock (records this process appends are not kept).
    pub entries: Vec<Entry>,
    tail: Tail,
    /// The last record's sequence number when the directory was opened.
    opened_at: u64,
    serials: Serials,
    interrupted: Option<InterruptedAppend>,
    /// SHA-256 of the first record: the log's identity, which the token's anchor names.
    log_id: Option<String>,
    /// The highest CRL number recorded, this process's included.
    crl_number: u64,
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
    pub fn open(path: &Path, access: Access) -> Result<CaDir> {
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
            // Owner-only whatever the umask: the log, the lock and the directories.
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            for dir in [path.to_path_buf(), path.join("certs"), path.join("crls")] {
                if !dir.is_dir() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&dir)
                        .map_err(io("creating the CA directory"))?;
                }
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io("setting the CA directory's mode"))?;
            }
            for file in ["audit.jsonl", "lock"] {
                let f = path.join(file);
                if f.exists() {
                    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
                        .map_err(io("setting the mode of a CA directory file"))?;
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
        let (entries, interrupted) = log.read_all()?;
        let tail = Tail::after(&entries);
        let ledger = Ledger::from_entries(&entries);
        let crl_number = check_crl_numbers(&entries)?;
        Ok(CaDir {
            path: path.to_path_buf(),
            _lock: lock,
            log,
            log_id: entries.first().map(|e| e.hash.clone()),
            entries,
            opened_at: tail.seq,
            tail,
            serials: ledger.serials(),
            interrupted,
            crl_number,
        })
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

    /// Appends a record (fsynced) and remembers the serial it issues, if any.
    pub fn append(&mut self, event: Event, operator: Option<&str>) -> Result<()> {
        let serial = event
            .issued_cert()
            .and_then(|cert| hex::decode(&cert.serial).ok());
        let crl_number = match &event {
            Event::CrlIssued { crl_number, .. } => Some(*crl_number),
            _ => None,
        };
        self.log.append(&mut self.tail, event, operator)?;
        self.appended();
        if let Some(serial) = serial {
            self.serials.insert(&serial);
        }
        if let Some(n) = crl_number {
            self.crl_number = self.crl_number.max(n);
        }
        Ok(())
    }

    /// Appends a seal signed by `signer` over the chain so far.
    pub fn seal(
        &mut self,
        signer: &dyn crate::x509::signer::CaSigner,
        key_uri: &str,
        operator: Option<&str>,
    ) -> Result<()> {
        self.log.seal(&mut self.tail, signer, key_uri, operator)?;
        self.appended();
        Ok(())
    }

    /// After an append: the first record names the log.
    fn appended(&mut self) {
        if self.log_id.is_none() && self.tail.seq > 0 {
            self.log_id = Some(self.tail.hash.clone());
        }
    }

    /// The log's identity (SHA-256 of its first record), once it has one.
    pub fn log_id(&self) -> Option<&str> {
        self.log_id.as_deref()
    }

    /// The last record's hash.
    pub fn last_hash(&self) -> &str {
        &self.tail.hash
    }

    /// The highest CRL number recorded.
    pub fn crl_number(&self) -> u64 {
        self.crl_number
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
    /// [`LogAppender`] do not add their serials: the batch adds them ([`CaDir::add_serials`]).
    pub fn split(&mut self) -> (&Serials, LogAppender<'_>) {
        (
            &self.serials,
            LogAppender {
                log: &self.log,
                tail: &mut self.tail,
                path: &self.path,
            },
        )
    }

    /// Adds serials issued through a [`LogAppender`].
    pub fn add_serials(&mut self, serials: Serials) {
        self.appended();
        self.serials.extend(serials);
    }

    /// Every serial this CA has issued, including in this process.
    pub fn serials(&self) -> &Serials {
        &self.serials
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
        let recorded = self
            .entries
            .iter()
            .rev()
            .find_map(|e| match &e.record.event {
                Event::RootCreated { cert } => Some(cert),
                _ => None,
            });
        match (std::fs::read(self.ca_cert_path()), recorded) {
            (Ok(bytes), Some(cert)) => {
                let ca = crate::x509::decode::load_certificate(&bytes)?;
                let der = der::Encode::to_der(&ca).map_err(|e| {
                    Error::invalid(format!("certificate encoding: {e}"), "report a bug")
                })?;
                if sha256_hex(&der) != cert.cert_sha256 {
                    return Err(broken(
                        "ca.crt is not the root certificate its audit log records".into(),
                    ));
                }
                Ok(Some(ca))
            }
            (Ok(_), None) if self.entries.is_empty() => Err(broken(
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

    /// The ledger derived from the log.
    pub fn ledger(&self) -> Ledger {
        Ledger::from_entries(&self.entries)
    }
}

/// Appends to a CA directory's log while its serials are read elsewhere ([`CaDir::split`]).
pub struct LogAppender<'a> {
    log: &'a AuditLog,
    tail: &'a mut Tail,
    path: &'a Path,
}

impl LogAppender<'_> {
    /// Appends a record (fsynced).
    pub fn append(&mut self, event: Event, operator: Option<&str>) -> Result<()> {
        self.log.append(self.tail, event, operator)
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

/// The CRL numbers of the log, which must rise strictly (RFC 5280 §5.2.3: never reused);
/// returns the highest.
fn check_crl_numbers(entries: &[Entry]) -> Result<u64> {
    let mut last = 0u64;
    for e in entries {
        if let Event::CrlIssued { crl_number, .. } = &e.record.event {
            if *crl_number <= last {
                return Err(Error::invalid(
                    format!(
                        "the audit log is broken at record {}: CRL number {crl_number} does not rise above {last}",
                        e.record.seq
                    ),
                    "do not sign anything until the log is examined: CRL numbers are never reused",
                ));
            }
            last = *crl_number;
        }
    }
    Ok(last)
}

/// The highest CRL number recorded in the first `seq` records.
pub fn crl_number_up_to(entries: &[Entry], seq: u64) -> u64 {
    entries
        .iter()
        .take_while(|e| e.record.seq <= seq)
        .filter_map(|e| match &e.record.event {
            Event::CrlIssued { crl_number, .. } => Some(*crl_number),
            _ => None,
        })
        .max()
        .unwrap_or(0)
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
