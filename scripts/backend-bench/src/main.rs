//! One host crypto backend per build (feature `aws-lc`, `ring` or `rustcrypto`): the median
//! time of a signature verification per algorithm, of generating a throwaway key per key type,
//! and of one signature with it. Verification includes parsing the public key from its
//! SubjectPublicKeyInfo bytes, as hsmca does for every signature it checks.
//!
//! Usage: hsmca-backend-bench [ROUNDS]   (default 2000 verifications per algorithm)

use std::time::{Duration, Instant};

/// A message of the size of a typical TBSCertificate.
const MESSAGE: [u8; 1024] = [0x5a; 1024];

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

/// Runs `f` `n` times after a short warm-up (a tenth of `n`, 1 to 20 runs); the median in µs.
fn time<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..(n / 10).clamp(1, 20) {
        std::hint::black_box(f());
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(f());
        v.push(t.elapsed());
    }
    median(v)
}

fn row(what: &str, n: usize, us: Option<f64>) {
    match us {
        Some(us) if us >= 10_000.0 => println!("| {what} | {n} | {:.1} ms |", us / 1000.0),
        Some(us) => println!("| {what} | {n} | {us:.1} µs |"),
        None => println!("| {what} | – | not available |"),
    }
}

/// Rounds for an operation that costs about `heavy` times a P-256 verification.
fn rounds(base: usize, heavy: usize) -> usize {
    (base / heavy).max(5)
}

#[cfg(feature = "ring")]
/// ring cannot generate RSA keys: the RSA keys it verifies with come from openssl (PKCS#1 DER).
fn openssl_rsa_der(bits: u32) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
        .arg(format!("rsa_keygen_bits:{bits}"))
        .args(["-outform", "DER"])
        .output()
        .expect("openssl genpkey");
    assert!(out.status.success(), "openssl genpkey failed");
    out.stdout
}

#[cfg(feature = "aws-lc")]
mod backend {
    use super::*;
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use aws_lc_rs::signature::{self as s, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    pub const NAME: &str = "aws-lc-rs";

    fn ec(alg: &'static s::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
        EcdsaKeyPair::generate(alg).unwrap()
    }

    fn rsa(bits: usize) -> RsaKeyPair {
        RsaKeyPair::generate(match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            _ => KeySize::Rsa4096,
        })
        .unwrap()
    }

    fn verify(
        n: usize,
        what: &str,
        alg: &'static dyn s::VerificationAlgorithm,
        public: &[u8],
        sig: &[u8],
    ) {
        let us = time(n, || {
            s::UnparsedPublicKey::new(alg, public)
                .verify(&MESSAGE, sig)
                .unwrap();
        });
        row(what, n, Some(us));
    }

