mod common;

// End-to-end delivery behaviour: retries on the persisted schedule, exhaustion,
// `Retry-After`, timeouts, the response-body cap, redirects, the SSRF guard, secret
// rotation, disabled automations, fan-out and graceful shutdown. Every test runs the real
// binary against receivers on 127.0.0.1 with its own SQLite file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use common::{verify_signature, Receiver, Relay};
use serde_json::{json, Value};

/// How long any single wait in these tests may take before it counts as a failure.
const WAIT: Duration = Duration::from_secs(10);

/// A full `[delivery]` table: `common::FAST_RETRIES` with some keys replaced or added.
/// (Appending a second `[delivery]` table to FAST_RETRIES would be invalid TOML.)
fn delivery_toml(changes: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut seen = Vec::new();
    for line in common::FAST_RETRIES.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match changes.iter().find(|(k, _)| *k == key) {
            Some((k, v)) => {
                out.push_str(&format!("{k} = {v}\n"));
                seen.push(*k);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (k, v) in changes {
        if !seen.contains(k) {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    assert_eq!(out.matches("[delivery]").count(), 1);
    out
}

async fn delivery(relay: &Relay, id: &str) -> Value {
    relay.get_json(&format!("/v1/deliveries/{id}")).await
}

/// Waits until delivery `id` leaves `pending`, then asserts it ended as `status`.
async fn wait_delivery(relay: &Relay, id: &str, status: &str) -> Value {
    let d = relay
        .wait_for(WAIT, &format!("delivery {id} to end (expected {status})"), || async {
            let d = delivery(relay, id).await;
            (d["status"] != "pending").then_some(d)
        })
        .await;
    assert_eq!(d["status"], status, "delivery ended otherwise: {d}");
    d
}

/// The logs of delivery `id`, in attempt order.
async fn logs_of(relay: &Relay, id: &str) -> Vec<Value> {
    let mut logs: Vec<Value> =
        relay.all_logs("").await.into_iter().filter(|l| l["delivery_id"] == id).collect();
    logs.sort_by_key(|l| l["attempt"].as_u64());
    logs
}

/// Waits until `query` lists exactly `n` logs; returns them.
async fn wait_logs(relay: &Relay, query: &str, n: usize) -> Vec<Value> {
    relay
        .wait_for(WAIT, &format!("{n} logs for `{query}`"), || async {
            let logs = relay.all_logs(query).await;
            (logs.len() >= n).then_some(logs)
        })
        .await
}

fn first_delivery(message: &Value) -> String {
    let ids = message["delivery_ids"].as_array().expect("delivery_ids");
    assert_eq!(ids.len(), 1, "{message}");
    ids[0].as_str().expect("delivery id").to_string()
}

fn header<'a>(call: &'a common::Received, name: &str) -> &'a str {
    call.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn gap_ms(calls: &[common::Received], i: usize) -> u128 {
    calls[i + 1].at.duration_since(calls[i].at).as_millis()
}

/// A receiver that answers 200 only after `delay` (asynchronously, so it never blocks
/// the test runtime). Records when each call arrived.
#[derive(Clone)]
struct SlowReceiver {
    addr: std::net::SocketAddr,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    answered: Arc<AtomicUsize>,
}

impl SlowReceiver {
    async fn start(delay: Duration) -> Self {
        let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let answered: Arc<AtomicUsize> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (a, done) = (arrivals.clone(), answered.clone());
        let app = Router::new().fallback(move || {
            let (a, done) = (a.clone(), done.clone());
            async move {
                a.lock().expect("lock").push(Instant::now());
                tokio::time::sleep(delay).await;
                done.fetch_add(1, Ordering::SeqCst);
                (StatusCode::OK, "{\"slow\":true}").into_response()
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, arrivals, answered }
    }

    fn url(&self) -> String {
        format!("http://{}/slow", self.addr)
    }

    fn count(&self) -> usize {
        self.arrivals.lock().expect("lock").len()
    }
}

// 1. Fails N times, then succeeds: N+1 logs, schedule respected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_is_retried_on_schedule_until_it_succeeds() {
    const FAILURES: usize = 2;
    let receiver = Receiver::failing_first(FAILURES, 500).await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_retry", &receiver.url("/hook")).await;
    let secret = automation["secret"].as_str().expect("secret");
    let message = relay.send_message("proc_retry", json!({"n": 1})).await;
    let id = first_delivery(&message);

    let d = wait_delivery(&relay, &id, "succeeded").await;
    assert_eq!(d["attempts"], FAILURES + 1, "{d}");
    assert_eq!(d["message_id"], message["id"]);

    let calls = receiver.calls();
    assert_eq!(calls.len(), FAILURES + 1, "exactly N+1 calls");
    for call in &calls {
        assert_eq!(header(call, "webhook-id"), message["id"].as_str().unwrap(), "same id");
        assert!(verify_signature(secret, &call.headers, &call.body));
        assert_eq!(&call.body[..], br#"{"n":1}"#);
    }
    // Compressed schedule: 200 ms then 400 ms, each ±10 %; 20 ms tolerance below, and the
    // 50 ms poll interval plus generous slack above.
    let (g1, g2) = (gap_ms(&calls, 0), gap_ms(&calls, 1));
    assert!(g1 >= 160, "first retry too early: {g1} ms (schedule 200 ms ±10 %)");
    assert!(g2 >= 340, "second retry too early: {g2} ms (schedule 400 ms ±10 %)");
    assert!(g1 < 1_200, "first retry far too late: {g1} ms");
    assert!(g2 < 1_500, "second retry far too late: {g2} ms");
    assert!(g2 > g1, "backoff grows: {g1} ms then {g2} ms");

    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), FAILURES + 1, "exactly N+1 logs: {logs:#?}");
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log["attempt"], i + 1);
        assert_eq!(log["message_id"], message["id"]);
        let trigger = if i == 0 { "initial" } else { "retry" };
        assert_eq!(log["trigger"], trigger, "{log}");
        let status = &log["external_request_log"]["status_code"];
        if i < FAILURES {
            assert_eq!(*status, 500);
            assert_eq!(log["error_code"], "E_HTTP_STATUS");
        } else {
            assert_eq!(*status, 200);
            assert!(log["error_code"].is_null(), "{log}");
        }
    }
    assert_eq!(d["last_log_id"], logs[FAILURES]["id"]);
}

// 2. Exhaustion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_receiver_exhausts_after_max_attempts() {
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    let ok = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES); // max_attempts = 4
    let bad = relay.create_automation("proc_exhaust", &failing.url("/fail")).await;
    relay.create_automation("proc_fine", &ok.url("/ok")).await;
    let message = relay.send_message("proc_exhaust", json!({"will": "fail"})).await;
    let id = first_delivery(&message);
    relay.send_message("proc_fine", json!({"will": "work"})).await;

    let d = wait_delivery(&relay, &id, "exhausted").await;
    assert_eq!(d["attempts"], 4, "{d}");
    assert_eq!(failing.count(), 4, "max_attempts = 4 calls, no more");

    let exhausted = relay.get_json("/v1/deliveries?status=exhausted").await;
    let listed: Vec<&str> =
        exhausted["data"].as_array().unwrap().iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(listed, vec![id.as_str()], "{exhausted}");
    let pending = relay.get_json("/v1/deliveries?status=pending").await;
    assert!(
        !pending["data"].as_array().unwrap().iter().any(|d| d["id"] == id.as_str()),
        "{pending}"
    );

    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), 4, "{logs:#?}");
    for (i, log) in logs.iter().enumerate() {
        assert_eq!(log["attempt"], i + 1);
        assert_eq!(log["error_code"], "E_HTTP_STATUS");
        assert_eq!(log["external_request_log"]["status_code"], 500);
        assert_eq!(log["automation_id"], bad["id"]);
        let error = log["external_request_log"]["error"].as_str().unwrap_or("");
        assert!(error.starts_with("E_HTTP_STATUS"), "{error}");
    }

    // The 2xx log of the other processor exists, and the class filter separates them.
    wait_logs(&relay, "&status_class=2xx", 1).await;
    let five = relay.all_logs("&status_class=5xx").await;
    assert_eq!(five.len(), 4, "{five:#?}");
    assert!(five.iter().all(|l| l["external_request_log"]["status_code"] == 500));
    let two = relay.all_logs("&status_class=2xx").await;
    assert_eq!(two.len(), 1, "{two:#?}");
    assert_eq!(two[0]["external_request_log"]["status_code"], 200);
    assert!(relay.all_logs("&status_class=4xx").await.is_empty());
    let by_code = relay.all_logs("&status_code=500").await;
    assert_eq!(by_code.len(), 4);
}

