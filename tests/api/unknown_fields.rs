//! No route ignores what it does not take. Every JSON body of the relay's own API refuses a
//! field its route does not know, and a field given twice, with a 400 `invalid_param` naming
//! it, before acting (and an array, which serde would read as the fields in order): an ignored
//! `automationId` turned a scoped recover into a global one, an ignored `enable` left an
//! automation enabled, and of two `target`s the last one won. Every POST, PUT and DELETE
//! refuses a query parameter it does not take, as every GET does (`unknown_params.rs`). The
//! routes come from the route table the router is built from ([`served_routes`]), so a new one is covered without
//! being listed here, and must be listed below to pass. Every field the client SDKs send stays
//! accepted (`tests/sdk/` runs the SDKs themselves).

use reqwest::Method;
use serde_json::{json, Value};

use crate::auth_fixture::{json_body, send_raw, ALPHA_KEY, APPS, SINK};
use crate::auth_routes::{served_routes, Kind};
use crate::common::{Relay, KEY};
use crate::helpers::{assert_error, send_ok, Resp, ENDPOINTS, LOGS};
use crate::unknown_params::concrete;

/// The routes that take no body at all: any but none (or `{}`) is refused (`no_body.rs`).
const NO_BODY: &[(&str, &str)] = &[
    ("DELETE", "/v1/processors/automations/endpoints/{id}"),
    ("DELETE", "/v1/spreadsheets/{id}"),
    ("DELETE", "/v1/spreadsheets/{id}/signer"),
    ("DELETE", "/v1/messages/{id}/content"),
    // uiform's and retab's `secret.rotate` and `tests.webhook` post none.
    ("POST", "/v1/processors/automations/endpoints/{id}/secret/rotate"),
    ("POST", "/v1/processors/automations/tests/webhook/{id}"),
    ("POST", "/v1/processors/automations/endpoints/{id}/enable"),
    ("POST", "/v1/processors/automations/endpoints/{id}/disable"),
    ("DELETE", "/v1/keys/{id}"),
    ("POST", "/v1/processors/automations/logs/recover/{job_id}/cancel"),
];

/// The routes whose body is not JSON of the relay's own API.
const OTHER_BODY: &[(&str, &str)] = &[
    // A multipart form (Dify's file upload).
    ("POST", "/v1/files/upload"),
    // The delivered payload, any JSON object: the sink appends what it is sent.
    ("POST", SINK),
];

