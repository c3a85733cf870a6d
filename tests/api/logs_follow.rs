//! Following the logs list with `order=asc&after=<last id seen>` while calls are being
//! logged sees every log: a log's id is taken in the write that records it, so ids appear
//! to readers in commit order and nothing can commit below a cursor already handed out.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::common::{self, slow::slow_receiver, Receiver, Relay};
use crate::helpers::{ids_of, LOGS};

/// How long messages are sent for.
const LOAD: Duration = Duration::from_secs(6);
/// Concurrent senders.
const SENDERS: usize = 4;
/// Automations of each kind (quick, slow, failing 40 % of the time) every message goes to.
const EACH: usize = 8;

/// Follows the list from the start until `stop` is set and it has caught up with the last
/// id the final walk found; returns every id seen, in the order seen.
async fn follow(
    relay: Arc<Relay>,
    stop: Arc<AtomicBool>,
    last: Arc<std::sync::Mutex<String>>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = relay.get_json(&format!("{LOGS}?order=asc&limit=100{cursor}")).await;
        let ids = ids_of(page["data"].as_array().expect("data"));
        if let Some(newest) = ids.last() {
            cursor = format!("&after={newest}");
        }
        let caught_up = ids.is_empty() && {
            let last = last.lock().expect("lock");
            stop.load(Ordering::SeqCst) && !last.is_empty() && seen.last() >= Some(&*last)
        };
        seen.extend(ids);
        if caught_up {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn following_the_logs_with_after_under_load_misses_none() {
    let ok = Receiver::ok().await;
    let flaky = Receiver::with(Arc::new(|n| {
        if n % 5 < 2 {
            (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
        } else {
            (StatusCode::OK, "{\"ok\":true}").into_response()
        }
    }))
    .await;
    let (slow_url, _) = slow_receiver(Duration::from_millis(200)).await;
    // More runtime threads than this machine has cores: the relay of a bigger host, whose
    // calls end and get recorded truly in parallel.
    let env = [("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true"), ("TOKIO_WORKER_THREADS", "8")];
    let relay = Arc::new(Relay::start_with_env(common::FAST_RETRIES, &env));
    for _ in 0..EACH {
        relay.create_automation("proc_follow", &ok.url("/ok")).await;
        relay.create_automation("proc_follow", &flaky.url("/flaky")).await;
        relay.create_automation("proc_follow", &slow_url).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(std::sync::Mutex::new(String::new()));
    let follower = tokio::spawn(follow(relay.clone(), stop.clone(), last.clone()));
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let relay = relay.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while started.elapsed() < LOAD {
                    relay.send_message("proc_follow", json!({"sender": s, "n": n})).await;
                    n += 1;
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }

    // Once the load has stopped, the whole list is what the follower must have seen.
    let all = ids_of(&relay.all_logs("").await);
    assert!(all.len() > 200, "too little load to show anything: {} logs", all.len());
    *last.lock().expect("lock") = all.last().expect("logs").clone();
    stop.store(true, Ordering::SeqCst);
    let seen = tokio::time::timeout(Duration::from_secs(10), follower)
        .await
        .expect("the follower catches up")
        .expect("follower");
    let seen_set: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen_set.len(), seen.len(), "the follower saw a log twice");
    let missed: Vec<&String> = all.iter().filter(|id| !seen_set.contains(id)).collect();
    assert!(
        missed.is_empty(),
        "the follower never saw {} of {} logs, e.g. {:?}",
        missed.len(),
        all.len(),
        &missed[..missed.len().min(5)]
    );
}