// 3. Retry-After, delta seconds and HTTP-date; clamped to max_retry_after_secs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_seconds_and_http_date_are_honoured() {
    let seconds = Receiver::with(Arc::new(|i| {
        if i == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let date = Receiver::with(Arc::new(|i| {
        if i == 0 {
            let at = chrono::Utc::now() + chrono::Duration::seconds(2);
            let value = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", value)], "maintenance")
                .into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_ra_secs", &seconds.url("/s")).await;
    relay.create_automation("proc_ra_date", &date.url("/d")).await;
    let m1 = relay.send_message("proc_ra_secs", json!({"ra": "seconds"})).await;
    let m2 = relay.send_message("proc_ra_date", json!({"ra": "date"})).await;
    let (d1, d2) = (first_delivery(&m1), first_delivery(&m2));
    wait_delivery(&relay, &d1, "succeeded").await;
    wait_delivery(&relay, &d2, "succeeded").await;

    let calls = seconds.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    // The schedule alone would retry after ~200 ms.
    assert!(gap >= 950, "Retry-After: 1 not honoured: retried after {gap} ms");
    assert!(gap < 2_500, "Retry-After: 1 retried far too late: {gap} ms");

    let calls = date.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    // The date is ~2 s ahead at 1-s resolution: the wait is between ~1 s and ~2 s.
    assert!(gap >= 900, "Retry-After HTTP-date not honoured: retried after {gap} ms");
    assert!(gap < 3_500, "Retry-After HTTP-date retried far too late: {gap} ms");

    let logs = logs_of(&relay, &d1).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["external_request_log"]["status_code"], 429);
    assert_eq!(logs[0]["external_request_log"]["response_headers"]["retry-after"], "1");
    assert_eq!(logs[1]["trigger"], "retry");
    let logs = logs_of(&relay, &d2).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["external_request_log"]["status_code"], 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_clamped_to_the_configured_maximum() {
    let receiver = Receiver::with(Arc::new(|i| {
        if i == 0 {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "3600")], "later").into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let relay = Relay::start(&delivery_toml(&[("max_retry_after_secs", "1")]));
    relay.create_automation("proc_clamp", &receiver.url("/c")).await;
    let id = first_delivery(&relay.send_message("proc_clamp", json!({"c": 1})).await);
    wait_delivery(&relay, &id, "succeeded").await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    assert!(gap >= 950, "clamped Retry-After should still wait ~1 s: {gap} ms");
    assert!(gap < 2_500, "Retry-After: 3600 not clamped to 1 s: {gap} ms");
}

// 4. Timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_receiver_times_out_with_e_timeout() {
    let slow = SlowReceiver::start(Duration::from_secs(3)).await;
    let relay =
        Relay::start(&delivery_toml(&[("request_timeout_ms", "500"), ("max_attempts", "1")]));
    relay.create_automation("proc_timeout", &slow.url()).await;
    let id = first_delivery(&relay.send_message("proc_timeout", json!({"t": 1})).await);
    let d = wait_delivery(&relay, &id, "exhausted").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(slow.count(), 1, "the call reached the receiver");
    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(log["error_code"], "E_TIMEOUT", "{log}");
    assert_eq!(log["external_request_log"]["status_code"], 0);
    let duration = log["external_request_log"]["duration_ms"].as_f64().expect("duration_ms");
    assert!((450.0..2_500.0).contains(&duration), "timed out after {duration} ms, limit 500");
    let error = log["external_request_log"]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("E_TIMEOUT"), "{error}");
}

// 5. Response body cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_bodies_are_capped_and_flagged() {
    let big = Receiver::with(Arc::new(|_| {
        (StatusCode::OK, [("content-type", "text/plain")], "x".repeat(100 * 1024)).into_response()
    }))
    .await;
    let small = Receiver::with(Arc::new(|_| {
        (StatusCode::OK, [("content-type", "text/plain")], "short answer").into_response()
    }))
    .await;
    let relay = Relay::start(&delivery_toml(&[("response_body_cap_bytes", "1024")]));
    relay.create_automation("proc_big", &big.url("/big")).await;
    relay.create_automation("proc_small", &small.url("/small")).await;
    let d_big = first_delivery(&relay.send_message("proc_big", json!({"b": 1})).await);
    let d_small = first_delivery(&relay.send_message("proc_small", json!({"s": 1})).await);
    wait_delivery(&relay, &d_big, "succeeded").await;
    wait_delivery(&relay, &d_small, "succeeded").await;

    let logs = logs_of(&relay, &d_big).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["response_truncated"], true, "{}", logs[0]["response_truncated"]);
    assert_eq!(logs[0]["external_request_log"]["status_code"], 200);
    assert!(logs[0]["error_code"].is_null());
    let text = logs[0]["external_request_log"]["response_body"]["text"]
        .as_str()
        .expect("text body shown as {text}");
    assert!(text.len() <= 1024, "stored {} bytes, cap 1024", text.len());
    assert!(text.len() >= 512 && text.bytes().all(|b| b == b'x'), "kept the start of the body");
    // The single-log view agrees with the list.
    let one = relay
        .get_json(&format!("/v1/processors/automations/logs/{}", logs[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(one["response_truncated"], true);

    let logs = logs_of(&relay, &d_small).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["response_truncated"], false);
    assert_eq!(logs[0]["external_request_log"]["response_body"], json!({"text": "short answer"}));
}

// 6. Redirects are not followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let target = Receiver::ok().await;
    let location = target.url("/elsewhere");
    let redirecting = Receiver::with(Arc::new(move |_| {
        (StatusCode::FOUND, [("location", location.clone())], "").into_response()
    }))
    .await;
    let relay = Relay::start(&delivery_toml(&[("max_attempts", "2")]));
    relay.create_automation("proc_redirect", &redirecting.url("/moved")).await;
    let id = first_delivery(&relay.send_message("proc_redirect", json!({"r": 1})).await);
    wait_delivery(&relay, &id, "exhausted").await;
    assert_eq!(redirecting.count(), 2);
    assert_eq!(target.count(), 0, "the redirect target must never be called");
    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), 2);
    for log in &logs {
        assert_eq!(log["external_request_log"]["status_code"], 302);
        assert_eq!(log["error_code"], "E_HTTP_STATUS");
        assert_eq!(log["external_request_log"]["webhook_url"], redirecting.url("/moved"));
    }
}

// 7. SSRF guard on: loopback forms are refused at send time (accepted at create).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_guard_refuses_loopback_in_every_spelling() {
    let receiver = Receiver::ok().await;
    let port = receiver.addr.port();
    let relay = Relay::start_with_env(
        &delivery_toml(&[("max_attempts", "1")]),
        &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "false")],
    );
    // Loopback only: if the guard were broken these would reach our own receiver (or fail
    // to connect), never a host off this machine.
    let urls = [
        format!("http://127.0.0.1:{port}/a"),
        format!("http://localhost:{port}/a"),
        format!("http://[::1]:{port}/a"),
        format!("http://127.1:{port}/a"),
        format!("http://2130706433:{port}/a"),
        format!("http://0x7f000001:{port}/a"),
        format!("http://0.0.0.0:{port}/a"),
        format!("http://[::ffff:127.0.0.1]:{port}/a"),
    ];
    let mut automations = Vec::new();
    for url in &urls {
        automations.push(relay.create_automation("proc_ssrf", url).await);
    }
    let message = relay.send_message("proc_ssrf", json!({"ssrf": true})).await;
    assert_eq!(message["delivery_ids"].as_array().unwrap().len(), urls.len());
    for id in message["delivery_ids"].as_array().unwrap() {
        wait_delivery(&relay, id.as_str().unwrap(), "exhausted").await;
    }
    let logs = wait_logs(&relay, "", urls.len()).await;
    assert_eq!(logs.len(), urls.len());
    for log in &logs {
        let url = log["external_request_log"]["webhook_url"].as_str().unwrap_or("");
        assert_eq!(log["error_code"], "E_BLOCKED_TARGET", "{url}: {log}");
        assert_eq!(log["external_request_log"]["status_code"], 0, "{url}");
    }
    assert_eq!(receiver.count(), 0, "a refused target was called");

    // A rerun of a refused log is refused the same way.
    let original = logs[0]["id"].as_str().unwrap();
    let resp = relay
        .req(reqwest::Method::POST, &format!("/v1/processors/automations/logs/{original}/rerun"))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("rerun");
    assert!(resp.status().is_success(), "{}", resp.status());
    let rerun: Value = resp.json().await.expect("json");
    let error = rerun["error"].as_str().unwrap_or("");
    assert!(error.starts_with("E_BLOCKED_TARGET"), "{rerun}");
    assert_eq!(rerun["status_code"], 0);
    let rerun_log = relay
        .get_json(&format!("/v1/processors/automations/logs/{}", rerun["id"].as_str().unwrap()))
        .await;
    assert_eq!(rerun_log["trigger"], "rerun");
    assert_eq!(rerun_log["rerun_of"], original);
    assert_eq!(rerun_log["error_code"], "E_BLOCKED_TARGET");

    // So is the test call.
    let automation_id = automations[0]["id"].as_str().unwrap();
    let (status, test) = relay
        .post_json(&format!("/v1/processors/automations/tests/webhook/{automation_id}"), &json!({}))
        .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["error_code"], "E_BLOCKED_TARGET", "{test}");
    assert_eq!(receiver.count(), 0, "a rerun or test call reached a refused target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_cidrs_open_only_the_listed_network() {
    let receiver = Receiver::ok().await;
    let port = receiver.addr.port();
    let extra = format!(
        "{}\n[security]\nallowed_cidrs = [\"127.0.0.0/8\"]\n",
        delivery_toml(&[("max_attempts", "1")])
    );
    let relay = Relay::start_with_env(&extra, &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "false")]);
    relay.create_automation("proc_v4", &format!("http://127.0.0.1:{port}/ok")).await;
    relay.create_automation("proc_v6", &format!("http://[::1]:{port}/no")).await;
    let allowed = first_delivery(&relay.send_message("proc_v4", json!({"v": 4})).await);
    let refused = first_delivery(&relay.send_message("proc_v6", json!({"v": 6})).await);
    wait_delivery(&relay, &allowed, "succeeded").await;
    wait_delivery(&relay, &refused, "exhausted").await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(logs_of(&relay, &allowed).await[0]["external_request_log"]["status_code"], 200);
    assert_eq!(logs_of(&relay, &refused).await[0]["error_code"], "E_BLOCKED_TARGET");
}

