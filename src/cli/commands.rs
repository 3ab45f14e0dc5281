//! One function per command: read inputs, check outputs are free, then call the library.

use std::path::{Path, PathBuf};

use der::Encode;
use zeroize::Zeroizing;

use super::{
    Cli, Command, CrlArgs, GlobalArgs, KeyCmd, LogCmd, RootCmd, SignArgs, TokenArgs, TokenCmd,
    ValidityArgs,
};
use crate::ca::audit::{Event, b64, sha256_hex};
use crate::ca::signer::{SignatureChoice, TokenSigner};
use crate::ca::store::{Access, CaDir};
use crate::ca::{create_root, generate_key, sign_csr};
use crate::ca::{issued_record, profile_name, serial_hex};
use crate::error::{Error, Result, read_file};
use crate::output::{Overwrite, check_free, write_atomic};
use crate::token::{
    KeySpec, Module, Pin, PinSource, Pkcs11Uri, TokenError, TokenSelector, TokenSession,
};
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
        Command::Sign(a) => sign(g, a),
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
    }
}

/// The CA directory of a command that records, with the operator's name.
pub(super) struct Recorder {
    dir: Option<CaDir>,
    operator: Option<String>,
}

impl Recorder {
    /// A recorder that records nothing (commands that do not sign).
    pub(super) fn none() -> Recorder {
        Recorder {
            dir: None,
            operator: None,
        }
    }

