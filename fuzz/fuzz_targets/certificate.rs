//! Certificates as `--issuer` and `log verify --root` read them (PEM, chains, or DER), then
//! what an issuer certificate must provide.
#![no_main]

use hsmca::internals::x509::{load_certificate, load_certificates, load_certificates_with_der};
use hsmca::internals::x509::issuer_facts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = load_certificate(data);
    let _ = load_certificates_with_der(data);
    if let Ok(certs) = load_certificates(data) {
        for cert in &certs {
            let _ = issuer_facts(cert);
        }
    }
});
