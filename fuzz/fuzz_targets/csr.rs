//! CSRs as `hsmca sign` reads them: PEM or DER, then the self-signature and key checks.
#![no_main]

use hsmca::internals::ca::{CaKeys, CheckedCsr};
use hsmca::internals::x509::Csr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(csr) = Csr::parse(data) else {
        return;
    };
    let _ = csr.subject();
    let _ = csr.spki();
    let _ = csr.public_key();
    let _ = csr.signature_algorithm();
    let _ = csr.requested_extensions();
    let _ = csr.sha256();
    let _ = CheckedCsr::check(csr, &CaKeys::default());
});
