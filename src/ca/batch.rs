//! Signing checked CSRs as a pipeline of three threads, so that the token never waits for the
//! host's work and the host's work never waits for the token:
//!
//! 1. a reader reads each request again, checks it still hashes to what was checked, picks its
//!    serial and builds its TBS (no token call);
//! 2. the calling thread, which owns the token session, signs each TBS; with
//!    [`Batch::sessions`] above one, it and `sessions - 1` more threads each sign on a session
//!    of their own under the same login (a session belongs to one thread), taking the TBSs in
//!    request order;
//! 3. a writer assembles each certificate and verifies its signature and encoding with the
//!    CA's public key, records it (fsynced), keeps it and writes its outputs — in that order,
//!    per certificate, through [`super::issuance::deliver`] as one-by-one issuance does.
//!
//! Channels of two slots per session join them, and a window bounds how far the token may run
//! ahead of the writer: at most [`lead`] signatures beyond the last certificate written, at
//! every interleaving (a signing thread takes a permit before it takes a TBS; the writer
//! returns one per certificate written). The writer puts the signed certificates back
//! in request order, so records, kept copies and outputs follow it exactly as one-by-one
//! signing does. The first error anywhere stops the batch: what came before
//! it in request order is verified, recorded and written; the request that failed is recorded
//! as refused where a one-by-one loop records it; nothing after it is recorded or written (the
//! token may already have signed the next few TBSs, whose certificates are dropped unseen). The
//! output directories are fsynced once, when the batch ends, and `certs/` not at all (every
//! file is whole and fsynced before it is linked into place, and its record is durable
//! before that; the record holds the whole certificate, so one whose kept copy a crash lost is
//! still listed, shown and exported from the log, and the next signing command keeps it again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Condvar, Mutex};

use x509_cert::Certificate;
use x509_cert::name::Name;

use super::issuance::{Certify, Delivery, LintCopy, Order, deliver, prepare};
use super::recorder::{BatchRecorder, Recorder};
use super::signer::TokenSigner;
use super::store::TakenSerials;
use super::{CaKeys, CheckedCsr};
use crate::error::{Error, MAX_CSR, Result, read_limited};
use crate::output::{DirSyncs, Overwrite};
use crate::x509::csr::Csr;
use crate::x509::issue::PreparedCert;
use crate::x509::profile::Profile;
use crate::x509::serial::{Serials, random_serial_where};
use crate::x509::signer::{CaSigner, PublicHalf};
use crate::x509::validity::ValidityPeriod;

/// A batch of checked requests to sign under one issuer, profile and validity.
pub struct Batch<'a> {
    /// The issuer's certificate (its key is the signer's).
    pub issuer: &'a Certificate,
    /// The profile of every certificate.
    pub profile: &'a Profile,
    /// A subject replacing the request's (single requests only).
    pub subject: Option<&'a Name>,
    /// The validity of every certificate.
    pub validity: ValidityPeriod,
    /// The i-th request's file.
    pub request: &'a (dyn Fn(usize) -> PathBuf + Sync),
    /// SHA-256 of each request's bytes as checked ([`CheckedCsr::check`]); one per request.
    pub checked: &'a [[u8; 32]],
    /// The i-th certificate's file.
    pub out: &'a (dyn Fn(usize) -> PathBuf + Sync),
    /// The chain's file (single requests only).
    pub chain_out: Option<&'a Path>,
    /// Whether existing outputs may be replaced.
    pub overwrite: Overwrite,
    /// Token sessions signing at once (at least one; batches of more than one request).
    pub sessions: usize,
}

impl Batch<'_> {
    /// The order of one request of the batch.
    fn order<'c>(&'c self, csr: &'c CheckedCsr) -> Order<'c> {
        Order {
            certify: Certify::Request(csr),
            profile: self.profile.clone(),
            subject: self.subject.cloned(),
            validity: self.validity,
            extras: Default::default(),
            command: "sign",
        }
    }
}

/// A request whose TBS is built, on its way to the token.
struct Prepared {
    index: usize,
    csr: CheckedCsr,
    cert: PreparedCert,
}

/// Why the batch stopped at a request: the error, and the request's bytes when a one-by-one
/// loop records the failure as a refusal.
struct Failure {
    refused: Option<Vec<u8>>,
    err: Error,
}

type Step<T> = std::result::Result<T, Box<Failure>>;

