//! Issue 10, item 4: a rerun's target. By default (no body, `{}`, `{"target": "original"}`)
//! the stored request goes to the log's URL with the headers sent then; `{"target":
//! "current"}` sends the stored body to the automation's current URL with its current
//! headers, signed with its current secret. The answer names the target. Anything else is a
//! 400 naming the field; a deleted automation has no current target (409).

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, verify_signature, Receiver, Relay};
use crate::helpers::{assert_error, header, send_ok, ENDPOINTS, LOGS};

async fn rerun_with(relay: &Relay, path: &str, body: Value) -> (u16, Value) {
    relay.post_json(&format!("{path}/rerun"), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_current_sends_the_stored_body_to_the_automations_current_url_and_headers() {
    let (old, new) = (Receiver::ok().await, Receiver::ok().await);
    let relay = Relay::start(common::FAST_RETRIES);
    let (status, automation) = relay
        .post_json(
            ENDPOINTS,
            &json!({"name": "moving", "processor_id": "proc_target", "webhook_url": old.url("/old"),
                    "webhook_headers": {"Authorization": "Bearer old-token"}}),
        )
        .await;
    assert_eq!(status, 201, "{automation}");
    let aid = automation["id"].as_str().expect("id").to_string();
    relay.send_message("proc_target", json!({"order": 7})).await;
    let log = relay.wait_logs_exactly("", 1).await.remove(0);
    let log_path = format!("{LOGS}/{}", log["id"].as_str().expect("id"));
    let first = old.calls().remove(0);

    let r = send_ok(
        &relay,
        Method::PUT,
        &format!("{ENDPOINTS}/{aid}"),
        Some(json!({"webhook_url": new.url("/new"), "webhook_headers": {"Authorization": "Bearer new-token"}}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (status, rotated) =
        relay.post_json(&format!("{ENDPOINTS}/{aid}/secret/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let current_secret = rotated["secret"].as_str().expect("secret");

    let (status, answer) = rerun_with(&relay, &log_path, json!({"target": "current"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["target"], "current", "{answer}");
    assert_eq!(answer["webhook_url"], new.url("/new"), "{answer}");
    assert_eq!(answer["status_code"], 200, "{answer}");
    assert_eq!(answer["request_body"], json!({"order": 7}), "{answer}");
    let calls = new.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body, first.body, "the stored body");
    assert_eq!(header(&calls[0].headers, "webhook-id"), header(&first.headers, "webhook-id"));
    assert_eq!(header(&calls[0].headers, "authorization"), "Bearer new-token");
    assert!(verify_signature(current_secret, &calls[0].headers, &calls[0].body));
    assert_eq!(old.count(), 1, "nothing went to the old receiver");
    let stored = relay.get_json(&format!("{LOGS}/{}", answer["id"].as_str().expect("id"))).await;
    assert_eq!(stored["automation_snapshot"]["webhook_url"], new.url("/new"), "{stored}");

    // The default, spelt out or not, is the original target with the original headers.
    for body in [json!({}), json!({"target": "original"}), json!({"target": null})] {
        let (status, answer) = rerun_with(&relay, &log_path, body.clone()).await;
        assert_eq!(status, 200, "{body}: {answer}");
        assert_eq!(answer["target"], "original", "{body}: {answer}");
        assert_eq!(answer["webhook_url"], old.url("/old"), "{body}: {answer}");
    }
    let calls = old.calls();
    assert_eq!(calls.len(), 4);
    assert!(calls[1..].iter().all(|c| header(&c.headers, "authorization") == "Bearer old-token"));

    // The processor-scoped route takes the same body.
    let scoped =
        format!("/v1/processors/proc_target/automations/logs/{}", log["id"].as_str().expect("id"));
    let (status, answer) = rerun_with(&relay, &scoped, json!({"target": "current"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["target"], "current", "{answer}");
    assert_eq!(new.count(), 2);

    // Refused before any call: an unknown target, a misspelt field, a target of another type.
    for (body, field) in [
        (json!({"target": "latest"}), "target"),
        (json!({"target": 5}), "target"),
        (json!({"targt": "current"}), "targt"),
        (json!(["current"]), "body"),
    ] {
        for path in [&log_path, &scoped] {
            let r = send_ok(&relay, Method::POST, &format!("{path}/rerun"), Some(body.to_string()))
                .await;
            assert_error(&r, 400, field, &format!("rerun {body}"));
            assert_eq!(r.body["field"], field, "{}", r.text);
        }
    }
    assert_eq!((old.count(), new.count()), (4, 2), "a refused rerun made a call");

    // With the automation deleted there is no current target: 409, no call.
    let r = send_ok(&relay, Method::DELETE, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for path in [&log_path, &scoped] {
        let r = send_ok(
            &relay,
            Method::POST,
            &format!("{path}/rerun"),
            Some(json!({"target": "current"}).to_string()),
        )
        .await;
        assert_error(&r, 409, "deleted", "current target of a deleted automation");
        assert_eq!(r.body["code"], "automation_deleted", "{}", r.text);
    }
    assert_eq!((old.count(), new.count()), (4, 2));
}