/// Every route with a JSON body, with one field it takes and a value of that field's type.
const BODY_FIELDS: &[(&str, &str, &str, &str)] = &[
    ("POST", "/v1/processors/automations/endpoints", "name", r#""n""#),
    ("PUT", "/v1/processors/automations/endpoints/{id}", "enabled", "false"),
    ("POST", "/v1/processors/automations/endpoints/{id}/replay-missing", "since", r#""1m""#),
    ("POST", "/v1/messages", "processor_id", r#""p1""#),
    ("POST", "/v1/processors/automations/logs/{log_id}/rerun", "target", r#""current""#),
    (
        "POST",
        "/v1/processors/{processor_id}/automations/logs/{log_id}/rerun",
        "target",
        r#""current""#,
    ),
    ("POST", "/v1/processors/automations/logs/recover", "since", r#""1m""#),
    ("POST", "/v1/spreadsheets", "title", r#""t""#),
    ("PUT", "/v1/spreadsheets/{id}/signer", "automation_id", r#""endp_1""#),
    ("POST", "/v1/keys", "name", r#""n""#),
    ("POST", "/v1/workflows/run", "user", r#""u1""#),
    ("POST", "/v1/workflows/tasks/{task_id}/stop", "user", r#""u1""#),
];

/// Every POST, PUT and DELETE route of the API but the sink (whose query is its own:
/// `unknown_params.rs`), with its credential.
fn writing_routes() -> Vec<(String, String, Kind)> {
    served_routes()
        .into_iter()
        .filter(|(method, _, kind)| method != "GET" && !matches!(kind, Kind::Public | Kind::Sink))
        .collect()
}

/// Sends `body` (JSON, as given) to `method path_and_query` with the credential of `kind`.
async fn call(relay: &Relay, method: &str, path_and_query: &str, kind: Kind, body: &str) -> Resp {
    let headers = match kind {
        Kind::App => vec![("Authorization", format!("Bearer {ALPHA_KEY}"))],
        _ => vec![("Api-Key", KEY.to_string())],
    };
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let body = Some(("application/json".to_string(), body.as_bytes().to_vec()));
    send_raw(relay, method, path_and_query, &headers, body).await
}

/// A 400 `invalid_param` whose `field` is `field` and whose message says why.
fn assert_refused(r: &Resp, field: &str, why: &str, ctx: &str) {
    assert_error(r, 400, field, ctx);
    assert_eq!(r.body["code"], "invalid_param", "{ctx}: {}", r.text);
    assert_eq!(r.body["field"], field, "{ctx}: {}", r.text);
    let message = r.body["message"].as_str().unwrap_or("");
    assert!(message.contains(why), "{ctx}: message does not say {why:?}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_body_refuses_unknown_and_repeated_fields() {
    let relay = Relay::start(APPS);
    let with_body: Vec<(String, String, Kind)> = writing_routes()
        .into_iter()
        .filter(|(m, p, _)| {
            let route = (m.as_str(), p.as_str());
            !NO_BODY.contains(&route) && !OTHER_BODY.contains(&route)
        })
        .collect();
    let mut listed: Vec<(&str, &str)> = BODY_FIELDS.iter().map(|(m, p, _, _)| (*m, *p)).collect();
    listed.sort();
    let served: Vec<(&str, &str)> = with_body.iter().map(|(m, p, _)| (&m[..], &p[..])).collect();
    assert_eq!(served, listed, "BODY_FIELDS must list every JSON-body route");
    for (method, template, kind) in &with_body {
        let (_, _, field, value) =
            BODY_FIELDS.iter().find(|r| r.0 == method && r.1 == template).expect("listed");
        let path = concrete(template);
        let ctx = format!("{method} {path}");
        // Alone, beside a field the route takes, and nested names are named by their path.
        for body in [r#"{"fooBar":1}"#.to_string(), format!(r#"{{"{field}":{value},"fooBar":1}}"#)]
        {
            let r = call(&relay, method, &path, *kind, &body).await;
            assert_refused(&r, "fooBar", "unknown field `fooBar`", &format!("{ctx} {body}"));
        }
        // Nor is a body positional: serde would fill the fields from an array, in order.
        let array = format!("[{value}]");
        let r = call(&relay, method, &path, *kind, &array).await;
        assert_refused(&r, "body", "not an array", &format!("{ctx} {array}"));
        let twice = format!(r#"{{"{field}":{value},"{field}":{value}}}"#);
        let r = call(&relay, method, &path, *kind, &twice).await;
        assert_refused(&r, field, &format!("duplicate field `{field}`"), &format!("{ctx} {twice}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_without_a_body_refuses_one() {
    let relay = Relay::start(APPS);
    let without: Vec<(String, String, Kind)> = writing_routes()
        .into_iter()
        .filter(|(m, p, _)| {
            let route = (m.as_str(), p.as_str());
            !BODY_FIELDS.iter().any(|(bm, bp, _, _)| (*bm, *bp) == route)
                && !OTHER_BODY.contains(&route)
        })
        .collect();
    let mut listed = NO_BODY.to_vec();
    listed.sort();
    let served: Vec<(&str, &str)> = without.iter().map(|(m, p, _)| (&m[..], &p[..])).collect();
    assert_eq!(served, listed, "NO_BODY must list every route without a body");
    for (method, template, kind) in &without {
        let path = concrete(template);
        // Refused before the route looks its resource up (these ids do not exist).
        for body in [r#"{"zzq":1}"#, "[1]", "[]", "garbage", "null", "1", r#""x""#] {
            let r = call(&relay, method, &path, *kind, body).await;
            assert_refused(&r, "body", "takes no body", &format!("{method} {path} {body}"));
        }
        for body in ["", " ", "{}", " { } "] {
            let r = call(&relay, method, &path, *kind, body).await;
            assert_eq!(r.status, 404, "{method} {path} {body:?} reaches the route: {}", r.text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_writing_route_refuses_unknown_query_parameters() {
    let relay = Relay::start(APPS);
    let routes = writing_routes();
    // The table is not read vacuously: 20 keyed routes and 3 app routes.
    assert_eq!(routes.len(), 23, "{routes:#?}");
    for (method, template, kind) in &routes {
        let path = concrete(template);
        let ctx = format!("{method} {path}");
        let r = call(&relay, method, &format!("{path}?automation_id=endp_1"), *kind, "{}").await;
        assert_refused(&r, "automation_id", "unknown query parameter `automation_id`", &ctx);
    }
}

/// The attack's own requests: each is refused and nothing happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_field_or_parameter_changes_nothing() {
    let relay = Relay::start("");
    let created = send_ok(
        &relay,
        Method::POST,
        ENDPOINTS,
        Some(
            json!({"name": "a", "processor_id": "p1", "webhook_url": "http://127.0.0.1:9/"})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().expect("id").to_string();
    let recover = format!("{LOGS}/recover");
    for (path, body, field) in [
        (recover.clone(), json!({"since": "1m", "automationId": id}), "automationId"),
        (recover.clone(), json!({"since": "1m", "processor_id": "p1"}), "processor_id"),
        (format!("{recover}?automation_id={id}"), json!({"since": "1m"}), "automation_id"),
    ] {
        let r = send_ok(&relay, Method::POST, &path, Some(body.to_string())).await;
        assert_refused(&r, field, field, &path);
    }
    let jobs = send_ok(&relay, Method::GET, &recover, None).await;
    assert_eq!(jobs.body["data"], json!([]), "no recover job was started: {}", jobs.text);
    let one = format!("{ENDPOINTS}/{id}");
    let r = send_ok(&relay, Method::PUT, &one, Some(r#"{"enable":false}"#.into())).await;
    assert_refused(&r, "enable", "unknown field `enable`", &one);
    let shown = send_ok(&relay, Method::GET, &one, None).await;
    assert_eq!(shown.body["enabled"], true, "{}", shown.text);
    let event = json!({"processor_id": "p1", "eventType": "order.paid", "payload": {}});
    let r = send_ok(&relay, Method::POST, "/v1/messages", Some(event.to_string())).await;
    assert_refused(&r, "eventType", "unknown field `eventType`", "ingest");
    let messages = send_ok(&relay, Method::GET, "/v1/messages", None).await;
    assert_eq!(messages.body["data"], json!([]), "no message was accepted: {}", messages.text);
}

/// The bodies the uiform 0.0.35, retab 0.0.49 and Dify clients send, as captured from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_an_sdk_sends_is_accepted() {
    let relay = Relay::start(APPS);
    // retab `endpoints.create(processor_id, name, webhook_url, webhook_headers=…,
    // need_validation=…)`: the model's computed `object` comes along.
    let create = json!({"name": "n", "processor_id": "p1", "webhook_url": "http://127.0.0.1:9/y",
        "webhook_headers": {"a": "b"}, "need_validation": true, "object": "automation.endpoint"});
    let r = send_ok(&relay, Method::POST, ENDPOINTS, Some(create.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let one = format!("{ENDPOINTS}/{}", r.body["id"].as_str().expect("id"));
    for update in [
        // uiform `endpoints.update(id, name=…)`: every other field as null.
        json!({"name": "n2", "processor_id": null, "default_language": null, "webhook_url": null,
            "webhook_headers": null, "need_validation": null}),
        // retab `endpoints.update` with every argument.
        json!({"name": "n3", "default_language": "fr", "webhook_url": "http://127.0.0.1:9/z",
            "webhook_headers": {}, "need_validation": false}),
    ] {
        let r = send_ok(&relay, Method::PUT, &one, Some(update.to_string())).await;
        assert_eq!(r.status, 200, "{update}: {}", r.text);
    }
    // Dify: `WorkflowClient.run`, with the `trace_id` Dify's API documents (body or query).
    let run = json!({"inputs": {"codeword": "c"}, "response_mode": "blocking", "user": "u1",
        "files": [], "trace_id": "t1"});
    let headers = [("Authorization", format!("Bearer {ALPHA_KEY}"))];
    let r =
        send_raw(&relay, Method::POST, "/v1/workflows/run?trace_id=t1", &headers, json_body(run))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["outputs"], json!({"text": "said c"}), "{}", r.text);
    let task = r.body["task_id"].as_str().expect("task_id");
    let stop = format!("/v1/workflows/tasks/{task}/stop");
    let r = send_raw(&relay, Method::POST, &stop, &headers, json_body(json!({"user": "u1"}))).await;
    assert_eq!((r.status, &r.body["result"]), (200, &Value::from("success")), "{}", r.text);
}
