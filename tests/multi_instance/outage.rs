//! The database going away and coming back under two instances: meanwhile every request is
//! answered 503 `unavailable` (never a 500, never later than the API's timeout) and the
//! processes stay up; once it is back both are ready again, both still alive to each other
//! (neither took the other over for the silence the outage caused), and every message
//! acknowledged before, during or after the outage is delivered.
//!
//! It stops a cluster: a `PrivateCluster` of its own, so no other test's server goes away.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_postgres::NoTls;

use crate::common::instances::PrivateCluster;
use crate::common::{self, Relay, ENDPOINTS, KEY};
use crate::receiver::Timed;

/// Messages acknowledged before the outage: their first call fails (503), the retry is due
/// [`HELD`] later, after the database went away.
const BEFORE: &str = "proc_before";
/// Messages posted during and after the outage.
const AFTER: &str = "proc_after";
/// The retry delay of the messages acknowledged before the outage.
const HELD: Duration = Duration::from_secs(20);
/// Longer than the 10 s after which an instance whose heartbeat stopped counts as dead: the
/// outage stops every instance's heartbeat at once.
const OUTAGE: Duration = Duration::from_secs(13);
/// The API's timeout: `delivery.request_timeout_ms` (2 s) + 15 s.
const API_TIMEOUT: Duration = Duration::from_secs(17);
/// How long a receiver takes to answer.
const HELD_CALL: Duration = Duration::from_millis(2);

const CONFIG: &str = r#"
[delivery]
poll_interval_ms = 50
initial_backoff_ms = 20000
backoff_multiplier = 1.0
max_backoff_ms = 20000
backoff_jitter = 0.0
max_attempts = 50
request_timeout_ms = 2000
connect_timeout_ms = 1000
"#;

/// Posts one message through `relay`: the message id when acknowledged, else the status and
/// body (a refusal must be a 503 `unavailable`, given within the API's timeout).
async fn post(relay: &Relay, processor: &str, n: usize) -> Result<String, (u16, Value)> {
    let started = Instant::now();
    let resp = relay
        .req(reqwest::Method::POST, "/v1/messages")
        .timeout(API_TIMEOUT + Duration::from_secs(5))
        .json(&json!({"processor_id": processor, "payload": {"n": n}}))
        .send()
        .await
        .expect("an answer, not a hang");
    assert!(started.elapsed() <= API_TIMEOUT, "answered after {:?}", started.elapsed());
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match status {
        202 => Ok(body["id"].as_str().expect("id").to_string()),
        _ => Err((status, body)),
    }
}

/// Asserts a refusal during the outage: 503 `unavailable`.
fn unavailable(what: &str, (status, body): &(u16, Value)) {
    assert_eq!(*status, 503, "{what}: {body}");
    assert_eq!(body["code"], "unavailable", "{what}: {body}");
}

