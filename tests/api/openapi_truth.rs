//! Issue 14 §1, the OpenAPI document's truth: the answers of the spreadsheets, sink, replay,
//! expunge, test call, workflow app and open routes validate against it, a route
//! documented without a request body refuses one, and `/docs` lets only its own scripts run.

use base64::Engine;
use hookrelay::api::openapi::path_params;
use hookrelay::api::routes::served;
use hookrelay::api::Credential;
use reqwest::Method;
use serde_json::json;
use sha2::Digest;

use crate::common::apps::{demo_app, DEMO_KEY};
use crate::common::{Receiver, Relay, ENDPOINTS};
use crate::helpers::send;
use crate::openapi::{call, document, Contract};

/// Every operation documented without a request body truly takes none: sent one, it is
/// refused (400 naming `body`) before it acts, so the document cannot leave out a body a
/// route reads. (The unit test `every_operation_documents_its_body_and_its_errors` checks
/// that each documented body has its schema.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_documented_without_a_body_refuses_one() {
    let relay = Relay::start("");
    let doc = document(&relay).await;
    let mut checked = Vec::new();
    for (method, path, credential) in served() {
        let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
        if method == Method::GET || !op["requestBody"].is_null() {
            continue;
        }
        assert!(matches!(credential, Credential::Key(_)), "{method} {path}: keyed routes only");
        let mut concrete = path.to_string();
        for name in path_params(path) {
            concrete = concrete.replace(&format!("{{{name}}}"), "x");
        }
        let r = call(&relay, method.clone(), &concrete, Some(json!({"unexpected": 1}))).await;
        let ctx = format!("{method} {path}: {}", r.text);
        assert_eq!((r.status, r.body["field"].as_str()), (400, Some("body")), "{ctx}");
        checked.push(format!("{method} {path}"));
    }
    assert_eq!(checked.len(), 10, "{checked:#?}");
}

/// `/docs` has a Content-Security-Policy that lets exactly its own inline scripts run (by
/// their SHA-256), nothing else: no `'unsafe-inline'` or `'unsafe-eval'` script, no other
/// origin, no framing. (`console::browser` checks Swagger UI still runs under it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_allows_only_its_own_scripts() {
    let relay = Relay::start("");
    let r = send(&relay, Method::GET, "/docs", &[], None).await;
    let policy = r.headers.get("content-security-policy").and_then(|v| v.to_str().ok());
    let policy = policy.expect("a Content-Security-Policy");
    let directive = |name: &str| -> Vec<&str> {
        let found = policy.split(';').map(str::trim).find(|d| d.starts_with(&format!("{name} ")));
        found.map(|d| d.split_whitespace().skip(1).collect()).unwrap_or_default()
    };
    // Each script's text runs from the first `<script>` after the previous one's end (the
    // bundle holds the text `<script>` within, but never `</script`).
    let pieces: Vec<&str> = r.text.split("</script>").collect();
    let mut inline: Vec<String> = pieces[..pieces.len() - 1]
        .iter()
        .map(|piece| piece.split_once("<script>").expect("an opening tag").1)
        .map(|text| {
            let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text));
            format!("'sha256-{hash}'")
        })
        .collect();
    assert_eq!(inline.len(), 2, "the bundle and its start");
    let mut allowed: Vec<String> = directive("script-src").iter().map(|s| s.to_string()).collect();
    inline.sort();
    allowed.sort();
    assert_eq!(allowed, inline, "{policy}");
    assert_eq!(directive("default-src"), ["'none'"], "{policy}");
    assert_eq!(directive("connect-src"), ["'self'"], "{policy}");
    assert_eq!(directive("frame-ancestors"), ["'none'"], "{policy}");
    assert_eq!(directive("base-uri"), ["'none'"], "{policy}");
    assert!(!r.text.contains("<script src"), "no script file to allow");
    let nosniff = r.headers.get("x-content-type-options").and_then(|v| v.to_str().ok());
    assert_eq!(nosniff, Some("nosniff"));
}

