//! Failed attempts in the server log, rate-limited per automation so a flood cannot drown it.
//!
//! Per automation, the first failure logs one WARN line (automation, error code, status,
//! delivery, attempt, next attempt or exhaustion) and opens a window of
//! `delivery.failure_log_interval_ms`. Failures inside the window are only counted, by code;
//! when it ends, one WARN line sums them up ("N more failed attempts for automation X …"),
//! and the next failure opens a new window. So an automation writes at most two lines per
//! interval, however many of its calls fail. Successful attempts never come here.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::outbound::ErrorCode;
use crate::time::UnixMs;

/// What happens to a delivery after its failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Retried at this time.
    RetryAt(UnixMs),
    /// No attempt left: the delivery is `exhausted`.
    Exhausted,
    /// No retry: the automation is disabled, the payload is gone, or it was a recover job's
    /// one attempt.
    Failed,
}

/// One failed attempt, as the dispatcher knows it.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt<'a> {
    /// `endp_…`
    pub automation_id: &'a str,
    /// `dlv_…`
    pub delivery_id: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Why it failed.
    pub code: ErrorCode,
    /// The receiver's status; 0 when no response arrived.
    pub status: u16,
    /// What follows.
    pub after: AfterFailure,
}

/// What one automation's open window has counted.
struct Window {
    opened: Instant,
    more: u64,
    exhausted: u64,
    codes: Vec<(ErrorCode, u64)>,
}

/// See the module doc.
pub struct FailureLog {
    interval: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

impl FailureLog {
    /// A log allowing one line per automation per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, windows: Mutex::default() }
    }

    /// How often [`FailureLog::flush`] should run so a summary comes at most this late.
    pub fn flush_every(&self) -> Duration {
        (self.interval / 2).max(Duration::from_millis(50))
    }

    /// Logs `failed`, or counts it in its automation's open window.
    pub fn record(&self, failed: FailedAttempt<'_>) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let ended = match windows.get_mut(failed.automation_id) {
            Some(window) if now.duration_since(window.opened) < self.interval => {
                window.count(&failed);
                return;
            }
            Some(window) => Some(std::mem::replace(window, Window::new(now))),
            None => {
                windows.insert(failed.automation_id.to_string(), Window::new(now));
                None
            }
        };
        drop(windows);
        if let Some(ended) = ended {
            ended.summarize(failed.automation_id, self.interval);
        }
        log_line(&failed);
    }

    /// Sums up and closes the windows that have ended (all of them when `all`, at shutdown).
    pub fn flush(&self, all: bool) {
        let now = Instant::now();
        let mut ended = Vec::new();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.retain(|automation, window| {
            let open = !all && now.duration_since(window.opened) < self.interval;
            if !open && window.more > 0 {
                ended.push((automation.clone(), std::mem::replace(window, Window::new(now))));
            }
            open
        });
        drop(windows);
        for (automation, window) in ended {
            window.summarize(&automation, self.interval);
        }
    }
}

impl Window {
    fn new(opened: Instant) -> Self {
        Self { opened, more: 0, exhausted: 0, codes: Vec::new() }
    }

    fn count(&mut self, failed: &FailedAttempt<'_>) {
        self.more += 1;
        if failed.after == AfterFailure::Exhausted {
            self.exhausted += 1;
        }
        match self.codes.iter_mut().find(|(code, _)| *code == failed.code) {
            Some((_, n)) => *n += 1,
            None => self.codes.push((failed.code, 1)),
        }
    }

    fn summarize(mut self, automation: &str, interval: Duration) {
        if self.more == 0 {
            return;
        }
        self.codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
        let codes: Vec<String> =
            self.codes.iter().map(|(code, n)| format!("{code} x{n}")).collect();
        tracing::warn!(
            automation = %automation,
            exhausted = self.exhausted,
            "{} more failed attempts for automation {automation} in the {interval:?} after the \
             last line about it (codes {})",
            self.more,
            codes.join(", "),
        );
    }
}

fn log_line(failed: &FailedAttempt<'_>) {
    let FailedAttempt { automation_id, delivery_id, attempt, code, status, after } = *failed;
    match after {
        AfterFailure::RetryAt(at) => tracing::warn!(
            automation = %automation_id, code = %code, status, delivery = %delivery_id, attempt,
            next_attempt_at = %at.rfc3339(),
            "delivery attempt failed; retry scheduled"
        ),
        AfterFailure::Exhausted => tracing::warn!(
            automation = %automation_id, code = %code, status, delivery = %delivery_id, attempt,
            "delivery exhausted: its last attempt failed"
        ),
        AfterFailure::Failed => tracing::warn!(
            automation = %automation_id, code = %code, status, delivery = %delivery_id, attempt,
            "delivery failed with no retry (automation disabled, payload gone, or a recover job's one attempt)"
        ),
    }
}
