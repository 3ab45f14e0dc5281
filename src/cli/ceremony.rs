//! `hsmca ceremony plan|run|verify`: parses arguments, talks to the operator, calls
//! [`crate::ceremony`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Subcommand;

use super::terminal::{Progress, suspended};
use super::{GlobalArgs, report};
use crate::ceremony::run::{self, Console, Options, Outcome};
use crate::ceremony::transcript;
use crate::error::{Error, Result};

/// The ceremony subcommands.
#[derive(Debug, Subcommand)]
pub enum CeremonyCmd {
    /// Check everything and print the plan a witness reads, with its digest. No PIN, no signing.
    Plan {
        /// The ceremony file (TOML).
        file: PathBuf,
        /// Machine-readable output (README: JSON output).
        #[arg(long)]
        json: bool,
    },
    /// Perform the ceremony step by step: one PIN entry, a typed confirmation per step.
    Run {
        /// The ceremony file (TOML).
        file: PathBuf,
        /// Confirm every step without asking (CI and tests; never in a witnessed ceremony).
        #[arg(long)]
        yes: bool,
    },
    /// Check a transcript: its signature, the files it lists, the audit log.
    Verify {
        /// The transcript.
        transcript: PathBuf,
        /// The CA certificate to verify with (default: the CA directory's ca.crt).
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// Machine-readable output when it verifies (README: JSON output).
        #[arg(long)]
        json: bool,
    },
}

/// The operator at the terminal: text on stdout, confirmations typed on stdin, the steps done
/// on a progress bar (stderr).
struct Terminal {
    yes: bool,
    progress: Option<Progress>,
    performed: usize,
}

impl Console for Terminal {
    fn say(&mut self, text: &str) {
        suspended(|| {
            say_raw!("{text}");
            let _ = std::io::stdout().flush();
        });
    }

    fn step_done(&mut self, done: usize, total: usize) {
        self.performed = done;
        let bar = self
            .progress
            .get_or_insert_with(|| Progress::start(total as u64, "ceremony steps"));
        bar.set(done as u64);
    }

    fn confirm(&mut self, phrase: &str) -> Result<bool> {
        suspended(|| self.ask(phrase))
    }
}

impl Terminal {
    fn ask(&self, phrase: &str) -> Result<bool> {
        if self.yes {
            say!("  confirmed by --yes: {phrase}");
            return Ok(true);
        }
        say_raw!("  Type \"{phrase}\" to perform this step (anything else stops the ceremony): ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .unwrap_or_default();
        if n == 0 {
            say!("(no input)");
        } else if !std::io::stdin().is_terminal() {
            // Typed input echoes its own newline; piped input does not.
            say!("{}", line.trim_end());
        }
        Ok(line.trim() == phrase)
    }
}

/// Runs a ceremony subcommand.
pub fn run(g: &GlobalArgs, cmd: CeremonyCmd) -> Result<()> {
    let opts = Options {
        module: g.module.clone(),
        pin: super::inputs::pin_source(g, None),
    };
    match cmd {
        CeremonyCmd::Plan { file, json } => {
            let plan = run::plan_only(&file, &opts)?;
            if json {
                return report::print_json(&report::CeremonyPlan::of(&plan));
            }
            say_raw!("{}", plan.render());
            Ok(())
        }
        CeremonyCmd::Run { file, yes } => {
            let mut terminal = Terminal {
                yes,
                progress: None,
                performed: 0,
            };
            let outcome = run::run(&file, &opts, &mut terminal).map_err(|e| {
                if terminal.performed == 0 {
                    return e;
                }
                Error::Partial {
                    done: format!(
                        "{} step(s) of this run are done, recorded and sealed; running the same file again resumes after them",
                        terminal.performed
                    ),
                    source: Box::new(e),
                }
            });
            drop(terminal);
            match outcome? {
                Outcome::Completed(t) => say!("ceremony complete: {}", t.display()),
                Outcome::AlreadyComplete(t) => {
                    say!("ceremony already complete: {}", t.display())
                }
            }
            Ok(())
        }
        CeremonyCmd::Verify {
            transcript: path,
            ca_cert,
            json,
        } => {
            let r = transcript::verify(&path, ca_cert.as_deref())?;
            if json {
                return report::print_json(&report::CeremonyVerified {
                    transcript: path.display().to_string(),
                    ceremony: r.ceremony,
                    plan_digest_short: r.plan_digest_short,
                    ca_certificate_sha256: r.ca_fingerprint,
                    files: r.files,
                    records: r.records,
                    log_records: r.log_records,
                    log_seals: r.log_seals,
                });
            }
            say!("transcript: {} (OK)", path.display());
            say!("ceremony: {}", r.ceremony);
            say!("plan digest: {}", r.plan_digest_short);
            say!(
                "signature: verified with the CA certificate SHA-256 {}",
                r.ca_fingerprint
            );
            say!("files: {} listed, every hash matches", r.files);
            say!(
                "audit log: intact ({} records, {} seals); the {} records the transcript names are unchanged",
                r.log_records,
                r.log_seals,
                r.records
            );
            Ok(())
        }
    }
}
