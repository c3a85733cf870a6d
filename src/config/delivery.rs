//! `[delivery]`: how deliveries are sent, retried and recorded, and how many calls are made
//! at once.

use std::time::Duration;

use serde::Deserialize;

/// How deliveries are sent, retried and recorded.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// TCP (and TLS) connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Whole-call timeout including the response body, milliseconds.
    pub request_timeout_ms: u64,
    /// Attempts before a delivery is marked `exhausted` (first attempt included).
    pub max_attempts: u32,
    /// A delivery older than this (seconds) is not retried again.
    pub max_age_secs: u64,
    /// First retry delay, milliseconds.
    pub initial_backoff_ms: u64,
    /// Growth factor between retry delays.
    pub backoff_multiplier: f64,
    /// Largest retry delay, milliseconds.
    pub max_backoff_ms: u64,
    /// Jitter: each delay is drawn from ±this fraction around its nominal value.
    pub backoff_jitter: f64,
    /// Longest `Retry-After` honoured, seconds; longer values are clamped.
    pub max_retry_after_secs: u64,
    /// Calls in flight at once, all automations together.
    pub global_concurrency: usize,
    /// Calls in flight at once to one automation.
    pub per_automation_concurrency: usize,
    /// Deliveries waiting in memory behind one automation's calls in flight (its share).
    pub per_automation_backlog: usize,
    /// Deliveries waiting in memory behind calls in flight, all automations together.
    pub lane_backlog: usize,
    /// How long a rerun or test call waits for a call slot before it is answered 503, ms.
    pub call_slot_wait_ms: u64,
    /// Response bodies are stored up to this many bytes and flagged when truncated.
    pub response_body_cap_bytes: usize,
    /// How often the dispatcher looks for due retries when nothing woke it, milliseconds.
    pub poll_interval_ms: u64,
    /// On SIGTERM, how long in-flight calls may take to finish, seconds.
    pub shutdown_grace_secs: u64,
    /// Most deliveries one recover job re-queues, or one replay-missing job creates.
    pub recover_max_deliveries: u32,
    /// Deliveries a recover job re-queues per write: a big job never holds the writer for
    /// long, and a cancel takes effect at the next chunk.
    pub recover_chunk_size: u32,
    /// `User-Agent` of outgoing calls.
    pub user_agent: String,
    /// Per automation, at most one log line about a failed attempt per this many
    /// milliseconds; the failures after it are counted and summed up in one line when the
    /// interval ends, so a flood of failures cannot drown the log.
    pub failure_log_interval_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            request_timeout_ms: 15_000,
            max_attempts: 8,
            max_age_secs: 3 * 24 * 3600,
            initial_backoff_ms: 5_000,
            backoff_multiplier: 4.0,
            max_backoff_ms: 6 * 3600 * 1000,
            backoff_jitter: 0.2,
            max_retry_after_secs: 3600,
            global_concurrency: 256,
            per_automation_concurrency: 64,
            per_automation_backlog: 1024,
            lane_backlog: 8192,
            call_slot_wait_ms: 5_000,
            response_body_cap_bytes: 64 * 1024,
            poll_interval_ms: 500,
            shutdown_grace_secs: 10,
            recover_max_deliveries: 100_000,
            recover_chunk_size: 500,
            user_agent: concat!("hookrelay/", env!("CARGO_PKG_VERSION")).into(),
            failure_log_interval_ms: 60_000,
        }
    }
}

impl DeliveryConfig {
    /// Connect timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    /// Whole-call timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}
