//! FIFO automations (`ordering = "fifo"`): one call at a time, in ingest order, a message
//! sent only once the one before it succeeded or was exhausted (which stays recoverable),
//! while a parallel automation beside it keeps its concurrent calls; and the field refused
//! when it names no ordering.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use serde_json::{json, Value};

use crate::common::{Relay, ENDPOINTS, WAIT};
use crate::helpers::delivery_toml;

/// One call a [`LineReceiver`] got: the message's `seq`, when it arrived and was answered,
/// and whether it was answered 200.
#[derive(Debug, Clone)]
struct Call {
    seq: u64,
    start: Instant,
    end: Instant,
    ok: bool,
}

/// A receiver answering after `delay`, failing (500) the tries `fails` says for each `seq`,
/// recording every call and the most calls it ever had at once.
#[derive(Clone)]
struct LineReceiver {
    addr: std::net::SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    most_at_once: Arc<AtomicUsize>,
}

impl LineReceiver {
    async fn start(delay: Duration, fails: fn(u64, usize) -> bool) -> Self {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let most_at_once: Arc<AtomicUsize> = Arc::default();
        let (now_in, tries): (Arc<AtomicUsize>, Arc<Mutex<HashMap<u64, usize>>>) =
            (Arc::default(), Arc::default());
        let (c, most) = (calls.clone(), most_at_once.clone());
        let app = Router::new().fallback(move |body: Bytes| {
            let (c, most, now_in, tries) = (c.clone(), most.clone(), now_in.clone(), tries.clone());
            async move {
                let start = Instant::now();
                let at_once = now_in.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(at_once, Ordering::SeqCst);
                let seq = serde_json::from_slice::<Value>(&body).expect("json")["seq"]
                    .as_u64()
                    .expect("seq");
                let try_no = {
                    let mut tries = tries.lock().unwrap();
                    let n = tries.entry(seq).or_insert(0);
                    *n += 1;
                    *n
                };
                tokio::time::sleep(delay).await;
                let ok = !fails(seq, try_no);
                now_in.fetch_sub(1, Ordering::SeqCst);
                c.lock().unwrap().push(Call { seq, start, end: Instant::now(), ok });
                let status = if ok { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
                (status, "{}").into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, calls, most_at_once }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Calls answered so far, in the order they arrived.
    fn calls(&self) -> Vec<Call> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.sort_by_key(|c| c.start);
        calls
    }

    fn successes(&self) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.ok).count()
    }
}

async fn create(relay: &Relay, processor: &str, url: &str, ordering: Option<&str>) -> Value {
    let mut body = json!({"name": "line", "processor_id": processor, "webhook_url": url});
    if let Some(ordering) = ordering {
        body["ordering"] = ordering.into();
    }
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Sends messages `seq` 0..n to `processor`, one after another (so ingest order is `seq`
/// order); returns their message ids.
async fn send(relay: &Relay, processor: &str, n: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for seq in 0..n {
        let sent = relay.send_message(processor, json!({"seq": seq})).await;
        ids.push(sent["id"].as_str().expect("id").to_string());
    }
    ids
}

/// The calls never overlap, go in `seq` order (a message's retries before the next one), and
/// each message's first call starts only after the one before it was answered for the last
/// time (its success, or the failure that exhausted it).
fn assert_in_line(calls: &[Call]) {
    for pair in calls.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(b.seq >= a.seq, "seq {} called after seq {}: {calls:?}", b.seq, a.seq);
        assert!(b.start >= a.end, "calls overlap: {a:?} and {b:?}");
        if b.seq > a.seq {
            assert_eq!(b.seq, a.seq + 1, "a message skipped: {calls:?}");
        }
    }
}

/// Message 3's first two tries fail: the FIFO receiver gets every message once in order,
/// message 3 three times, message 4 only after message 3's success, never two calls at
/// once; the parallel automation on the same processor gets its calls concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_sends_one_at_a_time_in_ingest_order_beside_a_parallel_automation() {
    const N: u64 = 8;
    let line =
        LineReceiver::start(Duration::from_millis(80), |seq, try_no| seq == 3 && try_no <= 2).await;
    let parallel = LineReceiver::start(Duration::from_millis(400), |_, _| false).await;
    let relay = Relay::start(&delivery_toml(&[("per_automation_concurrency", "8")]));
    let fifo = create(&relay, "proc_line", &line.url(), Some("fifo")).await;
    assert_eq!(fifo["ordering"], "fifo", "{fifo}");
    let other = create(&relay, "proc_line", &parallel.url(), None).await;
    assert_eq!(other["ordering"], "parallel", "the default: {other}");

    send(&relay, "proc_line", N).await;
    relay
        .wait_for(WAIT, "every message at both receivers", || async {
            (line.successes() == N as usize && parallel.successes() == N as usize).then_some(())
        })
        .await;

    let calls = line.calls();
    let seqs: Vec<u64> = calls.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 3, 3, 4, 5, 6, 7], "{calls:?}");
    assert_in_line(&calls);
    assert_eq!(line.most_at_once.load(Ordering::SeqCst), 1);
    assert!(
        parallel.most_at_once.load(Ordering::SeqCst) >= 2,
        "the parallel automation had its calls one at a time too"
    );
    // Message 4 waited for message 3's retries (~200 ms and ~400 ms after its failures).
    let third_ok = calls.iter().find(|c| c.seq == 3 && c.ok).expect("3 succeeded");
    let fourth = calls.iter().find(|c| c.seq == 4).expect("4 sent");
    assert!(fourth.start >= third_ok.end);
}

