//! Workflow runs in the console: the list (newest first, by cursor, by app, by status), a run's detail
//! (inputs, outputs, timings, its nodes, the deliveries of its completion with links to
//! their logs), stored text shown escaped, 404s, bad filters, and sign-in.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::apps::{demo_app, start_to_end_app, DEMO_KEY};
use crate::common::{Receiver, Relay};
use crate::helpers::{key_of, Browser, ONE_ATTEMPT};

const HOSTILE: &str = "<script>alert(1)</script>";
const OTHER_KEY: &str = "app-other-key-0123456789";

/// A blocking run of the app with `key`; asserts it succeeded. Its id.
async fn run(relay: &Relay, key: &str, inputs: Value) -> String {
    let resp = crate::common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(key)
        .json(&json!({"inputs": inputs, "response_mode": "blocking", "user": "console-test"}))
        .send()
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["status"], "succeeded", "{body}");
    body["workflow_run_id"].as_str().expect("run id").to_string()
}

/// The row of the node table for the `index`th node run; panics when there is none.
fn node_row(page: &str, index: u32) -> &str {
    let at =
        page.find(&format!("id=\"node-{index}\"")).unwrap_or_else(|| panic!("{index}: {page}"));
    &page[at..at + page[at..].find("</tr>").expect("end of row")]
}

/// The stored nodes of run `run_id`, read from the relay's database file.
fn stored_nodes(relay: &Relay, run_id: &str) -> Vec<Value> {
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    let text: String = db
        .query_row("SELECT nodes FROM workflow_runs WHERE id = ?1", [run_id], |r| r.get(0))
        .expect("the run's row");
    serde_json::from_str(&text).expect("a JSON array")
}

/// The `href` of the first link whose target starts with `prefix`, unescaped (the console
/// escapes `/` and `&` in attributes).
fn href(page: &str, prefix: &str) -> String {
    let page = page.replace("&#x2f;", "/").replace("&amp;", "&");
    let at = page.find(&format!("href=\"{prefix}")).unwrap_or_else(|| panic!("{prefix}: {page}"));
    page[at + 6..at + 6 + page[at + 6..].find('"').expect("end")].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_listed_and_its_detail_shows_what_it_did_and_the_logs_it_produced() {
    let relay = Relay::start(&format!("{ONE_ATTEMPT}{}", demo_app()));
    let receiver = Receiver::ok().await;
    let automation = relay.create_automation("demo", &receiver.url("/hook")).await;
    let automation_id = automation["id"].as_str().expect("id");
    let run_id = run(&relay, DEMO_KEY, json!({"name": HOSTILE, "tone": "formal"})).await;
    let logs = relay.wait_logs_at_least(&format!("automation_id={automation_id}"), 1).await;
    let log_id = logs[0]["id"].as_str().expect("log id");

    let mut browser = Browser::new(&relay);
    browser.sign_in(&key_of(&relay, "viewer").await.0).await;
    let list = browser.get("/console/runs").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains(&format!("href=\"/console/runs/{run_id}\"")), "{}", list.text);
    assert!(list.text.contains("href=\"/console/runs\">Runs</a>"), "no nav link");

    let detail = browser.get(&format!("/console/runs/{run_id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    let text = &detail.text;
    assert!(text.contains("id=\"run-status\">succeeded"), "{text}");
    // start → is_formal → formal → end_formal.
    assert!(text.contains("id=\"run-steps\">4<"), "{text}");
    assert!(text.contains("id=\"run-elapsed\">0."), "{text}");
    // Its nodes, in order, each with its status and time.
    let stored = stored_nodes(&relay, &run_id);
    assert_eq!(stored.len(), 4, "{stored:?}");
    for (i, (id, kind)) in [
        ("start", "start"),
        ("is_formal", "if-else"),
        ("formal", "template-transform"),
        ("end_formal", "end"),
    ]
    .into_iter()
    .enumerate()
    {
        let row = node_row(text, i as u32 + 1);
        assert!(row.contains(&format!("data-node-id=\"{id}\"")), "{row}");
        assert!(row.contains(&format!("<td>{kind}</td>")), "{row}");
        assert!(row.contains("node-status\">succeeded<"), "{row}");
        let ms = stored[i]["elapsed_time"].as_f64().expect("elapsed") * 1000.0;
        assert!(row.contains(&format!("node-elapsed\">{ms:.1}<")), "{ms}: {row}");
    }
    assert!(!text.contains("id=\"node-5\""), "{text}");
    assert!(!text.contains("nodes-not-recorded"), "{text}");
    // Inputs and outputs, pretty-printed (a line per key) and escaped: the name as text.
    let escaped = "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;";
    assert!(!text.contains(HOSTILE), "stored input rendered as markup: {text}");
    let inputs = &text[text.find("id=\"run-inputs\"").expect("inputs")..];
    assert!(inputs.contains(&format!("\n  &quot;name&quot;: &quot;{escaped}&quot;")), "{inputs}");
    let outputs = &text[text.find("id=\"run-outputs\"").expect("outputs")..];
    let greeting = format!("&quot;greeting&quot;: &quot;Good day, {escaped}.&quot;");
    assert!(outputs.contains(&greeting), "{outputs}");
    // The delivery of its completion, linked to its log and to the filtered explorer.
    assert!(text.contains(&format!("href=\"/console/logs/{log_id}\"")), "{text}");
    let explorer = browser.get(&href(text, "/console/logs?automation_id=")).await;
    assert_eq!(explorer.status, StatusCode::OK, "{}", explorer.text);
    assert!(explorer.text.contains(&format!("/console/logs/{log_id}")), "{}", explorer.text);

    // A run stored before its nodes were (an older relay) says they were not recorded.
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
    let older = db.execute("UPDATE workflow_runs SET nodes = '[]' WHERE id = ?1", [&run_id]);
    assert_eq!(older.expect("update"), 1);
    let older = browser.get(&format!("/console/runs/{run_id}")).await;
    assert!(older.text.contains("id=\"nodes-not-recorded\""), "{}", older.text);
    assert!(older.text.contains("not recorded"), "{}", older.text);
    assert!(!older.text.contains("id=\"node-1\""), "{}", older.text);

    let unknown = browser.get("/console/runs/0193a7c4-0000-7000-8000-000000000000").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text.contains("There is no run with this id."), "{}", unknown.text);
    let malformed = browser.get("/console/runs/not-a-run").await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);

    let signed_out = Browser::new(&relay);
    for path in ["/console/runs".to_string(), format!("/console/runs/{run_id}")] {
        let page = signed_out.get(&path).await;
        assert!(page.status.is_redirection(), "{path}: {}", page.status);
        assert_eq!(page.location(), "/console/sign-in", "{path}");
    }
}

