//! M-of-N backup of a CA key (issue 16): a 256-bit key-encryption key from the token's RNG,
//! split into custodians' shares (Shamir over GF(256), the `blahaj` crate), the CA key wrapped
//! under it into a file, and the restore onto another token. The PKCS#11 side is
//! `token::wrap`; this file holds the shares, the wrapped file and the order of the steps.

use std::path::Path;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use der::Encode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use super::audit::Event;
use super::recorder::Recorder;
use super::session::{CaToken, TokenRef, with_token};
use super::signer::{SignatureChoice, TokenSigner, material_from_spki, spki_from_material};
use super::{GeneratedKey, spki_sha256};
use crate::error::{Error, Result};
use crate::token::{KeySpec, Module, Pin, PinSource, TokenSession};
use crate::x509::signer::CaSigner;
use crate::x509::verify::verify_signature;

/// The length of the key-encryption key: AES-256.
const KEK_LEN: usize = 32;
/// The first line of a share, and what its checksum covers first.
const SHARE_TAG: &str = "hsmca-share-v1";
/// The wrapped file's format name.
const WRAPPED_FORMAT: &str = "hsmca-wrapped-key-v1";

/// M of N: how many custodians hold a share and how many must come together to restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Shares needed (M).
    pub needed: u8,
    /// Shares made (N).
    pub made: u8,
}

impl FromStr for Threshold {
    type Err = Error;

    fn from_str(s: &str) -> Result<Threshold> {
        let bad = |why: &str| {
            Error::invalid(
                format!("--backup \"{s}\" is not a usable M-of-N: {why}"),
                "write it as M-of-N with 2 <= M <= N <= 255, e.g. 3-of-5",
            )
        };
        let (m, n) = s.split_once("-of-").ok_or_else(|| bad("no \"-of-\""))?;
        let needed: u8 = m.parse().map_err(|_| bad("M is not a number up to 255"))?;
        let made: u8 = n.parse().map_err(|_| bad("N is not a number up to 255"))?;
        if needed < 2 {
            return Err(bad(
                "one share alone would be the key-encryption key itself",
            ));
        }
        if made < needed {
            return Err(bad("N is smaller than M: the key could never be restored"));
        }
        Ok(Threshold { needed, made })
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-of-{}", self.needed, self.made)
    }
}

/// One custodian's share: which key and backup it belongs to, M, N, its index, the share
/// itself and a checksum over all of that (a mistyped share is named before anything is tried).
pub struct Share {
    key: String,
    backup: String,
    threshold: Threshold,
    index: u8,
    y: Zeroizing<Vec<u8>>,
}

impl Share {
    /// The share's number (1 to N).
    pub fn index(&self) -> u8 {
        self.index
    }

    fn checksum(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "{SHARE_TAG}|{}|{}|{}|{}|",
            self.key, self.backup, self.threshold, self.index
        ));
        h.update(self.y.as_slice());
        hex::encode(&h.finalize()[..4])
    }

    /// The share as one line to write down or save: groups of 8 hex digits.
    pub fn to_text(&self) -> Zeroizing<String> {
        let hex = Zeroizing::new(hex::encode(self.y.as_slice()));
        let groups: Vec<&str> = hex
            .as_bytes()
            .chunks(8)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        Zeroizing::new(format!(
            "{SHARE_TAG} key={} backup={} {} #{} {} check={}",
            self.key,
            self.backup,
            self.threshold,
            self.index,
            groups.join(" "),
            self.checksum()
        ))
    }

    /// Reads a share as [`Share::to_text`] wrote it (spaces and line breaks are free).
    pub fn parse(text: &str, source: &str) -> Result<Share> {
        let bad = |why: String| {
            Error::invalid(
                format!("{source} is not a readable hsmca share: {why}"),
                "give the share exactly as it was printed: hsmca-share-v1 key=... backup=... M-of-N #I <hex groups> check=...",
            )
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let [tag, key, backup, threshold, index, rest @ ..] = words.as_slice() else {
            return Err(bad("too few fields".into()));
        };
        if *tag != SHARE_TAG {
            return Err(bad(format!("it starts with \"{tag}\", not {SHARE_TAG}")));
        }
        let field = |w: &str, name: &str| {
            w.strip_prefix(name)
                .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| bad(format!("\"{w}\" is not {name}<hex>")))
        };
        let key = field(key, "key=")?;
        let backup = field(backup, "backup=")?;
        let threshold: Threshold = threshold
            .parse()
            .map_err(|_| bad(format!("\"{threshold}\" is not M-of-N")))?;
        let index: u8 = index
            .strip_prefix('#')
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=threshold.made).contains(i))
            .ok_or_else(|| {
                bad(format!(
                    "\"{index}\" is not a share number #1 to #{}",
                    threshold.made
                ))
            })?;
        let Some((check, groups)) = rest.split_last() else {
            return Err(bad("no share digits".into()));
        };
        let check = field(check, "check=")?;
        let digits = Zeroizing::new(groups.concat());
        let y = Zeroizing::new(hex::decode(digits.as_bytes()).map_err(|_| {
            bad("the share digits are not hex (a digit mistyped or missing)".into())
        })?);
        let share = Share {
            key,
            backup,
            threshold,
            index,
            y,
        };
        if share.y.len() != KEK_LEN || share.checksum() != check {
            return Err(Error::invalid(
                format!(
                    "share #{index} from {source} does not match its checksum: a digit was mistyped, left out or changed"
                ),
                "compare the share with the custodian's copy digit by digit; nothing was tried with it",
            ));
        }
        Ok(share)
    }
}

