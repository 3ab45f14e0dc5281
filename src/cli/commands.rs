//! One function per command (the token, key, root, sign, csr, crl, inspect and bench commands;
//! the others have their own files): read inputs, check outputs are free, then call the library.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::inputs::{overwrite, parse_key_uri, pin_source, selector};
use super::report;
use super::{Cli, CrlArgs, GlobalArgs, SignArgs, TokenArgs, ValidityArgs};
use crate::ca::issuance::{Certify, Delivery, Order};
use crate::ca::recorder::Recorder;
use crate::ca::serial_hex;
use crate::ca::session::{TokenRef, with_ca_key, with_token};
use crate::ca::signer::{SignatureChoice, key_spec};
use crate::error::{Error, Result, read_file};
use crate::k8s::identity::{Identity, identity};
use crate::output::check_free;
use crate::token::{Module, Pkcs11Uri};
use crate::x509::decode::load_certificate;
use crate::x509::name::parse_name;
use crate::x509::profile::{
    IpNet, LeafUsage, PermittedSubtrees, Profile, ProfileName, San, check_dns_name,
};
use crate::x509::validity::{Lifetime, ValidityPeriod, parse_time};

/// Renders one man page per command from the CLI definition (clap_mangen): `hsmca.1`,
/// `hsmca-key-generate.1`, ...
pub(super) fn man_pages(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| {
        Error::invalid(
            format!("cannot write man pages into {}: {e}", dir.display()),
            "check the path and that this user may write there",
        )
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    if std::fs::read_dir(dir).map_err(io)?.next().is_some() {
        return Err(Error::invalid(
            format!("{} is not empty", dir.display()),
            "name a new or empty directory: man pages are not written over other files",
        ));
    }
    clap_mangen::generate_to(Cli::command(), dir).map_err(io)?;
    Ok(())
}

/// Describes a file as text, or with `json` as the serialised description; certificates
/// also as Kubernetes sees them (user, groups, serving names).
pub(super) fn inspect(file: &Path, json: bool) -> Result<()> {
    let bytes = read_file(file)?;
    let kubernetes: Vec<Identity> = crate::x509::decode::load_certificates(&bytes)
        .map(|certs| certs.iter().map(identity).collect())
        .unwrap_or_default();
    if !json {
        say_raw!("{}", crate::x509::inspect::describe(&bytes)?);
        for (i, id) in kubernetes.iter().enumerate() {
            say!("Kubernetes sees certificate {}:", i + 1);
            for line in id.lines() {
                say!("  {line}");
            }
        }
        return Ok(());
    }
    report::print_json(&report::Inspected {
        description: crate::x509::inspect::inspect(&bytes)?,
        kubernetes,
    })
}

fn load_module(g: &GlobalArgs, uri: Option<&Pkcs11Uri>) -> Result<Module> {
    let path = g
        .module
        .clone()
        .or_else(|| uri.and_then(|u| u.module_path.clone()));
    Ok(Module::load(path.as_deref())?)
}

pub(super) fn token_list(g: &GlobalArgs, json: bool) -> Result<()> {
    let module = load_module(g, None)?;
    let tokens = module.tokens()?;
    let report = report::TokenList {
        module: module.path().display().to_string(),
        tokens: tokens
            .into_iter()
            .map(|t| report::Token {
                slot_id: t.slot_id,
                initialized: t.flags.contains(&"initialized"),
                label: t.label,
                serial: t.serial,
                manufacturer: t.manufacturer,
                model: t.model,
                flags: t.flags.iter().map(|f| f.to_string()).collect(),
                algorithms: t.can_generate.iter().map(|s| s.name()).collect(),
                support: t
                    .support
                    .into_iter()
                    .map(|(spec, how)| report::Support {
                        algorithm: spec.name(),
                        supported: how.is_ok(),
                        detail: how.unwrap_or_else(|why| why),
                    })
                    .collect(),
                note: t.note,
            })
            .collect(),
    };
    for t in &report.tokens {
        if let Some(note) = &t.note {
            super::terminal::note(&format!("token in slot {}: {note}", t.slot_id));
        }
    }
    if json {
        return report::print_json(&report);
    }
    say!("module: {}", report.module);
    if report.tokens.is_empty() {
        say!("no tokens present");
    }
    for t in &report.tokens {
        if t.initialized {
            say!("token: {}", t.label);
        } else {
            say!("token: (not initialised: an empty slot)");
        }
        say!("  slot-id: {}", t.slot_id);
        say!("  serial: {}", t.serial);
        say!("  manufacturer: {}", t.manufacturer);
        say!("  model: {}", t.model);
        say!("  flags: {}", t.flags.join(" "));
        if t.algorithms.is_empty() {
            say!(
                "  algorithms: none (the token offers no key-pair generation and signing mechanism pair hsmca uses)"
            );
        } else {
            say!("  algorithms: {}", t.algorithms.join(" "));
        }
        for s in &t.support {
            if s.supported {
                say!("    {}: {}", s.algorithm, s.detail);
            } else {
                say!("    {}: no: {}", s.algorithm, s.detail);
            }
        }
    }
    Ok(())
}

pub(super) fn key_generate(g: &GlobalArgs, a: super::KeyGenerateArgs) -> Result<()> {
    let alg = a.algorithm;
    let id = match &a.id {
        Some(h) => hex::decode(h)
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    format!("--id \"{h}\" is not hex"),
                    "write the CKA_ID as hex, e.g. 01a2",
                )
            })?,
        None => {
            let mut id = vec![0u8; 16];
            getrandom::fill(&mut id).map_err(|e| {
                Error::invalid(format!("the system RNG failed: {e}"), "fix the system RNG")
            })?;
            id
        }
    };
    if a.label.is_empty() {
        return Err(Error::invalid(
            "--label is empty",
            "name the key, e.g. --label root-2026",
        ));
    }
    if let Some(p) = &a.public_key_out {
        check_free(p, overwrite(a.force))?;
    }
    let token = TokenRef {
        module: g.module.as_deref(),
        selector: selector(&a.token),
    };
    if let Some(outputs) = super::backup::backup_outputs(&a)? {
        return super::backup::key_generate_with_backup(g, &a, &id, outputs, &token);
    }
    let mut rec = Recorder::create(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let (generated, token_label) =
        with_token(&token, true, &pin_source(g, None), &mut rec, |ca| {
            let generated = ca.generate_key(
                key_spec(alg),
                &alg.to_string(),
                &a.label,
                &id,
                "key generate",
            )?;
            if let Some(p) = &a.public_key_out {
                ca.write_public_key(&generated, p, overwrite(a.force))?;
            }
            Ok((generated, ca.session().label().to_string()))
        })?;
    say!(
        "generated {} key \"{}\" on token \"{}\" (sensitive, not extractable, test signature verified)",
        alg,
        a.label,
        token_label
    );
    say!("uri: {}", generated.key.uri);
    say!("spki-sha256: {}", hex::encode(generated.spki_sha256));
    Ok(())
}

