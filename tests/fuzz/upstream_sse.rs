//! An upstream Dify-compatible server, started by the test on 127.0.0.1, answers each run
//! the relay forwards with a generated event stream (see [`crate::sse`]): garbled lines,
//! invalid JSON, unknown events, huge lines (up to 256 KiB), CRLF/LF/CR, a missing
//! `workflow_finished`, events cut across HTTP chunks; the body chunked or ended by close,
//! then ended cleanly, cut off mid-chunk, or left hanging; sometimes an error status.
//!
//! For every case, streaming or blocking: the client's run ends (within the app's 1 s run
//! timeout plus slack), with the status the oracle predicts (`succeeded` only for a
//! well-formed `workflow_finished` whose status is `succeeded`, `failed` with an error for
//! everything else); a streaming client gets well-formed JSON events, the upstream's node
//! events relayed in order, and one final `workflow_finished`; the stored run is final with
//! the same status. At the end no run is `running` and `/healthz` answers 200.
//!
//! 100 cases by default (about 8 s); `PROPTEST_CASES=1000 cargo test --test fuzz upstream`
//! for more (each hanging case costs the 1 s run timeout).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{self, Relay};
use crate::http_util::Fuzz;
use crate::sse::{arb_chunks, arb_stream, oracle_events};
use crate::strategies::config;

const KEY: &str = "app-fuzz-downstream-0123456789";
const RUN_TIMEOUT_SECS: u64 = 1;

/// How the upstream ends its answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Clean,
    /// Chunked: closes in the middle of a chunk (a broken body). Close-delimited: a close.
    Cut,
    /// Keeps the connection open until the relay gives up.
    Hang,
}

/// What the upstream answers to one run.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    chunked: bool,
    chunks: Vec<Vec<u8>>,
    end: End,
}

fn arb_answer() -> impl Strategy<Value = (Answer, bool)> {
    let end = prop_oneof![8 => Just(End::Clean), 3 => Just(End::Cut), 1 => Just(End::Hang)];
    let status = prop_oneof![12 => Just(200u16), 1 => Just(500u16), 1 => Just(404u16)];
    let chunks = arb_stream(256 * 1024).prop_flat_map(|b| arb_chunks(b, 12));
    (status, any::<bool>(), chunks, end, any::<bool>()).prop_map(
        |(status, chunked, chunks, end, streaming)| {
            (Answer { status, chunked, chunks, end }, streaming)
        },
    )
}

/// Reads one request (headers, then a Content-Length body).
async fn read_request(socket: &mut TcpStream) -> std::io::Result<()> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}

async fn serve(mut socket: TcpStream, answer: Option<Answer>) -> std::io::Result<()> {
    read_request(&mut socket).await?;
    let Some(a) = answer else {
        return socket
            .write_all(b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    };
    let framing = if a.chunked { "transfer-encoding: chunked" } else { "connection: close" };
    let head = format!(
        "HTTP/1.1 {} X\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         connection: close\r\n{framing}\r\n\r\n",
        a.status
    );
    socket.write_all(head.as_bytes()).await?;
    let last = a.chunks.len().saturating_sub(1);
    for (i, chunk) in a.chunks.iter().enumerate() {
        if a.chunked {
            // Cut: the last chunk announces more than it sends.
            let extra = usize::from(a.end == End::Cut && i == last) * 7;
            socket.write_all(format!("{:x}\r\n", chunk.len() + extra).as_bytes()).await?;
            socket.write_all(chunk).await?;
            if extra == 0 {
                socket.write_all(b"\r\n").await?;
            }
        } else {
            socket.write_all(chunk).await?;
        }
        socket.flush().await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    match a.end {
        End::Clean if a.chunked => socket.write_all(b"0\r\n\r\n").await?,
        End::Hang => {
            // Until the relay closes (or a bound far beyond its run timeout).
            let mut buf = [0u8; 64];
            let wait = Duration::from_secs(RUN_TIMEOUT_SECS + 20);
            let _ = tokio::time::timeout(wait, async {
                while socket.read(&mut buf).await? > 0 {}
                Ok::<_, std::io::Error>(())
            })
            .await;
        }
        _ => {}
    }
    socket.shutdown().await
}

/// The upstream: each connection gets the answer set for the current case.
async fn start_upstream() -> (String, Arc<Mutex<Option<Answer>>>) {
    let slot: Arc<Mutex<Option<Answer>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let taken = slot.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let answer = taken.lock().expect("lock").take();
            tokio::spawn(serve(socket, answer));
        }
    });
    (format!("http://{addr}/v1"), slot)
}

/// What the relay must make of `a`: the final status, and the node events it relays.
fn expected(a: &Answer) -> (&'static str, Vec<Value>) {
    if a.status != 200 {
        return ("failed", Vec::new());
    }
    let mut relayed = Vec::new();
    for e in oracle_events(&a.chunks.concat()) {
        let name = e.get("event").and_then(Value::as_str).unwrap_or("");
        match name {
            "node_started" | "node_finished" | "text_chunk" => relayed.push(
                json!({"event": name, "data": e.get("data").cloned().unwrap_or(Value::Null)}),
            ),
            "workflow_finished" => {
                let ok = e["data"].get("status").and_then(Value::as_str) == Some("succeeded");
                return (if ok { "succeeded" } else { "failed" }, relayed);
            }
            "error" => return ("failed", relayed),
            _ => {}
        }
    }
    ("failed", relayed)
}