/// Signs every request of `batch` in order with `signer`, recording through `rec`; `done` is
/// called on the writer thread with each certificate once it is recorded and written. Returns
/// how many were issued.
pub fn sign_batch(
    signer: &TokenSigner<'_, '_>,
    rec: &mut Recorder,
    batch: &Batch<'_>,
    done: &mut (dyn FnMut(usize, &Path, &Certificate) + Send),
) -> Result<usize> {
    let key_uri = signer.key().uri.to_string();
    let public = PublicHalf::of(signer);
    let stop = AtomicBool::new(false);
    let (taken, mut writer_rec) = rec.split();
    if batch.checked.len() == 1 {
        // One request: the same steps on this thread (threads would only add hand-offs).
        let mut issued = Serials::new();
        let step = prepare_one(batch, &public, taken, &mut issued, 0, &batch.checked[0])
            .and_then(|p| sign_one(signer, p));
        let result = write_synced(
            batch,
            &public,
            &key_uri,
            &mut writer_rec,
            std::iter::once(step),
            done,
        );
        rec.add_serials(issued);
        return result;
    }
    // Two slots per signing session absorb the jitter of a busy machine; the window keeps the
    // signatures made ahead of the writer (dropped unseen if it stops) to `lead(sessions)`.
    let slots = 2 * batch.sessions.max(1);
    let window = Window::new(lead(batch.sessions));
    let (to_token, from_reader) = sync_channel::<(usize, Step<Prepared>)>(slots);
    let (to_writer, from_token) = sync_channel::<Signed>(slots);
    // Emptied when the signing ends, which closes the reader's channel and stops it.
    let from_reader = Mutex::new(Some(from_reader));
    let (issued, result) = std::thread::scope(|scope| -> Result<_> {
        let reader = std::thread::Builder::new()
            .name("sign-reader".into())
            .spawn_scoped(scope, || {
                read_and_prepare(batch, &public, taken, &stop, to_token)
            })
            .map_err(thread_error)?;
        let writer = std::thread::Builder::new()
            .name("sign-writer".into())
            .spawn_scoped(scope, || {
                let result = write_synced(
                    batch,
                    &public,
                    &key_uri,
                    &mut writer_rec,
                    InOrder::new(from_token),
                    &mut |i, out, cert| {
                        done(i, out, cert);
                        window.leave();
                    },
                );
                if result.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                window.close();
                result
            });
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                // The reader stops when its channel closes; nothing was signed.
                window.close();
                close(&from_reader);
                let _ = reader.join();
                return Err(thread_error(e));
            }
        };
        let shared = Shared {
            stop: &stop,
            window: &window,
            from_reader: &from_reader,
        };
        let signers = spawn_signers(scope, signer, batch.sessions, shared, &to_writer);
        sign_taken(signer, shared, &to_writer);
        drop(to_writer);
        for s in signers {
            s.join().expect("a batch signing thread panicked");
        }
        close(&from_reader);
        let issued = reader.join().expect("the batch's reader thread panicked");
        let result = writer.join().expect("the batch's writer thread panicked");
        Ok((issued, result))
    })?;
    rec.add_serials(issued);
    let total = batch.checked.len();
    match result {
        // Every path that stops early reports an error; a short count would be a bug here.
        Ok(n) if n != total => Err(Error::internal(format!(
            "the batch ended after {n} of {total} certificates without an error (the \
             certificates listed were recorded and written)"
        ))),
        other => other,
    }
}

/// Starts `sessions - 1` threads that sign beside the calling thread, each on a sibling
/// session of `signer`'s. A session the token refuses leaves the batch with fewer (noted).
fn spawn_signers<'scope, 'env: 'scope, 'm: 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    signer: &TokenSigner<'_, 'm>,
    sessions: usize,
    shared: Shared<'env>,
    to_writer: &SyncSender<Signed>,
) -> Vec<std::thread::ScopedJoinHandle<'scope, ()>> {
    let mut threads = Vec::new();
    for _ in 1..sessions {
        let sibling = match signer.session().sibling() {
            Ok(s) => s,
            Err(e) => {
                crate::notice::note(format!(
                    "signing on {} session(s): the token refused another one ({e})",
                    threads.len() + 1
                ));
                break;
            }
        };
        let parts = signer.parts();
        let to_writer = to_writer.clone();
        let spawned = std::thread::Builder::new()
            .name("sign-session".into())
            .spawn_scoped(scope, move || {
                let signer = parts.on(&sibling);
                sign_taken(&signer, shared, &to_writer);
            });
        match spawned {
            Ok(t) => threads.push(t),
            // The session closes with the closure; fewer threads sign the same requests.
            Err(_) => break,
        }
    }
    threads
}

