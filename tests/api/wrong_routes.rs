//! Requests the router has no handler for still get the JSON error `{code, message, status}`
//! on every surface (admin, app, sink, ops): a known route with a method it does not serve
//! is 405 `method_not_allowed` with its `Allow` header kept; an unknown path is 404
//! `not_found`; a path parameter that is not valid UTF-8 is 400 `invalid_param`.
//!
//! Decision asserted here: on the admin and app surfaces the key is judged first, so a
//! wrong method without a key is still 401 (as before), and 405 only with a valid key.

use reqwest::Method;

use crate::auth_fixture::{ALPHA_KEY, APPS};
use crate::common::{Relay, KEY};
use crate::helpers::{assert_error, header, send, Headers};

const SINK: &str = "/v1/integrations/google_sheets/webhook";
const RUN_ID: &str = "0190a8d2-0000-7000-8000-000000000000";

fn admin() -> Headers {
    vec![("Api-Key", KEY.to_string())]
}

fn app() -> Headers {
    vec![("Authorization", format!("Bearer {ALPHA_KEY}"))]
}

/// The methods of an `Allow` header, upper case.
fn allowed(value: &str) -> Vec<String> {
    value.split(',').map(|m| m.trim().to_uppercase()).filter(|m| !m.is_empty()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_a_json_405_that_keeps_the_allow_header() {
    let relay = Relay::start(APPS);
    let endpoint = "/v1/processors/automations/endpoints/endp_00000000000000000000000000000000";
    // (method, path, headers, methods the Allow header must list)
    let cases: Vec<(Method, String, Headers, &[&str])> = vec![
        (Method::DELETE, "/v1/messages".into(), admin(), &["POST"]),
        (Method::PATCH, endpoint.into(), admin(), &["GET", "PUT", "DELETE"]),
        (Method::PUT, "/v1/spreadsheets".into(), admin(), &["GET", "POST"]),
        (Method::POST, "/v1/processors/automations/logs/log_x".into(), admin(), &["GET"]),
        (Method::OPTIONS, "/v1/deliveries".into(), admin(), &["GET"]),
        (Method::GET, "/v1/workflows/run".into(), app(), &["POST"]),
        (Method::DELETE, format!("/v1/workflows/run/{RUN_ID}"), app(), &["GET"]),
        (Method::PUT, "/v1/files/upload".into(), app(), &["POST"]),
        (Method::POST, "/v1/parameters".into(), app(), &["GET"]),
        (Method::GET, SINK.into(), admin(), &["POST"]),
        (Method::DELETE, format!("{SINK}?spreadsheet_id=ss_x"), vec![], &["POST"]),
        (Method::POST, "/healthz".into(), vec![], &["GET"]),
        (Method::DELETE, "/metrics".into(), vec![], &["GET"]),
    ];
    for (method, path, headers, allow) in cases {
        let ctx = format!("{method} {path}");
        let r = send(&relay, method.clone(), &path, &headers, None).await;
        assert_error(&r, 405, method.as_str(), &ctx);
        assert_eq!(r.body["code"], "method_not_allowed", "{ctx}: {}", r.text);
        let listed = allowed(header(&r.headers, "allow"));
        let message = r.body["message"].as_str().unwrap_or_default();
        let named = allowed(message.split_once("allowed: ").map_or("", |(_, methods)| methods));
        assert_eq!(named, listed, "{ctx}: the message names the Allow header's methods: {message}");
        for m in allow {
            assert!(listed.iter().any(|l| l == m), "{ctx}: Allow {listed:?} lacks {m}");
        }
        assert!(!listed.contains(&method.to_string()), "{ctx}: Allow {listed:?}");
    }

    // Without a key the admin and app surfaces answer 401 first, as JSON too.
    for (method, path) in [(Method::DELETE, "/v1/messages"), (Method::GET, "/v1/workflows/run")] {
        let r = send(&relay, method.clone(), path, &[], None).await;
        assert_error(&r, 401, "", &format!("{method} {path} without a key"));
        assert_eq!(r.body["code"], "unauthorized", "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_a_json_404_and_bad_path_parameters_a_json_400() {
    let relay = Relay::start(APPS);
    let unknown: [(Method, &str); 8] = [
        (Method::GET, "/"),
        (Method::GET, "/v1/nope"),
        (Method::POST, "/v1/messages/"),
        (Method::GET, "/v2/messages"),
        (Method::GET, "/v1/processors/automations/endpoints/a/b/c"),
        (Method::POST, "/v1/workflows/run/x/y"),
        (Method::GET, "/v1/spreadsheets/ss_x/values"),
        (Method::POST, "/v1/integrations/google_sheets/other"),
    ];
    for (method, path) in unknown {
        for (who, headers) in [("admin key", admin()), ("app key", app()), ("no key", vec![])] {
            let r = send(&relay, method.clone(), path, &headers, None).await;
            let ctx = format!("{method} {path} with {who}");
            assert_error(&r, 404, "route", &ctx);
            assert_eq!(r.body["code"], "not_found", "{ctx}: {}", r.text);
        }
    }

    let bad_utf8: [(&str, Headers); 4] = [
        ("/v1/spreadsheets/%FF", admin()),
        ("/v1/processors/automations/endpoints/%C3%28", admin()),
        ("/v1/deliveries/%FF%FE", admin()),
        ("/v1/workflows/run/%FF", app()),
    ];
    for (path, headers) in bad_utf8 {
        let r = send(&relay, Method::GET, path, &headers, None).await;
        assert_error(&r, 400, "utf-8", &format!("GET {path}"));
        assert_eq!(r.body["code"], "invalid_param", "GET {path}: {}", r.text);
    }
}