async fn check_case(relay: &Relay, a: &Answer, streaming: bool) -> Result<(), TestCaseError> {
    let (status, relayed) = expected(a);
    let mode = if streaming { "streaming" } else { "blocking" };
    let send = common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(KEY)
        .json(&json!({"inputs": {}, "user": "fuzz", "response_mode": mode}))
        .send();
    let limit = Duration::from_secs(RUN_TIMEOUT_SECS + 10);
    let read = async { send.await?.error_for_status()?.text().await };
    let text = tokio::time::timeout(limit, read)
        .await
        .map_err(|_| TestCaseError::fail("the client's run did not end"))?
        .map_err(|e| TestCaseError::fail(format!("client: {e:?}")))?;
    let finished = if streaming {
        let mut events = Vec::new();
        for line in text.lines().filter(|l| l.starts_with("data:")) {
            let e: Value = serde_json::from_str(line["data:".len()..].trim())
                .map_err(|e| TestCaseError::fail(format!("relay sent bad JSON {line:?}: {e}")))?;
            events.push(e);
        }
        let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap_or("?")).collect();
        prop_assert_eq!(names.first(), Some(&"workflow_started"), "{:?}", names);
        prop_assert_eq!(names.last(), Some(&"workflow_finished"), "{:?}", names);
        prop_assert_eq!(names.iter().filter(|n| **n == "workflow_finished").count(), 1);
        let middle: Vec<Value> = events[1..events.len() - 1]
            .iter()
            .map(|e| json!({"event": e["event"], "data": e["data"]}))
            .collect();
        prop_assert_eq!(&middle, &relayed, "relayed node events");
        events.pop().map(|e| e["data"].clone()).unwrap_or_default()
    } else {
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("blocking answer {text:?}: {e}")))?;
        body["data"].clone()
    };
    prop_assert_eq!(&finished["status"], status, "{}", finished);
    if status == "failed" {
        prop_assert!(finished["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", finished);
    }
    let run_id = finished["id"].as_str().unwrap_or_default().to_string();
    let stored: Value = common::client()
        .get(relay.url(&format!("/v1/workflows/run/{run_id}")))
        .bearer_auth(KEY)
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
        .json()
        .await
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(&stored["status"], status, "stored run {}", stored);
    prop_assert_eq!(&stored["error"], &finished["error"]);
    Ok(())
}

#[test]
fn a_garbled_upstream_stream_always_ends_the_run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (base, slot) = rt.block_on(start_upstream());
    let relay = Relay::start(&format!(
        "[[apps]]\nid = \"fuzzed\"\napi_keys = [\"{KEY}\"]\nrun_timeout_secs = {RUN_TIMEOUT_SECS}\n\
         upstream = {{ base_url = \"{base}\", api_key = \"app-upstream-0123456789\" }}\n"
    ));
    let f = Fuzz { rt, relay };
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config(100));
    // Cases by predicted status, hanging upstreams, and node events relayed.
    let seen = Mutex::new((0usize, 0usize, 0usize, 0usize));
    let result = runner.run(&arb_answer(), |(answer, streaming)| {
        *slot.lock().expect("lock") = Some(answer.clone());
        let (status, relayed) = expected(&answer);
        if let Ok(mut s) = seen.lock() {
            *s = (
                s.0 + usize::from(status == "succeeded"),
                s.1 + usize::from(status == "failed"),
                s.2 + usize::from(answer.end == End::Hang),
                s.3 + relayed.len(),
            );
        }
        f.rt.block_on(check_case(&f.relay, &answer, streaming))
    });
    if let Err(e) = result {
        panic!("upstream SSE: {e}");
    }
    f.rt.block_on(async {
        let logs: Value = common::client()
            .get(f.relay.url("/v1/workflows/logs?status=running"))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert_eq!(logs["total"], 0, "runs left running: {logs}");
    });
    f.assert_healthy();
    let (succeeded, failed, hung, relayed) = seen.into_inner().expect("lock");
    eprintln!(
        "upstream SSE: {} runs ({succeeded} succeeded, {failed} failed, {hung} hung; {relayed} \
         node events relayed) in {:.1} s",
        succeeded + failed,
        started.elapsed().as_secs_f64()
    );
    // Not vacuous: with the default cases, both outcomes and relayed events occurred.
    if succeeded + failed >= 50 {
        assert!(succeeded > 0 && failed > 0 && relayed > 0, "{succeeded} {failed} {relayed}");
    }
}

/// A line without end beyond the decoder's bound fails the run instead of growing memory.
#[test]
fn an_endless_line_fails_the_run_instead_of_filling_memory() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (base, slot) = rt.block_on(start_upstream());
    let relay = Relay::start(&format!(
        "[[apps]]\nid = \"fuzzed\"\napi_keys = [\"{KEY}\"]\nrun_timeout_secs = 30\n\
         upstream = {{ base_url = \"{base}\", api_key = \"app-upstream-0123456789\" }}\n"
    ));
    let max = hookrelay::workflow::sse::MAX_EVENT_BYTES;
    let line = [b"data: {\"event\":\"text_chunk\",\"data\":\"".to_vec(), vec![b'x'; max]].concat();
    let chunks = line.chunks(256 * 1024).map(<[u8]>::to_vec).collect();
    *slot.lock().expect("lock") =
        Some(Answer { status: 200, chunked: true, chunks, end: End::Hang });
    let started = std::time::Instant::now();
    let body: Value = rt.block_on(async {
        common::client()
            .post(relay.url("/v1/workflows/run"))
            .bearer_auth(KEY)
            .json(&json!({"inputs": {}, "user": "fuzz", "response_mode": "blocking"}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json")
    });
    assert_eq!(body["data"]["status"], "failed", "{body}");
    let error = body["data"]["error"].as_str().unwrap_or("");
    assert!(error.contains(&format!("longer than {max} bytes")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(20), "failed by the bound, not the timeout");
}
