//! What the server says about itself while it works: failed attempts and exhausted
//! deliveries in its log, rate-limited per automation; error answers at a level by whose
//! fault they are; per-automation attempt metrics with a bounded label set.

use hookrelay_testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::{Receiver, Relay, FAST_RETRIES};
use serde_json::json;

/// A receiver answering 500 to everything.
async fn failing_receiver() -> Receiver {
    Receiver::with(Arc::new(|_| (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response())).await
}

/// The value of `field=` in a text log line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split(' ').next()
}

/// Lines of `log` at `level` that mention `automation`.
fn lines_about<'a>(log: &'a str, level: &str, automation: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(level) && l.contains(automation)).collect()
}

/// Failed attempts seen in the log for `automation`: lines about one attempt, plus the counts
/// of the summary lines; and the exhausted deliveries among them.
fn failures_logged(log: &str, automation: &str) -> (u64, u64) {
    let (mut failed, mut exhausted) = (0, 0);
    for line in lines_about(log, "WARN", automation) {
        if let Some((_, rest)) = line.split_once("WARN") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let Some(at) = words.iter().position(|w| *w == "more") {
                failed += words[at - 1].parse::<u64>().expect("a count before 'more'");
                exhausted +=
                    field(line, "exhausted").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
                continue;
            }
        }
        failed += 1;
        exhausted += u64::from(line.contains("delivery exhausted"));
    }
    (failed, exhausted)
}

/// 20 deliveries to an always-failing receiver make 80 failed attempts in about 2 s: the log
/// gets a handful of lines for that automation, every attempt counted in them, each detailed
/// line naming the automation, code, status, delivery, attempt and next attempt, and every
/// exhausted delivery accounted for. Another automation failing meanwhile gets its own line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_logged_at_most_once_per_interval_per_automation() {
    let receiver = failing_receiver().await;
    let config = format!("{FAST_RETRIES}failure_log_interval_ms = 1000\n");
    let relay = Relay::start_capturing_log(&config, &[]);
    let flood = relay.create_automation("proc_flood", &receiver.url("/flood")).await;
    let flood = flood["id"].as_str().expect("id").to_string();
    let other = relay.create_automation("proc_other", &receiver.url("/other")).await;
    let other = other["id"].as_str().expect("id").to_string();
    let started = Instant::now();
    for n in 0..20 {
        relay.send_message("proc_flood", json!({"n": n})).await;
    }
    relay.send_message("proc_other", json!({"n": 0})).await;

    // 4 attempts each (FAST_RETRIES), all counted once every window is summed up.
    let log = relay
        .wait_for(Duration::from_secs(15), "every failed attempt in the log", || async {
            let log = relay.log();
            (failures_logged(&log, &flood).0 >= 80 && failures_logged(&log, &other).0 >= 4)
                .then_some(log)
        })
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(failures_logged(&log, &flood), (80, 20), "{log}");
    assert_eq!(failures_logged(&log, &other), (4, 1), "{log}");

    let lines = lines_about(&log, "WARN", &flood);
    let most = 2 * (elapsed.ceil() as usize + 1);
    assert!(lines.len() <= most, "{} lines in {elapsed:.1} s (at most {most}): {log}", lines.len());
    let first = lines.iter().find(|l| l.contains("retry scheduled")).expect("a detailed line");
    assert_eq!(field(first, "automation"), Some(flood.as_str()), "{first}");
    assert_eq!(field(first, "code"), Some("E_HTTP_STATUS"), "{first}");
    assert_eq!(field(first, "status"), Some("500"), "{first}");
    assert!(field(first, "delivery").is_some_and(|d| d.starts_with("dlv_")), "{first}");
    assert_eq!(field(first, "attempt"), Some("1"), "{first}");
    assert!(field(first, "next_attempt_at").is_some_and(|t| t.ends_with('Z')), "{first}");
    let summary = lines.iter().find(|l| l.contains(" more failed attempts")).expect("a summary");
    assert!(summary.contains("(codes E_HTTP_STATUS x"), "{summary}");
    assert!(!lines_about(&log, "WARN", &other).is_empty(), "{log}");
}