/// The instances registered in `url`'s database.
async fn instances(url: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.query_one("SELECT count(*) FROM instances", &[]).await.expect("count").get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_ride_out_the_database_going_away() {
    if crate::server().is_none() {
        return;
    }
    let began = Instant::now();
    let cluster = tokio::task::block_in_place(PrivateCluster::start);
    // The cluster's own database: the cluster is this test's alone, and dropped with it.
    let url = cluster.url.clone();
    let (held, ok) = (Timed::start(HELD_CALL, true).await, Timed::start(HELD_CALL, false).await);
    let relays: Vec<Relay> =
        (0..2).map(|_| Relay::start_with_database(Path::new(&url), CONFIG)).collect();
    relays[0].create_automation(BEFORE, &held.url).await;
    relays[0].create_automation(AFTER, &ok.url).await;
    let mut before = Vec::new();
    let first_posted = Instant::now();
    for n in 0..20 {
        before.push(post(&relays[n % 2], BEFORE, n).await.expect("acknowledged before"));
    }
    // Each first call failed and is logged: the retries wait, none in flight at the stop.
    relays[1].wait_logs_exactly("status_code=503", before.len()).await;
    tokio::task::block_in_place(|| cluster.stop());
    let stopped = Instant::now();
    assert!(first_posted.elapsed() < HELD, "stopped before the first retry was due");
    let (mut refused, mut n, mut after) = (0, 1000, Vec::new());
    while stopped.elapsed() < OUTAGE {
        for relay in &relays {
            match post(relay, AFTER, n).await {
                // Taken before the server went (a connection that was still open).
                Ok(id) => after.push(id),
                Err(refusal) => {
                    unavailable("POST /v1/messages", &refusal);
                    refused += 1;
                }
            }
            n += 1;
            let list = relay.req(reqwest::Method::GET, ENDPOINTS).send().await.expect("list");
            let (status, body) =
                (list.status().as_u16(), list.json::<Value>().await.expect("json"));
            unavailable("GET endpoints", &(status, body));
            let ready = common::client().get(relay.url("/readyz")).send().await.expect("readyz");
            assert_eq!(ready.status(), 503, "not ready without the database");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refused > 0, "the outage refused messages");
    tokio::task::block_in_place(|| cluster.start_again());
    let back = Instant::now();

    for relay in &relays {
        relay
            .wait_for(Duration::from_secs(30), "/readyz after the outage", || async {
                let ready = common::client().get(relay.url("/readyz")).send().await.ok()?;
                (ready.status() == 200).then_some(())
            })
            .await;
    }
    let ready_in = back.elapsed();
    for n in 0..40 {
        after.push(post(&relays[n % 2], AFTER, 2000 + n).await.expect("acknowledged after"));
    }

    // The held messages once each more (their retry, after the outage), the others once.
    let deadline = Instant::now() + Duration::from_secs(40);
    let answered = |receiver: &Timed| -> HashMap<String, Vec<Instant>> {
        let mut by_id: HashMap<String, Vec<Instant>> = HashMap::new();
        for call in receiver.calls() {
            by_id.entry(call.id).or_default().push(call.start);
        }
        by_id
    };
    let (held_calls, ok_calls) = loop {
        let (h, o) = (answered(&held), answered(&ok));
        let done = before.iter().all(|id| h.get(id).is_some_and(|c| c.len() >= 2))
            && after.iter().all(|id| o.contains_key(id));
        if done || Instant::now() > deadline {
            break (h, o);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for id in &before {
        let calls = held_calls.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(calls.len(), 2, "{id}: acknowledged before the outage: the 503 and one retry");
        assert!(calls.iter().max().is_some_and(|t| *t > back), "{id}: retried after the outage");
    }
    for id in &after {
        let calls = ok_calls.get(id).map_or(0, Vec::len);
        assert_eq!(calls, 1, "{id}: acknowledged during or after the outage: one call");
    }
    let acked: Vec<&String> = before.iter().chain(&after).collect();
    for relay in &relays {
        let logs = relay.all_logs("status_code=200").await;
        let logged: HashSet<&str> = logs.iter().filter_map(|l| l["message_id"].as_str()).collect();
        assert!(acked.iter().all(|id| logged.contains(id.as_str())), "a delivery without its log");
        let interrupted = relay.all_logs("error_code=E_INTERRUPTED").await;
        assert!(interrupted.is_empty(), "no call was in flight: {interrupted:?}");
        // KEY: the relay still serves authenticated reads.
        let list = relay.req(reqwest::Method::GET, ENDPOINTS).header("Api-Key", KEY);
        assert_eq!(list.send().await.expect("list").status(), 200);
    }
    // Neither instance took the other over for a silence that was the database's.
    assert_eq!(instances(&url).await, 2, "both instances still registered");
    eprintln!(
        "outage: {} acknowledged ({} before), {refused} refused with 503 during {OUTAGE:?}, ready again \
         {ready_in:?} after the restart, all in {:?}",
        acked.len(),
        before.len(),
        began.elapsed()
    );
    drop(relays);
}
