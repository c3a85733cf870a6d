use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::common::Relay;
use crate::helpers::{
    burst, delivery_toml, lane_backlog, queue, slowest_arrival, timed_receiver, SlowReceiver,
};

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
/// Deliveries queued to each failing receiver: far past its lane's share (4 calls + 32).
const FAILING_EACH: usize = 300;
/// Messages posted to the healthy automation, once alone and once beside the failing ones.
const BURST: usize = 200;

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
// slow machine moves both. It catches deliveries queued behind the failing calls (seconds
// more), not a twofold slowdown: with `Lanes::saturated` emptied the burst took twice its
// time alone and this still passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_fail_every_call_do_not_hold_up_a_healthy_automation() {
    let (healthy, arrivals) = timed_receiver().await;
    let relay = Relay::start(&delivery_toml(&LIMITS));
    relay.create_automation("proc_healthy", &healthy).await;
    let alone = healthy_burst(&relay, &arrivals).await;

    let mut failing = Vec::new();
    for processor in ["proc_failing_a", "proc_failing_b"] {
        let receiver =
            SlowReceiver::answering(FAILING_DELAY, StatusCode::INTERNAL_SERVER_ERROR).await;
        relay.create_automation(processor, &receiver.url()).await;
        queue(&relay, processor, FAILING_EACH).await;
        failing.push(receiver);
    }
    let total =
        |receivers: &[SlowReceiver]| -> usize { receivers.iter().map(SlowReceiver::count).sum() };
    // Retries are going: more calls than messages, and the shared backlog full of them (it
    // moves by one as a slot frees and is refilled: waited for, not read once).
    relay
        .wait_for(Duration::from_secs(120), "the failing deliveries to be retried", || async {
            (total(&failing) > 2 * FAILING_EACH + 16).then_some(())
        })
        .await;
    relay
        .wait_for(Duration::from_secs(30), "the failing ones to fill the backlog", || async {
            (lane_backlog(&relay).await == 64).then_some(())
        })
        .await;

    let calls_before = total(&failing);
    let beside = healthy_burst(&relay, &arrivals).await;
    let failing_during = total(&failing) - calls_before;
    eprintln!("healthy burst: alone {alone:?}, beside the failing ones {beside:?}");
    assert!(failing_during > 0, "the failing automations kept being called meanwhile");
    assert!(
        beside <= alone * 4 + Duration::from_secs(2),
        "a healthy delivery took {beside:?} after its 202 beside the failing ones, {alone:?} alone"
    );
}