pub(super) fn key_list(g: &GlobalArgs, a: TokenArgs, json: bool) -> Result<()> {
    let token = TokenRef {
        module: g.module.as_deref(),
        selector: selector(&a),
    };
    let (label, keys) = with_token(
        &token,
        false,
        &pin_source(g, None),
        &mut Recorder::none(),
        |ca| Ok((ca.session().label().to_string(), ca.session().list_keys()?)),
    )?;
    let keys = keys
        .into_iter()
        .map(|k| {
            let uri = Pkcs11Uri {
                token: Some(label.clone()),
                object: Some(k.label.clone()),
                id: (!k.id.is_empty()).then(|| k.id.clone()),
                object_type: Some("private".into()),
                ..Pkcs11Uri::default()
            };
            let spki = k
                .public
                .as_ref()
                .and_then(|p| crate::ca::signer::spki_from_material(p).ok());
            let violations = k.attributes.describe_violations();
            report::Key {
                uri: uri.to_string(),
                id: hex::encode(&k.id),
                algorithm: k.public.as_ref().and_then(|p| p.spec()).map(|s| s.name()),
                spki_sha256: spki.map(|s| hex::encode(crate::x509::algorithm::spki_sha256(&s))),
                attributes: k
                    .attributes
                    .0
                    .iter()
                    .map(|(n, v)| {
                        let name = n.trim_start_matches("CKA_").to_ascii_lowercase();
                        (name, v.to_string())
                    })
                    .collect(),
                ca_key_policy_ok: violations.is_none(),
                ca_key_policy_violations: violations,
                label: k.label,
            }
        })
        .collect();
    let report = report::KeyList { token: label, keys };
    if json {
        return report::print_json(&report);
    }
    if report.keys.is_empty() {
        say!("no private keys on token \"{}\"", report.token);
    }
    for k in &report.keys {
        say!("key: {}", k.label);
        say!("  uri: {}", k.uri);
        say!("  id: {}", k.id);
        say!(
            "  algorithm: {}",
            k.algorithm
                .as_deref()
                .unwrap_or("unknown (no matching public key)")
        );
        if let Some(digest) = &k.spki_sha256 {
            say!("  spki-sha256: {digest}");
        }
        let attrs: Vec<String> = k
            .attributes
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        say!("  attributes: {}", attrs.join(" "));
        match &k.ca_key_policy_violations {
            None => say!("  ca-key-policy: ok"),
            Some(why) => say!("  ca-key-policy: FAILS ({why})"),
        }
    }
    Ok(())
}