/// [`write_all`], then an fsync of the directories written into, also after an error (what
/// was written before it is made durable too); the first error wins.
fn write_synced(
    batch: &Batch<'_>,
    public: &PublicHalf,
    key_uri: &str,
    rec: &mut BatchRecorder<'_>,
    from_token: impl IntoIterator<Item = Step<(Prepared, Vec<u8>)>>,
    done: &mut (dyn FnMut(usize, &Path, &Certificate) + Send),
) -> Result<usize> {
    let mut dirs = DirSyncs::new();
    let result = write_all(batch, public, key_uri, rec, &mut dirs, from_token, done);
    let synced = dirs.sync().map_err(Error::from);
    result.and_then(|n| synced.map(|()| n))
}

/// One C_Sign of a prepared TBS; a failure is recorded as a refusal of its request.
fn sign_one(signer: &TokenSigner<'_, '_>, p: Prepared) -> Step<(Prepared, Vec<u8>)> {
    match signer.sign(p.cert.tbs_der()) {
        Ok(signature) => Ok((p, signature)),
        Err(err) => Err(Box::new(Failure {
            refused: Some(p.csr.csr().der().to_vec()),
            err: err.into(),
        })),
    }
}

fn thread_error(e: std::io::Error) -> Error {
    Error::invalid(
        format!("cannot start a thread: {e}"),
        "nothing was signed; check the process limits (ulimit -u) and run the command again",
    )
}

/// What the signing threads share: the writer's stop flag, the window and the reader's
/// channel.
#[derive(Clone, Copy)]
struct Shared<'a> {
    stop: &'a AtomicBool,
    window: &'a Window,
    from_reader: &'a FromReader,
}

/// One signing thread: takes a permit of the window, then the next prepared TBS (request
/// order), and signs it; until the reader is done, a step fails or the writer stops the batch.
/// Permits come before TBSs, so the TBS the writer waits for is always held by a thread with
/// a permit: the window cannot stall the batch.
fn sign_taken(signer: &TokenSigner<'_, '_>, shared: Shared<'_>, to_writer: &SyncSender<Signed>) {
    let Shared {
        stop,
        window,
        from_reader,
    } = shared;
    loop {
        if !window.enter() {
            return;
        }
        let next = match from_reader.lock().as_deref() {
            Ok(Some(rx)) => rx.recv().ok(),
            _ => None,
        };
        let Some((pos, step)) = next else {
            return;
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let step = step.and_then(|p| sign_one(signer, p));
        let last = step.is_err();
        if to_writer.send((pos, step)).is_err() || last {
            return;
        }
    }
}

/// How many signatures the token may make beyond the last certificate written, with
/// `sessions` signing: one in each session's hands and two in the channel per session, and
/// one the writer is working on.
pub const fn lead(sessions: usize) -> usize {
    3 * sessions + 1
}

/// Permits to sign, [`lead`] of them: a signing thread takes one before each TBS, the writer
/// gives one back per certificate written. Closed when the writer ends, which wakes every
/// thread waiting for a permit.
struct Window {
    /// Permits taken and not given back, and whether the window is closed.
    state: Mutex<(usize, bool)>,
    room: Condvar,
    size: usize,
}

impl Window {
    fn new(size: usize) -> Self {
        Window {
            state: Mutex::new((0, false)),
            room: Condvar::new(),
            size,
        }
    }

    /// Waits for a permit; false once the window is closed (the batch is ending).
    fn enter(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        while state.0 >= self.size && !state.1 {
            state = match self.room.wait(state) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        if state.1 {
            return false;
        }
        state.0 += 1;
        true
    }

    /// One certificate written: its permit comes back.
    fn leave(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.0 = state.0.saturating_sub(1);
            self.room.notify_one();
        }
    }

    /// No more permits: the waiting threads return.
    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.1 = true;
            self.room.notify_all();
        }
    }
}

/// A signed TBS (or why not) on its way to the writer, with its place in request order.
type Signed = (usize, Step<(Prepared, Vec<u8>)>);

/// The prepared TBSs, shared by the signing threads; `None` once signing has ended.
type FromReader = Mutex<Option<Receiver<(usize, Step<Prepared>)>>>;

/// Drops the reader's receiver, so that its next send fails and it stops.
fn close(from_reader: &FromReader) {
    if let Ok(mut rx) = from_reader.lock() {
        *rx = None;
    }
}

/// The signed steps back in request order: several sessions finish out of order.
struct InOrder<T> {
    from: Receiver<(usize, T)>,
    waiting: BTreeMap<usize, T>,
    next: usize,
}

