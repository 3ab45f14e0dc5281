//! Recording into the CA directory: every command that signs appends its events to the audit
//! log, keeps issued certificates, and ends with a seal.

use std::path::Path;

use super::audit::{Event, der_of, sha256_hex};
use super::serial_hex;
use super::store::{Access, CaDir, LogAppender, MissingKept, Reading, TakenSerials};
use crate::error::{Error, Result};
use crate::x509::decode::load_certificate;
use crate::x509::serial::Serials;
use crate::x509::signer::CaSigner;

/// The CA directory of a command that records (or nothing), with the operator's name.
pub struct Recorder {
    dir: Option<CaDir>,
    operator: Option<String>,
    no_serials: Serials,
    sealed_at: Option<u64>,
    /// Kept copies a crash lost, written again once the log is checked against the token.
    missing: Option<MissingKept>,
}

impl Recorder {
    /// A recorder that records nothing (commands without --ca-dir, or that do not sign).
    pub fn none() -> Recorder {
        Recorder {
            dir: None,
            operator: None,
            no_serials: Serials::new(),
            sealed_at: None,
            missing: None,
        }
    }

    /// Opens and locks the CA directory for writing (if given) and checks the whole log before
    /// anything else: a broken log stops every signing command. The log is read once; the
    /// chain is checked record by record and the last seal's signature (which covers the
    /// chain before it) with the CA key; `hsmca log verify` checks every seal.
    pub fn open(ca_dir: Option<&Path>, operator: Option<&str>) -> Result<Recorder> {
        Self::open_as(ca_dir, operator, Access::Write, Reading::Whole)
    }

    /// [`Recorder::open`] for a command that only issues (sign, k8s sign): the log is read
    /// from its last seal on when the directory is as the last command left it, so the
    /// command's cost does not grow with the log; the token's head confirms that at login
    /// ([`Recorder::read_whole`] otherwise). `log verify` stays the check of every record.
    pub fn open_to_issue(ca_dir: Option<&Path>, operator: Option<&str>) -> Result<Recorder> {
        Self::open_as(ca_dir, operator, Access::Write, Reading::FromLastSeal)
    }

    /// [`Recorder::open`] for a command that starts a CA (key generate, root create, csr, a
    /// ceremony): the directory is created if it does not exist.
    pub fn create(ca_dir: Option<&Path>, operator: Option<&str>) -> Result<Recorder> {
        Self::open_as(ca_dir, operator, Access::Create, Reading::Whole)
    }

    fn open_as(
        ca_dir: Option<&Path>,
        operator: Option<&str>,
        access: Access,
        reading: Reading,
    ) -> Result<Recorder> {
        let operator = operator
            .map(str::to_string)
            .or_else(|| std::env::var("LOGNAME").ok())
            .or_else(|| std::env::var("USER").ok());
        let dir = match ca_dir {
            Some(p) => {
                let mut dir = CaDir::open(p, access, reading)?;
                let missing = check(&dir)?;
                // Only once the whole records are known good is the unfinished one removed.
                if let Some(seq) = dir.remove_interrupted_append(operator.as_deref())? {
                    crate::notice::note(format!(
                        "the audit log ended in an unfinished record (a command was stopped while writing it, so it wrote nothing after it); removed, and recorded as record {seq}"
                    ));
                }
                Some((dir, missing))
            }
            None => None,
        };
        let (dir, missing) = dir.map_or((None, None), |(d, m)| (Some(d), Some(m)));
        Ok(Recorder {
            dir,
            operator,
            no_serials: Serials::new(),
            sealed_at: None,
            missing: missing.filter(|m| !m.is_empty()),
        })
    }

    /// Reads the whole log of a CA directory opened to issue, when the token's head does not
    /// confirm that it is as the last command left it, and checks it as [`Recorder::open`]
    /// does.
    pub fn read_whole(&mut self) -> Result<()> {
        if let Some(dir) = &mut self.dir
            && dir.read_from_seal()
        {
            dir.read_whole()?;
            let missing = check(dir)?;
            self.missing = Some(missing).filter(|m| !m.is_empty());
        }
        Ok(())
    }

