//! Recording into the CA directory: every command that signs appends its events to the audit
//! log, keeps issued certificates, and ends with a seal.

use std::path::Path;

use super::audit::{Event, sha256_hex};
use super::serial_hex;
use super::store::{Access, CaDir};
use crate::error::{Error, Result};
use crate::output::Overwrite;
use crate::x509::decode::load_certificate;

/// The CA directory of a command that records, with the operator's name.
pub struct Recorder {
    dir: Option<CaDir>,
    operator: Option<String>,
}

impl Recorder {
    /// A recorder that records nothing (commands that do not sign).
    pub fn none() -> Recorder {
        Recorder {
            dir: None,
            operator: None,
        }
    }

    /// Opens and locks the CA directory for writing (if given) and checks the log before anything else.
    pub fn open(ca_dir: Option<&Path>, operator: Option<&str>) -> Result<Recorder> {
        let operator = operator
            .map(str::to_string)
            .or_else(|| std::env::var("LOGNAME").ok())
            .or_else(|| std::env::var("USER").ok());
        let dir = match ca_dir {
            Some(p) => {
                let dir = CaDir::open(p, Access::Write)?;
                // A broken log stops every signing command until the operator looks.
                if let Ok(bytes) = std::fs::read(dir.ca_cert_path()) {
                    let ca = load_certificate(&bytes)?;
                    dir.log
                        .verify(ca.tbs_certificate().subject_public_key_info())?;
                }
                Some(dir)
            }
            None => None,
        };
        Ok(Recorder { dir, operator })
    }

    pub fn append(&mut self, event: Event) -> Result<()> {
        if let Some(dir) = &mut self.dir {
            dir.log
                .append(&mut dir.entries, event, self.operator.as_deref())?;
        }
        Ok(())
    }

    /// Records a refused request and hands the refusal back.
    pub fn refuse(&mut self, command: &str, input: Option<&[u8]>, err: Error) -> Error {
        let event = Event::RequestRefused {
            command: command.to_string(),
            input_sha256: input.map(sha256_hex),
            reason: err.to_string(),
        };
        if let Err(log_err) = self.append(event) {
            eprintln!("warning: could not record the refusal: {log_err}");
        }
        err
    }

    pub fn seal(
        &mut self,
        signer: &dyn crate::x509::signer::CaSigner,
        key_uri: &str,
    ) -> Result<()> {
        if let Some(dir) = &mut self.dir {
            dir.log
                .seal(&mut dir.entries, signer, key_uri, self.operator.as_deref())?;
        }
        Ok(())
    }

    pub fn taken_serials(&self) -> std::collections::HashSet<Vec<u8>> {
        self.dir
            .as_ref()
            .map(|d| d.ledger().serials())
            .unwrap_or_default()
    }

    /// Keeps an issued certificate in the CA directory, after its record is on disk.
    pub fn keep_cert(&self, cert: &x509_cert::Certificate) -> Result<()> {
        if let Some(dir) = &self.dir {
            super::ops::write_pem_certs(
                &dir.cert_path(&serial_hex(cert)),
                &[cert],
                Overwrite::Refuse,
            )?;
        }
        Ok(())
    }
}

impl Recorder {
    /// The CA directory, when recording.
    pub fn dir(&self) -> Option<&CaDir> {
        self.dir.as_ref()
    }

    /// The operator's name.
    pub fn operator(&self) -> Option<&str> {
        self.operator.as_deref()
    }
}
