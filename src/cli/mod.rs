//! The command line: parses arguments and calls the library. No PKCS#11 or X.509 logic here.

/// `println!` that never panics: a closed or failing standard output (`hsmca sign ... | head
/// -1`) is remembered and the command goes on, so that what it signs is still recorded,
/// written and sealed; [`main`] then reports it as the command's error.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that never panics, as [`say!`].
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::cli::say(format_args!($($arg)*))
    };
}

mod backup;
mod ceremony;
mod commands;
mod inputs;
mod k8s;
mod records;
mod report;
mod terminal;
mod values;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::profile::ProfileName;

use crate::VERSION;

/// Exit codes, kept stable for scripts (also in `--help` and the README).
pub mod exit {
    /// Done.
    pub const DONE: u8 = 0;
    /// Refused or failed; nothing was changed.
    pub const FAILED: u8 = 1;
    /// Usage: the command line does not parse (clap's own code).
    #[expect(
        dead_code,
        reason = "clap exits with it itself; listed so all the codes are here"
    )]
    pub const USAGE: u8 = 2;
    /// Stopped part-way: the work before the failure is done and recorded (a batch, a
    /// ceremony); the error says what.
    pub const PARTIAL: u8 = 3;
}

const EXIT_CODES: &str = "Exit codes: 0 done; 1 refused or failed, nothing changed; 2 usage \
error; 3 stopped part-way (a batch or ceremony: what was done before the failure is recorded, \
and the error says what).";

