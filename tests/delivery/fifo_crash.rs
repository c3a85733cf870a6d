//! The FIFO line survives `kill -9`: under load (senders posting concurrently), the relay is
//! killed at seeded random instants and restarted on the same database, and the receiver of a
//! FIFO automation still sees the messages in ingest order. Mirrors tests/crash_loop.rs.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay, KEY};

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

fn seed() -> u64 {
    std::env::var("FIFO_CRASH_SEED")
        .ok()
        .map(|s| s.parse().expect("FIFO_CRASH_SEED is a u64"))
        .unwrap_or_else(rand::random)
}

#[derive(Default)]
struct Load {
    base: RwLock<String>,
    acked: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// Posts messages until `stop`, each retried against the current address until answered 202.
async fn sender(index: usize, load: Arc<Load>) {
    let client = common::client();
    let mut seq = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        let body = json!({"processor_id": PROCESSOR, "payload": {"sender": index, "seq": seq}});
        seq += 1;
        while !load.stop.load(Ordering::SeqCst) {
            let base = load.base.read().unwrap().clone();
            let sent = client
                .post(format!("{base}/v1/messages"))
                .header("Api-Key", KEY)
                .timeout(Duration::from_secs(5))
                .json(&body)
                .send()
                .await;
            if let Ok(resp) = sent {
                if resp.status().as_u16() == 202 {
                    if let Some(id) = resp
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["id"].as_str().map(String::from))
                    {
                        load.acked.lock().unwrap().push(id);
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_under_load_keeps_a_fifo_automation_in_ingest_order() {
    let seed = seed();
    eprintln!("fifo crash seed: {seed} (replay with FIFO_CRASH_SEED={seed})");
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

    let load = Arc::new(Load::default());
    *load.base.write().unwrap() = relay.base.clone();
    let senders: Vec<_> = (0..SENDERS).map(|i| tokio::spawn(sender(i, load.clone()))).collect();
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        let (up, down) = (rng.random_range(400..1500u64), rng.random_range(0..300u64));
        tokio::time::sleep(Duration::from_millis(up)).await;
        kills.push((up, down, load.acked.lock().unwrap().len(), receiver.count()));
        tokio::task::block_in_place(|| relay.kill9());
        tokio::time::sleep(Duration::from_millis(down)).await;
        tokio::task::block_in_place(|| relay.restart());
        *load.base.write().unwrap() = relay.base.clone();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender");
    }
    let acked: Vec<String> = load.acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "too little load: {} acknowledged ({kills:?})", acked.len());
    assert!(
        kills.iter().filter(|k| k.3 > 0).count() >= KILLS - 1,
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