fn validity(v: &ValidityArgs) -> Result<ValidityPeriod> {
    let not_before = match &v.not_before {
        Some(t) => parse_time(t, false)?,
        None => time::OffsetDateTime::now_utc(),
    };
    match (&v.validity, &v.not_after) {
        (Some(d), None) => Ok(ValidityPeriod::starting(
            not_before,
            d.parse::<Lifetime>()?,
        )?),
        (None, Some(t)) => Ok(ValidityPeriod::between(
            not_before.replace_nanosecond(0).unwrap_or(not_before),
            parse_time(t, true)?,
        )?),
        _ => Err(Error::invalid(
            "no validity given",
            "pass --validity (e.g. 5y) or --not-after (with an optional --not-before)",
        )),
    }
}

fn choice(k: &super::SigningKeyArgs) -> SignatureChoice {
    SignatureChoice {
        hash: k.hash.map(super::values::HashBits::bits),
        pss: k.pss,
    }
}

pub(super) fn root_create(g: &GlobalArgs, a: super::RootCreateArgs) -> Result<()> {
    // Everything that can be checked without the token is checked first.
    let uri = parse_key_uri(&a.key.key)?;
    let subject = parse_name(&a.subject)?;
    let period = validity(&a.validity)?;
    let ow = overwrite(a.force);
    check_free(&a.out, ow)?;
    let mut rec = Recorder::create(g.ca_dir.as_deref(), g.operator.as_deref())?;
    if let Some(dir) = rec.dir() {
        // The CA directory's certificate is never replaced, --force or not.
        crate::output::check_ca_file_free(&dir.ca_cert_path())?;
    }
    let order = Order {
        certify: Certify::OwnKey,
        profile: Profile::Root {
            path_len: a.path_len,
        },
        subject: Some(subject),
        validity: period,
        extras: Default::default(),
        command: "root create",
    };
    let delivery = Delivery {
        out: &a.out,
        chain_out: None,
        overwrite: ow,
    };
    let cert = with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(&a.key),
        &mut rec,
        |ca| ca.issue(None, &order, &delivery),
    )?;
    say!(
        "wrote {} (self-signed root, signature verified)",
        a.out.display()
    );
    say!("serial: {}", serial_hex(&cert));
    Ok(())
}

pub(super) fn csr(g: &GlobalArgs, a: super::CsrArgs) -> Result<()> {
    let uri = parse_key_uri(&a.key.key)?;
    let subject = parse_name(&a.subject)?;
    let ow = overwrite(a.force);
    check_free(&a.out, ow)?;
    let mut rec = Recorder::create(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let csr = with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(&a.key),
        &mut rec,
        |ca| ca.request(subject, a.path_len, &a.out, ow),
    )?;
    say!(
        "wrote {} (certificate request for {}, signature verified)",
        a.out.display(),
        csr.subject()
    );
    Ok(())
}

