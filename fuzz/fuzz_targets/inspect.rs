//! `hsmca inspect FILE`: any certificate, chain, CSR, CRL or public key, PEM or DER.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hsmca::internals::x509::describe(data);
});
