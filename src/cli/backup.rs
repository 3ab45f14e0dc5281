//! `key generate --backup` and `key restore`: the M-of-N options, the SO PIN's source, the
//! shares read from files or asked for; the work is `ca::backup`'s.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::inputs::{overwrite, pin_source, selector};
use super::{GlobalArgs, KeyGenerateArgs, KeyRestoreArgs, SoPinArgs};
use crate::ca::backup::{Share, Threshold, WrappedKey, generate_with_backup, restore};
use crate::ca::recorder::Recorder;
use crate::ca::session::TokenRef;
use crate::ca::signer::key_spec;
use crate::error::{Error, Result, read_file};
use crate::output::{Overwrite, check_free, write_atomic};
use crate::token::PinSource;

/// The SO PIN: --so-pin-file, then HSMCA_SO_PIN, then the terminal.
fn so_pin_source(a: &SoPinArgs) -> PinSource {
    if let Some(p) = &a.so_pin_file {
        return PinSource::File(p.clone());
    }
    match std::env::var("HSMCA_SO_PIN") {
        Ok(v) => PinSource::Env(Zeroizing::new(v)),
        Err(_) => PinSource::Prompt,
    }
}

/// Where a backup goes, checked before the token is touched.
pub(super) struct BackupOutputs {
    threshold: Threshold,
    wrapped_out: PathBuf,
    shares_dir: Option<PathBuf>,
}

/// The backup options of `key generate`, checked: `None` without --backup.
pub(super) fn backup_outputs(a: &KeyGenerateArgs) -> Result<Option<BackupOutputs>> {
    let (Some(spec), Some(wrapped_out)) = (&a.backup, &a.backup_out) else {
        return Ok(None);
    };
    let threshold: Threshold = spec.parse()?;
    check_free(wrapped_out, overwrite(a.force))?;
    if let Some(dir) = &a.shares_out {
        let empty = match std::fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(source) => {
                return Err(Error::Read {
                    path: dir.clone(),
                    source,
                });
            }
        };
        if !empty {
            return Err(Error::invalid(
                format!("--shares-out {} is not empty", dir.display()),
                "give an empty (or new) directory: shares of two backups must never mix",
            ));
        }
        check_free(&share_path(dir, 1, threshold), Overwrite::Refuse)?;
    }
    Ok(Some(BackupOutputs {
        threshold,
        wrapped_out: wrapped_out.clone(),
        shares_dir: a.shares_out.clone(),
    }))
}

fn share_path(dir: &Path, index: u8, t: Threshold) -> PathBuf {
    dir.join(format!("share-{index}-of-{}.txt", t.made))
}

