//! RFC 7512 URIs (`--key`): parsing must never panic, and what parses must print back to a
//! URI that parses to the same value.
#![no_main]

use hsmca::internals::token::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = text.parse::<Pkcs11Uri>() else {
        return;
    };
    let printed = uri.to_string();
    let again: Pkcs11Uri = printed
        .parse()
        .unwrap_or_else(|e| panic!("{printed:?} (printed from {text:?}) does not parse: {e}"));
    assert_eq!(uri, again, "{text:?} -> {printed:?} changes meaning");
});
