//! Shared helpers: an app-key client for the Workflow App API, an incremental SSE reader,
//! and TOML snippets for app definitions.

use std::pin::Pin;
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};

use crate::common::{self, Relay};

pub(crate) use crate::common::WAIT;

/// The Workflow App API of one app on a relay, authenticated with its app key.
pub(crate) struct App<'a> {
    pub relay: &'a Relay,
    pub key: &'a str,
}

impl<'a> App<'a> {
    pub fn new(relay: &'a Relay, key: &'a str) -> Self {
        Self { relay, key }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        common::client().request(method, self.relay.url(path)).bearer_auth(self.key)
    }

    /// POST `/v1/workflows/run` with `body`; the raw response.
    pub async fn run_raw(&self, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/v1/workflows/run")
            .json(body)
            .send()
            .await
            .expect("send")
    }

    /// A blocking run; asserts 200 and returns the body.
    pub async fn blocking(&self, inputs: Value, user: &str) -> Value {
        let (status, body) = self.run(&json!({"inputs": inputs, "user": user})).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// POST `/v1/workflows/run`; status and JSON body.
    pub async fn run(&self, body: &Value) -> (u16, Value) {
        let resp = self.run_raw(body).await;
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A streaming run; asserts 200 and the SSE content type.
    pub async fn stream(&self, inputs: Value, user: &str) -> Sse {
        let resp = self
            .run_raw(&json!({"inputs": inputs, "user": user, "response_mode": "streaming"}))
            .await;
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(content_type, Some("text/event-stream; charset=utf-8"));
        Sse::new(resp)
    }

    /// GET `path`; status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.request(reqwest::Method::GET, path).send().await.expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POST JSON to `path`; status and JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.request(reqwest::Method::POST, path).json(body).send().await.expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GET `/v1/workflows/run/{id}`, asserting 200.
    pub async fn detail(&self, run_id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/workflows/run/{run_id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until run `run_id` has left `running`; returns its detail.
    pub async fn wait_finished(&self, run_id: &str) -> Value {
        self.relay
            .wait_for(WAIT, &format!("run {run_id} to finish"), || async {
                let d = self.detail(run_id).await;
                (d["status"] != "running").then_some(d)
            })
            .await
    }

    /// POST `/v1/workflows/tasks/{task}/stop` for `user`.
    pub async fn stop(&self, task: &str, user: &str) -> (u16, Value) {
        self.post(&format!("/v1/workflows/tasks/{task}/stop"), &json!({"user": user})).await
    }

    /// GET `/v1/workflows/logs{query}`, asserting 200.
    pub async fn logs(&self, query: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/workflows/logs{query}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// How many runs the app has.
    pub async fn runs_total(&self) -> u64 {
        self.logs("").await["total"].as_u64().expect("total")
    }
}

/// One server-sent event frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// `event:` field (absent for workflow events, `ping` for keep-alives).
    pub event: Option<String>,
    /// `data:` parsed as JSON, when there is a data line.
    pub data: Option<Value>,
}

impl Frame {
    /// The workflow event name (`data.event`), or "" for frames without data.
    pub fn name(&self) -> &str {
        self.data.as_ref().and_then(|d| d["event"].as_str()).unwrap_or("")
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Reads an SSE response frame by frame, as the bytes arrive.
pub(crate) struct Sse {
    inner: ByteStream,
    buf: String,
    /// Everything read so far, verbatim.
    pub raw: String,
}

impl Sse {
    pub fn new(resp: reqwest::Response) -> Self {
        Self { inner: Box::pin(resp.bytes_stream()), buf: String::new(), raw: String::new() }
    }

    /// The next frame, or `None` once the response has ended. Panics after `WAIT`.
    pub async fn next(&mut self) -> Option<Frame> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(frame) = parse_frame(&block) {
                    return Some(frame);
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.inner.next())
                .await
                .unwrap_or_else(|_| panic!("no SSE frame within {WAIT:?}; so far: {}", self.raw));
            match chunk {
                Some(bytes) => {
                    let text = String::from_utf8(bytes.expect("stream chunk").to_vec())
                        .expect("utf-8 stream");
                    self.raw.push_str(&text);
                    self.buf.push_str(&text.replace("\r\n", "\n"));
                }
                None => {
                    assert!(self.buf.trim().is_empty(), "stream ended mid-frame: {:?}", self.buf);
                    return None;
                }
            }
        }
    }

    /// The next workflow event (pings skipped); panics if the stream ends first.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let frame = self.next().await.expect("the stream ended early");
            if let Some(data) = frame.data {
                return data;
            }
        }
    }

    /// Workflow events until (and including) the first named `name`.
    pub async fn until(&mut self, name: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let event = self.next_event().await;
            let done = event["event"] == name;
            out.push(event);
            if done {
                return out;
            }
        }
    }

    /// Every remaining frame until the response ends.
    pub async fn rest(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = self.next().await {
            out.push(frame);
        }
        out
    }
}

fn parse_frame(block: &str) -> Option<Frame> {
    let mut event = None;
    let mut data: Option<String> = None;
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(v);
                }
                None => data = Some(v.to_string()),
            }
        }
    }
    if event.is_none() && data.is_none() {
        return None; // a comment-only block
    }
    let data = data.filter(|d| !d.is_empty()).map(|d| {
        serde_json::from_str::<Value>(&d).unwrap_or_else(|e| panic!("bad event JSON {d:?}: {e}"))
    });
    Some(Frame { event, data })
}

