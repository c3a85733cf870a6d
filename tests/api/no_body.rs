//! A route that takes no body does nothing when sent one: rotating a secret, sending a test
//! call and deleting were done whatever the body said (`{"zzq":1}`, `[1]`, `garbage`,
//! `null`). Sending none, as the SDKs do, or `{}` still works (`unknown_fields.rs` covers
//! every such route; this is the attack's own requests, on resources that exist).

use reqwest::Method;
use serde_json::json;

use crate::common::{Receiver, Relay};
use crate::helpers::{assert_error, send_ok, Resp, ENDPOINTS, LOGS};

const BODIES: [&str; 4] = [r#"{"zzq":1}"#, "[1]", "garbage", "null"];

/// `method path` with `body` as JSON, or with no body at all when `None`.
async fn call(relay: &Relay, method: Method, path: &str, body: Option<&str>) -> Resp {
    send_ok(relay, method, path, body.map(str::to_string)).await
}

fn assert_no_body(r: &Resp, ctx: &str) {
    assert_error(r, 400, "body", ctx);
    assert_eq!((&r.body["code"], &r.body["field"]), (&json!("invalid_param"), &json!("body")));
    assert!(r.text.contains("takes no body"), "{ctx}: {}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_to_a_route_that_takes_none_changes_nothing() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start("");
    let create = json!({"name": "a", "processor_id": "p1", "webhook_url": receiver.url("/a")});
    let created = call(&relay, Method::POST, ENDPOINTS, Some(&create.to_string())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().expect("id");
    let one = format!("{ENDPOINTS}/{id}");
    let secret = created.body["secret"].clone();
    let rotate = format!("{one}/secret/rotate");
    let test = format!("/v1/processors/automations/tests/webhook/{id}");
    for body in BODIES {
        assert_no_body(&call(&relay, Method::POST, &rotate, Some(body)).await, &rotate);
        assert_no_body(&call(&relay, Method::POST, &test, Some(body)).await, &test);
        assert_no_body(&call(&relay, Method::DELETE, &one, Some(body)).await, &one);
    }
    let shown = call(&relay, Method::GET, &format!("{one}/secret"), None).await;
    assert_eq!(shown.body["secret"], secret, "not rotated: {}", shown.text);
    let logs = call(&relay, Method::GET, LOGS, None).await;
    assert_eq!(logs.body["data"], json!([]), "no test call was sent: {}", logs.text);
    assert_eq!(receiver.count(), 0, "the receiver got nothing");

    // What the SDKs send (no body), and `{}`, are taken.
    for body in [None, Some("{}")] {
        let r = call(&relay, Method::POST, &rotate, body).await;
        assert_eq!(r.status, 200, "rotate {body:?}: {}", r.text);
        let r = call(&relay, Method::POST, &test, body).await;
        assert_eq!(r.status, 200, "test call {body:?}: {}", r.text);
    }
    let shown = call(&relay, Method::GET, &format!("{one}/secret"), None).await;
    assert_ne!(shown.body["secret"], secret, "rotated: {}", shown.text);
    assert_eq!(call(&relay, Method::DELETE, &one, None).await.status, 200);
    assert_eq!(call(&relay, Method::GET, &one, None).await.status, 404, "deleted");

    let sheet = call(&relay, Method::POST, "/v1/spreadsheets", Some(r#"{"title":"t"}"#)).await;
    assert_eq!(sheet.status, 201, "{}", sheet.text);
    let sheet = format!("/v1/spreadsheets/{}", sheet.body["spreadsheetId"].as_str().expect("id"));
    for path in [sheet.clone(), format!("{sheet}/signer")] {
        for body in BODIES {
            assert_no_body(&call(&relay, Method::DELETE, &path, Some(body)).await, &path);
        }
    }
    assert_eq!(call(&relay, Method::GET, &sheet, None).await.status, 200, "not deleted");
    assert_eq!(call(&relay, Method::DELETE, &sheet, Some("{}")).await.status, 200);
    assert_eq!(call(&relay, Method::GET, &sheet, None).await.status, 404, "deleted");
}
