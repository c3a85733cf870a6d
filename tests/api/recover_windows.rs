//! Issue 10, item 4: recover windows and jobs. `since`/`until` take durations back from now
//! (`90s`, `30m`, `1h`, `2d`) besides RFC 3339 and Unix seconds; nonsense (negative,
//! unparseable, in the future, until not after since, before 2000) is a 400 naming the
//! field; jobs are listed newest first in cursor pages; and a job explains deliveries of its
//! window that are still retrying (not recoverable yet) instead of a bare `total: 0`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay};
use crate::helpers::{assert_error, retries, send_ok, WAIT};

const RECOVER: &str = "/v1/processors/automations/logs/recover";

fn ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339").timestamp_millis()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn recover(relay: &Relay, body: Value) -> Value {
    let (status, job) = relay.post_json(RECOVER, &body).await;
    assert_eq!(status, 202, "{body}: {job}");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_takes_durations_back_from_now_and_refuses_nonsense_naming_the_field() {
    let receiver = Receiver::failing_first(3, 500).await;
    let relay = Relay::start(&retries(1));
    relay.create_automation("proc_window", &receiver.url("/w")).await;
    for n in 0..3 {
        relay.send_message("proc_window", json!({"n": n})).await;
    }
    relay
        .wait_for(WAIT, "3 exhausted deliveries", || async {
            let page = relay.get_json("/v1/deliveries?status=exhausted").await;
            (page["data"].as_array().map_or(0, Vec::len) == 3).then_some(())
        })
        .await;

    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    for (body, field) in [
        (json!({"since": "-1h"}), "since"),
        (json!({"since": "1x"}), "since"),
        (json!({"since": "1.5h"}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": "0"}), "since"),
        (json!({"since": "3600"}), "since"),
        (json!({"since": "100000d"}), "since"),
        (json!({"since": "2099-01-01T00:00:00Z"}), "since"),
        (json!({"since": in_an_hour}), "since"),
        (json!({"since": "1h", "until": "-5m"}), "until"),
        (json!({"since": "1h", "until": "2h"}), "until"),
        (json!({"since": "1h", "until": "1h"}), "until"),
        (json!({"since": "1h", "until": "soon"}), "until"),
        (json!({"since": "1h", "until": in_an_hour}), "until"),
    ] {
        let r = send_ok(&relay, Method::POST, RECOVER, Some(body.to_string())).await;
        assert_error(&r, 400, field, &format!("recover {body}"));
        assert_eq!(r.body["field"], field, "{body}: {}", r.text);
    }
    assert_eq!(receiver.count(), 3, "a refused window re-queued something");

    // A window ending before the deliveries ended matches nothing; "1h" matches them all.
    let job = recover(&relay, json!({"since": "2d", "until": "30m"})).await;
    assert_eq!(job["total"], 0, "{job}");
    assert!((ms(&job["until"]) - (now_ms() - 1_800_000)).abs() < 5_000, "{job}");
    let job = recover(&relay, json!({"since": "1h", "until": "0s"})).await;
    assert_eq!(job["total"], 3, "{job}");
    assert!((ms(&job["since"]) - (now_ms() - 3_600_000)).abs() < 5_000, "{job}");
    let id = job["id"].as_str().expect("id").to_string();
    let done = relay
        .wait_for(WAIT, "the recover job", || async {
            let j = relay.get_json(&format!("{RECOVER}/{id}")).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    assert_eq!(done["done"], 3, "{done}");
    assert_eq!(done["still_retrying"], 0, "{done}");
    assert!(done["note"].is_null(), "{done}");
    assert_eq!(receiver.count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_jobs_are_listed_newest_first_in_cursor_pages() {
    let relay = Relay::start("");
    let mut ids = Vec::new();
    for since in ["1h", "2h", "3h"] {
        ids.push(
            recover(&relay, json!({"since": since})).await["id"].as_str().expect("id").to_string(),
        );
    }
    let page = relay.get_json(&format!("{RECOVER}?limit=2")).await;
    let listed: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|j| j["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()], "{page}");
    assert_eq!(page["object"], "list");
    assert_eq!(page["data"][0]["object"], "recover_job", "{page}");
    assert_eq!(page["data"][0]["status"], "completed", "{page}");
    assert_eq!(page["list_metadata"]["after"], ids[1].as_str(), "{page}");
    let next = relay.get_json(&format!("{RECOVER}?limit=2&after={}", ids[1])).await;
    assert_eq!(next["data"].as_array().expect("data").len(), 1, "{next}");
    assert_eq!(next["data"][0]["id"], ids[0].as_str(), "{next}");
    assert!(next["list_metadata"]["after"].is_null(), "{next}");
    let asc = relay.get_json(&format!("{RECOVER}?order=asc")).await;
    assert_eq!(asc["data"][0]["id"], ids[0].as_str(), "{asc}");

    for (query, field) in
        [("limit=0", "limit"), ("after=log_auto_x", "after"), ("order=new", "order")]
    {
        let r = send_ok(&relay, Method::GET, &format!("{RECOVER}?{query}"), None).await;
        assert_error(&r, 400, field, query);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recover_over_deliveries_still_retrying_says_when_they_can_be_recovered() {
    let receiver = Receiver::failing_first(usize::MAX, 500).await;
    // Retries 10 minutes away (the cap too: FAST_RETRIES caps them at 2 s, which a loaded
    // machine reached before the test's last check, and the retries were counted).
    let slow = common::FAST_RETRIES
        .replace("initial_backoff_ms = 200", "initial_backoff_ms = 600000")
        .replace("max_backoff_ms = 2000", "max_backoff_ms = 600000");
    let relay = Relay::start(&format!("{slow}max_age_secs = 3600\n"));
    let automation = relay.create_automation("proc_retrying", &receiver.url("/r")).await;
    relay.send_message("proc_retrying", json!({"n": 1})).await;
    relay.send_message("proc_retrying", json!({"n": 2})).await;
    relay.wait_logs_exactly("", 2).await;
    let pending = relay.get_json("/v1/deliveries?status=pending").await;
    let pending = pending["data"].as_array().expect("data").clone();
    assert_eq!(pending.len(), 2, "{pending:?}");
    let next = pending.iter().map(|d| ms(&d["next_attempt_at"])).min().expect("next");
    let newest = pending.iter().map(|d| ms(&d["created_at"])).max().expect("newest");

    let job = recover(&relay, json!({"since": "1h"})).await;
    assert_eq!(job["total"], 0, "{job}");
    assert_eq!(job["still_retrying"], 2, "{job}");
    assert_eq!(ms(&job["next_retry_at"]), next, "{job}");
    assert_eq!(ms(&job["retrying_until"]), newest + 3_600_000, "{job}");
    let note = job["note"].as_str().expect("a note");
    for words in ["2 deliveries", "still retrying", "matched nothing"] {
        assert!(note.contains(words), "{note}");
    }
    let again = relay.get_json(&format!("{RECOVER}/{}", job["id"].as_str().expect("id"))).await;
    assert_eq!(again["still_retrying"], 2, "{again}");

    // Another automation's window, or a window before them: nothing retrying, nothing to do.
    let other = relay.create_automation("proc_other", &receiver.url("/o")).await;
    for body in [
        json!({"since": "1h", "automation_id": other["id"]}),
        json!({"since": "2h", "until": "1h"}),
    ] {
        let job = recover(&relay, body.clone()).await;
        assert_eq!(job["still_retrying"], 0, "{body}: {job}");
        assert!(job["next_retry_at"].is_null(), "{body}: {job}");
        assert!(job["note"].as_str().expect("note").contains("nothing to recover"), "{job}");
    }
    let job = recover(&relay, json!({"since": "1h", "automation_id": automation["id"]})).await;
    assert_eq!(job["still_retrying"], 2, "{job}");
    assert_eq!(receiver.count(), 2, "recover sent something still retrying");
}
