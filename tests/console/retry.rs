//! Bulk retry (issue 13 §2): the dry run counts and creates nothing, the confirmation creates
//! the recover job that re-queues exactly the matching failed deliveries, the progress
//! fragment follows it to its end, Cancel stops it; CSRF, roles and bad filters are refused.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{key_of, Browser, Page, ONE_ATTEMPT};

const RECOVER: &str = "/v1/processors/automations/logs/recover";

/// How long a test waits for deliveries or a job to get somewhere.
const WAIT: Duration = Duration::from_secs(15);

/// The recover jobs the API lists.
async fn jobs(relay: &Relay) -> usize {
    relay.get_json(RECOVER).await["data"].as_array().expect("data").len()
}

/// An attribute value as the page wrote it, unescaped (minijinja escapes `/` and `&`).
fn unescape(value: &str) -> String {
    value.replace("&#x2f;", "/").replace("&amp;", "&").replace("&quot;", "\"")
}

/// The hidden fields of the form whose action is `action`, as form pairs.
fn hidden_fields(page: &Page, action: &str) -> Vec<(String, String)> {
    let at = page.text.find(&format!("action=\"{action}\"")).expect("the form");
    let form = &page.text[at..at + page.text[at..].find("</form>").expect("form end")];
    form.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|input| {
            let (name, rest) = input.split_once("\" value=\"").expect("a value");
            (name.to_string(), unescape(rest.split('"').next().expect("value end")))
        })
        .collect()
}

/// The text of the element with `id` (up to the next tag).
fn text_of<'a>(page: &'a Page, id: &str) -> &'a str {
    let at = page.text.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let start = at + page.text[at..].find('>').expect("tag end") + 1;
    &page.text[start..start + page.text[start..].find('<').expect("next tag")]
}

/// Posts the confirmation of `dry_run`'s form; the job's page path.
async fn confirm(browser: &Browser, dry_run: &Page) -> String {
    let fields = hidden_fields(dry_run, "/console/retry/confirm");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let created = browser.post("/console/retry/confirm", &fields, &[]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.text);
    assert!(created.location().starts_with("/console/retry/rcv_"), "{}", created.location());
    created.location().to_string()
}

