//! Recover jobs over the same window, started together: every delivery is re-queued and sent
//! once, and each job's numbers are its own (what it took, and how those ended).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{retries, rfc3339_ago, LOGS};

/// Deliveries to recover: more than one re-queue chunk (500), so the jobs overlap.
const N: usize = 1200;
/// Recover jobs started at once.
const JOBS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recover_jobs_count_only_what_each_took() {
    let since = rfc3339_ago(2);
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let receiver = Receiver::with(Arc::new(move |_| {
        if flag.load(Ordering::SeqCst) {
            (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"down\"}").into_response()
        } else {
            (StatusCode::OK, "{\"ok\":true}").into_response()
        }
    }))
    .await;
    let relay = Arc::new(Relay::start(&retries(1)));
    relay.create_automation("proc_many", &receiver.url("/r")).await;
    let senders: Vec<_> = (0..8)
        .map(|s| {
            let relay = relay.clone();
            tokio::spawn(async move {
                for i in (s..N).step_by(8) {
                    relay.send_message("proc_many", json!({ "i": i })).await;
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
    relay
        .wait_for(Duration::from_secs(30), "every delivery exhausted", || async {
            let pending = relay.get_json("/v1/deliveries?status=pending&limit=1").await;
            let none = pending["data"].as_array().is_some_and(Vec::is_empty);
            (receiver.count() == N && none).then_some(())
        })
        .await;
    failing.store(false, Ordering::SeqCst);

    let path = format!("{LOGS}/recover");
    let body = json!({ "since": since });
    let created =
        futures_util::future::join_all((0..JOBS).map(|_| relay.post_json(&path, &body))).await;
    let ids: Vec<String> = created
        .iter()
        .map(|(status, job)| {
            assert_eq!(*status, 202, "{job}");
            job["id"].as_str().expect("id").to_string()
        })
        .collect();
    let matched: i64 = created.iter().map(|(_, job)| job["total"].as_i64().expect("total")).sum();
    assert!(matched > N as i64, "the jobs overlap: {created:?}");

    let jobs: Vec<Value> = relay
        .wait_for(Duration::from_secs(30), "every job completed", || async {
            let mut jobs = Vec::new();
            for id in &ids {
                jobs.push(relay.get_json(&format!("{path}/{id}")).await);
            }
            jobs.iter().all(|j| j["status"] == "completed").then_some(jobs)
        })
        .await;
    let number = |job: &Value, key: &str| job[key].as_i64().expect(key);
    for job in &jobs {
        let requeued = number(job, "requeued");
        let ended = number(job, "done") + number(job, "failed") + number(job, "pending");
        assert_eq!(ended, requeued, "done + failed + pending = requeued: {job}");
        assert_eq!(number(job, "total"), requeued, "a completed job took all it counts: {job}");
    }
    let requeued: i64 = jobs.iter().map(|j| number(j, "requeued")).sum();
    let done: i64 = jobs.iter().map(|j| number(j, "done")).sum();
    assert_eq!(requeued, N as i64, "each delivery re-queued by one job: {jobs:?}");
    assert_eq!(done, N as i64, "each delivery delivered once: {jobs:?}");
    assert_eq!(receiver.count(), 2 * N, "nothing sent twice");
}
