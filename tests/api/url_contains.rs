//! Issue 13 §2: `url_contains=`, a case-sensitive substring of the URL called, narrows the
//! logs list alone, combined with the indexed filters and across cursor pages; `%` and `_`
//! are plain characters; an empty or over-long value is a 400 naming it.

use reqwest::Method;

use crate::common::{Receiver, Relay};
use crate::helpers::{assert_error, ids_of, send_ok, LOGS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_contains_narrows_the_logs_to_the_urls_holding_it() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start("[delivery]\npoll_interval_ms = 50\n");
    let alpha = relay.create_automation("pu", &receiver.url("/alpha/hook")).await;
    relay.create_automation("pu", &receiver.url("/beta/hook")).await;
    for n in 0..3 {
        relay.send_message("pu", serde_json::json!({"n": n})).await;
    }
    let all = relay.wait_logs_exactly("", 6).await;
    let url = |l: &serde_json::Value| {
        l["external_request_log"]["webhook_url"].as_str().expect("url").to_string()
    };
    let alphas: Vec<_> = all.iter().filter(|l| url(l).contains("/alpha/")).cloned().collect();
    assert_eq!(alphas.len(), 3);

    // Alone, and a page at a time (each page stops at its limit; the cursors go on).
    assert_eq!(ids_of(&relay.all_logs("&url_contains=%2Falpha%2F").await), ids_of(&alphas));
    let first = relay.get_json(&format!("{LOGS}?url_contains=%2Falpha%2F&limit=2")).await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2), "{first}");
    let after = first["list_metadata"]["after"].as_str().expect("a next page");
    let rest =
        relay.get_json(&format!("{LOGS}?url_contains=%2Falpha%2F&limit=2&after={after}")).await;
    assert_eq!(ids_of(rest["data"].as_array().expect("data")), [ids_of(&alphas)[0].clone()]);
    // Combined with an indexed filter.
    let id = alpha["id"].as_str().expect("id");
    assert_eq!(relay.all_logs(&format!("&url_contains=hook&automation_id={id}")).await.len(), 3);
    assert!(relay
        .all_logs(&format!("&url_contains=%2Fbeta%2F&automation_id={id}"))
        .await
        .is_empty());
    // Case-sensitive, and `%` or `_` match only themselves (no LIKE pattern).
    assert!(relay.all_logs("&url_contains=%2FALPHA%2F").await.is_empty());
    assert!(relay.all_logs("&url_contains=%25").await.is_empty());
    assert!(relay.all_logs("&url_contains=_").await.is_empty());
    assert_eq!(relay.all_logs("&url_contains=127.0.0.1").await.len(), 6);

    // Bounded: 200 characters are taken, 201 and none are refused, naming the parameter.
    let r = send_ok(&relay, Method::GET, &format!("{LOGS}?url_contains={}", "a".repeat(200)), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for value in ["a".repeat(201), String::new()] {
        let path = format!("{LOGS}?url_contains={value}");
        let r = send_ok(&relay, Method::GET, &path, None).await;
        assert_error(&r, 400, "url_contains", &path);
        assert_eq!(r.body["field"], "url_contains", "{}", r.text);
    }
    let scoped = "/v1/processors/pu/automations/logs?url_contains=%2Fbeta%2F";
    let r = send_ok(&relay, Method::GET, scoped, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(3), "{}", r.text);
}

/// A rare `url_contains` tests at most `SCAN_BUDGET` logs a page: behind more logs than
/// that which do not match, the first page holds none, with a cursor, and following the
/// cursors finds the match. Without the bound that page reads the whole table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_url_contains_reads_a_bounded_number_of_logs_a_page_and_its_cursor_goes_on() {
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start("[delivery]\npoll_interval_ms = 50\n");
    relay.create_automation("rare", &receiver.url("/rare/hook")).await;
    relay.send_message("rare", serde_json::json!({"n": 0})).await;
    let rare = relay.wait_logs_exactly("", 1).await;
    relay.create_automation("common", &receiver.url("/common/hook")).await;
    relay.send_message("common", serde_json::json!({"n": 1})).await;
    relay.wait_logs_exactly("", 2).await;
    relay.terminate();

    // Copies of the common log, newer than it: ids one millisecond later, in order.
    let budget = i64::from(hookrelay::store::SCAN_BUDGET);
    let copies = crate::log_copies::copy_newest_of(&relay, "/common/", budget + 500).await;
    assert_eq!(copies as i64, budget + 500);
    relay.restart();

    let mut page = relay.get_json(&format!("{LOGS}?url_contains=%2Frare%2F&limit=10")).await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(0), "{page}");
    let mut found = Vec::new();
    let mut pages = 1;
    while let Some(after) = page["list_metadata"]["after"].as_str().map(str::to_string) {
        pages += 1;
        assert!(pages <= 2, "more pages than the budget explains: {page}");
        page =
            relay.get_json(&format!("{LOGS}?url_contains=%2Frare%2F&limit=10&after={after}")).await;
        found.extend(ids_of(page["data"].as_array().expect("data")));
    }
    assert_eq!(found, ids_of(&rare));
    // A common one fills its pages as before.
    let common = relay.get_json(&format!("{LOGS}?url_contains=%2Fcommon%2F&limit=10")).await;
    assert_eq!(common["data"].as_array().map(Vec::len), Some(10), "{common}");
}
