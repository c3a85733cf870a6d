//! The automations page (issue 13 §2): each automation with its last call and a link to its
//! logs; Enable / Disable and "Send a test call" through the API's own services, refused
//! without the CSRF token or to a viewer; unknown automations are the console's 404.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{key_of, Browser, Page, ADMIN, ONE_ATTEMPT};

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

/// The table row of the automation `id` on the list page.
fn row_of<'a>(page: &'a Page, id: &str) -> &'a str {
    let at = page.text.find(&format!("id=\"automation-{id}\"")).expect("the automation's row");
    &page.text[at..at + page.text[at..].find("</tr>").expect("row end")]
}

/// Whether the API says the automation `id` is enabled.
async fn enabled(relay: &Relay, id: &str) -> bool {
    relay.get_json(&format!("{ENDPOINTS}/{id}")).await["enabled"].as_bool().expect("enabled")
}

/// A new automation on `receiver`: its id.
async fn automation(relay: &Relay, receiver: &Receiver, processor: &str) -> String {
    let created = relay.create_automation(processor, &receiver.url("/hook")).await;
    created["id"].as_str().expect("id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_each_automation_with_its_last_call_and_a_link_to_its_logs() {
    let relay = Relay::start(ONE_ATTEMPT);
    let failing = Receiver::failing_first(5, 500).await;
    let ok = Receiver::ok().await;
    let failing_id = automation(&relay, &failing, "failing").await;
    let ok_id = automation(&relay, &ok, "fine").await;
    let silent = Receiver::ok().await;
    let silent_id = automation(&relay, &silent, "silent").await;
    relay.send_message("failing", json!({"n": 1})).await;
    relay.send_message("fine", json!({"n": 1})).await;
    relay.wait_logs_at_least(&format!("automation_id={failing_id}"), 1).await;
    relay.wait_logs_at_least(&format!("automation_id={ok_id}"), 1).await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;

    let page = browser.get("/console/automations").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let failing_row = row_of(&page, &failing_id);
    assert!(failing_row.contains("failing") && failing_row.contains("enabled"), "{failing_row}");
    assert!(failing_row.contains("500 E_HTTP_STATUS"), "{failing_row}");
    assert!(failing_row.contains(&format!("automation_id={failing_id}")), "{failing_row}");
    let ok_row = row_of(&page, &ok_id);
    assert!(ok_row.contains(">200</a>") && !ok_row.contains("E_"), "{ok_row}");
    assert!(row_of(&page, &silent_id).contains("no call yet"));
    assert!(page.text.contains("href=\"/console/automations\""), "no nav link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_then_enable_change_the_automation_and_need_the_csrf_token() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let id = automation(&relay, &receiver, "switch").await;
    let (operator, _) = key_of(&relay, "operator").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&operator).await;
    let page = browser.get("/console/automations").await;
    let disable = format!("/console/automations/{id}/disable");
    assert!(row_of(&page, &id).contains(&format!("action=\"/console/automations/{id}/disable\"")));

    let missing = browser.post(&disable, &[], &[]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.text);
    let forged = browser.post(&disable, &[("csrf", &"f".repeat(64))], &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert!(enabled(&relay, &id).await, "a refused disable changed the automation");

    let done = browser.post(&disable, &[("csrf", &page.csrf())], &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.location(), "/console/automations");
    assert!(!enabled(&relay, &id).await, "the disable did not disable");
    let page = browser.get("/console/automations").await;
    let row = row_of(&page, &id);
    assert!(row.contains("data-enabled=\"false\"") && row.contains("/enable\""), "{row}");

    let enable = format!("/console/automations/{id}/enable");
    let done = browser.post(&enable, &[("csrf", &page.csrf())], &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert!(enabled(&relay, &id).await, "the enable did not enable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_buttons_and_is_refused_every_action() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let id = automation(&relay, &receiver, "viewed").await;
    let (viewer, _) = key_of(&relay, "viewer").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&viewer).await;
    let page = browser.get("/console/automations").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let row = row_of(&page, &id);
    assert!(row.contains("automation_id="), "the viewer has no link to the logs: {row}");
    assert!(!row.contains("<button"), "a viewer is offered an action: {row}");
    for action in ["disable", "enable", "test"] {
        let path = format!("/console/automations/{id}/{action}");
        let refused = browser.post(&path, &[("csrf", &page.csrf())], &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{action}: {}", refused.text);
    }
    assert!(enabled(&relay, &id).await, "a viewer's disable changed the automation");
    assert_eq!(receiver.count(), 0, "a viewer's test call was sent");
    assert!(relay.all_logs("").await.is_empty(), "a viewer's test call made a log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_call_reaches_the_receiver_and_shows_its_log() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let id = automation(&relay, &receiver, "tested").await;
    let (operator, _) = key_of(&relay, "operator").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&operator).await;
    let page = browser.get("/console/automations").await;
    let test = format!("/console/automations/{id}/test");

    let refused = browser.post(&test, &[], &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(receiver.count(), 0, "a test call without the token was sent");

    let sent = browser.post(&test, &[("csrf", &page.csrf())], &[]).await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text);
    assert_eq!(receiver.count(), 1, "the test call did not reach the receiver");
    let logs = relay.all_logs(&format!("automation_id={id}")).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["trigger"], "test", "{}", logs[0]);
    let log_id = logs[0]["id"].as_str().expect("log id");
    assert_eq!(sent.location(), format!("/console/logs/{log_id}"));
    let log = browser.get(sent.location()).await;
    assert!(log.text.contains("id=\"outcome\">succeeded"), "{}", log.text);
    let list = browser.get("/console/automations").await;
    assert!(row_of(&list, &id).contains(&format!("/console/logs/{log_id}")), "not the last call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_on_an_unknown_automation_is_the_not_found_page() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let id = automation(&relay, &receiver, "gone").await;
    let deleted = relay.req(reqwest::Method::DELETE, &format!("{ENDPOINTS}/{id}")).send().await;
    assert_eq!(deleted.expect("delete").status(), StatusCode::OK);
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let csrf = browser.get("/console/automations").await.csrf();
    for path in [format!("{id}/disable"), format!("{id}/test"), "nonsense/enable".to_string()] {
        let page =
            browser.post(&format!("/console/automations/{path}"), &[("csrf", &csrf)], &[]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
        assert!(page.text.contains("There is no automation with this id."), "{path}");
    }
    assert_eq!(receiver.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_fifty_automations_the_list_has_an_older_page_and_a_bad_cursor_is_refused() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let mut ids = Vec::new();
    for _ in 0..51 {
        ids.push(automation(&relay, &receiver, "many").await);
    }
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let first = browser.get("/console/automations").await;
    assert!(first.text.contains(&format!("automation-{}", ids[50])), "newest first");
    assert!(!first.text.contains(&format!("automation-{}", ids[0])), "more than 50 rows");
    let at = first.text.find("rel=\"next\"").expect("an older page") - 2;
    let href = &first.text[first.text[..at].rfind("href=\"").expect("href") + 6..at];
    let older = browser.get(&href.replace("&#x2f;", "/")).await;
    assert_eq!(older.status, StatusCode::OK, "{}", older.text);
    assert!(older.text.contains(&format!("automation-{}", ids[0])), "{}", older.text);
    assert!(!older.text.contains(&format!("automation-{}", ids[50])));

    let bad = browser.get("/console/automations?after=nonsense").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("is not an automation id"), "{}", bad.text);
}

/// The 24 h column comes from the per-minute rollup: the share of calls that succeeded, of
/// how many, and the last error's code; an automation without a call says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_automation_shows_its_success_ratio_over_a_day_and_its_last_error() {
    let relay = Relay::start(ONE_ATTEMPT);
    let flaky = Receiver::failing_first(3, 503).await;
    let flaky_id = automation(&relay, &flaky, "flaky").await;
    let quiet_id = automation(&relay, &Receiver::ok().await, "quiet").await;
    for n in 0..4 {
        relay.send_message("flaky", json!({"n": n})).await;
        relay.wait_logs_at_least(&format!("automation_id={flaky_id}"), n + 1).await;
    }
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let row = relay
        .wait_for(crate::common::WAIT, "the rollup to count the calls", || async {
            let page = browser.get("/console/automations").await;
            let row = row_of(&page, &flaky_id).to_string();
            row.contains("25.0 %").then_some(row)
        })
        .await;
    assert!(row.contains("25.0 %</span> of 4"), "{row}");
    assert!(row.contains("last error E_HTTP_STATUS"), "{row}");
    let page = browser.get("/console/automations").await;
    let quiet = row_of(&page, &quiet_id);
    assert!(quiet.contains("<td class=\"health\">no call</td>"), "{quiet}");
}
