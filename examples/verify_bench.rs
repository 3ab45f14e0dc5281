//! What hsmca's host crypto costs through its own API (BENCHMARKS.md, "Host crypto backend"):
//! per key algorithm, the median time of `verify_signature` (the key checked and parsed from
//! its SubjectPublicKeyInfo, then the signature verified: what the batch writer does for
//! every certificate) and of `SoftKey::generate` (a throwaway lint key, PKCS#8 PEM included).
//!
//! `cargo run --release --example verify_bench [ROUNDS]` (default 2000 verifications). It uses
//! only the library's public API, so the same file builds against earlier revisions.

use std::time::Instant;

use hsmca::internals::x509::CaSigner;
use hsmca::internals::x509::KeyAlgorithm;
use hsmca::internals::x509::SoftKey;
use hsmca::internals::x509::verify_signature;

/// The median of `n` timed runs of `f`, in µs, after a short warm-up.
fn median_us(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..(n / 10).clamp(1, 20) {
        f();
    }
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 2000,
    };
    // A TBSCertificate's size.
    let message = [0x5au8; 1024];
    println!("| key | verify_signature (µs) | SoftKey::generate | rounds (verify, generate) |");
    println!("|---|---:|---:|---|");
    for alg in KeyAlgorithm::ALL {
        let key = SoftKey::generate(alg)?;
        let id = key.signature_algorithm().algorithm_identifier();
        let signature = key.sign(&message)?;
        let verify = median_us(rounds, || {
            verify_signature(key.public_key(), &id, &message, &signature)
                .expect("a signature just made verifies");
        });
        let generations = match alg.rsa_bits() {
            Some(2048) => 20,
            Some(_) => 10,
            None => rounds / 4,
        };
        let generate = median_us(generations, || {
            std::hint::black_box(SoftKey::generate(alg).expect("key generation"));
        });
        let generate = if generate >= 10_000.0 {
            format!("{:.0} ms", generate / 1000.0)
        } else {
            format!("{generate:.1} µs")
        };
        println!("| {alg} | {verify:.1} | {generate} | {rounds}, {generations} |");
    }
    Ok(())
}
