//! One function per command: read inputs, check outputs are free, then call the library.

use std::path::{Path, PathBuf};

use der::Encode;
use zeroize::Zeroizing;

use super::{
    BenchCmd, Cli, Command, CrlArgs, GlobalArgs, KeyCmd, LogCmd, RootCmd, SignArgs, TokenArgs,
    TokenCmd, ValidityArgs,
};
use crate::ca::CheckedCsr;
use crate::ca::audit::Event;
use crate::ca::generate_key;
use crate::ca::ops::{self};
use crate::ca::recorder::Recorder;
use crate::ca::serial_hex;
use crate::ca::signer::{SignatureChoice, TokenSigner, key_spec};
use crate::error::{Error, Result, read_file};
use crate::output::{Overwrite, check_free, write_atomic};
use crate::token::{Module, PinSource, Pkcs11Uri, TokenError, TokenSelector, TokenSession};
use crate::x509::algorithm::KeyAlgorithm;
use crate::x509::csr::Csr;
use crate::x509::decode::{load_certificate, to_pem};
use crate::x509::name::parse_name;
use crate::x509::profile::{
    IpNet, LeafUsage, PermittedSubtrees, Profile, ProfileName, San, check_dns_name,
};
use crate::x509::validity::{Lifetime, ValidityPeriod, parse_time};

/// Dispatches a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Token(TokenCmd::List) => token_list(g),
        Command::Key(KeyCmd::Generate(a)) => key_generate(g, a),
        Command::Key(KeyCmd::List(a)) => key_list(g, a),
        Command::Root(RootCmd::Create(a)) => root_create(g, a),
        Command::Sign(a) => sign(g, *a),
        Command::Inspect { file } => {
            print!("{}", crate::x509::inspect::describe(&read_file(&file)?)?);
            Ok(())
        }
        Command::List { json } => super::records::list(g, json),
        Command::Show { serial } => super::records::show(g, &serial),
        Command::Export { serial, out, force } => super::records::export(g, &serial, &out, force),
        Command::Revoke {
            serial,
            reason,
            date,
        } => super::records::revoke(g, &serial, &reason, date.as_deref()),
        Command::Crl(a) => crl(g, a),
        Command::Log(LogCmd::Verify { root }) => super::records::log_verify(g, root.as_deref()),
        Command::Bench(BenchCmd::Raw { key, count }) => bench_raw(g, &key, count),
        Command::K8s(c) => super::k8s::run(g, c),
        Command::Ceremony(c) => super::ceremony::run(g, c),
    }
}

pub(super) fn overwrite(force: bool) -> Overwrite {
    if force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    }
}

/// The PIN source: --pin-file, then the URI's pin-source, then HSMCA_PIN, then the terminal.
fn pin_source(g: &GlobalArgs, uri: Option<&Pkcs11Uri>) -> PinSource {
    if let Some(p) = &g.pin_file {
        return PinSource::File(p.clone());
    }
    if let Some(p) = uri.and_then(|u| u.pin_source.clone()) {
        return PinSource::File(p);
    }
    match std::env::var("HSMCA_PIN") {
        Ok(v) => PinSource::Env(Zeroizing::new(v)),
        Err(_) => PinSource::Prompt,
    }
}

fn load_module(g: &GlobalArgs, uri: Option<&Pkcs11Uri>) -> Result<Module> {
    let path = g
        .module
        .clone()
        .or_else(|| uri.and_then(|u| u.module_path.clone()));
    Ok(Module::load(path.as_deref())?)
}

fn selector(t: &TokenArgs) -> TokenSelector {
    TokenSelector {
        label: Some(t.token.clone()),
        serial: t.token_serial.clone(),
    }
}

fn token_list(g: &GlobalArgs) -> Result<()> {
    let module = load_module(g, None)?;
    let tokens = module.tokens()?;
    println!("module: {}", module.path().display());
    if tokens.is_empty() {
        println!("no tokens present");
    }
    for t in tokens {
        if t.flags.contains(&"initialized") {
            println!("token: {}", t.label);
        } else {
            println!("token: (not initialised: an empty slot)");
        }
        println!("  slot-id: {}", t.slot_id);
        println!("  serial: {}", t.serial);
        println!("  manufacturer: {}", t.manufacturer);
        println!("  model: {}", t.model);
        println!("  flags: {}", t.flags.join(" "));
        let algs: Vec<String> = t.can_generate.iter().map(|s| s.name()).collect();
        println!("  algorithms: {}", algs.join(" "));
    }
    Ok(())
}