/// The run ids a list page links, in page order.
fn listed(page: &str) -> Vec<String> {
    page.match_indices("<td><a href=\"/console/runs/")
        .map(|(at, m)| {
            let rest = &page[at + m.len()..];
            rest[..rest.find('"').expect("end")].to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_paged_newest_first_and_filtered_by_app() {
    let apps = format!("{}{}", demo_app(), start_to_end_app("other", OTHER_KEY));
    let relay = Relay::start(&apps);
    let mut demo_runs = Vec::new();
    for i in 0..52 {
        demo_runs.push(run(&relay, DEMO_KEY, json!({"name": format!("n{i}")})).await);
    }
    let other = run(&relay, OTHER_KEY, json!({})).await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&key_of(&relay, "viewer").await.0).await;

    let first = browser.get("/console/runs").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let mut newest: Vec<String> = demo_runs.iter().rev().cloned().collect();
    newest.insert(0, other.clone());
    assert_eq!(listed(&first.text), newest[..50].to_vec(), "first page");
    assert!(!first.text.contains("rel=\"prev\""), "a newer page before the newest");
    let second = browser.get(&href(&first.text, "/console/runs?after=")).await;
    assert_eq!(listed(&second.text), newest[50..].to_vec(), "second page");
    assert!(!second.text.contains("rel=\"next\""), "an older page after the oldest");
    let back = browser.get(&href(&second.text, "/console/runs?before=")).await;
    assert_eq!(listed(&back.text), newest[..50].to_vec(), "back to the first page");

    let only_other = browser.get("/console/runs?app_id=other").await;
    assert_eq!(listed(&only_other.text), vec![other]);
    let demo = browser.get("/console/runs?app_id=demo").await;
    let demo_newest: Vec<String> = demo_runs.iter().rev().cloned().collect();
    assert_eq!(listed(&demo.text), demo_newest[..50].to_vec());
    let demo_older = browser.get(&href(&demo.text, "/console/runs?app_id=demo&after=")).await;
    assert_eq!(listed(&demo_older.text), demo_newest[50..].to_vec());
    let demo_back = browser.get(&href(&demo_older.text, "/console/runs?app_id=demo&before=")).await;
    assert_eq!(listed(&demo_back.text), demo_newest[..50].to_vec());
    // A run id holding NUL (which PostgreSQL's text cannot hold) names no run, as on SQLite.
    let nul = browser.get(&format!("/console/runs/{}%00", demo_runs[0])).await;
    assert_eq!(nul.status, StatusCode::NOT_FOUND, "{}", nul.text);
    assert!(nul.text.contains("There is no run with this id."), "{}", nul.text);

    for (query, field) in
        [("after=42", "after"), ("status=lost", "status"), ("state=failed", "state")]
    {
        let page = browser.get(&format!("/console/runs?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.text.contains(&format!("data-field=\"{field}\"")), "{query}: {}", page.text);
        assert!(page.text.contains("Wrong filter"), "{query}: {}", page.text);
    }
}

/// An app whose one http-request node calls a port nothing listens on, so its runs fail.
fn failing_app(key: &str) -> String {
    format!(
        r#"
[[apps]]
id = "broken"
api_keys = ["{key}"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "call"
title = "Call <b>it</b>"
type = "http-request"
method = "GET"
url = "http://127.0.0.1:9/nothing?a=1&b=2"
[[apps.nodes]]
id = "end"
type = "end"
outputs = []
[[apps.edges]]
source = "start"
target = "call"
[[apps.edges]]
source = "call"
target = "end"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_shows_its_error_as_text() {
    let key = "app-broken-key-0123456789";
    let relay = Relay::start(&failing_app(key));
    let body = failed_run(&relay, key).await;
    let error = body["data"]["error"].as_str().expect("an error");
    assert!(error.contains("a=1&b=2"), "the error names the URL: {error}");
    let run_id = body["workflow_run_id"].as_str().expect("run id");

    let mut browser = Browser::new(&relay);
    browser.sign_in(&key_of(&relay, "viewer").await.0).await;
    let detail = browser.get(&format!("/console/runs/{run_id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    assert!(detail.text.contains("id=\"run-status\">failed"), "{}", detail.text);
    let escaped = error.replace('&', "&amp;").replace('/', "&#x2f;");
    let shown = format!("id=\"run-error\">{escaped}<");
    assert!(detail.text.contains(&shown), "{shown}: {}", detail.text);
    assert!(detail.text.contains("id=\"run-outputs\">(none)"), "{}", detail.text);
    // The failed node, last, with its title and error as text.
    let stored = stored_nodes(&relay, run_id);
    assert_eq!(stored.len(), 2, "start and call: {stored:?}");
    let node_error = stored[1]["error"].as_str().expect("the node's error");
    assert!(error.contains(node_error), "{error} tells {node_error}");
    let row = node_row(&detail.text, 2);
    assert!(row.contains("data-node-id=\"call\""), "{row}");
    assert!(row.contains("Call &lt;b&gt;it&lt;&#x2f;b&gt;"), "title escaped: {row}");
    assert!(row.contains("node-status\">failed<"), "{row}");
    let escaped = node_error.replace('&', "&amp;").replace('/', "&#x2f;");
    assert!(row.contains(&format!("node-error\">{escaped}<")), "{escaped}: {row}");
    assert!(node_row(&detail.text, 1).contains("node-status\">succeeded<"));
}

/// A blocking run of the failing app with `key`; asserts it failed. Dify's answer.
async fn failed_run(relay: &Relay, key: &str) -> Value {
    let resp = crate::common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(key)
        .json(&json!({"inputs": {}, "response_mode": "blocking", "user": "console-test"}))
        .send()
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["status"], "failed", "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_filtered_by_status_alone_or_with_their_app_across_pages() {
    let broken_key = "app-broken-key-0123456789";
    let relay = Relay::start(&format!("{}{}", demo_app(), failing_app(broken_key)));
    let mut failed = Vec::new();
    let mut succeeded = Vec::new();
    for i in 0..52 {
        let answer = failed_run(&relay, broken_key).await;
        failed.push(answer["workflow_run_id"].as_str().expect("run id").to_string());
        if i % 10 == 0 {
            succeeded.push(run(&relay, DEMO_KEY, json!({"name": format!("n{i}")})).await);
        }
    }
    failed.reverse();
    succeeded.reverse();
    let mut browser = Browser::new(&relay);
    browser.sign_in(&key_of(&relay, "viewer").await.0).await;

    for prefix in ["/console/runs?status=failed", "/console/runs?app_id=broken&status=failed"] {
        let first = browser.get(prefix).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text);
        assert_eq!(listed(&first.text), failed[..50].to_vec(), "{prefix}");
        assert!(first.text.contains("value=\"failed\" selected"), "{prefix}: the filter shown");
        let older = browser.get(&href(&first.text, &format!("{prefix}&after="))).await;
        assert_eq!(listed(&older.text), failed[50..].to_vec(), "{prefix}: the second page");
        let back = browser.get(&href(&older.text, &format!("{prefix}&before="))).await;
        assert_eq!(listed(&back.text), failed[..50].to_vec(), "{prefix}: back");
    }
    let ok = browser.get("/console/runs?status=succeeded").await;
    assert_eq!(listed(&ok.text), succeeded, "succeeded runs only");
    let none = browser.get("/console/runs?app_id=demo&status=failed").await;
    assert!(listed(&none.text).is_empty(), "the demo app has no failed run");
    assert!(none.text.contains("No run of this app in status failed."), "{}", none.text);
}

/// An app calling `url` three times in a row (each node an http-request), then ending.
fn three_calls_app(key: &str, url: &str) -> String {
    let mut app = format!(
        "\n[[apps]]\nid = \"calls\"\napi_keys = [\"{key}\"]\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n"
    );
    for call in ["one", "two", "three"] {
        app +=
            &format!("[[apps.nodes]]\nid = \"{call}\"\ntype = \"http-request\"\nurl = \"{url}\"\n");
    }
    app += "[[apps.nodes]]\nid = \"end\"\ntype = \"end\"\noutputs = []\n";
    for (from, to) in [("start", "one"), ("one", "two"), ("two", "three"), ("three", "end")] {
        app += &format!("[[apps.edges]]\nsource = \"{from}\"\ntarget = \"{to}\"\n");
    }
    app
}

/// The start time the node row shows, in Unix milliseconds; panics unless it has them.
fn started_ms(row: &str) -> i64 {
    let at = row.find("datetime=\"").expect("a start time") + 10;
    let text = &row[at..at + row[at..].find('"').expect("end")];
    assert_eq!(text.len(), "2026-01-01T00:00:00.000Z".len(), "not to the millisecond: {text}");
    chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339").timestamp_millis()
}

/// Nodes taking well under a second show distinct start times, in order, to the millisecond
/// (Dify's `created_at` has seconds, so they would all show the same second), each at least
/// the previous node's elapsed time after it. Nodes stored before their milliseconds were
/// show whole seconds, without an invented `.000`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_start_times_are_shown_to_the_millisecond() {
    let key = "app-calls-key-0123456789";
    let (url, calls) =
        crate::common::slow::slow_receiver(std::time::Duration::from_millis(30)).await;
    let relay = Relay::start(&three_calls_app(key, &url));
    let run_id = run(&relay, key, json!({})).await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    let mut browser = Browser::new(&relay);
    browser.sign_in(&key_of(&relay, "viewer").await.0).await;
    let detail = browser.get(&format!("/console/runs/{run_id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    let stored = stored_nodes(&relay, &run_id);
    let started: Vec<i64> = (1..=5).map(|i| started_ms(node_row(&detail.text, i))).collect();
    for (i, node) in stored.iter().enumerate() {
        assert_eq!(node["started_at_ms"].as_i64(), Some(started[i]), "{node}");
        assert_eq!(node["started_at"].as_i64(), Some(started[i].div_euclid(1000)), "{node}");
    }
    assert!(started[0] <= started[1], "{started:?}");
    assert!(started[4] - started[0] < 1000, "the run took a second or more: {started:?}");
    for i in 1..4 {
        let elapsed_ms = stored[i]["elapsed_time"].as_f64().expect("elapsed") * 1000.0;
        assert!(elapsed_ms >= 30.0, "{}", stored[i]);
        let gap = started[i + 1] - started[i];
        assert!(
            gap as f64 >= elapsed_ms.floor(),
            "node {} started {gap} ms after {}",
            i + 2,
            i + 1
        );
    }

    // A run stored by an older relay: its nodes have seconds only.
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    db.busy_timeout(std::time::Duration::from_secs(5)).expect("busy timeout");
    let older = "UPDATE workflow_runs SET nodes = (SELECT json_group_array(json_remove(value, \
                 '$.started_at_ms')) FROM json_each(nodes)) WHERE id = ?1";
    assert_eq!(db.execute(older, [&run_id]).expect("update"), 1);
    let older = browser.get(&format!("/console/runs/{run_id}")).await;
    assert_eq!(older.status, StatusCode::OK, "{}", older.text);
    let row = node_row(&older.text, 2);
    let seconds = chrono::DateTime::from_timestamp(started[1].div_euclid(1000), 0).expect("time");
    let shown = seconds.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(row.contains(&format!("datetime=\"{shown}\"")), "{shown}: {row}");
}