impl<T> InOrder<T> {
    fn new(from: Receiver<(usize, T)>) -> Self {
        InOrder {
            from,
            waiting: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<T> Iterator for InOrder<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.waiting.remove(&self.next) {
                self.next += 1;
                return Some(item);
            }
            let (pos, item) = self.from.recv().ok()?;
            self.waiting.insert(pos, item);
        }
    }
}

/// The reader thread: each request read again, re-checked against its hash, given a serial
/// no certificate of this CA has and its TBS built. Returns the serials it gave out.
fn read_and_prepare(
    batch: &Batch<'_>,
    public: &PublicHalf,
    taken: TakenSerials<'_>,
    stop: &AtomicBool,
    to_token: SyncSender<(usize, Step<Prepared>)>,
) -> Serials {
    let mut issued = Serials::new();
    for (index, sha) in batch.checked.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let step = prepare_one(batch, public, taken, &mut issued, index, sha);
        let last = step.is_err();
        if to_token.send((index, step)).is_err() || last {
            break;
        }
    }
    issued
}

fn prepare_one(
    batch: &Batch<'_>,
    public: &PublicHalf,
    taken: TakenSerials<'_>,
    issued: &mut Serials,
    index: usize,
    sha: &[u8; 32],
) -> Step<Prepared> {
    let plain = |err| Box::new(Failure { refused: None, err });
    let path = (batch.request)(index);
    let csr = Csr::parse(&read_limited(&path, MAX_CSR).map_err(plain)?)
        .map_err(|e| plain(Error::from(e)))?;
    let csr = CheckedCsr::recheck(csr, sha).map_err(|e| plain(about(&path, e)))?;
    let refused = |err: Error| {
        Box::new(Failure {
            refused: Some(csr.csr().der().to_vec()),
            err,
        })
    };
    let serial = random_serial_where(|s| !taken.contains(s) && !issued.contains(s))
        .map_err(|e| refused(e.into()))?;
    issued.insert(serial.as_bytes());
    // The lint before the token signs reads a structural copy: the token's signature is the
    // only part it lacks, and the writer verifies that one.
    let cert = prepare(
        &batch.order(&csr),
        public,
        Some(batch.issuer),
        serial,
        LintCopy::Structural,
    )
    .map_err(refused)?;
    Ok(Prepared { index, csr, cert })
}

/// The writer thread (or the calling thread, for one request): per certificate, verify,
/// record, keep, write, report.
fn write_all(
    batch: &Batch<'_>,
    public: &PublicHalf,
    key_uri: &str,
    rec: &mut BatchRecorder<'_>,
    dirs: &mut DirSyncs,
    from_token: impl IntoIterator<Item = Step<(Prepared, Vec<u8>)>>,
    done: &mut (dyn FnMut(usize, &Path, &Certificate) + Send),
) -> Result<usize> {
    let mut count = 0;
    for step in from_token {
        let (p, signature) = match step {
            Ok(signed) => signed,
            Err(failure) => {
                let Failure { refused, err } = *failure;
                return Err(match refused {
                    Some(der) => rec.refuse("sign", Some(&der), err),
                    None => err,
                });
            }
        };
        let csr = p.csr.csr();
        let cert = p
            .cert
            .finish(&signature, public.public_key())
            .map_err(|e| rec.refuse("sign", Some(csr.der()), e))?;
        let out = (batch.out)(p.index);
        let delivery = Delivery {
            out: &out,
            chain_out: batch.chain_out,
            overwrite: batch.overwrite,
        };
        deliver(
            rec,
            &batch.order(&p.csr),
            &cert,
            Some(batch.issuer),
            key_uri,
            &delivery,
            &mut |path, bytes, ow| Ok(dirs.write(path, bytes, 0o644, ow)?),
        )?;
        done(p.index, &out, &cert);
        count += 1;
    }
    Ok(count)
}

/// Why the check of a request failed: its index, its bytes when the failure is recorded as a
/// refusal, and the error.
type CheckFailure = (usize, Option<Vec<u8>>, Error);

/// A request as checked: the SHA-256 of its bytes, of its SPKI and of its subject (fixed size:
/// a batch's memory grows by these 96 bytes per request).
#[derive(Default, Clone)]
struct Checked {
    sha256: [u8; 32],
    spki: [u8; 32],
    subject: [u8; 32],
}