// 8. Secret rotation: both secrets sign during the overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secret_signs_with_old_and_new() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_rotate", &receiver.url("/r")).await;
    let id = automation["id"].as_str().unwrap();
    let old = automation["secret"].as_str().unwrap().to_string();

    relay.send_message("proc_rotate", json!({"before": "rotation"})).await;
    relay.wait_for(WAIT, "first call", || async { (receiver.count() == 1).then_some(()) }).await;
    let first = &receiver.calls()[0];
    assert_eq!(header(first, "webhook-signature").matches("v1,").count(), 1);
    assert!(verify_signature(&old, &first.headers, &first.body));

    let (status, rotated) = relay
        .post_json(&format!("/v1/processors/automations/endpoints/{id}/secret/rotate"), &json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().expect("new secret").to_string();
    assert!(new.starts_with("whsec_"));
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");

    relay.send_message("proc_rotate", json!({"after": "rotation"})).await;
    relay.wait_for(WAIT, "second call", || async { (receiver.count() == 2).then_some(()) }).await;
    let second = &receiver.calls()[1];
    let signature = header(second, "webhook-signature");
    assert_eq!(signature.matches("v1,").count(), 2, "{signature}");
    assert!(verify_signature(&old, &second.headers, &second.body), "old secret");
    assert!(verify_signature(&new, &second.headers, &second.body), "new secret");
    let stranger = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(!verify_signature(stranger, &second.headers, &second.body));
}

