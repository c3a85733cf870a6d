//! Connections that hold a descriptor without a request in flight are closed: silent ones and
//! HTTP/2 ones (full or partial preface) at the first-request deadline, idle HTTP/2 and
//! HTTP/1.1 keep-alive ones after their idle deadline; past `max_connections` the one idle the
//! longest makes room, so `/healthz` answers even under a 1,024-descriptor limit.

use hookrelay_testkit as common;

use std::time::{Duration, Instant};

use common::{Relay, KEY};
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: what a real HTTP/2 client sends right after the preface.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 0x4, 0, 0, 0, 0, 0];

fn addr(relay: &Relay) -> String {
    relay.base.trim_start_matches("http://").to_string()
}

/// Connects and sends `opening` (possibly nothing).
async fn open(addr: &str, opening: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    if !opening.is_empty() {
        stream.write_all(opening).await.expect("write");
    }
    stream
}

/// Reads (and discards) until the server closes; how long that took from `since`, or `None`
/// when the connection was still open after `limit`.
async fn closed_after(mut stream: TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    let until_closed = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit.saturating_sub(since.elapsed()), until_closed).await.ok()
}

/// An HTTP/2 GET /healthz on stream 1: HEADERS with END_STREAM | END_HEADERS, the header
/// block in HPACK without Huffman (`:method GET`, `:scheme http` indexed; `:path` and
/// `:authority` literal).
fn h2_get_healthz() -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x44, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x41, 1, b'x']);
    let mut frame = vec![0, 0, block.len() as u8, 0x1, 0x5, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    frame
}

/// Reads HTTP/2 frames until the response HEADERS of stream 1; panics unless `:status 200`.
async fn read_h2_response(stream: &mut TcpStream) {
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await.expect("frame header");
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.expect("frame payload");
        let stream_id = u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]);
        if head[3] == 0x1 && stream_id == 1 {
            // 0x88: the HPACK static-table entry `:status 200`.
            assert_eq!(payload.first(), Some(&0x88), "not a 200: {payload:?}");
            return;
        }
    }
}

#[tokio::test]
async fn silent_and_http2_preface_connections_are_closed_at_the_first_request_deadline() {
    let relay = Relay::start("[limits]\nheader_read_timeout_ms = 1000\n");
    let addr = addr(&relay);
    let mut preface_and_settings = H2_PREFACE.to_vec();
    preface_and_settings.extend_from_slice(H2_SETTINGS);
    let openings: [(&str, &[u8]); 4] = [
        ("silent", b""),
        ("partial HTTP/2 preface", &H2_PREFACE[..16]),
        ("HTTP/2 preface", H2_PREFACE),
        ("HTTP/2 preface and SETTINGS", &preface_and_settings),
    ];
    let started = Instant::now();
    let mut waits = Vec::new();
    for (kind, opening) in openings {
        for _ in 0..10 {
            let stream = open(&addr, opening).await;
            waits.push(async move {
                (kind, closed_after(stream, started, Duration::from_secs(8)).await)
            });
        }
    }
    for (kind, closed) in join_all(waits).await {
        let closed = closed.unwrap_or_else(|| panic!("a {kind} connection was never closed"));
        // The 1 s deadline, plus at most 1 s for an HTTP/2 client to answer the goodbye ping.
        assert!(
            closed >= Duration::from_millis(900) && closed < Duration::from_millis(3500),
            "a {kind} connection closed after {closed:?}, not at the 1 s deadline"
        );
    }
    assert_eq!(relay.get_json("/healthz").await["status"], "ok");
}

