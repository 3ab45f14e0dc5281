//! The checked plan: everything about a ceremony that can be known before a PIN is typed.
//!
//! Building a plan reads the ceremony file, every input, the CA directory's audit log and the
//! token's public objects (no login), decides which steps are already done, dry-runs every
//! certificate with a throwaway key and lints it. The plan digest is the SHA-256 of the
//! normalised plan: the steps as checked, the hashes of the inputs, and (when the ceremony does
//! not make them) the CA certificate and key it builds on. It leaves out what the run changes
//! (which steps are done), so a resumed run shows the digest that was reviewed.

use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

use super::config::{
    CaProfile, CeremonyFile, LocatedStep, RevokeTarget, Step, normal_step, normalise, step_outputs,
};
use crate::ca::CheckedCsr;
use crate::ca::audit::{Entry, Event, sha256_hex};
use crate::ca::cross::CrossSource;
use crate::ca::signer::{key_spec, spki_from_material};
use crate::error::{Error, Result, read_file};
use crate::token::{Pkcs11Uri, TokenSession};
use crate::x509::algorithm::{KeyAlgorithm, PublicKeyInfo, spki_sha256};
use crate::x509::csr::Csr;
use crate::x509::decode::{load_certificate, load_certificate_with_der};
use crate::x509::issue::{CertRequest, preview};
use crate::x509::lint::{refuse_findings, throwaway_algorithm};
use crate::x509::name::display_name;
use crate::x509::profile::{CaExtras, Profile};
use crate::x509::serial::random_serial;
use crate::x509::signer::CaSigner;
use crate::x509::soft_key::SoftKey;
use crate::x509::validity::{fmt, from_x509_time};

/// A file and its SHA-256 (hex), path as the ceremony file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// Path relative to the ceremony file's directory (or absolute).
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// Why a unit of work counts as done: its audit record and its outputs.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The audit record's sequence number.
    pub seq: u64,
    /// Its time (UTC).
    pub time: String,
    /// SHA-256 of its line.
    pub record_hash: String,
    /// Output files, hashed.
    pub outputs: Vec<FileHash>,
    /// For keys: the URI and SPKI SHA-256.
    pub key: Option<(String, String)>,
}

/// One unit of work of a step: a key, a certificate, a revocation or a CRL.
#[derive(Debug, Clone)]
pub struct Item {
    /// What it is, in words.
    pub what: String,
    /// Inputs, hashed.
    pub inputs: Vec<FileHash>,
    /// `Some` once done.
    pub done: Option<Evidence>,
    /// For a signing request: SHA-256 of the CSR's DER, as the audit log records it.
    pub csr_sha256: Option<[u8; 32]>,
}

/// A step as planned.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// The step from the file.
    pub located: LocatedStep,
    /// Its units of work.
    pub items: Vec<Item>,
    /// What a witness reads.
    pub rendering: String,
}

impl PlannedStep {
    /// Whether every unit is done.
    pub fn done(&self) -> bool {
        self.items.iter().all(|i| i.done.is_some())
    }

    /// What the operator types to perform it.
    pub fn confirmation(&self) -> String {
        format!("{} {}", self.located.step.kind(), self.located.number)
    }
}

/// What the plan needs of the CA directory, read under its lock.
pub struct CaState {
    /// The audit log's records.
    pub entries: Vec<Entry>,
    /// The CA certificate, if the directory has one.
    pub ca_cert: Option<Certificate>,
    /// SHA-256 of ca.crt's bytes.
    pub ca_cert_sha256: Option<String>,
}

impl CaState {
    /// A CA directory that does not exist yet.
    pub fn empty() -> CaState {
        CaState {
            entries: Vec::new(),
            ca_cert: None,
            ca_cert_sha256: None,
        }
    }

    /// Reads the state of an open CA directory and checks its log against its certificate.
    /// The log is read again: a CA directory open for writing holds only the records read
    /// when it was opened, and a ceremony looks at it between its own steps.
    pub fn of(dir: &crate::ca::store::CaDir) -> Result<CaState> {
        match std::fs::read(dir.ca_cert_path()) {
            Ok(bytes) => {
                let cert = load_certificate(&bytes)?;
                let (_, entries) = dir
                    .log
                    .verify(cert.tbs_certificate().subject_public_key_info())?;
                Ok(CaState {
                    entries,
                    ca_cert: Some(cert),
                    ca_cert_sha256: Some(sha256_hex(&bytes)),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CaState {
                entries: dir.log.read()?,
                ca_cert: None,
                ca_cert_sha256: None,
            }),
            Err(source) => Err(Error::Read {
                path: dir.ca_cert_path(),
                source,
            }),
        }
    }
}

/// The checked plan.
pub struct Plan {
    /// The ceremony file.
    pub file: CeremonyFile,
    /// SHA-256 of the normalised plan.
    pub digest: [u8; 32],
    /// The steps.
    pub steps: Vec<PlannedStep>,
    /// The CA key's public key, when it exists on the token now.
    pub ca_key_spki: Option<SubjectPublicKeyInfoOwned>,
    /// The step that generates the CA key, if any.
    pub ca_key_generated_in: Option<usize>,
    /// Whether the transcript exists (the ceremony is complete).
    pub transcript_exists: bool,
    /// Things a witness should know that are not errors.
    pub notes: Vec<String>,
}

impl Plan {
    /// The digest as 64 hex digits.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// The first 64 bits in four groups, for reading aloud.
    pub fn digest_short(&self) -> String {
        short_digest(&self.digest)
    }

    /// The first step with work left, if any.
    pub fn first_todo(&self) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| !s.done())
    }