// 9. Disabling an automation ends its pending deliveries with a log row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_automation_fails_pending_delivery_and_gets_no_new_ones() {
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    // A 1.5 s first retry leaves ample time to disable the automation in between.
    let relay = Relay::start(&delivery_toml(&[("initial_backoff_ms", "1500")]));
    let automation = relay.create_automation("proc_disable", &failing.url("/f")).await;
    let automation_id = automation["id"].as_str().unwrap();
    let id = first_delivery(&relay.send_message("proc_disable", json!({"d": 1})).await);
    relay
        .wait_for(WAIT, "first attempt", || async {
            let d = delivery(&relay, &id).await;
            (d["attempts"] == 1).then_some(())
        })
        .await;

    let resp = relay
        .req(reqwest::Method::PUT, &format!("/v1/processors/automations/endpoints/{automation_id}"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 200);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["webhook_url"], failing.url("/f"), "other fields kept");

    let d = wait_delivery(&relay, &id, "failed").await;
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(failing.count(), 1, "nothing is sent to a disabled automation");
    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["error_code"], "E_HTTP_STATUS");
    assert_eq!(logs[1]["error_code"], "E_AUTOMATION_DISABLED", "{}", logs[1]);
    assert_eq!(logs[1]["trigger"], "retry");
    assert_eq!(logs[1]["external_request_log"]["status_code"], 0);

    let message = relay.send_message("proc_disable", json!({"d": 2})).await;
    assert_eq!(message["delivery_ids"], json!([]), "{message}");
    assert_eq!(failing.count(), 1);
}

