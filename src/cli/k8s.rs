//! `hsmca k8s request|sign|issue`: parses arguments and calls [`crate::k8s`].
//! `request` and `issue` never load a PKCS#11 module; `sign` never reads a private key file.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use super::GlobalArgs;
use super::inputs::overwrite;
use super::values::{HashBits, K8sAlgorithm};
use crate::ca::recorder::Recorder;
use crate::ca::serial_hex;
use crate::ca::signer::SignatureChoice;
use crate::error::{Error, Result, read_file};
use crate::k8s::cluster::Cluster;
use crate::k8s::constraints::{ConstraintOverrides, derive};
use crate::k8s::presets::{self, Preset};
use crate::k8s::{ValidityChoice, pki_dir, request, sign, validity_under};
use crate::token::{PinSource, Pkcs11Uri, TokenError};
use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::decode::load_certificate;
use crate::x509::profile::{IpNet, check_dns_name};
use crate::x509::validity::{Lifetime, ValidityPeriod, parse_time};

/// Kubernetes clusters: per-cluster intermediates and component certificates.
#[derive(Debug, Subcommand)]
pub enum K8sCmd {
    /// Cluster side, no token: make the cluster CA keys, sa.key/sa.pub and the CA requests.
    Request(RequestArgs),
    /// Root ceremony: sign a cluster's three CA requests through the token.
    Sign(Box<K8sSignArgs>),
    /// Cluster side, no token: issue a preset's component certificates and kubeconfigs.
    Issue(IssueArgs),
    /// Check every certificate and kubeconfig of a cluster: who it is, what it is for, its
    /// chain, key, names and days left; exit 1 when anything is expired, broken or expiring.
    Check(CheckArgs),
    /// Cluster side, no token: issue again, with the same keys and names, every leaf that
    /// expires within a window; kubeconfigs updated, the old files kept as .old.
    Renew(RenewArgs),
}

/// `k8s renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// kubeadm's pki directory holding the cluster CAs and their keys.
    #[arg(long, value_name = "DIR")]
    pki: PathBuf,
    /// The cluster file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The certificate set (default: kubeadm when --pki holds apiserver.crt, else hard-way).
    #[arg(long)]
    preset: Option<Preset>,
    /// Where the kubeconfigs (and the hard-way files) are (default: the parent of --pki).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// kubeadm: the control-plane node the set was issued for (default: the first).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Renew what expires within this window (e.g. 30d; the default).
    #[arg(long, value_name = "DURATION", conflicts_with = "all")]
    within: Option<String>,
    /// Renew every leaf.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    validity: K8sValidityArgs,
}

/// `k8s check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// kubeadm's pki directory holding the cluster CAs.
    #[arg(long, value_name = "DIR")]
    pki: PathBuf,
    /// The cluster file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The certificate set (default: kubeadm when --pki holds apiserver.crt, else hard-way).
    #[arg(long)]
    preset: Option<Preset>,
    /// Where the kubeconfigs (and the hard-way files) are (default: the parent of --pki).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// kubeadm: the control-plane node the set was issued for (default: the first).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Report certificates that expire within this window too (e.g. 30d).
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    warn: String,
    /// Machine-readable output (README: JSON output).
    #[arg(long)]
    json: bool,
}

/// `k8s request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Cluster name (one DNS label, as in cluster.toml); with --renew, the current CA's.
    #[arg(long, value_name = "NAME", required_unless_present = "renew")]
    cluster: Option<String>,
    /// Cluster directory: keys go to DIR/pki (kubeadm's layout), requests to DIR/requests.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The keys' algorithm (Kubernetes cannot use Ed25519).
    #[arg(long, default_value = "ecdsa-p256")]
    algorithm: K8sAlgorithm,
    /// Requests for renewing the cluster CAs with the keys already in DIR/pki: same subject,
    /// same key, so what the CAs issued stays valid (no new keys are made).
    #[arg(long)]
    renew: bool,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

