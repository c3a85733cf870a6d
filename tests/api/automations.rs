use std::time::Duration;

use chrono::DateTime;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, verify_signature, Receiver, Relay};
use crate::helpers::{assert_error, assert_time, header, ids_of, send_ok, ENDPOINTS, WAIT};

// ---------------------------------------------------------------------------------------
// 3. Automations
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_create_get_list_update_redact_rotate_delete() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);

    let (status, created) = relay
        .post_json(
            ENDPOINTS,
            &json!({
                "name": "alpha",
                "processor_id": "proc_crud",
                "webhook_url": receiver.url("/a"),
                "webhook_headers": {"X-Api-Key": "s3cret-value", "X-Plain": "visible"},
                "need_validation": true,
                "default_language": "fr",
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let aid = created["id"].as_str().unwrap().to_string();
    assert!(aid.starts_with("endp_"), "{aid}");
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{created}");
    assert_eq!(created["object"], "automation.endpoint");
    assert_eq!(created["name"], "alpha");
    assert_eq!(created["processor_id"], "proc_crud");
    assert_eq!(created["webhook_url"], receiver.url("/a"));
    assert_eq!(created["need_validation"], true);
    assert_eq!(created["default_language"], "fr");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["webhook_headers"]["X-Api-Key"], "[REDACTED]");
    assert_eq!(created["webhook_headers"]["X-Plain"], "visible");
    assert!(!created.to_string().contains("s3cret-value"), "{created}");
    assert_time(&created["created_at"], "created_at");
    assert_time(&created["updated_at"], "updated_at");
    let secret = created["secret"].as_str().unwrap().to_string();

    let got = relay.get_json(&format!("{ENDPOINTS}/{aid}")).await;
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(got, expected, "GET differs from the create answer");
    assert!(got.get("secret").is_none(), "GET shows the secret: {got}");
    let shown = relay.get_json(&format!("{ENDPOINTS}/{aid}/secret")).await;
    assert_eq!(shown["secret"], secret.as_str());

    // More automations for the filters and pagination.
    let b1 = relay.create_automation("proc_crud", &receiver.url("/b")).await;
    let b2 = relay.create_automation("proc_other", &receiver.url("/b")).await;
    let (_, a2) = relay
        .post_json(
            ENDPOINTS,
            &json!({"name": "alpha", "processor_id": "proc_x", "webhook_url": receiver.url("/c")}),
        )
        .await;
    let c = relay.create_automation("proc_crud", &receiver.url("/d")).await;
    let all_ids: Vec<String> = [&created, &b1, &b2, &a2, &c]
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();

    let by_name = relay.get_json(&format!("{ENDPOINTS}?name=alpha&limit=100")).await;
    let mut names = ids_of(by_name["data"].as_array().unwrap());
    names.sort();
    let mut want = vec![aid.clone(), a2["id"].as_str().unwrap().to_string()];
    want.sort();
    assert_eq!(names, want, "name filter");
    let url_b =
        url::form_urlencoded::byte_serialize(receiver.url("/b").as_bytes()).collect::<String>();
    let by_url = relay.get_json(&format!("{ENDPOINTS}?webhook_url={url_b}&limit=100")).await;
    let mut urls = ids_of(by_url["data"].as_array().unwrap());
    urls.sort();
    let mut want =
        vec![b1["id"].as_str().unwrap().to_string(), b2["id"].as_str().unwrap().to_string()];
    want.sort();
    assert_eq!(urls, want, "webhook_url filter");
    let by_proc = relay.get_json(&format!("{ENDPOINTS}?processor_id=proc_other&limit=100")).await;
    assert_eq!(
        ids_of(by_proc["data"].as_array().unwrap()),
        vec![b2["id"].as_str().unwrap().to_string()]
    );
    let none = relay.get_json(&format!("{ENDPOINTS}?name=nobody")).await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);

    // Cursor pagination, both orders.
    for order in ["asc", "desc"] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        let mut pages = 0;
        loop {
            let page = relay.get_json(&format!("{ENDPOINTS}?limit=2&order={order}{cursor}")).await;
            if pages == 0 {
                assert!(page["list_metadata"]["before"].is_null(), "{page}");
            }
            pages += 1;
            seen.extend(ids_of(page["data"].as_array().unwrap()));
            match page["list_metadata"]["after"].as_str() {
                Some(a) => cursor = format!("&after={a}"),
                None => break,
            }
        }
        assert_eq!(pages, 3, "{order}");
        let mut want = all_ids.clone();
        if order == "desc" {
            want.reverse();
        }
        assert_eq!(seen, want, "automations walk {order}");
    }

    // Partial update keeps every other field and bumps updated_at.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = send_ok(
        &relay,
        Method::PUT,
        &format!("{ENDPOINTS}/{aid}"),
        Some(json!({"name": "renamed"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let updated = r.body;
    assert_eq!(updated["name"], "renamed");
    for k in [
        "id",
        "processor_id",
        "webhook_url",
        "webhook_headers",
        "need_validation",
        "default_language",
        "enabled",
        "created_at",
        "object",
    ] {
        assert_eq!(updated[k], created[k], "PUT changed {k}");
    }
    let t = |v: &Value| DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(t(&updated["updated_at"]) > t(&created["updated_at"]), "updated_at not bumped");
    assert_eq!(relay.get_json(&format!("{ENDPOINTS}/{aid}")).await, updated);

    // Sending "[REDACTED]" back keeps the stored value; the receiver gets the real one.
    let r = send_ok(
        &relay,
        Method::PUT,
        &format!("{ENDPOINTS}/{aid}"),
        Some(
            json!({"webhook_headers": {"X-Api-Key": "[REDACTED]", "X-Plain": "changed"}})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["webhook_headers"]["X-Api-Key"], "[REDACTED]");
    assert_eq!(r.body["webhook_headers"]["X-Plain"], "changed");
    relay.send_message("proc_crud", json!({"hello": "headers"})).await;
    let call = relay
        .wait_for(WAIT, "delivery to /a", || async {
            receiver.calls().into_iter().find(|c| header(&c.headers, "x-plain") == "changed")
        })
        .await;
    assert_eq!(header(&call.headers, "x-api-key"), "s3cret-value");
    assert!(verify_signature(&secret, &call.headers, &call.body));
    // The log shows the secret header redacted.
    let logs = relay
        .wait_for(WAIT, "log of /a", || async {
            let logs = relay.all_logs(&format!("&automation_id={aid}")).await;
            (logs.len() == 1).then_some(logs)
        })
        .await;
    let req_headers = logs[0]["external_request_log"]["request_headers"].as_object().unwrap();
    let api_key = req_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-api-key"));
    assert_eq!(api_key.map(|(_, v)| v.clone()), Some(json!("[REDACTED]")), "{req_headers:?}");
    assert!(!logs[0].to_string().contains("s3cret-value"), "log leaks the header secret");

    // Rotation: a new secret, the old one keeps signing for a while.
    let r = send_ok(&relay, Method::POST, &format!("{ENDPOINTS}/{aid}/secret/rotate"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new_secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret, "{}", r.text);
    assert_time(&r.body["previous_secret_expires_at"], "previous_secret_expires_at");
    relay.send_message("proc_crud", json!({"after": "rotation"})).await;
    let call = relay
        .wait_for(WAIT, "delivery after rotation", || async {
            receiver.calls().into_iter().find(|c| {
                c.body.as_ref() == br#"{"after":"rotation"}"#
                    && header(&c.headers, "x-plain") == "changed"
            })
        })
        .await;
    assert!(verify_signature(&new_secret, &call.headers, &call.body), "new secret");
    assert!(verify_signature(&secret, &call.headers, &call.body), "old secret during overlap");

    // Delete.
    let r = send_ok(&relay, Method::DELETE, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send_ok(&relay, Method::GET, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_error(&r, 404, "", "GET after DELETE");
    let r = send_ok(&relay, Method::DELETE, &format!("{ENDPOINTS}/{aid}"), None).await;
    assert_error(&r, 404, "", "DELETE twice");
    let list = relay.get_json(&format!("{ENDPOINTS}?limit=100")).await;
    let left = ids_of(list["data"].as_array().unwrap());
    assert_eq!(left.len(), 4);
    assert!(!left.contains(&aid));
}
