//! A body the relay cannot read is refused for what is wrong with it, on every route that
//! reads one: a malformed chunked body is bad input (400 naming the body), not a body too
//! large (it was answered 413 `payload_too_large`); a declared `Content-Length` over the
//! route's limit is refused (413) before the body is read, not after the body timeout (408).

use hookrelay_testkit as common;

use std::time::{Duration, Instant};

use common::apps::{demo_app, DEMO_KEY};
use common::{Relay, KEY};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SINK: &str = "/v1/integrations/google_sheets/webhook?spreadsheet_id=x&worksheet_id=0";
const UPLOAD_TYPE: &str = "multipart/form-data; boundary=b";

/// Every body-reading route: path, key, content type.
fn routes() -> [(&'static str, &'static str, &'static str); 5] {
    [
        ("/v1/messages", KEY, "application/json"),
        ("/v1/processors/automations/endpoints", KEY, "application/json"),
        (SINK, KEY, "application/json"),
        ("/v1/workflows/run", DEMO_KEY, "application/json"),
        ("/v1/files/upload", DEMO_KEY, UPLOAD_TYPE),
    ]
}

/// Writes `request` on a fresh connection and reads one answer (head, then as many body
/// bytes as its `Content-Length` says) without waiting for the connection to close: the
/// status, the JSON body, and how long the answer took.
async fn exchange(relay: &Relay, request: &[u8]) -> (u16, Value, Duration) {
    let addr = relay.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let sent = Instant::now();
    stream.write_all(request).await.expect("write");
    let mut got = Vec::new();
    let read = async {
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse())
                    })
                    .and_then(Result::ok)
                    .unwrap_or(0usize);
                if body.len() >= length {
                    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
                    return (status, serde_json::from_str(body).unwrap_or(Value::Null));
                }
            }
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0, "the connection closed before a whole answer: {text:?}");
            got.extend_from_slice(&buf[..n]);
        }
    };
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(15), read).await.expect("an answer in 15 s");
    (status, body, sent.elapsed())
}

fn head(path: &str, key: &str, content_type: &str, framing: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: {content_type}\r\n{framing}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_a_400_on_every_route() {
    let relay = Relay::start(&demo_app());
    let bodies = ["zz\r\n", "5\r\n{\"pro\r\nzz\r\n", "-1\r\n\r\n"];
    for (path, key, content_type) in routes() {
        for body in bodies {
            let request = head(path, key, content_type, "Transfer-Encoding: chunked\r\n") + body;
            let (status, json, _) = exchange(&relay, request.as_bytes()).await;
            let ctx = format!("{path} with {body:?}: {json}");
            assert_eq!(status, 400, "{ctx}");
            assert_eq!(json["code"], "invalid_param", "{ctx}");
            assert_eq!(json["field"], "body", "{ctx}");
            let message = json["message"].as_str().unwrap_or("");
            assert!(message.contains("chunked framing is invalid"), "{ctx}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    let relay = Relay::start(&demo_app());
    for (path, key, content_type) in routes() {
        // The upload's limit is the app's (megabytes more than 1 MiB): declare past it.
        let declared = if path.contains("upload") { 1_000_000_000 } else { 2_000_000 };
        let framing = format!("Content-Length: {declared}\r\n");
        let request = head(path, key, content_type, &framing) + "{\"";
        let (status, json, took) = exchange(&relay, request.as_bytes()).await;
        let ctx = format!("{path}: {json} after {took:?}");
        assert_eq!(status, 413, "{ctx}");
        assert!(took < Duration::from_secs(5), "answered before the body timeout: {ctx}");
        let code = if path.contains("upload") { "file_too_large" } else { "payload_too_large" };
        assert_eq!(json["code"], code, "{ctx}");
    }
}