/// With two attempts, message 1 is exhausted and message 2 goes after its last failure;
/// message 1 stays recoverable: a recover job sends it again, and it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_message_lets_the_next_go_and_stays_recoverable() {
    let since = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // Message 1 fails its two attempts, then (recovered) succeeds.
    let line =
        LineReceiver::start(Duration::from_millis(50), |seq, try_no| seq == 1 && try_no <= 2).await;
    let relay = Relay::start(&delivery_toml(&[("max_attempts", "2")]));
    let fifo = create(&relay, "proc_exhaust", &line.url(), Some("fifo")).await;
    let ids = send(&relay, "proc_exhaust", 3).await;
    relay
        .wait_for(WAIT, "messages 0 and 2 delivered", || async {
            (line.successes() == 2).then_some(())
        })
        .await;
    let calls = line.calls();
    let seqs: Vec<(u64, bool)> = calls.iter().map(|c| (c.seq, c.ok)).collect();
    assert_eq!(seqs, [(0, true), (1, false), (1, false), (2, true)], "{calls:?}");
    assert_in_line(&calls);

    let deliveries = relay.deliveries_of(fifo["id"].as_str().unwrap()).await;
    let status_of = |message: &str| {
        deliveries.iter().find(|d| d["message_id"] == message).expect("delivery")["status"].clone()
    };
    assert_eq!(status_of(&ids[1]), "exhausted");
    assert_eq!(status_of(&ids[2]), "succeeded");

    let (status, job) = relay
        .post_json(
            "/v1/processors/automations/logs/recover",
            &json!({"since": since, "automation_id": fifo["id"]}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 1, "{job}");
    let dlv = deliveries.iter().find(|d| d["message_id"] == ids[1].as_str()).unwrap();
    let path = format!("/v1/deliveries/{}", dlv["id"].as_str().unwrap());
    relay
        .wait_for(WAIT, "the recovered delivery to succeed", || async {
            (relay.get_json(&path).await["status"] == "succeeded").then_some(())
        })
        .await;
    let last = line.calls().last().cloned().expect("a call");
    assert_eq!((last.seq, last.ok), (1, true), "the recovered message went again");
}

