//! Issue 10, item 5: no route ignores a query parameter it does not know. Every GET route of
//! the API (from the route table the router is built from, [`served_routes`], so a new route is covered
//! without being listed) and the sheets sink (the one other route that reads a query string)
//! answer an unknown parameter with a 400 `invalid_param` naming it, before looking anything
//! up; a list that ignored it would look filtered when it is not. The unauthenticated
//! operations routes (`/healthz`, `/readyz`, `/metrics`) are not resources and are left out.
//! Every parameter the client SDKs send stays accepted (`tests/sdk/` runs the SDKs themselves).

use reqwest::Method;
use serde_json::Value;

use crate::auth_fixture::{send_raw, ALPHA_KEY, APPS, SINK};
use crate::auth_routes::{served_routes, Kind};
use crate::common::{Relay, KEY};
use crate::helpers::{assert_error, send_ok, Resp, ENDPOINTS, LOGS, ZERO_HEX};

/// Every route that takes a query string: `(method, path template, credential)`.
fn query_routes() -> Vec<(String, String, Kind)> {
    served_routes()
        .into_iter()
        .filter(|(method, path, kind)| {
            (method == "GET" && *kind != Kind::Public)
                || (method == "POST" && path == SINK && *kind == Kind::Sink)
        })
        .collect()
}

/// `template` with every `{param}` replaced by a value its extractor accepts.
pub(crate) fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("closing brace") + open;
        out.push_str(&rest[..open]);
        out.push_str("x1");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `GET`s (or POSTs to the sink) `path_and_query` with the credential of `kind`.
async fn call(relay: &Relay, method: &str, path_and_query: &str, kind: Kind) -> Resp {
    let headers = match kind {
        Kind::App => vec![("Authorization", format!("Bearer {ALPHA_KEY}"))],
        _ => vec![("Api-Key", KEY.to_string())],
    };
    let (method, body) = match method {
        "GET" => (Method::GET, None),
        _ => (Method::POST, Some(("application/json".to_string(), b"{}".to_vec()))),
    };
    send_raw(relay, method, path_and_query, &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_taking_a_query_refuses_unknown_parameters() {
    let relay = Relay::start(APPS);
    let routes = query_routes();
    // The reader is not vacuous: 24 GET routes (keyed and app) and the sink.
    assert_eq!(routes.len(), 25, "{routes:#?}");
    for (method, template, kind) in &routes {
        let path = concrete(template);
        let ctx = format!("{method} {path}");
        let r = call(&relay, method, &format!("{path}?foo=bar"), *kind).await;
        assert_error(&r, 400, "foo", &ctx);
        assert_eq!(r.body["code"], "invalid_param", "{ctx}: {}", r.text);
        assert_eq!(r.body["field"], "foo", "{ctx}: {}", r.text);
        // Several are all named; the field is the first.
        let r = call(&relay, method, &format!("{path}?foo=1&bar%5Fbaz=2&foo=3"), *kind).await;
        assert_eq!(r.status, 400, "{ctx}: {}", r.text);
        assert_eq!(r.body["field"], "foo", "{ctx}: {}", r.text);
        let message = r.body["message"].as_str().unwrap_or("");
        assert!(message.contains("`foo`") && message.contains("`bar_baz`"), "{ctx}: {message}");
    }
}

/// Filters an operator reaches for on a list that does not have them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_a_list_lacks_is_refused_not_ignored() {
    let relay = Relay::start(APPS);
    let admin = [
        (format!("{LOGS}?status=failed"), "status"),
        ("/v1/processors/p1/automations/logs?limit=5&status=failed".to_string(), "status"),
        (format!("{LOGS}?error_codes=E_CONNECTION"), "error_codes"),
        ("/v1/deliveries?error_code=E_CONNECTION".to_string(), "error_code"),
        ("/v1/deliveries?status=failed&success=false".to_string(), "success"),
        (format!("{ENDPOINTS}?automation_id=auto_1"), "automation_id"),
        ("/v1/spreadsheets?title=Orders".to_string(), "title"),
        (format!("{LOGS}/log_auto_{ZERO_HEX}?automation_id=auto_1"), "automation_id"),
    ];
    for (path, field) in admin {
        let r = send_ok(&relay, Method::GET, &path, None).await;
        assert_error(&r, 400, field, &path);
        assert_eq!(r.body["field"], field, "{path}: {}", r.text);
    }
    let r = call(&relay, "GET", "/v1/workflows/logs?order=desc", Kind::App).await;
    assert_eq!((r.status, &r.body["field"]), (400, &Value::from("order")), "{}", r.text);
}

/// Every query parameter the uiform, retab and Dify SDKs send is accepted on its route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_parameter_an_sdk_sends_is_accepted() {
    let relay = Relay::start(APPS);
    let cursor = format!("log_auto_{ZERO_HEX}");
    // uiform 0.0.35 and retab 0.0.49 `logs.list`, every argument given.
    let logs = "limit=10&order=desc&status_code=200&status_class=2xx&automation_id=auto_1\
                &webhook_url=http%3A%2F%2Fx%2Fy&schema_id=s1&schema_data_id=d1";
    let endpoint_cursor = format!("endp_{ZERO_HEX}");
    for path in [
        format!("{LOGS}?{logs}&after={cursor}"),
        format!("{LOGS}?{logs}&before={cursor}"),
        format!("/v1/processors/p1/automations/logs?{logs}&after={cursor}"),
        // uiform `endpoints.list`.
        format!("{ENDPOINTS}?limit=10&order=desc&name=n&webhook_url=http%3A%2F%2Fx%2F&before={endpoint_cursor}"),
    ] {
        let r = send_ok(&relay, Method::GET, &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    // dify-client: `get_workflow_logs` with every argument, and `get_application_parameters`.
    for path in [
        "/v1/workflows/logs?page=1&limit=20&keyword=k&status=succeeded\
         &created_at__before=2999-01-01T00%3A00%3A00Z&created_at__after=2000-01-01T00%3A00%3A00Z\
         &created_by_end_user_session_id=u1&created_by_account=a1",
        "/v1/parameters?user=u1",
    ] {
        let r = call(&relay, "GET", path, Kind::App).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}
