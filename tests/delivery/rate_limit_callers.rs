//! Reruns and test calls of a rate-limited automation wait for their start before anything
//! records them in flight, and at most `delivery.call_slot_wait_ms`: several asked at once
//! are answered in time (a call or 503), and a stop while they wait logs none of them
//! `E_INTERRUPTED`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Receiver, Relay, ENDPOINTS, LOGS};
use crate::helpers::delivery_toml;

const RERUNS: usize = 8;

/// A relay (a 1 s shutdown grace) with a 1/s automation that has made one call; returns it, its id and that log's id.
async fn paced_with_a_log(wait_ms: &str) -> (Relay, Receiver, String, String) {
    let config = [("call_slot_wait_ms", wait_ms), ("shutdown_grace_secs", "1")];
    let relay = Relay::start(&delivery_toml(&config));
    let receiver = Receiver::ok().await;
    let body = json!({"name": "paced", "processor_id": "proc_paced",
        "webhook_url": receiver.url("/hook"), "rate_limit_per_sec": 1});
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    relay.send_message("proc_paced", json!({"n": 0})).await;
    let logs = relay.wait_logs_exactly(&format!("automation_id={id}"), 1).await;
    let log = logs[0]["id"].as_str().expect("log id").to_string();
    (relay, receiver, id, log)
}

/// Asks for `RERUNS` reruns of `log` at once; returns each one's status and answer time.
fn rerun_all(relay: &Relay, log: &str) -> Vec<tokio::task::JoinHandle<(u16, Duration)>> {
    (0..RERUNS)
        .map(|_| {
            let request = relay.req(reqwest::Method::POST, &format!("{LOGS}/{log}/rerun"));
            tokio::spawn(async move {
                let asked = Instant::now();
                let status = request.send().await.map_or(0, |r| r.status().as_u16());
                (status, asked.elapsed())
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_asked_at_once_are_answered_within_the_call_slot_wait() {
    let (relay, receiver, _, log) = paced_with_a_log("2000").await;
    let mut answers = Vec::new();
    for rerun in rerun_all(&relay, &log) {
        answers.push(rerun.await.expect("rerun"));
    }
    let made = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused = answers.iter().filter(|(status, _)| *status == 503).count();
    assert_eq!(made + refused, RERUNS, "{answers:?}");
    // 1 a second for 2 s: two or three starts (the first call's second may still count).
    assert!((1..=3).contains(&made), "{made} reruns made in 2 s at 1/s: {answers:?}");
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap_or_default();
    assert!(slowest < Duration::from_secs(4), "a rerun answered after {slowest:?}");
    assert_eq!(receiver.count(), 1 + made, "calls made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_waiting_for_their_start_are_not_logged_interrupted_after_a_stop() {
    let (mut relay, receiver, id, log) = paced_with_a_log("20000").await;
    let reruns = rerun_all(&relay, &log);
    // Two or three made; the rest wait for their start.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(relay.terminate().success(), "a clean stop");
    for rerun in reruns {
        rerun.await.expect("rerun");
    }
    relay.restart();
    let logs = relay.all_logs(&format!("automation_id={id}")).await;
    let interrupted = logs.iter().filter(|l| l["error_code"] == "E_INTERRUPTED").count();
    assert_eq!(interrupted, 0, "reruns never sent logged interrupted, of {} logs", logs.len());
    assert_eq!(logs.len(), receiver.count(), "one log per call made");
}
