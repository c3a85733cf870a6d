//! A run's outputs and its event stream are bounded, whatever an llm or an upstream sends:
//! an llm reply or upstream outputs too large for a completion webhook
//! (`limits.max_body_bytes`) fail the run with an error naming the limit and a small
//! webhook; a streaming client that does not read is cut off once a body's worth of events
//! waits for it, while the run goes on, so the relay's memory stays bounded (measured on the
//! relay process).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::Router;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{edges, wait_calls, App, Sse};

const KEY: &str = "app-bounds-key-0123456789";
/// `limits.max_body_bytes` by default.
const MAX_BODY: usize = 1024 * 1024;

/// Serves `POST {path}` with an event stream: `head`, `repeated` `count` times, then `tail`.
async fn stream_server(
    path: &str,
    head: String,
    repeated: String,
    count: usize,
    tail: String,
) -> SocketAddr {
    let (head, repeated, tail) = (Bytes::from(head), Bytes::from(repeated), Bytes::from(tail));
    let app = Router::new().route(
        path,
        axum::routing::post(move || {
            let chunks = std::iter::once(head.clone())
                .chain(std::iter::repeat_n(repeated.clone(), count))
                .chain(std::iter::once(tail.clone()));
            let body = Body::from_stream(stream::iter(chunks).map(Ok::<_, std::io::Error>));
            async move {
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(body)
                    .expect("response")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `data: {event}` and the blank line ending it.
fn sse_event(event: &Value) -> String {
    format!("data: {event}\n\n")
}

/// An OpenAI-compatible server answering `count` deltas of `delta_chars` characters, then
/// `[DONE]`.
async fn flooding_llm(delta_chars: usize, count: usize) -> SocketAddr {
    let chunk = json!({"id": "c", "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "y".repeat(delta_chars)}, "finish_reason": null}]});
    let done = "data: [DONE]\n\n".to_string();
    stream_server("/v1/chat/completions", String::new(), sse_event(&chunk), count, done).await
}

/// A Dify-compatible upstream whose run streams `count` text chunks of `chunk_chars`
/// characters, then succeeds with `outputs`.
async fn flooding_upstream(chunk_chars: usize, count: usize, outputs: Value) -> SocketAddr {
    let ids = json!({"task_id": "up-task", "workflow_run_id": "up-run"});
    let with_ids = |mut event: Value| {
        if let (Some(e), Some(i)) = (event.as_object_mut(), ids.as_object()) {
            e.extend(i.clone());
        }
        sse_event(&event)
    };
    let started = with_ids(json!({"event": "workflow_started", "data": {"id": "up-run"}}));
    let chunk = with_ids(json!({"event": "text_chunk", "data": {"text": "y".repeat(chunk_chars)}}));
    let finished = with_ids(json!({"event": "workflow_finished", "data": {"id": "up-run",
        "status": "succeeded", "outputs": outputs, "error": null, "total_tokens": 1, "total_steps": 1}}));
    stream_server("/v1/workflows/run", started, chunk, count, finished).await
}

fn llm_app(llm: SocketAddr) -> String {
    format!(
        "[[apps]]\nid = \"bounds\"\napi_keys = [\"{KEY}\"]\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
         [[apps.nodes]]\nid = \"reply\"\ntype = \"llm\"\nbase_url = \"http://{llm}/v1\"\n\
         api_key = \"sk-test\"\nmodel = \"m\"\nmessages = [{{ role = \"user\", text = \"go\" }}]\n\
         [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\n\
         outputs = [{{ variable = \"text\", value_selector = [\"reply\", \"text\"] }}]\n{}",
        edges(&[("start", "reply"), ("reply", "end")])
    )
}

fn upstream_app(id: &str, key: &str, upstream: SocketAddr) -> String {
    format!(
        "[[apps]]\nid = \"{id}\"\napi_keys = [\"{key}\"]\n\
         upstream = {{ base_url = \"http://{upstream}/v1\", api_key = \"app-upstream-0123456789\" }}\n"
    )
}

/// Asserts the run failed for outputs past `limits.max_body_bytes`, with `words` in its
/// error, and that its one webhook is a small `failed` completion without outputs.
async fn assert_failed_by_the_limit(relay: &Relay, receiver: &Receiver, data: &Value, words: &str) {
    let shown: String = data.to_string().chars().take(400).collect();
    assert_eq!(data["status"], "failed", "{shown}");
    assert!(data["outputs"].is_null(), "{shown}");
    let error = data["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(words) && error.contains("limits.max_body_bytes (1048576 bytes)"),
        "{shown}"
    );
    let calls = wait_calls(relay, receiver, 1).await;
    let (call, webhook) = &calls[0];
    assert!(call.body.len() <= MAX_BODY, "webhook body {} bytes", call.body.len());
    assert_eq!(webhook["metadata"]["status"], "failed");
    assert_eq!(webhook["metadata"]["error"], error);
    assert_eq!(webhook["completion"]["choices"][0]["message"]["parsed"], json!({}));
}

/// The attack: 200,000 deltas of 1,000 characters made a 200 MB output and a 400 MB webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_reply_longer_than_the_body_limit_fails_the_run_with_a_small_webhook() {
    let llm = flooding_llm(1000, 5000).await;
    let relay = Relay::start(&llm_app(llm));
    let receiver = Receiver::ok().await;
    relay.create_automation("bounds", &receiver.url("/done")).await;
    let body = App::new(&relay, KEY).blocking(json!({}), "u").await;
    assert_failed_by_the_limit(
        &relay,
        &receiver,
        &body["data"],
        "node reply: llm reply is longer than",
    )
    .await;
}

/// A 7 MB upstream output made a 14 MB webhook; outputs that fit still pass whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_outputs_too_large_for_a_webhook_fail_the_run_and_smaller_ones_pass() {
    const FITS_KEY: &str = "app-bounds-fits-0123456789";
    let big = flooding_upstream(0, 0, json!({"a": "z".repeat(3 * MAX_BODY)})).await;
    let fits = flooding_upstream(0, 0, json!({"a": "z".repeat(MAX_BODY / 3)})).await;
    let relay = Relay::start(&format!(
        "{}{}",
        upstream_app("bounds", KEY, big),
        upstream_app("fits", FITS_KEY, fits)
    ));
    let receiver = Receiver::ok().await;
    let fits_receiver = Receiver::ok().await;
    relay.create_automation("bounds", &receiver.url("/done")).await;
    relay.create_automation("fits", &fits_receiver.url("/done")).await;

    let body = App::new(&relay, KEY).blocking(json!({}), "u").await;
    assert_failed_by_the_limit(
        &relay,
        &receiver,
        &body["data"],
        "the run's outputs make a completion webhook of",
    )
    .await;

    let body = App::new(&relay, FITS_KEY).blocking(json!({}), "u").await;
    assert_eq!(body["data"]["status"], "succeeded", "{}", body["data"]["error"]);
    let calls = wait_calls(&relay, &fits_receiver, 1).await;
    let parsed = &calls[0].1["completion"]["choices"][0]["message"]["parsed"];
    assert_eq!(parsed["a"].as_str().map(str::len), Some(MAX_BODY / 3), "the outputs pass whole");
}

/// The attack: 200 MB of upstream text chunks to a client that never reads grew the relay
/// by 214 MB (and an llm run's stream by 3.7 GB). Now the client is cut off once 1 MiB
/// waits for it, the run goes on to its end, and the client, reading at last, finds the
/// events queued before the cut and an `error` event saying why its stream ends there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_a_stream_is_cut_off_and_the_run_goes_on() {
    const CHUNKS: usize = 10_000;
    let upstream = flooding_upstream(10_000, CHUNKS, json!({"a": 1})).await;
    let relay = Relay::start(&upstream_app("bounds", KEY, upstream));
    let api = App::new(&relay, KEY);
    let (rss_before, _) = relay.memory_kib();
    let started = Instant::now();
    // The client reads nothing while the upstream sends its 100 MB.
    let (response, run_id, detail) = unread_streaming_run(&relay, &api).await;
    assert_eq!(detail["status"], "succeeded", "the run goes on without its client: {detail}");
    let (peak, _) = relay.memory_kib();
    eprintln!(
        "relay RSS {} MiB before, peak {} MiB; run took {:?}",
        rss_before / 1024,
        peak / 1024,
        started.elapsed()
    );
    assert!(peak < rss_before + 40 * 1024, "relay peak RSS {peak} KiB, {rss_before} KiB before");

    let frames = Sse::new(response).rest().await;
    let events: Vec<Value> = frames.into_iter().filter_map(|f| f.data).collect();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap_or("")).collect();
    let chunks = names.iter().filter(|n| **n == "text_chunk").count();
    assert_eq!(names.first(), Some(&"workflow_started"));
    assert!(chunks > 0 && chunks < CHUNKS, "{chunks} of {CHUNKS} text chunks reached the client");
    assert!(!names.contains(&"workflow_finished"), "the stream was cut before the end");
    let last = events.last().expect("events");
    assert_eq!(
        (last["event"].as_str(), last["code"].as_str()),
        (Some("error"), Some("client_too_slow")),
        "{last}"
    );
    assert_eq!(last["workflow_run_id"], run_id.as_str());
    let message = last["message"].as_str().unwrap_or_default();
    assert!(message.contains("1048576 bytes") && message.contains(&run_id), "{last}");
}

/// The bound is on the events waiting for a client, not on the stream: a client that reads
/// gets all of a stream many times the bound, to `workflow_finished`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_gets_a_stream_larger_than_the_bound_whole() {
    const CHUNKS: usize = 2_000;
    let upstream = flooding_upstream(10_000, CHUNKS, json!({"a": 1})).await;
    let relay = Relay::start(&upstream_app("bounds", KEY, upstream));
    let api = App::new(&relay, KEY);
    let response =
        api.run_raw(&json!({"inputs": {}, "user": "u", "response_mode": "streaming"})).await;
    let text = response.text().await.expect("the whole stream");
    assert!(text.len() > 10 * MAX_BODY, "{} bytes streamed", text.len());
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).expect("event JSON")["event"].to_string())
        .collect();
    let chunks = names.iter().filter(|n| *n == "\"text_chunk\"").count();
    assert_eq!(chunks, CHUNKS, "every text chunk reached the client");
    assert_eq!(
        names.last().map(String::as_str),
        Some("\"workflow_finished\""),
        "{:?}",
        names.last()
    );
}