/// `ordering` that is no ordering is refused, naming the field, on create and on update,
/// and nothing changes; a valid one is set by an update and echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordering_that_is_none_is_refused_and_changes_nothing() {
    let relay = Relay::start("");
    let bad = [json!("lifo"), json!(5), Value::Null, json!("FIFO"), json!(["fifo"])];
    let base =
        json!({"name": "x", "processor_id": "proc_bad", "webhook_url": "http://127.0.0.1:9/x"});
    for value in &bad {
        let mut body = base.clone();
        body["ordering"] = value.clone();
        let (status, error) = relay.post_json(ENDPOINTS, &body).await;
        assert!((400..500).contains(&status), "create with {value}: {status} {error}");
        assert_eq!(error["field"], "ordering", "create with {value}: {error}");
    }
    let listed = relay.get_json(&format!("{ENDPOINTS}?processor_id=proc_bad")).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "nothing was created: {listed}");

    let created = create(&relay, "proc_bad", "http://127.0.0.1:9/x", None).await;
    let path = format!("{ENDPOINTS}/{}", created["id"].as_str().unwrap());
    for value in &bad {
        let resp = relay
            .req(reqwest::Method::PUT, &path)
            .json(&json!({"ordering": value, "name": "renamed"}))
            .send()
            .await
            .expect("send");
        let status = resp.status().as_u16();
        let error: Value = resp.json().await.expect("json");
        assert!((400..500).contains(&status), "update with {value}: {status} {error}");
        assert_eq!(error["field"], "ordering", "update with {value}: {error}");
        let now = relay.get_json(&path).await;
        assert_eq!((&now["ordering"], &now["name"]), (&json!("parallel"), &json!("line")), "{now}");
    }
    let resp = relay
        .req(reqwest::Method::PUT, &path)
        .json(&json!({"ordering": "fifo"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(relay.get_json(&path).await["ordering"], "fifo");
    // Absent keeps it.
    let resp =
        relay.req(reqwest::Method::PUT, &path).json(&json!({"name": "n"})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(relay.get_json(&path).await["ordering"], "fifo");
}

/// Disabling keeps today's rule: each pending delivery ends `failed` (with a log, no call)
/// at its next attempt. For a FIFO line that is the head at its retry, then each one behind
/// it in turn, at once; none of them is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_fifo_automation_ends_its_whole_line_failed() {
    let line = LineReceiver::start(Duration::from_millis(10), |seq, _| seq == 0).await;
    let relay = Relay::start(&delivery_toml(&[("initial_backoff_ms", "1500")]));
    let fifo = create(&relay, "proc_off", &line.url(), Some("fifo")).await;
    let id = fifo["id"].as_str().unwrap().to_string();
    send(&relay, "proc_off", 4).await;
    relay
        .wait_for(WAIT, "message 0's first try", || async {
            (line.calls().len() == 1).then_some(())
        })
        .await;
    let resp = relay
        .req(reqwest::Method::PUT, &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status().as_u16(), 200);
    let ended = relay
        .wait_for(WAIT, "the whole line to end", || async {
            let all = relay.deliveries_of(&id).await;
            all.iter().all(|d| d["status"] != "pending").then_some(all)
        })
        .await;
    assert_eq!(ended.len(), 4);
    assert!(ended.iter().all(|d| d["status"] == "failed"), "{ended:?}");
    let calls = line.calls();
    assert_eq!(calls.len(), 1, "only message 0's first try was sent: {calls:?}");
    let logs = relay.all_logs("").await;
    let disabled = logs.iter().filter(|l| l["error_code"] == "E_AUTOMATION_DISABLED").count();
    assert_eq!(disabled, 4, "one log per delivery");
}

/// Made parallel, a FIFO automation lets its whole line go at once: the messages waiting
/// behind a head that keeps failing are delivered without waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_automation_made_parallel_lets_its_line_go() {
    let line = LineReceiver::start(Duration::from_millis(10), |seq, _| seq == 0).await;
    let relay = Relay::start(&delivery_toml(&[("initial_backoff_ms", "60000")]));
    let fifo = create(&relay, "proc_switch", &line.url(), Some("fifo")).await;
    let id = fifo["id"].as_str().unwrap().to_string();
    send(&relay, "proc_switch", 4).await;
    relay
        .wait_for(WAIT, "message 0's first try", || async {
            (line.calls().len() == 1).then_some(())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(line.calls().len(), 1, "the line waits behind message 0");
    let waiting = relay.deliveries_of(&id).await;
    assert!(
        waiting.iter().filter(|d| d["next_attempt_at"].is_null()).count() == 3,
        "three wait their turn, with no time of their own: {waiting:?}"
    );
    let resp = relay
        .req(reqwest::Method::PUT, &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"ordering": "parallel"}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status().as_u16(), 200);
    relay
        .wait_for(WAIT, "messages 1 to 3 delivered", || async {
            (line.successes() == 3).then_some(())
        })
        .await;
    let seqs: Vec<u64> = line.calls().iter().map(|c| c.seq).collect();
    assert_eq!(seqs[0], 0);
    assert_eq!(seqs.len(), 4, "message 0 keeps its own retry schedule: {seqs:?}");
}