/// Checks the requests `first..first + part.len()` (self-signature, key; the CA keys come
/// after, for all at once) and fills in what was checked; stops at the first failure.
/// Returns the notes to print, with their request.
fn check_part(
    request: &(dyn Fn(usize) -> PathBuf + Sync),
    first: usize,
    part: &mut [Checked],
) -> (Vec<(usize, String)>, Option<CheckFailure>) {
    let mut notes = Vec::new();
    let no_keys = CaKeys::default();
    for (k, checked) in part.iter_mut().enumerate() {
        let i = first + k;
        let path = request(i);
        let bytes = match read_limited(&path, MAX_CSR) {
            Ok(b) => b,
            Err(e) => return (notes, Some((i, None, e))),
        };
        let csr = match Csr::parse(&bytes)
            .map_err(Error::from)
            .and_then(|csr| CheckedCsr::check(csr, &no_keys))
        {
            Ok(c) => c,
            Err(e) => return (notes, Some((i, Some(bytes), about(&path, e)))),
        };
        match csr.csr().requested_extensions() {
            Ok(ignored) if !ignored.is_empty() => {
                let oids: Vec<String> = ignored.iter().map(|e| e.extn_id.to_string()).collect();
                notes.push((
                    i,
                    format!(
                        "{} asks for extensions the profile decides itself; ignored: {}",
                        path.display(),
                        oids.join(", ")
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => return (notes, Some((i, None, e.into()))),
        }
        *checked = Checked {
            sha256: csr.csr().sha256(),
            spki: crate::x509::algorithm::spki_sha256(csr.csr().spki()),
            subject: super::ca_keys::subject_sha256(&csr.csr().subject().to_string()),
        };
    }
    (notes, None)
}

/// Checks the `n` requests (the i-th in file `request(i)`) before the token is touched: each
/// one's self-signature and key ([`CheckedCsr::check`]), on up to four threads, with the
/// messages and the refusal (recorded) a one-by-one check in request order gives. Returns the
/// SHA-256 of each request as checked, for [`Batch::checked`].
pub fn check_requests(
    n: usize,
    request: &(dyn Fn(usize) -> PathBuf + Sync),
    rec: &mut Recorder,
) -> Result<Vec<[u8; 32]>> {
    let mut checked = vec![Checked::default(); n];
    let threads = if n < 16 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |c| c.get().min(4))
    };
    let chunk = n.div_ceil(threads);
    let results: Vec<_> = if threads == 1 {
        vec![check_part(request, 0, &mut checked)]
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = checked
                .chunks_mut(chunk)
                .enumerate()
                .map(|(c, part)| {
                    std::thread::Builder::new()
                        .name("sign-check".into())
                        .spawn_scoped(scope, move || check_part(request, c * chunk, part))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| match w {
                    Ok(w) => w.join().map_err(|_| {
                        Error::internal("a request-checking thread panicked; nothing was signed")
                    }),
                    Err(e) => Err(Error::invalid(
                        format!("cannot start a thread: {e}"),
                        "nothing was signed; check the process limits (ulimit -u) and run the command again",
                    )),
                })
                .collect::<Result<Vec<_>>>()
        })?
    };
    let mut failure: Option<CheckFailure> = None;
    let mut notes = Vec::new();
    for (part_notes, part_failure) in results {
        notes.extend(part_notes);
        if failure.is_none() {
            failure = part_failure;
        }
    }
    let mut stop = failure.as_ref().map_or(n, |f| f.0);
    // The CA keys, for every request checked so far at once (one pass over the CA-key index).
    let wanted = checked[..stop].iter().map(|c| c.spki).collect();
    let ca_keys = rec.ca_keys(&wanted)?;
    if let Some((i, refusal)) = checked[..stop]
        .iter()
        .enumerate()
        .find_map(|(i, c)| Some((i, ca_keys.refusal_by_hash(&c.spki, &c.subject)?)))
    {
        let path = request(i);
        failure = Some((
            i,
            Some(read_limited(&path, MAX_CSR).unwrap_or_default()),
            about(&path, refusal),
        ));
        stop = i;
    }
    for (_, note) in notes.iter().filter(|(i, _)| *i < stop) {
        crate::notice::note(note);
    }
    match failure {
        None => Ok(checked.into_iter().map(|c| c.sha256).collect()),
        Some((_, Some(bytes), e)) => Err(rec.refuse("sign", Some(&bytes), e)),
        Some((_, None, e)) => Err(e),
    }
}

/// Prefixes an error's cause with the file it is about, keeping its hint.
pub fn about(path: &Path, e: Error) -> Error {
    let (cause, hint) = e.cause_and_hint();
    Error::invalid(
        format!("{}: {cause}", path.display()),
        hint.unwrap_or_else(|| "check that file".into()),
    )
}