    /// Opens and locks --ca-dir for writing (if given) and checks the log before anything else.
    pub(super) fn open(g: &GlobalArgs) -> Result<Recorder> {
        let operator = g
            .operator
            .clone()
            .or_else(|| std::env::var("LOGNAME").ok())
            .or_else(|| std::env::var("USER").ok());
        let dir = match &g.ca_dir {
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

    fn append(&mut self, event: Event) -> Result<()> {
        if let Some(dir) = &mut self.dir {
            dir.log
                .append(&mut dir.entries, event, self.operator.as_deref())?;
        }
        Ok(())
    }

    /// Records a refused request and hands the refusal back.
    fn refuse(&mut self, command: &str, input: Option<&[u8]>, err: Error) -> Error {
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

    fn seal(&mut self, signer: &dyn crate::x509::signer::CaSigner, key_uri: &str) -> Result<()> {
        if let Some(dir) = &mut self.dir {
            dir.log
                .seal(&mut dir.entries, signer, key_uri, self.operator.as_deref())?;
        }
        Ok(())
    }

    fn taken_serials(&self) -> std::collections::HashSet<Vec<u8>> {
        self.dir
            .as_ref()
            .map(|d| d.ledger().serials())
            .unwrap_or_default()
    }

    /// Keeps an issued certificate in the CA directory, after its record is on disk.
    fn keep_cert(&self, cert: &x509_cert::Certificate) -> Result<()> {
        if let Some(dir) = &self.dir {
            write_pem_cert(
                &dir.cert_path(&serial_hex(cert)),
                &[cert],
                Overwrite::Refuse,
            )?;
        }
        Ok(())
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

/// Logs in exactly once, printing the token's PIN-counter warnings; a failure is recorded.
fn login(session: &mut TokenSession<'_>, source: &PinSource, rec: &mut Recorder) -> Result<()> {
    let pin = Pin::read(
        source,
        &format!("User PIN for token \"{}\": ", session.label()),
    )?;
    match session.login(&pin) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        Err(e @ (TokenError::PinIncorrect | TokenError::PinLocked)) => {
            let event = Event::LoginFailed {
                token: session.label().to_string(),
                reason: e.to_string(),
            };
            if let Err(log_err) = rec.append(event) {
                eprintln!("warning: could not record the failed login: {log_err}");
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
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

fn key_spec(alg: KeyAlgorithm) -> KeySpec {
    match alg {
        KeyAlgorithm::EcdsaP256 => KeySpec::EcP256,
        KeyAlgorithm::EcdsaP384 => KeySpec::EcP384,
        KeyAlgorithm::Rsa2048 => KeySpec::Rsa(2048),
        KeyAlgorithm::Rsa3072 => KeySpec::Rsa(3072),
        KeyAlgorithm::Rsa4096 => KeySpec::Rsa(4096),
        KeyAlgorithm::Ed25519 => KeySpec::Ed25519,
    }
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
    let mut rec = Recorder::open(g)?;
    let module = load_module(g, None)?;
    let mut session = TokenSession::open(&module, &selector(&a.token), true)?;
    login(&mut session, &pin_source(g, None), &mut rec)?;
    let generated = generate_key(&session, key_spec(alg), &a.label, &id)?;
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
    rec.seal(&signer, &uri)?;
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
    login(&mut session, &pin_source(g, None), &mut Recorder::none())?;
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

fn uri_selector(uri: &Pkcs11Uri) -> TokenSelector {
    TokenSelector {
        label: uri.token.clone(),
        serial: uri.serial.clone(),
    }
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
    let mut rec = Recorder::open(g)?;
    if let Some(dir) = &rec.dir {
        // The CA directory's certificate is never replaced, --force or not.
        check_free(&dir.ca_cert_path(), Overwrite::Refuse)?;
    }
    let module = load_module(g, Some(&uri))?;
    let mut session = TokenSession::open(&module, &uri_selector(&uri), false)?;
    login(&mut session, &pin_source(g, Some(&uri)), &mut rec)?;
    let key = session.open_key(&uri)?;
    let key_uri = key.uri.to_string();
    let signer = TokenSigner::new(&session, key, choice(&a.key))?;
    let cert = create_root(&signer, subject, period, a.path_len, &rec.taken_serials())?;
    // Record first, files second: a crash after this line loses nothing ('hsmca export').
    rec.append(Event::RootCreated {
        cert: issued_record(&cert, "root", &key_uri)?,
    })?;
    rec.keep_cert(&cert)?;
    if let Some(dir) = &rec.dir {
        write_pem_cert(&dir.ca_cert_path(), &[&cert], Overwrite::Refuse)?;
    }
    write_pem_cert(&a.out, &[&cert], ow)?;
    rec.seal(&signer, &key_uri)?;
    println!(
        "wrote {} (self-signed root, signature verified)",
        a.out.display()
    );
    println!("serial: {}", serial_hex(&cert));
    Ok(())
}

pub(super) fn write_pem_cert(
    path: &Path,
    certs: &[&x509_cert::Certificate],
    ow: Overwrite,
) -> Result<()> {
    let mut pem = String::new();
    for c in certs {
        let der = c
            .to_der()
            .map_err(|e| Error::invalid(format!("certificate encoding: {e}"), "report a bug"))?;
        pem.push_str(&to_pem("CERTIFICATE", &der)?);
    }
    write_atomic(path, pem.as_bytes(), 0o644, ow)?;
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

fn sign(g: &GlobalArgs, a: SignArgs) -> Result<()> {
    // Inputs, profile and outputs are all checked before the token is touched.
    let uri = parse_key_uri(&a.key.key)?;
    let ow = overwrite(a.force);
    let outputs: Vec<&PathBuf> = std::iter::once(&a.out)
        .chain(a.chain_out.as_ref())
        .collect();
    if outputs.len() == 2 && outputs[0] == outputs[1] {
        return Err(Error::invalid(
            "--out and --chain-out name the same file",
            "give them different paths",
        ));
    }
    for p in &outputs {
        check_free(p, ow)?;
    }
    let mut rec = Recorder::open(g)?;
    let issuer_path = match (&a.issuer, &rec.dir) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => dir.ca_cert_path(),
        (None, None) => {
            return Err(Error::invalid(
                "no issuer certificate",
                "pass --issuer with the CA certificate, or --ca-dir",
            ));
        }
    };
    let issuer_bytes = read_file(&issuer_path)?;
    let issuer = load_certificate(&issuer_bytes)?;
    if let (Some(dir), Some(_)) = (&rec.dir, &a.issuer) {
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
    let csr_bytes = read_file(&a.csr)?;
    let checked = (|| {
        let csr = Csr::parse(&csr_bytes)?;
        csr.verify_self_signature()?;
        csr.public_key()?;
        let profile = sign_profile(&a)?;
        let subject = a.subject.as_deref().map(parse_name).transpose()?;
        let period = validity(&a.validity)?;
        period.check_within(issuer.tbs_certificate().validity())?;
        crate::x509::issue::issuer_facts(&issuer)?;
        Ok::<_, Error>((csr, profile, subject, period))
    })();
    let (csr, profile, subject, period) =
        checked.map_err(|e| rec.refuse("sign", Some(&csr_bytes), e))?;
    let ignored = csr.requested_extensions()?;
    let module = load_module(g, Some(&uri))?;
    let mut session = TokenSession::open(&module, &uri_selector(&uri), false)?;
    login(&mut session, &pin_source(g, Some(&uri)), &mut rec)?;
    let key = session.open_key(&uri)?;
    let key_uri = key.uri.to_string();
    let signer = TokenSigner::new(&session, key, choice(&a.key))?;
    let pname = profile_name(&profile);
    let cert = sign_csr(
        &signer,
        &issuer,
        &csr,
        profile,
        subject,
        period,
        &rec.taken_serials(),
    )
    .map_err(|e| rec.refuse("sign", Some(&csr_bytes), e))?;
    // Record first, files second: a crash after this line loses nothing ('hsmca export').
    rec.append(Event::CsrSigned {
        cert: issued_record(&cert, pname, &key_uri)?,
        csr_sha256: sha256_hex(csr.der()),
        csr_der: b64(csr.der()),
    })?;
    rec.keep_cert(&cert)?;
    write_pem_cert(&a.out, &[&cert], ow)?;
    if let Some(chain) = &a.chain_out {
        write_pem_cert(chain, &[&cert, &issuer], ow)?;
    }
    rec.seal(&signer, &key_uri)?;
    if !ignored.is_empty() {
        let oids: Vec<String> = ignored.iter().map(|e| e.extn_id.to_string()).collect();
        eprintln!(
            "note: the CSR asked for extensions the profile decides itself; ignored: {}",
            oids.join(", ")
        );
    }
    println!("wrote {} (signature and chain verified)", a.out.display());
    if let Some(chain) = &a.chain_out {
        println!("wrote {}", chain.display());
    }
    println!("serial: {}", serial_hex(&cert));
    Ok(())
}

fn crl(g: &GlobalArgs, a: CrlArgs) -> Result<()> {
    let uri = parse_key_uri(&a.key.key)?;
    let ow = overwrite(a.force);
    check_free(&a.out, ow)?;
    let lifetime: Lifetime = a.next_update.parse()?;
    let Some(_) = &g.ca_dir else {
        return Err(Error::invalid(
            "a CRL is made from the CA directory's records",
            "pass --ca-dir (or HSMCA_CA_DIR)",
        ));
    };
    let mut rec = Recorder::open(g)?;
    let dir = rec
        .dir
        .as_ref()
        .ok_or_else(|| Error::invalid("no CA directory", "pass --ca-dir"))?;
    let issuer = load_certificate(&read_file(&dir.ca_cert_path())?)?;
    let ledger = dir.ledger();
    let own = serial_hex(&issuer);
    let mut revoked = Vec::new();
    for (serial, entry) in &ledger.revoked {
        if *serial == own {
            continue;
        }
        revoked.push(crate::x509::crl::Revocation {
            serial: x509_cert::serial_number::SerialNumber::new(
                &hex::decode(serial).unwrap_or_default(),
            )
            .map_err(|e| {
                Error::invalid(
                    format!("recorded serial {serial}: {e}"),
                    "run 'hsmca log verify'",
                )
            })?,
            date: parse_time(&entry.date, false)?,
            reason: crate::ca::revocation_reason(&entry.reason)?,
        });
    }
    let number = ledger.last_crl_number + 1;
    let now = time::OffsetDateTime::now_utc();
    let this_update = now.replace_nanosecond(0).unwrap_or(now);
    let next_update =
        ValidityPeriod::starting(this_update, lifetime)?.not_after + time::Duration::SECOND;
    let module = load_module(g, Some(&uri))?;
    let mut session = TokenSession::open(&module, &uri_selector(&uri), false)?;
    login(&mut session, &pin_source(g, Some(&uri)), &mut rec)?;
    let key = session.open_key(&uri)?;
    let key_uri = key.uri.to_string();
    let signer = TokenSigner::new(&session, key, choice(&a.key))?;
    let list =
        crate::x509::crl::issue_crl(&signer, &issuer, number, this_update, next_update, &revoked)?;
    let der = list
        .to_der()
        .map_err(|e| Error::invalid(format!("CRL encoding: {e}"), "report a bug"))?;
    rec.append(Event::CrlIssued {
        crl_number: number,
        this_update: crate::x509::validity::fmt(this_update),
        next_update: crate::x509::validity::fmt(next_update),
        revoked: revoked
            .iter()
            .map(|r| hex::encode_upper(r.serial.as_bytes()))
            .collect(),
        crl_sha256: sha256_hex(&der),
        crl_der: b64(&der),
    })?;
    write_atomic(&a.out, to_pem("X509 CRL", &der)?.as_bytes(), 0o644, ow)?;
    rec.seal(&signer, &key_uri)?;
    println!(
        "wrote {} (CRL number {number}, {} revoked, signature verified)",
        a.out.display(),
        revoked.len()
    );
    Ok(())
}
