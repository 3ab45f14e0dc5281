//! Files inside a cluster directory, reached without following any symbolic link below it.
//! The cluster directory comes from the cluster side: a link planted in it (`requests/pki ->
//! /srv/ca`) would make the root ceremony read or write wherever it points. Each path is
//! opened component by component with `openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH)`
//! from the directory the operator named, and a link is refused by name.

use std::path::{Component, Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags, ResolveFlags, openat2};

use crate::error::{Error, Result};

const RESOLVE: ResolveFlags = ResolveFlags::NO_SYMLINKS.union(ResolveFlags::BENEATH);

/// `path` relative to `base`, refused if it is not below it.
fn relative<'p>(base: &Path, path: &'p Path) -> Result<&'p Path> {
    path.strip_prefix(base)
        .ok()
        .filter(|r| r.components().all(|c| matches!(c, Component::Normal(_))))
        .ok_or_else(|| {
            Error::internal(format!(
                "{} is not inside {}",
                path.display(),
                base.display()
            ))
        })
}

/// The first component of `rel` below `base` that is a symbolic link.
fn first_link(base: &Path, rel: &Path) -> Option<PathBuf> {
    let mut at = base.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(at);
        }
    }
    None
}

fn link_refused(link: &Path, base: &Path) -> Error {
    Error::invalid(
        format!(
            "{} is a symbolic link: hsmca never follows links inside the cluster directory {} (a planted link would send what it reads or writes elsewhere)",
            link.display(),
            base.display()
        ),
        "replace the link with the real directory or file (and find out who made it), then run the command again",
    )
}

/// Opens `rel` below `base` with `flags`, following no link; `Ok(None)` when it does not exist.
fn open(base: &Path, path: &Path, flags: OFlags) -> Result<Option<std::os::fd::OwnedFd>> {
    let rel = relative(base, path)?;
    let io = |source: std::io::Error| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let base_dir = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    // The directory the operator named is taken as it resolves; what lies below it is not.
    let dir = match openat2(
        CWD,
        base_dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    ) {
        Ok(dir) => dir,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(io(e.into())),
    };
    let target = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    match openat2(
        &dir,
        target,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => match first_link(base, rel) {
            Some(link) => Err(link_refused(&link, base)),
            None => Ok(None),
        },
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV) => Err(link_refused(
            &first_link(base, rel).unwrap_or_else(|| path.to_path_buf()),
            base,
        )),
        Err(e) => Err(io(e.into())),
    }
}

/// Refuses `path` (below `base`) when it, or a directory on the way to it, is a link.
pub fn check_no_links(base: &Path, path: &Path) -> Result<()> {
    open(base, path, OFlags::PATH).map(|_| ())
}

/// Reads a regular file of at most `max` bytes below `base`, following no link.
pub fn read_below(base: &Path, path: &Path, max: u64) -> Result<Vec<u8>> {
    let fd = open(
        base,
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
    )?
    .ok_or_else(|| Error::Read {
        path: path.to_path_buf(),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    crate::error::read_opened(std::fs::File::from(fd), path, max)
}

/// Creates `dir` below `base` with its parents (mode 0755), following no link on the way.
pub fn create_dir_below(base: &Path, dir: &Path) -> Result<()> {
    if !base.as_os_str().is_empty() {
        super::create_dir(base)?;
    }
    check_no_links(base, dir)?;
    super::create_dir(dir)?;
    // A link swapped in while the directories were made is caught here, before any write.
    check_no_links(base, dir)
}
