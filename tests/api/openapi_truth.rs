//! Issue 14 §1, the OpenAPI document's truth beyond its schemas: a route documented without
//! a request body refuses one, and the `/docs` page lets only its own scripts run.

use base64::Engine;
use hookrelay::api::openapi::path_params;
use hookrelay::api::routes::served;
use hookrelay::api::Credential;
use reqwest::Method;
use serde_json::json;
use sha2::Digest;

use crate::common::Relay;
use crate::helpers::send;
use crate::openapi::{call, document};

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