fn sign_profile(a: &SignArgs) -> Result<Profile> {
    let name = a.profile;
    let leaf_only = !a.dns.is_empty() || !a.ip.is_empty();
    let ca_only = a.path_len.is_some() || !a.permit_dns.is_empty() || !a.permit_ip.is_empty();
    if name == ProfileName::Intermediate {
        if leaf_only {
            return Err(Error::invalid(
                "--dns/--ip are subjectAltNames of leaf certificates, not of an intermediate",
                "use --permit-dns/--permit-ip to constrain the names an intermediate may certify",
            ));
        }
        let dns = a
            .permit_dns
            .iter()
            .map(|d| check_dns_name(d, false))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let ip = a
            .permit_ip
            .iter()
            .map(|c| c.parse::<IpNet>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let constraints =
            (!dns.is_empty() || !ip.is_empty()).then_some(PermittedSubtrees { dns, ip });
        return Ok(Profile::Intermediate {
            path_len: a.path_len,
            constraints,
        });
    }
    if ca_only {
        return Err(Error::invalid(
            "--path-len, --permit-dns and --permit-ip apply to --profile intermediate only",
            "remove them, or sign with --profile intermediate",
        ));
    }
    let usage = match name {
        ProfileName::Server => LeafUsage::Server,
        ProfileName::Client => LeafUsage::Client,
        _ => LeafUsage::ServerClient,
    };
    let mut sans = Vec::new();
    for d in &a.dns {
        sans.push(San::Dns(check_dns_name(d, true)?));
    }
    for ip in &a.ip {
        sans.push(San::Ip(ip.parse().map_err(|_| {
            Error::invalid(
                format!("--ip \"{ip}\" is not an IP address"),
                "write e.g. 10.0.0.1 or ::1",
            )
        })?));
    }
    Ok(Profile::Leaf { usage, sans })
}

/// The requests of a signing command: the --csr files, then those of --csr-dir (sorted by
/// name). A batch keeps only each directory entry's name, all packed in one buffer.
struct Requests {
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
    names: Vec<u8>,
    ends: Vec<u32>,
}

impl Requests {
    fn read(a: &SignArgs) -> Result<Requests> {
        let mut r = Requests {
            files: a.csr.clone(),
            dir: a.csr_dir.clone(),
            names: Vec::new(),
            ends: Vec::new(),
        };
        if let Some(dir) = &a.csr_dir {
            let read_err = |source| Error::Read {
                path: dir.clone(),
                source,
            };
            let mut names = Vec::new();
            let mut ends = Vec::new();
            for entry in std::fs::read_dir(dir).map_err(read_err)? {
                let entry = entry.map_err(read_err)?;
                let path = entry.path();
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if path.is_file() && matches!(ext, "csr" | "pem" | "der" | "req") {
                    names.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(
                        entry.file_name().as_os_str(),
                    ));
                    ends.push(u32::try_from(names.len()).map_err(|_| {
                        Error::invalid(
                            format!("{} holds too many requests", dir.display()),
                            "split the batch",
                        )
                    })?);
                }
            }
            // The names in order (a directory's entries are one path component each, so this
            // is the order of their paths), packed again.
            let name = |i: u32| {
                let start = if i == 0 { 0 } else { ends[i as usize - 1] };
                &names[start as usize..ends[i as usize] as usize]
            };
            let mut order: Vec<u32> = (0..ends.len() as u32).collect();
            order.sort_unstable_by(|x, y| name(*x).cmp(name(*y)));
            r.names.reserve_exact(names.len());
            r.ends.reserve_exact(ends.len());
            for i in order {
                r.names.extend_from_slice(name(i));
                r.ends.push(r.names.len() as u32);
            }
        }
        if r.len() == 0 {
            return Err(Error::invalid(
                "no certificate signing request given",
                "pass --csr FILE (repeatable) or --csr-dir DIR",
            ));
        }
        Ok(r)
    }

    fn len(&self) -> usize {
        self.files.len() + self.ends.len()
    }

    /// The i-th request's file.
    fn path(&self, i: usize) -> PathBuf {
        match (i.checked_sub(self.files.len()), &self.dir) {
            (Some(j), Some(dir)) => {
                let start = if j == 0 { 0 } else { self.ends[j - 1] as usize };
                let bytes = &self.names[start..self.ends[j] as usize];
                dir.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes))
            }
            _ => self.files[i].clone(),
        }
    }
}

/// Where each certificate goes: --out for a single request, DIR/<request name>.crt for a batch.
enum Outputs {
    One(PathBuf),
    Dir(PathBuf),
}

