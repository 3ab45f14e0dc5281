//! Executing a ceremony: plan again under the CA directory's lock, one PIN entry and one
//! C_Login for the whole run, a typed confirmation per step, each result verified, recorded in
//! the audit log and sealed before the next step, and a transcript signed by the CA key.
//!
//! A run that stops (refused confirmation, fault, Ctrl-C) leaves every completed step's outputs
//! and records in place; the next run of the same file finds them (outputs matching audit
//! records) and resumes at the first step not done.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use x509_cert::Certificate;

use super::config::{CeremonyFile, RevokeTarget, Step};
use super::plan::{self, CaState, Plan, TokenView};
use super::transcript;
use crate::ca::audit::{Event, b64, sha256_hex};
use crate::ca::cross::CrossSource;
use crate::ca::ops::{self, write_pem_certs};
use crate::ca::recorder::Recorder;
use crate::ca::signer::{SignatureChoice, TokenSigner, key_spec};
use crate::ca::store::{Access, CaDir};
use crate::ca::{CheckedCsr, generate_key, issued_record, serial_hex};
use crate::error::{Error, MAX_CSR, Result, read_file, read_limited};
use crate::output::Overwrite;
use crate::token::{Module, PinSource, TokenSelector, TokenSession};
use crate::x509::csr::Csr;
use crate::x509::decode::load_certificate;
use crate::x509::issue::{CertRequest, prepare_with_extras};
use crate::x509::lint::{lint_before_signing, refuse_findings};
use crate::x509::profile::Profile;
use crate::x509::serial::random_serial_excluding;
use crate::x509::signer::CaSigner;

/// Where the run talks to the operator.
pub trait Console {
    /// Shows text.
    fn say(&mut self, text: &str);
    /// Asks the operator to type `phrase`; `Ok(false)` when they type anything else.
    fn confirm(&mut self, phrase: &str) -> Result<bool>;
}

/// What `plan` and `run` need besides the file.
pub struct Options {
    /// --module / HSMCA_MODULE.
    pub module: Option<PathBuf>,
    /// Where the PIN comes from.
    pub pin: PinSource,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every step done and the transcript written (path).
    Completed(PathBuf),
    /// Nothing to do: the ceremony was already complete.
    AlreadyComplete(PathBuf),
}

fn module_path(file: &CeremonyFile, opts: &Options) -> Result<Option<PathBuf>> {
    match (&file.token.module, &opts.module) {
        (Some(f), Some(o)) if f != o => Err(Error::invalid(
            format!(
                "the ceremony file names module {} but --module/HSMCA_MODULE names {}",
                f.display(),
                o.display()
            ),
            "make them agree, or leave one out",
        )),
        (Some(f), _) => Ok(Some(f.clone())),
        (None, o) => Ok(o.clone()),
    }
}

fn selector(file: &CeremonyFile) -> TokenSelector {
    TokenSelector {
        label: Some(file.token.label.clone()),
        serial: file.token.serial.clone(),
    }
}

/// Builds the plan without a PIN and without writing anything: the `plan` command.
pub fn plan_only(path: &Path, opts: &Options) -> Result<Plan> {
    let file = CeremonyFile::load(path)?;
    let module = Module::load(module_path(&file, opts)?.as_deref())?;
    let session = TokenSession::open(&module, &selector(&file), false)?;
    let ca_dir = file.resolve(&file.ceremony.ca_dir);
    let state = if ca_dir.is_dir() {
        CaState::of(&CaDir::open(&ca_dir, Access::Read)?)?
    } else {
        CaState::empty()
    };
    plan::build(
        file,
        &TokenView { session: &session },
        &state,
        OffsetDateTime::now_utc(),
    )
}

