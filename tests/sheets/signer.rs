//! Issue 10, item 7: the sheets walkthrough without an admin key stored anywhere. A
//! spreadsheet adopts an automation as its signer (`PUT /v1/spreadsheets/{id}/signer`); the
//! sink then takes calls signed with any secret that automation signs with now, so its
//! deliveries append rows with no key in its headers (signed, for this sink only, with keys
//! derived from the automation's secrets), through secret rotations (the old
//! secret for the 24 h overlap, the new one for good). A copied `webhook_secret`, by
//! contrast, stops matching when the automation's overlap ends.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{
    assert_error, create_automation, demo_app, grid, msg_id, new_secret, new_sheet, post_keyed,
    post_signed, run_demo, send, sheet_meta, sink_path, sink_secret, wait_rows, ENDPOINTS, SHEETS,
    SINK,
};

async fn set_signer(relay: &Relay, sheet: &str, body: Value) -> crate::helpers::Resp {
    send(relay.req(Method::PUT, &format!("{SHEETS}/{sheet}/signer")).json(&body)).await
}

async fn rotate(relay: &Relay, automation_id: &str) -> String {
    let (status, rotated) =
        relay.post_json(&format!("{ENDPOINTS}/{automation_id}/secret/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    rotated["secret"].as_str().expect("secret").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_signed_by_its_automation_takes_demo_runs_with_no_key_stored_through_rotations() {
    let relay = Relay::start(&demo_app());
    // The walkthrough: a spreadsheet, an automation sending to its sink, the link.
    let sheet = new_sheet(&relay, "Greetings", None).await;
    let automation = create_automation(
        &relay,
        json!({"name": "to sheet", "processor_id": "demo",
               "webhook_url": relay.url(&sink_path(&sheet, 0, None))}),
    )
    .await;
    let aid = automation["id"].as_str().expect("id").to_string();
    let first_secret = automation["secret"].as_str().expect("secret").to_string();
    let r = set_signer(&relay, &sheet, json!({"automation_id": aid})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["signed"], true, "{}", r.body);
    assert_eq!(r.body["signer_automation_id"], aid.as_str(), "{}", r.body);
    assert_eq!(sheet_meta(&relay, &sheet).await["signer_automation_id"], aid.as_str());

    run_demo(&relay, "Ada", "formal", "Good day, Ada.").await;
    assert_eq!(wait_rows(&relay, &sheet, 2).await, grid(&[&["greeting"], &["Good day, Ada."]]));
    let logs = relay.wait_logs_exactly(&format!("&automation_id={aid}"), 1).await;
    let sent = &logs[0]["external_request_log"]["request_headers"];
    assert!(sent.get("webhook-signature").is_some(), "{sent}");
    for key_header in ["api-key", "authorization"] {
        assert!(sent.get(key_header).is_none(), "a key went with the call: {sent}");
    }
    let stored = relay.get_json(&format!("{ENDPOINTS}/{aid}")).await;
    assert_eq!(stored["webhook_headers"], json!({}), "{stored}");

    // A signed sheet takes no admin key, nor another secret.
    let path = sink_path(&sheet, 0, None);
    let r = post_keyed(&relay, &path, Some(&msg_id()), &json!({"greeting": "keyed"})).await;
    assert_error(&r, 401, "unauthorized", None);
    let r = post_signed(&relay, &path, &new_secret(), &msg_id(), &json!({"greeting": "x"})).await;
    assert_error(&r, 401, "unauthorized", None);
    // Nor the automation's plain secret, which signs its calls to every other receiver.
    let r = post_signed(&relay, &path, &first_secret, &msg_id(), &json!({"greeting": "x"})).await;
    assert_error(&r, 401, "unauthorized", None);

    // Rotation: the deliveries (signed with both secrets) go on; a call signed with the new
    // secret alone, as every call is once the overlap ends, is taken too.
    let second_secret = rotate(&relay, &aid).await;
    run_demo(&relay, "Bob", "friendly", "Hi Bob! 👋").await;
    wait_rows(&relay, &sheet, 3).await;
    let (first_key, second_key) =
        (sink_secret(&first_secret, &sheet), sink_secret(&second_secret, &sheet));
    let r = post_signed(&relay, &path, &second_key, &msg_id(), &json!({"greeting": "new"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_signed(&relay, &path, &first_key, &msg_id(), &json!({"greeting": "old"})).await;
    assert_eq!(r.status, 200, "the previous secret within the overlap: {}", r.body);

    // Rotated again: the first secret no longer signs for the automation, nor opens the sheet.
    let third_secret = rotate(&relay, &aid).await;
    let r = post_signed(&relay, &path, &first_key, &msg_id(), &json!({"greeting": "gone"})).await;
    assert_error(&r, 401, "unauthorized", None);
    let third_key = sink_secret(&third_secret, &sheet);
    let r = post_signed(&relay, &path, &third_key, &msg_id(), &json!({"greeting": "third"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    run_demo(&relay, "Cleo", "formal", "Good day, Cleo.").await;
    let rows = wait_rows(&relay, &sheet, 7).await;
    assert_eq!(rows.last().expect("row"), &vec!["Good day, Cleo.".to_string()]);
    let logs = relay.wait_logs_exactly(&format!("&automation_id={aid}"), 3).await;
    assert!(logs.iter().all(|l| l["external_request_log"]["status_code"] == 200), "{logs:?}");

    // The link goes with the automation: the sheet is then keyed again.
    let r = send(relay.req(Method::DELETE, &format!("{ENDPOINTS}/{aid}"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let meta = sheet_meta(&relay, &sheet).await;
    assert_eq!(
        (meta["signed"].clone(), meta["signer_automation_id"].clone()),
        (json!(false), Value::Null)
    );
    let r = post_signed(&relay, &path, &third_key, &msg_id(), &json!({"greeting": "x"})).await;
    assert_error(&r, 401, "unauthorized", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_must_exist_and_send_to_the_sheet_and_replaces_its_webhook_secret() {
    let relay = Relay::start("");
    let secret = new_secret();
    let sheet = new_sheet(&relay, "Linked", Some(&secret)).await;
    let elsewhere = create_automation(
        &relay,
        json!({"name": "elsewhere", "processor_id": "p", "webhook_url": "https://example.com/hook"}),
    )
    .await;
    let other_sheet = new_sheet(&relay, "Other", None).await;
    let to_other = create_automation(
        &relay,
        json!({"name": "other", "processor_id": "p", "webhook_url": relay.url(&sink_path(&other_sheet, 0, None))}),
    )
    .await;
    let unknown = format!("endp_{}", "0".repeat(32));
    for (body, mentions) in [
        (json!({}), "automation_id"),
        (json!({"automation_id": 7}), "automation_id"),
        (json!({"automation_id": "nope"}), "nope"),
        (json!({"automation_id": unknown}), "no automation"),
        (json!({"automation_id": elsewhere["id"]}), "not to this spreadsheet"),
        (json!({"automation_id": to_other["id"]}), "not to this spreadsheet"),
    ] {
        let r = set_signer(&relay, &sheet, body.clone()).await;
        assert_error(&r, 400, "invalid_param", Some(mentions));
        assert_eq!(r.body["field"], "automation_id", "{body}: {}", r.body);
    }
    let r = set_signer(
        &relay,
        &format!("ss_{}", "0".repeat(32)),
        json!({"automation_id": to_other["id"]}),
    )
    .await;
    assert_error(&r, 404, "not_found", Some("spreadsheet"));
    assert_eq!(sheet_meta(&relay, &sheet).await["signer_automation_id"], Value::Null);

    // Linked: the automation's secret opens it, its old webhook secret no longer does.
    let linked = create_automation(
        &relay,
        json!({"name": "linked", "processor_id": "p",
               "webhook_url": relay.url(&format!("{SINK}?worksheet_id=0&spreadsheet_id={sheet}"))}),
    )
    .await;
    let r = set_signer(&relay, &sheet, json!({"automation_id": linked["id"]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let path = sink_path(&sheet, 0, None);
    let r = post_signed(&relay, &path, &secret, &msg_id(), &json!({"a": 1})).await;
    assert_error(&r, 401, "unauthorized", None);
    let automation_secret = linked["secret"].as_str().expect("secret");
    let key = sink_secret(automation_secret, &sheet);
    let r = post_signed(&relay, &path, &key, &msg_id(), &json!({"a": 2})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Deleting the spreadsheet forgets the link.
    let r = send(relay.req(Method::DELETE, &format!("{SHEETS}/{sheet}"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("db");
    let left: i64 =
        db.query_row("SELECT count(*) FROM spreadsheet_signers", [], |r| r.get(0)).expect("count");
    assert_eq!(left, 0);
}

/// What happens to a spreadsheet holding a copy of the automation's secret (the signed path
/// before signers): during the 24 h overlap after a rotation the relay signs with both, so
/// deliveries go on; a call signed with the new secret alone (every call once the overlap
/// ends) is refused. Passes before and after this change: it records why signers exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_webhook_secret_stops_matching_once_the_rotation_overlap_ends() {
    let relay = Relay::start(&demo_app());
    let automation = create_automation(
        &relay,
        json!({"name": "copy", "processor_id": "demo", "webhook_url": "https://example.com/placeholder"}),
    )
    .await;
    let aid = automation["id"].as_str().expect("id").to_string();
    let sheet = new_sheet(&relay, "Copied", automation["secret"].as_str()).await;
    let r = send(
        relay
            .req(Method::PUT, &format!("{ENDPOINTS}/{aid}"))
            .json(&json!({"webhook_url": relay.url(&sink_path(&sheet, 0, None))})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_secret = rotate(&relay, &aid).await;
    run_demo(&relay, "Dan", "formal", "Good day, Dan.").await;
    wait_rows(&relay, &sheet, 2).await;
    let path = sink_path(&sheet, 0, None);
    let r = post_signed(&relay, &path, &new_secret, &msg_id(), &json!({"greeting": "later"})).await;
    assert_error(&r, 401, "unauthorized", None);
}