    pub fn run(n: usize) {
        let rng = SystemRandom::new();
        println!("| verification (parse + verify) | rounds | median |\n|---|---:|---:|");
        let k = ec(&s::ECDSA_P256_SHA256_ASN1_SIGNING);
        let sig = k.sign(&rng, &MESSAGE).unwrap();
        verify(
            n,
            "ECDSA P-256 SHA-256",
            &s::ECDSA_P256_SHA256_ASN1,
            k.public_key().as_ref(),
            sig.as_ref(),
        );
        let k = ec(&s::ECDSA_P384_SHA384_ASN1_SIGNING);
        let sig = k.sign(&rng, &MESSAGE).unwrap();
        verify(
            n,
            "ECDSA P-384 SHA-384",
            &s::ECDSA_P384_SHA384_ASN1,
            k.public_key().as_ref(),
            sig.as_ref(),
        );
        for bits in [2048, 3072, 4096] {
            let k = rsa(bits);
            let mut sig = vec![0; k.public_modulus_len()];
            k.sign(&s::RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut sig)
                .unwrap();
            verify(
                n,
                &format!("RSA-{bits} PKCS#1 v1.5 SHA-256"),
                &s::RSA_PKCS1_2048_8192_SHA256,
                k.public_key().as_ref(),
                &sig,
            );
            if bits == 3072 {
                k.sign(&s::RSA_PSS_SHA256, &rng, &MESSAGE, &mut sig)
                    .unwrap();
                verify(
                    n,
                    "RSA-3072 PSS SHA-256",
                    &s::RSA_PSS_2048_8192_SHA256,
                    k.public_key().as_ref(),
                    &sig,
                );
            }
        }
        let k = Ed25519KeyPair::generate().unwrap();
        let sig = k.sign(&MESSAGE);
        verify(
            n,
            "Ed25519",
            &s::ED25519,
            k.public_key().as_ref(),
            sig.as_ref(),
        );

        println!("\n| throwaway key: generate (+ PKCS#8) | rounds | median |\n|---|---:|---:|");
        let m = rounds(n, 4);
        row(
            "ECDSA P-256",
            m,
            Some(time(m, || {
                std::hint::black_box(ec(&s::ECDSA_P256_SHA256_ASN1_SIGNING).to_pkcs8v1().unwrap())
            })),
        );
        row(
            "ECDSA P-384",
            m,
            Some(time(m, || {
                std::hint::black_box(ec(&s::ECDSA_P384_SHA384_ASN1_SIGNING).to_pkcs8v1().unwrap())
            })),
        );
        for (bits, m) in [(2048, 20), (3072, 15), (4096, 15)] {
            row(
                &format!("RSA-{bits}"),
                m,
                Some(time(m, || {
                    let _: Pkcs8V1Der = rsa(bits).as_der().unwrap();
                })),
            );
        }
        row(
            "Ed25519",
            m,
            Some(time(m, || {
                std::hint::black_box(Ed25519KeyPair::generate().unwrap().to_pkcs8v1().unwrap())
            })),
        );

        println!("\n| throwaway key: one signature | rounds | median |\n|---|---:|---:|");
        let k = ec(&s::ECDSA_P256_SHA256_ASN1_SIGNING);
        row(
            "ECDSA P-256 SHA-256",
            n,
            Some(time(n, || {
                std::hint::black_box(k.sign(&rng, &MESSAGE).unwrap())
            })),
        );
        let k = ec(&s::ECDSA_P384_SHA384_ASN1_SIGNING);
        row(
            "ECDSA P-384 SHA-384",
            n,
            Some(time(n, || {
                std::hint::black_box(k.sign(&rng, &MESSAGE).unwrap())
            })),
        );
        let k = rsa(3072);
        let mut sig = vec![0; k.public_modulus_len()];
        let m = rounds(n, 10);
        row(
            "RSA-3072 PKCS#1 v1.5 SHA-256",
            m,
            Some(time(m, || {
                k.sign(&s::RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut sig)
                    .unwrap()
            })),
        );
        let k = Ed25519KeyPair::generate().unwrap();
        row(
            "Ed25519",
            n,
            Some(time(n, || std::hint::black_box(k.sign(&MESSAGE)))),
        );
    }
}

#[cfg(feature = "ring")]
mod backend {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{self as s, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

    pub const NAME: &str = "ring";

