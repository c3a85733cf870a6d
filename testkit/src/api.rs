//! Typed calls to a running relay's API: requests with the admin key, automations,
//! messages, deliveries, logs, metrics, and deadline waits on any of them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{Relay, KEY, WAIT};

/// Where automations are created and listed.
pub const ENDPOINTS: &str = "/v1/processors/automations/endpoints";
/// Where logs are listed.
pub const LOGS: &str = "/v1/processors/automations/logs";

impl Relay {
    /// An authenticated request builder.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        crate::client().request(method, self.url(path)).header("Api-Key", KEY)
    }

    /// GET `path`, expecting `status`, returning the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.req(reqwest::Method::GET, path).send().await.expect("send");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    /// POST JSON to `path`, returning status and JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.req(reqwest::Method::POST, path).json(body).send().await.expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates an automation for `processor_id` calling `url`; returns its JSON (with `secret`).
    pub async fn create_automation(&self, processor_id: &str, url: &str) -> Value {
        let (status, body) = self
            .post_json(
                ENDPOINTS,
                &json!({"name": "test", "processor_id": processor_id, "webhook_url": url}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Posts a message to `processor_id`; returns the 202 body.
    pub async fn send_message(&self, processor_id: &str, payload: Value) -> Value {
        let (status, body) = self
            .post_json("/v1/messages", &json!({"processor_id": processor_id, "payload": payload}))
            .await;
        assert_eq!(status, 202, "{body}");
        body
    }

    /// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout`.
    pub async fn wait_for<T, F, Fut>(&self, timeout: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of the unlabelled metric `name` on `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = crate::client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let value = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' '));
        value
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
    }

    /// Every item of the cursor-paginated list at `path` (a path with a query string),
    /// oldest first, 100 a page.
    pub async fn list_all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.get_json(&format!("{path}&limit=100&order=asc{after}")).await;
            out.extend(page["data"].as_array().expect("data").iter().cloned());
            match page["list_metadata"]["after"].as_str() {
                Some(a) => after = format!("&after={a}"),
                None => return out,
            }
        }
    }

    /// Every log, oldest first, optionally filtered by `query` (`&key=value…`).
    pub async fn all_logs(&self, query: &str) -> Vec<Value> {
        self.list_all(&format!("{LOGS}?{query}")).await
    }

    /// Waits until `query` lists exactly `n` logs; returns them, oldest first. For waits whose
    /// count is known: a log too many keeps the wait going and fails it at [`WAIT`].
    pub async fn wait_logs_exactly(&self, query: &str, n: usize) -> Vec<Value> {
        self.wait_for(WAIT, &format!("exactly {n} logs for `{query}`"), || async {
            let logs = self.all_logs(query).await;
            (logs.len() == n).then_some(logs)
        })
        .await
    }

    /// Waits until `query` lists `n` logs or more; returns them all, oldest first. For waits
    /// on the first logs of something that may go on logging (a failing delivery retries).
    pub async fn wait_logs_at_least(&self, query: &str, n: usize) -> Vec<Value> {
        self.wait_for(WAIT, &format!("{n} or more logs for `{query}`"), || async {
            let logs = self.all_logs(query).await;
            (logs.len() >= n).then_some(logs)
        })
        .await
    }

    /// A positive control for "this retry was not sent": a new automation of `processor`
    /// on a receiver that fails its first call, and one message to it, sent now. Its retry
    /// comes on the relay's schedule; once [`Relay::wait_control_retry`] has seen it, a retry
    /// due no later that was not sent was not sent because of the mechanism under test.
    pub async fn retrying_control(&self, processor: &str) -> crate::Receiver {
        let receiver = crate::Receiver::failing_first(1, 500).await;
        self.create_automation(processor, &receiver.url("/control")).await;
        self.send_message(processor, json!({"control": true})).await;
        receiver
    }

    /// Waits until `control` (from [`Relay::retrying_control`]) has had its retry.
    pub async fn wait_control_retry(&self, control: &crate::Receiver) {
        self.wait_for(WAIT, "the control delivery's retry", || async {
            (control.count() >= 2).then_some(())
        })
        .await;
    }

    /// Every delivery of automation `automation_id`, oldest first. What the relay will call
    /// is stored before it calls, so this shows at once a call that must never come.
    pub async fn deliveries_of(&self, automation_id: &str) -> Vec<Value> {
        self.list_all(&format!("/v1/deliveries?automation_id={automation_id}")).await
    }

    /// `GET /v1/deliveries/{id}`.
    pub async fn delivery(&self, id: &str) -> Value {
        self.get_json(&format!("/v1/deliveries/{id}")).await
    }

    /// Waits until delivery `id` leaves `pending`, then asserts it ended as `status`.
    pub async fn wait_delivery_ends(&self, id: &str, status: &str) -> Value {
        let d = self
            .wait_for(WAIT, &format!("delivery {id} to end (expected {status})"), || async {
                let d = self.delivery(id).await;
                (d["status"] != "pending").then_some(d)
            })
            .await;
        assert_eq!(d["status"], status, "delivery ended otherwise: {d}");
        d
    }

    /// The logs of delivery `id`, in attempt order.
    pub async fn logs_of(&self, id: &str) -> Vec<Value> {
        let mut logs: Vec<Value> =
            self.all_logs("").await.into_iter().filter(|l| l["delivery_id"] == id).collect();
        logs.sort_by_key(|l| l["attempt"].as_u64());
        logs
    }
}
