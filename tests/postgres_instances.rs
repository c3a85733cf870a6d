//! Two relays on one PostgreSQL database (issue 15). A rate limit holds for both together:
//! each takes every start from the window they share, so their calls to one automation,
//! counted in the relays' own logs, never pass the limit in any second.
//!
//! The automation cache across instances: deliveries wait in B's memory (a rate limit of 1 a second holds them) while the
//! automation is changed through A: its URL, its secret, then disabled. A's change announces
//! itself at its commit (`NOTIFY hookrelay_automations`), B clears its cache, and each held
//! delivery reads the automation again before its call: the new URL gets them, signed with
//! the new secret, and nothing more is sent once it is disabled. Without the notification B
//! would call with the copies it holds. Skipped on SQLite (one process per file).

use std::path::Path;
use std::time::Duration;

use hookrelay_testkit::postgres::{selected, FreshDatabase};
use hookrelay_testkit::{verify_signature, Receiver, Relay, ENDPOINTS};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// PUTs `fields` to automation `id` through `relay`; returns the answer.
async fn update(relay: &Relay, id: &str, fields: Value) -> Value {
    let resp = relay
        .req(reqwest::Method::PUT, &format!("{ENDPOINTS}/{id}"))
        .json(&fields)
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("json")
}

/// Waits until `receiver` has had `n` calls.
async fn wait_count(relay: &Relay, receiver: &Receiver, n: usize, what: &str) {
    relay.wait_for(WAIT, what, || async { (receiver.count() >= n).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_automation_change_reaches_deliveries_held_in_memory() {
    let Some(server) = selected() else {
        eprintln!("SKIPPED: needs HOOKRELAY_TEST_BACKEND=postgres (two instances, one database)");
        return;
    };
    let database = FreshDatabase::create(&server);
    let a = Relay::start_with_database(Path::new(&database.url), "");
    let b = Relay::start_with_database(Path::new(&database.url), "");
    let (old_url, new_url) = (Receiver::ok().await, Receiver::ok().await);
    let body = json!({"name": "held", "processor_id": "proc_held",
        "webhook_url": old_url.url("/old"), "rate_limit_per_sec": 1});
    let (status, created) = a.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let old_secret = created["secret"].as_str().expect("secret").to_string();

    // The URL: one call goes out at once, two wait in B's memory; A moves the automation.
    for n in 0..3 {
        b.send_message("proc_held", json!({"url": n})).await;
    }
    wait_count(&b, &old_url, 1, "the first call, to the old URL").await;
    update(&a, &id, json!({"webhook_url": new_url.url("/new")})).await;
    wait_count(&b, &new_url, 2, "the held deliveries, at the new URL").await;
    assert_eq!(old_url.count(), 1, "nothing held went to the old URL");

    // The secret: rotated through A while B holds deliveries; they are signed with it.
    for n in 0..2 {
        b.send_message("proc_held", json!({"secret": n})).await;
    }
    let path = format!("{ENDPOINTS}/{id}/secret/rotate");
    let (status, rotated) = a.post_json(&path, &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("new secret").to_string();
    assert_ne!(new_secret, old_secret);
    wait_count(&b, &new_url, 4, "the deliveries held across the rotation").await;
    for call in &new_url.calls()[2..4] {
        assert!(verify_signature(&new_secret, &call.headers, &call.body), "the new secret signs");
    }

    // Disabled through A: B sends nothing more, not even what it holds.
    for n in 0..2 {
        b.send_message("proc_held", json!({"disabled": n})).await;
    }
    let disabled = update(&a, &id, json!({"enabled": false})).await;
    assert_eq!(disabled["enabled"], false, "{disabled}");
    let sent = new_url.count() + old_url.count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(new_url.count() + old_url.count(), sent, "nothing sent once disabled");
    assert!(sent < 6, "at least one delivery was held when it was disabled: {sent}");
}

/// The most of `times` (ms) in any window of one second less `slack_ms`.
fn busiest_second(mut times: Vec<i64>, slack_ms: i64) -> usize {
    times.sort_unstable();
    let (mut most, mut first) = (0, 0);
    for (last, t) in times.iter().enumerate() {
        while t - times[first] >= 1000 - slack_ms {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_rate_limit() {
    let Some(server) = selected() else {
        eprintln!("SKIPPED: needs HOOKRELAY_TEST_BACKEND=postgres (two instances, one database)");
        return;
    };
    const PER_SEC: usize = 3;
    const MESSAGES: usize = 24;
    let database = FreshDatabase::create(&server);
    let a = Relay::start_with_database(Path::new(&database.url), "");
    let b = Relay::start_with_database(Path::new(&database.url), "");
    let receiver = Receiver::ok().await;
    let body = json!({"name": "limited", "processor_id": "proc_limited",
        "webhook_url": receiver.url("/hook"), "rate_limit_per_sec": PER_SEC});
    let (status, created) = a.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    for n in 0..MESSAGES {
        let relay = if n % 2 == 0 { &a } else { &b };
        relay.send_message("proc_limited", json!({"n": n})).await;
    }
    // Both instances hold deliveries: alone, each would start PER_SEC a second.
    let all = Duration::from_secs((MESSAGES / PER_SEC) as u64 + 15);
    a.wait_for(all, "every message delivered", || async {
        (receiver.count() >= MESSAGES).then_some(())
    })
    .await;
    let logs = a.all_logs(&format!("automation_id={id}")).await;
    assert_eq!(logs.len(), MESSAGES, "one call a message");
    // Both made calls (else one window alone would have kept the limit).
    let succeeded = "hookrelay_delivery_attempts_total{outcome=\"succeeded\"}";
    let (by_a, by_b) = (a.metric(succeeded).await, b.metric(succeeded).await);
    assert_eq!(by_a + by_b, MESSAGES as f64);
    assert!(by_a >= 2.0 && by_b >= 2.0, "calls by A {by_a}, by B {by_b}");
    let times = logs
        .iter()
        .map(|l| {
            let at = l["external_request_log"]["request_at"].as_str().expect("request_at");
            chrono::DateTime::parse_from_rfc3339(at).expect("rfc3339").timestamp_millis()
        })
        .collect();
    // A log's request_at is taken a few ms after the shared start (signing lies between).
    let busiest = busiest_second(times, 50);
    assert!(busiest <= PER_SEC, "{busiest} calls within a second, the limit is {PER_SEC}");
}
