//! What several commands read from the command line the same way: where the PIN comes from,
//! the CA key's URI, and whether an output may be replaced.

use zeroize::Zeroizing;

use super::{GlobalArgs, TokenArgs};
use crate::error::Result;
use crate::output::Overwrite;
use crate::token::{PinSource, Pkcs11Uri, TokenError, TokenSelector};

/// `--force`: replace existing outputs, else refuse them.
pub fn overwrite(force: bool) -> Overwrite {
    if force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    }
}

/// The PIN source: --pin-file, then the URI's pin-source, then HSMCA_PIN, then the terminal.
pub fn pin_source(g: &GlobalArgs, uri: Option<&Pkcs11Uri>) -> PinSource {
    if let Some(p) = &g.pin_file {
        return PinSource::File(p.clone());
    }
    if let Some(p) = uri.and_then(|u| u.pin_source.clone()) {
        return PinSource::File(p);
    }
    match std::env::var("HSMCA_PIN") {
        Ok(v) => PinSource::Env(Zeroizing::new(v)),
        Err(_) => PinSource::Prompt,
    }
}

/// The token --token and --token-serial name.
pub fn selector(t: &TokenArgs) -> TokenSelector {
    TokenSelector {
        label: Some(t.token.clone()),
        serial: t.token_serial.clone(),
    }
}

/// Parses a key's RFC 7512 URI; it must name a token (by label or serial).
pub fn parse_key_uri(text: &str) -> Result<Pkcs11Uri> {
    let uri: Pkcs11Uri = text.parse()?;
    if uri.token.is_none() && uri.serial.is_none() {
        return Err(TokenError::NoTokenInUri.into());
    }
    Ok(uri)
}