/// The wrapped CA key as a file: useless without M of the N shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    /// The file format.
    format: String,
    /// CKA_LABEL of the key.
    pub label: String,
    /// CKA_ID, hex.
    pub id: String,
    /// The key algorithm (`ecdsa-p384`, ...).
    pub algorithm: String,
    /// SHA-256 of the public key's DER SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
    /// The public key, PEM.
    public_key: String,
    /// Shares needed.
    pub threshold: u8,
    /// Shares made.
    pub shares: u8,
    /// The backup's name: the first 4 bytes of SHA-256 of `wrapped`, hex.
    pub backup: String,
    /// How it was wrapped.
    mechanism: String,
    /// The wrapped private key, base64.
    wrapped: String,
}

impl WrappedKey {
    /// SHA-256 of the file's wrapped key, hex (the audit log's record of the backup).
    pub fn wrapped_sha256(&self) -> Result<String> {
        Ok(hex::encode(Sha256::digest(self.blob()?)))
    }

    fn blob(&self) -> Result<Vec<u8>> {
        B64.decode(&self.wrapped)
            .map_err(|_| self.changed("the wrapped key is not base64"))
    }

    fn changed(&self, why: &str) -> Error {
        Error::invalid(
            format!("the wrapped key file does not hold together: {why}"),
            "use the file exactly as 'key generate --backup-out' wrote it; it was changed or damaged",
        )
    }

    /// Reads and checks a wrapped key file: its public key against its hash, its wrapped key
    /// against the backup name every share carries.
    pub fn read(path: &Path) -> Result<WrappedKey> {
        let text = crate::error::read_file(path)?;
        let file: WrappedKey = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| toml::from_str(t).ok())
            .ok_or_else(|| {
                Error::invalid(
                    format!("{} is not an hsmca wrapped key file", path.display()),
                    "give the file 'hsmca key generate --backup-out' wrote",
                )
            })?;
        if file.format != WRAPPED_FORMAT {
            return Err(file.changed(&format!("its format is \"{}\"", file.format)));
        }
        let blob = file.blob()?;
        if hex::encode(&Sha256::digest(&blob)[..4]) != file.backup {
            return Err(file.changed("the wrapped key is not the one the backup name was made of"));
        }
        if hex::encode(spki_sha256(&file.spki()?)) != file.spki_sha256 {
            return Err(file.changed("the public key is not the one its hash names"));
        }
        Threshold::from_str(&format!("{}-of-{}", file.threshold, file.shares))
            .map_err(|_| file.changed("its M-of-N is impossible"))?;
        Ok(file)
    }

    /// The key's public key.
    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned> {
        use der::Decode;
        der::pem::decode_vec(self.public_key.as_bytes())
            .ok()
            .filter(|(label, _)| *label == "PUBLIC KEY")
            .and_then(|(_, der)| SubjectPublicKeyInfoOwned::from_der(&der).ok())
            .ok_or_else(|| self.changed("the public key does not decode"))
    }

    fn threshold(&self) -> Threshold {
        Threshold {
            needed: self.threshold,
            made: self.shares,
        }
    }

    /// The shares' `key=` field: the first 8 bytes of the SPKI hash.
    fn key_tag(&self) -> &str {
        self.spki_sha256.get(..16).unwrap_or_default()
    }
}

