//! Servers the workflows call, all on 127.0.0.1: an echoing receiver (optionally gated until
//! the test releases it), a raw-TCP slow server that notices when its client hangs up, and a
//! fake OpenAI-compatible chat-completions server speaking the real streaming format.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A request an [`Echo`] got.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// Answers with the status in `?status=` (default 200), a `location` header naming the last
/// path segment, `x-echo: yes`, and the request body echoed. When gated, each answer waits
/// for one [`Echo::release`].
#[derive(Clone)]
pub(crate) struct Echo {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    gate: Arc<Semaphore>,
}

type EchoState = (Arc<Mutex<Vec<Seen>>>, Arc<Semaphore>);

impl Echo {
    pub async fn start() -> Self {
        Self::with_gate(Semaphore::MAX_PERMITS).await
    }

    /// Holds every answer until [`Echo::release`].
    pub async fn gated() -> Self {
        Self::with_gate(0).await
    }

    async fn with_gate(permits: usize) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let gate = Arc::new(Semaphore::new(permits));
        let app = Router::new().fallback(echo).with_state((seen.clone(), gate.clone()));
        Self { addr: serve(app).await, seen, gate }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far (including ones still held at the gate).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// Lets one held request be answered.
    pub fn release(&self) {
        self.gate.add_permits(1);
    }
}

async fn echo(
    State((seen, gate)): State<EchoState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    seen.lock().expect("lock").push(Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.clone(),
    });
    if let Ok(permit) = gate.acquire().await {
        permit.forget();
    }
    let status = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("status=")))
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(200);
    let last = uri.path().rsplit('/').next().unwrap_or("").to_string();
    (
        StatusCode::from_u16(status).expect("status"),
        [("location", format!("/items/{last}")), ("x-echo", "yes".to_string())],
        body,
    )
        .into_response()
}

/// One request a [`SlowServer`] got.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    /// Set when the client closed the connection before the answer was due.
    pub hung_up_after: Option<Duration>,
    pub answered: bool,
}

/// A raw-TCP HTTP server that answers 200 only after `delay`, and records whether the
/// client hung up first (which is how an aborted in-flight call looks from here).
#[derive(Clone)]
pub(crate) struct SlowServer {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl SlowServer {
    pub async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let record = hits.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(slow_connection(socket, delay, record.clone()));
            }
        });
        Self { addr, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("lock").clone()
    }
}

async fn slow_connection(
    mut socket: tokio::net::TcpStream,
    delay: Duration,
    hits: Arc<Mutex<Vec<Hit>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let at = Instant::now();
    let index = {
        let mut hits = hits.lock().expect("lock");
        hits.push(Hit { hung_up_after: None, answered: false });
        hits.len() - 1
    };
    let deadline = tokio::time::sleep(delay);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => {
                let body = "{\"late\":true}";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                hits.lock().expect("lock")[index].answered = true;
                return;
            }
            read = socket.read(&mut buf) => {
                if matches!(read, Ok(0) | Err(_)) {
                    hits.lock().expect("lock")[index].hung_up_after = Some(at.elapsed());
                    return;
                }
            }
        }
    }
}