    /// The CA key's URI as the ceremony names it.
    pub fn ca_key_uri(&self) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.file.token.label.clone()),
            serial: self.file.token.serial.clone(),
            object: Some(self.file.ca_key.label.clone()),
            id: self.file.ca_key_id.clone(),
            object_type: Some("private".into()),
            ..Pkcs11Uri::default()
        }
    }

    /// The whole plan as a witness reads it.
    pub fn render(&self) -> String {
        let f = &self.file;
        let mut s = String::new();
        s.push_str(&format!("Ceremony: {}\n", f.ceremony.name));
        s.push_str(&format!(
            "File: {} (SHA-256 {})\n",
            f.path.display(),
            hex::encode(f.sha256)
        ));
        s.push_str(&format!("Operator: {}\n", f.ceremony.operator));
        if f.ceremony.witnesses.is_empty() {
            s.push_str("Witnesses: none named\n");
        }
        for w in &f.ceremony.witnesses {
            s.push_str(&format!("Witness: {w}\n"));
        }
        s.push_str(&format!(
            "Token: \"{}\"{}\n",
            f.token.label,
            f.token
                .serial
                .as_deref()
                .map(|x| format!(" (serial {x})"))
                .unwrap_or_default()
        ));
        s.push_str(&format!("CA key: {}\n", self.ca_key_uri()));
        match (&self.ca_key_spki, self.ca_key_generated_in) {
            (Some(k), _) => s.push_str(&format!(
                "CA key SPKI SHA-256: {}\n",
                hex::encode(spki_sha256(k))
            )),
            (None, Some(n)) => s.push_str(&format!("CA key: generated in step {n}\n")),
            (None, None) => {}
        }
        s.push_str(&format!(
            "CA directory: {}\nTranscript: {}\n",
            f.ceremony.ca_dir.display(),
            f.ceremony.transcript.display()
        ));
        for step in &self.steps {
            s.push('\n');
            s.push_str(&step.rendering);
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                s.push_str(&format!("note: {n}\n"));
            }
        }
        s.push('\n');
        match self.first_todo() {
            None if self.transcript_exists => {
                s.push_str("Status: complete (every step done, transcript written)\n")
            }
            None => s.push_str("Status: every step done; the run writes the transcript\n"),
            Some(t) if t.located.number == 1 && self.steps.iter().all(|x| !x.done()) => {
                s.push_str("Status: nothing done yet; the run starts at step 1\n")
            }
            Some(t) => s.push_str(&format!(
                "Status: the run resumes at step {} (steps before it are done: their outputs exist and match the audit log)\n",
                t.located.number
            )),
        }
        s.push_str(&format!(
            "Plan digest: {}  (SHA-256 {})\n",
            self.digest_short(),
            self.digest_hex()
        ));
        s
    }
}

/// The first 64 bits of a digest in four groups of four hex digits.
pub fn short_digest(d: &[u8; 32]) -> String {
    let h = hex::encode(&d[..8]);
    format!("{}-{}-{}-{}", &h[0..4], &h[4..8], &h[8..12], &h[12..16])
}

/// The token as the plan sees it: public objects and mechanisms, no login.
pub struct TokenView<'a, 'm> {
    /// An open session (read-only is enough).
    pub session: &'a TokenSession<'m>,
}

fn file_hash(base: &CeremonyFile, p: &Path) -> Result<(FileHash, Vec<u8>)> {
    let bytes = read_file(&base.resolve(p))?;
    Ok((
        FileHash {
            path: normalise(p),
            sha256: sha256_hex(&bytes),
        },
        bytes,
    ))
}

/// Hash of a file if it exists (None if it does not).
fn existing(file: &CeremonyFile, p: &Path) -> Result<Option<(FileHash, Vec<u8>)>> {
    let full = file.resolve(p);
    match std::fs::symlink_metadata(&full) {
        Ok(_) => file_hash(file, p).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path: full, source }),
    }
}

fn taken(p: &Path, step: usize, why: &str) -> Error {
    Error::invalid(
        format!("step {step}: output path {} is taken: {why}", p.display()),
        "choose another output path in the ceremony file, or move that file away; a ceremony never overwrites a file",
    )
}

fn step_err(step: usize, e: impl Into<Error>) -> Error {
    let e = e.into();
    let (cause, hint) = e.cause_and_hint();
    Error::invalid(
        format!("step {step}: {cause}"),
        hint.unwrap_or_else(|| "fix the ceremony file".into()),
    )
}

fn evidence(e: &Entry, outputs: Vec<FileHash>) -> Evidence {
    Evidence {
        seq: e.record.seq,
        time: e.record.time.clone(),
        record_hash: e.hash.clone(),
        outputs,
        key: None,
    }
}

/// DER of the first certificate in a PEM/DER file, with its SHA-256 hex.
fn cert_in(bytes: &[u8]) -> Option<(Certificate, String)> {
    let parsed = load_certificate_with_der(bytes).ok()?;
    let sha = sha256_hex(&parsed.der);
    Some((parsed.certificate, sha))
}

fn crl_der_sha(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (_, der) = der::pem::decode_vec(text.as_bytes()).ok()?;
    <CertificateList>::from_der(&der).ok()?;
    Some(sha256_hex(&der))
}