/// Runs the ceremony in `path`.
pub fn run(path: &Path, opts: &Options, console: &mut dyn Console) -> Result<Outcome> {
    // 1. The whole plan must pass before anything is created, locked or asked for.
    let reviewed = plan_only(path, opts)?;
    let started = OffsetDateTime::now_utc();
    let file = reviewed.file.clone();
    let module = Module::load(module_path(&file, opts)?.as_deref())?;
    let needs_rw = reviewed
        .steps
        .iter()
        .any(|s| !s.done() && matches!(s.located.step, Step::GenerateKey(_)));
    let mut session = TokenSession::open(&module, &selector(&file), needs_rw)?;

    // 2. Lock the CA directory and plan again from what is under the lock.
    let ca_dir = file.resolve(&file.ceremony.ca_dir);
    let mut rec = Recorder::open(Some(&ca_dir), Some(&file.ceremony.operator))?;
    let state = match rec.dir() {
        Some(d) => CaState::of(d)?,
        None => CaState::empty(),
    };
    let last_seq_before_run = state.entries.last().map_or(0, |e| e.record.seq);
    let plan = plan::build(
        file.clone(),
        &TokenView { session: &session },
        &state,
        started,
    )?;
    if plan.digest != reviewed.digest {
        return Err(Error::invalid(
            "the plan changed between checking it and locking the CA directory",
            "another process changed the inputs or the CA directory; run 'hsmca ceremony plan' again",
        ));
    }
    console.say(&format!(
        "Ceremony: {}\nOperator: {}\nWitnesses: {}\nPlan digest: {}  (SHA-256 {})\nCompare it with the digest of the plan the witnesses reviewed.\n",
        file.ceremony.name,
        file.ceremony.operator,
        if file.ceremony.witnesses.is_empty() { "none named".to_string() } else { file.ceremony.witnesses.join(", ") },
        plan.digest_short(),
        plan.digest_hex()
    ));
    for n in &plan.notes {
        console.say(&format!("note: {n}\n"));
    }
    let transcript_path = file.resolve(&file.ceremony.transcript);
    if plan.transcript_exists {
        console.say(&format!(
            "Every step is done and the transcript {} exists: nothing to do.\n",
            file.ceremony.transcript.display()
        ));
        return Ok(Outcome::AlreadyComplete(transcript_path));
    }
    match plan.first_todo() {
        Some(first) if first.located.number > 1 || plan.steps.iter().any(|s| s.done()) => {
            let done: Vec<String> = plan
                .steps
                .iter()
                .filter(|s| s.done())
                .map(|s| s.located.number.to_string())
                .collect();
            console.say(&format!(
                "Resuming at step {}: step(s) {} are done (their outputs exist and match audit records; keys match the recorded SPKI).\n",
                first.located.number,
                done.join(", ")
            ));
        }
        Some(_) => console.say("Starting at step 1.\n"),
        None => console.say("Every step is done; writing the transcript.\n"),
    }

    // 3. One PIN entry, one C_Login, for the whole run.
    ops::login(&mut session, &opts.pin, &mut rec)?;
    let session = &session;
    let ca_uri = plan.ca_key_uri();
    let choice = SignatureChoice::default();
    let mut signer: Option<TokenSigner<'_, '_>> = match &plan.ca_key_spki {
        Some(spki) => {
            let key = session.open_key(&ca_uri)?;
            let s = TokenSigner::new(session, key, choice)?;
            if s.public_key() != spki {
                return Err(Error::invalid(
                    "the CA key's private object does not match its public object",
                    "investigate the token: the key pair is inconsistent",
                ));
            }
            Some(s)
        }
        None => None,
    };
    let mut issuer: Option<Certificate> = state.ca_cert.clone();

    // 4. The steps.
    let result = (|| -> Result<()> {
        for step in &plan.steps {
            let n = step.located.number;
            if step.done() {
                continue;
            }
            console.say(&format!("\n{}", step.rendering));
            if !console.confirm(&step.confirmation())? {
                return Err(Error::invalid(
                    format!(
                        "the operator did not confirm step {n}: the ceremony stopped before it"
                    ),
                    format!(
                        "steps before {n} are done and recorded; run the same file again to resume at step {n}"
                    ),
                ));
            }
            match &step.located.step {
                Step::GenerateKey(g) => {
                    let id = match (&g.id, g.label == file.ca_key.label) {
                        (Some(id), _) => id.clone(),
                        (None, true) if file.ca_key_id.is_some() => {
                            file.ca_key_id.clone().unwrap_or_default()
                        }
                        _ => {
                            let mut id = vec![0u8; 16];
                            getrandom::fill(&mut id).map_err(|e| {
                                Error::invalid(
                                    format!("the system RNG failed: {e}"),
                                    "fix the system RNG",
                                )
                            })?;
                            id
                        }
                    };
                    let generated = generate_key(
                        session,
                        key_spec(g.algorithm),
                        &g.label,
                        &id,
                        &mut rec,
                        "ceremony generate_key",
                    )?;
                    let uri = generated.key.uri.to_string();
                    rec.append(Event::KeyGenerated {
                        key_uri: uri.clone(),
                        algorithm: g.algorithm.to_string(),
                        spki_sha256: hex::encode(generated.spki_sha256),
                    })?;
                    console.say(&format!(
                        "generated {} key \"{}\": attributes checked (sensitive, never extractable, local), test signature verified\n  uri: {uri}\n  spki-sha256: {}\n",
                        g.algorithm,
                        g.label,
                        hex::encode(generated.spki_sha256)
                    ));
                    if g.label == file.ca_key.label {
                        signer = Some(TokenSigner::new(session, generated.key, choice)?);
                    }
                }
                Step::CreateRoot(r) => {
                    let s = signer.as_ref().ok_or_else(no_key)?;
                    let key_uri = s.key().uri.to_string();
                    let req = CertRequest {
                        profile: Profile::Root {
                            path_len: r.profile.path_len,
                        },
                        subject: r.subject.clone(),
                        public_key: s.public_key().clone(),
                        validity: r.profile.validity.resolve(OffsetDateTime::now_utc())?,
                        issuer: None,
                        serial: random_serial_excluding(rec.taken_serials())?,
                    };
                    let cert = sign_linted(s, &req, &r.profile.extras, None)
                        .map_err(|e| rec.refuse("ceremony create_root", None, e))?;
                    rec.append(Event::RootCreated {
                        cert: issued_record(&cert, "root", &key_uri)?,
                    })?;
                    rec.keep_cert(&cert)?;
                    if let Some(dir) = rec.dir() {
                        crate::output::write_ca_file(
                            &dir.ca_cert_path(),
                            ops::pem_certs(&[&cert])?.as_bytes(),
                            true,
                        )?;
                    }
                    let out = file.resolve(&r.out);
                    make_parent(&out)?;
                    write_pem_certs(&out, &[&cert], Overwrite::Refuse)?;
                    console.say(&format!(
                        "wrote {} (self-signature verified, linted before and after signing)\n  serial: {}\n  SHA-256 fingerprint: {}\n",
                        r.out.display(),
                        serial_hex(&cert),
                        fingerprint(&cert)
                    ));
                    issuer = Some(cert);
                }
                Step::SignIntermediate(si) => {
                    let s = signer.as_ref().ok_or_else(no_key)?;
                    let key_uri = s.key().uri.to_string();
                    let iss = issuer.clone().ok_or_else(|| {
                        Error::invalid("no CA certificate to sign under", "report a bug")
                    })?;
                    for (req_cfg, item) in si.requests.iter().zip(&step.items) {
                        if item.done.is_some() {
                            continue;
                        }
                        let planned_sha = item.csr_sha256.ok_or_else(|| {
                            Error::invalid("a request lost its hash", "report a bug")
                        })?;
                        let csr = Csr::parse(&read_limited(&file.resolve(&req_cfg.csr), MAX_CSR)?)?;
                        let checked = CheckedCsr::recheck(csr, &planned_sha)?;
                        let csr = checked.csr();
                        let req = CertRequest {
                            profile: si.profile.intermediate(),
                            subject: si
                                .subject
                                .as_ref()
                                .map(|(_, n)| n.clone())
                                .unwrap_or_else(|| csr.subject().clone()),
                            public_key: csr.spki().clone(),
                            validity: si.profile.validity.resolve(OffsetDateTime::now_utc())?,
                            issuer: Some(&iss),
                            serial: random_serial_excluding(rec.taken_serials())?,
                        };
                        let cert =
                            sign_linted(s, &req, &si.profile.extras, Some(&iss)).map_err(|e| {
                                rec.refuse("ceremony sign_intermediate", Some(csr.der()), e)
                            })?;
                        rec.append(Event::CsrSigned {
                            cert: issued_record(&cert, "intermediate", &key_uri)?,
                            csr_sha256: sha256_hex(csr.der()),
                            csr_der: b64(csr.der()),
                        })?;
                        rec.keep_cert(&cert)?;
                        let out = file.resolve(&req_cfg.out);
                        make_parent(&out)?;
                        write_pem_certs(&out, &[&cert], Overwrite::Refuse)?;
                        if let Some(chain) = &req_cfg.chain_out {
                            let chain = file.resolve(chain);
                            make_parent(&chain)?;
                            write_pem_certs(&chain, &[&cert, &iss], Overwrite::Refuse)?;
                        }
                        console.say(&format!(
                            "wrote {} (signature and chain verified, linted before and after signing)\n  serial: {}\n",
                            req_cfg.out.display(),
                            serial_hex(&cert)
                        ));
                    }
                }
                Step::CrossSign(x) => {
                    let s = signer.as_ref().ok_or_else(no_key)?;
                    let key_uri = s.key().uri.to_string();
                    let iss = issuer.clone().ok_or_else(|| {
                        Error::invalid("no CA certificate to sign under", "report a bug")
                    })?;
                    // The inputs must be the bytes the witnesses reviewed (their hashes are in the
                    // plan digest); then the certificate is checked again, as the plan did.
                    let read_reviewed = |p: &Path, i: usize| -> Result<Vec<u8>> {
                        let bytes = read_file(&file.resolve(p))?;
                        if step.items[0].inputs.get(i).map(|h| h.sha256.as_str())
                            != Some(sha256_hex(&bytes).as_str())
                        {
                            return Err(Error::invalid(
                                format!("{} changed after the plan was checked", p.display()),
                                "make sure nothing writes the ceremony's inputs during the run, and run it again",
                            ));
                        }
                        Ok(bytes)
                    };
                    let bytes = read_reviewed(&x.certificate, 0)?;
                    let issuer_bytes = x
                        .certificate_issuer
                        .as_deref()
                        .map(|p| read_reviewed(p, 1))
                        .transpose()?;
                    let source =
                        CrossSource::check(&bytes, issuer_bytes.as_deref(), s.public_key())?;
                    let stbs = source.certificate().tbs_certificate();
                    let req = CertRequest {
                        profile: x.profile.intermediate(),
                        subject: stbs.subject().clone(),
                        public_key: stbs.subject_public_key_info().clone(),
                        validity: x.profile.validity.resolve(OffsetDateTime::now_utc())?,
                        issuer: Some(&iss),
                        serial: random_serial_excluding(rec.taken_serials())?,
                    };
                    let extras = plan::cross_extras(&x.profile, &source);
                    let cert = sign_linted(s, &req, &extras, Some(&iss))
                        .map_err(|e| rec.refuse("ceremony cross_sign", Some(source.der()), e))?;
                    rec.append(Event::CrossSigned {
                        cert: issued_record(&cert, "cross", &key_uri)?,
                        source_sha256: sha256_hex(source.der()),
                        source_der: b64(source.der()),
                    })?;
                    rec.keep_cert(&cert)?;
                    let out = file.resolve(&x.out);
                    make_parent(&out)?;
                    write_pem_certs(&out, &[&cert], Overwrite::Refuse)?;
                    if let Some(chain) = &x.chain_out {
                        let chain = file.resolve(chain);
                        make_parent(&chain)?;
                        write_pem_certs(&chain, &[&cert, &iss], Overwrite::Refuse)?;
                    }
                    console.say(&format!(
                        "wrote {} (cross-certificate for {}: signature and chain verified, linted before and after signing)\n  serial: {}\n",
                        x.out.display(),
                        crate::x509::name::display_name(stbs.subject()),
                        serial_hex(&cert)
                    ));
                }
                Step::Revoke(r) => {
                    let serial = match &r.target {
                        RevokeTarget::Serial(s) => s.clone(),
                        RevokeTarget::Certificate(p) => {
                            serial_hex(&load_certificate(&read_file(&file.resolve(p))?)?)
                        }
                    };
                    let serial = ops::revoke(&mut rec, &serial, &r.reason, r.date)?;
                    console.say(&format!(
                        "recorded the revocation of {serial} ({})\n",
                        r.reason
                    ));
                }
                Step::Crl(c) => {
                    let s = signer.as_ref().ok_or_else(no_key)?;
                    let out = file.resolve(&c.out);
                    make_parent(&out)?;
                    let crl = ops::issue_crl_recorded(
                        s,
                        &mut rec,
                        c.next_update.1,
                        &out,
                        Overwrite::Refuse,
                    )?;
                    let listed = crl
                        .tbs_cert_list
                        .revoked_certificates
                        .as_ref()
                        .map_or(0, Vec::len);
                    console.say(&format!(
                        "wrote {} ({listed} revoked, signature verified)\n",
                        c.out.display()
                    ));
                }
            }
            // Seal after every step: a run that stops later leaves a sealed log.
            if let Some(s) = &signer {
                rec.seal(s, &s.key().uri.to_string())?;
            }
            console.say(&format!("step {n} done and recorded\n"));
        }
        Ok(())
    })();
    if let Err(e) = result {
        if let Some(s) = &signer
            && let Err(seal_err) = rec.seal(s, &s.key().uri.to_string())
        {
            console.say(&format!(
                "warning: could not seal the audit log: {seal_err}\n"
            ));
        }
        return Err(e);
    }

    // 5. The transcript: the final state, derived again from the audit log and the outputs.
    let s = signer.as_ref().ok_or_else(no_key)?;
    let final_state = match rec.dir() {
        Some(d) => CaState::of(d)?,
        None => CaState::empty(),
    };
    let final_plan = plan::build(file.clone(), &TokenView { session }, &final_state, started)?;
    if final_plan.digest != plan.digest || final_plan.first_todo().is_some() {
        return Err(Error::invalid(
            "after the run, the outputs and the audit log do not show every step done",
            "run 'hsmca ceremony plan' to see which step is missing",
        ));
    }
    let text = transcript::write(
        &final_plan,
        &final_state,
        s,
        started,
        last_seq_before_run,
        &transcript_path,
    )?;
    let _ = text;
    transcript::verify(&transcript_path, None)?;
    console.say(&format!(
        "\nwrote the transcript {} (signed by the CA key, verified)\nPlan digest: {}\n",
        file.ceremony.transcript.display(),
        plan.digest_short()
    ));
    Ok(Outcome::Completed(transcript_path))
}