fn key_generate(g: &GlobalArgs, a: super::KeyGenerateArgs) -> Result<()> {
    let alg: KeyAlgorithm = a.algorithm.parse()?;
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
    let mut rec = Recorder::open(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let module = load_module(g, None)?;
    let mut session = TokenSession::open(&module, &selector(&a.token), true)?;
    ops::login(&mut session, &pin_source(g, None), &mut rec)?;
    let generated = generate_key(
        &session,
        key_spec(alg),
        &a.label,
        &id,
        &mut rec,
        "key generate",
    )?;
    let uri = generated.key.uri.to_string();
    rec.append(Event::KeyGenerated {
        key_uri: uri.clone(),
        algorithm: alg.to_string(),
        spki_sha256: hex::encode(generated.spki_sha256),
    })?;
    if let Some(p) = &a.public_key_out {
        let der = generated
            .spki
            .to_der()
            .map_err(|e| Error::invalid(format!("public key encoding: {e}"), "report a bug"))?;
        write_atomic(
            p,
            to_pem("PUBLIC KEY", &der)?.as_bytes(),
            0o644,
            overwrite(a.force),
        )?;
    }
    let signer = TokenSigner::new(&session, generated.key.clone(), SignatureChoice::default())?;
    // A CA directory that already has its CA certificate is sealed by that CA's key; a new
    // key is recorded there but does not seal, or `log verify` would stop trusting the log.
    if rec.dir().is_some_and(|d| !d.ca_cert_path().exists()) {
        rec.seal(&signer, &uri)?;
    }
    println!(
        "generated {} key \"{}\" on token \"{}\" (sensitive, not extractable, test signature verified)",
        alg,
        a.label,
        session.label()
    );
    println!("uri: {uri}");
    println!("spki-sha256: {}", hex::encode(generated.spki_sha256));
    Ok(())
}

fn key_list(g: &GlobalArgs, a: TokenArgs) -> Result<()> {
    let module = load_module(g, None)?;
    let mut session = TokenSession::open(&module, &selector(&a), false)?;
    ops::login(&mut session, &pin_source(g, None), &mut Recorder::none())?;
    let keys = session.list_keys()?;
    if keys.is_empty() {
        println!("no private keys on token \"{}\"", session.label());
    }
    for k in keys {
        let uri = Pkcs11Uri {
            token: Some(session.label().to_string()),
            object: Some(k.label.clone()),
            id: (!k.id.is_empty()).then(|| k.id.clone()),
            object_type: Some("private".into()),
            ..Pkcs11Uri::default()
        };
        println!("key: {}", k.label);
        println!("  uri: {uri}");
        println!("  id: {}", hex::encode(&k.id));
        let alg = k
            .public
            .as_ref()
            .and_then(|p| p.spec())
            .map(|s| s.name())
            .unwrap_or_else(|| "unknown (no matching public key)".into());
        println!("  algorithm: {alg}");
        let spki = k
            .public
            .as_ref()
            .and_then(|p| crate::ca::signer::spki_from_material(p).ok());
        if let Some(digest) = spki.map(|s| crate::x509::algorithm::spki_sha256(&s)) {
            println!("  spki-sha256: {}", hex::encode(digest));
        }
        let attrs: Vec<String> = k
            .attributes
            .0
            .iter()
            .map(|(n, v)| format!("{}={v}", n.trim_start_matches("CKA_").to_ascii_lowercase()))
            .collect();
        println!("  attributes: {}", attrs.join(" "));
        match k.attributes.first_violation() {
            None => println!("  ca-key-policy: ok"),
            Some((n, want, got)) => {
                println!("  ca-key-policy: FAILS ({n} is {got}, must be {want})")
            }
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
        (Some(d), None) => ValidityPeriod::starting(not_before, d.parse::<Lifetime>()?),
        (None, Some(t)) => ValidityPeriod::between(
            not_before.replace_nanosecond(0).unwrap_or(not_before),
            parse_time(t, true)?,
        ),
        _ => Err(Error::invalid(
            "no validity given",
            "pass --validity (e.g. 5y) or --not-after (with an optional --not-before)",
        )),
    }
}

fn parse_key_uri(text: &str) -> Result<Pkcs11Uri> {
    let uri: Pkcs11Uri = text.parse()?;
    if uri.token.is_none() && uri.serial.is_none() {
        return Err(TokenError::NoTokenInUri.into());
    }
    Ok(uri)
}

fn choice(k: &super::SigningKeyArgs) -> SignatureChoice {
    SignatureChoice {
        hash: k.hash,
        pss: k.pss,
    }
}

fn root_create(g: &GlobalArgs, a: super::RootCreateArgs) -> Result<()> {
    // Everything that can be checked without the token is checked first.
    let uri = parse_key_uri(&a.key.key)?;
    let subject = parse_name(&a.subject)?;
    let period = validity(&a.validity)?;
    let ow = overwrite(a.force);
    check_free(&a.out, ow)?;
    let mut rec = Recorder::open(g.ca_dir.as_deref(), g.operator.as_deref())?;
    if let Some(dir) = rec.dir() {
        // The CA directory's certificate is never replaced, --force or not.
        check_free(&dir.ca_cert_path(), Overwrite::Refuse)?;
    }
    let cert = ops::with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(&a.key),
        &mut rec,
        |signer, rec| ops::issue_root(signer, rec, subject, period, a.path_len, &a.out, ow),
    )?;
    println!(
        "wrote {} (self-signed root, signature verified)",
        a.out.display()
    );
    println!("serial: {}", serial_hex(&cert));
    Ok(())
}

fn sign_profile(a: &SignArgs) -> Result<Profile> {
    let name: ProfileName = a.profile.parse()?;
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
            .collect::<Result<Vec<_>>>()?;
        let ip = a
            .permit_ip
            .iter()
            .map(|c| c.parse::<IpNet>())
            .collect::<Result<Vec<_>>>()?;
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

/// The requests of a signing command: the --csr files, then those of --csr-dir (sorted).
fn request_paths(a: &SignArgs) -> Result<Vec<PathBuf>> {
    let mut paths = a.csr.clone();
    if let Some(dir) = &a.csr_dir {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| Error::Read {
                    path: dir.clone(),
                    source,
                })?
                .path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if path.is_file() && matches!(ext, "csr" | "pem" | "der" | "req") {
                found.push(path);
            }
        }
        found.sort();
        paths.extend(found);
    }
    if paths.is_empty() {
        return Err(Error::invalid(
            "no certificate signing request given",
            "pass --csr FILE (repeatable) or --csr-dir DIR",
        ));
    }
    Ok(paths)
}