    fn ec(alg: &'static s::EcdsaSigningAlgorithm, rng: &SystemRandom) -> EcdsaKeyPair {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, rng).unwrap();
        EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), rng).unwrap()
    }

    fn verify(
        n: usize,
        what: &str,
        alg: &'static dyn s::VerificationAlgorithm,
        public: &[u8],
        sig: &[u8],
    ) {
        let us = time(n, || {
            s::UnparsedPublicKey::new(alg, public)
                .verify(&MESSAGE, sig)
                .unwrap();
        });
        row(what, n, Some(us));
    }

    pub fn run(n: usize) {
        let rng = SystemRandom::new();
        println!("| verification (parse + verify) | rounds | median |\n|---|---:|---:|");
        let k = ec(&s::ECDSA_P256_SHA256_ASN1_SIGNING, &rng);
        let sig = k.sign(&rng, &MESSAGE).unwrap();
        verify(
            n,
            "ECDSA P-256 SHA-256",
            &s::ECDSA_P256_SHA256_ASN1,
            k.public_key().as_ref(),
            sig.as_ref(),
        );
        let k = ec(&s::ECDSA_P384_SHA384_ASN1_SIGNING, &rng);
        let sig = k.sign(&rng, &MESSAGE).unwrap();
        verify(
            n,
            "ECDSA P-384 SHA-384",
            &s::ECDSA_P384_SHA384_ASN1,
            k.public_key().as_ref(),
            sig.as_ref(),
        );
        let mut rsa3072 = None;
        for bits in [2048, 3072, 4096] {
            let k = RsaKeyPair::from_der(&openssl_rsa_der(bits)).unwrap();
            let mut sig = vec![0; k.public().modulus_len()];
            k.sign(&s::RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut sig)
                .unwrap();
            verify(
                n,
                &format!("RSA-{bits} PKCS#1 v1.5 SHA-256"),
                &s::RSA_PKCS1_2048_8192_SHA256,
                k.public_key().as_ref(),
                &sig,
            );
            if bits == 3072 {
                k.sign(&s::RSA_PSS_SHA256, &rng, &MESSAGE, &mut sig)
                    .unwrap();
                verify(
                    n,
                    "RSA-3072 PSS SHA-256",
                    &s::RSA_PSS_2048_8192_SHA256,
                    k.public_key().as_ref(),
                    &sig,
                );
                rsa3072 = Some(k);
            }
        }
        let k = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        let sig = k.sign(&MESSAGE);
        verify(
            n,
            "Ed25519",
            &s::ED25519,
            k.public_key().as_ref(),
            sig.as_ref(),
        );

        println!("\n| throwaway key: generate (+ PKCS#8) | rounds | median |\n|---|---:|---:|");
        let m = rounds(n, 4);
        row(
            "ECDSA P-256",
            m,
            Some(time(m, || {
                std::hint::black_box(
                    EcdsaKeyPair::generate_pkcs8(&s::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap(),
                )
            })),
        );
        row(
            "ECDSA P-384",
            m,
            Some(time(m, || {
                std::hint::black_box(
                    EcdsaKeyPair::generate_pkcs8(&s::ECDSA_P384_SHA384_ASN1_SIGNING, &rng).unwrap(),
                )
            })),
        );
        for bits in [2048, 3072, 4096] {
            // ring has no RSA key generation at all.
            row(&format!("RSA-{bits}"), 0, None);
        }
        row(
            "Ed25519",
            m,
            Some(time(m, || {
                std::hint::black_box(Ed25519KeyPair::generate_pkcs8(&rng).unwrap())
            })),
        );

        println!("\n| throwaway key: one signature | rounds | median |\n|---|---:|---:|");
        let k = ec(&s::ECDSA_P256_SHA256_ASN1_SIGNING, &rng);
        row(
            "ECDSA P-256 SHA-256",
            n,
            Some(time(n, || {
                std::hint::black_box(k.sign(&rng, &MESSAGE).unwrap())
            })),
        );
        let k = ec(&s::ECDSA_P384_SHA384_ASN1_SIGNING, &rng);
        row(
            "ECDSA P-384 SHA-384",
            n,
            Some(time(n, || {
                std::hint::black_box(k.sign(&rng, &MESSAGE).unwrap())
            })),
        );
        let k = rsa3072.unwrap();
        let mut sig = vec![0; k.public().modulus_len()];
        let m = rounds(n, 10);
        row(
            "RSA-3072 PKCS#1 v1.5 SHA-256 (openssl's key)",
            m,
            Some(time(m, || {
                k.sign(&s::RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut sig)
                    .unwrap()
            })),
        );
        let k = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        row(
            "Ed25519",
            n,
            Some(time(n, || std::hint::black_box(k.sign(&MESSAGE)))),
        );
    }
}

#[cfg(feature = "rustcrypto")]
mod backend {
    use super::*;
    use getrandom::SysRng;
    use p256::elliptic_curve::Generate;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use sha2::Sha256;
    use signature::{SignatureEncoding, Signer};

    pub const NAME: &str = "RustCrypto";

    fn ed25519_key() -> ed25519_dalek::SigningKey {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        ed25519_dalek::SigningKey::from_bytes(&seed)
    }

    fn spki_point(der: &[u8], len: usize) -> Vec<u8> {
        der[der.len() - len..].to_vec()
    }

