use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Uri;
use axum::Router;
use serde_json::{json, Value};

use crate::common::{Relay, KEY};
use crate::helpers::LOGS;

/// Calls in flight at once, per path and in total, and the most of each ever seen.
#[derive(Default)]
struct InFlight {
    now: HashMap<String, usize>,
    most: HashMap<String, usize>,
    total: usize,
    most_total: usize,
}

/// A receiver that holds each call for `hold` and records how many were in flight at once.
async fn counting_receiver(hold: Duration) -> (String, Arc<Mutex<InFlight>>) {
    let state: Arc<Mutex<InFlight>> = Arc::default();
    let seen = state.clone();
    let app = Router::new().fallback(move |uri: Uri| {
        let seen = seen.clone();
        async move {
            let path = uri.path().to_string();
            {
                let mut s = seen.lock().expect("lock");
                let now = s.now.entry(path.clone()).or_default();
                *now += 1;
                let now = *now;
                let most = s.most.entry(path.clone()).or_default();
                *most = (*most).max(now);
                s.total += 1;
                s.most_total = s.most_total.max(s.total);
            }
            tokio::time::sleep(hold).await;
            let mut s = seen.lock().expect("lock");
            *s.now.entry(path).or_default() -= 1;
            s.total -= 1;
            "{\"ok\":true}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), state)
}

/// Fires `n` concurrent reruns of `log_id`; returns each answer's status and body.
async fn reruns(relay: &Relay, log_id: &str, n: usize) -> Vec<(u16, Value)> {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let request = relay
                .req(reqwest::Method::POST, &format!("{LOGS}/{log_id}/rerun"))
                .header("Api-Key", KEY);
            tokio::spawn(async move {
                let resp = request.send().await.expect("rerun");
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("rerun task"));
    }
    answers
}

/// Creates an automation calling `url` and delivers one message to it; returns its log id.
async fn delivered_log(relay: &Relay, processor: &str, url: &str) -> String {
    relay.create_automation(processor, url).await;
    relay.send_message(processor, json!({"for": processor})).await;
    let logs = relay.wait_logs_exactly(&format!("&webhook_url={url}"), 1).await;
    logs[0]["id"].as_str().expect("log id").to_string()
}

// Reruns take the same slots as deliveries: however many are asked for at once, a receiver
// never sees more than per_automation_concurrency of them, nor all automations together
// more than global_concurrency; the others wait for a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reruns_stay_within_the_concurrency_bounds() {
    let (base, in_flight) = counting_receiver(Duration::from_millis(300)).await;
    let relay =
        Relay::start("[delivery]\nglobal_concurrency = 3\nper_automation_concurrency = 2\n");
    let (url_a, url_b) = (format!("{base}/a"), format!("{base}/b"));
    let log_a = delivered_log(&relay, "proc_slots_a", &url_a).await;
    let log_b = delivered_log(&relay, "proc_slots_b", &url_b).await;

    let started = Instant::now();
    let (a, b) = tokio::join!(reruns(&relay, &log_a, 8), reruns(&relay, &log_b, 8));
    for (status, body) in a.iter().chain(&b) {
        assert_eq!(*status, 200, "{body}");
    }
    let seen = in_flight.lock().expect("lock");
    assert_eq!(seen.most.get("/a"), Some(&2), "per automation: {:?}", seen.most);
    assert_eq!(seen.most.get("/b"), Some(&2), "per automation: {:?}", seen.most);
    assert_eq!(seen.most_total, 3, "all automations together");
    eprintln!("16 reruns within the bounds in {:?}", started.elapsed());
}

// A rerun that gets no slot within delivery.call_slot_wait_ms is answered 503 with a JSON
// error naming the bound; nothing is sent for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_that_finds_no_slot_in_time_gets_503() {
    let (base, in_flight) = counting_receiver(Duration::from_millis(1500)).await;
    let relay =
        Relay::start("[delivery]\nper_automation_concurrency = 1\ncall_slot_wait_ms = 200\n");
    let url = format!("{base}/busy");
    let log = delivered_log(&relay, "proc_busy", &url).await;

    let answers = reruns(&relay, &log, 3).await;
    let ok = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["code"], "concurrency_limit", "{body}");
        assert_eq!(body["status"], 503, "{body}");
        let message = body["message"].as_str().unwrap_or("");
        assert!(message.contains("200 ms"), "{message}");
    }
    assert_eq!(in_flight.lock().expect("lock").most.get("/busy"), Some(&1));
    let logs = relay.all_logs("").await;
    assert_eq!(logs.len(), 2, "the delivery and the one rerun that got a slot: {logs:?}");
}