/// Builds and checks the plan. `token` is an open session (no login needed); `state` the CA
/// directory as read under its lock; `now` the time durations are resolved against.
pub fn build(
    file: CeremonyFile,
    token: &TokenView<'_, '_>,
    state: &CaState,
    now: OffsetDateTime,
) -> Result<Plan> {
    let session = token.session;
    let mechanisms = session.mechanisms()?;
    let mut notes = Vec::new();
    let ca_label = file.ca_key.label.clone();

    // The CA key: on the token now, or generated by a step of this ceremony.
    let ca_key_spki = session
        .find_public_key(&ca_label, file.ca_key_id.as_deref())?
        .map(|m| spki_from_material(&m))
        .transpose()?;
    let ca_gen = file.steps.iter().find_map(|s| match &s.step {
        Step::GenerateKey(g) if g.label == ca_label => Some((s.number, g.algorithm)),
        _ => None,
    });
    let first_signing = file
        .steps
        .iter()
        .find(|s| !matches!(s.step, Step::GenerateKey(_)))
        .map(|s| s.number);
    if let (Some((gen_step, _)), Some(sign_step)) = (ca_gen, first_signing)
        && sign_step < gen_step
    {
        return Err(Error::invalid(
            format!("step {sign_step} needs the CA key, which step {gen_step} generates later"),
            "generate the key first",
        ));
    }
    let ca_alg: KeyAlgorithm = match (&ca_key_spki, ca_gen) {
        (Some(k), _) => throwaway_algorithm(k)?,
        (None, Some((_, alg))) => alg,
        (None, None) => {
            return Err(Error::invalid(
                format!(
                    "missing key: the token \"{}\" has no key labelled \"{ca_label}\" (no public key object found) and no step generates it",
                    file.token.label
                ),
                "check [ca_key] label and [token] label, list the keys with 'hsmca key list', or add a generate_key step",
            ));
        }
    };
    // The signature the token will make, so the dry run's certificates carry it too.
    let ca_signature = crate::ca::signer::signature_for(key_spec(ca_alg), file.ca_key.choice())
        .map_err(|e| {
            let (cause, hint) = e.cause_and_hint();
            Error::invalid(
                format!("[ca_key] pss/hash: {cause}"),
                hint.unwrap_or_default(),
            )
        })?;
    if first_signing.is_some() {
        let needed = crate::ca::signer::sign_mechanism(ca_signature);
        if !needed.offered_by(&mechanisms) {
            let names: Vec<String> = needed.mechanisms().iter().map(|m| m.to_string()).collect();
            return Err(Error::invalid(
                format!(
                    "the token does not offer {} needed to sign with the {} CA key",
                    names.join(" or "),
                    ca_alg
                ),
                "use a token that offers it, or a key type it supports ('hsmca token list')",
            ));
        }
    }
    // Stand-in for a key that does not exist yet: same algorithm, so the dry run is faithful.
    let stand_in = match &ca_key_spki {
        Some(_) => None,
        None => Some(SoftKey::generate_for(ca_alg, ca_signature)?),
    };
    let ca_spki_for_preview: SubjectPublicKeyInfoOwned = match (&ca_key_spki, &stand_in) {
        (Some(k), _) => k.clone(),
        (None, Some(s)) => s.public_key().clone(),
        (None, None) => unreachable!("a stand-in exists when the key does not"),
    };
    if let (Some(cert), Some(k)) = (&state.ca_cert, &ca_key_spki)
        && cert.tbs_certificate().subject_public_key_info() != k
    {
        return Err(Error::invalid(
            format!(
                "the CA directory's certificate ({}) is not the certificate of the CA key \"{ca_label}\": their public keys differ",
                display_name(cert.tbs_certificate().subject())
            ),
            "name the CA directory and the key of the same CA",
        ));
    }
    let has_root_step = file
        .steps
        .iter()
        .any(|s| matches!(s.step, Step::CreateRoot(_)));
    let certifies = file
        .steps
        .iter()
        .any(|s| !matches!(s.step, Step::GenerateKey(_) | Step::Csr(_)));
    if state.ca_cert.is_none() && !has_root_step && certifies {
        return Err(Error::invalid(
            format!(
                "the CA directory {} has no CA certificate (ca.crt) and no step creates a root",
                file.ceremony.ca_dir.display()
            ),
            "run the root ceremony first, or point ca_dir at the CA directory of this key",
        ));
    }

    let stand_in_step = if stand_in.is_some() {
        ca_gen.map(|g| g.0)
    } else {
        None
    };
    let throwaway = SoftKey::generate_for(ca_alg, ca_signature)?;
    let preview_signer: &SoftKey = stand_in.as_ref().unwrap_or(&throwaway);
    let mut issuer: Option<Certificate> = state.ca_cert.clone();
    let mut planned = Vec::new();
    // Outputs of earlier steps (paths as normalised), which later steps may read.
    let mut produced: Vec<(PathBuf, usize)> = Vec::new();

    for located in &file.steps {
        let n = located.number;
        let mut items = Vec::new();
        let mut body = String::new();
        match &located.step {
            Step::GenerateKey(g) => {
                let spec = key_spec(g.algorithm);
                if !spec.supported_by(&mechanisms) {
                    return Err(step_err(
                        n,
                        Error::invalid(
                            format!(
                                "the token cannot generate and sign with {} keys (needs {} and {})",
                                g.algorithm,
                                spec.generation_mechanism(),
                                spec.signing_mechanism()
                            ),
                            "choose an algorithm the token offers ('hsmca token list')",
                        ),
                    ));
                }
                let public = session.find_public_key(&g.label, g.id.as_deref())?;
                let record = state.entries.iter().rev().find(|e| match &e.record.event {
                    Event::KeyGenerated { key_uri, .. } => {
                        key_uri.parse::<Pkcs11Uri>().is_ok_and(|u| {
                            u.object.as_deref() == Some(&g.label)
                                && u.token.as_deref() == Some(&file.token.label)
                        })
                    }
                    _ => false,
                });
                let done = match (public, record) {
                    (None, None) => None,
                    (Some(m), Some(e)) => {
                        let spki = spki_from_material(&m)?;
                        let sha = hex::encode(spki_sha256(&spki));
                        let Event::KeyGenerated {
                            key_uri,
                            spki_sha256: recorded,
                            ..
                        } = &e.record.event
                        else {
                            unreachable!("matched above")
                        };
                        if *recorded != sha {
                            return Err(step_err(
                                n,
                                Error::invalid(
                                    format!(
                                        "the token's key \"{}\" is not the key audit record {} recorded (SPKI SHA-256 {sha}, recorded {recorded})",
                                        g.label, e.record.seq
                                    ),
                                    "investigate: the key on the token was replaced",
                                ),
                            ));
                        }
                        let mut ev = evidence(e, vec![]);
                        ev.key = Some((key_uri.clone(), sha));
                        Some(ev)
                    }
                    (Some(_), None) => {
                        return Err(step_err(
                            n,
                            Error::invalid(
                                format!(
                                    "a key labelled \"{}\" already exists on the token, and this CA directory's audit log does not record generating it",
                                    g.label
                                ),
                                "choose another label, or drop the generate_key step if that key is the one to use",
                            ),
                        ));
                    }
                    (None, Some(e)) => {
                        return Err(step_err(
                            n,
                            Error::invalid(
                                format!(
                                    "audit record {} says key \"{}\" was generated, but the token has no such key",
                                    e.record.seq, g.label
                                ),
                                "check the [token] label; if the key is really gone, this CA directory belongs to a lost key",
                            ),
                        ));
                    }
                };
                body.push_str(&format!(
                    "  Key pair on token \"{}\": label \"{}\", {}{}\n",
                    file.token.label,
                    g.label,
                    g.algorithm,
                    g.id.as_ref()
                        .map(|i| format!(", id {}", hex::encode(i)))
                        .unwrap_or_default()
                ));
                body.push_str("  Attributes: token, private, sensitive, sign; never extractable; no decrypt, unwrap, derive; not modifiable or copyable (read back and checked, then a test signature)\n");
                if g.label == ca_label {
                    body.push_str("  This is the ceremony's CA key.\n");
                }
                items.push(Item {
                    what: format!("key \"{}\"", g.label),
                    inputs: vec![],
                    done,
                    csr_sha256: None,
                });
            }
            Step::CreateRoot(r) => {
                let out_existing = existing(&file, &r.out)?;
                let root_records: Vec<&Entry> = state
                    .entries
                    .iter()
                    .filter(|e| matches!(e.record.event, Event::RootCreated { .. }))
                    .collect();
                let done = match out_existing {
                    Some((fh, bytes)) => {
                        let (cert, sha) = cert_in(&bytes).ok_or_else(|| {
                            taken(&r.out, n, "it exists and is not a certificate")
                        })?;
                        let rec = root_records.iter().find(|e| match &e.record.event {
                            Event::RootCreated { cert } => cert.cert_sha256 == sha,
                            _ => false,
                        });
                        let Some(rec) = rec else {
                            return Err(taken(
                                &r.out,
                                n,
                                "it exists and is not a root this CA directory recorded",
                            ));
                        };
                        if state.ca_cert.as_ref() != Some(&cert) {
                            return Err(step_err(
                                n,
                                Error::invalid(
                                    "the root was recorded but the CA directory's ca.crt is not it",
                                    "restore ca.crt from the audit log ('hsmca export')",
                                ),
                            ));
                        }
                        Some(evidence(rec, vec![fh]))
                    }
                    None => {
                        if let Some(e) = root_records.last() {
                            let serial = match &e.record.event {
                                Event::RootCreated { cert } => cert.serial.clone(),
                                _ => String::new(),
                            };
                            return Err(step_err(
                                n,
                                Error::invalid(
                                    format!(
                                        "the CA directory already holds a root (audit record {}, serial {serial}) and {} does not exist",
                                        e.record.seq,
                                        r.out.display()
                                    ),
                                    format!(
                                        "if an earlier run of this ceremony stopped before writing it, write it with 'hsmca --ca-dir {} export --serial {serial} --out {}' and run again; otherwise use a new ca_dir",
                                        file.ceremony.ca_dir.display(),
                                        r.out.display()
                                    ),
                                ),
                            ));
                        }
                        if state.ca_cert.is_some() {
                            return Err(step_err(
                                n,
                                Error::invalid(
                                    "the CA directory already has a CA certificate",
                                    "use a new ca_dir for a new root",
                                ),
                            ));
                        }
                        None
                    }
                };
                let preview_cert = if done.is_some() {
                    issuer.clone().ok_or_else(|| {
                        Error::invalid("the recorded root is missing", "run 'hsmca log verify'")
                    })?
                } else {
                    let req = CertRequest {
                        profile: Profile::Root {
                            path_len: r.profile.path_len,
                        },
                        subject: r.subject.clone(),
                        public_key: ca_spki_for_preview.clone(),
                        validity: r
                            .profile
                            .validity
                            .resolve(now)
                            .map_err(|e| step_err(n, e))?,
                        issuer: None,
                        serial: random_serial()?,
                    };
                    let cert = preview(
                        &req,
                        &r.profile.extras,
                        &ca_spki_for_preview,
                        preview_signer,
                    )
                    .map_err(|e| step_err(n, e))?;
                    refuse_findings(&cert, None, "in the dry run").map_err(|e| step_err(n, e))?;
                    cert
                };
                body.push_str(&render_cert(
                    "Self-signed root certificate",
                    &preview_cert,
                    &r.profile,
                    None,
                    &key_line(&ca_key_spki, ca_gen.map(|g| g.0), &ca_label, ca_alg),
                    &[],
                    &[r.out.clone(), file.ceremony.ca_dir.join("ca.crt")],
                    done.is_some(),
                    stand_in_step,
                ));
                issuer = Some(preview_cert);
                items.push(Item {
                    what: format!("root certificate {}", r.out.display()),
                    inputs: vec![],
                    done,
                    csr_sha256: None,
                });
            }
            Step::SignIntermediate(s) => {
                let Some(iss) = issuer.clone() else {
                    return Err(step_err(
                        n,
                        Error::invalid(
                            "there is no CA certificate to sign under",
                            "add a create_root step or use a CA directory with a root",
                        ),
                    ));
                };
                for req_cfg in &s.requests {
                    let (input, bytes) =
                        file_hash(&file, &req_cfg.csr).map_err(|e| step_err(n, e))?;
                    let ca_keys =
                        crate::ca::CaKeys::of(&state.entries).map_err(|e| step_err(n, e))?;
                    let checked = Csr::parse(&bytes)
                        .map_err(Error::from)
                        .and_then(|csr| CheckedCsr::check(csr, &ca_keys))
                        .map_err(|e| step_err(n, about(&req_cfg.csr, e)))?;
                    let csr = checked.csr();
                    let csr_sha = hex::encode(csr.sha256());
                    let ignored = csr
                        .requested_extensions()
                        .map_err(|e| step_err(n, about(&req_cfg.csr, e)))?;
                    if !ignored.is_empty() {
                        notes.push(format!(
                            "step {n}: {} asks for extensions the profile decides itself; they are ignored",
                            req_cfg.csr.display()
                        ));
                    }
                    let records: Vec<&Entry> = state
                        .entries
                        .iter()
                        .filter(|e| matches!(&e.record.event, Event::CsrSigned { csr_sha256, .. } if *csr_sha256 == csr_sha))
                        .collect();
                    let done = certificate_done(
                        &file,
                        n,
                        &req_cfg.out,
                        req_cfg.chain_out.as_deref(),
                        &records,
                        &req_cfg.csr,
                        &mut notes,
                    )?;
                    let subject = s
                        .subject
                        .as_ref()
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| csr.subject().clone());
                    let req = CertRequest {
                        profile: s.profile.intermediate(),
                        subject,
                        public_key: csr.spki().clone(),
                        validity: s
                            .profile
                            .validity
                            .resolve(now)
                            .map_err(|e| step_err(n, e))?,
                        issuer: Some(&iss),
                        serial: random_serial()?,
                    };
                    let cert = preview(
                        &req,
                        &s.profile.extras,
                        iss.tbs_certificate().subject_public_key_info(),
                        preview_signer,
                    )
                    .map_err(|e| step_err(n, about(&req_cfg.csr, e)))?;
                    refuse_findings(&cert, Some(&iss), "in the dry run")
                        .map_err(|e| step_err(n, e))?;
                    let mut outs = vec![req_cfg.out.clone()];
                    outs.extend(req_cfg.chain_out.clone());
                    body.push_str(&render_cert(
                        &format!("Intermediate CA certificate from {}", req_cfg.csr.display()),
                        &cert,
                        &s.profile,
                        Some(&iss),
                        &format!(
                            "{} from the CSR (SPKI SHA-256 {})",
                            PublicKeyInfo::from_spki(csr.spki())
                                .map(|i| i.to_string())
                                .unwrap_or_else(|_| "unknown".into()),
                            hex::encode(spki_sha256(csr.spki()))
                        ),
                        std::slice::from_ref(&input),
                        &outs,
                        done.is_some(),
                        stand_in_step,
                    ));
                    items.push(Item {
                        what: format!("certificate {}", req_cfg.out.display()),
                        inputs: vec![input],
                        done,
                        csr_sha256: Some(csr.sha256()),
                    });
                }
            }
            Step::CrossSign(x) => {
                let Some(iss) = issuer.clone() else {
                    return Err(step_err(
                        n,
                        Error::invalid(
                            "there is no CA certificate to sign under",
                            "add a create_root step or use a CA directory with a root",
                        ),
                    ));
                };
                let (input, bytes) =
                    file_hash(&file, &x.certificate).map_err(|e| step_err(n, e))?;
                let mut inputs = vec![input];
                let issuer_bytes = match &x.certificate_issuer {
                    Some(p) => {
                        let (h, b) = file_hash(&file, p).map_err(|e| step_err(n, e))?;
                        inputs.push(h);
                        Some(b)
                    }
                    None => None,
                };
                let source =
                    CrossSource::check(&bytes, issuer_bytes.as_deref(), &ca_spki_for_preview)
                        .map_err(|e| step_err(n, about(&x.certificate, e)))?;
                let source_sha = sha256_hex(source.der());
                let records: Vec<&Entry> = state
                    .entries
                    .iter()
                    .filter(|e| matches!(&e.record.event, Event::CrossSigned { source_sha256, .. } if *source_sha256 == source_sha))
                    .collect();
                let done = certificate_done(
                    &file,
                    n,
                    &x.out,
                    x.chain_out.as_deref(),
                    &records,
                    &x.certificate,
                    &mut notes,
                )?;
                let stbs = source.certificate().tbs_certificate();
                let req = CertRequest {
                    profile: x.profile.intermediate(),
                    subject: stbs.subject().clone(),
                    public_key: stbs.subject_public_key_info().clone(),
                    validity: x
                        .profile
                        .validity
                        .resolve(now)
                        .map_err(|e| step_err(n, e))?,
                    issuer: Some(&iss),
                    serial: random_serial()?,
                };
                let extras = cross_extras(&x.profile, &source);
                let cert = preview(
                    &req,
                    &extras,
                    iss.tbs_certificate().subject_public_key_info(),
                    preview_signer,
                )
                .map_err(|e| step_err(n, about(&x.certificate, e)))?;
                refuse_findings(&cert, Some(&iss), "in the dry run").map_err(|e| step_err(n, e))?;
                if let (Ok(ours), Ok(theirs)) = (
                    from_x509_time(&cert.tbs_certificate().validity().not_after),
                    from_x509_time(&stbs.validity().not_after),
                ) && ours > theirs
                    && done.is_none()
                {
                    notes.push(format!(
                        "step {n}: the cross-certificate, if signed now, is valid until {}, after {} itself expires ({}); relying parties may then still accept its chains through this CA",
                        fmt(ours),
                        x.certificate.display(),
                        fmt(theirs)
                    ));
                }
                let mut outs = vec![x.out.clone()];
                outs.extend(x.chain_out.clone());
                body.push_str(&render_cert(
                    &format!(
                        "Cross-certificate for {} from {} ({}; same subject, key and subjectKeyIdentifier)",
                        display_name(stbs.subject()),
                        x.certificate.display(),
                        if source.self_signed() {
                            "self-signed, self-signature verified".to_string()
                        } else {
                            format!(
                                "issued by {}, signature verified with its certificate",
                                display_name(stbs.issuer())
                            )
                        }
                    ),
                    &cert,
                    &x.profile,
                    Some(&iss),
                    &format!(
                        "{} from the certificate (SPKI SHA-256 {})",
                        PublicKeyInfo::from_spki(stbs.subject_public_key_info())
                            .map(|i| i.to_string())
                            .unwrap_or_else(|_| "unknown".into()),
                        hex::encode(spki_sha256(stbs.subject_public_key_info()))
                    ),
                    &inputs,
                    &outs,
                    done.is_some(),
                    stand_in_step,
                ));
                items.push(Item {
                    what: format!("cross-certificate {}", x.out.display()),
                    inputs,
                    done,
                    csr_sha256: None,
                });
            }
            Step::Revoke(r) => {
                let (serial, inputs) = match &r.target {
                    RevokeTarget::Serial(s) => (Some(s.clone()), vec![]),
                    RevokeTarget::Certificate(p) => {
                        let from_step = produced
                            .iter()
                            .find(|(q, _)| *q == normalise(p))
                            .map(|(_, k)| *k);
                        match (existing(&file, p)?, from_step) {
                            (Some((fh, bytes)), _) => {
                                let (cert, _) = cert_in(&bytes).ok_or_else(|| {
                                    step_err(
                                        n,
                                        Error::invalid(
                                            format!("{} is not a certificate", p.display()),
                                            "name the certificate to revoke",
                                        ),
                                    )
                                })?;
                                let serial = crate::ca::serial_hex(&cert);
                                // An output of this ceremony is hashed as an output, not an input.
                                let inputs = if from_step.is_some() {
                                    vec![]
                                } else {
                                    vec![fh]
                                };
                                (Some(serial), inputs)
                            }
                            (None, Some(_)) => (None, vec![]),
                            (None, None) => {
                                return Err(step_err(
                                    n,
                                    Error::invalid(
                                        format!("{} does not exist", p.display()),
                                        "name an existing certificate, or one an earlier step writes",
                                    ),
                                ));
                            }
                        }
                    }
                };
                let mut done = None;
                if let Some(serial) = &serial {
                    let issued = state.entries.iter().any(|e| {
                        e.record
                            .event
                            .issued_cert()
                            .is_some_and(|c| c.serial == *serial && c.profile != "root")
                    });
                    let made_here = matches!(&r.target, RevokeTarget::Certificate(p) if produced.iter().any(|(q, _)| *q == normalise(p)));
                    if !issued && !made_here {
                        return Err(step_err(
                            n,
                            Error::invalid(
                                format!(
                                    "this CA has issued no certificate with serial {serial} (or it is the CA's own)"
                                ),
                                "list the serials with 'hsmca list'",
                            ),
                        ));
                    }
                    done = state
                        .entries
                        .iter()
                        .find(|e| matches!(&e.record.event, Event::CertificateRevoked { serial: s, .. } if s == serial))
                        .map(|e| evidence(e, vec![]));
                }
                body.push_str(&format!(
                    "  Revoke {} (reason {}, date {})\n",
                    match (&r.target, &serial) {
                        (RevokeTarget::Certificate(p), Some(s)) =>
                            format!("{} (serial {s})", p.display()),
                        (RevokeTarget::Certificate(p), None) =>
                            format!("{} (written by an earlier step)", p.display()),
                        (RevokeTarget::Serial(s), _) => format!("serial {s}"),
                    },
                    r.reason,
                    r.date
                        .map(fmt)
                        .unwrap_or_else(|| "the moment of the step".into())
                ));
                items.push(Item {
                    what: "revocation".into(),
                    inputs,
                    done,
                    csr_sha256: None,
                });
            }
            Step::Csr(r) => {
                // The request as it will be made, signed by a key of the CA key's algorithm,
                // so a subject the policy refuses stops the plan.
                crate::x509::request::ca_request(r.subject.clone(), r.path_len, preview_signer)
                    .map_err(|e| step_err(n, e))?;
                let done = recorded_output(
                    &file,
                    state,
                    &r.out,
                    n,
                    "certificate request",
                    |bytes| Csr::parse(bytes).ok().map(|c| sha256_hex(c.der())),
                    |event, sha| matches!(event, Event::RequestCreated { csr_sha256, .. } if csr_sha256 == sha),
                )?;
                body.push_str(&format!(
                    "  Certificate request (PKCS#10) for the CA key, signed by it, for another CA to certify:\n    Subject: {}\n    Asks for: basicConstraints cA=TRUE{}; keyUsage keyCertSign, cRLSign\n",
                    r.subject,
                    r.path_len.map(|p| format!(", pathLenConstraint {p}")).unwrap_or_default()
                ));
                body.push_str(&format!("  Output: {}\n", r.out.display()));
                items.push(Item {
                    what: format!("request {}", r.out.display()),
                    inputs: vec![],
                    done,
                    csr_sha256: None,
                });
            }
            Step::Crl(c) => {
                let lifetime = c.next_update.1;
                if let Some(iss) = &issuer {
                    let period = crate::x509::validity::ValidityPeriod::starting(now, lifetime)
                        .map_err(|e| step_err(n, e))?;
                    let next = period.not_after + time::Duration::SECOND;
                    if next - period.not_before
                        > time::Duration::days(crate::x509::crl::MAX_CRL_DAYS)
                    {
                        return Err(step_err(
                            n,
                            Error::invalid(
                                format!(
                                    "next_update {} is more than {} days",
                                    c.next_update.0,
                                    crate::x509::crl::MAX_CRL_DAYS
                                ),
                                "choose next_update of at most 365d",
                            ),
                        ));
                    }
                    let na = from_x509_time(&iss.tbs_certificate().validity().not_after)?;
                    if next > na {
                        return Err(step_err(
                            n,
                            Error::invalid(
                                format!(
                                    "nextUpdate {} would be after the CA certificate's NotAfter {}",
                                    fmt(next),
                                    fmt(na)
                                ),
                                "choose an earlier next_update",
                            ),
                        ));
                    }
                }
                let done = recorded_output(
                    &file,
                    state,
                    &c.out,
                    n,
                    "CRL",
                    crl_der_sha,
                    |event, sha| matches!(event, Event::CrlIssued { crl_sha256, .. } if crl_sha256 == sha),
                )?;
                body.push_str(&format!(
                    "  CRL of {}: every revocation the CA directory records, the next CRL number, thisUpdate = the moment of signing, nextUpdate = {} later{}\n",
                    issuer.as_ref().map(|i| display_name(i.tbs_certificate().subject())).unwrap_or_default(),
                    c.next_update.0,
                    if has_root_step || issuer.as_ref().is_some_and(|i| i.tbs_certificate().issuer() == i.tbs_certificate().subject()) { "; issuingDistributionPoint onlyContainsCACerts (a root's CRL)" } else { "" }
                ));
                body.push_str(&format!("  Output: {}\n", c.out.display()));
                items.push(Item {
                    what: format!("CRL {}", c.out.display()),
                    inputs: vec![],
                    done,
                    csr_sha256: None,
                });
            }
        }
        for out in step_outputs(&located.step) {
            produced.push((normalise(&out), n));
        }
        let status = if items.iter().all(|i| i.done.is_some()) {
            let seqs: Vec<String> = items
                .iter()
                .filter_map(|i| i.done.as_ref().map(|d| format!("#{} at {}", d.seq, d.time)))
                .collect();
            format!("done (audit record {})", seqs.join(", "))
        } else if items.iter().any(|i| i.done.is_some()) {
            let left = items.iter().filter(|i| i.done.is_none()).count();
            format!("partly done: {left} of {} left", items.len())
        } else {
            "to do".into()
        };
        let head = format!(
            "Step {} of {}: {} (line {})  [{status}]\n",
            n,
            file.steps.len(),
            located.step.kind(),
            located.line
        );
        let ps = PlannedStep {
            located: located.clone(),
            items,
            rendering: String::new(),
        };
        let confirm = if ps.done() {
            String::new()
        } else {
            format!("  Confirmation to type: {}\n", ps.confirmation())
        };
        planned.push(PlannedStep {
            rendering: format!("{head}{body}{confirm}"),
            ..ps
        });
    }

    let transcript_path = file.resolve(&file.ceremony.transcript);
    let transcript_exists = std::fs::symlink_metadata(&transcript_path).is_ok();
    let all_done = planned.iter().all(PlannedStep::done);
    if transcript_exists && !all_done {
        return Err(taken(
            &file.ceremony.transcript,
            0,
            "the transcript exists but the ceremony's steps are not all done",
        ));
    }

    let digest = digest_of(
        &file,
        &planned,
        state,
        has_root_step,
        ca_gen.is_some(),
        &ca_key_spki,
    );
    Ok(Plan {
        file,
        digest,
        steps: planned,
        ca_key_spki,
        ca_key_generated_in: ca_gen.map(|g| g.0),
        transcript_exists,
        notes,
    })
}

