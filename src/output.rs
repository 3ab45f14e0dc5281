//! Atomic, no-clobber output files: temp file in the same directory, fsync, link into place
//! without replacing, fsync the directory. A crash leaves either no file or the whole file.
//!
//! An output never lands in a CA directory, `--force` or not: a CA directory opened by this
//! process is protected ([`protect`]), and every output path is resolved (symlinked
//! directories followed) and refused if it falls inside one. The CA layer writes its own files
//! there through [`write_ca_file`] only.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A failure to write an output file.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output exists and the user did not ask to replace it.
    #[error("{} already exists; hsmca never overwrites an output unless asked", path.display())]
    Exists {
        /// The output path.
        path: PathBuf,
    },
    /// The output resolves into a CA directory.
    #[error("{} is inside the CA directory {}: outputs are never written there", path.display(), ca_dir.display())]
    InsideCaDir {
        /// The output path.
        path: PathBuf,
        /// The CA directory it resolves into.
        ca_dir: PathBuf,
    },
    /// The OS refused a step of the write.
    #[error("cannot write {}: {step}: {source}", path.display())]
    Io {
        /// The output path.
        path: PathBuf,
        /// Which step failed.
        step: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl OutputError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            OutputError::Exists { .. } => {
                "choose another output path, move the old file away, or pass --force to replace it"
                    .into()
            }
            OutputError::InsideCaDir { .. } => {
                "write the output elsewhere; the CA directory keeps its own copies (hsmca export writes one out)"
                    .into()
            }
            OutputError::Io { .. } => {
                "check that the directory exists, is writable and has free space; nothing was written there"
                    .into()
            }
        })
    }
}

/// Whether an existing file at the output path may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Refuse when the file exists (the default).
    Refuse,
    /// Replace it atomically (`--force`).
    Replace,
}

/// The CA directories of this process, canonical.
static PROTECTED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Protects a CA directory (which exists) from every output of this process.
pub fn protect(ca_dir: &Path) -> std::io::Result<()> {
    let canonical = fs::canonicalize(ca_dir)?;
    if let Ok(mut p) = PROTECTED.lock()
        && !p.contains(&canonical)
    {
        p.push(canonical);
    }
    Ok(())
}

/// Where `path` would be written: its directory resolved (symlinks followed), then its name;
/// an existing final component that is a symlink is resolved too.
fn resolved(path: &Path) -> Option<PathBuf> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && let Ok(target) = fs::canonicalize(path)
    {
        return Some(target);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(fs::canonicalize(dir).ok()?.join(path.file_name()?))
}

/// Refuses an output that resolves into a protected CA directory.
fn check_outside_ca_dirs(path: &Path) -> Result<(), OutputError> {
    let Ok(protected) = PROTECTED.lock() else {
        return Ok(());
    };
    if protected.is_empty() {
        return Ok(());
    }
    if let Some(at) = resolved(path)
        && let Some(ca_dir) = protected.iter().find(|d| at.starts_with(d))
    {
        return Err(OutputError::InsideCaDir {
            path: path.to_path_buf(),
            ca_dir: ca_dir.clone(),
        });
    }
    Ok(())
}

/// Fails when `path` exists and may not be replaced, or lies in a CA directory; run before any
/// token call.
pub fn check_free(path: &Path, overwrite: Overwrite) -> Result<(), OutputError> {
    check_outside_ca_dirs(path)?;
    if overwrite == Overwrite::Refuse && fs::symlink_metadata(path).is_ok() {
        return Err(OutputError::Exists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes `contents` to `path` atomically, with the given file mode, never leaving a partial file.
///
/// The no-clobber path writes an unnamed file (O_TMPFILE), fsyncs it and links it into place:
/// a process killed at any point leaves either the whole file or nothing, not even a temp file.
/// Where the file system has no O_TMPFILE, and for replacements, a named temp file is renamed.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), OutputError> {
    let dir = write_atomic_unsynced_dir(path, contents, mode, overwrite)?;
    sync_dir(&dir, path)
}

/// Many [`write_atomic`]s whose directories are fsynced once, at [`DirSyncs::sync`], instead
/// of once per file: each file is whole (written and fsynced before it is linked into place)
/// the moment it appears, only its name may be lost by a crash before the sync.
#[derive(Debug, Default)]
pub struct DirSyncs {
    dirs: Vec<(PathBuf, PathBuf)>,
}

impl DirSyncs {
    /// Nothing written yet.
    pub fn new() -> DirSyncs {
        DirSyncs::default()
    }

    /// [`write_atomic`] without the directory fsync, which [`DirSyncs::sync`] does.
    pub fn write(
        &mut self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        overwrite: Overwrite,
    ) -> Result<(), OutputError> {
        let dir = write_atomic_unsynced_dir(path, contents, mode, overwrite)?;
        if !self.dirs.iter().any(|(d, _)| *d == dir) {
            self.dirs.push((dir, path.to_path_buf()));
        }
        Ok(())
    }

    /// Fsyncs every directory written into (an error names a file written there).
    pub fn sync(self) -> Result<(), OutputError> {
        for (dir, file) in &self.dirs {
            sync_dir(dir, file)?;
        }
        Ok(())
    }
}

pub(crate) fn sync_dir(dir: &Path, path: &Path) -> Result<(), OutputError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| OutputError::Io {
            path: path.to_path_buf(),
            step: "syncing the directory",
            source,
        })
}