/// A call cut short by a kill is logged E_INTERRUPTED at the next start, and the server says
/// so once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cut_short_by_a_kill_are_reported_at_the_next_start() {
    let (slow, calls) = common::slow::slow_receiver(Duration::from_secs(5)).await;
    let mut relay = Relay::start_capturing_log("", &[]);
    relay.create_automation("proc_cut", &slow).await;
    relay.send_message("proc_cut", json!({})).await;
    relay
        .wait_for(Duration::from_secs(5), "the call to start", || async {
            (calls.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
        })
        .await;
    relay.restart();
    let line = relay
        .wait_for(Duration::from_secs(5), "the start-up warning", || async {
            let log = relay.log();
            log.lines().find(|l| l.contains("E_INTERRUPTED")).map(String::from)
        })
        .await;
    assert!(line.contains("WARN") && field(&line, "calls") == Some("1"), "{line}");
}

/// A client's mistake (409, 404) is logged at DEBUG only; a refusal for want of capacity
/// (503) at WARN, each once, with its code; a not-ready `/readyz` is no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_log_at_debug_and_refusals_at_warn() {
    let (slow, _) = common::slow::slow_receiver(Duration::from_millis(3000)).await;
    let config = "[delivery]\nper_automation_concurrency = 1\ncall_slot_wait_ms = 100\n";
    let relay = Relay::start_capturing_log(config, &[("RUST_LOG", "debug")]);
    let automation = relay.create_automation("proc_busy", &slow).await;
    let id = automation["id"].as_str().expect("id");
    let keyed = |payload| {
        relay
            .req(reqwest::Method::POST, "/v1/messages")
            .header("Idempotency-Key", "k-409")
            .json(&json!({"processor_id": "proc_busy", "payload": payload}))
    };
    assert_eq!(keyed(json!({"n": 1})).send().await.expect("send").status(), 202);
    assert_eq!(keyed(json!({"n": 2})).send().await.expect("send").status(), 409);
    let missing = relay.req(reqwest::Method::GET, "/v1/deliveries/dlv_missing");
    assert_eq!(missing.send().await.expect("send").status(), 404);
    // The delivery holds the automation's one slot for 3 s: a test call finds none in 100 ms.
    let test_call = format!("/v1/processors/automations/tests/webhook/{id}");
    let busy = relay.wait_for(Duration::from_secs(10), "a 503", || async {
        let r = relay.req(reqwest::Method::POST, &test_call).send().await.expect("send");
        (r.status() == 503).then_some(())
    });
    busy.await;

    let log = relay
        .wait_for(Duration::from_secs(5), "the 503 in the log", || async {
            let log = relay.log();
            log.contains("code=concurrency_limit").then_some(log)
        })
        .await;
    let answered = |status: &str| -> Vec<String> {
        let status = format!("status={status}");
        log.lines()
            .filter(|l| l.contains("answered") && l.contains(&status))
            .map(String::from)
            .collect()
    };
    let conflict = answered("409");
    assert!(conflict.len() == 1 && conflict[0].contains("DEBUG"), "{log}");
    assert_eq!(field(&conflict[0], "code"), Some("idempotency_key_reused"));
    let not_found = answered("404");
    assert!(not_found.len() == 1 && not_found[0].contains("DEBUG"), "{log}");
    let unavailable = answered("503");
    assert!(unavailable.iter().all(|l| l.contains("WARN")), "{log}");
    assert_eq!(field(&unavailable[0], "code"), Some("concurrency_limit"));
    assert!(!log.contains("ERROR"), "{log}");
    for line in log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")) {
        assert!(!line.contains("status=409") && !line.contains("status=404"), "{line}");
    }
}

/// Parses `hookrelay_automation_attempts_total{automation="…",outcome="…"} N` lines.
fn automation_attempts(metrics: &str) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("hookrelay_automation_attempts_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").expect("labels and value");
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
            labels[start..].split('"').next().expect("closing quote").to_string()
        };
        out.insert((label("automation"), label("outcome")), value.parse().expect("value"));
    }
    out
}

/// `/metrics` with the admin key, which the series naming automations need.
async fn scrape(relay: &Relay) -> String {
    let r = relay.req(reqwest::Method::GET, "/metrics").send().await.expect("metrics");
    r.text().await.expect("text")
}

