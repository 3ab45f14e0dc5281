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
use crate::ca::audit::sha256_hex;
use crate::ca::cross::CrossSource;
use crate::ca::issuance::{Certify, Delivery, Order};
use crate::ca::recorder::Recorder;
use crate::ca::session::{CaToken, TokenRef, view_token, with_token};
use crate::ca::signer::key_spec;
use crate::ca::store::{Access, CaDir, Reading};
use crate::ca::{CheckedCsr, serial_hex};
use crate::error::{Error, MAX_CSR, Result, read_file, read_limited};
use crate::output::Overwrite;
use crate::token::{PinSource, TokenSelector};
use crate::x509::csr::Csr;
use crate::x509::decode::load_certificate;
use crate::x509::profile::Profile;
use crate::x509::signer::CaSigner;

/// Where the run talks to the operator.
pub trait Console {
    /// Shows text.
    fn say(&mut self, text: &str);
    /// Asks the operator to type `phrase`; `Ok(false)` when they type anything else.
    fn confirm(&mut self, phrase: &str) -> Result<bool>;
    /// Step `done` of the `total` this run performs is done and sealed.
    fn step_done(&mut self, _done: usize, _total: usize) {}
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

fn token_ref<'a>(file: &CeremonyFile, module: Option<&'a Path>) -> TokenRef<'a> {
    TokenRef {
        module,
        selector: TokenSelector {
            label: Some(file.token.label.clone()),
            serial: file.token.serial.clone(),
        },
    }
}

fn ca_state(rec: &Recorder) -> Result<CaState> {
    match rec.dir() {
        Some(d) => CaState::of(d),
        None => Ok(CaState::empty()),
    }
}

/// Builds the plan without a PIN and without writing anything: the `plan` command.
pub fn plan_only(path: &Path, opts: &Options) -> Result<Plan> {
    let file = CeremonyFile::load(path)?;
    let module = module_path(&file, opts)?;
    let ca_dir = file.resolve(&file.ceremony.ca_dir);
    let state = if ca_dir.is_dir() {
        CaState::of(&CaDir::open(&ca_dir, Access::Read, Reading::Whole)?)?
    } else {
        CaState::empty()
    };
    let token = token_ref(&file, module.as_deref());
    view_token(&token, |session| {
        plan::build(
            file,
            &TokenView { session },
            &state,
            OffsetDateTime::now_utc(),
        )
    })
}

/// Runs the ceremony in `path`.
pub fn run(path: &Path, opts: &Options, console: &mut dyn Console) -> Result<Outcome> {
    // 1. The whole plan must pass before anything is created, locked or asked for.
    let reviewed = plan_only(path, opts)?;
    let started = OffsetDateTime::now_utc();
    let file = reviewed.file.clone();
    let module = module_path(&file, opts)?;
    let token = token_ref(&file, module.as_deref());
    let needs_rw = reviewed
        .steps
        .iter()
        .any(|s| !s.done() && matches!(s.located.step, Step::GenerateKey(_)));

    // 2. Lock the CA directory and plan again from what is under the lock.
    let ca_dir = file.resolve(&file.ceremony.ca_dir);
    let mut rec = Recorder::create(Some(&ca_dir), Some(&file.ceremony.operator))?;
    let state = ca_state(&rec)?;
    let last_seq_before_run = state.entries.last().map_or(0, |e| e.record.seq);
    let plan = view_token(&token, |session| {
        plan::build(file.clone(), &TokenView { session }, &state, started)
    })?;
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

    // 3. One PIN entry, one C_Login, for the whole run; each step sealed before the next.
    with_token(&token, needs_rw, &opts.pin, &mut rec, |ca| {
        let run = Run {
            file: &file,
            plan: &plan,
            started,
        };
        run.steps(ca, &state, console)?;
        run.transcript(ca, last_seq_before_run, &transcript_path, console)?;
        Ok(Outcome::Completed(transcript_path.clone()))
    })
}

/// A run under way: the file, the plan the witnesses compared, and when it started.
struct Run<'a> {
    file: &'a CeremonyFile,
    plan: &'a Plan,
    started: OffsetDateTime,
}

