//! The http-request node under the SSRF guard (on by default): every internal target of the
//! matrix fails the run with `E_BLOCKED_TARGET` in the node's error, as deliveries and
//! reruns record it, including a public receiver's redirect to an internal target.

use serde_json::json;

use crate::common::ssrf::{assert_no_failures, Matrix, GUARD_ON};
use crate::common::Relay;
use crate::helpers::{edges, App};

const KEY: &str = "app-fetch-key-0123456789";

/// start → call (GET `{{#start.url#}}`, 3 s timeout) → end (`status`).
fn fetch_app(matrix: &Matrix) -> String {
    format!(
        "[delivery]\nconnect_timeout_ms = 1000\n{}\
         [[apps]]\nid = \"fetch\"\napi_keys = [\"{KEY}\"]\n\
         [[apps.inputs]]\ntype = \"text-input\"\nvariable = \"url\"\nrequired = true\nmax_length = 200\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
         [[apps.nodes]]\nid = \"call\"\ntype = \"http-request\"\nurl = \"{{{{#start.url#}}}}\"\n\
         timeout_secs = 3\n\
         [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\n\
         outputs = [{{ variable = \"status\", value_selector = [\"call\", \"status_code\"] }}]\n{}",
        matrix.security_toml(),
        edges(&[("start", "call"), ("call", "end")])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_request_node_refuses_every_internal_target() {
    let matrix = Matrix::start().await;
    let relay = Relay::start_with_env(&fetch_app(&matrix), &GUARD_ON);
    let api = App::new(&relay, KEY);

    // Controls: the node reaches pinned public.example through the shared client, and a
    // redirect to an allowed target is an ordinary output (not followed).
    let body = api.blocking(json!({"url": matrix.public_url("/ok")}), "u").await;
    assert_eq!(body["data"]["status"], "succeeded", "{body}");
    assert_eq!(body["data"]["outputs"]["status"], 200, "{body}");
    let body = api.blocking(json!({"url": matrix.public_url("/to-public")}), "u").await;
    assert_eq!(body["data"]["status"], "succeeded", "{body}");
    assert_eq!(body["data"]["outputs"]["status"], 302, "{body}");

    let mut failures = Vec::new();
    for target in matrix.targets() {
        let body = api.blocking(json!({"url": target.url}), "u").await;
        let data = &body["data"];
        let error = data["error"].as_str().unwrap_or("");
        let mut wrong = Vec::new();
        if data["status"] != "failed" {
            wrong.push(format!("run {}", data["status"]));
        }
        if !error.starts_with("node call: E_BLOCKED_TARGET: ") {
            wrong.push("error is not the call node's E_BLOCKED_TARGET".to_string());
        }
        if target.redirect
            && !(error.contains("HTTP 302")
                && error.contains("redirect")
                && error.contains("not followed"))
        {
            wrong.push("error does not say the redirect was refused".to_string());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}): {}; error: {error}",
                target.name,
                target.url,
                wrong.join(", ")
            ));
        }
    }
    assert_no_failures("http-request node", &failures);
    matrix.assert_only_public_calls(1, &["/ok", "/to-public"]);
}
