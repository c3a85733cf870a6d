//! JSON bodies nest at most `limits.max_json_depth` (128) arrays and objects below their
//! top level, on every route that takes one: message payloads (relayed to receivers as
//! they are), run inputs, sheets sink appends, automations. Deeper gets a 400 naming the
//! field and the limit; exactly the limit is accepted.

use reqwest::Method;

use crate::common::{Receiver, Relay, KEY};
use crate::helpers::{assert_error, send, ENDPOINTS};

const APP_KEY: &str = "app-deep-key-0123456789";
const LIMIT: usize = 128;

/// An object `depth` levels deep: `{"a":[[…]]}` (the object is one level, each array one).
fn object_of_depth(depth: usize) -> String {
    let arrays = depth - 1;
    format!("{{\"a\":{}{}}}", "[".repeat(arrays), "]".repeat(arrays))
}

/// POST `body` (raw JSON text) to `path` with `auth` headers.
async fn post(
    relay: &Relay,
    path: &str,
    auth: (&'static str, String),
    body: String,
) -> crate::helpers::Resp {
    send(relay, Method::POST, path, &[auth], Some(body)).await
}

fn admin() -> (&'static str, String) {
    ("Api-Key", KEY.to_string())
}

/// Asserts the 400 names `field` and the limit.
fn assert_too_deep(r: &crate::helpers::Resp, field: &str, limit: usize, ctx: &str) {
    assert_error(r, 400, field, ctx);
    assert_eq!(r.body["field"], field, "{ctx}: {}", r.text);
    let message = r.body["message"].as_str().unwrap_or("");
    assert!(message.contains(&format!("{limit} levels")), "{ctx}: names the limit: {}", r.text);
}

/// A route taking JSON: its path, the member holding the deep value, the credentials, the
/// body with `DEEP` where that value goes, and the status of a body at the limit.
struct Route {
    path: String,
    field: &'static str,
    auth: (&'static str, String),
    template: String,
    ok: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_body_is_bounded_in_depth() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(&crate::common::apps::start_to_end_app("deep", APP_KEY));
    relay.create_automation("proc_deep", &receiver.url("/hook")).await;
    let (status, sheet) =
        relay.post_json("/v1/spreadsheets", &serde_json::json!({"title": "Deep"})).await;
    assert_eq!(status, 201, "{sheet}");
    let sheet_id = sheet["spreadsheetId"].as_str().expect("id");
    let routes = [
        Route {
            path: "/v1/messages".into(),
            field: "payload",
            auth: admin(),
            template: r#"{"processor_id":"proc_deep","payload":DEEP}"#.into(),
            ok: 202,
        },
        Route {
            path: "/v1/workflows/run".into(),
            field: "inputs",
            auth: ("Authorization", format!("Bearer {APP_KEY}")),
            template: r#"{"user":"u","inputs":DEEP}"#.into(),
            ok: 200,
        },
        Route {
            path: format!("/v1/integrations/google_sheets/webhook?spreadsheet_id={sheet_id}"),
            field: "cell",
            auth: admin(),
            template: r#"{"cell":DEEP}"#.into(),
            ok: 200,
        },
        Route {
            path: ENDPOINTS.into(),
            field: "object",
            auth: admin(),
            template: format!(
                r#"{{"name":"n","processor_id":"p","webhook_url":"{}","object":DEEP}}"#,
                receiver.url("/other")
            ),
            ok: 201,
        },
    ];
    for route in &routes {
        let body = |depth: usize| route.template.replace("DEEP", &object_of_depth(depth));
        for depth in [10_000, LIMIT + 1] {
            let r = post(&relay, &route.path, route.auth.clone(), body(depth)).await;
            let ctx = format!("{} {} of depth {depth}", route.path, route.field);
            assert_too_deep(&r, route.field, LIMIT, &ctx);
        }
        let r = post(&relay, &route.path, route.auth.clone(), body(LIMIT)).await;
        assert_eq!(
            r.status, route.ok,
            "{} {} of depth {LIMIT}: {}",
            route.path, route.field, r.text
        );
    }

    // The payload at the limit reaches the receiver byte for byte.
    let sent = object_of_depth(LIMIT);
    let delivered = relay
        .wait_for(crate::helpers::WAIT, "the delivery", || async {
            receiver.calls().into_iter().next().map(|c| c.body)
        })
        .await;
    assert_eq!(String::from_utf8_lossy(&delivered), sent);
    assert_eq!(receiver.count(), 1, "nothing deeper was relayed");
}

/// The limit is a setting; the field is named by the top-level key it is under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_depth_limit_is_configurable() {
    let relay = Relay::start("[limits]\nmax_json_depth = 8\n");
    let body =
        |depth: usize| format!("{{\"processor_id\":\"p\",\"payload\":{}}}", object_of_depth(depth));
    let r = post(&relay, "/v1/messages", admin(), body(9)).await;
    assert_too_deep(&r, "payload", 8, "payload of depth 9");
    let r = post(&relay, "/v1/messages", admin(), body(8)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    // Brackets inside strings are text, and an escaped key is named as it reads.
    let r = post(
        &relay,
        "/v1/messages",
        admin(),
        format!(
            "{{\"processor_id\":\"p\",\"pay\\u006coad\":\"[[[[[[[[[[\",\"x\\\"y\":{}}}",
            object_of_depth(9)
        ),
    )
    .await;
    assert_too_deep(&r, "x\"y", 8, "escaped key");
}
