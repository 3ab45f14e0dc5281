//! A command's hold on its token: the module loaded, one session, exactly one C_Login (a
//! failure recorded), the CA key bound and policy-checked, and a seal over whatever the
//! command recorded. The CLI, ceremonies and the k8s code describe what to sign and call
//! [`with_token`] or [`with_ca_key`]; only [`CaToken`] signs with a CA key.

use std::path::Path;

use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

use super::audit::Event;
use super::batch::Batch;
use super::issuance::{Delivery, Order};
use super::recorder::Recorder;
use super::signer::{SignatureChoice, TokenSigner};
use super::{GeneratedKey, ops};
use crate::error::{Error, Result};
use crate::output::Overwrite;
use crate::token::{
    KeySpec, Module, Pin, PinSource, Pkcs11Uri, TokenError, TokenKey, TokenSelector, TokenSession,
};
use crate::x509::csr::Csr;
use crate::x509::validity::Lifetime;

/// Which token a command works with.
pub struct TokenRef<'a> {
    /// The PKCS#11 module (`None`: HSMCA_MODULE or the default).
    pub module: Option<&'a Path>,
    /// The token, by label and/or serial.
    pub selector: TokenSelector,
}

impl<'a> TokenRef<'a> {
    /// The token a key URI names, through `module` or the URI's module-path.
    pub fn of_uri(module: Option<&'a Path>, uri: &'a Pkcs11Uri) -> TokenRef<'a> {
        TokenRef {
            module: module.or(uri.module_path.as_deref()),
            selector: TokenSelector {
                label: uri.token.clone(),
                serial: uri.serial.clone(),
            },
        }
    }
}

