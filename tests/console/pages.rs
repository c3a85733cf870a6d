//! The pages: security headers, CSRF on the rerun, escaping of receivers' answers, roles, the
//! logs explorer's filters and 404s.

use std::sync::Arc;

use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use reqwest::StatusCode;

use crate::common::{Receiver, Relay};
use crate::helpers::{key_of, one_log, Browser, ADMIN, ONE_ATTEMPT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_answer_carries_the_security_headers() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    let mut pages = vec![browser.get("/console/sign-in").await, browser.get("/console/logs").await];
    browser.sign_in(ADMIN).await;
    pages.push(browser.get("/console/logs").await);
    pages.push(browser.get("/console/no-such-page").await);
    pages.push(browser.get("/console/assets/htmx.min.js").await);
    for page in &pages {
        let csp = page.header("content-security-policy");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert_eq!(page.header("referrer-policy"), "same-origin");
        assert_eq!(page.header("x-content-type-options"), "nosniff");
    }
    assert_eq!(pages[3].status, StatusCode::NOT_FOUND);
    assert!(pages[4].text.contains("htmx"), "htmx is not embedded");
    assert!(!pages[2].text.contains("https://"), "a page loads something from elsewhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_without_the_csrf_token_is_refused_and_sends_nothing() {
    let relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::failing_first(1, 500).await;
    let log = one_log(&relay, &receiver, "csrf").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let detail = browser.get(&format!("/console/logs/{log}")).await;
    assert!(detail.text.contains("id=\"rerun\""), "no rerun button for an admin");
    let rerun = format!("/console/logs/{log}/rerun");
    let forged = browser.post(&rerun, &[("csrf", &"f".repeat(64))], &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let missing = browser.post(&rerun, &[], &[]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.text);
    assert_eq!(receiver.count(), 1, "a refused rerun called the receiver");
    assert_eq!(relay.all_logs("").await.len(), 1, "a refused rerun made a log");

    let done = browser.post(&rerun, &[("csrf", &detail.csrf())], &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let new_log = browser.get(done.location()).await;
    assert!(new_log.text.contains("id=\"outcome\">succeeded"), "{}", new_log.text);
    let in_place = browser
        .post(&rerun, &[], &[("x-csrf-token", &detail.csrf()), ("hx-request", "true")])
        .await;
    assert_eq!(in_place.status, StatusCode::OK, "{}", in_place.text);
    assert!(
        in_place.text.contains("succeeded") && !in_place.text.contains("<html"),
        "{}",
        in_place.text
    );
    assert_eq!(receiver.count(), 3);

    // Refused in place (its automation deleted): the refusal, as a fragment, not a page.
    let automation = relay.all_logs("").await[0]["automation_id"].as_str().expect("id").to_string();
    let deleted = relay
        .req(reqwest::Method::DELETE, &format!("/v1/processors/automations/endpoints/{automation}"))
        .send()
        .await
        .expect("delete");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let refused = browser
        .post(&rerun, &[], &[("x-csrf-token", &detail.csrf()), ("hx-request", "true")])
        .await;
    assert!(refused.status.is_client_error(), "{}: {}", refused.status, refused.text);
    assert!(
        refused.text.contains("id=\"rerun-outcome\" role=\"alert\">Rerun refused ("),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains("<html"), "{}", refused.text);
    assert_eq!(receiver.count(), 3, "a refused rerun called the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_receiver_answered_is_shown_as_text() {
    let relay = Relay::start(ONE_ATTEMPT);
    let hostile = "<script>alert(1)</script><a href=\"javascript:alert(2)\">click</a>";
    let receiver = Receiver::with(Arc::new(move |_| {
        (AxumStatus::BAD_GATEWAY, [("content-type", "text/html")], hostile).into_response()
    }))
    .await;
    let log = one_log(&relay, &receiver, "hostile").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let page = browser.get(&format!("/console/logs/{log}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{}", page.text);
    assert!(!page.text.contains("<script>alert"), "markup from the receiver: {}", page.text);
    assert!(!page.text.contains("href=\"javascript:"), "a live javascript: link: {}", page.text);
    assert!(page.text.contains("E_HTTP_STATUS") || page.text.contains("502"), "{}", page.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_rerun_button_and_is_refused_a_rerun() {
    let relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::failing_first(1, 500).await;
    let log = one_log(&relay, &receiver, "viewer").await;
    let (key, _) = key_of(&relay, "viewer").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&key).await;
    let detail = browser.get(&format!("/console/logs/{log}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    assert!(!detail.text.contains("/rerun"), "a viewer is offered a rerun: {}", detail.text);
    let refused =
        browser.post(&format!("/console/logs/{log}/rerun"), &[("csrf", &detail.csrf())], &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(refused.text.contains("operator"), "{}", refused.text);
    assert_eq!(receiver.count(), 1, "a viewer's rerun was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_filter_is_named_and_an_unknown_log_is_a_404_page() {
    let relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::failing_first(1, 503).await;
    let log = one_log(&relay, &receiver, "filters").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    for (query, field) in [
        ("status_class=9xx", "status_class"),
        ("status_code=abc", "status_code"),
        ("error_code=E_NOPE", "error_code"),
        ("created_after=yesterday", "created_after"),
        ("colour=red", "colour"),
    ] {
        let page = browser.get(&format!("/console/logs?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}: {}", page.text);
        assert!(page.text.contains(&format!("data-field=\"{field}\"")), "{query}: {}", page.text);
        assert!(page.text.contains(field), "{query}: the message does not name it");
    }
    // Empty fields of the filter form are dropped from the URL; the filters find the log.
    let cleaned = browser.get("/console/logs?status_code=&status_class=5xx&trigger=").await;
    assert_eq!(cleaned.location(), "/console/logs?status_class=5xx");
    let found = browser.get("/console/logs?status_class=5xx&error_code=E_HTTP_STATUS").await;
    assert!(found.text.contains(&log), "{}", found.text);
    let none = browser.get("/console/logs?status_class=2xx").await;
    assert!(!none.text.contains(&log) && none.text.contains("No log matches"), "{}", none.text);

    let unknown = browser.get("/console/logs/log_auto_0000000000000000000000000000").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text.contains("no log with this id"), "{}", unknown.text);
}

/// The part of a log page that is the chain of attempts.
fn chain_of(page: &str) -> &str {
    let start = page.find("id=\"chain\"").expect("a chain of attempts");
    let end = page[start..].find("</table>").expect("the chain's end") + start;
    &page[start..end]
}

/// Text as it was before the templates escaped it for HTML.
fn unescaped(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&amp;", "&").replace("&#x3d;", "=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_page_shows_every_attempt_of_its_delivery_in_order_with_itself_marked() {
    let relay = Relay::start(crate::common::FAST_RETRIES);
    let receiver = Receiver::failing_first(2, 500).await;
    let automation = relay.create_automation("chain", &receiver.url("/hook")).await;
    let automation_id = automation["id"].as_str().expect("id");
    relay.send_message("chain", serde_json::json!({"order": 1})).await;
    let query = format!("&automation_id={automation_id}");
    let attempts = relay.wait_logs_exactly(&query, 3).await;
    let first = attempts[0]["id"].as_str().expect("id").to_string();
    let rerun = relay
        .post_json(&format!("{}/{first}/rerun", crate::common::LOGS), &serde_json::json!({}))
        .await;
    assert_eq!(rerun.0, 200, "{}", rerun.1);
    // Another delivery of the same automation: not in this chain.
    relay.send_message("chain", serde_json::json!({"order": 2})).await;
    let all = relay.wait_logs_exactly(&query, 5).await;
    let other = all[4]["id"].as_str().expect("id");
    assert_ne!(all[4]["delivery_id"], all[0]["delivery_id"], "{}", all[4]);
    let chain: Vec<&str> = all[..4].iter().map(|l| l["id"].as_str().expect("id")).collect();
    let triggers: Vec<&str> = all[..4].iter().map(|l| l["trigger"].as_str().expect("t")).collect();
    assert_eq!(triggers, ["initial", "retry", "retry", "rerun"]);

    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    for current in &chain {
        let page = browser.get(&format!("/console/logs/{current}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let shown = chain_of(&page.text);
        let at: Vec<usize> =
            chain.iter().map(|id| shown.find(id).expect("every log of the chain")).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "not oldest first: {shown}");
        assert!(!shown.contains(other), "another delivery's log in the chain: {shown}");
        assert_eq!(shown.matches("aria-current=\"page\"").count(), 1, "{shown}");
        assert!(shown.contains(&format!("aria-current=\"page\">{current}<")), "{shown}");
        assert!(shown.contains("E_HTTP_STATUS") && shown.contains(">500<"), "{shown}");
    }
    // The failed attempt's page: the error code with its meaning, the JSON body pretty.
    let failed = browser.get(&format!("/console/logs/{first}")).await;
    assert!(failed.text.contains("<code>E_HTTP_STATUS</code> — "), "{}", failed.text);
    let body = "id=\"response-body\" data-kind=\"JSON, pretty-printed\">{\n  &quot;error&quot;";
    assert!(failed.text.contains(body), "{}", failed.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_contains_narrows_the_explorer_and_an_over_long_one_is_named() {
    let relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::failing_first(0, 500).await;
    let alpha = one_log(&relay, &receiver, "alpha").await;
    let beta_automation = relay.create_automation("beta", &receiver.url("/beta/x")).await;
    relay.send_message("beta", serde_json::json!({"n": 1})).await;
    let id = beta_automation["id"].as_str().expect("id");
    let beta = relay.wait_logs_exactly(&format!("&automation_id={id}"), 1).await;
    let beta = beta[0]["id"].as_str().expect("id");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;

    let page = browser.get("/console/logs?url_contains=%2Fbeta%2F").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(beta) && !page.text.contains(&alpha), "{}", page.text);
    assert!(page.text.contains("value=\"&#x2f;beta&#x2f;\""), "the field keeps the value");
    assert!(!page.text.contains("id=\"retry-these\""), "bulk retry cannot filter by URL");
    let page = browser.get("/console/logs?url_contains=%2Fhook").await;
    assert!(page.text.contains(&alpha) && !page.text.contains(beta), "{}", page.text);
    assert!(browser.get("/console/logs").await.text.contains("id=\"retry-these\""));
    let page = browser.get(&format!("/console/logs?url_contains={}", "b".repeat(201))).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains("data-field=\"url_contains\""), "{}", page.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_tail_polls_for_logs_newer_than_the_newest_shown_matching_the_filters() {
    let relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::failing_first(0, 500).await;
    let old = one_log(&relay, &receiver, "tail").await;
    relay.create_automation("tail", &receiver.url("/other")).await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;

    let off = browser.get("/console/logs?url_contains=%2Fhook").await;
    assert!(!off.text.contains("hx-trigger"), "the tail is off by default: {}", off.text);
    assert!(unescaped(&off.text).contains("href=\"/console/logs?url_contains=%2Fhook&tail=1\""));
    let on = browser.get("/console/logs?url_contains=%2Fhook&tail=1").await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    let on = unescaped(&on.text);
    let poll = format!("hx-get=\"/console/logs/tail?url_contains=%2Fhook&after={old}\"");
    assert!(on.contains(&poll), "{on}");
    assert!(on.contains("hx-trigger=\"every 2s\"") && on.contains("hx-swap=\"outerHTML\""), "{on}");
    assert!(on.contains("name=\"tail\" value=\"1\""), "the filter form keeps the tail on: {on}");
    let bad = browser.get("/console/logs?tail=yes").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert!(bad.text.contains("data-field=\"tail\""), "{}", bad.text);

    // Nothing new: no rows, the same cursor.
    let tail = format!("/console/logs/tail?url_contains=%2Fhook&after={old}");
    let quiet = unescaped(&browser.get(&tail).await.text);
    assert!(!quiet.contains("<tr") && quiet.contains(&format!("after={old}\"")), "{quiet}");
    // Two messages: each to /hook and /other; the tail brings only the /hook ones, newest
    // first, and moves its cursor to the newest log.
    for n in 0..2 {
        relay.send_message("tail", serde_json::json!({"n": n})).await;
    }
    let all = relay.wait_logs_exactly("", 5).await;
    let url = |l: &serde_json::Value| l["external_request_log"]["webhook_url"].to_string();
    let hooks: Vec<&str> = all[1..]
        .iter()
        .filter(|l| url(l).contains("/hook"))
        .map(|l| l["id"].as_str().expect("id"))
        .collect();
    assert_eq!(hooks.len(), 2);
    let answer = browser.get(&tail).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let text = unescaped(&answer.text);
    assert!(!text.contains("<html"), "a fragment: {text}");
    assert_eq!(text.matches("<tr").count(), 2, "{text}");
    let (newer, older) = (text.find(hooks[1]).expect("new"), text.find(hooks[0]).expect("new"));
    assert!(newer < older, "newest first: {text}");
    assert!(!text.contains(&format!(">{old}<")), "an old log again: {text}");
    let newest = all[4]["id"].as_str().expect("id");
    assert!(text.contains(&format!("after={newest}\"")), "the cursor: {text}");
    // Signed out meanwhile: htmx is sent to sign-in, and no log is shown.
    let signed_out = Browser::new(&relay).get(&tail).await;
    assert_eq!(signed_out.status, StatusCode::UNAUTHORIZED, "{}", signed_out.text);
    assert_eq!(signed_out.header("hx-redirect"), "/console/sign-in");
    assert!(!signed_out.text.contains(hooks[0]), "{}", signed_out.text);
}

/// Behind more logs that do not match than one poll may test (the scan budget of
/// `url_contains`), the tail's next poll goes on from the last log tested, not from the
/// newest log: the match behind them is shown, not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_tail_goes_on_past_the_scan_budget_and_skips_no_match() {
    let mut relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::failing_first(0, 500).await;
    let first = one_log(&relay, &receiver, "common").await;
    relay.terminate();
    let budget = i64::from(hookrelay::store::SCAN_BUDGET);
    crate::log_copies::copy_newest_of(&relay, "/hook", budget + 200).await;
    relay.restart();
    let rare = relay.create_automation("rare", &receiver.url("/rare")).await;
    relay.send_message("rare", serde_json::json!({"n": 1})).await;
    let id = rare["id"].as_str().expect("id");
    let rare_log = relay.wait_logs_exactly(&format!("&automation_id={id}"), 1).await;
    let rare_log = rare_log[0]["id"].as_str().expect("log id");

    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let mut after = first;
    let mut polls = 0;
    let shown = loop {
        polls += 1;
        assert!(polls <= 3, "more polls than the budget explains");
        let poll = format!("/console/logs/tail?url_contains=%2Frare&after={after}");
        let text = unescaped(&browser.get(&poll).await.text);
        if text.contains("<tr") {
            break text;
        }
        let next = text.split("&after=").nth(1).and_then(|rest| rest.split('"').next());
        after = next.unwrap_or_else(|| panic!("a cursor: {text}")).to_string();
    };
    assert!(shown.contains(rare_log), "{shown}");
    assert_eq!(polls, 2, "one poll spent its budget, the next found the match");
}