// 10. Fan-out: one message, one delivery per automation, same id and bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_fans_out_byte_identical() {
    let (r1, r2) = (Receiver::ok().await, Receiver::ok().await);
    let relay = Relay::start(common::FAST_RETRIES);
    let a1 = relay.create_automation("proc_fan", &r1.url("/one")).await;
    let a2 = relay.create_automation("proc_fan", &r2.url("/two")).await;
    // Unusual spacing, key order, number spelling and escapes: must arrive exactly as sent.
    let payload = r#"{ "z" : 1,"a":[1.50, 2e3, "caf\u00e9 é"],  "n":{"x":null} }"#;
    let body = format!(r#"{{"processor_id":"proc_fan","payload":{payload}}}"#);
    let resp = relay
        .req(reqwest::Method::POST, "/v1/messages")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 202);
    let message: Value = resp.json().await.unwrap();
    let ids = message["delivery_ids"].as_array().expect("delivery_ids");
    assert_eq!(ids.len(), 2, "{message}");
    assert_ne!(ids[0], ids[1]);
    let mut targets: Vec<&str> = message["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["automation_id"].as_str())
        .collect();
    targets.sort_unstable();
    let mut expected = vec![a1["id"].as_str().unwrap(), a2["id"].as_str().unwrap()];
    expected.sort_unstable();
    assert_eq!(targets, expected);

    for id in ids {
        wait_delivery(&relay, id.as_str().unwrap(), "succeeded").await;
    }
    let message_id = message["id"].as_str().unwrap();
    for (receiver, automation) in [(&r1, &a1), (&r2, &a2)] {
        let calls = receiver.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(header(&calls[0], "webhook-id"), message_id);
        assert_eq!(&calls[0].body[..], payload.as_bytes(), "body re-encoded");
        assert!(verify_signature(
            automation["secret"].as_str().unwrap(),
            &calls[0].headers,
            &calls[0].body
        ));
    }
    assert_eq!(
        relay.all_logs(&format!("&automation_id={}", a1["id"].as_str().unwrap())).await.len(),
        1
    );
    assert_eq!(
        relay.all_logs(&format!("&automation_id={}", a2["id"].as_str().unwrap())).await.len(),
        1
    );
}