/// Opens the token without logging in, for reading what it holds (a ceremony's plan).
pub fn view_token<T>(
    token: &TokenRef<'_>,
    look: impl FnOnce(&TokenSession<'_>) -> Result<T>,
) -> Result<T> {
    let module = Module::load(token.module)?;
    let session = TokenSession::open(&module, &token.selector, false)?;
    look(&session)
}

/// Opens a session on the token (read-write when `rw`, to generate keys), logs in exactly once
/// with the PIN from `pin` and runs `work`. When `work` bound a CA key, whatever it recorded is
/// sealed with that key at the end, after an error too (the error stays the one reported).
/// Session and module close on every path.
pub fn with_token<T>(
    token: &TokenRef<'_>,
    rw: bool,
    pin: &PinSource,
    rec: &mut Recorder,
    work: impl FnOnce(&mut CaToken<'_, '_, '_>) -> Result<T>,
) -> Result<T> {
    let module = Module::load(token.module)?;
    // Read-write whenever a CA directory is recorded: the token keeps the log's head.
    let rw = rw || rec.dir().is_some();
    let mut session = TokenSession::open(&module, &token.selector, rw)?;
    login(&mut session, pin, rec)?;
    let mut ca = CaToken {
        session: &session,
        rec,
        signer: None,
        head_version: 0,
        head_open: false,
    };
    match work(&mut ca) {
        Ok(out) => {
            ca.finish()?;
            Ok(out)
        }
        // A seal that fails as well (a token that stopped answering) is left to the next
        // command, which finds the records unsealed.
        Err(e) => {
            let _ = ca.finish();
            Err(e)
        }
    }
}

/// [`with_token`] with the CA key `uri` names bound before `work` runs.
pub fn with_ca_key<T>(
    module: Option<&Path>,
    uri: &Pkcs11Uri,
    pin: &PinSource,
    choice: SignatureChoice,
    rec: &mut Recorder,
    work: impl FnOnce(&mut CaToken<'_, '_, '_>) -> Result<T>,
) -> Result<T> {
    with_token(&TokenRef::of_uri(module, uri), false, pin, rec, |ca| {
        ca.use_key(uri, choice)?;
        work(ca)
    })
}

/// Logs in (read only) and checks the CA directory `dir` against the log head the token keeps
/// for the CA key `uri` names, which must be the key of `ca_key`. Returns the head's record,
/// `None` when the token keeps no head for the key yet.
pub fn verify_head(
    module: Option<&Path>,
    uri: &Pkcs11Uri,
    pin: &PinSource,
    dir: &super::store::CaDir,
    ca_key: &spki::SubjectPublicKeyInfoOwned,
) -> Result<Option<u64>> {
    let token = TokenRef::of_uri(module, uri);
    with_token(&token, false, pin, &mut Recorder::none(), |ca| {
        let key = ca.session.open_key(uri)?;
        if &super::signer::spki_from_material(&key.public)? != ca_key {
            return Err(Error::invalid(
                format!("the key {} is not the key of the CA certificate", key.uri),
                "pass the CA's own key with --key",
            ));
        }
        let head = super::anchor::read(ca.session, ca_key)?;
        super::anchor::check(dir, head.as_ref())?;
        Ok(head.map(|h| h.seq))
    })
}

/// Logs in exactly once, printing the token's PIN-counter warnings; a failure is recorded.
fn login(session: &mut TokenSession<'_>, source: &PinSource, rec: &mut Recorder) -> Result<()> {
    if let Some(note) = session.info_note() {
        crate::notice::note(note);
    }
    let pin = Pin::read(
        source,
        &format!("User PIN for token \"{}\": ", session.label()),
    )?;
    match session.login(&pin) {
        Ok(warnings) => {
            for w in warnings {
                crate::notice::warning(w);
            }
            Ok(())
        }
        Err(e @ (TokenError::PinIncorrect | TokenError::PinLocked)) => {
            let event = Event::LoginFailed {
                token: session.label().to_string(),
                reason: e.to_string(),
            };
            if let Err(log_err) = rec.append(event) {
                crate::notice::warning(format!("could not record the failed login: {log_err}"));
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A logged-in token session with the command's records: what a command signs with.
pub struct CaToken<'s, 'm, 'r> {
    session: &'s TokenSession<'m>,
    rec: &'r mut Recorder,
    signer: Option<TokenSigner<'s, 'm>>,
    /// The version of the log head this command last read or wrote on the token (0: none).
    head_version: u64,
    /// Whether the head on the token is open (this command is under way) and must be closed.
    head_open: bool,
}

impl<'s, 'm> CaToken<'s, 'm, '_> {
    /// The session, for reading what the token holds (never for signing).
    pub fn session(&self) -> &'s TokenSession<'m> {
        self.session
    }

    /// The command's records.
    pub fn recorder(&self) -> &Recorder {
        self.rec
    }

    /// Records `event` in the CA directory's log (nothing without one).
    pub fn record(&mut self, event: Event) -> Result<()> {
        self.rec.append(event)
    }

    /// Binds the CA key `uri` names (its attributes checked against the CA key policy).
    pub fn use_key(&mut self, uri: &Pkcs11Uri, choice: SignatureChoice) -> Result<()> {
        let key = self.session.open_key(uri)?;
        self.bind(key, choice)
    }

    /// Binds `key`, generated in this session, as the CA key.
    pub fn bind(&mut self, key: TokenKey, choice: SignatureChoice) -> Result<()> {
        let signer = TokenSigner::new(self.session, key, choice)?;
        // The seal is verified with the CA certificate's key: any other key would break the log.
        if let Some(dir) = self.rec.dir()
            && let Ok(bytes) = std::fs::read(dir.ca_cert_path())
        {
            let ca = crate::x509::decode::load_certificate(&bytes)?;
            if ca.tbs_certificate().subject_public_key_info()
                != crate::x509::signer::CaSigner::public_key(&signer)
            {
                return Err(Error::invalid(
                    format!(
                        "the key {} is not the key of the CA directory's certificate ({})",
                        signer.key().uri,
                        crate::x509::name::display_name(ca.tbs_certificate().subject())
                    ),
                    "pass the CA's own key with --key, or the CA directory of the CA that key belongs to",
                ));
            }
        }
        self.anchor(crate::x509::signer::CaSigner::public_key(&signer))?;
        self.signer = Some(signer);
        Ok(())
    }

    /// Checks the CA directory against the head the token keeps for `ca_key` (the last seal
    /// must be this key's), and marks a command under way.
    fn anchor(&mut self, ca_key: &spki::SubjectPublicKeyInfoOwned) -> Result<()> {
        let Some(dir) = self.rec.dir() else {
            return Ok(());
        };
        let sealed_by_key = super::audit::last_seal_verifies(&dir.entries, ca_key);
        if sealed_by_key == Some(false) {
            return Err(Error::invalid(
                format!(
                    "the last seal of the audit log in {} does not verify with this key: the log was changed, or it belongs to another CA key",
                    dir.path().display()
                ),
                "pass the CA's own key with --key, or examine the CA directory before signing anything",
            ));
        }
        let head = super::anchor::read(self.session, ca_key)?;
        // The records read from the last seal on are enough only if the directory is as the
        // command that wrote the head left it; anything else reads and checks the whole log.
        let as_left = head.as_ref().is_some_and(|h| {
            h.files.is_some()
                && h.files.as_ref() == dir.stamp_at_open()
                && dir.entry(h.seq).is_some()
        });
        if dir.read_from_seal() && !as_left {
            self.rec.read_whole()?;
        }
        let Some(dir) = self.rec.dir() else {
            return Ok(());
        };
        super::anchor::check(dir, head.as_ref())?;
        self.rec.recover()?;
        let Some(dir) = self.rec.dir() else {
            return Ok(());
        };
        self.head_version = match head {
            Some(head) => super::anchor::open(self.session, ca_key, &head)?,
            None => {
                let last_seal = dir
                    .entries
                    .iter()
                    .rev()
                    .find(|e| matches!(e.record.event, super::audit::Event::Seal { .. }));
                if last_seal.is_some() {
                    crate::notice::note(
                        "the token keeps no head of this CA key's audit log yet (a CA directory from before heads, a reset token, or a key restored on a new token); it keeps one from now on, as the log stands",
                    );
                }
                super::anchor::adopt(self.session, ca_key, dir, last_seal)?
            }
        };
        self.head_open = self.head_version > 0;
        Ok(())
    }

    /// The bound CA key.
    pub fn signer(&self) -> Result<&TokenSigner<'s, 'm>> {
        self.signer.as_ref().ok_or_else(no_key)
    }

    /// Generates a key pair on the token (checked and self-tested, see
    /// [`super::generate_key`]) and records it.
    pub fn generate_key(
        &mut self,
        spec: KeySpec,
        algorithm: &str,
        label: &str,
        id: &[u8],
        command: &str,
    ) -> Result<GeneratedKey> {
        self.generate(spec, algorithm, (label, id), false, command)
    }

    /// [`CaToken::generate_key`] in backup form: extractable only wrapped under a trusted key
    /// (the caller wraps it at once, [`super::backup`]).
    pub fn generate_backed_up_key(
        &mut self,
        spec: KeySpec,
        algorithm: &str,
        label: &str,
        id: &[u8],
    ) -> Result<GeneratedKey> {
        self.generate(spec, algorithm, (label, id), true, "key generate")
    }

    fn generate(
        &mut self,
        spec: KeySpec,
        algorithm: &str,
        (label, id): (&str, &[u8]),
        backup: bool,
        command: &str,
    ) -> Result<GeneratedKey> {
        let generated =
            super::generate_key(self.session, spec, (label, id), backup, self.rec, command)?;
        // The first key of a new CA directory seals it (and the token keeps its head).
        if self.signer.is_none()
            && self.rec.dir().is_some_and(|d| {
                !d.ca_cert_path().exists()
                    && !d
                        .entries
                        .iter()
                        .any(|e| matches!(e.record.event, Event::Seal { .. }))
            })
        {
            self.bind(generated.key.clone(), SignatureChoice::default())?;
        }
        self.rec.append(Event::KeyGenerated {
            key_uri: generated.key.uri.to_string(),
            algorithm: algorithm.to_string(),
            spki_sha256: hex::encode(generated.spki_sha256),
        })?;
        Ok(generated)
    }

    /// Writes a generated key's public key (PEM) to `path`.
    pub fn write_public_key(
        &self,
        generated: &GeneratedKey,
        path: &Path,
        ow: Overwrite,
    ) -> Result<()> {
        use der::Encode;
        let der = generated
            .spki
            .to_der()
            .map_err(|e| Error::internal(format!("public key encoding: {e}")))?;
        crate::output::write_atomic(
            path,
            crate::x509::decode::to_pem("PUBLIC KEY", &der)?.as_bytes(),
            0o644,
            ow,
        )?;
        Ok(())
    }

    /// Issues one certificate through the issuance transaction ([`super::issuance::issue`]).
    pub fn issue(
        &mut self,
        issuer: Option<&Certificate>,
        order: &Order<'_>,
        delivery: &Delivery<'_>,
    ) -> Result<Certificate> {
        let signer = self.signer.as_ref().ok_or_else(no_key)?;
        super::issuance::issue(signer, self.rec, issuer, order, delivery)
    }

    /// Signs a batch of checked requests ([`super::batch::sign_batch`]).
    pub fn sign_batch(
        &mut self,
        batch: &Batch<'_>,
        done: &mut (dyn FnMut(usize, &Path, &Certificate) + Send),
    ) -> Result<usize> {
        let signer = self.signer.as_ref().ok_or_else(no_key)?;
        super::batch::sign_batch(signer, self.rec, batch, done)
    }

    /// Issues the CA directory's next CRL ([`ops::issue_crl_recorded`]).
    pub fn crl(
        &mut self,
        lifetime: Lifetime,
        url: Option<&str>,
        out: &Path,
        ow: Overwrite,
    ) -> Result<CertificateList> {
        let signer = self.signer.as_ref().ok_or_else(no_key)?;
        ops::issue_crl_recorded(signer, self.rec, lifetime, url, out, ow)
    }

    /// Makes a request for a CA certificate for the bound key ([`ops::issue_request`]).
    pub fn request(
        &mut self,
        subject: Name,
        path_len: Option<u8>,
        out: &Path,
        ow: Overwrite,
    ) -> Result<Csr> {
        let signer = self.signer.as_ref().ok_or_else(no_key)?;
        ops::issue_request(signer, self.rec, subject, path_len, out, ow)
    }

    /// Records a checked revocation ([`ops::revoke`]); the seal at the end covers it.
    pub fn revoke(&mut self, checked: &ops::CheckedRevocation) -> Result<String> {
        ops::revoke(self.rec, checked)
    }

    /// Times `count` raw signatures with the bound key, which must not be a CA key: a key
    /// whose log head the token keeps, or the CA directory's, signs nothing unrecorded.
    pub fn bench_raw(&self, count: usize) -> Result<super::bench::RawSignStats> {
        let signer = self.signer()?;
        let key = crate::x509::signer::CaSigner::public_key(signer);
        let is_ca_dir_key = self
            .rec
            .dir()
            .and_then(|d| d.recorded_ca_cert().ok().flatten())
            .is_some_and(|ca| ca.tbs_certificate().subject_public_key_info() == key);
        if is_ca_dir_key || super::anchor::read(self.session, key)?.is_some() {
            return Err(Error::invalid(
                format!(
                    "{} is a CA key (it seals a CA directory's audit log): every signature it makes is recorded, and a benchmark's would not be",
                    signer.key().uri
                ),
                "benchmark a key made for it: hsmca key generate --label bench-p256 (without --ca-dir), then bench raw --key with that key",
            ));
        }
        super::bench::raw_sign(signer, count)
    }

    /// Seals what this command recorded since the last seal, when a CA key is bound, and moves
    /// the head on the token to that seal, still open: the command goes on (a ceremony seals
    /// after every step). The command's end closes it.
    pub fn seal(&mut self) -> Result<()> {
        self.seal_and_move(true)
    }

    /// The end of the command: what it recorded sealed, the head on the token closed (also
    /// when it recorded nothing after opening it).
    fn finish(&mut self) -> Result<()> {
        if self.rec.unsealed() || self.head_open {
            self.seal_and_move(false)?;
        }
        Ok(())
    }

    fn seal_and_move(&mut self, open: bool) -> Result<()> {
        let Some(s) = &self.signer else {
            return Ok(());
        };
        if self.rec.unsealed() {
            self.rec.seal(s, &s.key().uri.to_string())?;
        }
        if let Some(dir) = self.rec.dir() {
            super::anchor::sealed(
                self.session,
                crate::x509::signer::CaSigner::public_key(s),
                dir,
                self.head_version + 1,
                open,
            )?;
            self.head_version += 1;
            self.head_open = open;
        }
        Ok(())
    }
}

fn no_key() -> Error {
    Error::invalid(
        "the CA key is not available to sign",
        "generate it in an earlier step or name an existing key",
    )
}
