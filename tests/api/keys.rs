//! Issue 13 §1: `/v1/keys`. A key is shown once (`hr_<role>_…`), listed without its secret,
//! used, its last use recorded, revoked with effect on the very next request (and after a
//! restart); an expired key is refused; bad input names its field and creates nothing. And
//! what the roles mean on real resources: a viewer reads but not a secret, an operator reruns,
//! recovers, sends a test call and enables or disables, but configures nothing.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Receiver, Relay, WAIT};
use crate::helpers::{assert_error, rfc3339_ago, send, Resp, ENDPOINTS, LOGS};

/// `method path` with `key` as a bearer token and an optional JSON body.
async fn as_key(relay: &Relay, key: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    let headers = [("Authorization", format!("Bearer {key}"))];
    send(relay, method, path, &headers, body.map(|b| b.to_string())).await
}

/// Creates a key with the admin key; returns the 201 body (with `key`).
async fn create_key(relay: &Relay, body: Value) -> Value {
    let (status, created) = relay.post_json("/v1/keys", &body).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// The listed key `id`.
async fn listed(relay: &Relay, id: &str) -> Value {
    let list = relay.get_json("/v1/keys").await;
    let found = list["data"].as_array().expect("data").iter().find(|k| k["id"] == id);
    found.cloned().unwrap_or_else(|| panic!("{id} not listed: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_shown_once_listed_without_it_and_refused_as_soon_as_revoked() {
    let mut relay = Relay::start("");
    let created = create_key(&relay, json!({"name": "ci reader", "role": "viewer"})).await;
    let key = created["key"].as_str().expect("key").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    assert!(key.starts_with("hr_viewer_") && key.len() == "hr_viewer_".len() + 48, "{key}");
    assert!(id.starts_with("key_"), "{id}");
    assert_eq!((&created["name"], &created["role"]), (&json!("ci reader"), &json!("viewer")));
    assert!(created["expires_at"].is_null() && created["last_used_at"].is_null(), "{created}");

    let read = as_key(&relay, &key, Method::GET, ENDPOINTS, None).await;
    assert_eq!(read.status, 200, "{}", read.text);
    // The use is recorded, through the writer, shortly after it.
    let used = relay
        .wait_for(WAIT, "last_used_at", || async {
            let k = listed(&relay, &id).await;
            k["last_used_at"].as_str().map(str::to_string)
        })
        .await;
    assert!(used.ends_with('Z'), "{used}");
    let list = relay.get_json("/v1/keys").await;
    assert!(!list.to_string().contains(&key), "the list shows the key: {list}");
    assert!(list["data"].as_array().expect("data").iter().all(|k| k.get("key").is_none()));

    // A second key stays valid when the first is revoked.
    let other = create_key(&relay, json!({"name": "ops", "role": "operator"})).await;
    let other_key = other["key"].as_str().expect("key").to_string();
    let revoked = send(&relay, Method::DELETE, &format!("/v1/keys/{id}"), &admin(), None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert!(revoked.body["revoked_at"].is_string(), "{}", revoked.text);
    let refused = as_key(&relay, &key, Method::GET, ENDPOINTS, None).await;
    assert_error(&refused, 401, "", "a revoked key");
    assert_eq!(refused.body["code"], "unauthorized", "{}", refused.text);
    let again = send(&relay, Method::DELETE, &format!("/v1/keys/{id}"), &admin(), None).await;
    assert_eq!(again.body["revoked_at"], revoked.body["revoked_at"], "{}", again.text);
    let unknown = format!("/v1/keys/key_{}", "0".repeat(32));
    assert_eq!(send(&relay, Method::DELETE, &unknown, &admin(), None).await.status, 404);
    assert_eq!(listed(&relay, &id).await["revoked_at"], revoked.body["revoked_at"]);

    // Both stay as they were after a restart: stored, not only in memory.
    relay.restart();
    let refused = as_key(&relay, &key, Method::GET, ENDPOINTS, None).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let kept = as_key(&relay, &other_key, Method::GET, ENDPOINTS, None).await;
    assert_eq!(kept.status, 200, "{}", kept.text);
}

fn admin() -> Vec<(&'static str, String)> {
    vec![("Api-Key", crate::common::KEY.to_string())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_key_is_refused() {
    let relay = Relay::start("");
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let created =
        create_key(&relay, json!({"name": "short", "role": "admin", "expires_at": expires})).await;
    let key = created["key"].as_str().expect("key");
    assert!(created["expires_at"].is_string(), "{created}");
    assert_eq!(as_key(&relay, key, Method::GET, "/v1/keys", None).await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = as_key(&relay, key, Method::GET, "/v1/keys", None).await;
        if r.status == 401 {
            assert_eq!(r.body["code"], "unauthorized", "{}", r.text);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(Instant::now() < deadline, "the key still works past its expiry");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_input_is_refused_naming_the_field() {
    let relay = Relay::start("");
    let long = "n".repeat(257);
    let cases = [
        (json!({"role": "viewer"}), "name", "is required"),
        (json!({"name": "", "role": "viewer"}), "name", "must not be empty"),
        (json!({"name": "   ", "role": "viewer"}), "name", "must not be empty"),
        (json!({"name": long, "role": "viewer"}), "name", "at most 256 bytes"),
        (json!({"name": "a\nb", "role": "viewer"}), "name", "control characters"),
        (json!({"name": 7, "role": "viewer"}), "name", "invalid type"),
        (json!({"name": "n"}), "role", "is required"),
        (json!({"name": "n", "role": "root"}), "role", "not a role"),
        (json!({"name": "n", "role": "Admin"}), "role", "not a role"),
        (
            json!({"name": "n", "role": "viewer", "expires_at": "tomorrow"}),
            "expires_at",
            "not an RFC 3339",
        ),
        (
            json!({"name": "n", "role": "viewer", "expires_at": rfc3339_ago(60)}),
            "expires_at",
            "in the future",
        ),
        // Past year 9999 (RFC 3339's last): it was stored, shown as 1970, and worked.
        (
            json!({"name": "n", "role": "admin", "expires_at": "100000000000000"}),
            "expires_at",
            "up to year 9999",
        ),
        (
            json!({"name": "n", "role": "admin", "expires_at": "253402300800"}),
            "expires_at",
            "up to year 9999",
        ),
        (json!({"name": "n", "role": "viewer", "scopes": ["all"]}), "scopes", "unknown field"),
    ];
    for (body, field, why) in cases {
        let r = send(&relay, Method::POST, "/v1/keys", &admin(), Some(body.to_string())).await;
        let ctx = format!("{body}");
        assert_error(&r, 400, field, &ctx);
        assert_eq!(r.body["field"], field, "{ctx}: {}", r.text);
        let message = r.body["message"].as_str().unwrap_or("");
        assert!(message.contains(why), "{ctx}: message does not say {why:?}: {message}");
    }
    let list = relay.get_json("/v1/keys").await;
    assert_eq!(list["data"], json!([]), "a refused key was stored: {list}");
    let not_an_id = send(&relay, Method::DELETE, "/v1/keys/endp_1", &admin(), None).await;
    assert_error(&not_an_id, 404, "", "a key id of another kind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_but_no_secret_and_an_operator_reruns_and_recovers_but_configures_nothing() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(&format!(
        "{}\n[metrics]\nautomation_labels = 2\n",
        crate::common::FAST_RETRIES
    ));
    let a = relay.create_automation("p", &receiver.url("/hook")).await;
    let automation = a["id"].as_str().expect("id").to_string();
    relay.send_message("p", json!({"n": 1})).await;
    let log = relay.wait_logs_exactly("", 1).await[0]["id"].as_str().expect("log").to_string();
    let viewer = create_key(&relay, json!({"name": "v", "role": "viewer"})).await["key"].clone();
    let operator =
        create_key(&relay, json!({"name": "o", "role": "operator"})).await["key"].clone();
    let (viewer, operator) = (viewer.as_str().expect("key"), operator.as_str().expect("key"));
    let one = format!("{ENDPOINTS}/{automation}");

    let shown = as_key(&relay, viewer, Method::GET, &one, None).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert!(!shown.text.contains(a["secret"].as_str().expect("secret")), "{}", shown.text);
    for key in [viewer, operator] {
        let secret = as_key(&relay, key, Method::GET, &format!("{one}/secret"), None).await;
        assert_error(&secret, 403, "", "a secret without the admin role");
        assert_eq!(secret.body["code"], "insufficient_role", "{}", secret.text);
        assert!(secret.body["message"].as_str().unwrap_or("").contains("the admin role"));
        assert!(!secret.text.contains(a["secret"].as_str().expect("secret")), "{}", secret.text);
    }
    // The per-automation metrics name automations, which a viewer reads; no key, no series.
    let series = "hookrelay_automation_attempts_total{";
    let scrape = as_key(&relay, viewer, Method::GET, "/metrics", None).await;
    assert!(scrape.text.contains(series), "{}", scrape.text);
    let open = send(&relay, Method::GET, "/metrics", &[], None).await;
    assert!(open.status == 200 && !open.text.contains(series), "{}", open.text);
    let rerun = format!("{LOGS}/{log}/rerun");
    let denied = as_key(&relay, viewer, Method::POST, &rerun, None).await;
    assert_eq!((denied.status, &denied.body["code"]), (403, &json!("insufficient_role")));
    assert!(denied.body["message"].as_str().unwrap_or("").contains("the operator role"));

    // The operator acts on deliveries.
    let r = as_key(&relay, operator, Method::POST, &rerun, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["rerun_of"], log.as_str(), "{}", r.text);
    let recover = json!({"since": rfc3339_ago(60)});
    let r = as_key(&relay, operator, Method::POST, &format!("{LOGS}/recover"), Some(recover)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let test = format!("/v1/processors/automations/tests/webhook/{automation}");
    assert_eq!(as_key(&relay, operator, Method::POST, &test, None).await.status, 200);
    for (action, enabled) in [("disable", false), ("enable", true), ("disable", false)] {
        let r = as_key(&relay, operator, Method::POST, &format!("{one}/{action}"), None).await;
        assert_eq!(r.status, 200, "{action}: {}", r.text);
        assert_eq!(r.body["enabled"], enabled, "{action}: {}", r.text);
        assert_eq!(relay.get_json(&one).await["enabled"], enabled, "{action} not stored");
    }
    // Disabled means disabled: a message addressed to it is refused, as after a PUT.
    let (status, body) =
        relay.post_json("/v1/messages", &json!({"automation_id": automation, "payload": {}})).await;
    assert_eq!((status, &body["code"]), (409, &json!("automation_disabled")), "{body}");

    // But configures nothing.
    let create = json!({"name": "x", "processor_id": "p", "webhook_url": receiver.url("/x")});
    let writes = [
        (Method::POST, ENDPOINTS.to_string(), Some(create)),
        (Method::PUT, one.clone(), Some(json!({"name": "renamed"}))),
        (Method::DELETE, one.clone(), None),
        (Method::POST, format!("{one}/secret/rotate"), None),
        (Method::POST, "/v1/keys".to_string(), Some(json!({"name": "k", "role": "admin"}))),
        (
            Method::POST,
            "/v1/messages".to_string(),
            Some(json!({"processor_id": "p", "payload": {}})),
        ),
    ];
    for (method, path, body) in writes {
        let r = as_key(&relay, operator, method.clone(), &path, body).await;
        assert_eq!(
            (r.status, &r.body["code"]),
            (403, &json!("insufficient_role")),
            "{method} {path}: {}",
            r.text
        );
        assert!(r.body["message"].as_str().unwrap_or("").contains("the admin role"), "{}", r.text);
    }
    let list = relay.get_json(&format!("{ENDPOINTS}?limit=10")).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["data"][0]["name"], a["name"], "{list}");
    let secret = relay.get_json(&format!("{one}/secret")).await;
    assert_eq!(secret["secret"], a["secret"], "the secret was rotated");
    assert_eq!(relay.get_json("/v1/keys").await["data"].as_array().map(Vec::len), Some(2));
}

/// Keys are never deleted (a revoked one stays listed), so the list is paged like every
/// other: newest first, 10 by default, cursors both ways, and bad page parameters named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_list_is_paged_newest_first() {
    let relay = Relay::start("");
    let mut made = Vec::new();
    for n in 0..13 {
        let created = create_key(&relay, json!({"name": format!("k{n}"), "role": "viewer"})).await;
        made.push(created["id"].as_str().expect("id").to_string());
    }
    made.reverse();
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|k| k["id"].as_str().expect("id").into())
            .collect()
    };
    let first = relay.get_json("/v1/keys").await;
    assert_eq!(ids(&first), made[..10], "{first}");
    let after = first["list_metadata"]["after"].as_str().expect("a next page");
    let rest = relay.get_json(&format!("/v1/keys?after={after}")).await;
    assert_eq!(ids(&rest), made[10..], "{rest}");
    assert!(rest["list_metadata"]["after"].is_null(), "{rest}");
    let before = rest["list_metadata"]["before"].as_str().expect("a previous page");
    let back = relay.get_json(&format!("/v1/keys?before={before}&limit=3")).await;
    assert_eq!(ids(&back), made[7..10], "{back}");
    let oldest = relay.get_json("/v1/keys?order=asc&limit=2").await;
    assert_eq!(ids(&oldest), [made[12].clone(), made[11].clone()], "{oldest}");
    for (query, field) in [("limit=0", "limit"), ("after=nope", "after"), ("sort=name", "sort")] {
        let path = format!("/v1/keys?{query}");
        let r = send(&relay, Method::GET, &path, &admin(), None).await;
        assert_error(&r, 400, field, &path);
    }
}
