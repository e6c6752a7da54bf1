//! Per-token budgets: how many events one token may post per second (`serve
//! --events-per-token`), as a token bucket per token that holds ten seconds' worth, so a burst
//! after a pause is taken whole and a steady flood is refused (429 with `Retry-After`). The
//! time is the server's clock, so tests move it instead of waiting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

/// How many seconds' worth a bucket holds.
const BURST_SECONDS: f64 = 10.0;

/// Buckets kept before idle full ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

/// Events per second per token; 0 is no limit.
#[derive(Debug, Default)]
pub struct TokenBudget {
    per_second: AtomicU64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// What is left.
    level: f64,
    /// When it was last filled up to now.
    at: DateTime<Utc>,
}

impl TokenBudget {
    /// A budget of `per_second` events per token (0: none).
    pub fn new(per_second: u64) -> TokenBudget {
        TokenBudget { per_second: AtomicU64::new(per_second), ..TokenBudget::default() }
    }

    /// Changes the rate (0: no limit).
    pub fn set(&self, per_second: u64) {
        self.per_second.store(per_second, Ordering::Relaxed);
    }

    /// The rate (0: no limit).
    pub fn per_second(&self) -> u64 {
        self.per_second.load(Ordering::Relaxed)
    }

    /// Takes `n` from `token`'s bucket at `now`, or says how many seconds until it holds `n`.
    /// A batch larger than the whole bucket is taken when the bucket is full, leaving it in
    /// debt for as long as the batch is worth.
    pub fn take(&self, token: &str, n: u64, now: DateTime<Utc>) -> Result<(), u64> {
        let rate = self.per_second();
        if rate == 0 || n == 0 {
            return Ok(());
        }
        let (rate, want) = (rate as f64, n as f64);
        let full = rate * BURST_SECONDS;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(token) {
            buckets.retain(|_, b| b.level + rate * seconds(b.at, now) < full);
        }
        let b = buckets.entry(token.to_owned()).or_insert(Bucket { level: full, at: now });
        b.level = (b.level + rate * seconds(b.at, now)).min(full);
        b.at = b.at.max(now);
        if b.level >= want.min(full) {
            b.level -= want;
            return Ok(());
        }
        let missing = want.min(full) - b.level;
        Err(((missing / rate).ceil() as u64).max(1))
    }
}

/// Seconds from `then` to `now` (0 if the clock went back).
fn seconds(then: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    ((now - then).num_milliseconds().max(0) as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_bucket_holds_ten_seconds_and_refills_with_time() {
        let t0 = Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap();
        let at = |ms: i64| t0 + chrono::Duration::milliseconds(ms);
        let b = TokenBudget::new(100);
        assert_eq!(b.take("a", 1000, at(0)), Ok(()), "a full bucket: ten seconds' worth");
        assert_eq!(b.take("a", 1, at(0)), Err(1));
        assert_eq!(b.take("b", 500, at(0)), Ok(()), "each token has its own");
        assert_eq!(b.take("a", 250, at(2000)), Err(1), "200 back after 2 s");
        assert_eq!(b.take("a", 200, at(2000)), Ok(()));
        assert_eq!(
            b.take("a", 5000, at(11_000)),
            Err(1),
            "more than a bucket waits for a full one"
        );
        assert_eq!(b.take("a", 5000, at(100_000)), Ok(()), "and is then taken whole");
        assert_eq!(b.take("a", 1, at(100_000)), Err(41), "leaving the bucket 4000 in debt");
        b.set(0);
        assert_eq!(b.take("a", 1_000_000, at(100_000)), Ok(()), "0 is no limit");
    }
}