impl Outputs {
    /// Checks the output options against the requests, and that no two requests share an
    /// output.
    fn new(a: &SignArgs, requests: &Requests) -> Result<Outputs> {
        match (&a.out, &a.out_dir) {
            (Some(out), None) if requests.len() == 1 => Ok(Outputs::One(out.clone())),
            (Some(_), None) => Err(Error::invalid(
                format!("{} requests but one --out file", requests.len()),
                "pass --out-dir DIR for a batch; each certificate is written as DIR/<request name>.crt",
            )),
            (None, Some(dir)) => {
                if a.chain_out.is_some() || a.subject.is_some() {
                    return Err(Error::invalid(
                        "--chain-out and --subject apply to a single request",
                        "leave them out with --out-dir, or sign that request on its own with --out",
                    ));
                }
                let outs = Outputs::Dir(dir.clone());
                // A set of hashes rather than of paths: a hash seen before is compared with
                // the earlier outputs themselves, so only a real duplicate is refused.
                use std::hash::BuildHasher;
                let hasher = std::collections::hash_map::RandomState::new();
                let mut seen = std::collections::HashSet::with_capacity(requests.len());
                for i in 0..requests.len() {
                    let out = outs.path(requests, i);
                    if !seen.insert(hasher.hash_one(&out))
                        && (0..i).any(|j| outs.path(requests, j) == out)
                    {
                        return Err(Error::invalid(
                            format!("two requests would both be written to {}", out.display()),
                            "give the requests distinct file names",
                        ));
                    }
                }
                Ok(outs)
            }
            (None, None) => Err(Error::invalid(
                "no output given",
                "pass --out FILE (one request) or --out-dir DIR (a batch)",
            )),
            (Some(_), Some(_)) => Err(Error::invalid(
                "--out and --out-dir are exclusive",
                "pass --out FILE for one request or --out-dir DIR for a batch",
            )),
        }
    }

    /// The i-th certificate's file.
    fn path(&self, requests: &Requests, i: usize) -> PathBuf {
        match self {
            Outputs::One(out) => out.clone(),
            Outputs::Dir(dir) => dir
                .join(requests.path(i).file_stem().unwrap_or_default())
                .with_extension("crt"),
        }
    }
}

/// Says which requests this CA directory already signed: signing again is allowed (a renewal),
/// but after a run that stopped between a record and its output, exporting is the fix. Such a
/// run left records no seal covers, which every command reads; a log read from its last seal
/// on shows no older ones (`hsmca list` does).
fn note_already_signed(rec: &Recorder, requests: &Requests, checked: &[[u8; 32]]) {
    let Some(dir) = rec.dir() else { return };
    let mut signed: std::collections::HashMap<String, (&str, u64)> = Default::default();
    for e in &dir.entries {
        if let crate::ca::audit::Event::CsrSigned {
            cert, csr_sha256, ..
        } = &e.record.event
        {
            signed.insert(csr_sha256.clone(), (cert.serial.as_str(), e.record.seq));
        }
    }
    if signed.is_empty() {
        return;
    }
    const SHOWN: usize = 5;
    let mut found = 0usize;
    for (i, hash) in checked.iter().enumerate() {
        let Some((serial, seq)) = signed.get(&hex::encode(hash)) else {
            continue;
        };
        found += 1;
        if found <= SHOWN {
            super::terminal::note(&format!(
                "{} was already signed by this CA (serial {serial}, audit record {seq}); this run issues another certificate for it (if an earlier run stopped before writing that one, 'hsmca export --serial {serial} --out FILE' writes it)",
                requests.path(i).display()
            ));
        }
    }
    if found > SHOWN {
        super::terminal::note(&format!(
            "{} more requests were already signed by this CA ('hsmca list' shows them)",
            found - SHOWN
        ));
    }
}

