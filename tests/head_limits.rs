//! A request head past the limits (URI length, header fields by number and by size) gets the
//! JSON error `{code, message, status, field?}` like every other refusal, over raw HTTP/1.1
//! and over HTTP/2; heads within the limits are served.

use hookrelay_testkit as common;

use std::time::Duration;

use common::Relay;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `head` (a request without body, ending in a blank line) on a fresh connection and
/// reads the whole answer; the status and body.
async fn raw(relay: &Relay, head: &str) -> (u16, String) {
    let addr = relay.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer, then the connection closed")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get(target: &str, extra_headers: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra_headers}\r\n")
}

/// The answer is `status` with the JSON error whose code is `code`; its body.
fn assert_json_error(status: u16, body: &str, want_status: u16, code: &str) -> Value {
    assert_eq!(status, want_status, "{body}");
    let json: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{want_status} without a JSON body ({e}): {body:?}"));
    assert_eq!(json["code"], code, "{json}");
    assert_eq!(json["status"], want_status, "{json}");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
    json
}

#[tokio::test]
async fn an_overlong_uri_gets_a_json_414() {
    let relay = Relay::start("");
    let (status, body) = raw(&relay, &get(&format!("/healthz?q={}", "a".repeat(9000)), "")).await;
    let json = assert_json_error(status, &body, 414, "uri_too_long");
    assert!(json["message"].as_str().is_some_and(|m| m.contains("8192")), "{json}");
}

#[tokio::test]
async fn too_many_header_fields_get_a_json_431() {
    let relay = Relay::start("");
    // 99 + Host + Connection: 101 fields, one past the limit.
    let extra: String = (0..99).map(|i| format!("X-N-{i}: {i}\r\n")).collect();
    let (status, body) = raw(&relay, &get("/healthz", &extra)).await;
    let json = assert_json_error(status, &body, 431, "headers_too_large");
    assert!(json["message"].as_str().is_some_and(|m| m.contains("101 header fields")), "{json}");
}

#[tokio::test]
async fn oversized_headers_get_a_json_431_naming_the_largest() {
    let relay = Relay::start("");
    let cookie = format!("Cookie: session={}\r\n", "c".repeat(40_000));
    let (status, body) = raw(&relay, &get("/healthz", &cookie)).await;
    let json = assert_json_error(status, &body, 431, "headers_too_large");
    assert_eq!(json["field"], "cookie", "{json}");
}

#[tokio::test]
async fn heads_at_the_limits_are_served() {
    let relay = Relay::start("");
    // A URI of 8,192 bytes, 100 fields, 31 KiB of header names and values.
    let target = format!("/healthz?q={}", "a".repeat(8192 - "/healthz?q=".len()));
    let mut extra: String = (0..97).map(|i| format!("X-N-{i}: {i}\r\n")).collect();
    extra.push_str(&format!("X-Token: {}\r\n", "t".repeat(31 * 1024)));
    let (status, body) = raw(&relay, &get(&target, &extra)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn http2_headers_past_the_limit_get_a_json_431() {
    let relay = Relay::start("");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().http2_prior_knowledge().build().expect("client");
    let response = client
        .get(relay.url("/healthz"))
        .header("x-token", "t".repeat(40_000))
        .send()
        .await
        .expect("an answer over HTTP/2");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let json = assert_json_error(status, &body, 431, "headers_too_large");
    assert_eq!(json["field"], "x-token", "{json}");
}
