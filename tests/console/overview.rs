//! The overview page (issue 13 §2): calls per minute from the per-minute rollup, success
//! ratio, latency, backlog, the automations failing most and the errors by code; its charts
//! are inline SVG; and the rollup, counted in the background, neither double counts nor
//! skips a log across a kill -9 or an upgrade from a database without it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rusqlite::Connection;
use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{key_of, Browser, Page, ADMIN, ONE_ATTEMPT};

/// The text of the element with `id` up to its closing tag `end`.
fn element<'a>(page: &'a Page, id: &str, end: &str) -> &'a str {
    let at = page.text.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    &page.text[at..at + page.text[at..].find(end).expect("element end")]
}

/// The text inside `<dd id="{id}">`.
fn figure<'a>(page: &'a Page, id: &str) -> &'a str {
    let dd = element(page, id, "</dd>");
    &dd[dd.find('>').expect(">") + 1..]
}

/// A URL on which nothing listens: its calls are refused.
async fn refusing_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/hook")
}

/// A new automation of `processor` named `name` calling `url`: its id.
async fn automation(relay: &Relay, processor: &str, name: &str, url: &str) -> String {
    let (status, created) = relay
        .post_json(
            "/v1/processors/automations/endpoints",
            &json!({"name": name, "processor_id": processor, "webhook_url": url}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

/// Sends `n` messages to `processor` and waits for `n` logs of `automation`.
async fn calls(relay: &Relay, processor: &str, automation: &str, n: usize) {
    for i in 0..n {
        relay.send_message(processor, json!({"n": i})).await;
    }
    relay.wait_logs_at_least(&format!("automation_id={automation}"), n).await;
}

/// The overview once it counts `calls` calls in the last hour (the rollup trails the logs
/// by a pass, every 2 s).
async fn overview_with(browser: &Browser, calls: usize) -> Page {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = browser.get("/console/overview").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        if figure(&page, "hour-calls") == calls.to_string() {
            return page;
        }
        assert!(Instant::now() < deadline, "the overview never counted {calls}: {}", page.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_calls_by_outcome_with_the_failing_automation_first() {
    let relay = Relay::start(ONE_ATTEMPT);
    let (ok, failing) = (Receiver::ok().await, Receiver::failing_first(1_000, 500).await);
    let fine = automation(&relay, "fine", "fine", &ok.url("/hook")).await;
    let broken = automation(&relay, "broken", "broken", &failing.url("/hook")).await;
    let gone = automation(&relay, "gone", "gone", &refusing_url().await).await;
    calls(&relay, "fine", &fine, 4).await;
    calls(&relay, "broken", &broken, 3).await;
    calls(&relay, "gone", &gone, 2).await;
    let (viewer, _) = key_of(&relay, "viewer").await;
    let mut browser = Browser::new(&relay);
    let signed_out = browser.get("/console/overview").await;
    assert_eq!(signed_out.location(), "/console/sign-in", "no page without a session");
    browser.sign_in(&viewer).await;
    assert_eq!(browser.get("/console").await.location(), "/console/overview");
    assert_eq!(browser.get("/console/").await.location(), "/console/overview");

    let page = overview_with(&browser, 9).await;
    for window in ["hour", "day"] {
        assert_eq!(figure(&page, &format!("{window}-calls")), "9");
        assert_eq!(figure(&page, &format!("{window}-succeeded")), "4");
        assert_eq!(figure(&page, &format!("{window}-failed")), "5");
        assert_eq!(figure(&page, &format!("{window}-ratio")), "44.4 %");
        assert!(figure(&page, &format!("{window}-p50")).contains(" ms"), "{}", page.text);
        assert!(figure(&page, &format!("{window}-p99")).contains(" ms"), "{}", page.text);
    }
    assert_eq!(figure(&page, "due-backlog"), "0");
    // Failing most first: broken (3), then gone (2); fine, which never failed, is absent.
    let (at_broken, at_gone) = (
        page.text.find(&format!("id=\"failing-{broken}\"")).expect("broken listed"),
        page.text.find(&format!("id=\"failing-{gone}\"")).expect("gone listed"),
    );
    assert!(at_broken < at_gone, "broken fails most");
    assert!(!page.text.contains(&format!("id=\"failing-{fine}\"")));
    let broken_row = element(&page, &format!("failing-{broken}"), "</tr>");
    assert!(broken_row.contains("<td class=\"failed-count\">3</td>"), "{broken_row}");
    assert!(broken_row.contains("<td class=\"last-error\">E_HTTP_STATUS</td>"), "{broken_row}");
    let gone_row = element(&page, &format!("failing-{gone}"), "</tr>");
    assert!(gone_row.contains("<td class=\"last-error\">E_CONNECTION</td>"), "{gone_row}");
    let by_code = |code: &str| element(&page, &format!("error-{code}"), "</tr>").to_string();
    assert!(by_code("E_HTTP_STATUS").contains("<td class=\"count\">3</td>"));
    assert!(by_code("E_CONNECTION").contains("<td class=\"count\">2</td>"));
    assert!(page.text.contains("<a class=\"brand\" href=\"/console/overview\">"));
    assert!(page.text.contains("<a href=\"/console/overview\">Overview</a>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_are_inline_svg_and_stored_text_is_shown_escaped() {
    let relay = Relay::start(ONE_ATTEMPT);
    let failing = Receiver::failing_first(1_000, 503).await;
    let name = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let evil = automation(&relay, "evil", name, &failing.url("/hook")).await;
    calls(&relay, "evil", &evil, 2).await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;

    let page = overview_with(&browser, 2).await;
    let row = element(&page, &format!("failing-{evil}"), "</tr>");
    assert!(row.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{row}");
    assert!(!page.text.contains("<script>alert") && !page.text.contains("<img"));
    // The only script is the console's own file; no inline style for the CSP to refuse.
    assert_eq!(page.text.matches("<script").count(), 1);
    assert!(page.text.contains("<script src=\"/console/assets/htmx.min.js\" defer></script>"));
    assert!(!page.text.contains("style="), "an inline style attribute");
    assert!(page.header("content-security-policy").contains("style-src 'self'"));
    let hour = element(&page, "hour-chart", "</svg>");
    assert!(hour.contains("viewBox=\"0 0 600 120\""), "{hour}");
    assert_eq!(hour.matches("<title>").count(), 60, "a minute per bar: {hour}");
    // Both calls failed in this minute (or the one before, across a minute's end).
    let bars = hour.matches("<rect class=\"failed\"").count();
    assert!(bars == 1 || bars == 2, "empty bars are not drawn: {hour}");
    assert_eq!(hour.matches("<rect").count(), bars, "no succeeded bar: {hour}");
    assert!(hour.contains("y=\"0\" width=\"8\" height=\"120\"/>"), "the top fills it: {hour}");
    let day = element(&page, "day-chart", "</svg>");
    assert!(day.contains("<path class=\"failed\" d=\"M0,120H") && day.contains("V0H"), "{day}");
}

/// The rollup's totals against the logs table: (rolled up calls, latency-bucket calls,
/// logs, rolled up errors, logs with an error), once the cursor is at the newest log.
fn totals(db: &std::path::Path) -> Option<(i64, i64, i64, i64, i64)> {
    let db = Connection::open(db).expect("open db");
    let caught_up: bool = db
        .query_row(
            "SELECT (SELECT last_log_id FROM rollup_cursor) IS (SELECT max(id) FROM logs)",
            [],
            |r| r.get(0),
        )
        .expect("cursor");
    caught_up.then(|| {
        db.query_row(
            "SELECT (SELECT coalesce(sum(succeeded + failed), 0) FROM rollup_minutes), \
             (SELECT coalesce(sum(calls), 0) FROM rollup_latency), (SELECT count(*) FROM logs), \
             (SELECT coalesce(sum(calls), 0) FROM rollup_errors), \
             (SELECT count(*) FROM logs WHERE error_code IS NOT NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("totals")
    })
}

/// Waits for the rollup to reach the newest log, then checks it counted each log once.
async fn assert_counted_once(relay: &Relay) -> i64 {
    let db = relay.dir.path().join("hookrelay.db");
    let (rolled, latency, logs, errors, failed) = relay
        .wait_for(Duration::from_secs(30), "the rollup to catch up", || {
            let db = db.clone();
            async move { totals(&db) }
        })
        .await;
    assert_eq!((rolled, latency, errors), (logs, logs, failed), "each log counted once");
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_or_an_upgrade_neither_double_counts_nor_skips_a_log() {
    let mut relay = Relay::start(ONE_ATTEMPT);
    let (ok, failing) = (Receiver::ok().await, Receiver::failing_first(1_000, 500).await);
    let fine = automation(&relay, "fine", "fine", &ok.url("/hook")).await;
    let broken = automation(&relay, "broken", "broken", &failing.url("/hook")).await;
    calls(&relay, "broken", &broken, 5).await;
    // Killed while messages are being delivered and counted.
    for i in 0..60 {
        relay.send_message("fine", json!({"n": i})).await;
    }
    relay.kill9();
    relay.restart();
    relay.wait_logs_at_least(&format!("automation_id={fine}"), 60).await;
    let first = assert_counted_once(&relay).await;
    assert!(first >= 65, "{first} logs");

    // A database from before the rollup (schema 14): counted from its first log on start.
    relay.terminate();
    let db = Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    // Versions 15 to 21 taken out: the rollup, the rate limit, and FIFO's column, index and
    // triggers (which the upgrade adds again).
    db.execute_batch(
        "DROP TABLE rollup_cursor; DROP TABLE rollup_minutes; DROP TABLE rollup_latency; \
         DROP TABLE rollup_errors; DROP TABLE rollup_classes; \
         ALTER TABLE automations DROP COLUMN rate_limit_per_sec; \
         DROP TRIGGER deliveries_fifo_kept_waiting; \
         DROP TRIGGER deliveries_fifo_stored; DROP TRIGGER deliveries_fifo_requeued; \
         DROP TRIGGER deliveries_fifo_ended; DROP TRIGGER deliveries_fifo_deleted; \
         DROP INDEX deliveries_fifo; ALTER TABLE automations DROP COLUMN ordering; \
         ALTER TABLE deliveries DROP COLUMN fifo; PRAGMA user_version = 14;",
    )
    .expect("back to schema 14");
    drop(db);
    relay.restart();
    relay.send_message("broken", json!({"n": "after the upgrade"})).await;
    relay.wait_logs_at_least(&format!("automation_id={broken}"), 6).await;
    assert_eq!(assert_counted_once(&relay).await, first + 1);
}

/// Retention deletes only logs the rollup has counted: with logs kept one second and
/// deleted as fast as retention can, the overview still counts every call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_deleted_by_a_short_retention_are_counted_first() {
    let toml = format!(
        "{ONE_ATTEMPT}\n[retention]\nlogs_secs = 1\ninterval_ms = 1\nbatch_rows = 10000\n\
         batch_pause_ms = 0\n"
    );
    let relay = Relay::start(&toml);
    let ok = Receiver::ok().await;
    automation(&relay, "fast", "fast", &ok.url("/hook")).await;
    const CALLS: i64 = 400;
    for i in 0..CALLS {
        relay.send_message("fast", json!({"n": i})).await;
    }
    let db = relay.dir.path().join("hookrelay.db");
    let counted = relay
        .wait_for(Duration::from_secs(30), "every call counted and its log deleted", || {
            let (db, ok) = (db.clone(), ok.clone());
            async move {
                let db = Connection::open(db).expect("open db");
                let (counted, logs): (i64, i64) = db
                    .query_row(
                        "SELECT (SELECT coalesce(sum(succeeded + failed), 0) FROM rollup_minutes), \
                         (SELECT count(*) FROM logs)",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .expect("totals");
                (ok.count() as i64 == CALLS && logs == 0).then_some(counted)
            }
        })
        .await;
    assert_eq!(counted, CALLS, "calls whose logs went before they were counted");
}
