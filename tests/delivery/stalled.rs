use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::Relay;
use crate::helpers::{
    black_hole, delivery_toml, lane_backlog, queue, slowest_arrival, timed_receiver,
};

/// Calls in flight per automation, and the in-memory backlog bounds (lowered from their
/// defaults of 64, 1,024 and 8,192, so that the ten thousand queued pass each many times).
const LIMITS: [(&str, &str); 3] = [
    ("per_automation_concurrency", "16"),
    ("per_automation_backlog", "128"),
    ("lane_backlog", "512"),
];
/// Deliveries queued to the receiver that never answers: more than its calls in flight and
/// the whole in-memory backlog together (and so more than its share of it).
const STALLED: usize = 10_000;

// One receiver that never answers, with more deliveries queued to it than the in-memory
// backlog holds: another automation's deliveries still go out at once, because no automation
// takes more than its share of the backlog and the claim loop passes over full lanes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_receiver_does_not_hold_up_other_automations() {
    let hole = black_hole().await;
    let (healthy, arrivals) = timed_receiver().await;
    let mut config = LIMITS.to_vec();
    config.push(("request_timeout_ms", "60000"));
    let relay = Relay::start(&delivery_toml(&config));
    relay.create_automation("proc_stalled", &hole).await;
    relay.create_automation("proc_healthy", &healthy).await;

    let started = Instant::now();
    queue(&relay, "proc_stalled", STALLED).await;
    eprintln!("{STALLED} messages queued to the black hole in {:?}", started.elapsed());
    assert_eq!(lane_backlog(&relay).await, 128, "the black hole holds its share, no more");

    let mut acknowledged = Vec::new();
    for n in 0..100 {
        let message = relay.send_message("proc_healthy", json!({ "n": n })).await;
        acknowledged.push((message["id"].as_str().expect("id").to_string(), Instant::now()));
    }
    // Held up behind the black hole, a healthy delivery would wait for one of its calls to
    // time out (60 s); 10 s leaves a loaded machine room without hiding that.
    let slowest = slowest_arrival(&relay, &arrivals, &acknowledged, Duration::from_secs(20)).await;
    eprintln!("the slowest healthy delivery arrived {slowest:?} after its 202");
    assert!(slowest < Duration::from_secs(10), "a healthy delivery took {slowest:?} after its 202");
}