// 11. SIGTERM lets the call in flight finish, exits 0, and a restart keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_call_and_restart_serves() {
    let slow = SlowReceiver::start(Duration::from_millis(1500)).await;
    let ok = Receiver::ok().await;
    let mut relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_slow", &slow.url()).await;
    relay.create_automation("proc_after", &ok.url("/after")).await;
    let id = first_delivery(&relay.send_message("proc_slow", json!({"slow": 1})).await);
    relay
        .wait_for(WAIT, "the slow call to start", || async { (slow.count() == 1).then_some(()) })
        .await;
    assert_eq!(slow.answered.load(Ordering::SeqCst), 0, "the call is still in flight");

    let started = Instant::now();
    // `terminate` blocks on the child; keep the runtime (and the receiver) running meanwhile.
    let status = tokio::task::block_in_place(|| relay.terminate());
    assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
    assert_eq!(slow.answered.load(Ordering::SeqCst), 1, "the in-flight call was let finish");
    assert!(started.elapsed() < Duration::from_secs(9), "shutdown took {:?}", started.elapsed());

    relay.restart();
    let d = delivery(&relay, &id).await;
    assert_eq!(d["status"], "succeeded", "the finished call was recorded before exit: {d}");
    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(logs[0]["external_request_log"]["status_code"], 200);
    let after =
        first_delivery(&relay.send_message("proc_after", json!({"after": "restart"})).await);
    wait_delivery(&relay, &after, "succeeded").await;
    assert_eq!(ok.count(), 1);
    assert_eq!(slow.count(), 1, "a delivered call is not sent again after restart");
}

