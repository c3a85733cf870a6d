//! Recover jobs over the same window, started together: every delivery is re-queued and sent
//! once, and each job's numbers are its own (what it took, and how those ended).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{retries, rfc3339_ago, switchable_receiver, LOGS};

/// Deliveries to recover: more than one re-queue chunk (500), so the jobs overlap.
const N: usize = 1200;
/// Recover jobs started at once.
const JOBS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_recover_jobs_count_only_what_each_took() {
    let since = rfc3339_ago(2);
    let (receiver, failing) = switchable_receiver().await;
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
    // Whether the jobs' windows were still open together depends on scheduling; the
    // sequential test below makes one job's deliveries certainly taken again by another.

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

/// A job's deliveries taken again by a later job (they failed again) stay counted as the first
/// job's: its progress is the state of what it took, whoever re-queued it since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_job_taking_the_same_deliveries_leaves_the_first_jobs_numbers_alone() {
    const SOME: usize = 50;
    let since = rfc3339_ago(2);
    let (receiver, failing) = switchable_receiver().await;
    let relay = Relay::start(&retries(1));
    relay.create_automation("proc_again", &receiver.url("/r")).await;
    for i in 0..SOME {
        relay.send_message("proc_again", json!({ "i": i })).await;
    }
    let path = format!("{LOGS}/recover");
    let run_job = |calls_after: usize| {
        let relay = &relay;
        let (path, since, receiver) = (&path, &since, &receiver);
        async move {
            relay
                .wait_for(Duration::from_secs(30), "every delivery ended", || async {
                    let pending = relay.get_json("/v1/deliveries?status=pending&limit=1").await;
                    let none = pending["data"].as_array().is_some_and(Vec::is_empty);
                    (receiver.count() == calls_after - SOME && none).then_some(())
                })
                .await;
            let (status, job) = relay.post_json(path, &json!({ "since": since })).await;
            assert_eq!(status, 202, "{job}");
            let id = job["id"].as_str().expect("id").to_string();
            relay
                .wait_for(Duration::from_secs(30), "the job completed", || async {
                    let job = relay.get_json(&format!("{path}/{id}")).await;
                    (job["status"] == "completed" && receiver.count() == calls_after).then_some(())
                })
                .await;
            id
        }
    };
    // The first job's re-queued deliveries fail again; the second job takes them again.
    let first = run_job(2 * SOME).await;
    failing.store(false, Ordering::SeqCst);
    let second = run_job(3 * SOME).await;
    let first = relay.get_json(&format!("{path}/{first}")).await;
    let second = relay.get_json(&format!("{path}/{second}")).await;
    let n = SOME as i64;
    let number = |job: &Value, key: &str| job[key].as_i64().expect(key);
    for job in [&first, &second] {
        assert_eq!(number(job, "requeued"), n, "{job}");
        let ended = number(job, "done") + number(job, "failed") + number(job, "pending");
        assert_eq!(ended, n, "the deliveries it took are still counted as its own: {job}");
    }
    assert_eq!(number(&second, "done"), n, "{second}");
}
