//! A 1 GB response body: capped, flagged, cut off quickly, and never held in memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::common::Relay;
use crate::support::{
    after_attempt, assert_default_backoff, deliver_one, delivery_toml, raw_receiver,
};

const GIB: u64 = 1 << 30;
const CAP: usize = 64 * 1024;
const CHUNK: usize = 256 * 1024;

/// What a flood receiver saw: bytes written before the relay hung up, and how long it took.
#[derive(Default)]
struct Flood {
    sent: AtomicU64,
    ended_ms: AtomicU64,
    ended: AtomicUsize,
}

/// A receiver answering `status` with a 1 GiB body of zeros (with a `Content-Length`, or
/// chunked), written as fast as the relay takes it, until the relay closes the connection.
async fn flood(status: u16, chunked: bool) -> (String, Arc<Flood>) {
    let seen: Arc<Flood> = Arc::default();
    let flood = seen.clone();
    let (addr, _) = raw_receiver(move |_, mut stream| {
        let flood = flood.clone();
        async move {
            let started = Instant::now();
            let framing = if chunked {
                "transfer-encoding: chunked".to_string()
            } else {
                format!("content-length: {GIB}")
            };
            let head =
                format!("HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\n{framing}\r\n\r\n");
            let zeros = vec![0u8; CHUNK];
            let chunk_head = format!("{CHUNK:x}\r\n");
            let mut result = stream.write_all(head.as_bytes()).await;
            let mut sent = 0u64;
            while result.is_ok() && sent < GIB {
                if chunked {
                    result = stream.write_all(chunk_head.as_bytes()).await;
                }
                if result.is_ok() {
                    result = stream.write_all(&zeros).await;
                }
                if result.is_ok() && chunked {
                    result = stream.write_all(b"\r\n").await;
                }
                if result.is_ok() {
                    sent += CHUNK as u64;
                    flood.sent.store(sent, Ordering::SeqCst);
                }
            }
            flood.ended_ms.store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
            flood.ended.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await;
    (format!("http://{addr}/flood"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gigabyte_bodies_are_capped_cut_short_and_not_buffered() {
    let relay = Relay::start(&delivery_toml(&[
        ("response_body_cap_bytes", &CAP.to_string()),
        ("request_timeout_ms", "20000"),
    ]));
    let (rss_before, _) = relay.memory_kib();
    let cases = [
        ("proc_flood_ok", 200, false),
        ("proc_flood_chunked", 200, true),
        ("proc_flood_500", 500, false),
    ];
    let mut running = Vec::new();
    for (processor, status, chunked) in cases {
        let (url, seen) = flood(status, chunked).await;
        running.push((processor, status, deliver_one(&relay, processor, &url).await, seen));
    }
    for (processor, status, id, seen) in &running {
        let (d, logs) = if *status == 200 {
            let d = relay.wait_delivery_ends(id, "succeeded").await;
            (d, relay.logs_of(id).await)
        } else {
            let (d, logs) = after_attempt(&relay, id, 1).await;
            assert_default_backoff(&d, &logs[0]);
            (d, logs)
        };
        let log = &logs[0];
        assert_eq!(logs.len(), 1, "{processor}: {d}");
        assert_eq!(log["response_truncated"], true, "{processor}: {log}");
        assert_eq!(log["external_request_log"]["status_code"], *status, "{processor}");
        let expected_code = if *status == 200 { None } else { Some("E_HTTP_STATUS") };
        assert_eq!(log["error_code"].as_str(), expected_code, "{processor}: {log}");
        let text = log["external_request_log"]["response_body"]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{processor}: zeros are shown as text: {log}"));
        assert!(text.len() <= CAP, "{processor}: stored {} bytes, cap {CAP}", text.len());
        assert!(
            text.len() >= CAP / 2 && text.bytes().all(|b| b == 0),
            "{processor}: the start kept"
        );
        let took = log["external_request_log"]["duration_ms"].as_f64().expect("duration");
        assert!(took < 2_000.0, "{processor}: the call took {took} ms to stop reading");

        // The relay hung up instead of draining the gigabyte.
        relay
            .wait_for(Duration::from_secs(5), "the receiver to see the hang-up", || async {
                (seen.ended.load(Ordering::SeqCst) > 0).then_some(())
            })
            .await;
        let sent = seen.sent.load(Ordering::SeqCst);
        assert!(sent >= CAP as u64, "{processor}: receiver sent only {sent} bytes");
        assert!(sent < 64 << 20, "{processor}: the relay read {sent} bytes of a {CAP}-byte cap");
        let ended = seen.ended_ms.load(Ordering::SeqCst);
        assert!(ended < 3_000, "{processor}: the relay held the connection {ended} ms");
    }
    let (peak, now) = relay.memory_kib();
    assert!(peak < 300 * 1024, "relay peak RSS {peak} KiB (started at {rss_before} KiB)");
    assert!(now < 300 * 1024, "relay RSS {now} KiB");
    assert!(peak < rss_before + 100 * 1024, "peak RSS grew from {rss_before} to {peak} KiB");
}
