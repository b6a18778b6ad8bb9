//! How an admin change retries after losing a race: bounded, with full-jitter exponential
//! backoff, so that sixteen writers who collide spread out instead of colliding again in
//! step.
//!
//! A conflict here is cheap to retry: the change is a delta (add these, remove those, merge
//! this file), re-applied to what the table holds now. Only a true conflict (removing what
//! someone else removed, adding another effect for a target someone else mapped) stops it,
//! and that is not retried.

use std::time::Duration;

/// The bounds on retrying a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// No new attempt starts this long after the first conflict. Measured from the first
    /// conflict, not from the start, so that a long import still gets its retries.
    pub max_elapsed: Duration,
    /// The backoff ceiling of the first retry; it doubles per retry up to `max_delay`.
    pub base_delay: Duration,
    /// The largest ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// About 10 tries or 30 s, whichever comes first.
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(30),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(3),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry): uniform in
    /// `[0, min(max_delay, base_delay * 2^(retry-1))]` ("full jitter").
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        let mut random = [0u8; 8];
        // Without system randomness, no jitter: still bounded, just less spread.
        if aws_lc_rs::rand::fill(&mut random).is_err() {
            return ceiling;
        }
        let unit = (u64::from_le_bytes(random) >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_jittered_under_a_doubling_ceiling() {
        let p = RetryPolicy::default();
        for retry in 1..=12 {
            let ceiling = (p.base_delay * (1 << (retry - 1).min(16))).min(p.max_delay);
            let delays: Vec<Duration> = (0..64).map(|_| p.delay(retry)).collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "retry {retry}");
            // 64 draws from a continuous range are not all the same.
            assert!(delays.iter().any(|d| *d != delays[0]), "retry {retry}");
        }
        assert!(p.delay(30) <= p.max_delay);
    }
}