/// Validity of the certificates a k8s command issues.
#[derive(Debug, Args)]
pub struct K8sValidityArgs {
    /// Lifetime such as 10y, 1y, 90d (default: kubeadm's, 10y for CAs, 1y for leaves).
    #[arg(long, value_name = "DURATION", conflicts_with = "not_after")]
    validity: Option<String>,
    /// Start of validity, RFC 3339 or YYYY-MM-DD (default: 5 minutes ago).
    #[arg(long, value_name = "TIME")]
    not_before: Option<String>,
    /// End of validity (inclusive), RFC 3339 or YYYY-MM-DD.
    #[arg(long, value_name = "TIME")]
    not_after: Option<String>,
}

/// `k8s sign`.
#[derive(Debug, Args)]
pub struct K8sSignArgs {
    /// The root key, as an RFC 7512 URI: pkcs11:token=Root%20CA;object=root-2026
    #[arg(long, value_name = "URI")]
    key: String,
    /// RSA keys: hash of the signature.
    #[arg(long, value_name = "BITS")]
    hash: Option<HashBits>,
    /// RSA keys: sign with RSASSA-PSS.
    #[arg(long)]
    pss: bool,
    /// The root's certificate (default with --ca-dir: the CA directory's).
    #[arg(long, value_name = "FILE")]
    issuer: Option<PathBuf>,
    /// The cluster directory: CSRs are read from DIR/requests, certificates written to DIR/pki.
    #[arg(long, value_name = "DIR")]
    requests: PathBuf,
    /// The cluster file (the name constraints are derived from it).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Replaces the cluster file's domain in the name constraints.
    #[arg(long, value_name = "DOMAIN")]
    cluster_domain: Option<String>,
    /// Replaces the cluster file's service range in the name constraints.
    #[arg(long, value_name = "CIDR")]
    service_cidr: Option<String>,
    /// Replaces the cluster file's node range in the name constraints.
    #[arg(long, value_name = "CIDR")]
    node_cidr: Option<String>,
    /// Adds a permitted DNS subtree (RFC 5280 form, no leading dot); repeatable.
    #[arg(long, value_name = "DOMAIN")]
    dns: Vec<String>,
    /// Adds a permitted IP range; repeatable.
    #[arg(long, value_name = "CIDR")]
    ip: Vec<String>,
    /// Sign the CAs without name constraints.
    #[arg(long, conflicts_with_all = ["cluster_domain", "service_cidr", "node_cidr", "dns", "ip"])]
    no_name_constraints: bool,
    #[command(flatten)]
    validity: K8sValidityArgs,
    /// Replace existing certificate files.
    #[arg(long)]
    force: bool,
    /// Sign without asking (scripts): the plan is still printed first.
    #[arg(long)]
    yes: bool,
}

/// `k8s issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// kubeadm's pki directory holding the cluster CAs (ca.crt/ca.key, etcd/, front-proxy-ca.*).
    #[arg(long, value_name = "DIR")]
    pki: PathBuf,
    /// The certificate set.
    #[arg(long)]
    preset: Preset,
    /// The cluster file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Where kubeconfigs (and the hard-way files) go (default: the parent of --pki).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// kubeadm: the control-plane node to issue for (default: the first).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Leaf key algorithm (default: the kubernetes-ca key's).
    #[arg(long)]
    algorithm: Option<K8sAlgorithm>,
    #[command(flatten)]
    validity: K8sValidityArgs,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

/// Runs a `k8s` subcommand.
pub fn run(g: &GlobalArgs, cmd: K8sCmd) -> Result<()> {
    match cmd {
        K8sCmd::Request(a) => request_cmd(a),
        K8sCmd::Sign(a) => sign_cmd(g, *a),
        K8sCmd::Issue(a) => issue_cmd(a),
        K8sCmd::Check(a) => check_cmd(a),
        K8sCmd::Renew(a) => renew_cmd(a),
    }
}

