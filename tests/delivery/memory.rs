use std::time::Duration;

use serde_json::json;

use crate::common::{self, Relay, KEY};
use crate::helpers::{black_hole, delivery_toml, lane_backlog};

/// Messages queued to the receiver that never answers.
const MESSAGES: usize = 300;
/// Payload bytes of each (under the default `limits.max_body_bytes` of 1 MiB).
const PAYLOAD_BYTES: usize = 900_000;
/// Concurrent producers posting them.
const PRODUCERS: usize = 8;
/// The relay's peak resident memory may not pass this (KiB): the deliveries waiting in
/// memory alone would take over 200 MB if each held its payload.
const PEAK_KIB: u64 = 200 * 1024;

// Deliveries waiting in memory behind a receiver that never answers hold no payload (it is
// read when the call starts), so the relay's memory is bounded by the calls in flight,
// not by the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_holds_no_payloads() {
    let hole = black_hole().await;
    let relay = Relay::start(&delivery_toml(&[("request_timeout_ms", "60000")]));
    relay.create_automation("proc_stalled", &hole).await;

    let pad = "x".repeat(PAYLOAD_BYTES);
    let body = json!({"processor_id": "proc_stalled", "payload": {"pad": pad}}).to_string();
    let body = bytes::Bytes::from(body);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = relay.url("/v1/messages");
            let body = body.clone();
            tokio::spawn(async move {
                let client = common::client();
                for n in (p..MESSAGES).step_by(PRODUCERS) {
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
    // 64 calls in flight (the default per_automation_concurrency), the rest in memory.
    let waiting = MESSAGES as i64 - 64;
    relay
        .wait_for(Duration::from_secs(10), "the backlog to fill", || async {
            (lane_backlog(&relay).await == waiting).then_some(())
        })
        .await;
    let (peak_kib, _) = relay.memory_kib();
    eprintln!("relay VmHWM {} MiB with {waiting} deliveries waiting", peak_kib / 1024);
    assert!(peak_kib < PEAK_KIB, "the relay peaked at {peak_kib} KiB");
}
