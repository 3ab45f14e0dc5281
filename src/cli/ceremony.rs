//! `hsmca ceremony plan|run|verify`: parses arguments, talks to the operator, calls
//! [`crate::ceremony`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Subcommand;
use zeroize::Zeroizing;

use super::GlobalArgs;
use crate::ceremony::run::{self, Console, Options, Outcome};
use crate::ceremony::transcript;
use crate::error::Result;
use crate::token::PinSource;

/// The ceremony subcommands.
#[derive(Debug, Subcommand)]
pub enum CeremonyCmd {
    /// Check everything and print the plan a witness reads, with its digest. No PIN, no signing.
    Plan {
        /// The ceremony file (TOML).
        file: PathBuf,
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
    },
}

/// The operator at the terminal: text on stdout, confirmations typed on stdin.
struct Terminal {
    yes: bool,
}

impl Console for Terminal {
    fn say(&mut self, text: &str) {
        say_raw!("{text}");
        let _ = std::io::stdout().flush();
    }

    fn confirm(&mut self, phrase: &str) -> Result<bool> {
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

fn pin_source(g: &GlobalArgs) -> PinSource {
    if let Some(p) = &g.pin_file {
        return PinSource::File(p.clone());
    }
    match std::env::var("HSMCA_PIN") {
        Ok(v) => PinSource::Env(Zeroizing::new(v)),
        Err(_) => PinSource::Prompt,
    }
}

/// Runs a ceremony subcommand.
pub fn run(g: &GlobalArgs, cmd: CeremonyCmd) -> Result<()> {
    let opts = Options {
        module: g.module.clone(),
        pin: pin_source(g),
    };
    match cmd {
        CeremonyCmd::Plan { file } => {
            let plan = run::plan_only(&file, &opts)?;
            say_raw!("{}", plan.render());
            Ok(())
        }
        CeremonyCmd::Run { file, yes } => {
            match run::run(&file, &opts, &mut Terminal { yes })? {
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
        } => {
            let r = transcript::verify(&path, ca_cert.as_deref())?;
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
