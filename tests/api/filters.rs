use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::cursor::{walk_after, walk_before, with_query};
use crate::helpers::{assert_uiform_log, ids_of, now_rfc3339, retries, rfc3339_ago, LOGS};

// ---------------------------------------------------------------------------------------
// 5. Filters
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_filters_narrow_correctly() {
    let ok = Receiver::ok().await;
    let not_found = Receiver::with(Arc::new(|_| {
        (StatusCode::NOT_FOUND, [("content-type", "application/json")], "{\"missing\":true}")
            .into_response()
    }))
    .await;
    let broken =
        Receiver::with(Arc::new(|_| (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()))
            .await;
    let relay = Relay::start(&retries(1));
    let a_ok = relay.create_automation("proc_f", &ok.url("/ok")).await;
    let a_404 = relay.create_automation("proc_f", &not_found.url("/nf")).await;
    let a_503 = relay.create_automation("proc_f", &broken.url("/down")).await;
    let other = relay.create_automation("proc_g", &ok.url("/other")).await;
    // Nothing listens on port 1: the call gets no response at all (status 0).
    let dead = relay.create_automation("proc_g", "http://127.0.0.1:1/dead").await;
    let id = |a: &Value| a["id"].as_str().unwrap().to_string();

    for i in 0..3 {
        relay.send_message("proc_f", json!({"batch": 1, "i": i})).await;
    }
    relay.send_message("proc_g", json!({"batch": 1})).await;
    relay.wait_logs_exactly("", 11).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let middle = now_rfc3339();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..2 {
        relay.send_message("proc_f", json!({"batch": 2, "i": i})).await;
    }
    let all = relay.wait_logs_exactly("", 17).await;
    for log in &all {
        assert_uiform_log(log);
    }

    let count = |q: String| {
        let relay = &relay;
        async move {
            let logs = relay.all_logs(&q).await;
            for log in &logs {
                assert_uiform_log(log);
            }
            logs
        }
    };
    let status_of = |l: &Value| l["external_request_log"]["status_code"].as_u64().unwrap();

    let logs = count("&status_code=200".into()).await;
    assert_eq!(logs.len(), 6);
    assert!(logs.iter().all(|l| status_of(l) == 200));
    let logs = count("&status_code=404".into()).await;
    assert_eq!(logs.len(), 5);
    assert!(logs.iter().all(|l| l["automation_id"] == a_404["id"]));
    assert_eq!(count("&status_code=418".into()).await.len(), 0);

    for (class, n, code) in [("2xx", 6, 200), ("4xx", 5, 404), ("5xx", 5, 503), ("3xx", 0, 0)] {
        let logs = count(format!("&status_class={class}")).await;
        assert_eq!(logs.len(), n, "status_class={class}");
        assert!(logs.iter().all(|l| status_of(l) == code), "status_class={class}");
    }
    let logs = count(format!("&automation_id={}", id(&a_503))).await;
    assert_eq!(logs.len(), 5);
    assert!(logs.iter().all(|l| l["automation_id"] == a_503["id"] && status_of(l) == 503));
    assert!(
        logs.iter().all(|l| l["external_request_log"]["error"].is_string()),
        "failed call without error"
    );
    let enc = |s: String| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let logs = count(format!("&webhook_url={}", enc(ok.url("/ok")))).await;
    assert_eq!(logs.len(), 5);
    assert!(logs.iter().all(|l| l["automation_id"] == a_ok["id"]));
    assert!(logs.iter().all(|l| l["external_request_log"]["webhook_url"] == ok.url("/ok")));
    assert_eq!(count(format!("&webhook_url={}", enc(ok.url("/nope")))).await.len(), 0);

    let after = count(format!("&created_after={middle}")).await;
    assert_eq!(after.len(), 6, "created_after");
    let batch_of = |l: &Value| l["external_request_log"]["request_body"]["batch"].as_i64().unwrap();
    assert!(after.iter().all(|l| batch_of(l) == 2));
    let before = count(format!("&created_before={middle}")).await;
    assert_eq!(before.len(), 11, "created_before");
    assert!(before.iter().all(|l| batch_of(l) == 1));
    let window =
        count(format!("&created_after={}&created_before={middle}", rfc3339_ago(120))).await;
    assert_eq!(window.len(), 11);
    assert_eq!(count(format!("&created_after={}", rfc3339_ago(-3600))).await.len(), 0);
    let combo = count(format!("&created_after={middle}&status_class=2xx")).await;
    assert_eq!(combo.len(), 2);
    let combo = count(format!("&automation_id={}&status_code=200", id(&a_404))).await;
    assert_eq!(combo.len(), 0);
    assert_eq!(count(format!("&automation_id={}", id(&other))).await.len(), 1);

    // Processor scope.
    let scoped = relay.get_json("/v1/processors/proc_f/automations/logs?limit=100").await;
    let scoped = scoped["data"].as_array().unwrap();
    assert_eq!(scoped.len(), 15);
    assert!(scoped.iter().all(|l| l["automation_snapshot"]["processor_id"] == "proc_f"));
    let scoped =
        relay.get_json("/v1/processors/proc_f/automations/logs?limit=100&status_class=5xx").await;
    assert_eq!(scoped["data"].as_array().unwrap().len(), 5);
    let g = relay.get_json("/v1/processors/proc_g/automations/logs?limit=100").await;
    assert_eq!(g["data"].as_array().unwrap().len(), 2);

    // A call that got no response: status 0, a stable error code, still a valid log.
    let logs = count("&status_code=0".into()).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["automation_id"], dead["id"]);
    let error = logs[0]["external_request_log"]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("E_CONNECTION"), "{error}");
    assert_eq!(logs[0]["external_request_log"]["response_body"], json!({}));
    let none = relay.get_json("/v1/processors/proc_none/automations/logs?limit=100").await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    assert!(none["list_metadata"]["before"].is_null() && none["list_metadata"]["after"].is_null());

    // Cursor walks under a filter, in both directions and both orders.
    for (list, want) in [
        (format!("{LOGS}?status_class=5xx"), 5),
        (format!("{LOGS}?created_after={middle}"), 6),
        ("/v1/processors/proc_f/automations/logs?status_code=200".to_string(), 5),
        ("/v1/processors/proc_f/automations/logs".to_string(), 15),
    ] {
        let reference = ids_of(
            &relay.get_json(&with_query(&list, "limit=100&order=asc")).await["data"]
                .as_array()
                .unwrap()
                .clone(),
        );
        assert_eq!(reference.len(), want, "{list}");
        for order in ["asc", "desc"] {
            let mut expected = reference.clone();
            if order == "desc" {
                expected.reverse();
            }
            let pages = walk_after(&relay, &list, order, 2).await;
            assert_eq!(pages.concat(), expected, "{list} {order} after-walk");
            let back = walk_before(&relay, &list, order, 2, pages.last().unwrap().clone()).await;
            assert_eq!(back, expected, "{list} {order} before-walk");
        }
    }

    // RFC 3339 with an offset and Unix seconds are accepted too.
    let offset = DateTime::parse_from_rfc3339(&middle)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    assert!(offset.contains("+02:00"), "{offset}");
    assert_eq!(count(format!("&created_after={}", enc(offset))).await.len(), 6);
    let secs = Utc::now().timestamp() - 3600;
    assert_eq!(count(format!("&created_after={secs}")).await.len(), 17);

    // Each log is also served by GET, identical to the listed one.
    let got = relay.get_json(&format!("{LOGS}/{}", all[0]["id"].as_str().unwrap())).await;
    assert_uiform_log(&got);
    assert_eq!(got, all[0]);
}