/// `[[apps.edges]]` tables for `(source, target)` pairs.
pub(crate) fn edges(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(s, t)| format!("[[apps.edges]]\nsource = \"{s}\"\ntarget = \"{t}\"\n"))
        .collect()
}

/// An `[[apps.edges]]` table leaving an if-else on `handle` ("true" / "false").
pub(crate) fn branch(source: &str, handle: &str, target: &str) -> String {
    format!(
        "[[apps.edges]]\nsource = \"{source}\"\nsource_handle = \"{handle}\"\ntarget = \"{target}\"\n"
    )
}

/// start → call (http GET `url`) → end, with an optional run timeout; output `status`.
pub(crate) fn slow_app(id: &str, key: &str, url: &str, run_timeout_secs: Option<u64>) -> String {
    let timeout = run_timeout_secs.map(|t| format!("run_timeout_secs = {t}\n")).unwrap_or_default();
    format!(
        "[[apps]]\nid = \"{id}\"\nname = \"Slow {id}\"\napi_keys = [\"{key}\"]\n{timeout}\
         [[apps.inputs]]\ntype = \"text-input\"\nvariable = \"note\"\nrequired = false\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
         [[apps.nodes]]\nid = \"call\"\ntype = \"http-request\"\nurl = \"{url}\"\n\
         [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\n\
         outputs = [{{ variable = \"status\", value_selector = [\"call\", \"status_code\"] }}]\n{}",
        edges(&[("start", "call"), ("call", "end")])
    )
}

/// Creates an automation for `processor_id` with extra fields (e.g. `event_types`).
pub(crate) async fn automation_with(
    relay: &Relay,
    processor_id: &str,
    url: &str,
    extra: Value,
) -> Value {
    let mut body = json!({"name": "wf", "processor_id": processor_id, "webhook_url": url});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (status, created) = relay.post_json("/v1/processors/automations/endpoints", &body).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Waits until `receiver` has had `n` calls; returns their JSON bodies.
pub(crate) async fn wait_calls(
    relay: &Relay,
    receiver: &common::Receiver,
    n: usize,
) -> Vec<(common::Received, Value)> {
    relay
        .wait_for(WAIT, &format!("{n} webhook calls"), || async {
            (receiver.count() >= n).then_some(())
        })
        .await;
    receiver
        .calls()
        .into_iter()
        .map(|c| {
            let body = serde_json::from_slice(&c.body).expect("webhook body is JSON");
            (c, body)
        })
        .collect()
}

/// Asserts a Dify error body: `{code, message, status}` with `status` equal to the HTTP one.
pub(crate) fn assert_dify_error(http: u16, body: &Value, status: u16, code: &str, what: &str) {
    assert_eq!(http, status, "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
    assert_eq!(body["status"], status, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: a message is required: {body}"
    );
}
