mod common;

// End-to-end tests of the `/v1` API surface: auth on every route, bad input, automations,
// cursor pagination, log filters, rerun, idempotent ingest, recover jobs, the test webhook,
// and the uiform `AutomationLog` shape of every log served.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, SecondsFormat, Utc};
use common::{verify_signature, Receiver, Relay, KEY};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const ENDPOINTS: &str = "/v1/processors/automations/endpoints";
const LOGS: &str = "/v1/processors/automations/logs";
/// What an error about unparseable JSON mentions.
const MALFORMED: &str = "json|eof|expected|parsing";
const ZERO_HEX: &str = "00000000000000000000000000000000";

/// The compressed test schedule with another maximum attempt count.
fn retries(max_attempts: u32) -> String {
    assert!(common::FAST_RETRIES.contains("max_attempts = 4"));
    common::FAST_RETRIES.replace("max_attempts = 4", &format!("max_attempts = {max_attempts}"))
}

/// Now minus `secs`, as RFC 3339 UTC with a `Z` (safe in a query string).
fn rfc3339_ago(secs: i64) -> String {
    (Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Request headers as (name, value) pairs.
type Headers = Vec<(&'static str, String)>;

/// One answer, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

/// Sends `method path` with exactly `headers` (no key unless given) and an optional raw body.
async fn send(
    relay: &Relay,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<String>,
) -> Resp {
    let mut req = common::client().request(method, relay.url(path));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("text");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, text, body }
}

/// Sends with the admin key in `Api-Key`.
async fn send_ok(relay: &Relay, method: Method, path: &str, body: Option<String>) -> Resp {
    send(relay, method, path, &[("Api-Key", KEY.to_string())], body).await
}

/// Asserts an error answer: `status`, a JSON `{code, message, status[, field]}` and nothing
/// else, naming `hint` (or one of its `|`-separated alternatives) in its `field` or
/// `message` (when `hint` is not empty).
fn assert_error(r: &Resp, status: u16, hint: &str, ctx: &str) {
    assert_eq!(r.status, status, "{ctx}: {}", r.text);
    let ct = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(ct.contains("application/json"), "{ctx}: content-type {ct:?}: {}", r.text);
    let obj = r.body.as_object().unwrap_or_else(|| panic!("{ctx}: not a JSON object: {}", r.text));
    for key in obj.keys() {
        assert!(
            ["code", "message", "status", "field"].contains(&key.as_str()),
            "{ctx}: unexpected key {key} in error {}",
            r.text
        );
    }
    assert!(obj["code"].as_str().is_some_and(|c| !c.is_empty()), "{ctx}: code: {}", r.text);
    assert!(obj["message"].as_str().is_some_and(|m| !m.is_empty()), "{ctx}: message: {}", r.text);
    assert_eq!(obj["status"], json!(status), "{ctx}: status in body: {}", r.text);
    if !hint.is_empty() {
        let field = obj.get("field").and_then(Value::as_str).unwrap_or("");
        let message = obj["message"].as_str().unwrap_or("");
        let (field, message) = (field.to_lowercase(), message.to_lowercase());
        assert!(
            hint.to_lowercase().split('|').any(|h| field.contains(h) || message.contains(h)),
            "{ctx}: error does not name {hint:?}: {}",
            r.text
        );
    }
}

fn assert_time(v: &Value, ctx: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{ctx}: not a string: {v}"));
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{ctx}: {s:?} not RFC 3339: {e}"));
}

fn assert_string_map(v: &Value, ctx: &str) {
    let obj = v.as_object().unwrap_or_else(|| panic!("{ctx}: not an object: {v}"));
    for (k, val) in obj {
        assert!(val.is_string(), "{ctx}: {k} is not a string: {val}");
    }
}

/// Every key uiform's `ExternalRequestLog` requires, with the right types.
fn assert_external_request_log(e: &Value) {
    let keys = [
        "webhook_url",
        "request_body",
        "request_headers",
        "request_at",
        "response_body",
        "response_headers",
        "response_at",
        "status_code",
        "error",
        "duration_ms",
    ];
    for k in keys {
        assert!(e.get(k).is_some(), "ExternalRequestLog lacks {k}: {e}");
    }
    let url = e["webhook_url"].as_str().expect("webhook_url");
    assert!(url.starts_with("http://") || url.starts_with("https://"), "{url}");
    assert!(e["request_body"].is_object(), "request_body: {e}");
    assert!(e["response_body"].is_object(), "response_body: {e}");
    assert_string_map(&e["request_headers"], "request_headers");
    assert_string_map(&e["response_headers"], "response_headers");
    assert_time(&e["request_at"], "request_at");
    assert_time(&e["response_at"], "response_at");
    assert!(e["status_code"].is_u64(), "status_code: {e}");
    assert!(e["error"].is_null() || e["error"].is_string(), "error: {e}");
    assert!(e["duration_ms"].is_number(), "duration_ms: {e}");
}

/// Every key uiform's `AutomationLog` requires, with the right types.
fn assert_uiform_log(log: &Value) {
    let keys = [
        "object",
        "id",
        "user_email",
        "organization_id",
        "created_at",
        "automation_snapshot",
        "completion",
        "file_metadata",
        "external_request_log",
    ];
    for k in keys {
        assert!(log.get(k).is_some(), "AutomationLog lacks {k}: {log}");
    }
    assert_eq!(log["object"], "automation_log");
    assert!(log["id"].as_str().is_some_and(|i| i.starts_with("log_auto_")), "{}", log["id"]);
    assert!(log["user_email"].is_null() || log["user_email"].is_string(), "{log}");
    assert!(log["organization_id"].is_string(), "organization_id: {log}");
    assert_time(&log["created_at"], "created_at");
    let snap = &log["automation_snapshot"];
    for k in ["name", "processor_id", "webhook_url"] {
        assert!(snap[k].is_string(), "automation_snapshot.{k}: {snap}");
    }
    let c = &log["completion"];
    assert!(c["id"].is_string(), "completion.id: {c}");
    assert_eq!(c["object"], "chat.completion", "{c}");
    assert!(c["created"].is_i64(), "completion.created: {c}");
    assert!(c["model"].is_string(), "completion.model: {c}");
    let choices = c["choices"].as_array().expect("choices");
    assert!(!choices.is_empty(), "{c}");
    for ch in choices {
        assert!(ch["message"]["role"].is_string(), "choice: {ch}");
    }
    let f = &log["file_metadata"];
    assert!(f.is_null() || (f["filename"].is_string() && f["url"].is_string()), "{f}");
    let e = &log["external_request_log"];
    if !e.is_null() {
        assert_external_request_log(e);
    }
}

/// Waits until `relay` lists exactly `n` logs (optionally filtered), returning them.
async fn wait_logs(relay: &Relay, query: &str, n: usize) -> Vec<Value> {
    relay
        .wait_for(WAIT, &format!("{n} logs{query}"), || async {
            let logs = relay.all_logs(query).await;
            (logs.len() == n).then_some(logs)
        })
        .await
}

async fn count_list(relay: &Relay, path: &str) -> usize {
    let page = relay.get_json(path).await;
    assert!(page["list_metadata"]["after"].is_null(), "use a bigger limit: {page}");
    page["data"].as_array().expect("data").len()
}

fn ids_of(items: &[Value]) -> Vec<String> {
    items.iter().map(|v| v["id"].as_str().expect("id").to_string()).collect()
}

fn header<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

// ---------------------------------------------------------------------------------------
// 1. Auth
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_route_needs_an_admin_key_and_ops_routes_do_not() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_auth", &receiver.url("/hook")).await;
    let aid = automation["id"].as_str().unwrap().to_string();
    let secret = automation["secret"].as_str().unwrap().to_string();
    let msg = relay.send_message("proc_auth", json!({"n": 1})).await;
    let did = msg["delivery_ids"][0].as_str().expect("delivery id").to_string();
    let logs = wait_logs(&relay, "", 1).await;
    let lid = logs[0]["id"].as_str().unwrap().to_string();
    let (status, job) =
        relay.post_json(&format!("{LOGS}/recover"), &json!({"since": rfc3339_ago(3600)})).await;
    assert_eq!(status, 202, "{job}");
    let rid = job["id"].as_str().unwrap().to_string();

    let new_automation =
        json!({"name": "intruder", "processor_id": "proc_auth", "webhook_url": receiver.url("/x")})
            .to_string();
    let routes: Vec<(Method, String, Option<String>)> = vec![
        (Method::GET, ENDPOINTS.into(), None),
        (Method::POST, ENDPOINTS.into(), Some(new_automation)),
        (Method::GET, format!("{ENDPOINTS}/{aid}"), None),
        (Method::PUT, format!("{ENDPOINTS}/{aid}"), Some(json!({"name": "hacked"}).to_string())),
        (Method::DELETE, format!("{ENDPOINTS}/{aid}"), None),
        (Method::GET, format!("{ENDPOINTS}/{aid}/secret"), None),
        (Method::POST, format!("{ENDPOINTS}/{aid}/secret/rotate"), None),
        (Method::POST, format!("/v1/processors/automations/tests/webhook/{aid}"), None),
        (
            Method::POST,
            "/v1/messages".into(),
            Some(json!({"processor_id": "proc_auth", "payload": {"evil": true}}).to_string()),
        ),
        (Method::GET, "/v1/deliveries".into(), None),
        (Method::GET, format!("/v1/deliveries/{did}"), None),
        (Method::GET, LOGS.into(), None),
        (Method::GET, format!("{LOGS}/{lid}"), None),
        (Method::POST, format!("{LOGS}/{lid}/rerun"), Some(String::new())),
        (Method::GET, "/v1/processors/proc_auth/automations/logs".into(), None),
        (Method::GET, format!("/v1/processors/proc_auth/automations/logs/{lid}"), None),
        (
            Method::POST,
            format!("/v1/processors/proc_auth/automations/logs/{lid}/rerun"),
            Some(String::new()),
        ),
        (
            Method::POST,
            format!("{LOGS}/recover"),
            Some(json!({"since": rfc3339_ago(3600)}).to_string()),
        ),
        (Method::GET, format!("{LOGS}/recover/{rid}"), None),
    ];
    let bad_keys: Vec<(&str, Headers, u16)> = vec![
        ("no key", vec![], 401),
        ("wrong Api-Key", vec![("Api-Key", "wrong-key-123".into())], 401),
        ("wrong Bearer", vec![("Authorization", "Bearer wrong-key-123".into())], 401),
        ("empty Api-Key", vec![("Api-Key", String::new())], 401),
        ("right key, Basic scheme", vec![("Authorization", format!("Basic {KEY}"))], 401),
        ("app key as Api-Key", vec![("Api-Key", "app-0123456789abcdef".into())], 403),
        ("app key as Bearer", vec![("Authorization", "Bearer app-0123456789abcdef".into())], 403),
    ];
    for (method, path, body) in &routes {
        for (what, headers, status) in &bad_keys {
            let ctx = format!("{method} {path} with {what}");
            let r = send(&relay, method.clone(), path, headers, body.clone()).await;
            assert_error(&r, *status, "", &ctx);
            let expected_code = if *status == 401 { "unauthorized" } else { "forbidden" };
            assert_eq!(r.body["code"], expected_code, "{ctx}: {}", r.text);
            assert!(!r.text.contains("wrong-key-123"), "{ctx}: the key is echoed: {}", r.text);
            assert!(!r.text.contains(&secret), "{ctx}: the secret leaked: {}", r.text);
        }
    }

    // Nothing the refused requests asked for happened.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.count(), 1, "a refused request reached the receiver");
    let list = relay.get_json(&format!("{ENDPOINTS}?limit=100")).await;
    assert_eq!(ids_of(list["data"].as_array().unwrap()), vec![aid.clone()]);
    assert_eq!(list["data"][0]["name"], "test");
    let now_secret = relay.get_json(&format!("{ENDPOINTS}/{aid}/secret")).await;
    assert_eq!(now_secret["secret"], secret.as_str());
    assert!(now_secret["previous_secret_expires_at"].is_null(), "rotated: {now_secret}");
    assert_eq!(relay.all_logs("").await.len(), 1);
    assert_eq!(count_list(&relay, "/v1/deliveries?limit=100").await, 1);

    // The right key works in both header forms on every read route.
    for (method, path, _) in routes.iter().filter(|(m, _, _)| *m == Method::GET) {
        for headers in [
            vec![("Api-Key", KEY.to_string())],
            vec![("Authorization", format!("Bearer {KEY}"))],
            vec![("Authorization", format!("bearer {KEY}"))],
        ] {
            let r = send(&relay, method.clone(), path, &headers, None).await;
            assert_eq!(r.status, 200, "{method} {path} with {:?}: {}", headers[0].0, r.text);
            assert!(r.body.get("code").is_none() || r.body.get("data").is_some(), "{}", r.text);
        }
    }
    let r = send(
        &relay,
        Method::POST,
        "/v1/messages",
        &[("Authorization", format!("Bearer {KEY}"))],
        Some(json!({"processor_id": "proc_auth", "payload": {"n": 2}}).to_string()),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(r.body["id"].as_str().is_some_and(|i| i.starts_with("msg_")), "{}", r.text);
    wait_logs(&relay, "", 2).await;

    // Ops routes need no key.
    for path in ["/healthz", "/readyz"] {
        let r = send(&relay, Method::GET, path, &[], None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    let r = send(&relay, Method::GET, "/metrics", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("hookrelay_delivery_attempts"), "{}", r.text);
}

// ---------------------------------------------------------------------------------------
// 2. Bad input
// ---------------------------------------------------------------------------------------

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
    let valid = |extra: Value| {
        let mut body =
            json!({"name": "n", "processor_id": "proc_bad", "webhook_url": "http://127.0.0.1:9/x"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body.to_string()
    };
    let msg = |v: Value| v.to_string();
    let big = "x".repeat(3000);
    let long_key = "k".repeat(300);

    // (method, path, extra headers, body, status, hint)
    type Case = (Method, String, Vec<(&'static str, String)>, Option<String>, u16, &'static str);
    let mut cases: Vec<Case> = vec![
        // automations: create
        (Method::POST, ENDPOINTS.into(), vec![], Some("{\"name\": ".into()), 400, MALFORMED),
        (Method::POST, ENDPOINTS.into(), vec![], Some("not json at all".into()), 400, MALFORMED),
        (Method::POST, ENDPOINTS.into(), vec![], Some(String::new()), 400, "body"),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": 5}))), 400, "name"),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": ""}))), 400, "name"),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_headers": {"a": 1}}))),
            400,
            "webhook_headers",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_headers": "x"}))),
            400,
            "webhook_headers",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"need_validation": "yes"}))),
            400,
            "need_validation",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"enabled": "no"}))),
            400,
            "enabled",
        ),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": null}))), 400, "name"),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"processor_id": null}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_url": null}))),
            400,
            "webhook_url",
        ),
        (Method::POST, ENDPOINTS.into(), vec![], Some("{}".into()), 400, "name"),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"event_types": []}))),
            400,
            "event_types",
        ),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": big}))), 413, ""),
    ];
    for url in [
        json!("ftp://x"),
        json!("/relative"),
        json!("not a url"),
        json!("http://"),
        json!("mailto:a@example.com"),
        json!("http://user:pw@example.com/"),
        json!(""),
        json!(5),
    ] {
        cases.push((
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_url": url}))),
            400,
            "webhook_url",
        ));
    }
    for reserved in ["webhook-signature", "Webhook-Id", "webhook-timestamp", "Content-Type", "Host"]
    {
        cases.push((
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_headers": {reserved: "v"}}))),
            400,
            "webhook_headers",
        ));
    }
    cases.push((
        Method::POST,
        ENDPOINTS.into(),
        vec![],
        Some(valid(json!({"webhook_headers": {"bad header": "v"}}))),
        400,
        "webhook_headers",
    ));
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    cases.push((
        Method::POST,
        ENDPOINTS.into(),
        vec![],
        Some(valid(json!({"webhook_headers": many}))),
        400,
        "webhook_headers",
    ));
    cases.push((
        Method::POST,
        ENDPOINTS.into(),
        vec![],
        Some(valid(json!({"processor_id": "p".repeat(257)}))),
        400,
        "processor_id",
    ));
    // automations: update, and unknown ids
    let a_path = format!("{ENDPOINTS}/{aid}");
    cases.extend([
        (Method::PUT, a_path.clone(), vec![], Some("{\"name\"".into()), 400, MALFORMED),
        (Method::PUT, a_path.clone(), vec![], Some(json!({"name": 5}).to_string()), 400, "name"),
        (
            Method::PUT,
            a_path.clone(),
            vec![],
            Some(json!({"webhook_url": "ftp://x"}).to_string()),
            400,
            "webhook_url",
        ),
        (
            Method::PUT,
            a_path.clone(),
            vec![],
            Some(json!({"webhook_headers": {"webhook-signature": "v1,x"}}).to_string()),
            400,
            "webhook_headers",
        ),
        (
            Method::PUT,
            a_path.clone(),
            vec![],
            Some(json!({"webhook_headers": {"X-New-Token": "[REDACTED]"}}).to_string()),
            400,
            "webhook_headers",
        ),
        (
            Method::PUT,
            format!("{ENDPOINTS}/{unknown_endp}"),
            vec![],
            Some(json!({"name": "x"}).to_string()),
            404,
            "",
        ),
        (
            Method::PUT,
            format!("{ENDPOINTS}/garbage"),
            vec![],
            Some(json!({"name": "x"}).to_string()),
            404,
            "",
        ),
        (Method::GET, format!("{ENDPOINTS}/{unknown_endp}"), vec![], None, 404, ""),
        (Method::GET, format!("{ENDPOINTS}/garbage"), vec![], None, 404, ""),
        (Method::DELETE, format!("{ENDPOINTS}/{unknown_endp}"), vec![], None, 404, ""),
        (Method::GET, format!("{ENDPOINTS}/{unknown_endp}/secret"), vec![], None, 404, ""),
        (Method::POST, format!("{ENDPOINTS}/{unknown_endp}/secret/rotate"), vec![], None, 404, ""),
        (
            Method::POST,
            format!("/v1/processors/automations/tests/webhook/{unknown_endp}"),
            vec![],
            None,
            404,
            "",
        ),
        (
            Method::POST,
            "/v1/processors/automations/tests/webhook/nope".into(),
            vec![],
            None,
            404,
            "",
        ),
    ]);
    // messages
    let m = "/v1/messages".to_string();
    cases.extend([
        (
            Method::POST,
            m.clone(),
            vec![],
            Some("{\"processor_id\": \"proc_bad\",".into()),
            400,
            MALFORMED,
        ),
        (Method::POST, m.clone(), vec![], Some(String::new()), 400, "body"),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad"}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": null}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": [1, 2]}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": "text"}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": 5}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "automation_id": aid, "payload": {}}))),
            400,
            "automation_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"payload": {"a": 1}}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": 5, "payload": {"a": 1}}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "", "payload": {"a": 1}}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "event_type": "", "payload": {"a": 1}}))),
            400,
            "event_type",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"automation_id": unknown_endp, "payload": {"a": 1}}))),
            404,
            "",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"automation_id": "garbage", "payload": {"a": 1}}))),
            404,
            "",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": {"big": big}}))),
            413,
            "",
        ),
        (
            Method::POST,
            m.clone(),
            vec![("Idempotency-Key", long_key)],
            Some(msg(json!({"processor_id": "proc_bad", "payload": {"a": 1}}))),
            400,
            "idempotency-key",
        ),
    ]);
    // list parameters, on every list
    for list in [
        LOGS.to_string(),
        "/v1/processors/proc_bad/automations/logs".to_string(),
        ENDPOINTS.to_string(),
        "/v1/deliveries".to_string(),
    ] {
        for (query, hint) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=abc", "limit"),
            ("limit=-1", "limit"),
            ("after=garbage", "after"),
            ("before=garbage", "before"),
            (&*format!("after=msg_{ZERO_HEX}"), "after"),
            ("order=sideways", "order"),
        ] {
            cases.push((Method::GET, format!("{list}?{query}"), vec![], None, 400, hint));
        }
    }
    for list in [LOGS.to_string(), "/v1/processors/proc_bad/automations/logs".to_string()] {
        for (query, hint) in [
            ("status_class=9xx", "status_class"),
            ("status_class=2", "status_class"),
            ("status_code=abc", "status_code"),
            ("created_after=yesterday", "created_after"),
            ("created_before=2024-13-45T00:00:00Z", "created_before"),
            (&*format!("after={unknown_log}&before={unknown_log}"), "before"),
        ] {
            cases.push((Method::GET, format!("{list}?{query}"), vec![], None, 400, hint));
        }
    }
    cases.push((Method::GET, "/v1/deliveries?status=bogus".into(), vec![], None, 400, "status"));
    // unknown logs, deliveries and recover jobs
    cases.extend([
        (Method::GET, format!("{LOGS}/{unknown_log}"), vec![], None, 404, ""),
        (Method::GET, format!("{LOGS}/garbage"), vec![], None, 404, ""),
        (Method::POST, format!("{LOGS}/{unknown_log}/rerun"), vec![], Some(String::new()), 404, ""),
        (Method::POST, format!("{LOGS}/garbage/rerun"), vec![], Some(String::new()), 404, ""),
        (
            Method::GET,
            format!("/v1/processors/proc_bad/automations/logs/{unknown_log}"),
            vec![],
            None,
            404,
            "",
        ),
        (
            Method::POST,
            format!("/v1/processors/proc_bad/automations/logs/{unknown_log}/rerun"),
            vec![],
            Some(String::new()),
            404,
            "",
        ),
        (Method::GET, format!("/v1/deliveries/dlv_{ZERO_HEX}"), vec![], None, 404, ""),
        (Method::GET, "/v1/deliveries/garbage".into(), vec![], None, 404, ""),
        (Method::GET, format!("{LOGS}/recover/rcv_{ZERO_HEX}"), vec![], None, 404, ""),
        (Method::GET, format!("{LOGS}/recover/garbage"), vec![], None, 404, ""),
    ]);
    // recover
    let rec = format!("{LOGS}/recover");
    cases.extend([
        (
            Method::POST,
            rec.clone(),
            vec![],
            Some(json!({"since": "yesterday"}).to_string()),
            400,
            "since",
        ),
        (Method::POST, rec.clone(), vec![], Some(json!({}).to_string()), 400, "since"),
        (Method::POST, rec.clone(), vec![], Some(json!({"since": true}).to_string()), 400, "since"),
        (Method::POST, rec.clone(), vec![], Some("{\"since\":".into()), 400, MALFORMED),
        (
            Method::POST,
            rec.clone(),
            vec![],
            Some(json!({"since": rfc3339_ago(10), "until": rfc3339_ago(20)}).to_string()),
            400,
            "until",
        ),
        (
            Method::POST,
            rec.clone(),
            vec![],
            Some(json!({"since": rfc3339_ago(10), "automation_id": "garbage"}).to_string()),
            400,
            "automation_id",
        ),
    ]);

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

