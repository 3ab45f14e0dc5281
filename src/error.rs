//! Errors as data: every error names its cause, and [`Error::hint`] says how to fix it.

use std::path::PathBuf;

use crate::output::OutputError;
use crate::token::TokenError;
use crate::x509::error::{REPORT_BUG, SignError, X509Error};

/// Any failure of an hsmca operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token, its module, the PIN or a key on it.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Certificates, CSRs, names, algorithms and signatures.
    #[error(transparent)]
    X509(X509Error),
    /// Writing an output file.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// An input file that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A command that stopped part-way: what it did before `source` is done and recorded
    /// (exit code 3).
    #[error("{source}; {done}")]
    Partial {
        /// What was done, in words.
        done: String,
        /// Why it stopped.
        source: Box<Error>,
    },
    /// A request that is well formed but cannot be honoured (validity past the issuer's, ...).
    #[error("{message}")]
    Invalid {
        /// The cause.
        message: String,
        /// The fix.
        hint: String,
    },
    /// An internal invariant of this tool does not hold: a bug, not bad input.
    #[error("internal error: {what}")]
    Internal {
        /// Which invariant.
        what: String,
    },
}

impl From<X509Error> for Error {
    /// A signer's error comes back as what it was: the token's error for a key on a token.
    fn from(e: X509Error) -> Self {
        match e {
            X509Error::Signer(e) => e.into(),
            other => Error::X509(other),
        }
    }
}

impl From<SignError> for Error {
    fn from(e: SignError) -> Self {
        let hint = e.hint();
        let source = match e.into_source().downcast::<Error>() {
            Ok(error) => return *error,
            Err(other) => other,
        };
        match source.downcast::<TokenError>() {
            Ok(token) => Error::Token(*token),
            Err(other) => match other.downcast::<X509Error>() {
                Ok(x509) => Error::from(*x509),
                Err(other) => Error::Invalid {
                    message: other.to_string(),
                    hint: hint.unwrap_or_else(|| REPORT_BUG.into()),
                },
            },
        }
    }
}

impl Error {
    /// A one-line suggestion for the fix, where the message does not already carry one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Token(e) => e.hint(),
            Error::X509(e) => e.hint(),
            Error::Output(e) => e.hint(),
            Error::Read { .. } => Some("check the path and that this user may read it".into()),
            Error::Invalid { hint, .. } => Some(hint.clone()),
            Error::Internal { .. } => Some(REPORT_BUG.into()),
            Error::Partial { source, .. } => source.hint(),
        }
    }

    /// The cause and the fix, as the CLI prints them (`error:` and `hint:`).
    pub fn cause_and_hint(&self) -> (String, Option<String>) {
        if let Error::Partial { done, source } = self {
            let (cause, hint) = source.cause_and_hint();
            return (format!("{cause}\nstopped part-way: {done}"), hint);
        }
        (self.to_string(), self.hint())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(what: impl Into<String>) -> Self {
        Error::Internal { what: what.into() }
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most an input file may hold: certificates, cluster and ceremony files, transcripts
/// are a few KiB; anything larger is not what the command expects.
pub const MAX_INPUT: u64 = 1 << 20;
/// The most a certificate signing request may hold.
pub const MAX_CSR: u64 = 64 << 10;

/// Reads a whole input file of at most [`MAX_INPUT`] bytes, naming it in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    read_limited(path, MAX_INPUT)
}

/// Opens `path` for reading; `None` if it does not exist (a file the CA directory may not have
/// yet), any other failure an error naming it.
pub fn open_existing(path: &std::path::Path) -> Result<Option<std::fs::File>> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a whole input file of at most `max` bytes. Only a regular file is read: a FIFO,
/// device or directory is refused without blocking (it is opened non-blocking and checked
/// before any read), and so is a file larger than `max`.
pub fn read_limited(path: &std::path::Path, max: u64) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            rustix::fs::OFlags::NONBLOCK.bits() as i32 | rustix::fs::OFlags::NOCTTY.bits() as i32,
        )
        .open(path)
        .map_err(io)?;
    read_opened(file, path, max)
}

/// [`read_limited`] of a file already opened (non-blocking) as `path`.
pub fn read_opened(file: std::fs::File, path: &std::path::Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let io = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = file.metadata().map_err(io)?;
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_char_device() || ft.is_block_device() {
        Some("a device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(Error::invalid(
            format!("{} is {kind}, not a file", path.display()),
            "give the path of a regular file",
        ));
    }
    if meta.len() > max {
        return Err(Error::invalid(
            format!(
                "{} holds {} bytes, more than the {max} such an input may hold",
                path.display(),
                meta.len()
            ),
            "check that this is the right file",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // take: a file that grows while it is read is still bounded.
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(Error::invalid(
            format!("{} grew past {max} bytes while it was read", path.display()),
            "make sure nothing writes the file during the command",
        ));
    }
    Ok(bytes)
}
