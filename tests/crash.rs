//! Crash test: `kill -9` the relay while deliveries are in flight, restart it on the same
//! database, and check that nothing acknowledged is lost: every message answered `202` is
//! received at least once, every delivery ends `succeeded`, every message has a logged 200,
//! and the duplicates the crash causes are bounded by what can be in flight.

use hookrelay_testkit as common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Receiver, Relay, KEY};
use serde_json::{json, Value};

/// Messages pushed in total.
const TOTAL: usize = 3000;
/// Concurrent `POST /v1/messages` callers.
const PRODUCERS: usize = 16;
/// Kill once this many messages are acknowledged (and the receiver is behind).
const KILL_AFTER: usize = TOTAL / 2;
/// `delivery.global_concurrency` of the relay under test.
const GLOBAL_CONCURRENCY: usize = 64;
/// `delivery.per_automation_concurrency` of the relay under test (one automation).
const PER_AUTOMATION_CONCURRENCY: usize = 64;
/// Most calls a kill can leave sent but uncommitted (one automation): see the testkit.
const IN_FLIGHT_BOUND: usize =
    common::calls_in_flight_bound(GLOBAL_CONCURRENCY, PER_AUTOMATION_CONCURRENCY, 1);

const CONFIG: &str = r#"
[delivery]
poll_interval_ms = 50
initial_backoff_ms = 200
backoff_multiplier = 2.0
max_backoff_ms = 2000
backoff_jitter = 0.1
max_attempts = 20
request_timeout_ms = 5000
connect_timeout_ms = 1000
global_concurrency = 64
per_automation_concurrency = 64
"#;

#[test]
fn the_config_is_the_one_the_bound_is_derived_from() {
    assert!(CONFIG.contains(&format!("global_concurrency = {GLOBAL_CONCURRENCY}\n")));
    let per_automation = format!("per_automation_concurrency = {PER_AUTOMATION_CONCURRENCY}\n");
    assert!(CONFIG.contains(&per_automation));
}

/// What the producers share: the next message index to send and the acknowledged ids.
#[derive(Default)]
struct Produced {
    next: AtomicUsize,
    /// Message ids answered 202, by message index.
    acked: Mutex<HashMap<usize, String>>,
    /// Indexes whose POST got no 202 (the relay died under it); sent again after restart.
    unacked: Mutex<Vec<usize>>,
    stop: AtomicBool,
}

/// Posts message `index`; `Some(id)` when the relay answered 202.
async fn post_message(client: &reqwest::Client, base: &str, index: usize) -> Option<String> {
    let body = json!({
        "processor_id": "proc_crash",
        "payload": {"index": index, "pad": "x".repeat(200)},
    });
    let resp = client
        .post(format!("{base}/v1/messages"))
        .header("Api-Key", KEY)
        .json(&body)
        .send()
        .await
        .ok()?;
    if resp.status().as_u16() != 202 {
        return None;
    }
    let answer: Value = resp.json().await.ok()?;
    answer["id"].as_str().map(str::to_string)
}