fn validity_choice(v: &K8sValidityArgs, default: Lifetime) -> Result<ValidityChoice> {
    let nb = v
        .not_before
        .as_deref()
        .map(|t| parse_time(t, false))
        .transpose()?;
    let lifetime = v
        .validity
        .as_deref()
        .map(str::parse::<Lifetime>)
        .transpose()?;
    Ok(match (nb, lifetime, &v.not_after) {
        (None, None, None) => ValidityChoice::Default(default),
        (None, Some(l), None) => ValidityChoice::Default(l),
        (Some(nb), l, None) => {
            ValidityChoice::Explicit(ValidityPeriod::starting(nb, l.unwrap_or(default))?)
        }
        (nb, None, Some(na)) => {
            let now = time::OffsetDateTime::now_utc();
            let nb = nb.unwrap_or(now - time::Duration::minutes(5));
            ValidityChoice::Explicit(ValidityPeriod::between(
                nb.replace_nanosecond(0).unwrap_or(nb),
                parse_time(na, true)?,
            )?)
        }
        (_, Some(_), Some(_)) => {
            return Err(Error::invalid(
                "--validity and --not-after are exclusive",
                "give one of them",
            ));
        }
    })
}

fn algorithm(a: K8sAlgorithm) -> Result<KeyAlgorithm> {
    crate::k8s::check_key_algorithm(a.0, "--algorithm")?;
    Ok(a.0)
}

fn request_cmd(a: RequestArgs) -> Result<()> {
    if a.renew {
        for c in request::renew_requests(a.cluster.as_deref(), &a.out, overwrite(a.force))? {
            say!("wrote {} (the CA's existing key)", c.display());
        }
        say!(
            "take only {} to the root ceremony; the renewed CAs keep their keys and subjects",
            crate::k8s::requests_dir(&a.out).display()
        );
        return Ok(());
    }
    let alg = algorithm(a.algorithm)?;
    let cluster = a.cluster.as_deref().unwrap_or_default();
    let r = request::make_requests(cluster, &a.out, alg, overwrite(a.force))?;
    for k in &r.keys {
        say!("wrote {} (private key, mode 0600)", k.display());
    }
    say!("wrote {}", r.sa_pub.display());
    for c in &r.csrs {
        say!("wrote {}", c.display());
    }
    say!(
        "take only {} to the root ceremony; the keys stay here",
        crate::k8s::requests_dir(&a.out).display()
    );
    Ok(())
}

/// The PIN source, in the order the other signing commands use: --pin-file, the URI's
/// pin-source, HSMCA_PIN, the terminal.
fn pin_source(g: &GlobalArgs, uri: &Pkcs11Uri) -> PinSource {
    if let Some(p) = &g.pin_file {
        return PinSource::File(p.clone());
    }
    if let Some(p) = uri.pin_source.clone() {
        return PinSource::File(p);
    }
    match std::env::var("HSMCA_PIN") {
        Ok(v) => PinSource::Env(Zeroizing::new(v)),
        Err(_) => PinSource::Prompt,
    }
}

fn overrides(a: &K8sSignArgs) -> Result<ConstraintOverrides> {
    let net = |s: &Option<String>| s.as_deref().map(str::parse::<IpNet>).transpose();
    Ok(ConstraintOverrides {
        domain: a
            .cluster_domain
            .as_deref()
            .map(crate::k8s::cluster::check_cluster_domain)
            .transpose()?,
        service_cidr: net(&a.service_cidr)?,
        node_cidr: net(&a.node_cidr)?,
        extra_dns: a
            .dns
            .iter()
            .map(|d| check_dns_name(d, false))
            .collect::<std::result::Result<_, _>>()?,
        extra_ip: a
            .ip
            .iter()
            .map(|c| c.parse())
            .collect::<std::result::Result<_, _>>()?,
    })
}

