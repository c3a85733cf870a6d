use std::time::Duration;

use crate::common::Relay;
use crate::helpers::{
    black_hole, burst, delivery_toml, lane_backlog, queue, slowest_arrival, timed_receiver,
};

/// Small bounds, so that two stalled automations fill the whole shared backlog with their
/// shares (2 × 32 = 64). The claim loop polls only every `POLL_MS`, far past how long the test
/// waits: every delivery past what ingest handed straight to a lane slot then arrives only if
/// a wake made the claim loop take it, which is the property checked, however slow the
/// machine (a fixed time bound failed on a loaded machine).
const LIMITS: [(&str, &str); 5] = [
    ("per_automation_concurrency", "4"),
    ("per_automation_backlog", "32"),
    ("lane_backlog", "64"),
    ("poll_interval_ms", POLL_MS),
    ("request_timeout_ms", "600000"),
];
/// The claim loop's poll interval: ten minutes.
const POLL_MS: &str = "600000";
/// How long the burst may take to arrive: a slow machine's bound, well inside one poll.
const ARRIVALS_WAIT: Duration = Duration::from_secs(60);
/// Deliveries queued to each receiver that never answers: far more than its share.
const STALLED_EACH: usize = 300;
/// Messages posted at once to the healthy automation.
const BURST: usize = 200;

// Two receivers that never answer fill the whole shared backlog between them; a burst to a
// healthy automation still goes out: each call that ends with deliveries of its automation
// left in the database wakes the claim loop, rather than leaving them to the poll (which
// never comes within the test: see `LIMITS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_shared_backlog_does_not_starve_a_healthy_automation() {
    let (healthy, arrivals) = timed_receiver().await;
    let relay = Relay::start(&delivery_toml(&LIMITS));
    for stalled in ["proc_stalled_a", "proc_stalled_b"] {
        relay.create_automation(stalled, &black_hole().await).await;
    }
    relay.create_automation("proc_healthy", &healthy).await;

    queue(&relay, "proc_stalled_a", STALLED_EACH).await;
    queue(&relay, "proc_stalled_b", STALLED_EACH).await;
    assert_eq!(lane_backlog(&relay).await, 64, "the stalled automations fill the backlog");

    let acknowledged = burst(&relay, "proc_healthy", BURST).await;
    // Fails (the wait runs out) unless the whole burst arrives before the first poll: ingest
    // hands over only those that find one of the lane's four slots free as they are stored
    // (the shared backlog is full), the claim loop must take the rest.
    let slowest = slowest_arrival(&relay, &arrivals, &acknowledged, ARRIVALS_WAIT).await;
    eprintln!("slowest healthy delivery: {slowest:?} after its 202");
}
