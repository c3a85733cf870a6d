//! With the SSRF guard on, an automation may still feed the relay's own sheets sink (at the
//! address it listens on), and nothing else on that address.

use hookrelay_testkit as common;

use std::time::Duration;

use common::{Relay, KEY};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_sink_is_reachable_with_the_guard_on_and_nothing_else_is() {
    let relay = Relay::start_with_env(
        "[delivery]\nmax_attempts = 1\n",
        &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "false")],
    );
    let (status, sheet) = relay.post_json("/v1/spreadsheets", &json!({"title": "own"})).await;
    assert_eq!(status, 201, "{sheet}");
    let id = sheet["spreadsheetId"].as_str().expect("id");
    let sink = relay
        .url(&format!("/v1/integrations/google_sheets/webhook?spreadsheet_id={id}&worksheet_id=0"));
    for (processor, url) in
        [("to_sink", sink), ("to_admin", relay.url("/v1/processors/automations/endpoints"))]
    {
        let body = json!({"name": processor, "processor_id": processor, "webhook_url": url, "webhook_headers": {"Api-Key": KEY}});
        let (status, created) =
            relay.post_json("/v1/processors/automations/endpoints", &body).await;
        assert_eq!(status, 201, "{created}");
        relay.send_message(processor, json!({"invoice": 7})).await;
    }
    let logs = relay
        .wait_for(Duration::from_secs(5), "both attempts", || async {
            let logs = relay.all_logs("").await;
            (logs.len() == 2).then_some(logs)
        })
        .await;
    let by_processor = |p: &str| -> Value {
        logs.iter().find(|l| l["processor_id"] == p).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(
        by_processor("to_sink")["external_request_log"]["status_code"],
        200,
        "{}",
        by_processor("to_sink")
    );
    assert_eq!(
        by_processor("to_admin")["error_code"],
        "E_BLOCKED_TARGET",
        "{}",
        by_processor("to_admin")
    );
    let values = relay.get_json(&format!("/v1/spreadsheets/{id}/values/Sheet1")).await;
    assert_eq!(values["values"], json!([["invoice"], ["7"]]));
}