pub(super) fn sign(g: &GlobalArgs, a: SignArgs) -> Result<()> {
    // Every request, the profile and every output are checked before the token is touched;
    // a batch keeps only each request's name and hash in memory.
    let uri = parse_key_uri(&a.key.key)?;
    let ow = overwrite(a.force);
    let requests = Requests::read(&a)?;
    let outs = Outputs::new(&a, &requests)?;
    if let (Some(chain), Outputs::One(out)) = (&a.chain_out, &outs)
        && chain == out
    {
        return Err(Error::invalid(
            "--out and --chain-out name the same file",
            "give them different paths",
        ));
    }
    for i in 0..requests.len() {
        check_free(&outs.path(&requests, i), ow)?;
    }
    if let Some(chain) = &a.chain_out {
        check_free(chain, ow)?;
    }
    let mut rec = Recorder::open_to_issue(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let issuer_path = match (&a.issuer, rec.dir()) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => dir.ca_cert_path(),
        (None, None) => {
            return Err(Error::invalid(
                "no issuer certificate",
                "pass --issuer with the CA certificate, or --ca-dir",
            ));
        }
    };
    let issuer = load_certificate(&read_file(&issuer_path)?)?;
    if let (Some(dir), Some(_)) = (rec.dir(), &a.issuer) {
        let ca = std::fs::read(dir.ca_cert_path())
            .ok()
            .map(|b| load_certificate(&b))
            .transpose()?;
        if ca.is_some_and(|ca| ca != issuer) {
            return Err(Error::invalid(
                "--issuer is not the CA directory's certificate",
                "leave --issuer out to use the CA directory's, or use the CA directory of that issuer",
            ));
        }
    }
    let request = (|| {
        let profile = sign_profile(&a)?;
        let subject = a.subject.as_deref().map(parse_name).transpose()?;
        let period = validity(&a.validity)?;
        period.check_within(issuer.tbs_certificate().validity())?;
        crate::x509::issue::issuer_facts(&issuer)?;
        Ok::<_, Error>((profile, subject, period))
    })();
    let (profile, subject, period) = request.map_err(|e| rec.refuse("sign", None, e))?;
    let request_path = |i: usize| requests.path(i);
    let checked_hashes = crate::ca::batch::check_requests(requests.len(), &request_path, &mut rec)?;
    note_already_signed(&rec, &requests, &checked_hashes);
    if let Some(dir) = &a.out_dir {
        std::fs::create_dir_all(dir).map_err(|source| {
            Error::from(crate::output::OutputError::Io {
                path: dir.clone(),
                step: "creating the output directory",
                source,
            })
        })?;
    }
    let single = requests.len() == 1;
    let out_path = |i: usize| outs.path(&requests, i);
    let batch = crate::ca::batch::Batch {
        issuer: &issuer,
        profile: &profile,
        subject: subject.as_ref(),
        validity: period,
        request: &request_path,
        checked: &checked_hashes,
        out: &out_path,
        chain_out: a.chain_out.as_deref(),
        overwrite: ow,
        sessions: usize::from(a.sessions),
    };
    let chain_out = a.chain_out.as_deref();
    let progress = super::terminal::Progress::start(requests.len() as u64, "signing");
    let mut written = 0usize;
    let mut done = |_: usize, out: &Path, cert: &x509_cert::Certificate| {
        super::terminal::suspended(|| {
            if single {
                say!("wrote {} (signature and chain verified)", out.display());
                if let Some(chain) = chain_out {
                    say!("wrote {}", chain.display());
                }
                say!("serial: {}", serial_hex(cert));
            } else {
                say!("{}  {}", serial_hex(cert), out.display());
            }
        });
        progress.inc();
        written += 1;
    };
    let issued = with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(&a.key),
        &mut rec,
        |ca| ca.sign_batch(&batch, &mut done),
    )
    .map_err(|e| match written {
        0 => e,
        n => Error::Partial {
            done: if n < requests.len() {
                format!(
                    "{n} of {} certificates were issued, recorded and written (listed above); the requests after them were not signed",
                    requests.len()
                )
            } else {
                format!(
                    "the {n} certificate(s) were issued, recorded and written (listed above); what failed came after them"
                )
            },
            source: Box::new(e),
        },
    })?;
    drop(progress);
    if !single {
        say!("signed {issued} certificates (each signature and chain verified)");
    }
    Ok(())
}

pub(super) fn crl(g: &GlobalArgs, a: CrlArgs) -> Result<()> {
    let uri = parse_key_uri(&a.key.key)?;
    let ow = overwrite(a.force);
    let lifetime: Lifetime = a.next_update.parse()?;
    if g.ca_dir.is_none() {
        return Err(Error::invalid(
            "a CRL is made from the CA directory's records",
            "pass --ca-dir (or HSMCA_CA_DIR)",
        ));
    }
    check_free(&a.out, ow)?;
    let mut rec = Recorder::open(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let crl = with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(&a.key),
        &mut rec,
        |ca| ca.crl(lifetime, a.url.as_deref(), &a.out, ow),
    )?;
    let listed = crl
        .tbs_cert_list
        .revoked_certificates
        .as_ref()
        .map_or(0, Vec::len);
    say!(
        "wrote {} ({listed} revoked, signature verified)",
        a.out.display()
    );
    Ok(())
}

pub(super) fn bench_raw(g: &GlobalArgs, key: &super::SigningKeyArgs, count: usize) -> Result<()> {
    let uri = parse_key_uri(&key.key)?;
    let stats = with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(key),
        &mut Recorder::open_to_issue(g.ca_dir.as_deref(), g.operator.as_deref())?,
        |ca| ca.bench_raw(count),
    )?;
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    say!(
        "raw C_Sign x{}: median {:.1} us, p10 {:.1} us, p90 {:.1} us, mean {:.1} us",
        stats.count,
        us(stats.median),
        us(stats.p10),
        us(stats.p90),
        us(stats.mean)
    );
    Ok(())
}