// SIGTERM with a call outlasting the grace period: exit 0 within the grace, the delivery
// stays pending, and the next start sends it again (at-least-once, same webhook-id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_grace_leaves_delivery_pending_for_next_start() {
    // The call (3 s) outlasts the grace (1 s) but not the request timeout (5 s).
    let slow = SlowReceiver::start(Duration::from_secs(3)).await;
    let mut relay = Relay::start(&delivery_toml(&[
        ("shutdown_grace_secs", "1"),
        ("request_timeout_ms", "5000"),
    ]));
    relay.create_automation("proc_grace", &slow.url()).await;
    let message = relay.send_message("proc_grace", json!({"grace": 1})).await;
    let id = first_delivery(&message);
    relay
        .wait_for(WAIT, "the slow call to start", || async { (slow.count() == 1).then_some(()) })
        .await;
    let started = Instant::now();
    let status = tokio::task::block_in_place(|| relay.terminate());
    let took = started.elapsed();
    assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
    assert!(took < Duration::from_millis(2500), "grace is 1 s but shutdown took {took:?}");
    assert_eq!(slow.answered.load(Ordering::SeqCst), 0, "exited before the call finished");

    relay.restart();
    wait_delivery(&relay, &id, "succeeded").await;
    let arrivals = slow.count();
    assert_eq!(arrivals, 2, "sent again after restart, exactly once more");
    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), 2, "the cut-off attempt and the resend are both logged: {logs:#?}");
    assert_eq!(logs[0]["error_code"], "E_INTERRUPTED", "{}", logs[0]);
    assert_eq!(logs[0]["attempt"], 1);
    assert_eq!(logs[1]["external_request_log"]["status_code"], 200);
    assert_eq!(logs[1]["attempt"], 2);
    for log in &logs {
        assert_eq!(log["message_id"], message["id"]);
    }
}

// The maximum age bounds retries even when attempts remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_ends_retries_before_max_attempts() {
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    // Retries at ~0.2 s and ~0.6 s; the next (~1.4 s) would be past the 1 s age.
    let relay = Relay::start(&delivery_toml(&[("max_age_secs", "1"), ("max_attempts", "8")]));
    relay.create_automation("proc_age", &failing.url("/old")).await;
    let id = first_delivery(&relay.send_message("proc_age", json!({"age": 1})).await);
    let d = wait_delivery(&relay, &id, "exhausted").await;
    let attempts = d["attempts"].as_u64().unwrap();
    assert!((2..=3).contains(&attempts), "max age 1 s allows 2-3 attempts, got {attempts}");
    assert_eq!(failing.count() as u64, attempts);
    assert_eq!(logs_of(&relay, &id).await.len() as u64, attempts);
}

// Headers arrive, then the body stalls past the timeout: a timeout, not a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_response_body_times_out() {
    let receiver = Receiver::with(Arc::new(|_| {
        let stream = futures_util::stream::unfold(0u8, |step| async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"partial")), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    Some((Ok(axum::body::Bytes::from_static(b" rest")), 2))
                }
                _ => None,
            }
        });
        (StatusCode::OK, axum::body::Body::from_stream(stream)).into_response()
    }))
    .await;
    let relay =
        Relay::start(&delivery_toml(&[("request_timeout_ms", "500"), ("max_attempts", "1")]));
    relay.create_automation("proc_stall", &receiver.url("/stall")).await;
    let id = first_delivery(&relay.send_message("proc_stall", json!({"s": 1})).await);
    let d = wait_delivery(&relay, &id, "exhausted").await;
    assert_eq!(d["attempts"], 1);
    let logs = logs_of(&relay, &id).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["error_code"], "E_TIMEOUT", "{}", logs[0]);
}

// RFC 9110 §5.6.7: a recipient must accept all three HTTP-date formats, including asctime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_asctime_http_date_is_honoured() {
    let receiver = Receiver::with(Arc::new(|i| {
        if i == 0 {
            let at = chrono::Utc::now() + chrono::Duration::seconds(2);
            let value = at.format("%a %b %e %H:%M:%S %Y").to_string();
            (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", value)], "maintenance")
                .into_response()
        } else {
            (StatusCode::OK, "ok").into_response()
        }
    }))
    .await;
    let relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_asctime", &receiver.url("/a")).await;
    let id = first_delivery(&relay.send_message("proc_asctime", json!({"a": 1})).await);
    wait_delivery(&relay, &id, "succeeded").await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    let gap = gap_ms(&calls, 0);
    assert!(gap >= 900, "asctime Retry-After not honoured: retried after {gap} ms");
    assert!(gap < 3_500, "asctime Retry-After retried far too late: {gap} ms");
}
