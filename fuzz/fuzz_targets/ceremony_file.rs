//! Ceremony files (TOML): the whole parse and check of `hsmca ceremony plan|run`, i.e.
//! `ceremony::config::parse` (TOML decoding, every step kind's `validate()`, the checks across
//! sections and steps), then what the plan makes of a checked file without the token or the
//! file system: the normal form of each step, its outputs and its validity resolved at a fixed
//! moment. Must never panic, and a refusal must print.
//!
//! Left out (they read files or the token): `CeremonyFile::load`'s read and digest, and
//! `ceremony::plan::build` (CSR files, output path checks, the CA directory and the token).
#![no_main]

use std::path::Path;

use hsmca::internals::ceremony::{Step, normal_step, parse, step_outputs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = match parse(Path::new("ceremony.toml"), text) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let now = time::macros::datetime!(2026-11-29 12:34:56.789 UTC);
    let _ = file.resolve(&file.ceremony.ca_dir);
    let _ = file.resolve(&file.ceremony.transcript);
    for s in &file.steps {
        assert!(
            s.number >= 1 && s.line >= 1,
            "step {} at line {}",
            s.number,
            s.line
        );
        let normal = normal_step(&s.step);
        assert_eq!(normal["kind"], s.step.kind(), "{normal}");
        let _ = serde_json::to_vec(&normal).unwrap();
        for out in step_outputs(&s.step) {
            let _ = file.resolve(&out);
        }
        let profile = match &s.step {
            Step::CreateRoot(r) => Some(&r.profile),
            Step::SignIntermediate(i) => Some(&i.profile),
            _ => None,
        };
        if let Some(p) = profile {
            let _ = p.validity.describe();
            if let Ok(period) = p.validity.resolve(now) {
                let _ = period.to_x509();
            }
        }
    }
});
