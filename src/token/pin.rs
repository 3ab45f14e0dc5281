//! The user PIN: read from a file, HSMCA_PIN or the terminal, held zeroized, never logged.

use std::io::IsTerminal;
use std::path::Path;

use zeroize::Zeroizing;

use super::TokenError;

/// A user PIN, zeroized on drop; its Debug form does not show it.
pub struct Pin(Zeroizing<String>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// Where the PIN comes from, in order of preference.
#[derive(Debug, Clone)]
pub enum PinSource {
    /// A file holding the PIN (a trailing newline is dropped).
    File(std::path::PathBuf),
    /// The value of HSMCA_PIN, read by the CLI from the environment.
    Env(Zeroizing<String>),
    /// Ask on the terminal without echo.
    Prompt,
}

impl Pin {
    /// Reads the PIN from its source. Only the terminal prompt interacts; nothing is retried.
    pub fn read(source: &PinSource, prompt: &str) -> Result<Pin, TokenError> {
        match source {
            PinSource::File(path) => Self::from_file(path),
            PinSource::Env(value) => Ok(Pin(value.clone())),
            PinSource::Prompt => {
                // rpassword reads /dev/tty; without a terminal there is nobody to ask.
                if !std::io::stdin().is_terminal() && !Path::new("/dev/tty").exists() {
                    return Err(TokenError::PinMissing);
                }
                rpassword::prompt_password(prompt)
                    .map(|p| Pin(Zeroizing::new(p)))
                    .map_err(|_| TokenError::PinMissing)
            }
        }
    }

    fn from_file(path: &Path) -> Result<Pin, TokenError> {
        let raw = Zeroizing::new(std::fs::read(path).map_err(|source| TokenError::PinFile {
            path: path.to_path_buf(),
            source,
        })?);
        let text = std::str::from_utf8(&raw).map_err(|_| TokenError::PinFile {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"),
        })?;
        Ok(Pin(Zeroizing::new(
            text.trim_end_matches(['\n', '\r']).to_string(),
        )))
    }

    /// The PIN as cryptoki's secret type, for C_Login only.
    pub(crate) fn to_auth_pin(&self) -> cryptoki::types::AuthPin {
        cryptoki::types::AuthPin::from(self.0.as_str().to_string())
    }
}
