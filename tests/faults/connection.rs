//! Refused, reset and closed connections: `E_CONNECTION`, retried on the schedule.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::Relay;
use crate::support::{assert_retried_then_exhausted, delivery_toml, first_failure, raw_receiver};

const PARTIAL: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\npartial";

/// Writes the head and the first bytes of a 1000-byte body, then waits until the relay
/// has surely read them.
async fn write_partial(stream: &mut TcpStream) {
    stream.write_all(PARTIAL).await.expect("write");
    stream.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_e_connection_with_no_status() {
    // A port that was bound and closed again: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let relay = Relay::start(&delivery_toml(&[]));
    let url = format!("http://127.0.0.1:{port}/hook");
    let (id, pending, log) = first_failure(&relay, "proc_refused", &url, "E_CONNECTION", 0).await;
    assert_eq!(log["external_request_log"]["response_body"], serde_json::json!({}), "{log}");
    assert_eq!(log["response_truncated"], false);
    let took = log["external_request_log"]["duration_ms"].as_f64().expect("duration");
    assert!(took < 250.0, "a refused connect fails at once, not at a timeout: {took} ms");
    assert_retried_then_exhausted(&relay, &id, &pending, "E_CONNECTION").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_response_is_e_connection_not_success() {
    let (addr, count) = raw_receiver(|_, mut stream| async move {
        write_partial(&mut stream).await;
        stream.set_zero_linger().expect("SO_LINGER 0");
        drop(stream); // RST
    })
    .await;
    let relay = Relay::start(&delivery_toml(&[]));
    let url = format!("http://{addr}/reset");
    let (id, pending, log) = first_failure(&relay, "proc_reset", &url, "E_CONNECTION", 200).await;
    let error = log["external_request_log"]["error"].as_str().expect("error");
    assert!(error.contains("reading the response body"), "{error}");
    assert_eq!(log["response_truncated"], false, "a reset is not a cap: {log}");
    assert_retried_then_exhausted(&relay, &id, &pending, "E_CONNECTION").await;
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_before_any_byte_is_e_connection() {
    let (addr, _) = raw_receiver(|_, stream| async move {
        stream.set_zero_linger().expect("SO_LINGER 0");
        drop(stream);
    })
    .await;
    let relay = Relay::start(&delivery_toml(&[]));
    let url = format!("http://{addr}/rst");
    let (id, pending, _) = first_failure(&relay, "proc_rst", &url, "E_CONNECTION", 0).await;
    assert_retried_then_exhausted(&relay, &id, &pending, "E_CONNECTION").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderly_close_short_of_content_length_is_e_connection() {
    // FIN, not RST, after 7 of 1000 promised bytes: an incomplete body, never a success.
    let (addr, _) = raw_receiver(|_, mut stream| async move {
        write_partial(&mut stream).await;
        let _ = stream.shutdown().await;
    })
    .await;
    let relay = Relay::start(&delivery_toml(&[]));
    let url = format!("http://{addr}/short");
    let (_, _, log) = first_failure(&relay, "proc_short", &url, "E_CONNECTION", 200).await;
    assert_eq!(log["response_truncated"], false, "{log}");
}