    /// Writes again the kept copies a crash lost, from their records: only once the log is
    /// known to be the one the token's head names (a forged record would otherwise put its
    /// file in the CA directory).
    pub fn recover(&mut self) -> Result<()> {
        if let Some(missing) = self.missing.take() {
            self.restore_kept(&missing)?;
            crate::notice::note(format!(
                "{} recorded in the audit log had no kept copy (a command was stopped after recording them); kept again from the log",
                missing.describe()
            ));
        }
        Ok(())
    }

    /// Writes the kept copies a crash lost, from their records (the log is checked by now).
    fn restore_kept(&self, missing: &MissingKept) -> Result<()> {
        for cert in &missing.certs {
            self.keep_cert(&load_certificate(&cert.der()?)?)?;
        }
        for (number, der) in &missing.crls {
            self.keep_crl(*number, &der_of(der, "a recorded CRL")?)?;
        }
        Ok(())
    }

    /// Appends an event (fsynced before this returns); a no-op without a CA directory.
    pub fn append(&mut self, event: Event) -> Result<()> {
        if let Some(dir) = &mut self.dir {
            dir.append(event, self.operator.as_deref())?;
        }
        Ok(())
    }

    /// Records a refused request and hands the refusal back.
    pub fn refuse(&mut self, command: &str, input: Option<&[u8]>, err: impl Into<Error>) -> Error {
        let err = err.into();
        record_refusal(|event| self.append(event), command, input, err)
    }

    /// Seals the log with the CA key: the end of every signing command. Its error says that
    /// what came before it is done and recorded, since the seal is always last.
    pub fn seal(&mut self, signer: &dyn CaSigner, key_uri: &str) -> Result<()> {
        if let Some(dir) = &mut self.dir {
            dir.seal(signer, key_uri, self.operator.as_deref())
                .map_err(|e| {
                    let (cause, _) = e.cause_and_hint();
                    Error::invalid(
                        format!("everything was signed, verified, recorded and written, but sealing the audit log failed: {cause}"),
                        "the outputs are valid and in the audit log; the next signing command seals it (check the token first)",
                    )
                })?;
            self.sealed_at = Some(dir.last_seq());
        }
        Ok(())
    }

    /// Whether this command appended records that no seal covers yet.
    pub fn unsealed(&self) -> bool {
        self.dir
            .as_ref()
            .is_some_and(|d| d.changed() && Some(d.last_seq()) != self.sealed_at)
    }

    /// The CA keys this CA directory certified among `wanted` (SHA-256 of request SPKIs; none
    /// without a CA directory): keys a request may carry only to renew that CA.
    pub fn ca_keys(
        &mut self,
        wanted: &std::collections::HashSet<[u8; 32]>,
    ) -> Result<super::CaKeys> {
        match &mut self.dir {
            Some(dir) => dir.ca_keys(wanted),
            None => Ok(super::CaKeys::default()),
        }
    }