// ---------------------------------------------------------------------------------------
// 3. Automations
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_create_get_list_update_redact_rotate_delete() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);

    let (status, created) = relay
        .post_json(
            ENDPOINTS,
            &json!({
                "name": "alpha",
                "processor_id": "proc_crud",
                "webhook_url": receiver.url("/a"),
                "webhook_headers": {"X-Api-Key": "s3cret-value", "X-Plain": "visible"},
                "need_validation": true,
                "default_language": "fr",
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let aid = created["id"].as_str().unwrap().to_string();
    assert!(aid.starts_with("endp_"), "{aid}");
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{created}");
    assert_eq!(created["object"], "automation.endpoint");
    assert_eq!(created["name"], "alpha");
    assert_eq!(created["processor_id"], "proc_crud");
    assert_eq!(created["webhook_url"], receiver.url("/a"));
    assert_eq!(created["need_validation"], true);
    assert_eq!(created["default_language"], "fr");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["webhook_headers"]["X-Api-Key"], "[REDACTED]");
    assert_eq!(created["webhook_headers"]["X-Plain"], "visible");
    assert!(!created.to_string().contains("s3cret-value"), "{created}");
    assert_time(&created["created_at"], "created_at");
    assert_time(&created["updated_at"], "updated_at");
    let secret = created["secret"].as_str().unwrap().to_string();

    let got = relay.get_json(&format!("{ENDPOINTS}/{aid}")).await;
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(got, expected, "GET differs from the create answer");
    assert!(got.get("secret").is_none(), "GET shows the secret: {got}");
    let shown = relay.get_json(&format!("{ENDPOINTS}/{aid}/secret")).await;
    assert_eq!(shown["secret"], secret.as_str());

    // More automations for the filters and pagination.
    let b1 = relay.create_automation("proc_crud", &receiver.url("/b")).await;
    let b2 = relay.create_automation("proc_other", &receiver.url("/b")).await;
    let (_, a2) = relay
        .post_json(
            ENDPOINTS,
            &json!({"name": "alpha", "processor_id": "proc_x", "webhook_url": receiver.url("/c")}),
        )
        .await;
    let c = relay.create_automation("proc_crud", &receiver.url("/d")).await;
    let all_ids: Vec<String> = [&created, &b1, &b2, &a2, &c]
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();

    let by_name = relay.get_json(&format!("{ENDPOINTS}?name=alpha&limit=100")).await;
    let mut names = ids_of(by_name["data"].as_array().unwrap());
    names.sort();
    let mut want = vec![aid.clone(), a2["id"].as_str().unwrap().to_string()];
    want.sort();
    assert_eq!(names, want, "name filter");
    let url_b =
        url::form_urlencoded::byte_serialize(receiver.url("/b").as_bytes()).collect::<String>();
    let by_url = relay.get_json(&format!("{ENDPOINTS}?webhook_url={url_b}&limit=100")).await;
    let mut urls = ids_of(by_url["data"].as_array().unwrap());
    urls.sort();
    let mut want =
        vec![b1["id"].as_str().unwrap().to_string(), b2["id"].as_str().unwrap().to_string()];
    want.sort();
    assert_eq!(urls, want, "webhook_url filter");
    let by_proc = relay.get_json(&format!("{ENDPOINTS}?processor_id=proc_other&limit=100")).await;
    assert_eq!(
        ids_of(by_proc["data"].as_array().unwrap()),
        vec![b2["id"].as_str().unwrap().to_string()]
    );
    let none = relay.get_json(&format!("{ENDPOINTS}?name=nobody")).await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);

    // Cursor pagination, both orders.
    for order in ["asc", "desc"] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        let mut pages = 0;
        loop {
            let page = relay.get_json(&format!("{ENDPOINTS}?limit=2&order={order}{cursor}")).await;
            if pages == 0 {
                assert!(page["list_metadata"]["before"].is_null(), "{page}");
            }
            pages += 1;
            seen.extend(ids_of(page["data"].as_array().unwrap()));
            match page["list_metadata"]["after"].as_str() {
                Some(a) => cursor = format!("&after={a}"),
                None => break,
            }
        }
        assert_eq!(pages, 3, "{order}");
        let mut want = all_ids.clone();
        if order == "desc" {
            want.reverse();
        }
        assert_eq!(seen, want, "automations walk {order}");
    }

    // Partial update keeps every other field and bumps updated_at.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = send_ok(
        &relay,
        Method::PUT,
        &format!("{ENDPOINTS}/{aid}"),
        Some(json!({"name": "renamed"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let updated = r.body;
    assert_eq!(updated["name"], "renamed");
    for k in [
        "id",
        "processor_id",
        "webhook_url",
        "webhook_headers",
        "need_validation",
        "default_language",
        "enabled",
        "created_at",
        "object",
    ] {
        assert_eq!(updated[k], created[k], "PUT changed {k}");
    }
    let t = |v: &Value| DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(t(&updated["updated_at"]) > t(&created["updated_at"]), "updated_at not bumped");
    assert_eq!(relay.get_json(&format!("{ENDPOINTS}/{aid}")).await, updated);

    // Sending "[REDACTED]" back keeps the stored value; the receiver gets the real one.
    let r = send_ok(
        &relay,
        Method::PUT,
        &format!("{ENDPOINTS}/{aid}"),
        Some(
            json!({"webhook_headers": {"X-Api-Key": "[REDACTED]", "X-Plain": "changed"}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["webhook_headers"]["X-Api-Key"], "[REDACTED]");
    assert_eq!(r.body["webhook_headers"]["X-Plain"], "changed");
    relay.send_message("proc_crud", json!({"hello": "headers"})).await;
    let call = relay
        .wait_for(WAIT, "delivery to /a", || async {
            receiver.calls().into_iter().find(|c| header(&c.headers, "x-plain") == "changed")
        })
        .await;
    assert_eq!(header(&call.headers, "x-api-key"), "s3cret-value");
    assert!(verify_signature(&secret, &call.headers, &call.body));
    // The log shows the secret header redacted.
    let logs = relay
        .wait_for(WAIT, "log of /a", || async {
            let logs = relay.all_logs(&format!("&automation_id={aid}")).await;
            (logs.len() == 1).then_some(logs)
        })
        .await;
    let req_headers = logs[0]["external_request_log"]["request_headers"].as_object().unwrap();
    let api_key = req_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-api-key"));
    assert_eq!(api_key.map(|(_, v)| v.clone()), Some(json!("[REDACTED]")), "{req_headers:?}");
    assert!(!logs[0].to_string().contains("s3cret-value"), "log leaks the header secret");

    // Rotation: a new secret, the old one keeps signing for a while.
    let r = send_ok(&relay, Method::POST, &format!("{ENDPOINTS}/{aid}/secret/rotate"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new_secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret, "{}", r.text);
    assert_time(&r.body["previous_secret_expires_at"], "previous_secret_expires_at");
    relay.send_message("proc_crud", json!({"after": "rotation"})).await;
    let call = relay
        .wait_for(WAIT, "delivery after rotation", || async {
            receiver.calls().into_iter().find(|c| {
                c.body.as_ref() == br#"{"after":"rotation"}"#
                    && header(&c.headers, "x-plain") == "changed"
            })
        })
        .await;
    assert!(verify_signature(&new_secret, &call.headers, &call.body), "new secret");
    assert!(verify_signature(&secret, &call.headers, &call.body), "old secret during overlap");

    // Delete.
    let r = send_ok(&relay, Method::DELETE, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send_ok(&relay, Method::GET, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_error(&r, 404, "", "GET after DELETE");
    let r = send_ok(&relay, Method::DELETE, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_error(&r, 404, "", "DELETE twice");
    let list = relay.get_json(&format!("{ENDPOINTS}?limit=100")).await;
    let left = ids_of(list["data"].as_array().unwrap());
    assert_eq!(left.len(), 4);
    assert!(!left.contains(&aid));
}

// ---------------------------------------------------------------------------------------
// 4. Cursor walk
// ---------------------------------------------------------------------------------------

/// `list` with `query` appended as further query parameters.
fn with_query(list: &str, query: &str) -> String {
    format!("{list}{}{query}", if list.contains('?') { '&' } else { '?' })
}

/// Walks `after` cursors over `list` (a logs path, maybe with filters) from the first page,
/// returning the pages; checks the cursors as it goes.
async fn walk_after(relay: &Relay, list: &str, order: &str, limit: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    let mut page_no = 0;
    loop {
        let page = relay
            .get_json(&with_query(list, &format!("limit={limit}&order={order}{cursor}")))
            .await;
        let data = page["data"].as_array().unwrap();
        for log in data {
            assert_uiform_log(log);
        }
        assert!(!data.is_empty(), "empty page {page_no} in {order} walk");
        assert!(data.len() <= limit);
        let meta = &page["list_metadata"];
        if page_no == 0 {
            assert!(meta["before"].is_null(), "first page has a before cursor: {meta}");
        } else {
            assert_eq!(meta["before"].as_str(), data[0]["id"].as_str(), "page {page_no}: {meta}");
        }
        out.push(ids_of(data));
        page_no += 1;
        match meta["after"].as_str() {
            Some(a) => {
                assert_eq!(data.len(), limit, "short page with an after cursor");
                assert_eq!(Some(a), data.last().unwrap()["id"].as_str());
                cursor = format!("&after={a}");
            }
            None => break,
        }
        assert!(page_no < 1000, "walk does not end");
    }
    out
}

/// Walks `before` cursors back from `last_page`, returning everything from the start.
async fn walk_before(
    relay: &Relay,
    list: &str,
    order: &str,
    limit: usize,
    last_page: Vec<String>,
) -> Vec<String> {
    let mut out = last_page;
    let mut cursor = out[0].clone();
    let mut pages = 0;
    loop {
        let page = relay
            .get_json(&with_query(list, &format!("limit={limit}&order={order}&before={cursor}")))
            .await;
        let data = page["data"].as_array().unwrap();
        let ids = ids_of(data);
        assert!(!ids.is_empty(), "empty page walking back {order}");
        let meta = &page["list_metadata"];
        assert_eq!(meta["after"].as_str(), ids.last().map(String::as_str), "{meta}");
        let mut new = ids.clone();
        new.extend(out);
        out = new;
        pages += 1;
        match meta["before"].as_str() {
            Some(b) => {
                assert_eq!(ids.len(), limit, "short page with a before cursor");
                assert_eq!(b, ids[0]);
                cursor = b.to_string();
            }
            None => break,
        }
        assert!(pages < 1000, "walk does not end");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_walks_reproduce_the_full_list_in_both_orders() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    for _ in 0..10 {
        relay.create_automation("proc_walk", &receiver.url("/w")).await;
    }
    for i in 0..25 {
        let m = relay.send_message("proc_walk", json!({"i": i})).await;
        assert_eq!(m["delivery_ids"].as_array().unwrap().len(), 10);
    }
    const N: usize = 250;
    let reference = wait_logs(&relay, "", N).await;
    let asc_ref = ids_of(&reference);
    let unique: HashSet<&String> = asc_ref.iter().collect();
    assert_eq!(unique.len(), N, "duplicate ids in the reference list");
    let mut sorted = asc_ref.clone();
    sorted.sort();
    assert_eq!(sorted, asc_ref, "asc listing is not in id order");
    let mut desc_ref = asc_ref.clone();
    desc_ref.reverse();

    for (order, want) in [("desc", &desc_ref), ("asc", &asc_ref)] {
        let pages = walk_after(&relay, LOGS, order, 7).await;
        assert_eq!(pages.len(), N.div_ceil(7), "{order} page count");
        let walked = pages.concat();
        assert_eq!(walked.len(), N, "{order} walk length");
        assert_eq!(&walked, want, "{order} walk with after cursors");

        // Back from the last page with before cursors.
        let last_page = pages.last().unwrap().clone();
        assert_eq!(last_page.len(), N % 7);
        let back = walk_before(&relay, LOGS, order, 7, last_page).await;
        assert_eq!(&back, want, "{order} walk back with before cursors");
    }

    // The default (desc, 10) and the maximum page size.
    let first = relay.get_json(LOGS).await;
    assert_eq!(ids_of(first["data"].as_array().unwrap()), desc_ref[..10].to_vec());
    let pages = walk_after(&relay, LOGS, "desc", 100).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![100, 100, 50]);
    assert_eq!(pages.concat(), desc_ref);
}

// ---------------------------------------------------------------------------------------
// 5. Filters
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_filters_narrow_correctly() {
    let ok = Receiver::ok().await;
    let not_found = Receiver::with(Arc::new(|_| {
        (StatusCode::NOT_FOUND, [("content-type", "application/json")], "{\"missing\":true}")
            .into_response()
    }))
    .await;
    let broken =
        Receiver::with(Arc::new(|_| (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()))
            .await;
    let relay = Relay::start(&retries(1));
    let a_ok = relay.create_automation("proc_f", &ok.url("/ok")).await;
    let a_404 = relay.create_automation("proc_f", &not_found.url("/nf")).await;
    let a_503 = relay.create_automation("proc_f", &broken.url("/down")).await;
    let other = relay.create_automation("proc_g", &ok.url("/other")).await;
    // Nothing listens on port 1: the call gets no response at all (status 0).
    let dead = relay.create_automation("proc_g", "http://127.0.0.1:1/dead").await;
    let id = |a: &Value| a["id"].as_str().unwrap().to_string();

    for i in 0..3 {
        relay.send_message("proc_f", json!({"batch": 1, "i": i})).await;
    }
    relay.send_message("proc_g", json!({"batch": 1})).await;
    wait_logs(&relay, "", 11).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let middle = now_rfc3339();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..2 {
        relay.send_message("proc_f", json!({"batch": 2, "i": i})).await;
    }
    let all = wait_logs(&relay, "", 17).await;
    for log in &all {
        assert_uiform_log(log);
    }

    let count = |q: String| {
        let relay = &relay;
        async move {
            let logs = relay.all_logs(&q).await;
            for log in &logs {
                assert_uiform_log(log);
            }
            logs
        }
    };
    let status_of = |l: &Value| l["external_request_log"]["status_code"].as_u64().unwrap();

    let logs = count("&status_code=200".into()).await;
    assert_eq!(logs.len(), 6);
    assert!(logs.iter().all(|l| status_of(l) == 200));
    let logs = count("&status_code=404".into()).await;
    assert_eq!(logs.len(), 5);
    assert!(logs.iter().all(|l| l["automation_id"] == a_404["id"]));
    assert_eq!(count("&status_code=418".into()).await.len(), 0);

    for (class, n, code) in [("2xx", 6, 200), ("4xx", 5, 404), ("5xx", 5, 503), ("3xx", 0, 0)] {
        let logs = count(format!("&status_class={class}")).await;
        assert_eq!(logs.len(), n, "status_class={class}");
        assert!(logs.iter().all(|l| status_of(l) == code), "status_class={class}");
    }
    let logs = count(format!("&automation_id={}", id(&a_503))).await;
    assert_eq!(logs.len(), 5);
    assert!(logs.iter().all(|l| l["automation_id"] == a_503["id"] && status_of(l) == 503));
    assert!(
        logs.iter().all(|l| l["external_request_log"]["error"].is_string()),
        "failed call without error"
    );
    let enc = |s: String| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let logs = count(format!("&webhook_url={}", enc(ok.url("/ok")))).await;
    assert_eq!(logs.len(), 5);
    assert!(logs.iter().all(|l| l["automation_id"] == a_ok["id"]));
    assert!(logs.iter().all(|l| l["external_request_log"]["webhook_url"] == ok.url("/ok")));
    assert_eq!(count(format!("&webhook_url={}", enc(ok.url("/nope")))).await.len(), 0);

    let after = count(format!("&created_after={middle}")).await;
    assert_eq!(after.len(), 6, "created_after");
    let batch_of = |l: &Value| l["external_request_log"]["request_body"]["batch"].as_i64().unwrap();
    assert!(after.iter().all(|l| batch_of(l) == 2));
    let before = count(format!("&created_before={middle}")).await;
    assert_eq!(before.len(), 11, "created_before");
    assert!(before.iter().all(|l| batch_of(l) == 1));
    let window =
        count(format!("&created_after={}&created_before={middle}", rfc3339_ago(120))).await;
    assert_eq!(window.len(), 11);
    assert_eq!(count(format!("&created_after={}", rfc3339_ago(-3600))).await.len(), 0);
    let combo = count(format!("&created_after={middle}&status_class=2xx")).await;
    assert_eq!(combo.len(), 2);
    let combo = count(format!("&automation_id={}&status_code=200", id(&a_404))).await;
    assert_eq!(combo.len(), 0);
    assert_eq!(count(format!("&automation_id={}", id(&other))).await.len(), 1);

    // Processor scope.
    let scoped = relay.get_json("/v1/processors/proc_f/automations/logs?limit=100").await;
    let scoped = scoped["data"].as_array().unwrap();
    assert_eq!(scoped.len(), 15);
    assert!(scoped.iter().all(|l| l["automation_snapshot"]["processor_id"] == "proc_f"));
    let scoped =
        relay.get_json("/v1/processors/proc_f/automations/logs?limit=100&status_class=5xx").await;
    assert_eq!(scoped["data"].as_array().unwrap().len(), 5);
    let g = relay.get_json("/v1/processors/proc_g/automations/logs?limit=100").await;
    assert_eq!(g["data"].as_array().unwrap().len(), 2);

    // A call that got no response: status 0, a stable error code, still a valid log.
    let logs = count("&status_code=0".into()).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["automation_id"], dead["id"]);
    let error = logs[0]["external_request_log"]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("E_CONNECTION"), "{error}");
    assert_eq!(logs[0]["external_request_log"]["response_body"], json!({}));
    let none = relay.get_json("/v1/processors/proc_none/automations/logs?limit=100").await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    assert!(none["list_metadata"]["before"].is_null() && none["list_metadata"]["after"].is_null());

    // Cursor walks under a filter, in both directions and both orders.
    for (list, want) in [
        (format!("{LOGS}?status_class=5xx"), 5),
        (format!("{LOGS}?created_after={middle}"), 6),
        ("/v1/processors/proc_f/automations/logs?status_code=200".to_string(), 5),
        ("/v1/processors/proc_f/automations/logs".to_string(), 15),
    ] {
        let reference = ids_of(
            &relay.get_json(&with_query(&list, "limit=100&order=asc")).await["data"]
                .as_array()
                .unwrap()
                .clone(),
        );
        assert_eq!(reference.len(), want, "{list}");
        for order in ["asc", "desc"] {
            let mut expected = reference.clone();
            if order == "desc" {
                expected.reverse();
            }
            let pages = walk_after(&relay, &list, order, 2).await;
            assert_eq!(pages.concat(), expected, "{list} {order} after-walk");
            let back = walk_before(&relay, &list, order, 2, pages.last().unwrap().clone()).await;
            assert_eq!(back, expected, "{list} {order} before-walk");
        }
    }

    // RFC 3339 with an offset and Unix seconds are accepted too.
    let offset = DateTime::parse_from_rfc3339(&middle)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339();
    assert!(offset.contains("+02:00"), "{offset}");
    assert_eq!(count(format!("&created_after={}", enc(offset))).await.len(), 6);
    let secs = Utc::now().timestamp() - 3600;
    assert_eq!(count(format!("&created_after={secs}")).await.len(), 17);

    // Each log is also served by GET, identical to the listed one.
    let got = relay.get_json(&format!("{LOGS}/{}", all[0]["id"].as_str().unwrap())).await;
    assert_uiform_log(&got);
    assert_eq!(got, all[0]);
}

// ---------------------------------------------------------------------------------------
// 6. Rerun
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_resends_the_stored_request_and_links_the_new_log() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_rr", &receiver.url("/rr")).await;
    let secret = automation["secret"].as_str().unwrap().to_string();
    relay.send_message("proc_rr", json!({"order": 42, "nested": {"a": [1, 2, 3]}})).await;
    let logs = wait_logs(&relay, "", 1).await;
    let original = logs[0].clone();
    let oid = original["id"].as_str().unwrap().to_string();
    assert_eq!(original["trigger"], "initial");
    // webhook-timestamp has one-second resolution: make sure a fresh one differs.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let r = send(
        &relay,
        Method::POST,
        &format!("{LOGS}/{oid}/rerun"),
        &[("Api-Key", KEY.to_string()), ("Content-Length", "0".to_string())],
        Some(String::new()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = r.body;
    assert_external_request_log(&answer);
    assert_eq!(answer["status_code"], 200);
    assert!(answer["error"].is_null(), "{answer}");
    assert_eq!(answer["request_body"], json!({"order": 42, "nested": {"a": [1, 2, 3]}}));
    assert_eq!(answer["response_body"], json!({"ok": true}));
    assert_eq!(answer["webhook_url"], receiver.url("/rr"));
    let new_id = answer["id"].as_str().expect("id of the new log").to_string();
    assert!(new_id.starts_with("log_auto_") && new_id != oid, "{new_id}");

    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].body, calls[0].body, "rerun body differs");
    assert_eq!(header(&calls[1].headers, "webhook-id"), header(&calls[0].headers, "webhook-id"));
    let ts = |c: &common::Received| header(&c.headers, "webhook-timestamp").parse::<i64>().unwrap();
    assert!(ts(&calls[1]) > ts(&calls[0]), "timestamp not fresh");
    assert_ne!(
        header(&calls[1].headers, "webhook-signature"),
        header(&calls[0].headers, "webhook-signature")
    );
    assert!(verify_signature(&secret, &calls[1].headers, &calls[1].body));

    let new_log = relay.get_json(&format!("{LOGS}/{new_id}")).await;
    assert_uiform_log(&new_log);
    assert_eq!(new_log["trigger"], "rerun");
    assert_eq!(new_log["rerun_of"], oid.as_str());
    assert_eq!(new_log["external_request_log"]["status_code"], 200);
    let unchanged = relay.get_json(&format!("{LOGS}/{oid}")).await;
    assert_eq!(unchanged, original, "the original log changed");

    // Processor-scoped rerun, and a wrong processor.
    let scoped = format!("/v1/processors/proc_rr/automations/logs/{oid}");
    let got = relay.get_json(&scoped).await;
    assert_eq!(got, original);
    let r = send_ok(&relay, Method::POST, &format!("{scoped}/rerun"), Some(String::new())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_external_request_log(&r.body);
    let scoped_new = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(receiver.count(), 3);
    let l = relay.get_json(&format!("{LOGS}/{scoped_new}")).await;
    assert_eq!(l["trigger"], "rerun");
    assert_eq!(l["rerun_of"], oid.as_str());

    let wrong = format!("/v1/processors/proc_other/automations/logs/{oid}");
    let r = send_ok(&relay, Method::GET, &wrong, None).await;
    assert_error(&r, 404, "", "scoped GET, wrong processor");
    let r = send_ok(&relay, Method::POST, &format!("{wrong}/rerun"), Some(String::new())).await;
    assert_error(&r, 404, "", "scoped rerun, wrong processor");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.count(), 3, "a refused rerun reached the receiver");

    // A rerun without any content type is fine too.
    let r = send(
        &relay,
        Method::POST,
        &format!("{LOGS}/{oid}/rerun"),
        &[("Api-Key", KEY.to_string())],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(receiver.count(), 4);
    let all = relay.all_logs("").await;
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().filter(|l| l["trigger"] == "rerun").count(), 3);

    // A rerun goes to the URL the original call went to, even after the automation moved.
    let moved = Receiver::ok().await;
    let aid = automation["id"].as_str().unwrap();
    let r = send_ok(
        &relay,
        Method::PUT,
        &format!("{ENDPOINTS}/{aid}"),
        Some(json!({"webhook_url": moved.url("/moved")}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r =
        send_ok(&relay, Method::POST, &format!("{LOGS}/{oid}/rerun"), Some(String::new())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["webhook_url"], receiver.url("/rr"));
    assert_eq!(receiver.count(), 5);
    assert_eq!(moved.count(), 0);

    // With the automation deleted there is no secret to sign with: a clear error, no call.
    let r = send_ok(&relay, Method::DELETE, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r =
        send_ok(&relay, Method::POST, &format!("{LOGS}/{oid}/rerun"), Some(String::new())).await;
    assert!(r.status == 404 || r.status == 409, "rerun after delete: {}", r.text);
    assert_error(&r, r.status, "", "rerun after delete");
    assert_eq!(receiver.count(), 5);
    assert_eq!(relay.all_logs("").await.len(), 5);
}

// ---------------------------------------------------------------------------------------
// 7. Idempotency
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_answer() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_idem", &receiver.url("/i")).await;
    let body = json!({"processor_id": "proc_idem", "payload": {"charge": 1}}).to_string();
    let post = |key: &'static str, body: String| {
        let relay = &relay;
        async move {
            send(
                relay,
                Method::POST,
                "/v1/messages",
                &[("Api-Key", KEY.to_string()), ("Idempotency-Key", key.to_string())],
                Some(body),
            )
            .await
        }
    };

    let first = post("key-1", body.clone()).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert_ne!(
        first.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true"),
        "the first answer is not a replay"
    );
    let again = post("key-1", body.clone()).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(
        again.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["delivery_ids"], first.body["delivery_ids"]);

    let other = json!({"processor_id": "proc_idem", "payload": {"charge": 2}}).to_string();
    let conflict = post("key-1", other).await;
    assert_error(&conflict, 409, "", "same key, different body");

    // Concurrent requests with one new key: one message.
    let answers = futures_util::future::join_all((0..6).map(|_| post("key-2", body.clone()))).await;
    let ids: HashSet<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 202, "{}", a.text);
            a.body["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "concurrent same-key requests made several messages");
    assert_ne!(ids.iter().next(), first.body["id"].as_str().map(str::to_string).as_ref());

    wait_logs(&relay, "", 2).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.count(), 2, "a replay was delivered again");
    assert_eq!(count_list(&relay, "/v1/deliveries?limit=100").await, 2);
}

// ---------------------------------------------------------------------------------------
// 8. Recover
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_requeues_exhausted_deliveries_with_progress() {
    let since = rfc3339_ago(2);
    let failing = Arc::new(AtomicBool::new(true));
    let flag = failing.clone();
    let receiver = Receiver::with(Arc::new(move |_| {
        if flag.load(Ordering::SeqCst) {
            (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"down\"}").into_response()
        } else {
            (StatusCode::OK, "{\"ok\":true}").into_response()
        }
    }))
    .await;
    let relay = Relay::start(&retries(1));
    let automation = relay.create_automation("proc_rec", &receiver.url("/r")).await;
    let secret = automation["secret"].as_str().unwrap().to_string();
    const N: usize = 20;
    for i in 0..N {
        relay.send_message("proc_rec", json!({"i": i})).await;
    }
    relay
        .wait_for(WAIT, "exhausted deliveries", || async {
            let page = relay.get_json("/v1/deliveries?status=exhausted&limit=100").await;
            (page["data"].as_array().unwrap().len() == N).then_some(())
        })
        .await;
    assert_eq!(receiver.count(), N);
    failing.store(false, Ordering::SeqCst);

    // Bad windows first: nothing is re-queued.
    for (body, hint) in [
        (json!({"since": "last tuesday"}), "since"),
        (json!({"since": 12.5}), "since"),
        (json!({"until": rfc3339_ago(0)}), "since"),
    ] {
        let r =
            send_ok(&relay, Method::POST, &format!("{LOGS}/recover"), Some(body.to_string())).await;
        assert_error(&r, 400, hint, &format!("recover {body}"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.count(), N);

    let (status, job) = relay.post_json(&format!("{LOGS}/recover"), &json!({"since": since})).await;
    assert_eq!(status, 202, "{job}");
    let jid = job["id"].as_str().unwrap().to_string();
    assert!(jid.starts_with("rcv_"), "{jid}");
    assert_eq!(job["total"], N);
    let done = relay
        .wait_for(WAIT, "recover job completed", || async {
            let j = relay.get_json(&format!("{LOGS}/recover/{jid}")).await;
            (j["status"] == "completed").then_some(j)
        })
        .await;
    assert_eq!(done["total"], N, "{done}");
    assert_eq!(done["done"], N, "{done}");
    assert_eq!(done["failed"], 0, "{done}");

    let logs = wait_logs(&relay, "", 2 * N).await;
    let recovered: Vec<&Value> = logs.iter().filter(|l| l["trigger"] == "recover").collect();
    assert_eq!(recovered.len(), N);
    for l in &recovered {
        assert_uiform_log(l);
        assert_eq!(l["external_request_log"]["status_code"], 200);
    }
    assert_eq!(logs.iter().filter(|l| l["trigger"] == "initial").count(), N);
    let succeeded = relay.get_json("/v1/deliveries?status=succeeded&limit=100").await;
    assert_eq!(succeeded["data"].as_array().unwrap().len(), N);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2 * N);
    assert!(calls[N..].iter().all(|c| verify_signature(&secret, &c.headers, &c.body)));
    let first_ids: HashSet<&str> =
        calls[..N].iter().map(|c| header(&c.headers, "webhook-id")).collect();
    let again_ids: HashSet<&str> =
        calls[N..].iter().map(|c| header(&c.headers, "webhook-id")).collect();
    assert_eq!(first_ids, again_ids, "recover changed webhook-ids");

    // A second job over the same window finds nothing left to do.
    let (status, job) = relay.post_json(&format!("{LOGS}/recover"), &json!({"since": since})).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["total"], 0, "{job}");
}

// ---------------------------------------------------------------------------------------
// 9. Test webhook
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_webhook_sends_a_webhook_request_and_answers_its_log() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let automation = relay.create_automation("proc_test", &receiver.url("/t")).await;
    let aid = automation["id"].as_str().unwrap().to_string();
    let secret = automation["secret"].as_str().unwrap().to_string();

    let r = send(
        &relay,
        Method::POST,
        &format!("/v1/processors/automations/tests/webhook/{aid}"),
        &[("Api-Key", KEY.to_string())],
        Some(String::new()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let log = r.body;
    assert_uiform_log(&log);
    assert_eq!(log["object"], "automation_log");
    assert_eq!(log["trigger"], "test");
    assert_eq!(log["external_request_log"]["status_code"], 200);
    assert_eq!(log["automation_snapshot"]["webhook_url"], receiver.url("/t"));
    assert!(log["file_metadata"]["filename"].is_string(), "{log}");

    assert_eq!(receiver.count(), 1);
    let call = &receiver.calls()[0];
    assert!(verify_signature(&secret, &call.headers, &call.body));
    let sent: Value = serde_json::from_slice(&call.body).expect("JSON body");
    for k in ["completion", "user", "file_payload", "metadata"] {
        assert!(sent.get(k).is_some(), "WebhookRequest lacks {k}: {sent}");
    }
    assert_eq!(sent["completion"]["object"], "chat.completion");
    assert!(
        sent["file_payload"]["filename"].is_string() && sent["file_payload"]["url"].is_string()
    );
    assert_eq!(log["external_request_log"]["request_body"], sent);
    // The log carries the sample's own completion and user.
    assert_eq!(log["completion"]["id"], sent["completion"]["id"]);
    assert_eq!(log["user_email"], sent["user"]);
    assert_eq!(log["file_metadata"]["filename"], sent["file_payload"]["filename"]);

    let stored = relay.get_json(&format!("{LOGS}/{}", log["id"].as_str().unwrap())).await;
    assert_eq!(stored["trigger"], "test");
    assert_eq!(stored["id"], log["id"]);
    assert_uiform_log(&stored);
    let listed = relay.all_logs(&format!("&automation_id={aid}")).await;
    assert_eq!(ids_of(&listed), vec![log["id"].as_str().unwrap().to_string()]);
}

// ---------------------------------------------------------------------------------------
// Messages: targeting and the delivery views
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_fan_out_to_a_processor_or_target_one_automation() {
    let r1 = Receiver::ok().await;
    let r2 = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    let a1 = relay.create_automation("proc_m", &r1.url("/1")).await;
    let a2 = relay.create_automation("proc_m", &r2.url("/2")).await;
    let (status, typed) = relay
        .post_json(
            ENDPOINTS,
            &json!({"name": "typed", "processor_id": "proc_m", "webhook_url": r2.url("/typed"),
                    "event_types": ["invoice.paid"]}),
        )
        .await;
    assert_eq!(status, 201, "{typed}");
    assert_eq!(typed["event_types"], json!(["invoice.paid"]));

    // No event type: the two automations without an event-type filter.
    let m = relay.send_message("proc_m", json!({"to": "all"})).await;
    assert_eq!(m["object"], "message");
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    let mut targets: Vec<&str> = m["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["automation_id"].as_str().unwrap())
        .collect();
    targets.sort();
    let mut want = vec![a1["id"].as_str().unwrap(), a2["id"].as_str().unwrap()];
    want.sort();
    assert_eq!(targets, want, "{m}");

    // The subscribed event type reaches all three.
    let (status, typed_msg) = relay
        .post_json(
            "/v1/messages",
            &json!({"processor_id": "proc_m", "event_type": "invoice.paid", "payload": {"to": "typed"}}),
        )
        .await;
    assert_eq!(status, 202, "{typed_msg}");
    assert_eq!(typed_msg["delivery_ids"].as_array().unwrap().len(), 3, "{typed_msg}");

    // One automation by id.
    let (status, one) = relay
        .post_json("/v1/messages", &json!({"automation_id": a1["id"], "payload": {"to": "one"}}))
        .await;
    assert_eq!(status, 202, "{one}");
    assert_eq!(
        one["deliveries"],
        json!([{"id": one["delivery_ids"][0], "automation_id": a1["id"]}])
    );

    // A processor nobody subscribed to: accepted, no delivery.
    let nobody = relay.send_message("proc_nobody", json!({"x": 1})).await;
    assert_eq!(nobody["delivery_ids"], json!([]));

    wait_logs(&relay, "", 6).await;
    assert_eq!(r1.count(), 3);
    assert_eq!(r2.count(), 3);
    let did = one["delivery_ids"][0].as_str().unwrap();
    let d = relay
        .wait_for(WAIT, "delivery succeeded", || async {
            let d = relay.get_json(&format!("/v1/deliveries/{did}")).await;
            (d["status"] == "succeeded").then_some(d)
        })
        .await;
    assert_eq!(d["object"], "delivery");
    assert_eq!(d["message_id"], one["id"]);
    assert_eq!(d["automation_id"], a1["id"]);
    assert_eq!(d["attempts"], 1);
    let last = d["last_log_id"].as_str().expect("last_log_id");
    let log = relay.get_json(&format!("{LOGS}/{last}")).await;
    assert_eq!(log["delivery_id"], did);
    assert_eq!(log["external_request_log"]["request_body"], json!({"to": "one"}));
    let by_msg = relay
        .get_json(&format!("/v1/deliveries?message_id={}&limit=100", m["id"].as_str().unwrap()))
        .await;
    assert_eq!(by_msg["data"].as_array().unwrap().len(), 2);
    let by_auto = relay
        .get_json(&format!("/v1/deliveries?automation_id={}&limit=100", a2["id"].as_str().unwrap()))
        .await;
    assert_eq!(by_auto["data"].as_array().unwrap().len(), 2);
    let ok = relay.get_json("/v1/deliveries?status=succeeded&limit=100").await;
    assert_eq!(ok["data"].as_array().unwrap().len(), 6);
}

// ---------------------------------------------------------------------------------------
// Known product bugs (see the `ignore` reasons)
// ---------------------------------------------------------------------------------------

/// Unparseable JSON is a problem with the body, not with whichever field the parser was in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_reported_against_the_body() {
    let relay = Relay::start(common::FAST_RETRIES);
    for (path, body) in [
        (ENDPOINTS, "{\"name\": "),
        (ENDPOINTS, "{\"name\": \"a\", \"processor_id\": }"),
        ("/v1/messages", "{\"processor_id\": \"p\","),
        ("/v1/messages", "{\"processor_id\": \"p\", \"payload\": {\"a\": }}"),
    ] {
        let r = send_ok(&relay, Method::POST, path, Some(body.to_string())).await;
        assert_error(&r, 400, "", &format!("POST {path} {body}"));
        assert_eq!(r.body["field"], "body", "POST {path} {body}: {}", r.text);
        assert!(r.body["message"].as_str().unwrap().contains("malformed JSON"), "{}", r.text);
    }
}