/// Whether the single output `out` of step `n` (a request, a CRL) is done: `None` while it
/// does not exist; done when it is a `what` whose DER hash (`sha_of`) a record `recorded`.
/// Anything else at that path is refused, never replaced.
#[allow(clippy::too_many_arguments)]
fn recorded_output(
    file: &CeremonyFile,
    state: &CaState,
    out: &Path,
    n: usize,
    what: &str,
    sha_of: impl Fn(&[u8]) -> Option<String>,
    recorded: impl Fn(&Event, &str) -> bool,
) -> Result<Option<Evidence>> {
    let Some((fh, bytes)) = existing(file, out)? else {
        return Ok(None);
    };
    let sha = sha_of(&bytes)
        .ok_or_else(|| taken(out, n, &format!("it exists and is not a PEM {what}")))?;
    match state
        .entries
        .iter()
        .find(|e| recorded(&e.record.event, &sha))
    {
        Some(e) => Ok(Some(evidence(e, vec![fh]))),
        None => Err(taken(
            out,
            n,
            &format!("it exists and is not a {what} this CA directory recorded"),
        )),
    }
}

/// Whether a certificate of a step is done: its output exists, is a certificate, and one of
/// `records` (the audit records issued for this step's input) holds it; its chain exists too.
/// `Ok(None)` when the output does not exist yet (with a note if a record shows an earlier run
/// issued it but stopped before writing).
#[allow(clippy::too_many_arguments)]
fn certificate_done(
    file: &CeremonyFile,
    n: usize,
    out: &Path,
    chain_out: Option<&Path>,
    records: &[&Entry],
    input: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<Evidence>> {
    match existing(file, out)? {
        Some((fh, bytes)) => {
            let (_, sha) = cert_in(&bytes)
                .ok_or_else(|| taken(out, n, "it exists and is not a certificate"))?;
            let rec = records.iter().find(|e| {
                e.record
                    .event
                    .issued_cert()
                    .is_some_and(|c| c.cert_sha256 == sha)
            });
            let Some(rec) = rec else {
                return Err(taken(
                    out,
                    n,
                    &format!(
                        "it exists and is not a certificate this CA directory recorded for {}",
                        input.display()
                    ),
                ));
            };
            let mut outs = vec![fh];
            if let Some(chain) = chain_out {
                let Some((ch, _)) = existing(file, chain)? else {
                    return Err(step_err(
                        n,
                        Error::invalid(
                            format!(
                                "{} exists but its chain {} does not",
                                out.display(),
                                chain.display()
                            ),
                            format!(
                                "write the chain with: cat {} {}/ca.crt > {}",
                                out.display(),
                                file.ceremony.ca_dir.display(),
                                chain.display()
                            ),
                        ),
                    ));
                };
                outs.push(ch);
            }
            Ok(Some(evidence(rec, outs)))
        }
        None => {
            if let Some(chain) = chain_out
                && existing(file, chain)?.is_some()
            {
                return Err(taken(chain, n, "it exists"));
            }
            if let Some(e) = records.last()
                && let Some(cert) = e.record.event.issued_cert()
            {
                notes.push(format!(
                    "step {n}: audit record {} already holds a certificate for {} (serial {}); if an earlier run of this ceremony stopped before writing {}, write it with 'hsmca --ca-dir {} export --serial {} --out {}' before running, or the run issues a new one",
                    e.record.seq,
                    input.display(),
                    cert.serial,
                    out.display(),
                    file.ceremony.ca_dir.display(),
                    cert.serial,
                    out.display()
                ));
            }
            Ok(None)
        }
    }
}

/// The step's extras, keeping the cross-signed certificate's subjectKeyIdentifier.
pub fn cross_extras(profile: &CaProfile, source: &CrossSource) -> CaExtras {
    CaExtras {
        subject_key_id: source.subject_key_id().map(<[u8]>::to_vec),
        ..profile.extras.clone()
    }
}

fn about(p: &Path, e: impl Into<Error>) -> Error {
    let e = e.into();
    let (cause, hint) = e.cause_and_hint();
    Error::invalid(
        format!("{}: {cause}", p.display()),
        hint.unwrap_or_else(|| "check that file".into()),
    )
}

fn key_line(
    spki: &Option<SubjectPublicKeyInfoOwned>,
    generated_in: Option<usize>,
    label: &str,
    alg: KeyAlgorithm,
) -> String {
    match spki {
        Some(k) => format!(
            "{alg}, token key \"{label}\" (SPKI SHA-256 {})",
            hex::encode(spki_sha256(k))
        ),
        None => format!(
            "{alg}, token key \"{label}\" generated in step {}",
            generated_in.unwrap_or_default()
        ),
    }
}

/// A certificate as a witness reads it, from its dry-run build.
#[allow(clippy::too_many_arguments)]
fn render_cert(
    title: &str,
    cert: &Certificate,
    profile: &CaProfile,
    issuer: Option<&Certificate>,
    key: &str,
    inputs: &[FileHash],
    outputs: &[PathBuf],
    done: bool,
    stand_in: Option<usize>,
) -> String {
    let tbs = cert.tbs_certificate();
    let mut s = format!("  {title}\n");
    s.push_str(&format!(
        "    Subject:    {}\n",
        display_name(tbs.subject())
    ));
    match issuer {
        None => s.push_str("    Issuer:     the same (self-signed)\n"),
        Some(i) => s.push_str(&format!(
            "    Issuer:     {} (CA certificate SHA-256 {})\n",
            display_name(i.tbs_certificate().subject()),
            i.to_der().map(|d| sha256_hex(&d)).unwrap_or_default()
        )),
    }
    s.push_str(&format!(
        "    Validity:   {}\n",
        profile.validity.describe()
    ));
    if !done {
        let v = tbs.validity();
        if let (Ok(a), Ok(b)) = (from_x509_time(&v.not_before), from_x509_time(&v.not_after)) {
            s.push_str(&format!(
                "                if signed now: {} to {}\n",
                fmt(a),
                fmt(b)
            ));
        }
    }
    s.push_str(&format!("    Public key: {key}\n"));
    s.push_str(&format!(
        "    Signature:  {}\n",
        crate::x509::verify::describe_algorithm(tbs.signature())
    ));
    s.push_str("    Serial:     20 random octets, chosen at signing\n");
    s.push_str(&extensions_text(cert));
    if inputs.is_empty() {
        s.push_str("    Inputs:     none\n");
    }
    for i in inputs {
        s.push_str(&format!(
            "    Input:      {} SHA-256 {}\n",
            i.path.display(),
            i.sha256
        ));
    }
    let outs: Vec<String> = outputs.iter().map(|p| p.display().to_string()).collect();
    s.push_str(&format!("    Outputs:    {}\n", outs.join(", ")));
    if !done {
        s.push_str("    Dry run:    built with a throwaway key and linted: no findings\n");
        if let Some(n) = stand_in {
            s.push_str(&format!(
                "    Note:       the CA key identifiers above come from a stand-in key; the real ones are those of the key step {n} generates\n"
            ));
        }
    }
    s
}

/// The "Extensions" block of the certificate's description (every extension, in order).
fn extensions_text(cert: &Certificate) -> String {
    let der = match cert.to_der() {
        Ok(d) => d,
        Err(_) => return String::new(),
    };
    let Ok(text) = crate::x509::inspect::describe(&der) else {
        return String::new();
    };
    let mut out = String::new();
    let mut inside: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        match inside {
            None if line.trim_start().starts_with("Extensions") => {
                inside = Some(indent);
                out.push_str(&format!("    {}\n", line.trim_start()));
            }
            Some(base) if indent > base => {
                out.push_str(&format!("      {}\n", line.trim_start()));
            }
            Some(_) => break,
            None => {}
        }
    }
    out
}

