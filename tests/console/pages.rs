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