    pub fn run(n: usize) {
        println!("| verification (parse + verify) | rounds | median |\n|---|---:|---:|");
        let k = p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
        let sig: p256::ecdsa::DerSignature = k.sign(&MESSAGE);
        let point = spki_point(
            k.verifying_key().to_public_key_der().unwrap().as_bytes(),
            65,
        );
        let sig = sig.to_vec();
        row(
            "ECDSA P-256 SHA-256",
            n,
            Some(time(n, || {
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
                let s = p256::ecdsa::DerSignature::from_bytes(&sig).unwrap();
                signature::Verifier::verify(&vk, &MESSAGE, &s).unwrap();
            })),
        );
        let k = p384::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
        let sig: p384::ecdsa::DerSignature = k.sign(&MESSAGE);
        let point = spki_point(
            k.verifying_key().to_public_key_der().unwrap().as_bytes(),
            97,
        );
        let sig = sig.to_vec();
        row(
            "ECDSA P-384 SHA-384",
            n,
            Some(time(n, || {
                let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
                let s = p384::ecdsa::DerSignature::from_bytes(&sig).unwrap();
                signature::Verifier::verify(&vk, &MESSAGE, &s).unwrap();
            })),
        );
        let mut rsa3072 = None;
        for bits in [2048, 3072, 4096] {
            let k = rsa::PrivateKey::new(&mut SysRng, bits).unwrap();
            let public = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&k.to_public_key()).unwrap();
            let public = public.as_bytes().to_vec();
            let sig = k.pkcs1v15_sign::<Sha256>(&MESSAGE).unwrap();
            row(
                &format!("RSA-{bits} PKCS#1 v1.5 SHA-256"),
                n,
                Some(time(n, || {
                    let pk: rsa::PublicKey =
                        rsa::pkcs1::DecodeRsaPublicKey::from_pkcs1_der(&public).unwrap();
                    pk.pkcs1v15_verify::<Sha256>(&MESSAGE, &sig).unwrap();
                })),
            );
            if bits == 3072 {
                let sig = k.pss_sign::<Sha256>(&MESSAGE).unwrap();
                row(
                    "RSA-3072 PSS SHA-256",
                    n,
                    Some(time(n, || {
                        let pk: rsa::PublicKey =
                            rsa::pkcs1::DecodeRsaPublicKey::from_pkcs1_der(&public).unwrap();
                        pk.pss_verify::<Sha256>(&MESSAGE, &sig).unwrap();
                    })),
                );
                rsa3072 = Some(k);
            }
        }
        let k = ed25519_key();
        let sig = k.sign(&MESSAGE).to_bytes();
        let public = k.verifying_key().to_bytes();
        row(
            "Ed25519",
            n,
            Some(time(n, || {
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
                let s = ed25519_dalek::Signature::from_bytes(&sig);
                vk.verify_strict(&MESSAGE, &s).unwrap();
            })),
        );

        println!("\n| throwaway key: generate (+ PKCS#8) | rounds | median |\n|---|---:|---:|");
        let m = rounds(n, 4);
        row(
            "ECDSA P-256",
            m,
            Some(time(m, || {
                std::hint::black_box(
                    p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                        .unwrap()
                        .to_pkcs8_der()
                        .unwrap(),
                )
            })),
        );
        row(
            "ECDSA P-384",
            m,
            Some(time(m, || {
                std::hint::black_box(
                    p384::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng)
                        .unwrap()
                        .to_pkcs8_der()
                        .unwrap(),
                )
            })),
        );
        for (bits, m) in [(2048, 20), (3072, 15), (4096, 15)] {
            row(
                &format!("RSA-{bits}"),
                m,
                Some(time(m, || {
                    std::hint::black_box(
                        rsa::PrivateKey::new(&mut SysRng, bits)
                            .unwrap()
                            .to_pkcs8_der()
                            .unwrap(),
                    )
                })),
            );
        }
        row(
            "Ed25519",
            m,
            Some(time(m, || {
                std::hint::black_box(ed25519_key().to_pkcs8_der().unwrap())
            })),
        );

        println!("\n| throwaway key: one signature | rounds | median |\n|---|---:|---:|");
        let k = p256::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
        row(
            "ECDSA P-256 SHA-256",
            n,
            Some(time(n, || {
                std::hint::black_box::<p256::ecdsa::DerSignature>(k.sign(&MESSAGE))
            })),
        );
        let k = p384::ecdsa::SigningKey::try_generate_from_rng(&mut SysRng).unwrap();
        row(
            "ECDSA P-384 SHA-384",
            n,
            Some(time(n, || {
                std::hint::black_box::<p384::ecdsa::DerSignature>(k.sign(&MESSAGE))
            })),
        );
        let k = rsa3072.unwrap();
        let m = rounds(n, 10);
        row(
            "RSA-3072 PKCS#1 v1.5 SHA-256",
            m,
            Some(time(m, || {
                std::hint::black_box(k.pkcs1v15_sign::<Sha256>(&MESSAGE).unwrap())
            })),
        );
        let k = ed25519_key();
        row(
            "Ed25519",
            n,
            Some(time(n, || std::hint::black_box(k.sign(&MESSAGE)))),
        );
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROUNDS must be a number"))
        .unwrap_or(2000);
    println!("## {} (release build, one thread)\n", backend::NAME);
    backend::run(n);
}
