use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::Router;

use crate::common::Relay;
use crate::helpers::{burst, delivery_toml, lane_backlog, queue, slowest_arrival, timed_receiver};

/// Small bounds, so that the failing automations fill their lanes and the shared backlog
/// (2 × 32 = 64) and keep them full: every failure is due again 10 ms later, far sooner
/// than the slots free up, and no delivery exhausts its attempts during the test.
const LIMITS: [(&str, &str); 9] = [
    ("per_automation_concurrency", "4"),
    ("per_automation_backlog", "32"),
    ("lane_backlog", "64"),
    ("initial_backoff_ms", "10"),
    ("backoff_multiplier", "1.0"),
    ("max_backoff_ms", "10"),
    ("backoff_jitter", "0.0"),
    ("max_attempts", "1000"),
    ("request_timeout_ms", "10000"),
];
/// How long a failing receiver takes before its 500.
const FAILING_DELAY: Duration = Duration::from_millis(200);
/// Deliveries queued to each failing receiver. Behind them in due order, at four calls of
/// 200 ms at a time, a healthy delivery would wait 300 / 4 × 0.2 = 15 s.
const FAILING_EACH: usize = 300;
/// Messages posted to the healthy automation, once alone and once beside the failing ones.
const BURST: usize = 200;

/// A receiver that answers 500 after [`FAILING_DELAY`]; returns its URL and its call count.
async fn failing_receiver() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(FAILING_DELAY).await;
            (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"down\"}")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/down"), calls)
}

/// Posts [`BURST`] messages to the healthy automation all at once; returns the slowest
/// time from a 202 to its arrival. Ingest hands a delivery straight to its lane only while
/// one of the lane's four slots is free: most of the burst is left to the claim loop, which
/// must find it among the failing retries.
async fn healthy_burst(
    relay: &Relay,
    arrivals: &std::sync::Mutex<std::collections::HashMap<String, Instant>>,
) -> Duration {
    let acknowledged = burst(relay, "proc_healthy", BURST).await;
    slowest_arrival(relay, arrivals, &acknowledged, Duration::from_secs(120)).await
}

// Two receivers that answer 500, with their retries due again at once and more deliveries
// than every in-memory bound holds, beside a healthy automation: its deliveries arrive about
// as fast as when it is alone. Compared with its own time alone in the same relay, so a
// slow machine moves both; queued behind the failing retries it would wait seconds more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_fail_every_call_do_not_hold_up_a_healthy_automation() {
    let (healthy, arrivals) = timed_receiver().await;
    let relay = Relay::start(&delivery_toml(&LIMITS));
    relay.create_automation("proc_healthy", &healthy).await;
    let alone = healthy_burst(&relay, &arrivals).await;

    let mut failing_calls = Vec::new();
    for processor in ["proc_failing_a", "proc_failing_b"] {
        let (url, calls) = failing_receiver().await;
        relay.create_automation(processor, &url).await;
        queue(&relay, processor, FAILING_EACH).await;
        failing_calls.push(calls);
    }
    let total = |calls: &[Arc<AtomicUsize>]| -> usize {
        calls.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    };
    // Retries are going: more calls than messages, and the shared backlog full of them (it
    // moves by one as a slot frees and is refilled: waited for, not read once).
    relay
        .wait_for(Duration::from_secs(120), "the failing deliveries to be retried", || async {
            (total(&failing_calls) > 2 * FAILING_EACH + 16).then_some(())
        })
        .await;
    relay
        .wait_for(Duration::from_secs(30), "the failing ones to fill the backlog", || async {
            (lane_backlog(&relay).await == 64).then_some(())
        })
        .await;

    let calls_before = total(&failing_calls);
    let beside = healthy_burst(&relay, &arrivals).await;
    let failing_during = total(&failing_calls) - calls_before;
    eprintln!("healthy burst: alone {alone:?}, beside the failing ones {beside:?}");
    assert!(failing_during > 0, "the failing automations kept being called meanwhile");
    assert!(
        beside <= alone * 4 + Duration::from_secs(2),
        "a healthy delivery took {beside:?} after its 202 beside the failing ones, {alone:?} alone"
    );
}
