//! The retry schedule. Every use of the `backoff` crate lives here (it is flagged
//! unmaintained; swapping it for another crate touches only this file). `backoff` computes
//! the jittered exponential delays; the attempt and age bounds are ours, because the
//! schedule is persisted (`next_attempt_at`) and must survive restarts.

use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;

use crate::config::DeliveryConfig;
use crate::time::UnixMs;

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time.
    RetryAt(UnixMs),
    /// No more attempts: out of attempts or past the maximum age.
    Exhausted,
}

/// Retry bounds and delay shape.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    max_age_ms: i64,
    initial: Duration,
    multiplier: f64,
    max_interval: Duration,
    jitter: f64,
    max_retry_after: Duration,
}

impl RetryPolicy {
    /// The policy of the `[delivery]` section.
    pub fn from_config(c: &DeliveryConfig) -> Self {
        Self {
            max_attempts: c.max_attempts,
            max_age_ms: i64::try_from(c.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            initial: Duration::from_millis(c.initial_backoff_ms),
            multiplier: c.backoff_multiplier,
            max_interval: Duration::from_millis(c.max_backoff_ms),
            jitter: c.backoff_jitter,
            max_retry_after: Duration::from_secs(c.max_retry_after_secs),
        }
    }

    /// The jittered delay after the `attempt`-th failed attempt (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let nominal = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        let nominal = Duration::from_secs_f64(nominal.min(self.max_interval.as_secs_f64()));
        let mut backoff = ExponentialBackoff {
            current_interval: nominal,
            initial_interval: self.initial,
            randomization_factor: self.jitter,
            multiplier: self.multiplier,
            max_interval: self.max_interval,
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        backoff.next_backoff().unwrap_or(nominal)
    }

    /// Decides after failed attempt number `attempt` of a delivery created at `created_at`.
    /// A `Retry-After` (from a 429 or 503) replaces the computed delay, clamped to the maximum.
    pub fn next(
        &self,
        attempt: u32,
        created_at: UnixMs,
        now: UnixMs,
        retry_after: Option<Duration>,
    ) -> Next {
        if attempt >= self.max_attempts {
            return Next::Exhausted;
        }
        let delay =
            retry_after.map(|d| d.min(self.max_retry_after)).unwrap_or_else(|| self.delay(attempt));
        let at = now.plus(delay);
        if at > created_at.plus_ms(self.max_age_ms) {
            Next::Exhausted
        } else {
            Next::RetryAt(at)
        }
    }
}

/// Parses a `Retry-After` value: delta seconds or an HTTP-date (relative to `now`) in
/// any of the three forms RFC 9110 §5.6.7 obliges a recipient to accept: IMF-fixdate,
/// obsolete RFC 850, and asctime.
pub fn parse_retry_after(value: &str, now: UnixMs) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too large for u64: the longest wait there is (clamped by the policy).
        return Some(Duration::MAX);
    }
    let at = match chrono::DateTime::parse_from_rfc2822(value) {
        Ok(at) => at.timestamp_millis(),
        Err(_) => {
            // asctime pads the day with a space ("Oct  1"): collapse runs of spaces first.
            let single_spaced = value.split_whitespace().collect::<Vec<_>>().join(" ");
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"].iter().find_map(|format| {
                chrono::NaiveDateTime::parse_from_str(&single_spaced, format).ok()
            })?
        }
        .and_utc()
        .timestamp_millis(),
    };
    Some(Duration::from_millis(u64::try_from(UnixMs::from_ms(at).since(now)).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::from_config(&DeliveryConfig {
            max_attempts: 4,
            initial_backoff_ms: 1000,
            backoff_multiplier: 2.0,
            max_backoff_ms: 3000,
            backoff_jitter: 0.2,
            max_age_secs: 60,
            max_retry_after_secs: 10,
            ..DeliveryConfig::default()
        })
    }

    /// The README's default schedule: ~5 s, 20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h (within
    /// the jitter), at most 8 attempts, and never past 3 days from the message.
    #[test]
    fn the_default_schedule_is_the_one_the_readme_gives() {
        let p = RetryPolicy::from_config(&DeliveryConfig::default());
        let jitter = DeliveryConfig::default().backoff_jitter;
        let readme_secs = [5.0, 20.0, 80.0, 320.0, 1280.0, 5120.0, 20480.0];
        for (attempt, nominal) in (1..).zip(readme_secs) {
            for _ in 0..50 {
                let d = p.delay(attempt).as_secs_f64();
                let (low, high) =
                    (nominal * (1.0 - jitter) - 0.01, nominal * (1.0 + jitter) + 0.01);
                assert!((low..=high).contains(&d), "attempt {attempt}: {d} s, README ~{nominal} s");
            }
        }
        let start = UnixMs::EPOCH;
        assert!(
            matches!(p.next(7, start, start, None), Next::RetryAt(_)),
            "the 8th attempt is made"
        );
        assert_eq!(p.next(8, start, start, None), Next::Exhausted, "no 9th attempt");
        let almost_three_days = start.plus_ms(3 * 24 * 3600 * 1000 - 1000);
        assert_eq!(p.next(1, start, almost_three_days, None), Next::Exhausted, "past 3 days");
    }

    #[test]
    fn delays_grow_with_jitter_and_cap() {
        let p = policy();
        for (attempt, nominal) in [(1, 1000.0), (2, 2000.0), (3, 3000.0), (9, 3000.0)] {
            for _ in 0..50 {
                let d = p.delay(attempt).as_secs_f64() * 1000.0;
                assert!(
                    d >= nominal * 0.8 - 1.0 && d <= nominal * 1.2 + 1.0,
                    "attempt {attempt}: {d}"
                );
            }
        }
    }

    #[test]
    fn bounds_and_retry_after() {
        let p = policy();
        assert_eq!(p.next(4, UnixMs::EPOCH, UnixMs::from_ms(0), None), Next::Exhausted);
        assert_eq!(
            p.next(1, UnixMs::EPOCH, UnixMs::from_ms(0), Some(Duration::from_secs(7))),
            Next::RetryAt(UnixMs::from_ms(7000))
        );
        assert_eq!(
            p.next(1, UnixMs::EPOCH, UnixMs::from_ms(0), Some(Duration::from_secs(700))),
            Next::RetryAt(UnixMs::from_ms(10_000))
        );
        assert_eq!(
            p.next(1, UnixMs::EPOCH, UnixMs::from_ms(59_900), None),
            Next::Exhausted,
            "past max age"
        );
        assert_eq!(parse_retry_after(" 12 ", UnixMs::EPOCH), Some(Duration::from_secs(12)));
        let now = UnixMs::parse("2015-10-21T07:28:00Z").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:30 2015", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Thu Oct  1 07:28:00 2015", now),
            Some(Duration::ZERO),
            "past dates mean now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
