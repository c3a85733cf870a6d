//! A signer automation must send to this spreadsheet's sink on this relay, exactly: anywhere
//! else its receiver gets calls signed with the secrets the sink accepts, and can replay
//! them here to append rows. Checked when linking, and at every sink call (an automation
//! moved after it was linked is no longer trusted). `DELETE …/signer` unlinks.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{
    assert_error, create_automation, msg_id, new_sheet, post_keyed, post_raw, post_signed, send,
    sheet_meta, sink_path, sink_secret, SHEETS, SINK,
};

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

async fn set_signer(relay: &Relay, sheet: &str, automation_id: &Value) -> crate::helpers::Resp {
    let path = format!("{SHEETS}/{sheet}/signer");
    send(relay.req(Method::PUT, &path).json(&json!({"automation_id": automation_id}))).await
}

async fn move_automation(relay: &Relay, automation_id: &str, url: &str) {
    let path = format!("{ENDPOINTS}/{automation_id}");
    let r = send(relay.req(Method::PUT, &path).json(&json!({"webhook_url": url}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_must_send_to_this_relays_own_sink_exactly() {
    let relay = Relay::start("");
    let other_service = Receiver::ok().await;
    let sheet = new_sheet(&relay, "Exact", None).await;
    let own = relay.url("");
    let port = own.rsplit(':').next().expect("port").trim_end_matches('/');
    let query = format!("spreadsheet_id={sheet}&worksheet_id=0");
    let refused = [
        other_service.url(&format!("{SINK}?{query}")),
        format!("http://evil.example.com{SINK}?{query}"),
        format!("http://localhost:{port}{SINK}?{query}"),
        format!("https://127.0.0.1:{port}{SINK}?{query}"),
        relay.url(&format!("/x{SINK}?{query}")),
        relay.url(&format!("{SINK}/../webhook?{query}")),
        relay.url(&format!("{SINK}/?{query}")),
        relay.url(&format!("{SINK}?{query}#frag")),
        relay.url(&format!("{SINK}?{query}&spreadsheet_id=ss_{}", "0".repeat(32))),
        relay.url(&format!("{SINK}?spreadsheet_id={sheet}&spreadsheet_id={sheet}")),
        relay.url(&format!("{SINK}?{query}&extra=1")),
        relay.url(&format!("{SINK}?worksheet_id=0")),
    ];
    for url in refused {
        let automation = create_automation(
            &relay,
            json!({"name": "a", "processor_id": "p", "webhook_url": url}),
        )
        .await;
        let r = set_signer(&relay, &sheet, &automation["id"]).await;
        assert_error(&r, 400, "invalid_param", Some("not to this spreadsheet's sink"));
        assert_eq!(r.body["field"], "automation_id", "{url}: {}", r.body);
        let expected = relay.url(&sink_path(&sheet, 0, None));
        assert!(r.body["message"].as_str().expect("message").contains(&expected), "{}", r.body);
    }
    assert_eq!(sheet_meta(&relay, &sheet).await["signer_automation_id"], Value::Null);
    let exact = create_automation(
        &relay,
        json!({"name": "ok", "processor_id": "p", "webhook_url": relay.url(&sink_path(&sheet, 0, Some(true)))}),
    )
    .await;
    let r = set_signer(&relay, &sheet, &exact["id"]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_moved_elsewhere_is_not_trusted_and_can_be_unlinked() {
    let relay = Relay::start("");
    let attacker = Receiver::ok().await;
    let sheet = new_sheet(&relay, "Moved", None).await;
    let path = sink_path(&sheet, 0, None);
    let automation = create_automation(
        &relay,
        json!({"name": "to sheet", "processor_id": "moved", "webhook_url": relay.url(&path)}),
    )
    .await;
    let aid = automation["id"].as_str().expect("id").to_string();
    let secret = sink_secret(automation["secret"].as_str().expect("secret"), &sheet);
    assert_eq!(set_signer(&relay, &sheet, &automation["id"]).await.status, 200);
    let r = post_signed(&relay, &path, &secret, &msg_id(), &json!({"a": "linked"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Moved to another receiver: it gets a signed call, and replaying it to the sink fails,
    // as does any call signed with the key for this sink.
    move_automation(&relay, &aid, &attacker.url("/hook")).await;
    relay.send_message("moved", json!({"a": "stolen"})).await;
    let call = relay
        .wait_for(std::time::Duration::from_secs(10), "the call at the receiver", || async {
            attacker.calls().into_iter().next()
        })
        .await;
    let replayed: Vec<(&str, String)> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .map(|h| (*h, call.headers[*h].to_str().expect("header").to_string()))
        .collect();
    let client = crate::common::client();
    let r = post_raw(&client, &relay, &path, &replayed, call.body.to_vec()).await;
    assert_error(&r, 401, "unauthorized", None);
    let r = post_signed(&relay, &path, &secret, &msg_id(), &json!({"a": "fresh"})).await;
    assert_error(&r, 401, "unauthorized", None);
    // Pointed back at the sink, it is trusted again.
    move_automation(&relay, &aid, &relay.url(&path)).await;
    let r = post_signed(&relay, &path, &secret, &msg_id(), &json!({"a": "back"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Unlinked: the sheet is keyed, the automation's signature no longer opens it.
    let signer = format!("{SHEETS}/{sheet}/signer");
    let r = send(relay.req(Method::DELETE, &signer)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["signed"].clone(), r.body["signer_automation_id"].clone()),
        (json!(false), Value::Null)
    );
    let r = post_signed(&relay, &path, &secret, &msg_id(), &json!({"a": "unlinked"})).await;
    assert_error(&r, 401, "unauthorized", None);
    let r = post_keyed(&relay, &path, None, &json!({"a": "keyed"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(relay.req(Method::DELETE, &signer)).await;
    assert_error(&r, 404, "not_found", Some("signer"));
    let unknown = format!("{SHEETS}/ss_{}/signer", "0".repeat(32));
    let r = send(relay.req(Method::DELETE, &unknown)).await;
    assert_error(&r, 404, "not_found", Some("spreadsheet"));
    let rows = crate::helpers::rows(&relay, &sheet, "Sheet1").await;
    assert_eq!(rows.len(), 4, "header, linked, back, keyed: {rows:?}");
}
