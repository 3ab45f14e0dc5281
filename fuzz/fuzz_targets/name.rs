//! RFC 4514 subjects (`--subject`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hsmca::internals::x509::parse_name(text);
    }
});
