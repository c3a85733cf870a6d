//! The FIFO line survives `kill -9`: under load (senders posting concurrently), the relay is
//! killed at seeded random instants and restarted on the same database, and the receiver of a
//! FIFO automation still sees the messages in ingest order. Mirrors tests/crash_loop.rs (their
//! senders and kill loop are testkit's `crash`).
//! Replay a failure with `FIFO_CRASH_SEED=<seed printed>`.
//!
//! The rule checked: ingest order is message id order (ids are made by the one writer, each
//! after the one before, and a restarted relay's after the killed one's). A call the relay
//! was making when it was killed may have reached the receiver: after the restart that
//! message is sent again (its attempt is logged `E_INTERRUPTED`) before any later one, so a
//! message the receiver sees again is always the one it saw last. Hence the sequence of
//! calls, message id by message id, never goes back: its first deliveries are in ingest
//! order, and its duplicates are repeats of the call just before. (No rerun is made here:
//! reruns are outside the order.)

use std::collections::HashSet;
use std::time::Duration;

use rand::SeedableRng;
use serde_json::json;

use crate::common::crash::{self, Load, Senders};
use crate::common::{self, Receiver, Relay};

const SENDERS: usize = 6;
const KILLS: usize = 4;
const PROCESSOR: &str = "proc_fifo_crash";

const CONFIG: &str = r#"
[delivery]
poll_interval_ms = 50
initial_backoff_ms = 100
backoff_multiplier = 2.0
max_backoff_ms = 1000
backoff_jitter = 0.1
max_attempts = 30
request_timeout_ms = 5000
connect_timeout_ms = 1000
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_under_load_keeps_a_fifo_automation_in_ingest_order() {
    let seed = crash::seed("FIFO_CRASH_SEED", "fifo crash");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(CONFIG);
    let (status, created) = relay
        .post_json(
            common::ENDPOINTS,
            &json!({"name": "line", "processor_id": PROCESSOR,
                    "webhook_url": receiver.url("/hook"), "ordering": "fifo"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");

    let load = Load::new(&relay.base);
    let senders =
        Senders { processor: PROCESSOR, count: SENDERS, pad: 0, pause: Duration::from_millis(2) }
            .start(&load);
    let kills = crash::kill_loop(&mut relay, &load, &mut rng, KILLS, (400..1500, 0..300), || {
        receiver.count()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = crash::stop(&load, senders).await;
    assert!(acked.len() > 50, "too little load: {} acknowledged ({kills:?})", acked.len());
    assert!(
        kills.iter().filter(|k| k.calls > 0).count() >= KILLS - 1,
        "kills before any call: {kills:?}"
    );

    relay
        .wait_for(Duration::from_secs(90), "the line to drain", || async {
            let page = relay.get_json("/v1/deliveries?status=pending&limit=1").await;
            page["data"].as_array().expect("data").is_empty().then_some(())
        })
        .await;

    let seen: Vec<String> = receiver
        .calls()
        .iter()
        .map(|c| c.headers["webhook-id"].to_str().expect("webhook-id").to_string())
        .collect();
    for (i, pair) in seen.windows(2).enumerate() {
        assert!(
            pair[1] >= pair[0],
            "call {} ({}) went before call {} ({}), seed {seed}, kills {kills:?}",
            i + 1,
            pair[1],
            i,
            pair[0]
        );
    }
    let seen_ids: HashSet<&String> = seen.iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !seen_ids.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged messages never delivered: {lost:?}");
    let duplicates = seen.len() - seen_ids.len();
    eprintln!(
        "fifo crash: {} acknowledged, {} calls, {duplicates} duplicates, kills {kills:?}",
        acked.len(),
        seen.len()
    );
    assert!(duplicates <= KILLS, "{duplicates} duplicates for {KILLS} kills");
    let failed = relay.get_json("/v1/deliveries?status=exhausted&limit=1").await;
    assert!(failed["data"].as_array().unwrap().is_empty(), "{failed}");
}