/// Real answers of the routes `openapi::real_answers_validate_against_the_documented_schemas`
/// leaves out validate against the schemas documented for them (schemathesis checks them
/// from generated input in `.ci/run`; this from the answers a client usually gets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_answers_validate_against_the_documented_schemas() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(&demo_app());
    let mut c = Contract { doc: document(&relay).await, checked: 0 };
    let post = Method::POST;

    let sheet = json!({"title": "t", "sheets": ["a", "b"]});
    let created = call(&relay, post.clone(), "/v1/spreadsheets", Some(sheet)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    c.check("POST", "/v1/spreadsheets", &created);
    let id = created.body["spreadsheetId"].as_str().expect("id").to_string();
    c.check("GET", "/v1/spreadsheets", &call(&relay, Method::GET, "/v1/spreadsheets", None).await);
    let one = "/v1/spreadsheets/{id}";
    c.check("GET", one, &call(&relay, Method::GET, &format!("/v1/spreadsheets/{id}"), None).await);
    let sink = "/v1/integrations/google_sheets/webhook";
    for n in [1, 2] {
        let row = json!({"n": n, "nested": {"text": "x"}});
        let r = call(&relay, post.clone(), &format!("{sink}?spreadsheet_id={id}"), Some(row)).await;
        assert_eq!((r.status, r.body["tableRange"].is_string()), (200, n == 2), "{}", r.text);
        c.check("POST", sink, &r);
    }
    let range = format!("/v1/spreadsheets/{id}/values/A1:C3");
    let values = call(&relay, Method::GET, &range, None).await;
    assert_eq!(values.body["values"].as_array().map(Vec::len), Some(3), "{}", values.text);
    c.check("GET", "/v1/spreadsheets/{id}/values/{range}", &values);
    let signer = format!("/v1/spreadsheets/{id}/signer");
    let unlinked = call(&relay, Method::DELETE, &signer, None).await;
    assert_eq!(unlinked.status, 404, "no signer: {}", unlinked.text);
    c.check("DELETE", "/v1/spreadsheets/{id}/signer", &unlinked);
    let removed = call(&relay, Method::DELETE, &format!("/v1/spreadsheets/{id}"), None).await;
    c.check("DELETE", one, &removed);

    let automation = relay.create_automation("p1", &receiver.url("/h")).await;
    let aid = automation["id"].as_str().expect("automation id");
    let test_call = format!("/v1/processors/automations/tests/webhook/{aid}");
    let tested = call(&relay, post.clone(), &test_call, None).await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    c.check("POST", "/v1/processors/automations/tests/webhook/{id}", &tested);
    let replay = format!("{ENDPOINTS}/{aid}/replay-missing");
    let job = call(&relay, post.clone(), &replay, Some(json!({"since": "1h"}))).await;
    assert_eq!(job.status, 202, "{}", job.text);
    c.check("POST", &format!("{ENDPOINTS}/{{id}}/replay-missing"), &job);
    let job_id = job.body["id"].as_str().expect("job id");
    let shown = call(&relay, Method::GET, &format!("{replay}/{job_id}"), None).await;
    c.check("GET", &format!("{ENDPOINTS}/{{id}}/replay-missing/{{job_id}}"), &shown);
    let message = json!({"processor_id": "p1", "payload": {"n": 1}});
    let ingested = call(&relay, post.clone(), "/v1/messages", Some(message)).await;
    let mid = ingested.body["id"].as_str().expect("message id");
    let erased = call(&relay, Method::DELETE, &format!("/v1/messages/{mid}/content"), None).await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    c.check("DELETE", "/v1/messages/{id}/content", &erased);

    let app = [("Authorization", format!("Bearer {DEMO_KEY}"))];
    let run = |mode: &str| json!({"inputs": {"name": "Ann"}, "user": "u", "response_mode": mode});
    let ran =
        send(&relay, post.clone(), "/v1/workflows/run", &app, Some(run("blocking").to_string()));
    let ran = ran.await;
    assert_eq!(ran.status, 200, "{}", ran.text);
    c.check("POST", "/v1/workflows/run", &ran);
    let run_id = ran.body["workflow_run_id"].as_str().expect("run id");
    let detail = format!("/v1/workflows/run/{run_id}");
    let detail = send(&relay, Method::GET, &detail, &app, None).await;
    c.check("GET", "/v1/workflows/run/{id}", &detail);
    let started =
        send(&relay, post.clone(), "/v1/workflows/run", &app, Some(run("async").to_string()));
    let started = started.await;
    assert_eq!(started.status, 202, "{}", started.text);
    c.check("POST", "/v1/workflows/run", &started);
    let task = started.body["task_id"].as_str().expect("task id");
    let stop = format!("/v1/workflows/tasks/{task}/stop");
    let stopped = send(&relay, post.clone(), &stop, &app, Some(json!({"user": "u"}).to_string()));
    c.check("POST", "/v1/workflows/tasks/{task_id}/stop", &stopped.await);
    for path in ["/v1/workflows/logs", "/v1/parameters"] {
        c.check("GET", path, &send(&relay, Method::GET, path, &app, None).await);
    }
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        c.check("GET", path, &send(&relay, Method::GET, path, &[], None).await);
    }
    assert_eq!(c.checked, 21);
}
