//! The fault module and the per-run sandboxes: a private copy of a prepared token and CA
//! directory, `hsmca` run on it through the fault module, and what must hold after every run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use hsmca::internals::audit::{AuditLog, Event};

/// Which call to fail, and how.
#[derive(Debug, Clone)]
pub(super) struct Fault {
    pub(super) func: String,
    pub(super) n: usize,
    pub(super) rv: &'static str,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{} -> {}", self.func, self.n, self.rv)
    }
}

/// A private copy of a prepared directory (token store, CA directory, inputs) with its own
/// softhsm2.conf: copying a token is much faster than initialising one.
pub(super) struct Sandbox {
    pub(super) dir: tempfile::TempDir,
    pub(super) conf: PathBuf,
}

pub(super) fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "softhsm2.conf" || name == "pkcs11-spy.log" {
            continue;
        }
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&e.path(), &to.join(&name));
        } else if ft.is_file() {
            fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

impl Sandbox {
    pub(super) fn copy_of(prepared: &Path) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("hsmca-fault-")
            .tempdir()
            .unwrap();
        copy_tree(prepared, dir.path());
        let template = fs::read_to_string(repo_root().join("softhsm/softhsm2.conf.in")).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        let tokens = dir.path().join("tokens");
        fs::write(
            &conf,
            template.replace("@TOKENDIR@", tokens.to_str().unwrap()),
        )
        .unwrap();
        Sandbox { dir, conf }
    }

    pub(super) fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `hsmca` on this sandbox's token through the fault module (no fault unless given).
    pub(super) fn hsmca(&self, fault: Option<&Fault>, call_log: Option<&Path>) -> Command {
        let mut cmd = Command::new(hsmca_bin());
        cmd.current_dir(self.dir.path())
            .env("SOFTHSM2_CONF", &self.conf)
            .env("HSMCA_PIN", USER_PIN)
            .env("HSMCA_MODULE", faultmod());
        for v in ["HSMCA_CA_DIR", "HSMCA_OPERATOR"]
            .into_iter()
            .chain(CALL_LOG_VARS)
        {
            cmd.env_remove(v);
        }
        cmd.env("HSMCA_FAULT_REAL", softhsm_module());
        if let Some(f) = fault {
            cmd.env("HSMCA_FAULT_FN", &f.func)
                .env("HSMCA_FAULT_N", f.n.to_string())
                .env("HSMCA_FAULT_RV", f.rv);
        }
        if let Some(log) = call_log {
            cmd.env("HSMCA_FAULT_LOG", log);
        }
        cmd
    }

    pub(super) fn run(
        &self,
        args: &[String],
        fault: Option<&Fault>,
        call_log: Option<&Path>,
    ) -> Output {
        run_command(self.hsmca(fault, call_log).args(args))
    }
}

/// The calls the fault module logged: (function, whether it was the injected fault).
pub(super) fn read_call_log(path: &Path) -> Vec<(String, bool)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            (name, words.next() == Some("FAULT"))
        })
        .collect()
}

/// Every call of a list as (function, how many times it was called up to and including it).
pub(super) fn positions(calls: &[String]) -> Vec<(String, usize)> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    calls
        .iter()
        .map(|c| {
            let n = seen.entry(c.as_str()).or_default();
            *n += 1;
            (c.clone(), *n)
        })
        .collect()
}

/// Hidden temporary files (`.NAME.PID.RANDOM.tmp`, as `output::write_atomic` names them) left
/// anywhere outside the token store.
pub(super) fn leftover_temp_files(root: &Path) -> Vec<PathBuf> {
    files_in(root)
        .into_keys()
        .filter(|p| {
            !p.starts_with("tokens")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
        })
        .collect()
}

/// What the CA directory must look like whatever happened: an intact chain (and seals, where
/// the CA certificate exists), each serial recorded once, each kept certificate recorded,
/// `ca.crt` only with a root record, CRL numbers increasing, every new certificate exportable.
/// `exported` holds the serials checked by earlier runs in the same sandbox.
pub(super) fn check_ca_dir(
    sb: &Sandbox,
    exported: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    let ca = sb.path("ca");
    if !ca.is_dir() {
        return;
    }
    let entries = match AuditLog::new(&ca.join("audit.jsonl")).read() {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("the audit log does not read back: {e}"));
            return;
        }
    };
    if ca.join("ca.crt").exists() {
        let out = run_command(
            sb.hsmca(None, None)
                .args(["--ca-dir", "ca", "log", "verify"]),
        );
        if !out.status.success() {
            problems.push(format!(
                "'hsmca log verify' fails: {}",
                stderr_of(&out).trim()
            ));
        }
    }
    let mut serials = BTreeSet::new();
    let mut roots = 0;
    let mut crl_numbers = Vec::new();
    for e in &entries {
        match &e.record.event {
            Event::RootCreated { cert } | Event::CsrSigned { cert, .. } => {
                if matches!(e.record.event, Event::RootCreated { .. }) {
                    roots += 1;
                }
                if !serials.insert(cert.serial.clone()) {
                    problems.push(format!("serial {} is recorded twice", cert.serial));
                }
                if exported.contains(&cert.serial) {
                    continue;
                }
                let file = format!("exported-{}.pem", cert.serial);
                let out = run_command(sb.hsmca(None, None).args([
                    "--ca-dir",
                    "ca",
                    "export",
                    "--serial",
                    &cert.serial,
                    "--out",
                    &file,
                ]));
                if !out.status.success() {
                    problems.push(format!(
                        "recorded certificate {} does not export: {}",
                        cert.serial,
                        stderr_of(&out).trim()
                    ));
                } else if Some(cert_der(&sb.path(&file))) != cert.der().ok() {
                    problems.push(format!("export of {} differs from its record", cert.serial));
                }
                let _ = fs::remove_file(sb.path(&file));
                exported.insert(cert.serial.clone());
            }
            Event::CrlIssued { crl_number, .. } => crl_numbers.push(*crl_number),
            _ => {}
        }
    }
    if crl_numbers.windows(2).any(|w| w[1] <= w[0]) {
        problems.push(format!("CRL numbers not increasing: {crl_numbers:?}"));
    }
    if ca.join("ca.crt").exists() != (roots > 0) {
        problems.push(format!(
            "ca/ca.crt exists: {}, root records: {roots}",
            ca.join("ca.crt").exists()
        ));
    }
    if let Ok(kept) = fs::read_dir(ca.join("certs")) {
        for k in kept.flatten() {
            let name = k.file_name().to_string_lossy().into_owned();
            if !serials.contains(name.trim_end_matches(".pem")) {
                problems.push(format!("ca/certs/{name} has no record"));
            }
        }
    }
}

pub(super) fn recorded_serials(ca: &Path) -> Vec<String> {
    AuditLog::new(&ca.join("audit.jsonl"))
        .read()
        .expect("the audit log reads back")
        .into_iter()
        .filter_map(|e| match e.record.event {
            Event::RootCreated { cert } | Event::CsrSigned { cert, .. } => Some(cert.serial),
            _ => None,
        })
        .collect()
}
/// `hsmca` with the fault module also preloaded (so its fsync counts), logging to `log`.
pub(super) fn preloaded(sb: &Sandbox, log: &Path) -> Command {
    let mut cmd = sb.hsmca(None, Some(log));
    cmd.env("LD_PRELOAD", faultmod());
    cmd
}
