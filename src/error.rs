//! Errors as data: every error names its cause, and [`Error::hint`] says how to fix it.

use std::path::PathBuf;

use crate::output::OutputError;
use crate::token::TokenError;
use crate::x509::error::X509Error;

/// Any failure of an hsmca operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token, its module, the PIN or a key on it.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Certificates, CSRs, names, algorithms and signatures.
    #[error(transparent)]
    X509(#[from] X509Error),
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
    /// A request that is well formed but cannot be honoured (validity past the issuer's, ...).
    #[error("{message}")]
    Invalid {
        /// The cause.
        message: String,
        /// The fix.
        hint: String,
    },
}

impl Error {
    /// A one-line suggestion for the fix, where the message does not already carry one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Token(e) => e.hint(),
            Error::X509(_) => None,
            Error::Output(e) => e.hint(),
            Error::Read { .. } => Some("check the path and that this user may read it".into()),
            Error::Invalid { hint, .. } => Some(hint.clone()),
        }
    }

    /// The message split into cause and fix, as the CLI prints them (`error:` and `hint:`).
    /// Certificate-layer messages carry their fix after the last "; ".
    pub fn cause_and_hint(&self) -> (String, Option<String>) {
        let text = self.to_string();
        if let Some(hint) = self.hint() {
            return (text, Some(hint));
        }
        match text.rsplit_once("; ") {
            Some((cause, fix)) => (cause.to_string(), Some(fix.to_string())),
            None => (text, None),
        }
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

/// Reads a whole input file, naming it in the error.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}