/// Runs `PRODUCERS` tasks pulling indexes from `indexes` until it is empty or `stop` is set.
async fn produce(base: String, produced: Arc<Produced>, indexes: Arc<Vec<usize>>) {
    let client = common::client();
    let mut tasks = Vec::new();
    for _ in 0..PRODUCERS {
        let (base, produced, indexes, client) =
            (base.clone(), produced.clone(), indexes.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if produced.stop.load(Ordering::SeqCst) {
                    return;
                }
                let slot = produced.next.fetch_add(1, Ordering::SeqCst);
                let Some(&index) = indexes.get(slot) else { return };
                match post_message(&client, &base, index).await {
                    Some(id) => {
                        produced.acked.lock().unwrap().insert(index, id);
                    }
                    None => {
                        produced.unacked.lock().unwrap().push(index);
                        // The relay is gone: stop pulling work, the rest goes after restart.
                        produced.stop.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer task");
    }
}

/// Distinct `webhook-id`s the receiver got, and the number of calls.
fn received_ids(receiver: &Receiver) -> (HashSet<String>, usize) {
    let calls = receiver.calls();
    let ids = calls
        .iter()
        .map(|c| {
            c.headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .expect("every call carries webhook-id")
                .to_string()
        })
        .collect();
    (ids, calls.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_mid_flight_loses_nothing_acknowledged() {
    let started = Instant::now();
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(CONFIG);
    let automation = relay.create_automation("proc_crash", &receiver.url("/sink")).await;
    let automation_id = automation["id"].as_str().expect("id").to_string();

    // Phase 1: push until about half are acknowledged, then kill -9 while the receiver is
    // still behind (acknowledged messages not yet received = deliveries in flight or due).
    let produced = Arc::new(Produced::default());
    let all: Arc<Vec<usize>> = Arc::new((0..TOTAL).collect());
    let producers = tokio::spawn(produce(relay.base.clone(), produced.clone(), all.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let (acked_at_kill, received_at_kill, calls_at_kill) = loop {
        let acked = produced.acked.lock().unwrap().len();
        let (ids, calls) = received_ids(&receiver);
        if acked >= KILL_AFTER && !ids.is_empty() && ids.len() < acked {
            relay.kill9();
            break (acked, ids.len(), calls);
        }
        assert!(acked < TOTAL, "every message was acknowledged before a mid-flight moment");
        assert!(Instant::now() < deadline, "phase 1 too slow: {acked} acknowledged");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    producers.await.expect("producers");
    let after_kill = receiver.count();
    let phase1 = started.elapsed();

    // Phase 2: restart on the same database and push everything not acknowledged.
    relay.restart();
    let acked_before_restart = produced.acked.lock().unwrap().len();
    let remaining: Vec<usize> = {
        let acked = produced.acked.lock().unwrap();
        (0..TOTAL).filter(|i| !acked.contains_key(i)).collect()
    };
    let produced2 = Arc::new(Produced::default());
    produce(relay.base.clone(), produced2.clone(), Arc::new(remaining.clone())).await;
    assert!(
        produced2.unacked.lock().unwrap().is_empty(),
        "after restart every POST /v1/messages must be answered 202"
    );
    let mut acked: HashMap<usize, String> = produced.acked.lock().unwrap().clone();
    acked.extend(produced2.acked.lock().unwrap().iter().map(|(k, v)| (*k, v.clone())));
    assert_eq!(acked.len(), TOTAL, "every message acknowledged once, over both phases");
    let acked_ids: HashSet<String> = acked.values().cloned().collect();
    assert_eq!(acked_ids.len(), TOTAL, "message ids are unique");

    // Every acknowledged message reaches the receiver at least once.
    relay
        .wait_for(Duration::from_secs(40), "every acknowledged message received", || async {
            let (ids, _) = received_ids(&receiver);
            acked_ids.is_subset(&ids).then_some(())
        })
        .await;
    // Every delivery ends succeeded: none pending (nor failed/exhausted).
    relay
        .wait_for(Duration::from_secs(30), "no pending delivery", || async {
            let page = relay.get_json("/v1/deliveries?status=pending&limit=1").await;
            page["data"].as_array().expect("data").is_empty().then_some(())
        })
        .await;
    for status in ["failed", "exhausted"] {
        let page = relay.get_json(&format!("/v1/deliveries?status={status}&limit=1")).await;
        assert_eq!(page["data"], json!([]), "a delivery ended {status}");
    }
    let succeeded = relay.list_all("/v1/deliveries?status=succeeded").await;
    let succeeded_msgs: HashSet<String> = succeeded
        .iter()
        .map(|d| d["message_id"].as_str().expect("message_id").to_string())
        .collect();
    let missing: Vec<_> = acked_ids.difference(&succeeded_msgs).take(5).collect();
    assert!(missing.is_empty(), "acknowledged messages without a succeeded delivery: {missing:?}");
    assert!(succeeded.iter().all(|d| d["automation_id"] == automation_id.as_str()));

    // Logs: one 200 per message at least, and no more 200s than the receiver answered.
    let logs = relay.all_logs(&format!("&automation_id={automation_id}")).await;
    let logs_200: Vec<&Value> =
        logs.iter().filter(|l| l["external_request_log"]["status_code"] == 200).collect();
    let logged_msgs: HashSet<String> = logs_200
        .iter()
        .map(|l| l["message_id"].as_str().expect("message_id").to_string())
        .collect();
    let (received, calls) = received_ids(&receiver);
    let missing: Vec<_> = acked_ids.difference(&logged_msgs).take(5).collect();
    assert!(missing.is_empty(), "acknowledged messages without a logged 200: {missing:?}");
    assert!(logs.len() >= received.len(), "{} logs < {} distinct ids", logs.len(), received.len());
    assert!(logs_200.len() <= calls, "{} logged 200s > {calls} calls received", logs_200.len());
    // Every log's webhook-id is the message id (what receivers de-duplicate on).
    for log in &logs {
        let sent = &log["external_request_log"]["request_headers"];
        let sent_id = sent["webhook-id"].as_str().or_else(|| sent["Webhook-Id"].as_str());
        assert_eq!(sent_id, log["message_id"].as_str(), "{log}");
    }

    // Duplicates come only from calls in flight (or sent but not yet committed) at the kill:
    // at most one a slot (see IN_FLIGHT_BOUND).
    let duplicates = calls - received.len();
    let unlogged_calls = calls - logs_200.len();
    let not_acked_but_received = received.difference(&acked_ids).count();
    eprintln!(
        "crash test: {TOTAL} messages; killed at {acked_at_kill} acknowledged / \
         {received_at_kill} received ({calls_at_kill} calls; {after_kill} calls when dead) after \
         {phase1:?}; {acked_before_restart} acknowledged before restart; after restart: \
         {calls} calls, {} distinct ids ({not_acked_but_received} of un-acknowledged POSTs), \
         {duplicates} duplicates, {} logs ({} with 200), {unlogged_calls} calls without a log; \
         total {:?}",
        received.len(),
        logs.len(),
        logs_200.len(),
        started.elapsed()
    );
    assert!(
        duplicates <= IN_FLIGHT_BOUND,
        "{duplicates} duplicate calls (at most {IN_FLIGHT_BOUND}: one a call slot)"
    );
    // Every call has a log: a call cut off by the kill is recorded as E_INTERRUPTED at restart.
    let interrupted = logs.iter().filter(|l| l["error_code"] == "E_INTERRUPTED").count();
    assert!(
        interrupted >= unlogged_calls,
        "{unlogged_calls} calls without their own log, {interrupted} E_INTERRUPTED logs"
    );
    assert!(logs.len() >= calls, "{} logs < {calls} calls received", logs.len());
    assert!(
        interrupted <= IN_FLIGHT_BOUND,
        "{interrupted} interrupted attempts (at most {IN_FLIGHT_BOUND}: one a call slot)"
    );
    // Duplicates only for messages whose first call could have been in flight at the kill.
    let per_id = common::count_by(
        &receiver
            .calls()
            .iter()
            .map(|c| json!({"id": c.headers["webhook-id"].to_str().unwrap()}))
            .collect::<Vec<_>>(),
        "id",
    );
    assert!(per_id.values().all(|&n| n <= 2), "a message was received more than twice");
}

/// A receiver that answers its first `answered` calls at once and holds every later one
/// past the test; counts the calls it got.
async fn holding_receiver(answered: usize) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            if seen.fetch_add(1, Ordering::SeqCst) >= answered {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            "{\"ok\":true}"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/held"), calls)
}

// kill -9 while deliveries wait in memory behind a receiver at its concurrency bound: only
// the calls that may have left the process (here: those the receiver got and holds) are
// logged E_INTERRUPTED after the restart; the deliveries still queued get no log and keep
// their attempt count. The receiver answers the first calls, so the ones it holds at the kill
// were taken from the queue as calls before them ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_logs_as_interrupted_only_the_calls_that_started() {
    const MESSAGES: usize = 40;
    const LIMIT: usize = 4;
    const ANSWERED: usize = 8;
    let (url, calls) = holding_receiver(ANSWERED).await;
    let config =
        format!("[delivery]\nper_automation_concurrency = {LIMIT}\nrequest_timeout_ms = 120000\n");
    let mut relay = Relay::start(&config);
    let automation = relay.create_automation("proc_held", &url).await;
    let automation_id = automation["id"].as_str().expect("id").to_string();
    for n in 0..MESSAGES {
        relay.send_message("proc_held", json!({ "n": n })).await;
    }
    let held = relay
        .wait_for(
            Duration::from_secs(10),
            "answered calls logged, the rest held or queued",
            || async {
                let got = calls.load(Ordering::SeqCst);
                let queued = relay.metric("hookrelay_lane_backlog").await as i64;
                let logged = relay.all_logs("&status_code=200").await.len();
                (got == ANSWERED + LIMIT && queued == (MESSAGES - got) as i64 && logged == ANSWERED)
                    .then_some(got - ANSWERED)
            },
        )
        .await;
    tokio::task::block_in_place(|| relay.kill9());
    tokio::task::block_in_place(|| relay.restart());

    // Claims are released at start, before the relay listens: these are all there will be.
    let logs = relay.all_logs("").await;
    let interrupted = logs.iter().filter(|l| l["error_code"] == "E_INTERRUPTED").count();
    assert_eq!(interrupted, held, "interrupted logs vs calls the receiver held at the kill");
    assert_eq!(logs.len(), ANSWERED + interrupted, "no other log: {logs:?}");
    let deliveries = relay.list_all(&format!("/v1/deliveries?automation_id={automation_id}")).await;
    assert_eq!(deliveries.len(), MESSAGES);
    let untouched = deliveries
        .iter()
        .filter(|d| d["attempts"] == 0 && d["last_log_id"].is_null() && d["status"] == "pending")
        .count();
    assert_eq!(untouched, MESSAGES - ANSWERED - held, "queued deliveries: no log, no attempt");
}