/// What `key generate --backup` hands the operator.
pub struct Backup {
    /// The wrapped key file's contents.
    pub wrapped: WrappedKey,
    /// One share per custodian.
    pub shares: Vec<Share>,
}

impl Backup {
    /// The wrapped key file as TOML.
    pub fn wrapped_text(&self) -> Result<String> {
        let body = toml::to_string(&self.wrapped)
            .map_err(|e| Error::internal(format!("the wrapped key file does not encode: {e}")))?;
        Ok(format!(
            "# hsmca wrapped CA key {} ({}): restore with 'hsmca key restore' and {} of the {} shares\n{body}",
            self.wrapped.label, self.wrapped.algorithm, self.wrapped.threshold, self.wrapped.shares
        ))
    }
}

/// Random bytes drawn from the token ahead, handed to the share dealer as its RNG. Running out
/// is recorded, not a panic, and refused after the split.
struct Drawn {
    bytes: Zeroizing<Vec<u8>>,
    at: usize,
    ran_out: bool,
}

impl rand_core::RngCore for Drawn {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match self.bytes.get(self.at..self.at + dest.len()) {
            Some(src) => {
                dest.copy_from_slice(src);
                self.at += dest.len();
            }
            None => self.ran_out = true,
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The key-encryption key and its N raw shares, all randomness from the token.
fn draw_and_split(
    session: &TokenSession<'_>,
    t: Threshold,
) -> Result<(Zeroizing<Vec<u8>>, Vec<blahaj::Share>)> {
    let kek = session.random(KEK_LEN)?;
    // The dealer takes one u32 per coefficient: M-1 coefficients for each of the 32 bytes.
    let mut rng = Drawn {
        bytes: session.random(KEK_LEN * 4 * usize::from(t.needed))?,
        at: 0,
        ran_out: false,
    };
    let shares: Vec<blahaj::Share> = blahaj::Sharks(t.needed)
        .dealer_rng(&kek, &mut rng)
        .take(usize::from(t.made))
        .collect();
    if rng.ran_out || shares.len() != usize::from(t.made) {
        return Err(Error::internal(
            "the share dealer needed more random bytes than were drawn from the token",
        ));
    }
    // The shares must give the key back before the key is used: any M of them.
    let back = blahaj::Sharks(t.needed)
        .recover(&shares[..usize::from(t.needed)])
        .map_err(|e| Error::internal(format!("the shares do not recombine: {e}")))?;
    if back.as_slice() != kek.as_slice() {
        return Err(Error::internal("the shares recombine to another key"));
    }
    Ok((kek, shares))
}

/// The security officer's part, in a session of its own before the user logs in: checks the
/// token can wrap, destroys a key-encryption key a crash left, and creates this run's as a
/// trusted token object. `make` gives the key's value and returns what the caller keeps.
fn as_security_officer<T>(
    token: &TokenRef<'_>,
    so_pin: &PinSource,
    make: impl FnOnce(&TokenSession<'_>) -> Result<(Zeroizing<Vec<u8>>, T)>,
) -> Result<T> {
    let module = Module::load(token.module)?;
    let session = TokenSession::open(&module, &token.selector, true)?;
    session.check_backup_support()?;
    let (kek, out) = make(&session)?;
    let pin = Pin::read(
        so_pin,
        &format!("SO PIN for token \"{}\": ", session.label()),
    )?;
    session.create_trusted_kek(&pin, &kek)?;
    Ok(out)
}

/// Destroys the key-encryption key from a public session: the user's part failed (a wrong
/// PIN, a refused key) and no trusted wrapping key may stay on the token.
fn clean_up(token: &TokenRef<'_>) {
    let destroyed = Module::load(token.module).and_then(|module| {
        let session = TokenSession::open(&module, &token.selector, true)?;
        session.destroy_keks()
    });
    if destroyed.is_err() {
        crate::notice::warning(
            "the backup's key-encryption key may still be on the token: the next 'key generate --backup' or 'key restore' destroys it",
        );
    }
}

/// `key generate --backup`: the SO creates the trusted key-encryption key, the user generates
/// the CA key in backup form, wraps it, destroys the key-encryption key and records the
/// backup. Returns the key (self-tested), the wrapped file and the shares.
#[allow(clippy::too_many_arguments)]
pub fn generate_with_backup(
    token: &TokenRef<'_>,
    so_pin: &PinSource,
    pin: &PinSource,
    rec: &mut Recorder,
    spec: KeySpec,
    label: &str,
    id: &[u8],
    t: Threshold,
) -> Result<(GeneratedKey, Backup)> {
    let raw_shares = as_security_officer(token, so_pin, |s| draw_and_split(s, t))?;
    let result = with_token(token, true, pin, rec, |ca| {
        let generated = ca.generate_backed_up_key(spec, &spec.name(), label, id)?;
        let blob = ca.session().wrap_under_kek(&generated.key)?;
        ca.session().destroy_keks()?;
        let spki_der = generated
            .spki
            .to_der()
            .map_err(|e| Error::internal(format!("public key encoding: {e}")))?;
        let public_key = crate::x509::decode::to_pem("PUBLIC KEY", &spki_der)?;
        let spki_hex = hex::encode(generated.spki_sha256);
        let wrapped = WrappedKey {
            format: WRAPPED_FORMAT.into(),
            label: label.into(),
            id: hex::encode(id),
            algorithm: spec.name(),
            spki_sha256: spki_hex.clone(),
            public_key,
            threshold: t.needed,
            shares: t.made,
            backup: hex::encode(&Sha256::digest(&blob)[..4]),
            mechanism: "CKM_AES_KEY_WRAP_PAD".into(),
            wrapped: B64.encode(&blob),
        };
        ca.record(Event::KeyBackedUp {
            key_uri: generated.key.uri.to_string(),
            spki_sha256: spki_hex,
            wrapped_sha256: wrapped.wrapped_sha256()?,
            threshold: t.needed,
            shares: t.made,
        })?;
        Ok((generated, wrapped))
    });
    let (generated, wrapped) = result.inspect_err(|_| clean_up(token))?;
    let shares = raw_shares
        .iter()
        .map(|s| {
            let bytes = Zeroizing::new(Vec::<u8>::from(s));
            let (x, y) = bytes.split_first().unwrap_or((&0, &[]));
            Share {
                key: wrapped.key_tag().to_string(),
                backup: wrapped.backup.clone(),
                threshold: t,
                index: *x,
                y: Zeroizing::new(y.to_vec()),
            }
        })
        .collect();
    Ok((generated, Backup { wrapped, shares }))
}

/// Checks `shares` against the wrapped file and each other, and recombines M of them.
fn recombine(wrapped: &WrappedKey, shares: &[Share]) -> Result<Zeroizing<Vec<u8>>> {
    let t = wrapped.threshold();
    let mut seen = std::collections::BTreeSet::new();
    for s in shares {
        if s.key != wrapped.key_tag() || s.backup != wrapped.backup {
            return Err(Error::invalid(
                format!(
                    "share #{} belongs to another backup (key={} backup={}, the file's are key={} backup={})",
                    s.index,
                    s.key,
                    s.backup,
                    wrapped.key_tag(),
                    wrapped.backup
                ),
                "give the shares made with this wrapped key file; nothing was created on the token",
            ));
        }
        if s.threshold != t {
            return Err(Error::invalid(
                format!(
                    "share #{} says {}, the wrapped file {t}",
                    s.index, s.threshold
                ),
                "give the shares made with this wrapped key file; nothing was created on the token",
            ));
        }
        seen.insert(s.index);
    }
    if seen.len() < usize::from(t.needed) {
        return Err(Error::invalid(
            format!(
                "{} different share(s) given; this backup ({t}) needs {}",
                seen.len(),
                t.needed
            ),
            "bring more custodians' shares (each --share once); nothing was created on the token",
        ));
    }
    let raw: Vec<blahaj::Share> = shares
        .iter()
        .filter_map(|s| {
            let mut bytes = Zeroizing::new(vec![s.index]);
            bytes.extend_from_slice(&s.y);
            blahaj::Share::try_from(bytes.as_slice()).ok()
        })
        .collect();
    blahaj::Sharks(t.needed)
        .recover(&raw)
        .map(Zeroizing::new)
        .map_err(|e| Error::internal(format!("the shares do not recombine: {e}")))
}

/// `key restore`: recombines the shares, has the SO create the trusted key-encryption key on
/// the new token, unwraps the CA key in backup form, destroys the key-encryption key, checks
/// the restored key (its public key is the recorded one, a test signature verifies) and
/// records the restore. Any failure leaves nothing on the token.
pub fn restore(
    token: &TokenRef<'_>,
    so_pin: &PinSource,
    pin: &PinSource,
    rec: &mut Recorder,
    wrapped: &WrappedKey,
    shares: &[Share],
) -> Result<String> {
    let kek = recombine(wrapped, shares)?;
    let spki = wrapped.spki()?;
    let public = material_from_spki(&spki)?;
    let id = hex::decode(&wrapped.id).map_err(|_| wrapped.changed("its id is not hex"))?;
    let blob = wrapped.blob()?;
    as_security_officer(token, so_pin, |session| {
        if session.find_key_pair_objects(&wrapped.label, &id)? {
            return Err(crate::token::TokenError::KeyExists {
                what: format!("label \"{}\" or id {}", wrapped.label, wrapped.id),
            }
            .into());
        }
        Ok((Zeroizing::new(kek.to_vec()), ()))
    })?;
    let result = with_token(token, true, pin, rec, |ca| {
        let unwrapped = ca
            .session()
            .unwrap_under_kek(&blob, &public, &wrapped.label, &id);
        ca.session().destroy_keks()?;
        unwrapped.map_err(|e| {
            Error::invalid(
                format!("the token could not unwrap the key with the recombined shares: {e}"),
                "the shares or the wrapped file do not belong together (or were changed); nothing was left on the token",
            )
        })?;
        let checked = check_restored(ca, wrapped, &id, &spki);
        if let Err(e) = checked {
            ca.session().destroy_key_pair(&wrapped.label, &id)?;
            return Err(e);
        }
        let uri = checked?;
        ca.record(Event::KeyRestored {
            key_uri: uri.clone(),
            spki_sha256: wrapped.spki_sha256.clone(),
            wrapped_sha256: wrapped.wrapped_sha256()?,
            token: ca.session().label().to_string(),
        })?;
        Ok(uri)
    });
    result.inspect_err(|_| clean_up(token))
}

/// The restored key under the CA key policy (backup form), its public key the recorded one,
/// and a test signature that verifies with it. Returns its URI.
fn check_restored(
    ca: &CaToken<'_, '_, '_>,
    wrapped: &WrappedKey,
    id: &[u8],
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<String> {
    let uri = crate::token::Pkcs11Uri {
        token: Some(ca.session().label().to_string()),
        object: Some(wrapped.label.clone()),
        id: Some(id.to_vec()),
        object_type: Some("private".into()),
        ..Default::default()
    };
    let key = ca.session().open_key(&uri)?;
    if &spki_from_material(&key.public)? != spki {
        return Err(Error::invalid(
            "the restored key's public key is not the recorded one",
            "the wrapped file was changed; nothing was left on the token",
        ));
    }
    let signer = TokenSigner::new(ca.session(), key.clone(), SignatureChoice::default())?;
    let message = b"hsmca key restore self-test";
    let signature = signer.sign(message)?;
    let alg = signer.signature_algorithm().algorithm_identifier();
    verify_signature(spki, &alg, message, &signature).map_err(|e| {
        Error::invalid(
            format!("the restored key's test signature does not verify: {e}"),
            "the unwrapped key is not the backed-up key; nothing was left on the token",
        )
    })?;
    Ok(key.uri.to_string())
}