fn sign_cmd(g: &GlobalArgs, a: K8sSignArgs) -> Result<()> {
    let uri: Pkcs11Uri = a.key.parse()?;
    if uri.token.is_none() && uri.serial.is_none() {
        return Err(TokenError::NoTokenInUri.into());
    }
    let cluster = Cluster::load(&a.config)?;
    let constraints = if a.no_name_constraints {
        None
    } else {
        Some(derive(&cluster, &overrides(&a)?))
    };
    // A cluster CA that is not recorded cannot be listed, exported or revoked later.
    let Some(ca_dir) = g.ca_dir.as_deref() else {
        return Err(Error::invalid(
            "k8s sign records the cluster CAs in the root's CA directory, and none was given",
            "pass --ca-dir (or HSMCA_CA_DIR) with the root's CA directory",
        ));
    };
    let mut rec = Recorder::open_to_issue(Some(ca_dir), g.operator.as_deref())?;
    let issuer_path = match (&a.issuer, rec.dir()) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => dir.ca_cert_path(),
        (None, None) => {
            return Err(Error::invalid(
                "no root certificate",
                "pass --issuer with the root's certificate",
            ));
        }
    };
    let issuer = load_certificate(&read_file(&issuer_path)?)?;
    if let (Some(dir), Some(_)) = (rec.dir(), &a.issuer)
        && let Ok(bytes) = std::fs::read(dir.ca_cert_path())
        && load_certificate(&bytes)? != issuer
    {
        return Err(Error::invalid(
            "--issuer is not the CA directory's certificate",
            "leave --issuer out to use the CA directory's, or use the CA directory of that root",
        ));
    }
    let period = validity_under(&issuer, validity_choice(&a.validity, Lifetime::Years(10))?)
        .map_err(|e| rec.refuse("k8s sign", None, e))?;
    let plan = sign::plan(
        &a.requests,
        &cluster,
        constraints.clone(),
        period,
        overwrite(a.force),
        &mut rec,
    )?;
    for k in sign::keys_present(&a.requests) {
        super::terminal::warning(&format!(
            "{} is here: the root ceremony needs only the requests; keep cluster keys off this machine",
            k.display()
        ));
    }
    confirm(&cluster.name, &plan, constraints.as_ref(), a.yes)?;
    let signed = crate::ca::session::with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, &uri),
        SignatureChoice {
            hash: a.hash.map(HashBits::bits),
            pss: a.pss,
        },
        &mut rec,
        |ca| sign::sign_cluster(ca, &issuer, &plan),
    )?;
    let pki = pki_dir(&a.requests);
    for (role, cert) in &signed {
        say!(
            "wrote {} and {} ({}, serial {})",
            role.cert_path(&pki).display(),
            role.chain_path(&pki).display(),
            role.name(),
            serial_hex(cert)
        );
    }
    match &constraints {
        Some(c) => say!(
            "name constraints: DNS {}; IP {}",
            c.dns.join(", "),
            c.ip.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => say!("name constraints: none (--no-name-constraints)"),
    }
    Ok(())
}

/// Shows the cluster CAs as a witness reads them (subjects, validity, the constraints every
/// name they certify must meet) and asks for the go-ahead before the token signs; `--yes`
/// skips the question, and without a terminal to ask on it is required.
fn confirm(
    cluster: &str,
    plan: &sign::SignPlan,
    constraints: Option<&crate::x509::profile::PermittedSubtrees>,
    yes: bool,
) -> Result<()> {
    use crate::x509::validity::fmt;
    use std::io::IsTerminal;
    say!(
        "The root is about to sign {} CA certificates for cluster {cluster}:",
        plan.requests.len()
    );
    for r in &plan.requests {
        say!("  {:<16} {}", r.role.name(), r.role.subject(cluster));
    }
    say!(
        "  valid            {} to {} (pathLen 0)",
        fmt(plan.validity.not_before),
        fmt(plan.validity.not_after)
    );
    match constraints {
        Some(c) => {
            say!("  name constraints (critical): every name these CAs certify must lie in");
            say!(
                "    DNS: {}",
                if c.dns.is_empty() {
                    "none (all DNS names excluded)".into()
                } else {
                    c.dns.join(", ")
                }
            );
            let ips: Vec<String> = c.ip.iter().map(ToString::to_string).collect();
            say!(
                "    IP:  {}",
                if ips.is_empty() {
                    "none (all addresses excluded)".into()
                } else {
                    ips.join(", ")
                }
            );
        }
        None => {
            say!("  name constraints: NONE (--no-name-constraints): these CAs may certify any name")
        }
    }
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "k8s sign asks for confirmation before the root signs, and there is no terminal to ask on",
            "read the plan above; pass --yes to sign without asking (scripts)",
        ));
    }
    let phrase = format!("sign {cluster}");
    say_raw!("Type \"{phrase}\" to sign (anything else stops): ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::invalid(format!("cannot read the answer: {e}"), "run it again"))?;
    if answer.trim() != phrase {
        return Err(Error::invalid(
            "not confirmed: nothing was signed",
            "run k8s sign again and type the phrase, or fix the cluster file first",
        ));
    }
    Ok(())
}

