//! Issue 14 §2: an automation's console page shows its health and its enable/disable trail.
//! An automation that fails for `operational.disable_after_hours` is disabled by the relay;
//! an operator enables it again with the console's button; the page shows both, with who
//! and why.

use reqwest::StatusCode;

use crate::common::{Receiver, Relay, WAIT};
use crate::helpers::{key_of, Browser};

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

/// Retries every 100 ms; the relay disables after 0.72 s of failures.
const CONFIG: &str = "[delivery]\nmax_attempts = 100\ninitial_backoff_ms = 100\n\
    backoff_multiplier = 1.0\nbackoff_jitter = 0.0\npoll_interval_ms = 50\n\
    [operational]\ndisable_after_hours = 0.0002\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_health_and_who_disabled_and_enabled_it() {
    let relay = Relay::start(CONFIG);
    let failing = Receiver::failing_first(usize::MAX, 500).await;
    let created = relay.create_automation("proc_detail", &failing.url("/f")).await;
    let id = created["id"].as_str().expect("id").to_string();
    relay.send_message("proc_detail", serde_json::json!({"n": 1})).await;
    relay
        .wait_for(WAIT, "the automatic disable", || async {
            let a = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
            (a["enabled"] == false).then_some(())
        })
        .await;

    let (operator, operator_id) = key_of(&relay, "operator").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&operator).await;
    let list = browser.get("/console/automations").await;
    assert!(list.text.contains(&format!("href=\"/console/automations/{id}\"")), "no link");
    let page = browser.get(&format!("/console/automations/{id}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(
        page.text.contains("id=\"automation-state\" class=\"failed\">disabled"),
        "{}",
        page.text
    );
    assert!(page.text.contains("id=\"disabled-reason\""), "{}", page.text);
    assert!(page.text.contains("operational.disable_after_hours"), "{}", page.text);
    assert_eq!(page.text.matches("class=\"trail-event\"").count(), 1, "{}", page.text);
    assert!(page.text.contains("<td>system</td>"), "{}", page.text);
    assert!(!page.text.contains("id=\"last-failure\">none"), "{}", page.text);

    let enable = format!("/console/automations/{id}/enable");
    let done = browser.post(&enable, &[("csrf", &page.csrf())], &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let page = browser.get(&format!("/console/automations/{id}")).await;
    assert!(page.text.contains("id=\"automation-state\" class=\"ok\">enabled"), "{}", page.text);
    assert!(!page.text.contains("id=\"disabled-reason\""), "{}", page.text);
    assert_eq!(page.text.matches("class=\"trail-event\"").count(), 2, "{}", page.text);
    assert!(page.text.contains(&format!("<td>{operator_id}</td>")), "{}", page.text);
    // The API's trail says the same: newest first, the operator's key.
    let trail = relay.get_json(&format!("{ENDPOINTS}/{id}/events")).await;
    assert_eq!(trail["data"][0]["actor"], operator_id.as_str(), "{trail}");
    assert_eq!(trail["data"][1]["actor"], "system", "{trail}");

    let unknown = browser.get("/console/automations/endp_00000000000000000000000000000000").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}
