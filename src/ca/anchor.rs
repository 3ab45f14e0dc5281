//! The log's head, anchored on the token. A seal proves that no sealed record was changed, but
//! not that the log was not cut back to an earlier seal, swapped for another CA directory's,
//! or extended with records no command wrote. So at each seal the token also keeps the head:
//! which log (the hash of its first record), the last sealed record and its hash, the last CRL
//! number, and whether a command is under way. It lives in a private data object named after
//! the CA key, which only a logged-in user can read or change; someone with write access to
//! the CA directory but not the PIN cannot move it.
//!
//! Records after the anchored seal are a command's that stopped before its seal (the head says
//! `open`); without that, only records that change nothing the CA issued or revoked (refusals,
//! failed logins, a removed unfinished append, a generated key) may follow it.

use serde::{Deserialize, Serialize};
use spki::SubjectPublicKeyInfoOwned;

use super::audit::{Entry, Event};
use super::store::{CaDir, Stamp};
use crate::error::{Error, Result};
use crate::token::TokenSession;
use crate::x509::algorithm::spki_sha256;

const FORMAT: &str = "hsmca-log-head-v1";

/// The log's head as the token keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    format: String,
    /// SHA-256 of the log's first record: which log this is.
    pub log: String,
    /// The last sealed record.
    pub seq: u64,
    /// Its hash.
    pub chain: String,
    /// The highest CRL number issued.
    pub crl_number: u64,
    /// A command is under way: records after `seq` may be its, unsealed after a crash.
    pub open: bool,
    /// Counts the writes: of two objects a crash left, the higher is the head.
    version: u64,
    /// The CA directory's stamp when the last command ended: a command that finds the same
    /// one reads the log from its last seal on (heads from before it: the whole log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Stamp>,
}

/// The token object's label: one head per CA key.
fn label(ca_key: &SubjectPublicKeyInfoOwned) -> String {
    format!("hsmca log head {}", &hex::encode(spki_sha256(ca_key))[..32])
}

fn tampered(dir: &CaDir, why: String) -> Error {
    Error::invalid(
        format!(
            "the CA directory {} does not match the log head its CA key keeps on the token: {why}",
            dir.path().display()
        ),
        "do not sign anything until the CA directory is examined: restore it from a backup that includes every record up to the head, or find out who changed it",
    )
}

/// Reads the head the token keeps for `ca_key`, if any (of two a crash left, the newer).
pub fn read(
    session: &TokenSession<'_>,
    ca_key: &SubjectPublicKeyInfoOwned,
) -> Result<Option<Head>> {
    let mut newest: Option<Head> = None;
    for bytes in session.read_data(&label(ca_key))? {
        let head: Head = serde_json::from_slice(&bytes)
            .ok()
            .filter(|h: &Head| h.format == FORMAT)
            .ok_or_else(|| {
                Error::invalid(
                    "the log head on the token does not decode",
                    "the token object \"hsmca log head\" was changed by another tool; investigate before signing",
                )
            })?;
        if newest.as_ref().is_none_or(|n| head.version > n.version) {
            newest = Some(head);
        }
    }
    Ok(newest)
}

/// Whether an event changes what the CA issued or revoked. A generated key is not among them:
/// `key generate` may know no CA key to seal with, and the key is checked on the token
/// whenever it is used.
fn changes_state(event: &Event) -> bool {
    !matches!(
        event,
        Event::RequestRefused { .. }
            | Event::LoginFailed { .. }
            | Event::InterruptedAppendRemoved { .. }
            | Event::KeyGenerated { .. }
    )
}