/// Polls the job's progress fragment until its status is not `running`; the last fragment.
async fn until_ended(browser: &Browser, job_page: &str) -> Page {
    let deadline = Instant::now() + WAIT;
    loop {
        let fragment = browser.get(&format!("{job_page}/progress")).await;
        assert_eq!(fragment.status, StatusCode::OK, "{}", fragment.text);
        if !fragment.text.contains("data-status=\"running\"") {
            return fragment;
        }
        assert!(Instant::now() < deadline, "the job is still running: {}", fragment.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_counts_first_then_requeues_exactly_the_matching_failed_deliveries() {
    let relay = Relay::start(ONE_ATTEMPT);
    let failing_5xx = Receiver::failing_first(3, 500).await;
    let failing_4xx = Receiver::failing_first(2, 404).await;
    relay.create_automation("bulk", &failing_5xx.url("/hook")).await;
    relay.create_automation("bulk", &failing_4xx.url("/hook")).await;
    for n in 0..3 {
        relay.send_message("bulk", json!({"n": n})).await;
    }
    relay.wait_logs_at_least("", 6).await;
    let (operator, _) = key_of(&relay, "operator").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&operator).await;

    // The logs explorer's filters carry over to the form.
    let logs = browser.get("/console/logs?status_class=5xx").await;
    let at = logs.text.find("id=\"retry-these\"").expect("a Retry these… link");
    let href = logs.text[..at].rsplit("href=\"").next().expect("href");
    let link = unescape(href.split('"').next().expect("href end"));
    assert_eq!(link, "/console/retry?status_class=5xx");
    let form = browser.get(&link).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(form.text.contains("<option value=\"5xx\" selected>"), "{}", form.text);
    assert!(form.text.contains("id=\"dry-run\""), "no dry-run button for an operator");

    // The dry run counts the three 5xx failures (not the 404s) and creates nothing.
    let csrf = form.csrf();
    let fields = [("csrf", csrf.as_str()), ("since", "1h"), ("status_class", "5xx")];
    let dry_run = browser.post("/console/retry", &fields, &[]).await;
    assert_eq!(dry_run.status, StatusCode::OK, "{}", dry_run.text);
    assert!(dry_run.text.contains("data-total=\"3\""), "{}", dry_run.text);
    assert!(dry_run.text.contains("would be retried"), "{}", dry_run.text);
    assert_eq!(jobs(&relay).await, 0, "a dry run created a job");
    assert_eq!(failing_5xx.count() + failing_4xx.count(), 6, "a dry run sent something");

    // Confirmed: the job re-queues exactly those three, and its progress reaches the end.
    let job_page = confirm(&browser, &dry_run).await;
    assert_eq!(jobs(&relay).await, 1);
    let page = browser.get(&job_page).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("<progress id=\"job-bar\""), "{}", page.text);
    let ended = until_ended(&browser, &job_page).await;
    assert!(ended.text.contains("data-status=\"completed\""), "{}", ended.text);
    assert!(!ended.text.contains("hx-trigger"), "an ended job is still polled: {}", ended.text);
    assert!(!ended.text.contains("id=\"cancel-retry\""), "Cancel on an ended job");
    assert_eq!(text_of(&ended, "job-total"), "3");
    assert_eq!(text_of(&ended, "job-done"), "3");
    assert_eq!(text_of(&ended, "job-failed"), "0");
    assert_eq!(text_of(&ended, "job-pending"), "0");
    assert_eq!(failing_5xx.count(), 6, "the 5xx deliveries were not each retried once");
    assert_eq!(failing_4xx.count(), 3, "a delivery outside the filters was retried");
    assert_eq!(relay.all_logs("trigger=recover").await.len(), 3);

    // An unknown job is the console's 404 page.
    let id = job_page.rsplit('/').next().expect("id");
    let other = if id.ends_with('0') { '1' } else { '0' };
    let unknown = format!("/console/retry/{}{other}", &id[..id.len() - 1]);
    for path in [unknown.as_str(), "/console/retry/rcv_nope", "/console/retry/nope/progress"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
        assert!(page.text.contains("no bulk retry job with this id"), "{path}: {}", page.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_bulk_retry_shows_cancel_and_stops_when_cancelled() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gone = format!("http://{}/gone", listener.local_addr().expect("addr"));
    drop(listener);
    // Chunks of one delivery: a job over 200 deliveries takes 200 writes, so it still runs
    // when the page is shown and cancelled.
    let relay = Relay::start(&format!("{ONE_ATTEMPT}recover_chunk_size = 1\n"));
    for _ in 0..4 {
        relay.create_automation("bulk_cancel", &gone).await;
    }
    for n in 0..50 {
        relay.send_message("bulk_cancel", json!({"n": n})).await;
    }
    relay.wait_logs_at_least("", 200).await;
    let (viewer, _) = key_of(&relay, "viewer").await;
    let mut watcher = Browser::new(&relay);
    watcher.sign_in(&viewer).await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(crate::helpers::ADMIN).await;
    let form = browser.get("/console/retry").await;
    let csrf = form.csrf();
    let dry_run = browser.post("/console/retry", &[("csrf", &csrf), ("since", "1h")], &[]).await;
    assert!(dry_run.text.contains("data-total=\"200\""), "{}", dry_run.text);

    let job_page = confirm(&browser, &dry_run).await;
    let running = browser.get(&job_page).await;
    assert!(running.text.contains("data-status=\"running\""), "{}", running.text);
    assert!(running.text.contains("hx-trigger=\"every 1s\""), "{}", running.text);
    assert!(running.text.contains("id=\"cancel-retry\""), "{}", running.text);
    // A viewer watches without a Cancel, and is refused one.
    let watched = watcher.get(&job_page).await;
    assert_eq!(watched.status, StatusCode::OK, "{}", watched.text);
    assert!(!watched.text.contains("id=\"cancel-retry\""), "a viewer is offered Cancel");
    let cancel = format!("{job_page}/cancel");
    let refused = watcher.post(&cancel, &[("csrf", &watched.csrf())], &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let forged = browser.post(&cancel, &[("csrf", &"f".repeat(64))], &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);

    let cancelled = browser.post(&cancel, &[("csrf", &csrf)], &[]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER, "{}", cancelled.text);
    assert_eq!(cancelled.location(), job_page);
    let ended = until_ended(&browser, &job_page).await;
    assert!(ended.text.contains("data-status=\"cancelled\""), "{}", ended.text);
    assert!(!ended.text.contains("hx-trigger"), "a cancelled job is still polled");
    let requeued: usize = text_of(&ended, "job-requeued").parse().expect("a number");
    assert!(requeued < 200, "the cancel stopped nothing: {}", ended.text);
    // Cancelling an ended job again (in place, as htmx does) shows it as it is.
    let again =
        browser.post(&cancel, &[], &[("x-csrf-token", &csrf), ("hx-request", "true")]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert!(again.text.contains("data-status=\"cancelled\"") && !again.text.contains("<html"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_without_csrf_or_by_a_viewer_or_with_a_bad_filter_creates_nothing() {
    let relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::failing_first(1, 500).await;
    relay.create_automation("bulk_refused", &receiver.url("/hook")).await;
    relay.send_message("bulk_refused", json!({"n": 1})).await;
    relay.wait_logs_at_least("", 1).await;
    let mut admin = Browser::new(&relay);
    admin.sign_in(crate::helpers::ADMIN).await;
    let csrf = admin.get("/console/retry").await.csrf();

    // No CSRF token: refused, nothing counted or created.
    for path in ["/console/retry", "/console/retry/confirm"] {
        let refused = admin.post(path, &[("since", "1h")], &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}: {}", refused.text);
        assert!(refused.text.contains("security token"), "{path}: {}", refused.text);
    }
    assert_eq!(jobs(&relay).await, 0, "a confirmation without CSRF created a job");

    // A bad filter: the form names the field, nothing is created.
    for (field, value) in [
        ("since", "yesterday"),
        ("until", "2h"),
        ("status_code", "abc"),
        ("status_class", "9xx"),
        ("error_code", "E_NOPE"),
        ("automation_id", "nope"),
    ] {
        let since = if field == "since" { value } else { "1h" };
        let mut fields = vec![("csrf", csrf.as_str()), ("since", since)];
        fields.extend((field != "since").then_some((field, value)));
        for path in ["/console/retry", "/console/retry/confirm"] {
            let page = admin.post(path, &fields, &[]).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path} {field}: {}", page.text);
            assert!(
                page.text.contains(&format!("data-field=\"{field}\"")),
                "{path} {field}: {}",
                page.text
            );
            assert!(page.text.contains("aria-invalid=\"true\""), "{path} {field}: not marked");
        }
    }
    assert_eq!(jobs(&relay).await, 0, "a bad filter created a job");

    // A viewer: no link, no button, and refused.
    let (viewer, _) = key_of(&relay, "viewer").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&viewer).await;
    let logs = browser.get("/console/logs").await;
    assert!(!logs.text.contains("retry-these"), "a viewer is offered a bulk retry");
    let form = browser.get("/console/retry").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert!(!form.text.contains("id=\"dry-run\""), "a viewer has a dry-run button");
    assert!(form.text.contains("id=\"retry-not-allowed\""), "{}", form.text);
    for path in ["/console/retry", "/console/retry/confirm"] {
        let refused = browser.post(path, &[("csrf", &form.csrf()), ("since", "1h")], &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}: {}", refused.text);
        assert!(refused.text.contains("operator"), "{path}: {}", refused.text);
    }
    assert_eq!(jobs(&relay).await, 0, "a viewer created a job");
    assert_eq!(receiver.count(), 1, "something was retried");
}
