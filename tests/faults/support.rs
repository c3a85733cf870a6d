//! Raw TCP receivers, a compressed retry schedule, and waits on deliveries and logs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::common::{first_delivery, Relay};

pub(crate) use crate::common::WAIT;

/// The nominal first retry delay every test configures (± `JITTER`).
pub(crate) const BACKOFF_MS: i64 = 1000;
pub(crate) const JITTER: f64 = 0.1;
/// Whole-call timeout every test configures unless it says otherwise.
pub(crate) const TIMEOUT_MS: i64 = 500;

/// A `[delivery]` table: a compressed schedule (1 s ± 10 %, then 2 s), two attempts, a
/// 500 ms whole-call timeout, 3 s `Retry-After` ceiling, 4 KiB body cap; `changes` replace
/// or add keys.
pub(crate) fn delivery_toml(changes: &[(&str, &str)]) -> String {
    let base = [
        ("initial_backoff_ms", BACKOFF_MS.to_string()),
        ("backoff_multiplier", "2.0".into()),
        ("max_backoff_ms", "4000".into()),
        ("backoff_jitter", JITTER.to_string()),
        ("max_attempts", "2".into()),
        ("poll_interval_ms", "20".into()),
        ("request_timeout_ms", TIMEOUT_MS.to_string()),
        ("connect_timeout_ms", "500".into()),
        ("max_retry_after_secs", "3".into()),
        ("response_body_cap_bytes", "4096".into()),
    ];
    let mut out = String::from("[delivery]\n");
    for (k, default) in &base {
        let v = changes.iter().find(|(c, _)| c == k).map(|(_, v)| v.to_string());
        out.push_str(&format!("{k} = {}\n", v.unwrap_or_else(|| default.clone())));
    }
    for (k, v) in changes {
        if !base.iter().any(|(b, _)| b == k) {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

/// A receiver on 127.0.0.1 that reads each request (head and `Content-Length` body), then
/// hands the socket and the connection's 0-based index to `script`, which writes whatever
/// bytes it likes. Returns the address and a count of requests read.
pub(crate) async fn raw_receiver<F, Fut>(script: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count: Arc<AtomicUsize> = Arc::default();
    let (script, seen) = (Arc::new(script), count.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (script, seen) = (script.clone(), seen.clone());
            tokio::spawn(async move {
                if read_request(&mut stream).await {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    script(n, stream).await;
                }
            });
        }
    });
    (addr, count)
}

/// Reads one request head and its `Content-Length` body; false if the peer went away.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

/// Creates an automation for `processor` calling `url`, sends one message, and returns the
/// delivery id.
pub(crate) async fn deliver_one(relay: &Relay, processor: &str, url: &str) -> String {
    relay.create_automation(processor, url).await;
    first_delivery(&relay.send_message(processor, json!({"fault": processor})).await)
}

/// Waits until delivery `id` has recorded `attempts` attempts; returns the delivery as it
/// was then and its logs.
pub(crate) async fn after_attempt(relay: &Relay, id: &str, attempts: u64) -> (Value, Vec<Value>) {
    let d = relay
        .wait_for(WAIT, &format!("attempt {attempts} of {id}"), || async {
            let d = relay.delivery(id).await;
            (d["attempts"].as_u64() >= Some(attempts)).then_some(d)
        })
        .await;
    assert_eq!(d["attempts"], attempts, "attempts moved on before the check: {d}");
    let logs = relay.logs_of(id).await;
    assert_eq!(logs.len() as u64, attempts, "one log per attempt: {logs:?}");
    (d, logs)
}

/// Unix ms of an RFC 3339 time in a JSON field.
pub(crate) fn ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).expect("rfc3339").timestamp_millis()
}

/// Asserts a pending delivery's next attempt is `expected_ms` (± `tolerance_ms`) after the
/// end of the call that `log` records; returns the actual delay.
pub(crate) fn assert_next_attempt(
    d: &Value,
    log: &Value,
    expected_ms: i64,
    tolerance_ms: i64,
) -> i64 {
    assert_eq!(d["status"], "pending", "a retry must be scheduled: {d}");
    let delay = ms(&d["next_attempt_at"]) - ms(&log["external_request_log"]["response_at"]);
    assert!(
        (expected_ms - tolerance_ms..=expected_ms + tolerance_ms).contains(&delay),
        "next attempt {delay} ms after the call ended, expected {expected_ms} ± {tolerance_ms}: {d}"
    );
    delay
}

/// Asserts the next attempt follows the configured first backoff (1 s ± 10 %).
pub(crate) fn assert_default_backoff(d: &Value, log: &Value) {
    let tolerance = (BACKOFF_MS as f64 * JITTER) as i64 + 2;
    assert_next_attempt(d, log, BACKOFF_MS, tolerance);
}

/// Asserts the log is a failure with `code` and `status`.
pub(crate) fn assert_failed(log: &Value, code: &str, status: u64) {
    assert_eq!(log["error_code"], code, "{log}");
    assert_eq!(log["external_request_log"]["status_code"], status, "{log}");
    let error = log["external_request_log"]["error"].as_str().unwrap_or("");
    assert!(error.starts_with(code), "error text should start with {code}: {error:?}");
}

/// Sends one message to a new automation calling `url`, waits for its first attempt, and
/// asserts it failed with `code` and `status` and was rescheduled on the configured
/// backoff. Returns the delivery id, the delivery after attempt 1, and that attempt's log.
pub(crate) async fn first_failure(
    relay: &Relay,
    processor: &str,
    url: &str,
    code: &str,
    status: u64,
) -> (String, Value, Value) {
    let id = deliver_one(relay, processor, url).await;
    let (d, logs) = after_attempt(relay, &id, 1).await;
    assert_failed(&logs[0], code, status);
    assert_eq!(logs[0]["trigger"], "initial", "{}", logs[0]);
    assert_default_backoff(&d, &logs[0]);
    (id, d, logs.into_iter().next().expect("log"))
}

/// Waits for the second (last) attempt of `id` and asserts it was made when `pending`
/// (the delivery after attempt 1) said, failed with `code` as well, and exhausted it.
pub(crate) async fn assert_retried_then_exhausted(
    relay: &Relay,
    id: &str,
    pending: &Value,
    code: &str,
) {
    let d = relay.wait_delivery_ends(id, "exhausted").await;
    assert!(d["next_attempt_at"].is_null(), "nothing scheduled after exhaustion: {d}");
    let logs = relay.logs_of(id).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(logs[1]["trigger"], "retry");
    assert_eq!(logs[1]["error_code"], code, "{}", logs[1]);
    let early =
        ms(&logs[1]["external_request_log"]["request_at"]) - ms(&pending["next_attempt_at"]);
    assert!((-5..600).contains(&early), "retry made {early} ms after it was due");
}