    /// Serials this CA already issued (none without a CA directory).
    pub fn taken_serials(&self) -> TakenSerials<'_> {
        match &self.dir {
            Some(dir) => dir.serials(),
            None => TakenSerials::none(&self.no_serials),
        }
    }

    /// Keeps an issued certificate in the CA directory, after its record is on disk.
    pub fn keep_cert(&self, cert: &x509_cert::Certificate) -> Result<()> {
        if let Some(dir) = &self.dir {
            let pem = crate::x509::decode::certificate_to_pem(cert)?;
            crate::output::write_ca_file(&dir.cert_path(&serial_hex(cert)), pem.as_bytes(), true)?;
        }
        Ok(())
    }

    /// Makes a new root the CA directory's certificate (after its record is on disk).
    pub fn keep_ca_cert(&self, cert: &x509_cert::Certificate) -> Result<()> {
        if let Some(dir) = &self.dir {
            let pem = crate::x509::decode::certificate_to_pem(cert)?;
            crate::output::write_ca_file(&dir.ca_cert_path(), pem.as_bytes(), true)?;
        }
        Ok(())
    }

    /// Keeps an issued CRL in the CA directory, after its record is on disk.
    pub fn keep_crl(&self, number: u64, der: &[u8]) -> Result<()> {
        if let Some(dir) = &self.dir {
            let pem = crate::x509::decode::to_pem("X509 CRL", der)?;
            crate::output::write_ca_file(&dir.crl_path(number), pem.as_bytes(), true)?;
        }
        Ok(())
    }

    /// The serials taken so far beside a [`BatchRecorder`], for a batch that picks serials on
    /// one thread and records on another; it hands the serials it issued back with
    /// [`Recorder::add_serials`].
    pub fn split(&mut self) -> (TakenSerials<'_>, BatchRecorder<'_>) {
        let operator = self.operator.as_deref();
        match &mut self.dir {
            Some(dir) => {
                let (serials, log) = dir.split();
                (
                    serials,
                    BatchRecorder {
                        log: Some(log),
                        operator,
                    },
                )
            }
            None => (
                TakenSerials::none(&self.no_serials),
                BatchRecorder {
                    log: None,
                    operator,
                },
            ),
        }
    }

    /// Adds the serials a [`BatchRecorder`] recorded.
    pub fn add_serials(&mut self, serials: Serials) {
        if let Some(dir) = &mut self.dir {
            dir.add_serials(serials);
        }
    }

    /// The CA directory, when recording.
    pub fn dir(&self) -> Option<&CaDir> {
        self.dir.as_ref()
    }
}

/// What a batch's writing thread records through: appends (fsynced), refusals and kept
/// certificates, as [`Recorder`] does them ([`Recorder::split`]).
pub struct BatchRecorder<'a> {
    log: Option<LogAppender<'a>>,
    operator: Option<&'a str>,
}

impl BatchRecorder<'_> {
    /// Appends an event (fsynced before this returns); a no-op without a CA directory.
    pub fn append(&mut self, event: Event) -> Result<()> {
        if let Some(log) = &mut self.log {
            log.append(event, self.operator)?;
        }
        Ok(())
    }

    /// Records a refused request and hands the refusal back.
    pub fn refuse(&mut self, command: &str, input: Option<&[u8]>, err: impl Into<Error>) -> Error {
        let err = err.into();
        record_refusal(|event| self.append(event), command, input, err)
    }

    /// Keeps an issued certificate in the CA directory, after its record is on disk. The file
    /// is whole when it appears, but `certs/` is not fsynced: the record holds the whole
    /// certificate (`list`, `show` and `export` read it from there), so a kept copy that a crash
    /// lost is no inconsistency (`CaDir::check_files`); the next signing command keeps it again.
    pub fn keep_cert(&self, cert: &x509_cert::Certificate) -> Result<()> {
        if let Some(log) = &self.log {
            let pem = crate::x509::decode::certificate_to_pem(cert)?;
            crate::output::write_ca_file(&log.cert_path(&serial_hex(cert)), pem.as_bytes(), false)?;
        }
        Ok(())
    }
}

/// The checks of an opened CA directory before anything is recorded: kept files against the
/// log (returns what the log records that has no kept copy), `ca.crt` against the log, and the
/// last seal with the CA certificate's key.
fn check(dir: &CaDir) -> Result<MissingKept> {
    let missing = dir.check_files()?;
    if let Some(ca) = dir.recorded_ca_cert()? {
        super::audit::verify_last_seal(
            &dir.entries,
            ca.tbs_certificate().subject_public_key_info(),
        )?;
    }
    Ok(missing)
}

/// Appends the refusal of a request through `append` (a failure to record it is only warned
/// about: the refusal itself is the error to report) and hands the refusal back.
fn record_refusal(
    append: impl FnOnce(Event) -> Result<()>,
    command: &str,
    input: Option<&[u8]>,
    err: Error,
) -> Error {
    let event = Event::RequestRefused {
        command: command.to_string(),
        input_sha256: input.map(sha256_hex),
        reason: err.to_string(),
    };
    if let Err(log_err) = append(event) {
        crate::notice::warning(format!("could not record the refusal: {log_err}"));
    }
    err
}
