//! Receivers that never finish: `E_TIMEOUT` at the whole-call timeout, connection closed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Relay;
use crate::support::{
    assert_retried_then_exhausted, delivery_toml, first_failure, raw_receiver, TIMEOUT_MS,
};

/// Per connection: when the request was read and when the relay closed the socket.
type Spans = Arc<Mutex<Vec<(Instant, Option<Instant>)>>>;

/// Runs `tick` every `every` (after the first `every`) until the relay closes the
/// connection (a read returns 0 or fails, or a write fails), recording both instants in
/// `spans`. Gives up after 20 s.
async fn until_closed(mut stream: TcpStream, spans: Spans, every: Option<Duration>, body: &[u8]) {
    let start = Instant::now();
    let index = {
        let mut s = spans.lock().expect("lock");
        s.push((start, None));
        s.len() - 1
    };
    let mut buf = [0u8; 64];
    let mut next = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(deadline);
    loop {
        let tick = tokio::time::sleep(every.unwrap_or(Duration::from_secs(3600)));
        tokio::select! {
            read = stream.read(&mut buf) => {
                if matches!(read, Ok(0) | Err(_)) { break; }
            }
            _ = tick => {
                let byte = body[next % body.len()];
                next += 1;
                if stream.write_all(&[byte]).await.is_err() { break; }
            }
            _ = &mut deadline => return,
        }
    }
    spans.lock().expect("lock")[index].1 = Some(Instant::now());
}

/// Asserts the first `connections` connections were each closed by the relay `timeout_ms`
/// (+ slack) after they began.
async fn assert_closed_at_timeout(spans: &Spans, connections: usize, timeout_ms: u128) {
    let closing = Instant::now() + Duration::from_secs(2);
    let spans = loop {
        let spans = spans.lock().expect("lock").clone();
        let done = spans.len() >= connections && spans[..connections].iter().all(|s| s.1.is_some());
        if done || Instant::now() > closing {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(spans.len() >= connections, "{} connections made, expected {connections}", spans.len());
    for (i, (start, end)) in spans[..connections].iter().enumerate() {
        let end = end.unwrap_or_else(|| panic!("connection {i} was never closed by the relay"));
        let held = end.duration_since(*start).as_millis();
        assert!(
            held + 50 >= timeout_ms && held < timeout_ms + 1_000,
            "connection {i} closed after {held} ms, timeout {timeout_ms} ms"
        );
    }
}

fn duration_ms(log: &serde_json::Value) -> f64 {
    log["external_request_log"]["duration_ms"].as_f64().expect("duration_ms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_then_silence_times_out_at_request_timeout() {
    let spans: Spans = Arc::default();
    let s = spans.clone();
    let (addr, _) =
        raw_receiver(move |_, stream| until_closed(stream, s.clone(), None, b"-")).await;
    let relay = Relay::start(&delivery_toml(&[]));
    let url = format!("http://{addr}/silent");
    let (id, pending, log) = first_failure(&relay, "proc_silent", &url, "E_TIMEOUT", 0).await;
    let took = duration_ms(&log);
    let timeout = TIMEOUT_MS as f64;
    assert!(took >= timeout - 20.0 && took < timeout + 500.0, "timed out after {took} ms");
    assert_eq!(log["external_request_log"]["response_body"], serde_json::json!({}));
    assert_retried_then_exhausted(&relay, &id, &pending, "E_TIMEOUT").await;
    assert_closed_at_timeout(&spans, 2, TIMEOUT_MS as u128).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_dribbled_one_byte_a_second_times_out_at_the_whole_call_timeout() {
    // Each byte comes well within the timeout of the one before, so only a deadline on the
    // whole call (not an idle-read timeout) can end it.
    const DRIBBLE_TIMEOUT_MS: u128 = 2_500;
    let spans: Spans = Arc::default();
    let s = spans.clone();
    let (addr, _) = raw_receiver(move |_, mut stream| {
        let s = s.clone();
        async move {
            let head =
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n";
            if stream.write_all(head).await.is_ok() {
                until_closed(stream, s, Some(Duration::from_secs(1)), b"abcdefghij").await;
            }
        }
    })
    .await;
    let relay =
        Relay::start(&delivery_toml(&[("request_timeout_ms", &DRIBBLE_TIMEOUT_MS.to_string())]));
    let url = format!("http://{addr}/dribble");
    let (_, _, log) = first_failure(&relay, "proc_dribble", &url, "E_TIMEOUT", 200).await;
    let took = duration_ms(&log);
    let timeout = DRIBBLE_TIMEOUT_MS as f64;
    assert!(took >= timeout - 20.0 && took < timeout + 500.0, "timed out after {took} ms");
    let kept = &log["external_request_log"]["response_body"]["text"];
    let kept = kept.as_str().unwrap_or_else(|| panic!("the bytes that came are kept: {kept}"));
    assert!(["ab", "abc"].contains(&kept), "kept {kept:?} of the dribble");
    assert_closed_at_timeout(&spans, 1, DRIBBLE_TIMEOUT_MS).await;
}