/// A call the fake LLM got.
#[derive(Debug, Clone)]
pub(crate) struct LlmCall {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// What the fake LLM answers without a `response_format`, and its usage.
pub(crate) const PLAIN_CHUNKS: &[&str] = &["Owls", " are", " silent", " hunters."];
pub(crate) const PLAIN_USAGE: (u64, u64) = (12, 8);
/// What it answers when asked for JSON (split in several chunks), and its usage.
pub(crate) const STRUCTURED_REPLY: &str =
    r#"{"summary":"Owls hunt silently at night.","topics":["owls","night"]}"#;
pub(crate) const STRUCTURED_USAGE: (u64, u64) = (30, 14);

/// The model for which the fake LLM answers 500 with [`NUL_ERROR_BODY`].
pub(crate) const NUL_MODEL: &str = "fake-nul-error";
/// Its error body: JSON holding a NUL byte, which PostgreSQL's text columns cannot hold.
pub(crate) const NUL_ERROR_BODY: &[u8] = b"{\"error\":\"bad\0thing\"}";

/// An OpenAI-compatible `POST /v1/chat/completions`. It insists on `stream: true` and a bearer
/// key, answers 500 with [`NUL_ERROR_BODY`] for [`NUL_MODEL`], and otherwise answers
/// `text/event-stream` chunks (`chat.completion.chunk`, role first, content deltas, a
/// `finish_reason` chunk, a `usage` chunk with empty choices, then `[DONE]`). When gated, the
/// first call's stream holds after its first content chunk until released.
#[derive(Clone)]
pub(crate) struct FakeLlm {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<LlmCall>>>,
    gate: Arc<Semaphore>,
}

type LlmState = (Arc<Mutex<Vec<LlmCall>>>, Arc<Semaphore>);

impl FakeLlm {
    pub async fn start() -> Self {
        Self::with_gate(Semaphore::MAX_PERMITS).await
    }

    pub async fn gated() -> Self {
        Self::with_gate(0).await
    }

    async fn with_gate(permits: usize) -> Self {
        let calls: Arc<Mutex<Vec<LlmCall>>> = Arc::default();
        let gate = Arc::new(Semaphore::new(permits));
        let app = Router::new()
            .route("/v1/chat/completions", axum::routing::post(completions))
            .with_state((calls.clone(), gate.clone()));
        Self { addr: serve(app).await, calls, gate }
    }

    /// The base URL to configure (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn calls(&self) -> Vec<LlmCall> {
        self.calls.lock().expect("lock").clone()
    }

    pub fn release(&self) {
        self.gate.add_permits(1);
    }
}

async fn completions(
    State((calls, gate)): State<LlmState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid JSON body");
    };
    let index = {
        let mut calls = calls.lock().expect("lock");
        calls.push(LlmCall {
            path: uri.path().into(),
            headers: headers.clone(),
            body: request.clone(),
        });
        calls.len() - 1
    };
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !bearer.starts_with("Bearer sk-") {
        return error(StatusCode::UNAUTHORIZED, "Incorrect API key provided");
    }
    if request["stream"] != true || request["messages"].as_array().is_none_or(Vec::is_empty) {
        return error(StatusCode::BAD_REQUEST, "this fake only streams");
    }
    let model = request["model"].as_str().unwrap_or("").to_string();
    if model == NUL_MODEL {
        let json = [("content-type", "application/json")];
        return (StatusCode::INTERNAL_SERVER_ERROR, json, NUL_ERROR_BODY).into_response();
    }
    let structured = request["response_format"]["type"] == "json_schema";
    let (pieces, (prompt, completion)): (Vec<String>, _) = if structured {
        let chars: Vec<char> = STRUCTURED_REPLY.chars().collect();
        (chars.chunks(11).map(|c| c.iter().collect()).collect(), STRUCTURED_USAGE)
    } else {
        (PLAIN_CHUNKS.iter().map(|s| s.to_string()).collect(), PLAIN_USAGE)
    };
    let id = format!("chatcmpl-fake{index}");
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
               "system_fingerprint": "fp_fake", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
               "usage": null})
    };
    let mut frames =
        vec![chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null)];
    frames.extend(pieces.iter().map(|p| chunk(json!({"content": p}), Value::Null)));
    frames.push(chunk(json!({}), json!("stop")));
    frames.push(json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
        "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}));
    let hold = index == 0;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        for (i, frame) in frames.iter().enumerate() {
            if tx.send(Ok(Bytes::from(format!("data: {frame}\n\n")))).await.is_err() {
                return;
            }
            if hold && i == 1 {
                if let Ok(permit) = gate.acquire().await {
                    permit.forget();
                }
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        );
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .expect("response")
}

fn error(status: StatusCode, message: &str) -> Response {
    let body =
        json!({"error": {"message": message, "type": "invalid_request_error", "code": null}});
    (status, axum::Json(body)).into_response()
}