/// Checks the CA directory's log against the token's head (without one there is nothing to
/// check: see [`adopt`]).
pub fn check(dir: &CaDir, head: Option<&Head>) -> Result<()> {
    let Some(head) = head else {
        return Ok(());
    };
    if dir.log_id() != Some(head.log.as_str()) {
        return Err(tampered(
            dir,
            if dir.log_id().is_none() {
                "the audit log is empty or missing, and the token's head names a log of this key"
                    .into()
            } else {
                "it holds another log than the one this key sealed (the first record differs)"
                    .into()
            },
        ));
    }
    let Some(anchored) = dir.entry(head.seq) else {
        return Err(tampered(
            dir,
            format!(
                "the log ends at record {}, but the token's head is record {} (records were cut off)",
                dir.last_seq(),
                head.seq
            ),
        ));
    };
    if anchored.hash != head.chain {
        return Err(tampered(
            dir,
            format!(
                "record {} is not the one the token's head names (the log was rewritten)",
                head.seq
            ),
        ));
    }
    if dir.crl_number() < head.crl_number {
        return Err(tampered(
            dir,
            format!(
                "the log's last CRL number is {}, the token's head says {}",
                dir.crl_number(),
                head.crl_number
            ),
        ));
    }
    if !head.open
        && let Some(e) = dir
            .entries_after(head.seq)
            .iter()
            .find(|e| changes_state(&e.record.event))
    {
        return Err(tampered(
            dir,
            format!(
                "record {} ({}) follows the last sealed record {} although no command was under way (records were added)",
                e.record.seq,
                event_name(&e.record.event),
                head.seq
            ),
        ));
    }
    Ok(())
}

/// The event's name as the log writes it.
fn event_name(event: &Event) -> String {
    serde_json::to_value(event)
        .ok()
        .and_then(|v| v["event"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Marks a command under way (records may follow the head unsealed if it stops); returns the
/// version written.
pub fn open(
    session: &TokenSession<'_>,
    ca_key: &SubjectPublicKeyInfoOwned,
    head: &Head,
) -> Result<u64> {
    // Written even when already open (a command before stopped): every command moves the head
    // the same way, so its calls are the same whatever came before.
    let open = Head {
        open: true,
        version: head.version + 1,
        ..head.clone()
    };
    write(session, ca_key, &open)?;
    Ok(open.version)
}

/// Stores the head after a seal: the directory's last record, as version `version` (one above
/// the head this command read or wrote), `open` while the command goes on (a ceremony between
/// steps), closed at its end. A failure is the seal's: what came before is signed, recorded and
/// written, and the head the token still holds is open, so the next command accepts the
/// records after it.
pub fn sealed(
    session: &TokenSession<'_>,
    ca_key: &SubjectPublicKeyInfoOwned,
    dir: &CaDir,
    version: u64,
    open: bool,
) -> Result<()> {
    let Some(log) = dir.log_id() else {
        return Ok(());
    };
    let files = dir.stamp_now();
    let head = Head {
        format: FORMAT.into(),
        log: log.to_string(),
        seq: dir.last_seq(),
        chain: dir.last_hash().to_string(),
        crl_number: dir.crl_number(),
        open,
        version,
        files: files.clone(),
    };
    write(session, ca_key, &head).map_err(|e| {
        let (cause, _) = e.cause_and_hint();
        Error::invalid(
            format!(
                "everything was signed, verified, recorded and written, but sealing the audit log failed: the token did not store the log's head ({cause})"
            ),
            "the outputs are valid and in the audit log; the next signing command seals it again (check the token first)",
        )
    })?;
    if let Some(files) = files {
        dir.keep_stamp(&files)?;
    }
    Ok(())
}

/// Stores the head of a log the token keeps none for yet, as of its last seal by this key
/// and open (the command goes on). A token that lost its head (reset, or a key restored on a
/// new token) thus takes the CA directory as it is: trust on first use, said to the operator.
/// Returns the version written (0: none, the log has no seal).
pub fn adopt(
    session: &TokenSession<'_>,
    ca_key: &SubjectPublicKeyInfoOwned,
    dir: &CaDir,
    last_seal: Option<&Entry>,
) -> Result<u64> {
    let (Some(log), Some(seal)) = (dir.log_id(), last_seal) else {
        return Ok(0);
    };
    let head = Head {
        format: FORMAT.into(),
        log: log.to_string(),
        seq: seal.record.seq,
        chain: seal.hash.clone(),
        crl_number: dir.crl_number_at(seal.record.seq),
        open: true,
        version: 1,
        files: None,
    };
    write(session, ca_key, &head)?;
    Ok(1)
}

fn write(
    session: &TokenSession<'_>,
    ca_key: &SubjectPublicKeyInfoOwned,
    head: &Head,
) -> Result<()> {
    let bytes =
        serde_json::to_vec(head).map_err(|e| Error::internal(format!("log head encoding: {e}")))?;
    Ok(session.replace_data(&label(ca_key), &bytes)?)
}
