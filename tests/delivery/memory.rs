use std::time::Duration;

use serde_json::json;

use crate::common::{self, Relay, KEY};
use crate::helpers::{black_hole, delivery_toml, lane_backlog};

/// Calls in flight to the automation: the default `per_automation_concurrency`.
const IN_FLIGHT: usize = 64;
/// Messages posted first: the calls in flight and a few waiting.
const FIRST: usize = 100;
/// Messages posted then, all waiting in memory behind the calls in flight: 429 MiB of
/// payloads if each held its own.
const MORE: usize = 500;
/// Payload bytes of each (under the default `limits.max_body_bytes` of 1 MiB).
const PAYLOAD_BYTES: usize = 900_000;
/// Concurrent producers posting them.
const PRODUCERS: usize = 8;
/// How much the relay's anonymous memory may grow while the [`MORE`] deliveries join the
/// backlog (KiB): under half of what their payloads would hold, about twice the most the
/// allocator was seen to keep of the bodies posted meanwhile (68-110 MiB). Beside other
/// sessions' builds (load 7-8) it grew by 68 MiB as the relay is, by 388 MiB with the
/// waiting deliveries holding their payloads (a scratch change). What the allocator keeps
/// grows with the machine's load, not with the backlog: in a scratch build counting the
/// relay's allocations, its live heap went from 69 to 74 MiB while 300 more were posted and
/// its RssAnon from 134 to 216 MiB, all of it in mimalloc's arena (freed pages of the 900 KB
/// bodies, the jump coming as the relay's threads grew from 7 to 10, its blocking pool);
/// SQLite held 2.4 MB and glibc's heap 3.5 MB throughout.
const GROWTH_KIB: u64 = 200 * 1024;
/// Samples of the relay's memory taken each time, [`SAMPLE_EVERY`] apart: the least is its
/// level, without a body being parsed at that instant.
const SAMPLES: usize = 5;
/// See [`SAMPLES`].
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

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

/// Waits until `waiting` deliveries wait in memory; returns the relay's anonymous resident
/// memory then (KiB): the least of [`SAMPLES`] readings.
async fn anon_with_backlog(relay: &Relay, waiting: i64) -> u64 {
    relay
        .wait_for(Duration::from_secs(10), "the backlog to fill", || async {
            (lane_backlog(relay).await == waiting).then_some(())
        })
        .await;
    let mut least = u64::MAX;
    for _ in 0..SAMPLES {
        tokio::time::sleep(SAMPLE_EVERY).await;
        least = least.min(anon_kib(relay));
    }
    let (peak_kib, _) = relay.memory_kib();
    eprintln!(
        "relay RssAnon {} MiB (VmHWM {} MiB) with {waiting} deliveries waiting",
        least / 1024,
        peak_kib / 1024
    );
    assert_eq!(lane_backlog(relay).await, waiting, "no call ended while sampling");
    least
}

/// The relay's `RssAnon` (KiB): its heap, without the mapped binary and libraries.
fn anon_kib(relay: &Relay) -> u64 {
    let pid = relay.pid().expect("the relay is running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).expect("RssAnon");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB value")
}

// Deliveries waiting in memory behind a receiver that never answers hold no payload (it is
// read when the call starts), so the relay's memory is bounded by the calls in flight,
// not by the backlog: 500 more waiting deliveries of 900 KB add far less than their 429 MiB.
// The calls' timeout outlasts the test even on a loaded machine, so none ends and is tried
// again meanwhile (each retry reads its payload again). (The peak, VmHWM, measured the
// machine's load as much as the relay: 156 -> 164 MiB alone, 166 -> 275 under other builds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_holds_no_payloads() {
    let hole = black_hole().await;
    let relay = Relay::start(&delivery_toml(&[("request_timeout_ms", "600000")]));
    relay.create_automation("proc_stalled", &hole).await;

    let pad = "x".repeat(PAYLOAD_BYTES);
    let body = json!({"processor_id": "proc_stalled", "payload": {"pad": pad}}).to_string();
    let body = bytes::Bytes::from(body);
    post(&relay, &body, 0, FIRST).await;
    let before = anon_with_backlog(&relay, (FIRST - IN_FLIGHT) as i64).await;
    post(&relay, &body, FIRST, FIRST + MORE).await;
    let after = anon_with_backlog(&relay, (FIRST + MORE - IN_FLIGHT) as i64).await;
    assert!(
        after.saturating_sub(before) < GROWTH_KIB,
        "{MORE} more deliveries waiting raised the relay's memory from {before} KiB to {after} KiB"
    );
}
