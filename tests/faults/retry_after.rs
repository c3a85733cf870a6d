//! `Retry-After` at the edges: a date in the past means now, an absurd wait is clamped to
//! `max_retry_after_secs` (3 s here), never the default schedule and never negative.

use tokio::io::AsyncWriteExt;

use crate::common::Relay;
use crate::support::{
    after_attempt, assert_failed, assert_next_attempt, deliver_one, delivery_toml, ms, raw_receiver,
};

/// The configured ceiling, in ms.
const MAX_RETRY_AFTER_MS: i64 = 3_000;

/// An IMF-fixdate `offset` from now.
fn http_date(offset: chrono::Duration) -> String {
    (chrono::Utc::now() + offset).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// A receiver answering its first call `status` with `Retry-After: <value()>`, later
/// calls 200.
async fn refusing_once(status: u16, value: fn() -> String) -> String {
    let (addr, _) = raw_receiver(move |n, mut stream| async move {
        let answer = if n == 0 {
            format!(
                "HTTP/1.1 {status} Wait\r\nretry-after: {}\r\ncontent-length: 4\r\n\r\nwait",
                value()
            )
        } else {
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string()
        };
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    format!("http://{addr}/ra")
}

/// Runs one delivery against a receiver answering `status` + `Retry-After: value()` once;
/// asserts attempt 1 was rescheduled `expected_ms` (± `tolerance_ms`) after it ended, and
/// that attempt 2 came then and succeeded.
async fn check(
    relay: &Relay,
    processor: &str,
    status: u16,
    value: fn() -> String,
    expected_ms: i64,
    tolerance_ms: i64,
) {
    let url = refusing_once(status, value).await;
    let id = deliver_one(relay, processor, &url).await;
    let (d, logs) = after_attempt(relay, &id, 1).await;
    assert_failed(&logs[0], "E_HTTP_STATUS", u64::from(status));
    assert!(logs[0]["external_request_log"]["response_headers"]["retry-after"].is_string());
    let delay = assert_next_attempt(&d, &logs[0], expected_ms, tolerance_ms);
    assert!(delay >= 0, "{processor}: next attempt {delay} ms before the call ended");
    relay.wait_delivery_ends(&id, "succeeded").await;
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 2, "{processor}");
    let gap = ms(&logs[1]["external_request_log"]["request_at"])
        - ms(&logs[0]["external_request_log"]["response_at"]);
    assert!(
        gap >= expected_ms - tolerance_ms && gap < expected_ms + 500,
        "{processor}: retried {gap} ms after the refusal, expected ~{expected_ms} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_a_past_http_date_is_retried_at_once() {
    // The default schedule would wait 1000 ± 100 ms; a date an hour ago means "now". The
    // retry comes too fast to catch the delivery pending, so the logs show the gap.
    let relay = Relay::start(&delivery_toml(&[]));
    let url = refusing_once(429, || http_date(chrono::Duration::hours(-1))).await;
    let id = deliver_one(&relay, "proc_past", &url).await;
    let d = relay.wait_delivery_ends(&id, "succeeded").await;
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 2, "{d}");
    assert_failed(&logs[0], "E_HTTP_STATUS", 429);
    assert!(logs[1]["error_code"].is_null(), "{}", logs[1]);
    assert_eq!(logs[1]["trigger"], "retry");
    let gap = ms(&logs[1]["external_request_log"]["request_at"])
        - ms(&logs[0]["external_request_log"]["response_at"]);
    assert!((0..300).contains(&gap), "retried {gap} ms after a Retry-After in the past");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_a_ten_year_http_date_is_clamped() {
    let relay = Relay::start(&delivery_toml(&[]));
    let ten_years = || http_date(chrono::Duration::days(3_652));
    check(&relay, "proc_decade_date", 503, ten_years, MAX_RETRY_AFTER_MS, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_ten_years_in_seconds_is_clamped() {
    let relay = Relay::start(&delivery_toml(&[]));
    check(&relay, "proc_decade_secs", 503, || "315360000".into(), MAX_RETRY_AFTER_MS, 5).await;
}

// RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as the largest value,
// not ignored. 2^64 seconds overflows u64; it must be clamped like any absurd wait, not
// fall back to the ordinary schedule (which would retry a receiver that asked for quiet
// after 1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_an_overflowing_delta_seconds_is_clamped() {
    let relay = Relay::start(&delivery_toml(&[]));
    let huge = || "18446744073709551616".into();
    check(&relay, "proc_overflow", 503, huge, MAX_RETRY_AFTER_MS, 5).await;
}
