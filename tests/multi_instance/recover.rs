//! A recover job whose instance is `kill -9`ed mid-job is taken over by a survivor
//! (attack finding F8): the job, read on any survivor, ends `completed` without the killed
//! instance coming back, every delivery of its window reaches the receiver, and none is
//! re-queued twice by the job — a delivery is called more than once only for an attempt
//! the kill interrupted (logged `E_INTERRUPTED`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Uri};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::json;

use crate::common::postgres::FreshDatabase;
use crate::common::{Relay, ENDPOINTS};

const PROCESSOR: &str = "proc_recover_takeover";
/// Automations on the processor: each message makes one delivery to each.
const AUTOMATIONS: usize = 4;
const MESSAGES: usize = 50;
const DELIVERIES: usize = AUTOMATIONS * MESSAGES;
const RECOVER: &str = "/v1/processors/automations/logs/recover";

/// One attempt, so every delivery to the dead receiver ends `exhausted` at once.
const CONFIG: &str = r#"
[delivery]
poll_interval_ms = 50
max_attempts = 1
connect_timeout_ms = 1000
request_timeout_ms = 5000
global_concurrency = 16
per_automation_concurrency = 16
"#;

/// The instance the job starts on re-queues one delivery a write, so it is still at it
/// when it is killed; the survivors use the default chunk.
fn slow_chunks() -> String {
    format!("{CONFIG}recover_chunk_size = 1\n")
}

/// A receiver answering 200 to every call, counting them by path and `webhook-id`.
struct Counting {
    url: String,
    calls: Arc<Mutex<HashMap<(String, String), usize>>>,
}

impl Counting {
    async fn start() -> Self {
        let calls: Arc<Mutex<HashMap<(String, String), usize>>> = Arc::default();
        let counted = calls.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let calls = counted.clone();
            async move {
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                let key = (uri.path().to_string(), id.to_string());
                *calls.lock().expect("lock").entry(key).or_default() += 1;
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Counting { url, calls }
    }

    fn calls(&self) -> HashMap<(String, String), usize> {
        self.calls.lock().expect("lock").clone()
    }
}

/// Posts the messages, sixteen at a time, round robin over `relays`.
async fn post_messages(relays: &[Relay]) {
    let sends =
        (0..MESSAGES).map(|n| relays[n % relays.len()].send_message(PROCESSOR, json!({"n": n})));
    futures_util::stream::iter(sends).buffer_unordered(16).collect::<Vec<_>>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recover_job_whose_instance_is_killed_is_finished_by_a_survivor() {
    let Some(server) = crate::server() else { return };
    let began = Instant::now();
    let db = FreshDatabase::create(&server);
    let url = Path::new(&db.url);
    let mut holder = Relay::start_with_database(url, &slow_chunks());
    let survivors =
        [Relay::start_with_database(url, CONFIG), Relay::start_with_database(url, CONFIG)];
    let (b, c) = (&survivors[0], &survivors[1]);

    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gone_url = format!("http://{}", gone.local_addr().expect("addr"));
    drop(gone);
    let mut automations = Vec::new();
    for i in 0..AUTOMATIONS {
        let created = b.create_automation(PROCESSOR, &format!("{gone_url}/a{i}")).await;
        automations.push(created["id"].as_str().expect("id").to_string());
    }
    post_messages(&survivors).await;
    b.wait_for(Duration::from_secs(20), "every delivery attempted", || async {
        let page = b.get_json("/v1/deliveries?status=pending&limit=1").await;
        page["data"].as_array().expect("data").is_empty().then_some(())
    })
    .await;
    assert_eq!(b.list_all("/v1/deliveries?status=exhausted").await.len(), DELIVERIES);
    let exhausted_in = began.elapsed();

    let receiver = Counting::start().await;
    for (i, id) in automations.iter().enumerate() {
        let resp = b
            .req(Method::PUT, &format!("{ENDPOINTS}/{id}"))
            .json(&json!({"webhook_url": format!("{}/a{i}", receiver.url)}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    }

    let (status, created) = holder.post_json(RECOVER, &json!({"since": "10m"})).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["total"], DELIVERIES, "{created}");
    let job = format!("{RECOVER}/{}", created["id"].as_str().expect("id"));
    // Killed once it has re-queued a part of the window: the survivor resumes from there.
    b.wait_for(Duration::from_secs(10), "the job under way", || async {
        let j = b.get_json(&job).await;
        (j["requeued"].as_i64().expect("requeued") >= 20).then_some(())
    })
    .await;
    tokio::task::block_in_place(|| holder.kill9());
    let killed_at = Instant::now();
    let at_kill = b.get_json(&job).await;
    let requeued_at_kill = at_kill["requeued"].as_i64().expect("requeued");
    assert!(
        requeued_at_kill < DELIVERIES as i64,
        "the job ended before the kill; it must be slower for this test to mean anything: {at_kill}"
    );

    let done = b
        .wait_for(Duration::from_secs(40), "the job completed on a survivor", || async {
            let j = b.get_json(&job).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    let completed_in = killed_at.elapsed();
    assert_eq!(
        (&done["total"], &done["requeued"], &done["done"], &done["failed"], &done["pending"]),
        (&json!(DELIVERIES), &json!(DELIVERIES), &json!(DELIVERIES), &json!(0), &json!(0)),
        "{done}"
    );
    assert_eq!(c.get_json(&job).await, done, "every instance reads the same progress");

    // Each delivery called once, or again for each attempt the kill interrupted.
    let path_of: HashMap<&str, String> =
        automations.iter().enumerate().map(|(i, id)| (id.as_str(), format!("/a{i}"))).collect();
    let mut interrupted: HashMap<(String, String), usize> = HashMap::new();
    for log in b.all_logs("error_code=E_INTERRUPTED").await {
        let path = path_of[log["automation_id"].as_str().expect("automation_id")].clone();
        let message = log["message_id"].as_str().expect("message_id").to_string();
        *interrupted.entry((path, message)).or_default() += 1;
    }
    let calls = receiver.calls();
    assert_eq!(calls.len(), DELIVERIES, "every delivery of the window reached the receiver");
    for (key, n) in &calls {
        let allowed = 1 + interrupted.get(key).copied().unwrap_or(0);
        assert!(*n <= allowed, "{key:?}: called {n} times, {} interrupted", allowed - 1);
    }
    let repeats: usize = calls.values().map(|n| n - 1).sum();
    eprintln!(
        "recover takeover: {DELIVERIES} deliveries, {requeued_at_kill} re-queued at the kill, \
         completed {completed_in:?} after it; {repeats} calls repeated after an interrupted \
         attempt; exhausted after {exhausted_in:?}, {:?} in all",
        began.elapsed()
    );
    drop(survivors);
    drop(holder);
    drop(db);
}
