//! Many uploads at once: at most `limits.max_concurrent_uploads` are received together (the
//! others get 503 `too_many_uploads` before their bodies are read), so stalled uploads
//! cannot take the relay's memory with their number.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::uploads::{config, part_head, BOUNDARY, DOCS_KEY, MB};
use crate::common::Relay;

/// What each stalled upload sends of its file before it stops.
const SENT: usize = 14 * MB;
/// The relay's peak RSS allowed while twelve such uploads stall: with four received at once
/// it peaked at 130 MiB (debug build), with all twelve at 252 MiB.
const MAX_PEAK_RSS_KIB: u64 = 180 * 1024;

/// An upload over raw HTTP/1.1 declaring a 15 MB document, of which it sends `SENT` bytes and
/// then nothing: its head and those bytes.
///
/// Built once, before any client connects: the relay closes a connection that has not sent
/// its head within `header_read_timeout_ms` of its accept (2 s here). Built by each client
/// after connecting (14 MB filled byte by byte in a debug build, twelve clients on the
/// test's two threads), the last clients' heads left more than 2 s after their connections
/// were accepted on a loaded machine: those were closed unanswered (status 0).
fn stalled_upload_request() -> bytes::Bytes {
    let head =
        format!("{}someone\r\n{}", part_head("user", None), part_head("file", Some("a.pdf")));
    let request = format!(
        "POST /v1/files/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DOCS_KEY}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        head.len() + 15 * MB
    );
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(head.as_bytes());
    bytes.resize(bytes.len() + SENT, b'p');
    bytes.into()
}

/// Sends `request` (see [`stalled_upload_request`]) as soon as connected, and never the rest
/// of its body; the answer's status and JSON `code`.
async fn stalled_upload(addr: String, request: bytes::Bytes) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let send = async move {
        // A refused upload may be closed before all of it is read.
        let _ = writer.write_all(&request).await;
        writer
    };
    let answer = async {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got).await;
        String::from_utf8_lossy(&got).into_owned()
    };
    let (_writer, answer) = tokio::join!(send, answer);
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    (status, json["code"].as_str().unwrap_or(body).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_stalled_uploads_keep_the_relay_memory_bounded() {
    let relay = Relay::start(&format!(
        "[limits]\nheader_read_timeout_ms = 2000\nmax_concurrent_uploads = 4\n{}",
        config()
    ));
    let addr = relay.base.trim_start_matches("http://").to_string();
    let request = stalled_upload_request();
    let started = Instant::now();
    let uploads = (0..12).map(|_| tokio::spawn(stalled_upload(addr.clone(), request.clone())));
    let answers: Vec<(u16, String)> = futures_util::future::join_all(uploads)
        .await
        .into_iter()
        .map(|a| a.expect("upload task"))
        .collect();
    let (peak_kib, _) = relay.memory_kib();
    eprintln!("answers {answers:?}; relay peak RSS {} MiB", peak_kib / 1024);
    assert!(
        peak_kib < MAX_PEAK_RSS_KIB,
        "relay peak RSS {} MiB, bound {} MiB",
        peak_kib / 1024,
        MAX_PEAK_RSS_KIB / 1024
    );
    let count =
        |status: u16, code: &str| answers.iter().filter(|a| **a == (status, code.into())).count();
    assert_eq!(count(408, "request_timeout"), 4, "{answers:?}");
    assert_eq!(count(503, "too_many_uploads"), 8, "{answers:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
}

/// The review's case: valid 4 MB uploads on one HTTP/2 connection, all at once, were
/// sometimes refused as if their part headers were over the framing budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_valid_uploads_on_one_http2_connection_are_all_accepted() {
    const UPLOADS: usize = 60;
    const FILE: usize = 4 * MB;
    let relay =
        Relay::start(&format!("[limits]\nmax_concurrent_uploads = {UPLOADS}\n{}", config()));
    // common::client() installs the TLS crypto provider reqwest's builder needs.
    let _ = crate::common::client();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let head =
        format!("{}someone\r\n{}", part_head("user", None), part_head("file", Some("a.pdf")));
    let mut form = head.into_bytes();
    form.resize(form.len() + FILE, b'p');
    form.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let form = bytes::Bytes::from(form);
    let uploads = (0..UPLOADS).map(|_| {
        client
            .post(relay.url("/v1/files/upload"))
            .bearer_auth(DOCS_KEY)
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(form.clone())
            .send()
    });
    let mut refused = Vec::new();
    for answer in futures_util::future::join_all(uploads).await {
        let answer = answer.expect("an answer");
        assert_eq!(answer.version(), reqwest::Version::HTTP_2);
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.expect("JSON");
        if status != 201 || body["size"] != FILE {
            refused.push((status, body));
        }
    }
    assert!(refused.is_empty(), "{} of {UPLOADS} refused: {refused:?}", refused.len());
}

/// An upload whose body arrives slower than the API timeout (the delivery request timeout
/// plus 15 s) but within its own body deadlines is stored, not cut with a 504: the timeout
/// is for answers that wait on a receiver, and an upload's pace is its client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_arriving_slower_than_the_api_timeout_is_stored() {
    // An API timeout of 16 s; the body arrives over 17 s, a piece each second.
    const PIECES: usize = 17;
    const PIECE: &[u8] = b"%PDF-1.4 piece\n";
    let relay = Relay::start(&format!(
        "[limits]\nbody_read_timeout_ms = 30000\n[delivery]\nrequest_timeout_ms = 1000\n{}",
        config()
    ));
    let form_head =
        format!("{}someone\r\n{}", part_head("user", None), part_head("file", Some("a.pdf")));
    let form_tail = format!("\r\n--{BOUNDARY}--\r\n");
    let request_head = format!(
        "POST /v1/files/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DOCS_KEY}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{form_head}",
        form_head.len() + PIECES * PIECE.len() + form_tail.len()
    );
    let addr = relay.base.trim_start_matches("http://").to_string();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let send = async move {
        writer.write_all(request_head.as_bytes()).await?;
        for _ in 0..PIECES {
            tokio::time::sleep(Duration::from_secs(1)).await;
            writer.write_all(PIECE).await?;
        }
        writer.write_all(form_tail.as_bytes()).await?;
        Ok::<_, std::io::Error>(writer)
    };
    let answer = async {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got).await;
        String::from_utf8_lossy(&got).into_owned()
    };
    let started = Instant::now();
    // A relay that answers before the body is in may close on the rest of it.
    let (_sent, answer) = tokio::join!(send, answer);
    let status = answer.get(9..12).unwrap_or("none");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    assert_eq!(status, "201", "after {:?}: {answer}", started.elapsed());
    let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(json["size"], PIECES * PIECE.len(), "{json}");
}
