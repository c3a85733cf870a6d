//! A delivery waiting for its automation's rate limit has not started its call: a stop
//! (SIGTERM) or a crash (`kill -9`) during the wait puts it back in the queue with no log,
//! instead of logging an attempt it never made (`E_INTERRUPTED`). The backlog spans every
//! place a delivery can wait: lanes taking their turn, the lanes' backlogs in memory, and the
//! database beyond both.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::slow::slow_receiver;
use crate::common::{Receiver, Relay, ENDPOINTS};
use crate::helpers::{delivery_toml, queue};

const MESSAGES: usize = 24;

/// Waits until `receiver` has at least `n` calls.
async fn calls_reach(receiver: &Receiver, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.count() < n {
        assert!(Instant::now() < deadline, "{} of {n} calls", receiver.count());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The logs of automation `id` that say their call was interrupted.
async fn interrupted(relay: &Relay, id: &str) -> usize {
    relay.all_logs(&format!("automation_id={id}&error_code=E_INTERRUPTED")).await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_waiting_for_their_rate_limit_are_not_logged_interrupted() {
    // 4 lanes with 2 places each behind them: 24 messages fill both and leave the rest in
    // the database.
    let toml =
        delivery_toml(&[("per_automation_concurrency", "4"), ("per_automation_backlog", "8")]);
    let mut relay = Relay::start(&toml);
    let receiver = Receiver::ok().await;
    let body = json!({"name": "paced", "processor_id": "proc_paced",
        "webhook_url": receiver.url("/hook"), "rate_limit_per_sec": 4});
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    queue(&relay, "proc_paced", MESSAGES).await;

    calls_reach(&receiver, 3).await;
    assert!(relay.terminate().success(), "a clean stop");
    relay.restart();
    assert_eq!(interrupted(&relay, &id).await, 0, "after a stop: calls never made logged");

    // Between two seconds' calls (at most 4 start in any second, and they take a few
    // milliseconds): every delivery left is waiting for its turn.
    calls_reach(&receiver, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.restart();

    let deadline = Instant::now() + Duration::from_secs(30);
    let calls = loop {
        let calls = calls_by_message(&receiver);
        if calls.len() == MESSAGES || Instant::now() > deadline {
            break calls;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(calls.len(), MESSAGES, "every message delivered");
    // Every logged attempt, an interrupted one included, is a call the receiver got.
    let mut logged: HashMap<String, usize> = HashMap::new();
    for log in relay.all_logs(&format!("automation_id={id}")).await {
        let message = log["message_id"].as_str().expect("message_id").to_string();
        *logged.entry(message).or_default() += 1;
    }
    for (message, logged) in logged {
        let received = calls.get(&message).copied().unwrap_or(0);
        assert!(logged <= received, "{message}: {logged} attempts logged, {received} made");
    }
}

/// How many calls the receiver got for each message (its `webhook-id`).
fn calls_by_message(receiver: &Receiver) -> HashMap<String, usize> {
    let mut calls = HashMap::new();
    for call in receiver.calls() {
        if let Some(id) = call.headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
            *calls.entry(id.to_string()).or_default() += 1;
        }
    }
    calls
}

// A limit set while deliveries are already marked started (each call's record marks the next
// of its lane): the one that must then wait is taken back to held first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_delivery_that_must_wait_for_a_new_limit_is_held_first() {
    let toml = delivery_toml(&[("per_automation_concurrency", "1")]);
    let mut relay = Relay::start(&toml);
    let (url, calls) = slow_receiver(Duration::from_millis(400)).await;
    let body = json!({"name": "later", "processor_id": "proc_later", "webhook_url": url});
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    queue(&relay, "proc_later", 5).await;
    // When the n-th call was seen to arrive (within the 5 ms of a look).
    let arrived = |n: usize| {
        let calls = calls.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while calls.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < deadline, "call {n} never came");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Instant::now()
        }
    };
    arrived(1).await;
    let resp = relay
        .req(reqwest::Method::PUT, &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"rate_limit_per_sec": 1}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), 200);
    // The second call starts at once (nothing counted yet); the third, marked started by
    // the second's record, must then wait until a second after the second started.
    let second = arrived(2).await;
    tokio::time::sleep_until((second + Duration::from_millis(700)).into()).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the third call came within a second");
    assert!(relay.terminate().success(), "a clean stop");
    relay.restart();
    assert_eq!(interrupted(&relay, &id).await, 0, "a call never made logged interrupted");
}

// The windows are kept in memory: the calls started just before a kill -9 and those after the
// restart together still make at most N in any second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_lets_no_more_than_the_limit_start_in_a_second() {
    let mut relay = Relay::start(&delivery_toml(&[]));
    let receiver = Receiver::ok().await;
    let body = json!({"name": "paced", "processor_id": "proc_restarted",
        "webhook_url": receiver.url("/hook"), "rate_limit_per_sec": 2});
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    queue(&relay, "proc_restarted", 6).await;
    calls_reach(&receiver, 2).await;
    relay.restart();
    calls_reach(&receiver, 6).await;
    let calls = receiver.calls();
    for (i, call) in calls.iter().enumerate().skip(2) {
        let apart = call.at.duration_since(calls[i - 2].at);
        // The receiver's clock: a few ms of network time either side.
        assert!(apart >= Duration::from_millis(950), "calls {} and {i} {apart:?} apart", i - 2);
    }
}