/// hsmca: an offline root CA whose private key never leaves a PKCS#11 token.
#[derive(Debug, Parser)]
#[command(name = "hsmca", version = VERSION, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// PKCS#11 module (.so); default: HSMCA_MODULE, else the usual SoftHSM2 paths.
    #[arg(long, global = true, env = "HSMCA_MODULE", value_name = "PATH")]
    module: Option<PathBuf>,
    /// Read the user PIN from this file (else HSMCA_PIN, else a prompt on the terminal).
    #[arg(long, global = true, value_name = "PATH")]
    pin_file: Option<PathBuf>,
    /// CA directory: issued certificates and the audit log; every signing command records there.
    #[arg(long, global = true, env = "HSMCA_CA_DIR", value_name = "DIR")]
    ca_dir: Option<PathBuf>,
    /// Operator name for the audit log (default: the login name).
    #[arg(long, global = true, env = "HSMCA_OPERATOR", value_name = "NAME")]
    operator: Option<String>,
    /// Quiet: no notes and no progress bar (warnings and errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tokens and what they can do.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Keys on a token.
    #[command(subcommand)]
    Key(KeyCmd),
    /// The self-signed root certificate.
    #[command(subcommand)]
    Root(RootCmd),
    /// Sign a CSR with a CA key on the token.
    Sign(Box<SignArgs>),
    /// Make a certificate request (PKCS#10) for a CA key on the token, signed by it: for a CA
    /// elsewhere to certify (an intermediate kept on a token, a root to be cross-signed).
    Csr(CsrArgs),
    /// Show a certificate, chain, CSR, CRL or public key in readable form.
    Inspect {
        /// The file (PEM or DER).
        file: PathBuf,
        /// Machine-readable output (the shape is in the README, section JSON output).
        #[arg(long)]
        json: bool,
    },
    /// List every certificate this CA issued (needs --ca-dir).
    List {
        /// Machine-readable output (README: JSON output).
        #[arg(long)]
        json: bool,
    },
    /// Show one issued certificate's record, certificate and request.
    Show {
        /// Serial number in hex.
        #[arg(long)]
        serial: String,
        /// Machine-readable output (README: JSON output).
        #[arg(long)]
        json: bool,
    },
    /// Write an issued certificate from the audit log to a file.
    Export {
        /// Serial number in hex.
        #[arg(long)]
        serial: String,
        /// Where to write it (PEM).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Revoke an issued certificate (recorded; the next CRL lists it).
    Revoke {
        /// Serial number in hex.
        #[arg(long)]
        serial: String,
        /// The CA key, whose seal covers the revocation (default: the key that sealed the CA
        /// directory's log last).
        #[arg(long, value_name = "URI")]
        key: Option<String>,
        /// The RFC 5280 reason.
        #[arg(long, value_parser = values::reason_parser())]
        reason: String,
        /// Revocation date, RFC 3339 (default: now).
        #[arg(long, value_name = "TIME")]
        date: Option<String>,
    },
    /// Issue this CA's CRL, signed through the token.
    Crl(CrlArgs),
    /// The audit log.
    #[command(subcommand)]
    Log(LogCmd),
    /// Kubernetes: per-cluster intermediates, component certificates, kubeconfigs.
    #[command(subcommand)]
    K8s(k8s::K8sCmd),
    /// Measurements (see scripts/bench.sh).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Key ceremonies from a file: plan, run, verify the transcript.
    #[command(subcommand)]
    Ceremony(ceremony::CeremonyCmd),
    /// Print the shell completion script for bash, zsh or fish (e.g. `hsmca completions bash >
    /// ~/.local/share/bash-completion/completions/hsmca`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages of hsmca and every subcommand into an empty directory (packaging).
    #[command(hide = true)]
    ManPages {
        /// The directory: created if missing, refused unless empty.
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// Time the token's raw signing: a tight C_Sign loop with the key's mechanism.
    Raw {
        #[command(flatten)]
        key: SigningKeyArgs,
        /// Signatures to time.
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
}

#[derive(Debug, Args)]
struct CrlArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    /// nextUpdate as a duration from now, at most 365d.
    #[arg(long, value_name = "DURATION")]
    next_update: String,
    /// The http:// URL the CRL is published at: its issuingDistributionPoint names it (as the
    /// certificates' cRLDistributionPoints do), which rustls-webpki requires of a root's CRL.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Where to write the CRL (PEM).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum LogCmd {
    /// Check the whole audit log: hash chain and every seal; exit 0 only when intact.
    Verify {
        /// The CA certificate whose key seals the log (default: the CA directory's).
        #[arg(long, value_name = "FILE")]
        root: Option<PathBuf>,
        /// The CA key: log in and check that the log is the one whose head the token keeps
        /// (not cut back, swapped or extended). Without it freshness is not checked.
        #[arg(long, value_name = "URI")]
        key: Option<String>,
        /// Machine-readable output when the log is intact (README: JSON output).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// List slots with tokens: label, serial, model, flags and key algorithms.
    List {
        /// Machine-readable output (README: JSON output).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCmd {
    /// Generate a CA key pair inside the token (sensitive, never extractable; with --backup,
    /// extractable only wrapped under a key split among M-of-N custodians).
    Generate(KeyGenerateArgs),
    /// Restore a backed-up CA key onto a token from its wrapped file and M shares.
    Restore(KeyRestoreArgs),
    /// List the private keys on a token with their security attributes.
    List {
        #[command(flatten)]
        token: TokenArgs,
        /// Machine-readable output (README: JSON output).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// Token label.
    #[arg(long, value_name = "LABEL")]
    token: String,
    /// Token serial number, when several tokens share a label.
    #[arg(long, value_name = "SERIAL")]
    token_serial: Option<String>,
}

#[derive(Debug, Args)]
struct KeyGenerateArgs {
    #[command(flatten)]
    token: TokenArgs,
    /// Label of the new key (CKA_LABEL); must not exist yet.
    #[arg(long)]
    label: String,
    /// The key algorithm (ed25519 where the token offers it).
    #[arg(long)]
    algorithm: KeyAlgorithm,
    /// CKA_ID in hex (default: 16 random bytes).
    #[arg(long, value_name = "HEX")]
    id: Option<String>,
    /// Also write the public key as PEM.
    #[arg(long, value_name = "FILE")]
    public_key_out: Option<PathBuf>,
    /// Make an M-of-N backup at generation (e.g. 3-of-5): the key is wrapped under a fresh
    /// key-encryption key whose N shares are printed, one per custodian (needs the SO PIN).
    #[arg(long, value_name = "M-of-N", requires = "backup_out")]
    backup: Option<String>,
    /// Where the wrapped key goes (with --backup); useless without M of the shares.
    #[arg(long, value_name = "FILE", requires = "backup")]
    backup_out: Option<PathBuf>,
    /// Write one file per share into this empty directory instead of printing them (tests and
    /// rehearsals: a real ceremony gives each custodian only their own).
    #[arg(long, value_name = "DIR", requires = "backup")]
    shares_out: Option<PathBuf>,
    #[command(flatten)]
    so_pin: SoPinArgs,
    /// Replace an existing --public-key-out or --backup-out file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct SoPinArgs {
    /// Read the security officer's PIN from this file (else HSMCA_SO_PIN, else a prompt).
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct KeyRestoreArgs {
    #[command(flatten)]
    token: TokenArgs,
    /// The wrapped key file 'key generate --backup-out' wrote.
    #[arg(long, value_name = "FILE")]
    wrapped: PathBuf,
    /// A file holding one share (repeat for each); without it the shares are asked for.
    #[arg(long = "share", value_name = "FILE")]
    shares: Vec<PathBuf>,
    #[command(flatten)]
    so_pin: SoPinArgs,
}

#[derive(Debug, Subcommand)]
enum RootCmd {
    /// Create the self-signed root certificate of a key on the token.
    Create(RootCreateArgs),
}

#[derive(Debug, Args)]
struct SigningKeyArgs {
    /// The CA key, as an RFC 7512 URI: pkcs11:token=Root%20CA;object=root-2026
    #[arg(long, value_name = "URI")]
    key: String,
    /// RSA keys: hash of the signature (EC keys use their curve's hash).
    #[arg(long, value_name = "BITS")]
    hash: Option<values::HashBits>,
    /// RSA keys: sign with RSASSA-PSS instead of PKCS#1 v1.5.
    #[arg(long)]
    pss: bool,
}

#[derive(Debug, Args)]
struct ValidityArgs {
    /// Lifetime such as 20y, 5y, 90d, 12h (NotAfter = NotBefore + lifetime - 1 s).
    #[arg(long, value_name = "DURATION", conflicts_with = "not_after")]
    validity: Option<String>,
    /// Start of validity, RFC 3339 or YYYY-MM-DD (default: now).
    #[arg(long, value_name = "TIME")]
    not_before: Option<String>,
    /// End of validity (inclusive), RFC 3339 or YYYY-MM-DD (end of that day, UTC).
    #[arg(long, value_name = "TIME")]
    not_after: Option<String>,
}

#[derive(Debug, Args)]
struct RootCreateArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    /// Subject, RFC 4514: "CN=Example Root CA 2026,O=Example,C=KR".
    #[arg(long, value_name = "DN")]
    subject: String,
    #[command(flatten)]
    validity: ValidityArgs,
    /// basicConstraints pathLenConstraint (not recommended on roots).
    #[arg(long, value_name = "N")]
    path_len: Option<u8>,
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct CsrArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    /// Subject, RFC 4514: "CN=Cluster A CA,O=Example".
    #[arg(long, value_name = "DN")]
    subject: String,
    /// basicConstraints pathLenConstraint to ask for.
    #[arg(long, value_name = "N")]
    path_len: Option<u8>,
    /// Where to write the request (PEM).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct SignArgs {
    #[command(flatten)]
    key: SigningKeyArgs,
    /// The issuing CA's certificate (default with --ca-dir: the CA directory's).
    #[arg(long, value_name = "FILE")]
    issuer: Option<PathBuf>,
    /// A certificate signing request (PEM or DER); repeatable for a batch.
    #[arg(long, value_name = "FILE")]
    csr: Vec<PathBuf>,
    /// Sign every request (*.csr, *.pem, *.der, *.req) in this directory, in name order.
    #[arg(long, value_name = "DIR")]
    csr_dir: Option<PathBuf>,
    /// What the certificate is for.
    #[arg(long)]
    profile: ProfileName,
    /// Intermediate: pathLenConstraint (0: it signs leaves only).
    #[arg(long, value_name = "N")]
    path_len: Option<u8>,
    /// Intermediate: permitted DNS subtree (RFC 5280 form, no leading dot); repeatable.
    #[arg(long, value_name = "DOMAIN")]
    permit_dns: Vec<String>,
    /// Intermediate: permitted IP range in CIDR form; repeatable.
    #[arg(long, value_name = "CIDR")]
    permit_ip: Vec<String>,
    /// Leaf: DNS subjectAltName; repeatable.
    #[arg(long, value_name = "NAME")]
    dns: Vec<String>,
    /// Leaf: IP subjectAltName; repeatable.
    #[arg(long, value_name = "ADDRESS")]
    ip: Vec<String>,
    /// Subject to use instead of the CSR's, RFC 4514.
    #[arg(long, value_name = "DN")]
    subject: Option<String>,
    #[command(flatten)]
    validity: ValidityArgs,
    /// Where to write the certificate (PEM), for a single request.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// For a batch: write each certificate as DIR/<request name>.crt.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Also write the chain: the new certificate, then the issuer's.
    #[arg(long, value_name = "FILE")]
    chain_out: Option<PathBuf>,
    /// For a batch: token sessions signing at once (one login; certificates are still
    /// recorded and written in request order).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    sessions: u8,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

/// Dispatches a parsed command line.
fn run(cli: Cli) -> crate::error::Result<()> {
    let g = &cli.global;
    // Outputs are checked before the CA directory is opened (a refused command changes
    // nothing there), so it is protected from them first.
    if let Some(dir) = g.ca_dir.as_deref().filter(|d| d.is_dir()) {
        crate::output::protect(dir).map_err(|source| crate::error::Error::Read {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    match cli.command {
        Command::Token(TokenCmd::List { json }) => commands::token_list(g, json),
        Command::Key(KeyCmd::Generate(a)) => commands::key_generate(g, a),
        Command::Key(KeyCmd::Restore(a)) => backup::key_restore(g, a),
        Command::Key(KeyCmd::List { token, json }) => commands::key_list(g, token, json),
        Command::Root(RootCmd::Create(a)) => commands::root_create(g, a),
        Command::Sign(a) => commands::sign(g, *a),
        Command::Csr(a) => commands::csr(g, a),
        Command::Inspect { file, json } => commands::inspect(&file, json),
        Command::List { json } => records::list(g, json),
        Command::Show { serial, json } => records::show(g, &serial, json),
        Command::Export { serial, out, force } => records::export(g, &serial, &out, force),
        Command::Revoke {
            serial,
            key,
            reason,
            date,
        } => records::revoke(g, key.as_deref(), &serial, &reason, date.as_deref()),
        Command::Crl(a) => commands::crl(g, a),
        Command::Log(LogCmd::Verify { root, key, json }) => {
            records::log_verify(g, root.as_deref(), key.as_deref(), json)
        }
        Command::Bench(BenchCmd::Raw { key, count }) => commands::bench_raw(g, &key, count),
        Command::K8s(c) => k8s::run(g, c),
        Command::Ceremony(c) => ceremony::run(g, c),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "hsmca",
                &mut out,
            );
            say_raw!("{}", String::from_utf8_lossy(&out));
            Ok(())
        }
        Command::ManPages { out_dir } => commands::man_pages(&out_dir),
    }
}

/// Set once a write to standard output failed.
static STDOUT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to standard output; a failure is remembered, not raised (see [`say!`]).
pub(crate) fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).and_then(|()| out.flush()).is_err() {
        STDOUT_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    terminal::install(cli.global.quiet);
    let result = run(cli).and_then(|()| {
        if STDOUT_FAILED.load(std::sync::atomic::Ordering::Relaxed) {
            Err(crate::error::Error::invalid(
                "standard output was closed or failed before the command's report was written",
                "the work itself is done and recorded (hsmca list and log verify show it); read the report from a file or a pipe that reads to the end",
            ))
        } else {
            Ok(())
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::from(exit::DONE),
        Err(e) => {
            let (cause, hint) = e.cause_and_hint();
            eprintln!("error: {cause}");
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::from(match e {
                crate::error::Error::Partial { .. } => exit::PARTIAL,
                _ => exit::FAILED,
            })
        }
    }
}
