//! `[retention]`: how long logs, messages and stored content are kept, and how the background
//! task that deletes older ones paces itself.

use serde::Deserialize;

use super::{bad, ConfigError};
use crate::store::USE_REFRESH_MS;

/// Longest retention window, seconds (100 years): far past any real need, and its
/// milliseconds stay well inside an `i64` (and a 48-bit id time).
const MAX_RETENTION_SECS: u64 = 100 * 365 * 86_400;
/// Most rows one batch deletes: each batch is one short write of the single writer, which
/// every ingest waits behind, so it must stay small.
const MAX_BATCH_ROWS: usize = 10_000;
/// Longest pause between two batches, ms: a longer one would leave retention all but off
/// without saying so (a pass of many batches would take days).
const MAX_BATCH_PAUSE_MS: u64 = 60_000;
/// Longest time between two passes, ms.
const MAX_INTERVAL_MS: u64 = 86_400_000;
/// Shortest content window, seconds (10 minutes): content's last use is noted at most every
/// [`USE_REFRESH_MS`] (`bodies.used_at`), so a window shorter than twice that would delete
/// content in use.
const MIN_PAYLOAD_SECS: u64 = 2 * USE_REFRESH_MS.unsigned_abs() / 1000;

/// How long things are kept. A window of 0 keeps them forever.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// AutomationLogs older than this (seconds) are deleted.
    pub logs_secs: u64,
    /// Messages older than this (seconds) are deleted with their deliveries, unless a
    /// delivery of theirs is still pending.
    pub messages_secs: u64,
    /// Stored content (payloads, request and response bodies, automation snapshots, uploaded
    /// files) not used for this long (seconds) is deleted, whatever still refers to it.
    pub payload_secs: u64,
    /// Most rows one batch deletes; each batch is a write of its own.
    pub batch_rows: usize,
    /// Pause between two batches, milliseconds, so that other writes go first.
    pub batch_pause_ms: u64,
    /// Time between the end of one pass and the start of the next, milliseconds.
    pub interval_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let thirty_days = 30 * 86_400;
        Self {
            logs_secs: thirty_days,
            messages_secs: thirty_days,
            payload_secs: thirty_days,
            batch_rows: 100,
            batch_pause_ms: 5,
            interval_ms: 600_000,
        }
    }
}

impl RetentionConfig {
    /// Rejects values that parse but cannot work (a negative one does not parse, and the
    /// parser's error names its key).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let windows = [
            ("retention.logs_secs", self.logs_secs),
            ("retention.messages_secs", self.messages_secs),
            ("retention.payload_secs", self.payload_secs),
        ];
        for (key, secs) in windows {
            if secs > MAX_RETENTION_SECS {
                let problem =
                    format!("must be at most {MAX_RETENTION_SECS} (100 years; 0 keeps forever)");
                return Err(bad(key, problem));
            }
        }
        if (1..MIN_PAYLOAD_SECS).contains(&self.payload_secs) {
            let problem = format!(
                "must be 0 (keep forever) or at least {MIN_PAYLOAD_SECS} (10 minutes): \
                 content's last use is noted at most every 5 minutes"
            );
            return Err(bad("retention.payload_secs", problem));
        }
        if self.batch_rows == 0 || self.batch_rows > MAX_BATCH_ROWS {
            return Err(bad("retention.batch_rows", format!("must be 1 to {MAX_BATCH_ROWS}")));
        }
        if self.batch_pause_ms > MAX_BATCH_PAUSE_MS {
            let problem = format!("must be at most {MAX_BATCH_PAUSE_MS} (1 minute)");
            return Err(bad("retention.batch_pause_ms", problem));
        }
        if self.interval_ms == 0 || self.interval_ms > MAX_INTERVAL_MS {
            let problem = format!("must be 1 to {MAX_INTERVAL_MS} (1 day)");
            return Err(bad("retention.interval_ms", problem));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn retention_keys_are_checked_and_named() {
        let c = Config::from_toml("[retention]\nlogs_secs = 2\npayload_secs = 0\n").unwrap();
        c.validate().unwrap();
        assert_eq!((c.retention.logs_secs, c.retention.payload_secs), (2, 0));
        for (toml, key) in [
            ("logs_secs = -1", "retention.logs_secs"),
            ("messages_secs = -5", "retention.messages_secs"),
            ("payload_secs = 1.5", "retention.payload_secs"),
            ("batch_rows = -1", "retention.batch_rows"),
            ("interval_ms = \"1s\"", "retention.interval_ms"),
        ] {
            let e = Config::from_toml(&format!("[retention]\n{toml}\n")).unwrap_err();
            assert_eq!(e.key, key, "{toml}: {e}");
        }
        for (toml, key) in [
            ("messages_secs = 3153600001", "retention.messages_secs"),
            ("payload_secs = 599", "retention.payload_secs"),
            ("batch_rows = 0", "retention.batch_rows"),
            ("batch_rows = 10001", "retention.batch_rows"),
            ("interval_ms = 0", "retention.interval_ms"),
            ("interval_ms = 86400001", "retention.interval_ms"),
            ("batch_pause_ms = 60001", "retention.batch_pause_ms"),
            ("batch_pause_ms = 18446744073709551615", "retention.batch_pause_ms"),
        ] {
            let c = Config::from_toml(&format!("[retention]\n{toml}\n")).unwrap();
            assert_eq!(c.validate().unwrap_err().key, key, "{toml}");
        }
    }
}