impl Run<'_> {
    /// Asks for each step not done and does it through the CA's issuance transaction.
    fn steps(
        &self,
        ca: &mut CaToken<'_, '_, '_>,
        state: &CaState,
        console: &mut dyn Console,
    ) -> Result<()> {
        let choice = self.file.ca_key.choice();
        if let Some(spki) = &self.plan.ca_key_spki {
            ca.use_key(&self.plan.ca_key_uri(), choice)?;
            if ca.signer()?.public_key() != spki {
                return Err(Error::invalid(
                    "the CA key's private object does not match its public object",
                    "investigate the token: the key pair is inconsistent",
                ));
            }
        }
        let mut issuer: Option<Certificate> = state.ca_cert.clone();
        let total = self.plan.steps.iter().filter(|s| !s.done()).count();
        let mut performed = 0;
        for step in &self.plan.steps {
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
            let said = match &step.located.step {
                Step::GenerateKey(g) => self.generate_key(ca, g)?,
                Step::CreateRoot(r) => {
                    let out = self.output(&r.out)?;
                    let order = Order {
                        certify: Certify::OwnKey,
                        profile: Profile::Root {
                            path_len: r.profile.path_len,
                        },
                        subject: Some(r.subject.clone()),
                        validity: r.profile.validity.resolve(OffsetDateTime::now_utc())?,
                        extras: r.profile.extras.clone(),
                        command: "ceremony create_root",
                    };
                    let cert = ca.issue(None, &order, &delivery(&out, None))?;
                    let said = format!(
                        "wrote {} (self-signature verified, linted before and after signing)\n  serial: {}\n  SHA-256 fingerprint: {}\n",
                        r.out.display(),
                        serial_hex(&cert),
                        fingerprint(&cert)
                    );
                    issuer = Some(cert);
                    said
                }
                Step::SignIntermediate(si) => {
                    let iss = issuer.as_ref().ok_or_else(no_issuer)?;
                    let mut said = String::new();
                    for (req_cfg, item) in si.requests.iter().zip(&step.items) {
                        if item.done.is_some() {
                            continue;
                        }
                        let planned_sha = item.csr_sha256.ok_or_else(|| {
                            Error::invalid("a request lost its hash", "report a bug")
                        })?;
                        let csr =
                            Csr::parse(&read_limited(&self.file.resolve(&req_cfg.csr), MAX_CSR)?)?;
                        let checked = CheckedCsr::recheck(csr, &planned_sha)?;
                        let order = Order {
                            certify: Certify::Request(&checked),
                            profile: si.profile.intermediate(),
                            subject: si.subject.as_ref().map(|(_, n)| n.clone()),
                            validity: si.profile.validity.resolve(OffsetDateTime::now_utc())?,
                            extras: si.profile.extras.clone(),
                            command: "ceremony sign_intermediate",
                        };
                        let out = self.output(&req_cfg.out)?;
                        let chain = req_cfg
                            .chain_out
                            .as_ref()
                            .map(|c| self.output(c))
                            .transpose()?;
                        let cert =
                            ca.issue(Some(iss), &order, &delivery(&out, chain.as_deref()))?;
                        said.push_str(&format!(
                            "wrote {} (signature and chain verified, linted before and after signing)\n  serial: {}\n",
                            req_cfg.out.display(),
                            serial_hex(&cert)
                        ));
                    }
                    said
                }
                Step::CrossSign(x) => {
                    let iss = issuer.as_ref().ok_or_else(no_issuer)?;
                    // The inputs must be the bytes the witnesses reviewed (their hashes are in
                    // the plan digest); then the certificate is checked again, as the plan did.
                    let read_reviewed = |p: &Path, i: usize| -> Result<Vec<u8>> {
                        let bytes = read_file(&self.file.resolve(p))?;
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
                    let source = CrossSource::check(
                        &bytes,
                        issuer_bytes.as_deref(),
                        ca.signer()?.public_key(),
                    )?;
                    let order = Order {
                        certify: Certify::Cross(&source),
                        profile: x.profile.intermediate(),
                        subject: None,
                        validity: x.profile.validity.resolve(OffsetDateTime::now_utc())?,
                        extras: plan::cross_extras(&x.profile, &source),
                        command: "ceremony cross_sign",
                    };
                    let out = self.output(&x.out)?;
                    let chain = x.chain_out.as_ref().map(|c| self.output(c)).transpose()?;
                    let cert = ca.issue(Some(iss), &order, &delivery(&out, chain.as_deref()))?;
                    format!(
                        "wrote {} (cross-certificate for {}: signature and chain verified, linted before and after signing)\n  serial: {}\n",
                        x.out.display(),
                        crate::x509::name::display_name(
                            source.certificate().tbs_certificate().subject()
                        ),
                        serial_hex(&cert)
                    )
                }
                Step::Revoke(r) => {
                    let serial = match &r.target {
                        RevokeTarget::Serial(s) => s.clone(),
                        RevokeTarget::Certificate(p) => {
                            serial_hex(&load_certificate(&read_file(&self.file.resolve(p))?)?)
                        }
                    };
                    let checked = crate::ca::ops::check_revocation(
                        ca.recorder(),
                        &serial,
                        &r.reason,
                        r.date,
                    )?;
                    let serial = ca.revoke(&checked)?;
                    format!("recorded the revocation of {serial} ({})\n", r.reason)
                }
                Step::Csr(r) => {
                    let out = self.output(&r.out)?;
                    let csr = ca.request(r.subject.clone(), r.path_len, &out, Overwrite::Refuse)?;
                    format!(
                        "wrote {} (certificate request for {}, signature verified)\n  SHA-256 of the request: {}\n",
                        r.out.display(),
                        csr.subject(),
                        sha256_hex(csr.der())
                    )
                }
                Step::Crl(c) => {
                    let out = self.output(&c.out)?;
                    let crl = ca.crl(c.next_update.1, c.url.as_deref(), &out, Overwrite::Refuse)?;
                    let listed = crl
                        .tbs_cert_list
                        .revoked_certificates
                        .as_ref()
                        .map_or(0, Vec::len);
                    format!(
                        "wrote {} ({listed} revoked, signature verified)\n",
                        c.out.display()
                    )
                }
            };
            console.say(&said);
            // Sealed after every step: a run that stops later leaves a sealed log.
            ca.seal()?;
            console.say(&format!("step {n} done and recorded\n"));
            performed += 1;
            console.step_done(performed, total);
        }
        Ok(())
    }

    /// A `generate_key` step; the key becomes the CA key when it carries the CA key's label.
    fn generate_key(
        &self,
        ca: &mut CaToken<'_, '_, '_>,
        g: &super::config::GenerateKey,
    ) -> Result<String> {
        let file = self.file;
        let id = match (&g.id, g.label == file.ca_key.label) {
            (Some(id), _) => id.clone(),
            (None, true) if file.ca_key_id.is_some() => file.ca_key_id.clone().unwrap_or_default(),
            _ => {
                let mut id = vec![0u8; 16];
                getrandom::fill(&mut id).map_err(|e| {
                    Error::invalid(format!("the system RNG failed: {e}"), "fix the system RNG")
                })?;
                id
            }
        };
        let generated = ca.generate_key(
            key_spec(g.algorithm),
            &g.algorithm.to_string(),
            &g.label,
            &id,
            "ceremony generate_key",
        )?;
        let said = format!(
            "generated {} key \"{}\": attributes checked (sensitive, never extractable, local), test signature verified\n  uri: {}\n  spki-sha256: {}\n",
            g.algorithm,
            g.label,
            generated.key.uri,
            hex::encode(generated.spki_sha256)
        );
        if g.label == file.ca_key.label {
            ca.bind(generated.key, file.ca_key.choice())?;
        }
        Ok(said)
    }

    /// The transcript: the final state, derived again from the audit log and the outputs,
    /// signed by the CA key and verified.
    fn transcript(
        &self,
        ca: &mut CaToken<'_, '_, '_>,
        last_seq_before_run: u64,
        path: &Path,
        console: &mut dyn Console,
    ) -> Result<()> {
        let final_state = ca_state(ca.recorder())?;
        let final_plan = plan::build(
            self.file.clone(),
            &TokenView {
                session: ca.session(),
            },
            &final_state,
            self.started,
        )?;
        if final_plan.digest != self.plan.digest || final_plan.first_todo().is_some() {
            return Err(Error::invalid(
                "after the run, the outputs and the audit log do not show every step done",
                "run 'hsmca ceremony plan' to see which step is missing",
            ));
        }
        transcript::write(
            &final_plan,
            &final_state,
            ca.signer()?,
            self.started,
            last_seq_before_run,
            path,
        )?;
        transcript::verify_with_key(path, ca.signer()?.public_key())?;
        console.say(&format!(
            "\nwrote the transcript {} (signed by the CA key, verified)\nPlan digest: {}\n",
            self.file.ceremony.transcript.display(),
            self.plan.digest_short()
        ));
        Ok(())
    }

    /// An output of the file, its directory created.
    fn output(&self, rel: &Path) -> Result<PathBuf> {
        let out = self.file.resolve(rel);
        make_parent(&out)?;
        Ok(out)
    }
}

fn delivery<'a>(out: &'a Path, chain_out: Option<&'a Path>) -> Delivery<'a> {
    Delivery {
        out,
        chain_out,
        overwrite: Overwrite::Refuse,
    }
}

fn no_issuer() -> Error {
    Error::invalid("no CA certificate to sign under", "report a bug")
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
