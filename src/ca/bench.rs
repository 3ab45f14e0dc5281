//! The token's raw signing speed: a tight C_Sign loop, the yardstick for hsmca's own cost.

use std::time::{Duration, Instant};

use super::signer::TokenSigner;
use crate::error::{Error, Result};

/// Timings of a C_Sign loop.
#[derive(Debug, Clone)]
pub struct RawSignStats {
    /// Signatures made.
    pub count: usize,
    /// Median time of one C_Sign.
    pub median: Duration,
    /// 10th percentile.
    pub p10: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// Mean.
    pub mean: Duration,
}

/// Times `count` C_Sign calls on a TBS-sized message (ECDSA: its host digest, prepared once),
/// after a few untimed warm-up calls.
pub fn raw_sign(signer: &TokenSigner<'_, '_>, count: usize) -> Result<RawSignStats> {
    if count == 0 {
        return Err(Error::invalid(
            "--count is 0",
            "time at least one signature",
        ));
    }
    // About the size of an intermediate's TBSCertificate.
    let message = vec![0x5a_u8; 600];
    let (mechanism, input) = signer.token_input(&message);
    for _ in 0..count.min(5) {
        signer.token_sign(mechanism, &input)?;
    }
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        signer.token_sign(mechanism, &input)?;
        times.push(start.elapsed());
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let total: Duration = times.iter().sum();
    Ok(RawSignStats {
        count,
        median: at(0.5),
        p10: at(0.1),
        p90: at(0.9),
        mean: total / count as u32,
    })
}
