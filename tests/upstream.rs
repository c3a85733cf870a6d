//! An app backed by an upstream Dify-compatible server: one hookrelay is the upstream of
//! another. The downstream relays the events, records the run, and fires its webhooks.

use hookrelay_testkit as common;

use std::time::Duration;

use common::{verify_signature, Receiver, Relay};
use serde_json::{json, Value};

const UPSTREAM_APP: &str = r#"
[[apps]]
id = "echo"
api_keys = ["app-upstream-echo-0123456789"]
[[apps.inputs]]
type = "text-input"
variable = "name"
required = true
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "t"
type = "template-transform"
template = "hello {{ n }}"
variables = [{ variable = "n", value_selector = ["start", "name"] }]
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{ variable = "text", value_selector = ["t", "output"] }]
[[apps.edges]]
source = "start"
target = "t"
[[apps.edges]]
source = "t"
target = "end"
"#;

fn downstream_app(upstream_base: &str) -> String {
    format!(
        "[[apps]]\nid = \"proxied\"\napi_keys = [\"app-downstream-0123456789\"]\n\
         upstream = {{ base_url = \"{upstream_base}/v1\", api_key = \"app-upstream-echo-0123456789\" }}\n"
    )
}

async fn run(relay: &Relay, body: Value) -> reqwest::Response {
    common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth("app-downstream-0123456789")
        .json(&body)
        .send()
        .await
        .expect("send")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_forwarded_relayed_recorded_and_webhooked() {
    let upstream = Relay::start(UPSTREAM_APP);
    let downstream = Relay::start(&downstream_app(&upstream.base));
    let receiver = Receiver::ok().await;
    let automation = downstream.create_automation("proxied", &receiver.url("/done")).await;

    let blocking: Value = run(
        &downstream,
        json!({"inputs": {"name": "Ada"}, "user": "ada@example.com", "response_mode": "blocking"}),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(blocking["data"]["status"], "succeeded", "{blocking}");
    assert_eq!(blocking["data"]["outputs"]["text"], "hello Ada");
    assert_eq!(blocking["data"]["workflow_id"], "proxied");
    assert_eq!(blocking["data"]["total_steps"], 3, "steps as the upstream counted them");
    let run_id = blocking["workflow_run_id"].as_str().expect("run id").to_string();

    // The run is recorded downstream under its own id…
    let detail: Value = common::client()
        .get(downstream.url(&format!("/v1/workflows/run/{run_id}")))
        .bearer_auth("app-downstream-0123456789")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["status"], "succeeded");
    assert_eq!(detail["outputs"]["text"], "hello Ada");

    // …and its completion webhook is signed and carries the upstream's outputs.
    downstream
        .wait_for(Duration::from_secs(5), "webhook", || async {
            (receiver.count() == 1).then_some(())
        })
        .await;
    let call = &receiver.calls()[0];
    assert!(verify_signature(
        automation["secret"].as_str().expect("secret"),
        &call.headers,
        &call.body
    ));
    let webhook: Value = serde_json::from_slice(&call.body).expect("json body");
    assert_eq!(webhook["completion"]["choices"][0]["message"]["parsed"]["text"], "hello Ada");
    assert_eq!(webhook["metadata"]["workflow_run_id"], run_id.as_str());
    assert_eq!(webhook["user"], "ada@example.com");

    // Streaming: the upstream's node events are relayed under the downstream's ids, in order.
    let text = run(
        &downstream,
        json!({"inputs": {"name": "Bo"}, "user": "bo", "response_mode": "streaming"}),
    )
    .await
    .text()
    .await
    .expect("stream");
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("event json"))
        .collect();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap_or("")).collect();
    assert_eq!(names.first(), Some(&"workflow_started"));
    assert_eq!(names.last(), Some(&"workflow_finished"));
    assert_eq!(names.iter().filter(|n| **n == "node_finished").count(), 3, "{names:?}");
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e["workflow_run_id"].as_str().unwrap_or("")).collect();
    assert_eq!(ids.len(), 1, "one run id on every event");
    assert_eq!(events.last().expect("last")["data"]["outputs"]["text"], "hello Bo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_failure_is_a_failed_run_with_its_webhook() {
    let upstream = Relay::start(UPSTREAM_APP);
    let downstream = Relay::start(&downstream_app(&upstream.base));
    let receiver = Receiver::ok().await;
    downstream.create_automation("proxied", &receiver.url("/done")).await;
    // The upstream's form requires `name`: its 400 fails the run here.
    let body: Value =
        run(&downstream, json!({"inputs": {}, "user": "x", "response_mode": "blocking"}))
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(body["data"]["status"], "failed", "{body}");
    assert!(
        body["data"]["error"].as_str().unwrap_or("").contains("upstream answered HTTP 400"),
        "{body}"
    );
    downstream
        .wait_for(Duration::from_secs(5), "webhook", || async {
            (receiver.count() == 1).then_some(())
        })
        .await;
    let webhook: Value = serde_json::from_slice(&receiver.calls()[0].body).expect("json");
    assert_eq!(webhook["metadata"]["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_proxied_run_stops_it_upstream_too() {
    let slow = SlowServer::start().await;
    let upstream = Relay::start(&format!(
        "[[apps]]\nid = \"slow\"\napi_keys = [\"app-upstream-slow-0123456789\"]\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
         [[apps.nodes]]\nid = \"call\"\ntype = \"http-request\"\nmethod = \"POST\"\nurl = \"{}\"\n\
         [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\n\
         [[apps.edges]]\nsource = \"start\"\ntarget = \"call\"\n[[apps.edges]]\nsource = \"call\"\ntarget = \"end\"\n",
        slow.url("/slow")
    ));
    let downstream = Relay::start(&format!(
        "[[apps]]\nid = \"proxied\"\napi_keys = [\"app-downstream-0123456789\"]\n\
         upstream = {{ base_url = \"{}/v1\", api_key = \"app-upstream-slow-0123456789\" }}\n",
        upstream.base
    ));
    let started: Value =
        run(&downstream, json!({"inputs": {}, "user": "u1", "response_mode": "async"}))
            .await
            .json()
            .await
            .expect("json");
    let task = started["task_id"].as_str().expect("task").to_string();
    let run_id = started["workflow_run_id"].as_str().expect("run").to_string();
    downstream
        .wait_for(Duration::from_secs(5), "the upstream call", || async {
            (slow.hits.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
        })
        .await;
    let t = std::time::Instant::now();
    let stop: Value = common::client()
        .post(downstream.url(&format!("/v1/workflows/tasks/{task}/stop")))
        .bearer_auth("app-downstream-0123456789")
        .json(&json!({"user": "u1"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(stop["result"], "success");
    let get = |relay: &Relay, path: String, key: &'static str| {
        let url = relay.url(&path);
        async move {
            common::client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let status = downstream
        .wait_for(Duration::from_secs(2), "stopped downstream", || async {
            let r = get(
                &downstream,
                format!("/v1/workflows/run/{run_id}"),
                "app-downstream-0123456789",
            )
            .await;
            (r["status"] != "running").then(|| r["status"].clone())
        })
        .await;
    assert_eq!(status, "stopped");
    assert!(t.elapsed() < Duration::from_secs(2), "stopped without waiting for the slow call");
    let upstream_status = upstream
        .wait_for(Duration::from_secs(2), "stopped upstream", || async {
            let logs =
                get(&upstream, "/v1/workflows/logs".into(), "app-upstream-slow-0123456789").await;
            let status = logs["data"][0]["workflow_run"]["status"].clone();
            (status != "running" && !status.is_null()).then_some(status)
        })
        .await;
    assert_eq!(upstream_status, "stopped", "the upstream task was stopped too");
}

/// Answers after 3 s (asynchronously, so it blocks no test thread), counting calls.
struct SlowServer {
    addr: std::net::SocketAddr,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowServer {
    async fn start() -> Self {
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
