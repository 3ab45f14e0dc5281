//! The token layer: PKCS#11 through cryptoki. It knows nothing of X.509.

pub mod error;
pub mod info;
pub mod key;
pub mod module;
pub mod pin;
pub mod session;
pub mod uri;
pub mod wrap;

pub use error::TokenError;
pub use key::{KeySpec, PublicKeyMaterial, SignMechanism};
pub use module::{Module, TokenSelector};
pub use pin::{Pin, PinSource};
pub use session::{TokenKey, TokenSession};
pub use uri::Pkcs11Uri;