/// SHA-256 of the normalised plan.
fn digest_of(
    file: &CeremonyFile,
    steps: &[PlannedStep],
    state: &CaState,
    has_root_step: bool,
    generates_ca_key: bool,
    ca_key_spki: &Option<SubjectPublicKeyInfoOwned>,
) -> [u8; 32] {
    let steps: Vec<Value> = steps
        .iter()
        .map(|s| {
            let mut v = normal_step(&s.located.step);
            let inputs: Vec<Value> = s
                .items
                .iter()
                .flat_map(|i| &i.inputs)
                .map(|h| json!({"path": h.path.display().to_string(), "sha256": h.sha256}))
                .collect();
            if let Value::Object(m) = &mut v {
                m.insert("inputs".into(), Value::Array(inputs));
            }
            v
        })
        .collect();
    let c = &file.ceremony;
    let normal = json!({
        "format": "hsmca-ceremony-plan-v1",
        "ceremony": {
            "name": c.name, "operator": c.operator, "witnesses": c.witnesses,
            "ca_dir": normalise(&c.ca_dir).display().to_string(),
            "transcript": normalise(&c.transcript).display().to_string(),
        },
        "token": {"label": file.token.label, "serial": file.token.serial},
        "ca_key": {
            "label": file.ca_key.label,
            "id": file.ca_key_id.as_ref().map(hex::encode),
            "pss": file.ca_key.pss,
            "hash": file.ca_key.hash,
            // The key and the certificate a ceremony builds on, unless it makes them itself.
            "spki_sha256": if generates_ca_key { None } else { ca_key_spki.as_ref().map(|k| hex::encode(spki_sha256(k))) },
        },
        "ca_cert_sha256": if has_root_step { None } else { state.ca_cert_sha256.clone() },
        "steps": steps,
    });
    let bytes = serde_json::to_vec(&normal).unwrap_or_default();
    Sha256::digest(&bytes).into()
}