#[tokio::test]
async fn idle_connections_are_closed_after_their_last_answer() {
    let relay = Relay::start("[limits]\nheader_read_timeout_ms = 1000\nidle_timeout_ms = 3000\n");
    let addr = addr(&relay);
    // HTTP/2: once a request came, the first-request deadline no longer applies; the idle one
    // does, counted from the answer.
    let mut h2 = open(&addr, H2_PREFACE).await;
    h2.write_all(H2_SETTINGS).await.expect("settings");
    h2.write_all(&h2_get_healthz()).await.expect("request");
    read_h2_response(&mut h2).await;
    let h2_answered = Instant::now();
    // HTTP/1.1 keep-alive: the wait for the next request's headers is bounded by
    // header_read_timeout_ms.
    let mut h1 = open(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = [0u8; 1024];
    let n = h1.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    let h1_answered = Instant::now();
    let (h2_closed, h1_closed) = tokio::join!(
        closed_after(h2, h2_answered, Duration::from_secs(10)),
        closed_after(h1, h1_answered, Duration::from_secs(10)),
    );
    let h2_closed = h2_closed.expect("the idle HTTP/2 connection was never closed");
    assert!(
        h2_closed >= Duration::from_millis(2800) && h2_closed < Duration::from_millis(5500),
        "the idle HTTP/2 connection closed {h2_closed:?} after its answer, not at 3 s"
    );
    let h1_closed = h1_closed.expect("the idle HTTP/1.1 connection was never closed");
    assert!(h1_closed < Duration::from_millis(2500), "HTTP/1.1 closed after {h1_closed:?}");
}

#[tokio::test]
async fn past_the_cap_the_longest_idle_makes_room_and_busy_ones_mean_a_quick_503() {
    let relay = Relay::start("[limits]\nmax_connections = 3\n");
    let addr = addr(&relay);
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(open(&addr, b"").await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A fourth client is served, and the oldest silent connection (idle the longest) is
    // closed for it, long before the 10 s first-request deadline.
    assert_eq!(relay.get_json("/healthz").await["status"], "ok");
    let oldest = silent.remove(0);
    let closed = closed_after(oldest, started, Duration::from_secs(3)).await;
    assert!(closed.is_some(), "the oldest idle connection was not evicted");
    drop(silent);

    // Three requests the relay is working on (test calls to a receiver that never answers)
    // fill the cap: nothing waits on its client, so a new client gets a 503 JSON error at
    // once instead of waiting in the backlog.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hole_url = format!("http://{}/hook", black_hole.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = black_hole.accept().await {
            held.push(stream);
        }
    });
    let automation = relay.create_automation("p", &hole_url).await;
    let id = automation["id"].as_str().expect("id");
    let mut busy = Vec::new();
    for _ in 0..3 {
        let head = format!(
            "POST /v1/processors/automations/tests/webhook/{id} HTTP/1.1\r\nHost: x\r\n\
             Api-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        busy.push(open(&addr, head.as_bytes()).await);
    }
    // Let the relay take the three requests in (a connection counts as busy from then on).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let mut refused = open(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), refused.read_to_end(&mut answer))
        .await
        .expect("the refusal came at once")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).expect("body")).expect("json");
    assert_eq!(body["code"], "unavailable");
    assert_eq!(body["status"], 503);
    assert!(asked.elapsed() < Duration::from_secs(1), "refused after {:?}", asked.elapsed());
    held.abort();
}

/// The review's reproduction: the relay under a 1,024-descriptor limit, 1,100 idle sockets
/// (half silent, half an HTTP/2 preface and nothing more).
async fn healthz_answers_with_1100_idle_connections(max_connections: usize) {
    const IDLE: usize = 1100;
    let available = common::raise_fd_limit(4096);
    if available < IDLE as u64 + 200 {
        eprintln!("SKIPPED: needs {} open files, the hard limit allows {available}", IDLE + 200);
        return;
    }
    let relay = Relay::start_with_fd_limit(
        &format!("[limits]\nheader_read_timeout_ms = 3000\nmax_connections = {max_connections}\n"),
        1024,
    );
    let addr = addr(&relay);
    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        if i % 2 == 1 {
            // Evicted already, perhaps: a failed write is fine.
            let _ = stream.write_all(H2_PREFACE).await;
        }
        idle.push((stream, Instant::now()));
    }
    let opened = started.elapsed();
    let asked = Instant::now();
    let health = tokio::time::timeout(
        Duration::from_secs(2),
        common::client().get(relay.url("/healthz")).send(),
    )
    .await
    .unwrap_or_else(|_| panic!("/healthz did not answer within 2 s ({IDLE} idle sockets)"))
    .expect("/healthz");
    assert_eq!(health.status(), 200);
    eprintln!(
        "{IDLE} idle sockets opened in {opened:?}; /healthz answered in {:?}",
        asked.elapsed()
    );
    // Each idle socket is closed: evicted for newer ones, or at the 3 s deadline (+ 1 s for
    // an HTTP/2 goodbye; + 2 s for a busy CI machine).
    let waits = idle.into_iter().map(|(s, at)| closed_after(s, at, Duration::from_secs(6)));
    let closed = join_all(waits).await;
    let still_open: Vec<usize> = (0..IDLE).filter(|&i| closed[i].is_none()).collect();
    assert!(still_open.is_empty(), "idle sockets open 6 s after their connect: {still_open:?}");
    assert_eq!(relay.get_json("/healthz").await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_under_a_1024_fd_limit_with_1100_idle_connections() {
    healthz_answers_with_1100_idle_connections(512).await;
}

/// With a cap above the descriptor limit, accepting fails first: that evicts idle ones too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_when_out_of_descriptors_before_the_cap() {
    healthz_answers_with_1100_idle_connections(4096).await;
}
