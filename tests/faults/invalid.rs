//! Answers that are not HTTP: `E_INVALID_RESPONSE`, never a success, retried on schedule.

use tokio::io::AsyncWriteExt;

use crate::common::Relay;
use crate::support::{
    after_attempt, assert_default_backoff, assert_failed, assert_retried_then_exhausted,
    deliver_one, delivery_toml, raw_receiver,
};

/// Starts a receiver that writes `bytes` and closes.
async fn answering(bytes: Vec<u8>) -> String {
    let (addr, _) = raw_receiver(move |_, mut stream| {
        let bytes = bytes.clone();
        async move {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
    })
    .await;
    format!("http://{addr}/invalid")
}

/// Each case: a name and the bytes of the "response".
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge_head = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    huge_head.extend(std::iter::repeat_n(b'a', 2 << 20));
    huge_head.extend_from_slice(b"\r\n\r\n");
    vec![
        ("garbage", b"garbage\r\n\r\n".to_vec()),
        ("bad_version", b"HTTP/9.9 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec()),
        ("bad_status", b"HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n".to_vec()),
        ("header_without_colon", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n".to_vec()),
        ("bad_content_length", b"HTTP/1.1 200 OK\r\ncontent-length: lots\r\n\r\nx".to_vec()),
        ("two_megabyte_head", huge_head),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_that_are_not_http_are_e_invalid_response() {
    let relay = Relay::start(&delivery_toml(&[]));
    let mut ids = Vec::new();
    for (name, bytes) in cases() {
        let url = answering(bytes).await;
        ids.push((name, deliver_one(&relay, &format!("proc_{name}"), &url).await));
    }
    let mut pending = Vec::new();
    for (name, id) in &ids {
        let (d, logs) = after_attempt(&relay, id, 1).await;
        assert_eq!(logs[0]["error_code"], "E_INVALID_RESPONSE", "{name}: {}", logs[0]);
        assert_failed(&logs[0], "E_INVALID_RESPONSE", 0);
        assert_default_backoff(&d, &logs[0]);
        pending.push((id, d));
    }
    // The garbage case is retried once, on time, and fails the same way.
    let (id, d) = &pending[0];
    assert_retried_then_exhausted(&relay, id, d, "E_INVALID_RESPONSE").await;
}

// Chunked framing is HTTP too: a chunk-size line that is not hex is an invalid response,
// not a connection failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunked_framing_is_e_invalid_response() {
    let relay = Relay::start(&delivery_toml(&[]));
    let bytes =
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec();
    let url = answering(bytes).await;
    let id = deliver_one(&relay, "proc_bad_chunk", &url).await;
    let (d, logs) = after_attempt(&relay, &id, 1).await;
    assert_failed(&logs[0], "E_INVALID_RESPONSE", 200);
    assert_default_backoff(&d, &logs[0]);
}