fn issue_cmd(a: IssueArgs) -> Result<()> {
    let preset = a.preset;
    let cluster = Cluster::load(&a.config)?;
    let out = match &a.out {
        Some(o) => o.clone(),
        None => a
            .pki
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let specs = presets::plan(preset, &cluster, a.node.as_deref(), &a.pki, &out)?;
    let alg = a.algorithm.map(algorithm).transpose()?;
    let choice = validity_choice(&a.validity, Lifetime::Years(1))?;
    let written = presets::issue(
        &specs,
        &cluster,
        &a.pki,
        &out,
        alg,
        choice,
        overwrite(a.force),
    )?;
    for p in &written {
        say!("wrote {}", p.display());
    }
    say!(
        "issued {} certificates ({} preset, cluster {})",
        specs.len(),
        clap::ValueEnum::to_possible_value(&a.preset)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
        cluster.name
    );
    Ok(())
}

/// --out, else the parent of --pki.
fn out_dir(out: &Option<PathBuf>, pki: &Path) -> PathBuf {
    out.clone().unwrap_or_else(|| {
        pki.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    })
}

/// A window in whole days (`30d`, `1y`).
fn window_days(option: &str, text: &str) -> Result<i64> {
    match text.parse::<Lifetime>()? {
        Lifetime::Days(d) => Ok(i64::from(d)),
        Lifetime::Years(y) => Ok(i64::from(y) * 365),
        _ => Err(Error::invalid(
            format!("{option} {text} is not in days or years"),
            format!("write e.g. {option} 30d"),
        )),
    }
}

fn renew_cmd(a: RenewArgs) -> Result<()> {
    let cluster = Cluster::load(&a.config)?;
    let out = out_dir(&a.out, &a.pki);
    let preset = a
        .preset
        .unwrap_or_else(|| crate::k8s::check::detect(&a.pki));
    let specs = presets::plan(preset, &cluster, a.node.as_deref(), &a.pki, &out)?;
    let window = if a.all {
        crate::k8s::renew::Window::All
    } else {
        crate::k8s::renew::Window::Within(window_days(
            "--within",
            a.within.as_deref().unwrap_or("30d"),
        )?)
    };
    let choice = validity_choice(&a.validity, Lifetime::Years(1))?;
    let written = crate::k8s::renew::renew(
        &specs,
        &cluster.name,
        &a.pki,
        window,
        choice,
        time::OffsetDateTime::now_utc(),
    )?;
    for p in &written {
        say!(
            "renewed {} (the old one kept as {}.old)",
            p.display(),
            p.display()
        );
    }
    say!(
        "renewed {} files of cluster {}",
        written.len(),
        cluster.name
    );
    Ok(())
}

fn check_cmd(a: CheckArgs) -> Result<()> {
    let cluster = Cluster::load(&a.config)?;
    let out = out_dir(&a.out, &a.pki);
    let warn_days = window_days("--warn", &a.warn)?;
    let preset = a
        .preset
        .unwrap_or_else(|| crate::k8s::check::detect(&a.pki));
    let report = crate::k8s::check::check(
        preset,
        &cluster,
        a.node.as_deref(),
        (&a.pki, &out),
        warn_days,
        time::OffsetDateTime::now_utc(),
    )?;
    if a.json {
        super::report::print_json(&report)?;
    } else {
        for f in &report.files {
            for line in f.lines() {
                say!("{line}");
            }
        }
    }
    if report.needs_action() {
        let bad = report.files.iter().filter(|f| f.status != "ok").count();
        return Err(Error::invalid(
            format!(
                "{bad} of the {} files of cluster {} need action (expired, broken, missing, or expiring within {warn_days} days)",
                report.files.len(),
                report.cluster
            ),
            "renew what expires with 'hsmca k8s renew'; re-issue what is broken with 'hsmca k8s issue'",
        ));
    }
    if !a.json {
        say!(
            "all {} files of cluster {} are valid for at least {warn_days} more days",
            report.files.len(),
            report.cluster
        );
    }
    Ok(())
}
