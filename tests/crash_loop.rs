//! Crash loop: under continuous load, `kill -9` the relay at seeded random instants (several
//! times), restart it on the same database each time while the senders keep posting against
//! the new address, then check that nothing acknowledged was lost, every delivery succeeded,
//! every call the receivers got has a log, and duplicates stay within what could be in flight.
//! A second case kills the relay during an async workflow run: the run ends `failed` and its
//! completion webhook is sent. Replay a failure with `CRASH_LOOP_SEED=<seed printed>`.

use hookrelay_testkit as common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::crash::{self, Load, Senders};
use common::{Receiver, Relay};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Concurrent `POST /v1/messages` callers.
const SENDERS: usize = 6;
/// Kills over the run.
const KILLS: usize = 6;
/// `delivery.global_concurrency` of the relay under test.
const GLOBAL_CONCURRENCY: usize = 64;
/// `delivery.per_automation_concurrency` of the relay under test.
const PER_AUTOMATION_CONCURRENCY: usize = 64;
/// The processor both automations subscribe to.
const PROCESSOR: &str = "proc_loop";

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

/// Calls per `webhook-id` a receiver got.
fn calls_by_id(receiver: &Receiver) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for call in receiver.calls() {
        let id = call
            .headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .expect("every call carries webhook-id")
            .to_string();
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

/// Whether the delivery list filtered by `status` is empty.
async fn none_with_status(relay: &Relay, status: &str) -> bool {
    let page = relay.get_json(&format!("/v1/deliveries?status={status}&limit=1")).await;
    page["data"].as_array().expect("data").is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_kill9_under_load_loses_nothing_acknowledged() {
    let seed = crash::seed("CRASH_LOOP_SEED", "crash loop");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let receivers = [Receiver::ok().await, Receiver::ok().await];
    let mut relay = Relay::start(CONFIG);
    let mut automation_ids = Vec::new();
    for receiver in &receivers {
        let created = relay.create_automation(PROCESSOR, &receiver.url("/hook")).await;
        automation_ids.push(created["id"].as_str().expect("id").to_string());
    }

    let load = Load::new(&relay.base);
    let senders = Senders { processor: PROCESSOR, count: SENDERS, pad: 960, pause: Duration::ZERO }
        .start(&load);

    // Kill at random instants, restart after a random down time; senders keep going.
    let kill_log =
        crash::kill_loop(&mut relay, &load, &mut rng, KILLS, (400..1800, 0..300), || {
            receivers.iter().map(Receiver::count).sum()
        })
        .await;
    // Keep the load on a little after the last restart, then stop sending.
    tokio::time::sleep(Duration::from_millis(rng.random_range(300..800u64))).await;
    let acked = crash::stop(&load, senders).await;
    let acked_ids: HashSet<String> = acked.iter().cloned().collect();
    assert_eq!(acked_ids.len(), acked.len(), "message ids are unique");
    assert!(acked.len() > 100, "too little load to mean anything: {} acknowledged", acked.len());
    let calls_during_load: usize = receivers.iter().map(Receiver::count).sum();
    assert!(
        kill_log.iter().filter(|k| k.acked > 0).count() >= KILLS - 1,
        "kills happened before any load: {kill_log:?}"
    );

    // Drain: no pending delivery left (a delivery stuck claimed would stay pending).
    relay
        .wait_for(Duration::from_secs(40), "the queue to drain", || async {
            none_with_status(&relay, "pending").await.then_some(())
        })
        .await;
    // Nothing comes back later: the queue stays empty and the receivers quiet. Positive
    // control: a message sent after the drain reaches every receiver and is logged, and by
    // then the receivers have had nothing else.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quiet: usize = receivers.iter().map(Receiver::count).sum();
    let control = relay.send_message(PROCESSOR, json!({"control": true})).await;
    let control_id = control["id"].as_str().expect("message id").to_string();
    relay
        .wait_for(common::WAIT, "the control message at every receiver, logged", || async {
            let got = |r: &Receiver| {
                r.calls().iter().any(|c| c.headers["webhook-id"] == control_id.as_str())
            };
            let logs = relay.all_logs("&status_code=200").await;
            let logged = logs.iter().filter(|l| l["message_id"] == control_id.as_str()).count();
            (receivers.iter().all(got) && logged == receivers.len()).then_some(())
        })
        .await;
    let calls_now = receivers.iter().map(Receiver::count).sum::<usize>();
    assert_eq!(calls_now, quiet + receivers.len(), "calls after drain");
    assert!(none_with_status(&relay, "pending").await, "a delivery became pending after drain");
    for status in ["failed", "exhausted"] {
        assert!(none_with_status(&relay, status).await, "a delivery ended {status}");
    }

    // Every acknowledged message reached each receiver, under its own id.
    let received: Vec<HashMap<String, usize>> = receivers.iter().map(calls_by_id).collect();
    for (r, by_id) in received.iter().enumerate() {
        let ids: HashSet<String> = by_id.keys().cloned().collect();
        let missing: Vec<_> = acked_ids.difference(&ids).take(5).collect();
        assert!(missing.is_empty(), "receiver {r} never got acknowledged messages {missing:?}");
    }

    // Every call has a log: per automation and message, logs ≥ calls; a 200 for each one acked.
    let logs = relay.all_logs("").await;
    let mut logs_by_key: HashMap<(String, String), usize> = HashMap::new();
    let mut ok_by_key: HashSet<(String, String)> = HashSet::new();
    for log in &logs {
        let key = (
            log["automation_id"].as_str().expect("automation_id").to_string(),
            log["message_id"].as_str().expect("message_id").to_string(),
        );
        if log["external_request_log"]["status_code"] == 200 {
            ok_by_key.insert(key.clone());
        }
        *logs_by_key.entry(key).or_insert(0) += 1;
    }
    let calls: usize = received.iter().flat_map(|m| m.values()).sum();
    assert!(logs.len() >= calls, "{} logs < {calls} calls received", logs.len());
    for (automation, by_id) in automation_ids.iter().zip(&received) {
        for (id, &n) in by_id {
            let key = (automation.clone(), id.clone());
            let logged = logs_by_key.get(&key).copied().unwrap_or(0);
            assert!(logged >= n, "{automation}/{id}: {n} calls but {logged} logs");
            assert!(ok_by_key.contains(&key), "{automation}/{id}: received but no logged 200");
        }
        for id in &acked_ids {
            assert!(
                ok_by_key.contains(&(automation.clone(), id.clone())),
                "{automation}/{id}: acknowledged but no logged 200"
            );
        }
    }

    // Interrupted attempts: logged at restart (one timestamp per restart), each restart's
    // batch bounded by the calls that could be in flight at the kill (one a call slot).
    let bound = common::calls_in_flight_bound(
        GLOBAL_CONCURRENCY,
        PER_AUTOMATION_CONCURRENCY,
        receivers.len(),
    );
    let interrupted: Vec<&Value> =
        logs.iter().filter(|l| l["error_code"] == "E_INTERRUPTED").collect();
    let mut per_restart: HashMap<String, usize> = HashMap::new();
    for log in &interrupted {
        assert_eq!(log["external_request_log"]["status_code"], 0, "{log}");
        // request_at is the restart's time for every log it writes (created_at, the log's id,
        // moves on within the restart's write).
        let at = log["external_request_log"]["request_at"].as_str().expect("request_at");
        *per_restart.entry(at.into()).or_insert(0) += 1;
    }
    assert!(per_restart.len() <= KILLS, "interrupted logs from {} restarts", per_restart.len());
    for (at, n) in &per_restart {
        assert!(*n <= bound, "{n} interrupted attempts at the restart of {at} (bound {bound})");
    }
    // Other failures would be unexplained: the receivers always answer 200.
    let unexpected: Vec<&Value> = logs
        .iter()
        .filter(|l| {
            l["external_request_log"]["status_code"] != 200 && l["error_code"] != "E_INTERRUPTED"
        })
        .take(3)
        .collect();
    assert!(unexpected.is_empty(), "failed attempts with receivers answering 200: {unexpected:?}");

    // Duplicates: only from calls in flight at a kill, so each is matched by an interrupted
    // attempt, and a message is received at most once per kill more than once.
    let distinct: usize = received.iter().map(HashMap::len).sum();
    let duplicates = calls - distinct;
    let max_per_id = received.iter().flat_map(|m| m.values()).copied().max().unwrap_or(0);
    eprintln!(
        "crash loop summary: seed {seed}, kills {KILLS}, messages acknowledged {}, calls {calls} \
         ({calls_during_load} during load), duplicates {duplicates}, interrupted logs {} \
         (per restart {:?}), logs {}, sender connection errors {}, other answers {}, \
         most calls for one id {max_per_id}, elapsed {:?}; kills (up ms, down ms, acked, calls) \
         {kill_log:?}",
        acked.len(),
        interrupted.len(),
        {
            let mut v: Vec<usize> = per_restart.values().copied().collect();
            v.sort_unstable();
            v
        },
        logs.len(),
        load.conn_errors.load(Ordering::SeqCst),
        load.other_status.load(Ordering::SeqCst),
        started.elapsed(),
    );
    // Per message: every call past the first is explained by an interrupted attempt of it.
    let mut interrupted_by_key: HashMap<(String, String), usize> = HashMap::new();
    for log in &interrupted {
        let key = (
            log["automation_id"].as_str().expect("automation_id").to_string(),
            log["message_id"].as_str().expect("message_id").to_string(),
        );
        *interrupted_by_key.entry(key).or_insert(0) += 1;
    }
    for (automation, by_id) in automation_ids.iter().zip(&received) {
        for (id, &n) in by_id {
            let cut = interrupted_by_key.get(&(automation.clone(), id.clone())).copied();
            assert!(n <= 1 + cut.unwrap_or(0), "{automation}/{id}: {n} calls, {cut:?} interrupted");
        }
    }
    assert!(
        duplicates <= interrupted.len(),
        "{duplicates} duplicate calls but only {} interrupted attempts",
        interrupted.len()
    );
    assert!(duplicates <= KILLS * bound, "{duplicates} duplicates (bound {})", KILLS * bound);
    assert!(max_per_id <= 1 + KILLS, "a message was received {max_per_id} times");
}

const APP_ID: &str = "crashapp";
const APP_KEY: &str = "app-crashloop-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_an_async_workflow_run_fails_it_with_its_webhook() {
    let seed = crash::seed("CRASH_LOOP_SEED", "workflow crash");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (slow_url, slow_calls) = common::slow::slow_receiver(Duration::from_secs(2)).await;
    let app = format!(
        "{CONFIG}\n[[apps]]\nid = \"{APP_ID}\"\nname = \"Crash app\"\napi_keys = [\"{APP_KEY}\"]\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
         [[apps.nodes]]\nid = \"call\"\ntype = \"http-request\"\nurl = \"{slow_url}\"\n\
         [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\n\
         outputs = [{{ variable = \"status\", value_selector = [\"call\", \"status_code\"] }}]\n\
         [[apps.edges]]\nsource = \"start\"\ntarget = \"call\"\n\
         [[apps.edges]]\nsource = \"call\"\ntarget = \"end\"\n"
    );
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start(&app);
    relay.create_automation(APP_ID, &receiver.url("/wf")).await;
    let client = common::client();
    let detail = |base: String, id: String| {
        let client = client.clone();
        async move {
            let resp = client
                .get(format!("{base}/v1/workflows/run/{id}"))
                .bearer_auth(APP_KEY)
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.expect("json")
        }
    };

    // Starts an async run for `user`; its id.
    let start_run = |base: String, user: &'static str| {
        let client = client.clone();
        async move {
            let resp = client
                .post(format!("{base}/v1/workflows/run"))
                .bearer_auth(APP_KEY)
                .json(&json!({"inputs": {}, "user": user, "response_mode": "async"}))
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 202, "{body}");
            body["workflow_run_id"].as_str().expect("workflow_run_id").to_string()
        }
    };

    let run_id = start_run(relay.base.clone(), "u-crash").await;
    relay
        .wait_for(Duration::from_secs(10), "the http node's call", || async {
            (slow_calls.load(Ordering::SeqCst) > 0).then_some(())
        })
        .await;
    // Kill at a random instant while the node waits for its 2 s answer.
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..1200u64))).await;
    assert_eq!(detail(relay.base.clone(), run_id.clone()).await["status"], "running");
    assert_eq!(receiver.count(), 0, "no completion before the kill");
    tokio::task::block_in_place(|| relay.kill9());
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| relay.restart());

    let after = detail(relay.base.clone(), run_id.clone()).await;
    assert_eq!(after["status"], "failed", "{after}");
    let calls = relay
        .wait_for(Duration::from_secs(10), "the run's completion webhook", || async {
            let calls = receiver.calls();
            (!calls.is_empty()).then_some(calls)
        })
        .await;
    let hook: Value = serde_json::from_slice(&calls[0].body).expect("webhook body is JSON");
    assert_eq!(hook["metadata"]["status"], "failed", "{hook}");
    assert_eq!(hook["metadata"]["workflow_run_id"], run_id.as_str(), "{hook}");
    // Settles: still failed, one webhook, the node not called again. Positive control: a run
    // started after the restart calls the node (2 s) and sends its webhook; by then a re-run
    // of the interrupted one, which would start at the restart, would have done both too.
    let control_id = start_run(relay.base.clone(), "u-control").await;
    let calls = relay
        .wait_for(Duration::from_secs(10), "the control run's webhook", || async {
            let calls = receiver.calls();
            let body = |c: &common::Received| serde_json::from_slice::<Value>(&c.body).ok();
            let done = calls
                .iter()
                .filter_map(body)
                .any(|hook| hook["metadata"]["workflow_run_id"] == control_id.as_str());
            done.then_some(calls)
        })
        .await;
    assert_eq!(detail(relay.base.clone(), run_id.clone()).await["status"], "failed");
    assert_eq!(calls.len(), 2, "exactly one completion webhook a run");
    assert_eq!(slow_calls.load(Ordering::SeqCst), 2, "the interrupted run is not re-run");
    eprintln!("workflow crash: run {run_id} failed after kill -9, webhook received");
}