/// `key generate --backup`: generates the key in backup form, writes the wrapped file and
/// prints (or writes) the shares.
pub(super) fn key_generate_with_backup(
    g: &GlobalArgs,
    a: &KeyGenerateArgs,
    id: &[u8],
    out: BackupOutputs,
    token: &TokenRef<'_>,
) -> Result<()> {
    let mut rec = Recorder::create(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let t = out.threshold;
    let (generated, backup) = generate_with_backup(
        token,
        &so_pin_source(&a.so_pin),
        &pin_source(g, None),
        &mut rec,
        key_spec(a.algorithm),
        &a.label,
        id,
        t,
    )?;
    // The key exists from here on: an output that cannot be written stops part-way.
    let partial = |e: Error| Error::Partial {
        done: format!(
            "the key {} was generated and its backup recorded, but the backup is not complete: destroy the key with the token's tools and generate again",
            generated.key.uri
        ),
        source: Box::new(e),
    };
    write_atomic(
        &out.wrapped_out,
        backup.wrapped_text()?.as_bytes(),
        0o600,
        overwrite(a.force),
    )
    .map_err(|e| partial(e.into()))?;
    if let Some(p) = &a.public_key_out {
        use der::Encode;
        let der = generated
            .spki
            .to_der()
            .map_err(|e| Error::internal(format!("public key encoding: {e}")))?;
        let pem = crate::x509::decode::to_pem("PUBLIC KEY", &der)?;
        write_atomic(p, pem.as_bytes(), 0o644, overwrite(a.force))
            .map_err(|e| partial(e.into()))?;
    }
    say!(
        "generated {} key \"{}\" (sensitive, extractable only wrapped under a trusted key, test signature verified)",
        a.algorithm,
        a.label
    );
    say!("uri: {}", generated.key.uri);
    say!("spki-sha256: {}", hex::encode(generated.spki_sha256));
    say!(
        "wrapped key: {} (backup {}, {t}: any {} of the {} shares restore it)",
        out.wrapped_out.display(),
        backup.wrapped.backup,
        t.needed,
        t.made
    );
    match &out.shares_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| {
                partial(Error::Read {
                    path: dir.clone(),
                    source,
                })
            })?;
            for share in &backup.shares {
                let path = share_path(dir, share.index(), t);
                let mut text = share.to_text();
                text.push('\n');
                write_atomic(&path, text.as_bytes(), 0o600, Overwrite::Refuse)
                    .map_err(|e| partial(e.into()))?;
            }
            say!("{} shares written to {}", t.made, dir.display());
        }
        None => {
            say!(
                "the shares: give each custodian one line, written down or on their own medium; nothing secret was written to disk"
            );
            for share in &backup.shares {
                say!(
                    "custodian {} of {}: {}",
                    share.index(),
                    t.made,
                    share.to_text().as_str()
                );
            }
        }
    }
    Ok(())
}

/// `key restore`: the wrapped file, the shares (files, else asked for), then the restore.
pub(super) fn key_restore(g: &GlobalArgs, a: KeyRestoreArgs) -> Result<()> {
    let wrapped = WrappedKey::read(&a.wrapped)?;
    let shares = if a.shares.is_empty() {
        ask_shares(&wrapped)?
    } else {
        a.shares
            .iter()
            .map(|p| {
                let bytes = Zeroizing::new(read_file(p)?);
                let text = std::str::from_utf8(&bytes).map_err(|_| {
                    Error::invalid(
                        format!("{} is not text", p.display()),
                        "give the share file as 'key generate --shares-out' wrote it",
                    )
                })?;
                Share::parse(text, &p.display().to_string())
            })
            .collect::<Result<Vec<_>>>()?
    };
    let mut rec = Recorder::create(g.ca_dir.as_deref(), g.operator.as_deref())?;
    let token = TokenRef {
        module: g.module.as_deref(),
        selector: selector(&a.token),
    };
    let uri = restore(
        &token,
        &so_pin_source(&a.so_pin),
        &pin_source(g, None),
        &mut rec,
        &wrapped,
        &shares,
    )?;
    say!(
        "restored {} key \"{}\" from backup {} ({} shares; public key and a test signature checked)",
        wrapped.algorithm,
        wrapped.label,
        wrapped.backup,
        shares.len()
    );
    say!("uri: {uri}");
    say!("spki-sha256: {}", wrapped.spki_sha256);
    Ok(())
}

/// Asks for M shares on the terminal, without echo.
fn ask_shares(wrapped: &WrappedKey) -> Result<Vec<Share>> {
    if !std::io::stdin().is_terminal() && !Path::new("/dev/tty").exists() {
        return Err(Error::invalid(
            "no --share given and no terminal to ask for the shares on",
            "pass each share's file with --share FILE, or run from a terminal",
        ));
    }
    (1..=wrapped.threshold)
        .map(|i| {
            let text = Zeroizing::new(
                rpassword::prompt_password(format!(
                    "share {i} of the {} needed (hsmca-share-v1 ...): ",
                    wrapped.threshold
                ))
                .map_err(|e| {
                    Error::invalid(
                        format!("cannot read a share from the terminal: {e}"),
                        "pass each share's file with --share FILE",
                    )
                })?,
            );
            Share::parse(&text, &format!("share {i} typed in"))
        })
        .collect()
}