/// With `automation_labels = 2` and four automations, two get series of their own and the
/// others count under `_other`; every attempt is counted once; exhausted deliveries have their
/// counter; a deleted automation's series go and its place is taken; the oldest due delivery's
/// age shows while a delivery waits behind a busy automation. Automation ids are shown only to
/// a scrape with the admin key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_per_automation_are_counted_with_a_bounded_label_set() {
    let ok = Receiver::ok().await;
    let failing = failing_receiver().await;
    let (slow, _) = common::slow::slow_receiver(Duration::from_millis(2500)).await;
    // FAST_RETRIES, with room for the slow receiver's answer.
    let config = "[delivery]\ninitial_backoff_ms = 200\nbackoff_multiplier = 2.0\nmax_attempts = 4\n\
                  poll_interval_ms = 50\nrequest_timeout_ms = 5000\nper_automation_concurrency = 1\n\
                  [metrics]\nautomation_labels = 2\n";
    let relay = Relay::start(config);
    let mut ids = Vec::new();
    for (processor, url) in [
        ("p_a", ok.url("/a")),
        ("p_b", ok.url("/b")),
        ("p_c", failing.url("/c")),
        ("p_d", ok.url("/d")),
    ] {
        let automation = relay.create_automation(processor, &url).await;
        ids.push(automation["id"].as_str().expect("id").to_string());
        relay.send_message(processor, json!({})).await;
        // One after the other, so the first two seen are a and b.
        relay
            .wait_for(Duration::from_secs(10), "the first attempt", || async {
                let attempts = automation_attempts(&scrape(&relay).await);
                (attempts.values().sum::<f64>() as usize >= ids.len()).then_some(())
            })
            .await;
    }
    let (a, b) = (&ids[0], &ids[1]);
    relay.send_message("p_d", json!({"again": 1})).await;
    let attempts = relay
        .wait_for(Duration::from_secs(10), "c exhausted", || async {
            let attempts = automation_attempts(&scrape(&relay).await);
            let key = ("_other".to_string(), "exhausted".to_string());
            (attempts.get(&key) == Some(&1.0) && attempts.values().sum::<f64>() >= 8.0)
                .then_some(attempts)
        })
        .await;
    let labels: BTreeSet<&str> = attempts.keys().map(|(a, _)| a.as_str()).collect();
    assert_eq!(labels, BTreeSet::from([a.as_str(), b.as_str(), "_other"]), "{attempts:?}");
    let get = |automation: &str, outcome: &str| {
        attempts.get(&(automation.to_string(), outcome.to_string())).copied().unwrap_or(-1.0)
    };
    assert_eq!(get(a, "succeeded"), 1.0);
    assert_eq!(get(b, "succeeded"), 1.0);
    assert_eq!(get(a, "retry_scheduled"), 0.0, "every outcome shows from 0");
    assert_eq!(get("_other", "succeeded"), 2.0, "d's two deliveries");
    assert_eq!(get("_other", "retry_scheduled"), 3.0, "c's first three attempts");
    assert_eq!(relay.metric("hookrelay_deliveries_exhausted_total").await, 1.0);
    let public = common::client().get(relay.url("/metrics")).send().await.expect("metrics");
    let public = public.text().await.expect("text");
    assert!(public.contains("hookrelay_deliveries_exhausted_total 1"), "{public}");
    assert!(!public.contains(a.as_str()), "no automation id without a key: {public}");
    assert_eq!(relay.metric("hookrelay_oldest_due_delivery_age_seconds").await, 0.0);

    let deleted =
        relay.req(reqwest::Method::DELETE, &format!("/v1/processors/automations/endpoints/{a}"));
    assert!(deleted.send().await.expect("delete").status().is_success());
    let attempts = automation_attempts(&scrape(&relay).await);
    assert!(attempts.keys().all(|(automation, _)| automation != a), "{attempts:?}");
    let slow_automation = relay.create_automation("p_slow", &slow).await;
    let slow_id = slow_automation["id"].as_str().expect("id").to_string();
    relay.send_message("p_slow", json!({"n": 1})).await;
    relay.send_message("p_slow", json!({"n": 2})).await;
    // The second waits behind the first (one call at a time) for 2.5 s.
    let age = relay
        .wait_for(Duration::from_secs(5), "an oldest due age", || async {
            let age = relay.metric("hookrelay_oldest_due_delivery_age_seconds").await;
            (age >= 1.0).then_some(age)
        })
        .await;
    assert!(age < 5.0, "{age}");
    let attempts = relay
        .wait_for(Duration::from_secs(10), "the slow automation's attempts", || async {
            let attempts = automation_attempts(&scrape(&relay).await);
            let key = (slow_id.clone(), "succeeded".to_string());
            (attempts.get(&key) == Some(&2.0)).then_some(attempts)
        })
        .await;
    let labels: BTreeSet<&str> = attempts.keys().map(|(a, _)| a.as_str()).collect();
    assert_eq!(labels, BTreeSet::from([b.as_str(), slow_id.as_str(), "_other"]), "a's place taken");
}
