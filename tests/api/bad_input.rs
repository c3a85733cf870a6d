use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::{self, Receiver, Relay, KEY};
use crate::helpers::{assert_error, count_list, send, send_ok, ENDPOINTS, ZERO_HEX};

// ---------------------------------------------------------------------------------------
// 2. Bad input
// ---------------------------------------------------------------------------------------

mod automation_cases;
mod request_cases;

// (method, path, extra headers, body, status, hint)
pub(crate) type Case =
    (Method, String, Vec<(&'static str, String)>, Option<String>, u16, &'static str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_naming_the_problem_and_changes_nothing() {
    let receiver = Receiver::ok().await;
    let relay =
        Relay::start(&format!("{}\n[limits]\nmax_body_bytes = 2048\n", common::FAST_RETRIES));
    let automation = relay.create_automation("proc_bad", &receiver.url("/hook")).await;
    let aid = automation["id"].as_str().unwrap().to_string();
    let stored = relay.get_json(&format!("{ENDPOINTS}/{aid}")).await;

    let unknown_endp = format!("endp_{ZERO_HEX}");
    let unknown_log = format!("log_auto_{ZERO_HEX}");
    let big = "x".repeat(3000);
    let long_key = "k".repeat(300);

    let mut cases = automation_cases::create(&big);
    automation_cases::update(&mut cases, &aid, &unknown_endp);
    request_cases::messages(&mut cases, &aid, &unknown_endp, &big, long_key);
    request_cases::lists(&mut cases, &unknown_log);
    request_cases::unknown(&mut cases, &unknown_log);
    request_cases::recover(&mut cases);

    for (method, path, headers, body, status, hint) in cases {
        let mut all = vec![("Api-Key", KEY.to_string())];
        all.extend(headers);
        let shown = body.as_deref().map(|b| &b[..b.len().min(80)]).unwrap_or("").to_string();
        let r = send(&relay, method.clone(), &path, &all, body).await;
        assert_error(&r, status, hint, &format!("{method} {path} {shown}"));
    }

    // Nothing changed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(relay.get_json(&format!("{ENDPOINTS}/{aid}")).await, stored);
    assert_eq!(count_list(&relay, &format!("{ENDPOINTS}?limit=100")).await, 1);
    assert_eq!(count_list(&relay, "/v1/deliveries?limit=100").await, 0);
    assert_eq!(relay.all_logs("").await.len(), 0);
    assert_eq!(receiver.count(), 0);
}

/// A JSON array is not an automation, even one whose items line up with the fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_body_is_not_an_automation() {
    let relay = Relay::start(common::FAST_RETRIES);
    let body = json!(["seq", "proc_seq", "http://127.0.0.1:9/x"]).to_string();
    let r = send_ok(&relay, Method::POST, ENDPOINTS, Some(body)).await;
    assert_error(&r, 400, "", "POST endpoints with an array body");
    assert_eq!(count_list(&relay, &format!("{ENDPOINTS}?limit=100")).await, 0);
}