/// Where each certificate goes: --out for a single request, DIR/<request name>.crt for a batch.
fn certificate_paths(a: &SignArgs, requests: &[PathBuf]) -> Result<Vec<PathBuf>> {
    match (&a.out, &a.out_dir) {
        (Some(out), None) if requests.len() == 1 => Ok(vec![out.clone()]),
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
            let mut outs: Vec<PathBuf> = Vec::with_capacity(requests.len());
            let mut seen = std::collections::HashSet::with_capacity(requests.len());
            for r in requests {
                let stem = r.file_stem().unwrap_or_default();
                let out = dir.join(stem).with_extension("crt");
                if !seen.insert(out.clone()) {
                    return Err(Error::invalid(
                        format!("two requests would both be written to {}", out.display()),
                        "give the requests distinct file names",
                    ));
                }
                outs.push(out);
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

/// Prefixes an error's cause with the file it is about, keeping its hint.
fn about(path: &Path, e: Error) -> Error {
    let (cause, hint) = e.cause_and_hint();
    Error::invalid(
        format!("{}: {cause}", path.display()),
        hint.unwrap_or_else(|| "check that file".into()),
    )
}

fn sign(g: &GlobalArgs, a: SignArgs) -> Result<()> {
    // Every request, the profile and every output are checked before the token is touched;
    // a batch keeps only each request's path and hash in memory.
    let uri = parse_key_uri(&a.key.key)?;
    let ow = overwrite(a.force);
    let requests = request_paths(&a)?;
    let outs = certificate_paths(&a, &requests)?;
    if let (Some(chain), [out]) = (&a.chain_out, outs.as_slice())
        && chain == out
    {
        return Err(Error::invalid(
            "--out and --chain-out name the same file",
            "give them different paths",
        ));
    }
    for p in outs.iter().chain(a.chain_out.as_ref()) {
        check_free(p, ow)?;
    }
    let mut rec = Recorder::open(g.ca_dir.as_deref(), g.operator.as_deref())?;
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
    let mut checked_hashes = Vec::with_capacity(requests.len());
    for path in &requests {
        let bytes = read_file(path)?;
        let csr = Csr::parse(&bytes)
            .map_err(Error::from)
            .and_then(CheckedCsr::check)
            .map_err(|e| rec.refuse("sign", Some(&bytes), about(path, e)))?;
        let ignored = csr.csr().requested_extensions()?;
        if !ignored.is_empty() {
            let oids: Vec<String> = ignored.iter().map(|e| e.extn_id.to_string()).collect();
            eprintln!(
                "note: {} asks for extensions the profile decides itself; ignored: {}",
                path.display(),
                oids.join(", ")
            );
        }
        checked_hashes.push(csr.csr().sha256());
    }
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
    let issued = ops::with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(&a.key),
        &mut rec,
        |signer, rec| {
            for ((path, out), sha) in requests.iter().zip(&outs).zip(&checked_hashes) {
                let csr = Csr::parse(&read_file(path)?)?;
                let checked = CheckedCsr::recheck(csr, sha).map_err(|e| about(path, e))?;
                let outputs = ops::CertOutputs {
                    out,
                    chain_out: a.chain_out.as_deref(),
                    overwrite: ow,
                };
                let cert = ops::issue_from_csr(
                    signer,
                    rec,
                    &issuer,
                    &checked,
                    profile.clone(),
                    subject.clone(),
                    period,
                    &outputs,
                )?;
                if single {
                    println!("wrote {} (signature and chain verified)", out.display());
                    if let Some(chain) = &a.chain_out {
                        println!("wrote {}", chain.display());
                    }
                    println!("serial: {}", serial_hex(&cert));
                } else {
                    println!("{}  {}", serial_hex(&cert), out.display());
                }
            }
            Ok(requests.len())
        },
    )?;
    if !single {
        println!("signed {issued} certificates (each signature and chain verified)");
    }
    Ok(())
}

fn crl(g: &GlobalArgs, a: CrlArgs) -> Result<()> {
    let uri = parse_key_uri(&a.key.key)?;
    let ow = overwrite(a.force);
    check_free(&a.out, ow)?;
    let lifetime: Lifetime = a.next_update.parse()?;
    if g.ca_dir.is_none() {
        return Err(Error::invalid(
            "a CRL is made from the CA directory's records",
            "pass --ca-dir (or HSMCA_CA_DIR)",
        ));
    }
    let mut rec = Recorder::open(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let crl = ops::with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(&a.key),
        &mut rec,
        |signer, rec| ops::issue_crl_recorded(signer, rec, lifetime, &a.out, ow),
    )?;
    let listed = crl
        .tbs_cert_list
        .revoked_certificates
        .as_ref()
        .map_or(0, Vec::len);
    println!(
        "wrote {} ({listed} revoked, signature verified)",
        a.out.display()
    );
    Ok(())
}

fn bench_raw(g: &GlobalArgs, key: &super::SigningKeyArgs, count: usize) -> Result<()> {
    let uri = parse_key_uri(&key.key)?;
    let stats = ops::with_ca_key(
        g.module.as_deref(),
        &uri,
        &pin_source(g, Some(&uri)),
        choice(key),
        &mut Recorder::none(),
        |signer, _| crate::ca::bench::raw_sign(signer, count),
    )?;
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    println!(
        "raw C_Sign x{}: median {:.1} us, p10 {:.1} us, p90 {:.1} us, mean {:.1} us",
        stats.count,
        us(stats.median),
        us(stats.p10),
        us(stats.p90),
        us(stats.mean)
    );
    Ok(())
}
