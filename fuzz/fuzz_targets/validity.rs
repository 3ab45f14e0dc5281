//! Durations (`--validity`, `--next-update`) and times (`--not-before`, `--not-after`,
//! `revoke --date`), and the validity periods made from them.
#![no_main]

use hsmca::internals::x509::{Lifetime, ValidityPeriod, parse_time};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let start = time::macros::datetime!(2026-11-29 00:00:00 UTC);
    if let Ok(lifetime) = text.parse::<Lifetime>()
        && let Ok(period) = ValidityPeriod::starting(start, lifetime)
    {
        let _ = period.to_x509();
    }
    for end_of_day in [false, true] {
        if let Ok(t) = parse_time(text, end_of_day) {
            for lifetime in [Lifetime::Seconds(1), Lifetime::Years(100)] {
                if let Ok(period) = ValidityPeriod::starting(t, lifetime) {
                    let _ = period.to_x509();
                }
            }
            if let Ok(period) = ValidityPeriod::between(start, t) {
                let _ = period.to_x509();
            }
            if let Ok(period) = ValidityPeriod::between(t, start) {
                let _ = period.to_x509();
            }
        }
    }
});
