//! The one clock: the only module that reads the system's time.
//!
//! Decisions (token expiry, caches, the JWKS cooldown, the mapping TTL) take time from a
//! [`Clock`] passed in, so tests move time with a [`ManualClock`] instead of sleeping.
//! Records and measurements (audit timestamps, EMF timestamps, latencies, progress) read
//! the free functions here, so that a search for the system clock finds one file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch (the unit of JWT `exp`, `nbf` and `iat`).
    fn now(&self) -> u64;

    /// Monotonic time since an arbitrary fixed origin, for intervals (cooldowns, the age of
    /// a key set): unlike [`Clock::now`] it never goes back when the wall clock is set.
    fn monotonic(&self) -> Duration;
}

/// The system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        since_epoch().as_secs()
    }

    fn monotonic(&self) -> Duration {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that only moves when told to; for tests and benchmarks. Its monotonic time is
/// its wall time, so [`ManualClock::advance`] moves both.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: u64) -> Self {
        Self(AtomicU64::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        Duration::from_secs(self.now())
    }
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch, for timestamps in records (EMF), never for decisions.
pub fn unix_millis() -> u64 {
    since_epoch().as_millis() as u64
}

/// Now as RFC 3339 in UTC, whole seconds ("2026-11-29T17:11:25Z"): the audit fields of
/// mapping items, history and migration records.
pub fn rfc3339_now() -> String {
    rfc3339(since_epoch().as_secs())
}

/// Seconds since the Unix epoch as RFC 3339 in UTC, whole seconds.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// A started stopwatch, for latencies and progress: the monotonic clock, read here only.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn manual_time_moves_both_clocks() {
        let c = ManualClock::new(100);
        let before = c.monotonic();
        c.advance(31);
        assert_eq!(c.now(), 131);
        assert_eq!(c.monotonic() - before, Duration::from_secs(31));
    }
}
