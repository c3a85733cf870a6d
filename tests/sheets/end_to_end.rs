//! The sink end to end: a workflow run of the demo app becomes a message, an
//! automation delivers it to the relay's own sink, and the row is read back. Once signed
//! with the automation's secret, once keyed with `webhook_headers`. Rerunning a delivery's
//! log appends nothing and answers the original append result.
//!
//! (Items 2 and 4 of the test plan.)

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Relay, KEY};
use crate::helpers::{
    create_automation, grid, new_sheet, run_demo, send, sink_path, wait_rows, ENDPOINTS, LOGS, SINK,
};
use crate::helpers::{demo_app, rows, values};

/// The sink's answer as the log recorded it, after checking the call succeeded.
fn logged_answer(log: &Value) -> Value {
    let ext = &log["external_request_log"];
    assert_eq!(ext["status_code"], 200, "{log}");
    assert!(ext["error"].is_null(), "{log}");
    ext["response_body"].clone()
}

/// Reruns `log` and asserts the sink answered 200 with `expected` (the original result).
async fn rerun_appends_nothing(relay: &Relay, log: &Value, expected: &Value) {
    let id = log["id"].as_str().expect("log id");
    let r = send(relay.req(Method::POST, &format!("{LOGS}/{id}/rerun"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status_code"], 200, "{}", r.body);
    assert_eq!(r.body["rerun_of"], id, "{}", r.body);
    assert_eq!(&r.body["response_body"], expected, "a rerun answers the original append");
}

fn check_answer(answer: &Value, sheet: &str, range: &str, rows: u64) {
    assert_eq!(answer["spreadsheetId"], sheet, "{answer}");
    assert_eq!(answer["updates"]["spreadsheetId"], sheet, "{answer}");
    assert_eq!(answer["updates"]["updatedRange"], range, "{answer}");
    assert_eq!(answer["updates"]["updatedRows"], rows, "{answer}");
    assert_eq!(answer["updates"]["updatedColumns"], 1, "{answer}");
    assert_eq!(answer["updates"]["updatedCells"], rows, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_workflow_completion_becomes_a_row_exactly_once() {
    let relay = Relay::start(&demo_app());
    // The automation first (for its secret), then the spreadsheet with that secret, then
    // point the automation at the spreadsheet.
    let automation = create_automation(
        &relay,
        json!({"name": "to sheets", "processor_id": "demo", "webhook_url": relay.url(SINK)}),
    )
    .await;
    let automation_id = automation["id"].as_str().expect("id").to_string();
    let secret = automation["secret"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = new_sheet(&relay, "Greetings", Some(&secret)).await;
    let url = relay.url(&sink_path(&id, 0, None));
    let (status, updated) = {
        let r = send(
            relay
                .req(Method::PUT, &format!("{ENDPOINTS}/{automation_id}"))
                .json(&json!({ "webhook_url": url })),
        )
        .await;
        (r.status, r.body)
    };
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["webhook_url"], url.as_str());

    run_demo(&relay, "Ada", "formal", "Good day, Ada.").await;
    let got = wait_rows(&relay, &id, 2).await;
    assert_eq!(got, grid(&[&["greeting"], &["Good day, Ada."]]));
    let full = values(&relay, &id, "Sheet1").await;
    assert_eq!(
        full.body,
        json!({"range": "Sheet1!A1:A2", "majorDimension": "ROWS", "values": [["greeting"], ["Good day, Ada."]]})
    );
    let logs = relay.wait_logs_exactly(&format!("&automation_id={automation_id}"), 1).await;
    let first = logged_answer(&logs[0]);
    check_answer(&first, &id, "Sheet1!A1:A2", 2);
    let sent = &logs[0]["external_request_log"]["request_headers"];
    assert!(sent.get("webhook-signature").is_some(), "the delivery was signed: {sent}");

    run_demo(&relay, "Bob", "friendly", "Hi Bob! 👋").await;
    let got = wait_rows(&relay, &id, 3).await;
    assert_eq!(got, grid(&[&["greeting"], &["Good day, Ada."], &["Hi Bob! 👋"]]));
    let logs = relay.wait_logs_exactly(&format!("&automation_id={automation_id}"), 2).await;
    let second = logged_answer(&logs[1]);
    check_answer(&second, &id, "Sheet1!A3", 1);

    // Reruns: fresh timestamp and signature, same webhook-id: nothing new.
    rerun_appends_nothing(&relay, &logs[0], &first).await;
    rerun_appends_nothing(&relay, &logs[1], &second).await;
    rerun_appends_nothing(&relay, &logs[0], &first).await;
    assert_eq!(rows(&relay, &id, "Sheet1").await.len(), 3, "reruns appended rows");
    assert_eq!(crate::helpers::row_count(&relay, &id, 0).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_workflow_completion_becomes_a_row_exactly_once() {
    let relay = Relay::start(&demo_app());
    let id = new_sheet(&relay, "Keyed", None).await;
    let automation = create_automation(
        &relay,
        json!({"name": "keyed", "processor_id": "demo",
            "webhook_url": relay.url(&sink_path(&id, 0, Some(false))),
            "webhook_headers": {"Api-Key": KEY}}),
    )
    .await;
    let automation_id = automation["id"].as_str().expect("id").to_string();

    run_demo(&relay, "Cleo", "friendly", "Hi Cleo! 👋").await;
    run_demo(&relay, "Dan", "formal", "Good day, Dan.").await;
    let got = wait_rows(&relay, &id, 3).await;
    let mut data = got[1..].to_vec();
    data.sort();
    assert_eq!(got[0], vec!["greeting"]);
    assert_eq!(data, grid(&[&["Good day, Dan."], &["Hi Cleo! 👋"]]));

    let logs = relay.wait_logs_exactly(&format!("&automation_id={automation_id}"), 2).await;
    let answers: Vec<Value> = logs.iter().map(logged_answer).collect();
    let mut ranges: Vec<&str> =
        answers.iter().map(|a| a["updates"]["updatedRange"].as_str().unwrap()).collect();
    ranges.sort();
    assert_eq!(ranges, vec!["Sheet1!A1:A2", "Sheet1!A3"]);
    for (log, answer) in logs.iter().zip(&answers) {
        rerun_appends_nothing(&relay, log, answer).await;
    }
    assert_eq!(rows(&relay, &id, "Sheet1").await.len(), 3, "reruns appended rows");
}
