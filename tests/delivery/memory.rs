use std::time::Duration;

use serde_json::json;

use crate::common::{self, Relay, KEY};
use crate::helpers::{black_hole, delivery_toml, lane_backlog};

/// Calls in flight to the automation: the default `per_automation_concurrency`.
const IN_FLIGHT: usize = 64;
/// Messages posted first: the calls in flight and a few waiting.
const FIRST: usize = 100;
/// Messages posted then, all waiting in memory behind the calls in flight: 270 MB of
/// payloads if each held its own.
const MORE: usize = 300;
/// Payload bytes of each (under the default `limits.max_body_bytes` of 1 MiB).
const PAYLOAD_BYTES: usize = 900_000;
/// Concurrent producers posting them.
const PRODUCERS: usize = 8;
/// How much the relay's peak resident memory may grow while the [`MORE`] deliveries join the
/// backlog (KiB). Posting them repeats what the first ones cost (bodies being parsed and
/// stored) but adds no call in flight; held payloads would add 270 MB.
const GROWTH_KIB: u64 = 60 * 1024;

/// Posts messages `from..to` with [`PRODUCERS`] concurrent producers, each answered 202.
async fn post(relay: &Relay, body: &bytes::Bytes, from: usize, to: usize) {
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = relay.url("/v1/messages");
            let body = body.clone();
            tokio::spawn(async move {
                let client = common::client();
                for n in (from + p..to).step_by(PRODUCERS) {
                    let resp = client
                        .post(&url)
                        .header("Api-Key", KEY)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    assert_eq!(resp.expect("post").status(), 202, "message {n}");
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.expect("producer");
    }
}

/// Waits until `waiting` deliveries wait in memory; returns the relay's peak memory (KiB).
async fn peak_with_backlog(relay: &Relay, waiting: i64) -> u64 {
    relay
        .wait_for(Duration::from_secs(10), "the backlog to fill", || async {
            (lane_backlog(relay).await == waiting).then_some(())
        })
        .await;
    let (peak_kib, _) = relay.memory_kib();
    eprintln!("relay VmHWM {} MiB with {waiting} deliveries waiting", peak_kib / 1024);
    peak_kib
}

// Deliveries waiting in memory behind a receiver that never answers hold no payload (it is
// read when the call starts), so the relay's memory is bounded by the calls in flight,
// not by the backlog: 300 more waiting deliveries of 900 KB leave its peak where the calls in
// flight put it. (An absolute bound on the peak measured the machine's load as much as the
// relay: 146-158 MiB alone, up to 247 under other builds, with the same backlog.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_holds_no_payloads() {
    let hole = black_hole().await;
    let relay = Relay::start(&delivery_toml(&[("request_timeout_ms", "60000")]));
    relay.create_automation("proc_stalled", &hole).await;

    let pad = "x".repeat(PAYLOAD_BYTES);
    let body = json!({"processor_id": "proc_stalled", "payload": {"pad": pad}}).to_string();
    let body = bytes::Bytes::from(body);
    post(&relay, &body, 0, FIRST).await;
    let before = peak_with_backlog(&relay, (FIRST - IN_FLIGHT) as i64).await;
    post(&relay, &body, FIRST, FIRST + MORE).await;
    let after = peak_with_backlog(&relay, (FIRST + MORE - IN_FLIGHT) as i64).await;
    assert!(
        after.saturating_sub(before) < GROWTH_KIB,
        "{MORE} more deliveries waiting raised the peak from {before} KiB to {after} KiB"
    );
}
