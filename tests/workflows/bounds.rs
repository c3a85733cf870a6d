//! What an llm or upstream server answers is read within bounds: a huge error body fails the
//! run at once with its start (not after reading it all, nor at the timeout), and an llm
//! stream line without an end fails the run at the event bound. The server, on 127.0.0.1,
//! sends 64 MiB and then holds the connection open.

use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{edges, App};

const KEY: &str = "app-bounds-key-0123456789";
/// The run's and the node's timeout: a failure well before it comes from the bound.
const TIMEOUT_SECS: u64 = 10;
const SENT: usize = 64 * 1024 * 1024;

/// `/{mode}/...`: `error` answers 500 with a body of `x`s; `line` answers 200 with one
/// `data:` line of `x`s; either way 64 MiB, then nothing more, the connection kept open.
async fn huge(Path((mode, _)): Path<(String, String)>) -> Response {
    let head: &'static [u8] = if mode == "line" { b"data: " } else { b"" };
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let chunks = std::iter::once(Bytes::from_static(head))
        .chain(std::iter::repeat_n(chunk, SENT / (64 * 1024)))
        .map(Ok::<_, std::io::Error>);
    let body = futures_util::stream::iter(chunks).chain(futures_util::stream::pending());
    let status = if mode == "line" { 200 } else { 500 };
    Response::builder()
        .status(status)
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .expect("response")
}

async fn server() -> String {
    let app = Router::new().route("/{mode}/{*rest}", post(huge));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn llm_app(base: &str) -> String {
    format!(
        "[[apps]]\nid = \"bounded\"\napi_keys = [\"{KEY}\"]\nrun_timeout_secs = {TIMEOUT_SECS}\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
         [[apps.nodes]]\nid = \"model\"\ntype = \"llm\"\nbase_url = \"{base}\"\nmodel = \"m\"\n\
         timeout_secs = {TIMEOUT_SECS}\nmessages = [{{ role = \"user\", text = \"hi\" }}]\n\
         [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\noutputs = []\n{}",
        edges(&[("start", "model"), ("model", "end")])
    )
}

fn upstream_app(base: &str) -> String {
    format!(
        "[[apps]]\nid = \"bounded\"\napi_keys = [\"{KEY}\"]\nrun_timeout_secs = {TIMEOUT_SECS}\n\
         upstream = {{ base_url = \"{base}\", api_key = \"app-upstream-0123456789\" }}\n"
    )
}

/// Runs the app; the run's `error`, and how long the run took.
async fn failed_run(app: &str) -> (String, Duration) {
    let relay = Relay::start(app);
    let started = Instant::now();
    let body: Value = App::new(&relay, KEY).blocking(json!({}), "u-bounds").await;
    let took = started.elapsed();
    assert_eq!(body["data"]["status"], "failed", "{body}");
    (body["data"]["error"].as_str().expect("error").to_string(), took)
}

fn assert_excerpt(error: &str, took: Duration, prefix: &str) {
    assert!(error.starts_with(prefix), "{error:.200}");
    assert!(error.ends_with(&"x".repeat(500)), "the body's start is shown: {error:.200}");
    assert!(error.len() < prefix.len() + 600, "{} bytes: the excerpt is capped", error.len());
    assert!(took < Duration::from_secs(TIMEOUT_SECS / 2), "took {took:?}: read past the excerpt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_llm_error_body_fails_the_run_at_once_with_its_start() {
    let base = server().await;
    let (error, took) = failed_run(&llm_app(&format!("{base}/error/v1"))).await;
    assert_excerpt(&error, took, "node model: llm answered HTTP 500: ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_upstream_error_body_fails_the_run_at_once_with_its_start() {
    let base = server().await;
    let (error, took) = failed_run(&upstream_app(&format!("{base}/error/v1"))).await;
    assert_excerpt(&error, took, "upstream answered HTTP 500: ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_stream_line_past_the_bound_fails_the_run() {
    let base = server().await;
    let (error, took) = failed_run(&llm_app(&format!("{base}/line/v1"))).await;
    let max = hookrelay::workflow::sse::MAX_EVENT_BYTES;
    assert!(error.contains(&format!("longer than {max} bytes")), "{error}");
    assert!(took < Duration::from_secs(TIMEOUT_SECS / 2), "took {took:?}: not the bound");
}
