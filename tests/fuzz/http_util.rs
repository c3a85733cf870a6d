//! One relay per HTTP property, a runtime to drive it, and the checks every answer passes.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{json, Value};

use crate::common::apps::{demo_app, DEMO_KEY};
use crate::common::{self, Relay};
use crate::strategies::config;

/// A relay (with the demo app) and a runtime to talk to it.
pub(crate) struct Fuzz {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) relay: Relay,
}

impl Fuzz {
    pub(crate) fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let relay = Relay::start(&demo_app());
        Self { rt, relay }
    }

    /// A request with the admin key, or with `Authorization: Bearer <app key>`.
    pub(crate) fn req(
        &self,
        app: bool,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        if app {
            common::client()
                .request(method, self.relay.url(path))
                .header("Authorization", format!("Bearer {DEMO_KEY}"))
        } else {
            self.relay.req(method, path)
        }
    }

    /// Every item of an admin list endpoint, following `after` cursors.
    pub(crate) async fn count_list(&self, path: &str) -> usize {
        let mut n = 0;
        let mut after = String::new();
        loop {
            let page = self.relay.get_json(&format!("{path}?limit=100{after}")).await;
            n += page["data"].as_array().expect("data").len();
            match page["list_metadata"]["after"].as_str() {
                Some(a) => after = format!("&after={a}"),
                None => return n,
            }
        }
    }

    /// The number of workflow runs of the demo app.
    pub(crate) async fn count_runs(&self) -> usize {
        let resp = self.req(true, reqwest::Method::GET, "/v1/workflows/logs?limit=1");
        let body: Value = resp.send().await.expect("send").json().await.expect("json");
        body["total"].as_u64().unwrap_or_else(|| panic!("no total: {body}")) as usize
    }

    /// Rows (header included) of `title` in spreadsheet `id`.
    pub(crate) async fn count_rows(&self, id: &str, title: &str) -> usize {
        let v = self.relay.get_json(&format!("/v1/spreadsheets/{id}/values/{title}")).await;
        v["values"].as_array().map_or(0, Vec::len)
    }

    /// `/healthz` still answers 200.
    pub(crate) fn assert_healthy(&self) {
        self.rt.block_on(async {
            let resp = common::client().get(self.relay.url("/healthz")).send().await.expect("send");
            assert_eq!(resp.status(), 200, "healthz after fuzzing");
        });
    }

    /// Runs `cases` cases of `strategy`, each one request built by `build`; every answer
    /// must pass [`check_answer`]; returns the sum of `written` over the answers.
    pub(crate) fn run<S, B, W>(
        &self,
        cases: u32,
        what: &str,
        strategy: S,
        build: B,
        written: W,
    ) -> usize
    where
        S: Strategy,
        S::Value: std::fmt::Debug,
        B: Fn(&S::Value) -> reqwest::RequestBuilder,
        W: Fn(u16, &Value) -> usize,
    {
        let total = AtomicUsize::new(0);
        let ran = AtomicUsize::new(0);
        let mut runner = TestRunner::new(config(cases));
        let result = runner.run(&strategy, |input| {
            ran.fetch_add(1, Ordering::Relaxed);
            let (status, bytes) = self.rt.block_on(send(build(&input)))?;
            let body = check_answer(what, status, &bytes)?;
            total.fetch_add(written(status, &body), Ordering::Relaxed);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{what}: {e}");
        }
        eprintln!(
            "{what}: {} requests, {} written",
            ran.load(Ordering::Relaxed),
            total.load(Ordering::Relaxed)
        );
        total.load(Ordering::Relaxed)
    }
}

/// Sends `req`, reading the whole answer; a transport error (dropped connection) fails.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), TestCaseError> {
    let resp = req.send().await.map_err(|e| TestCaseError::fail(format!("send: {e:?}")))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| TestCaseError::fail(format!("body: {e:?}")))?;
    Ok((status, bytes.to_vec()))
}

/// No 5xx; a 4xx is JSON with string `code` and `message`. Returns the JSON body (or null).
pub(crate) fn check_answer(what: &str, status: u16, bytes: &[u8]) -> Result<Value, TestCaseError> {
    let text = String::from_utf8_lossy(bytes);
    prop_assert!(status < 500, "{}: answered {} {}", what, status, text);
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    if (400..500).contains(&status) {
        prop_assert!(
            body["code"].is_string(),
            "{}: {} without a JSON `code`: {}",
            what,
            status,
            text
        );
        prop_assert!(
            body["message"].is_string(),
            "{}: {} without `message`: {}",
            what,
            status,
            text
        );
    }
    Ok(body)
}

/// 1 for a status in `ok`, else 0.
pub(crate) fn one_if(ok: &'static [u16]) -> impl Fn(u16, &Value) -> usize {
    move |s, _| usize::from(ok.contains(&s))
}

/// A webhook target nobody listens on (deliveries just retry).
pub(crate) const DEAD_URL: &str = "http://127.0.0.1:9/hook";

/// A valid automation body.
pub(crate) fn automation_template() -> Value {
    json!({"name": "fuzz", "processor_id": "fuzz-p", "webhook_url": DEAD_URL, "event_types": ["a"]})
}
