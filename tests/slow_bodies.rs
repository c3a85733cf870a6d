//! Request bodies must keep arriving: the attack that trickles bodies on hundreds of
//! connections (one byte at a time, reconnecting when closed) gets 408s, and under a
//! 1,024-descriptor limit `/healthz` and authenticated calls keep answering meanwhile,
//! because a body still arriving past the header deadline no longer makes its connection
//! "busy" for the connection cap. The sheets sink refuses a call with neither an admin key
//! nor signature headers before reading its body.

use hookrelay_testkit as common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Relay;
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SINK: &str = "/v1/integrations/google_sheets/webhook?spreadsheet_id=x&worksheet_id=0";
/// Per-piece deadline (header_read_timeout_ms) and whole-body deadline of the relay tested.
const BETWEEN_READS: Duration = Duration::from_millis(1000);
const WHOLE_BODY: Duration = Duration::from_millis(3000);

fn addr(relay: &Relay) -> String {
    relay.base.trim_start_matches("http://").to_string()
}

/// What one trickling connection got: the answer's status (`None`: closed without one)
/// and when, from its connect.
type Outcome = (Option<u16>, Duration);

/// Sends `head` and then one body byte every 300 ms (within the per-piece deadline, so
/// only the whole-body one applies), reconnecting when the relay answers or closes, until
/// `stop`.
async fn trickle(addr: String, head: String, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let connected = Instant::now();
        let (mut reader, mut writer) = stream.into_split();
        let send = async {
            if writer.write_all(head.as_bytes()).await.is_ok() {
                loop {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if writer.write_all(b"x").await.is_err() {
                        break;
                    }
                }
            }
            std::future::pending::<()>().await;
        };
        let answer = async {
            let mut got = Vec::new();
            let _ = reader.read_to_end(&mut got).await;
            let text = String::from_utf8_lossy(&got);
            text.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)?.parse::<u16>().ok())
        };
        let status = tokio::select! {
            () = send => None,
            status = tokio::time::timeout(Duration::from_secs(10), answer) => {
                status.unwrap_or_else(|_| panic!("a trickled body was not answered in 10 s"))
            }
        };
        outcomes.push((status, connected.elapsed()));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_bodies_cannot_lock_out_healthz_under_a_1024_fd_limit() {
    const TRICKLERS: usize = 600;
    let available = common::raise_fd_limit(4096);
    if available < TRICKLERS as u64 + 200 {
        eprintln!("SKIPPED: needs {} open files, the limit allows {available}", TRICKLERS + 200);
        return;
    }
    let relay = Relay::start_with_fd_limit(
        &format!(
            "[limits]\nheader_read_timeout_ms = {}\nbody_read_timeout_ms = {}\n\
             max_connections = 512\n",
            BETWEEN_READS.as_millis(),
            WHOLE_BODY.as_millis()
        ),
        1024,
    );
    // Signature headers (false ones) make the sink read the body before it can refuse.
    let head = format!(
        "POST {SINK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         webhook-id: msg_1\r\nwebhook-timestamp: 1\r\nwebhook-signature: v1,AAAA\r\n\
         Content-Length: 100000\r\n\r\n{{"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|_| tokio::spawn(trickle(addr(&relay), head.clone(), stop.clone())))
        .collect();
    // Past the per-piece deadline, the trickled bodies count as slow.
    tokio::time::sleep(BETWEEN_READS + Duration::from_millis(500)).await;
    let answered = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..5 {
        let asked = Instant::now();
        let health = tokio::time::timeout(
            Duration::from_secs(2),
            common::client().get(relay.url("/healthz")).send(),
        )
        .await
        .expect("/healthz answered within 2 s")
        .expect("/healthz");
        assert_eq!(health.status(), 200, "/healthz");
        let message = serde_json::json!({"processor_id": "p", "payload": {"n": 1}});
        let (status, body) =
            tokio::time::timeout(Duration::from_secs(2), relay.post_json("/v1/messages", &message))
                .await
                .expect("POST /v1/messages answered within 2 s");
        assert_eq!(status, 202, "{body}");
        answered.lock().expect("lock").push(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    eprintln!("healthz + message answered in {:?}", answered.lock().expect("lock"));
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<Outcome> =
        join_all(tricklers).await.into_iter().flat_map(|t| t.expect("trickler")).collect();
    let count = |status: Option<u16>| outcomes.iter().filter(|(s, _)| *s == status).count();
    eprintln!(
        "{} attempts: {} got 408, {} refused (503), {} closed to make room",
        outcomes.len(),
        count(Some(408)),
        count(Some(503)),
        count(None),
    );
    let others: Vec<_> =
        outcomes.iter().filter(|(s, _)| !matches!(s, Some(408 | 503) | None)).collect();
    assert!(others.is_empty(), "unexpected answers to trickled bodies: {others:?}");
    let late: Vec<_> = outcomes.iter().filter(|(_, at)| *at > WHOLE_BODY * 2).collect();
    assert!(late.is_empty(), "trickled bodies held past the deadline: {late:?}");
}

/// Sends `head`, then `pieces` body bytes `every` apart; the answer's status and when.
async fn send_slowly(relay: &Relay, head: &str, pieces: usize, every: Duration) -> Outcome {
    let stream = TcpStream::connect(addr(relay)).await.expect("connect");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.expect("head");
    let send = async move {
        for _ in 0..pieces {
            tokio::time::sleep(every).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
        writer
    };
    let answer = async {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got).await;
        (String::from_utf8_lossy(&got).into_owned(), started.elapsed())
    };
    let (_writer, (answer, at)) = tokio::join!(send, answer);
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    (answer.get(9..12).and_then(|s| s.parse().ok()), at)
}

#[tokio::test]
async fn a_body_that_stops_or_trickles_gets_408_at_its_deadline() {
    let relay = Relay::start(&format!(
        "[limits]\nheader_read_timeout_ms = {}\nbody_read_timeout_ms = {}\n",
        BETWEEN_READS.as_millis(),
        WHOLE_BODY.as_millis()
    ));
    let head = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nApi-Key: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
            common::KEY
        )
    };
    // One piece, then nothing: 408 at the per-piece deadline.
    let (status, at) =
        send_slowly(&relay, &head("/v1/messages"), 1, Duration::from_millis(200)).await;
    assert_eq!(status, Some(408));
    let stopped = Duration::from_millis(200) + BETWEEN_READS;
    assert!(at >= stopped && at < stopped * 2, "408 after {at:?}, not {stopped:?}");
    // A piece every 300 ms, never finishing: 408 at the whole-body deadline.
    let (status, at) =
        send_slowly(&relay, &head("/v1/messages"), 100, Duration::from_millis(300)).await;
    assert_eq!(status, Some(408));
    assert!(at >= WHOLE_BODY && at < WHOLE_BODY * 2, "408 after {at:?}, not {WHOLE_BODY:?}");
}

#[tokio::test]
async fn a_sink_call_without_credentials_is_refused_before_its_body() {
    let relay = Relay::start("");
    let head = format!(
        "POST {SINK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100000\r\n\r\n{{"
    );
    let mut stream = TcpStream::connect(addr(&relay)).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut answer = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}