/// The file of [`write_atomic`], whole and in place; returns its directory, not yet fsynced:
/// a crash before the directory reaches the disk may lose the name (never the content of a
/// file that has it). Only for files that can be made again from elsewhere.
pub fn write_atomic_unsynced_dir(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<PathBuf, OutputError> {
    check_free(path, overwrite)?;
    write_unchecked(path, contents, mode, overwrite)
}

/// Fails when a file of the CA directory itself exists ([`write_ca_file`] never replaces one).
pub fn check_ca_file_free(path: &Path) -> Result<(), OutputError> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(OutputError::Exists {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// A file of the CA directory itself (its certificate, kept copies, CRLs), written atomically
/// and never replacing one; `sync` says whether the directory is fsynced too.
pub fn write_ca_file(path: &Path, contents: &[u8], sync: bool) -> Result<(), OutputError> {
    check_ca_file_free(path)?;
    let dir = write_unchecked(path, contents, 0o644, Overwrite::Refuse)?;
    if sync {
        sync_dir(&dir, path)?;
    }
    Ok(())
}

/// The write of [`write_atomic_unsynced_dir`] once the path is checked.
fn write_unchecked(
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<PathBuf, OutputError> {
    let io = |step: &'static str| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, step, source }
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io("naming the file")(std::io::ErrorKind::InvalidInput.into()))?;
    let linked = match overwrite {
        Overwrite::Refuse => write_unnamed_then_link(&dir, path, contents, mode)?,
        Overwrite::Replace => false,
    };
    if !linked {
        write_named_then_move(&dir, file_name, path, contents, mode, overwrite)?;
    }
    Ok(dir)
}

/// O_TMPFILE + linkat: `Ok(false)` when the file system cannot make unnamed files.
fn write_unnamed_then_link(
    dir: &Path,
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<bool, OutputError> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags};
    let io = |step: &'static str| {
        let path = path.to_path_buf();
        move |source: std::io::Error| OutputError::Io { path, step, source }
    };
    let fd = match rustix::fs::openat(
        CWD,
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    ) {
        Ok(fd) => fd,
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::ISDIR => {
            return Ok(false);
        }
        Err(e) => return Err(io("creating an unnamed file")(e.into())),
    };
    let mut file = File::from(fd);
    file.write_all(contents).map_err(io("writing"))?;
    file.sync_all().map_err(io("syncing"))?;
    let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    // linkat fails when the target exists, so a file created meanwhile is never replaced.
    match rustix::fs::linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Err(OutputError::Exists {
            path: path.to_path_buf(),
        }),
        // No /proc (a chroot): fall back to a named temp file.
        Err(rustix::io::Errno::NOENT) if !Path::new("/proc/self/fd").exists() => Ok(false),
        Err(e) => Err(io("linking into place")(e.into())),
    }
}

/// A named temp file in the same directory, then link (no-clobber) or rename (replace).
fn write_named_then_move(
    dir: &Path,
    file_name: &std::ffi::OsStr,
    path: &Path,
    contents: &[u8],
    mode: u32,
    overwrite: Overwrite,
) -> Result<(), OutputError> {
    let io = |step: &'static str| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, step, source }
    };
    let tmp = unique_temp_path(dir, file_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io("creating a temporary file"))?;
        file.write_all(contents).map_err(io("writing"))?;
        file.sync_all().map_err(io("syncing"))?;
        drop(file);
        match overwrite {
            Overwrite::Refuse => fs::hard_link(&tmp, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    OutputError::Exists {
                        path: path.to_path_buf(),
                    }
                } else {
                    io("linking into place")(e)
                }
            }),
            Overwrite::Replace => fs::rename(&tmp, path).map_err(io("renaming into place")),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result
}

fn unique_temp_path(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let mut random = [0u8; 6];
    // The name only has to avoid collisions; create_new refuses any file already there.
    let _ = getrandom::fill(&mut random);
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        hex::encode(random)
    ));
    dir.join(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pem");
        write_atomic(&path, b"one", 0o644, Overwrite::Refuse).unwrap();
        let err = write_atomic(&path, b"two", 0o644, Overwrite::Refuse).unwrap_err();
        assert!(matches!(err, OutputError::Exists { .. }));
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"three", 0o644, Overwrite::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("out.pem");
        assert!(matches!(
            write_atomic(&path, b"x", 0o644, Overwrite::Refuse),
            Err(OutputError::Io { .. })
        ));
    }
}
