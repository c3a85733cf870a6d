use reqwest::Method;
use serde_json::json;

use crate::common::{self, Receiver, Relay, KEY};
use crate::helpers::{
    assert_error, count_list, ids_of, rfc3339_ago, send, Headers, ENDPOINTS, LOGS,
};

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
    let logs = relay.wait_logs_exactly("", 1).await;
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

    // Nothing the refused requests asked for happened. No wait is needed: a test call or a
    // rerun calls before it answers, and a message is stored (a delivery) before its 202.
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
            let ctx = format!("{method} {path} with {}", headers[0].0);
            assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            // The answer is the resource the route serves, not merely a 200.
            let last = path.rsplit('/').next().unwrap_or_default();
            if last == "secret" {
                assert_eq!(r.body["secret"], secret.as_str(), "{ctx}: {}", r.text);
            } else if [&aid, &did, &lid, &rid].contains(&&last.to_string()) {
                assert_eq!(r.body["id"], last, "{ctx}: {}", r.text);
            } else {
                let items = r.body["data"].as_array();
                assert!(items.is_some_and(|d| !d.is_empty()), "{ctx}: not a list: {}", r.text);
            }
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
    relay.wait_logs_exactly("", 2).await;
    // Positive control for the checks above: the receiver got this message and nothing else.
    let bodies: Vec<serde_json::Value> = receiver
        .calls()
        .iter()
        .map(|c| serde_json::from_slice(&c.body).expect("a JSON call"))
        .collect();
    assert_eq!(bodies, vec![json!({"n": 1}), json!({"n": 2})], "the receiver's calls");

    // Ops routes need no key.
    for path in ["/healthz", "/readyz"] {
        let r = send(&relay, Method::GET, path, &[], None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    let r = send(&relay, Method::GET, "/metrics", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("hookrelay_delivery_attempts"), "{}", r.text);
}
