use reqwest::Method;

use crate::common::{self, Relay};
use crate::helpers::{assert_error, send_ok, ENDPOINTS};

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