/// The attack: an endless llm reply streamed to a client that never reads took the relay
/// to 3.7 GB. Now the reply fails the run at the limit, and what waits for the client is
/// bounded too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_llm_reply_to_a_client_that_does_not_read_keeps_the_memory_bounded() {
    let llm = flooding_llm(1000, 20_000).await;
    let relay = Relay::start(&llm_app(llm));
    let api = App::new(&relay, KEY);
    let (rss_before, _) = relay.memory_kib();
    let (response, _, detail) = unread_streaming_run(&relay, &api).await;
    let (peak, _) = relay.memory_kib();
    assert!(peak < rss_before + 40 * 1024, "relay peak RSS {peak} KiB, {rss_before} KiB before");
    let error = detail["error"].as_str().unwrap_or_default();
    assert_eq!(detail["status"], "failed", "{}", error);
    assert!(error.contains("llm reply is longer than limits.max_body_bytes"), "{error}");
    drop(response);
}

/// Starts a streaming run whose client reads nothing (status 200 checked), then waits for
/// the run to be listed and to finish: the still unread response, the run's id and its
/// detail once finished.
async fn unread_streaming_run(relay: &Relay, api: &App<'_>) -> (reqwest::Response, String, Value) {
    let response =
        api.run_raw(&json!({"inputs": {}, "user": "u", "response_mode": "streaming"})).await;
    assert_eq!(response.status(), 200);
    let run_id = relay
        .wait_for(Duration::from_secs(5), "the run to be listed", || async {
            api.logs("").await["data"][0]["id"].as_str().map(str::to_string)
        })
        .await;
    let detail = api.wait_finished(&run_id).await;
    (response, run_id, detail)
}