fn no_key() -> Error {
    Error::invalid(
        "the CA key is not available to sign",
        "generate it in an earlier step or name an existing key in [ca_key]",
    )
}

/// Prepares the TBS, lints a throwaway-signed copy, has the token sign the same TBS, and lints
/// the issued certificate again. Nothing is signed by the token when the first lint fails.
fn sign_linted(
    signer: &TokenSigner<'_, '_>,
    req: &CertRequest<'_>,
    extras: &crate::x509::profile::CaExtras,
    issuer: Option<&Certificate>,
) -> Result<Certificate> {
    let prepared = prepare_with_extras(req, extras, signer)?;
    lint_before_signing(&prepared, signer.public_key(), issuer)?;
    let cert = prepared.sign(signer)?;
    refuse_findings(&cert, issuer, "after signing")?;
    Ok(cert)
}

fn make_parent(p: &Path) -> Result<()> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| {
            Error::from(crate::output::OutputError::Io {
                path: dir.to_path_buf(),
                step: "creating the output directory",
                source,
            })
        })?;
    }
    Ok(())
}

fn fingerprint(cert: &Certificate) -> String {
    use der::Encode;
    cert.to_der()
        .map(|d| {
            hex::encode_upper(<sha2::Sha256 as sha2::Digest>::digest(&d))
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}
