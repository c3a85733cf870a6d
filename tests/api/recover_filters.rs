//! Issue 13, bulk retry: a recover job takes the logs filters (status code, status class,
//! error code, event type, automation), matched on each failed delivery's last attempt; a
//! dry run counts what a job would take and stores nothing; a bad filter is a 400 naming it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{assert_error, retries, send_ok, WAIT};

const RECOVER: &str = "/v1/processors/automations/logs/recover";

/// An address nothing listens on: calls to it get no answer (a refused connection).
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/gone")
}

async fn send_event(relay: &Relay, processor_id: &str, event_type: &str) {
    let body = json!({"processor_id": processor_id, "event_type": event_type, "payload": {"n": 1}});
    let (status, answer) = relay.post_json("/v1/messages", &body).await;
    assert_eq!(status, 202, "{answer}");
}

async fn dry_run(relay: &Relay, filters: Value) -> Value {
    let mut body = json!({"since": "1h", "dry_run": true});
    for (k, v) in filters.as_object().expect("object") {
        body[k] = v.clone();
    }
    let (status, answer) = relay.post_json(RECOVER, &body).await;
    assert_eq!(status, 200, "{body}: {answer}");
    assert_eq!(answer["object"], "recover_dry_run", "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_filters_select_matching_deliveries_and_a_dry_run_creates_nothing() {
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    let relay = Relay::start(&retries(1));
    let answered = relay.create_automation("proc_bulk", &failing.url("/500")).await;
    let silent = relay.create_automation("proc_bulk", &closed_port_url().await).await;
    let (answered_id, silent_id) =
        (answered["id"].as_str().expect("id"), silent["id"].as_str().expect("id"));
    for _ in 0..3 {
        send_event(&relay, "proc_bulk", "invoice.paid").await;
    }
    for _ in 0..2 {
        send_event(&relay, "proc_bulk", "invoice.failed").await;
    }
    relay
        .wait_for(WAIT, "10 exhausted deliveries", || async {
            let page = relay.get_json("/v1/deliveries?status=exhausted&limit=100").await;
            (page["data"].as_array().map_or(0, Vec::len) == 10).then_some(())
        })
        .await;
    assert_eq!(failing.count(), 5);

    for (filters, want) in [
        (json!({}), 10),
        (json!({"status_code": 500}), 5),
        (json!({"status_code": "0"}), 5),
        (json!({"status_class": "5xx"}), 5),
        (json!({"status_class": "2xx"}), 0),
        (json!({"error_code": "E_CONNECTION"}), 5),
        (json!({"event_type": "invoice.paid"}), 6),
        (json!({"event_type": "invoice.paid", "status_code": 500}), 3),
        (json!({"automation_id": silent_id}), 5),
        (json!({"automation_id": answered_id, "event_type": "invoice.failed"}), 2),
    ] {
        let answer = dry_run(&relay, filters.clone()).await;
        assert_eq!(answer["total"], want, "{filters}: {answer}");
        assert_eq!(answer["capped"], false, "{filters}: {answer}");
        assert_eq!(answer["still_retrying"], 0, "{filters}: {answer}");
    }
    // The dry runs stored no job and sent nothing.
    let jobs = relay.get_json(RECOVER).await;
    assert_eq!(jobs["data"], json!([]), "{jobs}");
    assert_eq!(failing.count(), 5);

    let body = json!({"since": "1h", "status_code": 500, "event_type": "invoice.paid"});
    let (status, job) = relay.post_json(RECOVER, &body).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 3, "{job}");
    assert_eq!(job["filters"]["status_code"], 500, "{job}");
    let jid = job["id"].as_str().expect("id").to_string();
    let done = relay
        .wait_for(WAIT, "recover job completed", || async {
            let j = relay.get_json(&format!("{RECOVER}/{jid}")).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    assert_eq!((done["requeued"].clone(), done["failed"].clone()), (json!(3), json!(3)), "{done}");
    let recovered = relay.wait_logs_exactly("trigger=recover", 3).await;
    for log in &recovered {
        assert_eq!(log["automation_id"], answered_id, "{log}");
    }
    let paid = relay.all_logs("trigger=recover&event_type=invoice.paid").await;
    assert_eq!(paid.len(), 3, "the recovered calls are the invoice.paid ones");
    assert_eq!(failing.count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_refuses_a_bad_filter_naming_it_and_creates_nothing() {
    let relay = Relay::start("");
    for (filters, field) in [
        (json!({"status_code": 700}), "status_code"),
        (json!({"status_code": "abc"}), "status_code"),
        (json!({"status_code": true}), "status_code"),
        (json!({"status_class": "6xx"}), "status_class"),
        (json!({"error_code": "E_NOPE"}), "error_code"),
        (json!({"event_type": ""}), "event_type"),
        (json!({"automation_id": "nope"}), "automation_id"),
        (json!({"dry_run": "yes"}), "dry_run"),
    ] {
        let mut body = json!({"since": "1h"});
        for (k, v) in filters.as_object().expect("object") {
            body[k] = v.clone();
        }
        let r = send_ok(&relay, Method::POST, RECOVER, Some(body.to_string())).await;
        assert_error(&r, 400, field, &format!("{body}"));
        assert_eq!(r.body["field"], field, "{body}: {}", r.text);
    }
    let jobs = relay.get_json(RECOVER).await;
    assert_eq!(jobs["data"], json!([]), "{jobs}");
    // Each field is known, and a good value of it is taken (a dry run over nothing).
    let automation = "endp_00000000000000000000000000000000";
    for (field, good) in [
        ("status_code", json!(502)),
        ("status_code", json!("0")),
        ("status_class", json!("4xx")),
        ("error_code", json!("E_TIMEOUT")),
        ("event_type", json!("invoice.paid")),
        ("automation_id", json!(automation)),
    ] {
        let body = json!({"since": "1h", "dry_run": true, field: good});
        let (status, answer) = relay.post_json(RECOVER, &body).await;
        assert_eq!(status, 200, "{body}: {answer}");
        assert_eq!(answer["total"], 0, "{body}: {answer}");
    }
}
