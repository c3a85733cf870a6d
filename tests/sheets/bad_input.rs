//! Bad input: each a clear JSON error, and nothing appended. Unknown spreadsheet (also
//! through a delivery, whose log shows the 404), unknown worksheet, bodies that are not
//! objects, `parsed` that is not an object, the column and cell limits (422), bad query
//! parameters, an unknown export format.
//!
//! (Item 10 of the test plan.)

use serde_json::{json, Value};

use crate::common::{self, Relay, KEY};
use crate::helpers::{
    append, assert_error, completion, create_automation, export, grid, msg_id, new_sheet,
    post_keyed, post_raw, row_count, rows, sheet_meta, sink_path, SINK,
};

/// A keyed sink call with a raw body.
async fn post_bytes(relay: &Relay, path: &str, body: &[u8]) -> crate::helpers::Resp {
    let headers = [("Api-Key", KEY.to_string()), ("webhook-id", msg_id())];
    post_raw(&common::client(), relay, path, &headers, body.to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_spreadsheets_and_worksheets_are_404() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Real", None).await;
    append(&relay, &id, 0, json!({"a": 1})).await;
    let body = json!({"a": 2});
    let unknown = format!("ss_{}", "0".repeat(32));
    for bad in [unknown.as_str(), "ss_bogus", "nope"] {
        let r = post_keyed(&relay, &sink_path(bad, 0, None), None, &body).await;
        assert_error(&r, 404, "not_found", Some("spreadsheet"));
    }
    for sheet_id in [1, 7] {
        let r = post_keyed(&relay, &sink_path(&id, sheet_id, None), None, &body).await;
        assert_error(&r, 404, "not_found", Some("worksheet"));
    }
    assert_eq!(rows(&relay, &id, "Sheet1").await, grid(&[&["a"], &["1"]]), "nothing appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_to_an_unknown_spreadsheet_logs_the_404() {
    let relay = Relay::start("");
    let unknown = format!("ss_{}", "0".repeat(32));
    let automation = create_automation(
        &relay,
        json!({"name": "lost", "processor_id": "proc_lost",
            "webhook_url": relay.url(&sink_path(&unknown, 0, None)),
            "webhook_headers": {"Api-Key": KEY}}),
    )
    .await;
    let automation_id = automation["id"].as_str().unwrap();
    relay.send_message("proc_lost", json!({"order": 1})).await;
    let logs = relay.wait_logs_at_least(&format!("&automation_id={automation_id}"), 1).await;
    let ext = &logs[0]["external_request_log"];
    assert_eq!(ext["status_code"], 404, "{}", logs[0]);
    assert_eq!(ext["response_body"]["code"], "not_found", "{}", logs[0]);
    assert!(
        ext["response_body"]["message"].as_str().unwrap_or("").contains("spreadsheet"),
        "{}",
        logs[0]
    );
    // Filtering logs by status finds it.
    let failed = relay.all_logs(&format!("&status_code=404&automation_id={automation_id}")).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_objects_are_400() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Shapes", None).await;
    let path = sink_path(&id, 0, None);
    for raw in [&b"[1, 2]"[..], b"\"text\"", b"42", b"null", b"true"] {
        let r = post_bytes(&relay, &path, raw).await;
        assert_error(&r, 400, "invalid_param", Some("object"));
        assert_eq!(r.body["field"], "body", "{}", r.body);
    }
    for raw in [&b"{"[..], b"", b"{\"a\": }", b"\xff\xfe"] {
        let r = post_bytes(&relay, &path, raw).await;
        assert_eq!(r.status, 400, "{:?}: {}", String::from_utf8_lossy(raw), r.body);
        assert!(r.body["code"].is_string() && r.body["message"].is_string(), "{}", r.body);
    }
    let parsed_not_object: [Value; 3] = [json!("text"), json!([1, 2]), json!(3)];
    for parsed in parsed_not_object {
        let r = post_keyed(&relay, &path, None, &completion(parsed.clone(), json!({}))).await;
        assert_error(&r, 400, "invalid_param", Some("parsed"));
    }
    assert_eq!(row_count(&relay, &id, 0).await, 0, "nothing appended");
    assert_eq!(sheet_meta(&relay, &id).await["sheets"][0]["header"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_columns_or_a_long_cell_is_422() {
    let relay = Relay::start("[limits]\nsheet_max_columns = 5\nsheet_max_cell_chars = 10\n");
    let id = new_sheet(&relay, "Limits", None).await;
    let path = sink_path(&id, 0, None);
    let six = json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6});
    let r = post_keyed(&relay, &path, None, &six).await;
    assert_error(&r, 422, "limit_exceeded", Some("5"));
    assert_eq!(row_count(&relay, &id, 0).await, 0, "nothing appended");

    append(&relay, &id, 0, json!({"a": 1, "b": 2, "c": 3})).await;
    // Growing past the limit is refused, and the header stays as it was.
    let grow = post_keyed(&relay, &path, None, &json!({"d": 4, "e": 5, "f": 6})).await;
    assert_error(&grow, 422, "limit_exceeded", None);
    // A long cell (11 characters) is refused; 10 characters, even multibyte, are fine.
    let long = post_keyed(&relay, &path, None, &json!({"a": "x".repeat(11)})).await;
    assert_error(&long, 422, "limit_exceeded", Some("a"));
    let nested = post_keyed(&relay, &path, None, &json!({"b": {"deep": "éééééééééé!"}})).await;
    assert_error(&nested, 422, "limit_exceeded", Some("b.deep"));
    let meta = sheet_meta(&relay, &id).await;
    assert_eq!(meta["sheets"][0]["header"], json!(["a", "b", "c"]));
    assert_eq!(row_count(&relay, &id, 0).await, 2);

    append(&relay, &id, 0, json!({"a": "éééééééééé", "d": 4, "e": 5})).await;
    assert_eq!(
        rows(&relay, &id, "Sheet1").await,
        grid(&[&["a", "b", "c", "d", "e"], &["1", "2", "3"], &["éééééééééé", "", "", "4", "5"]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_and_export_formats_are_400() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Params", None).await;
    let body = json!({"a": 1});
    let cases = [
        (format!("{SINK}?worksheet_id=0"), "spreadsheet_id"),
        (format!("{SINK}?spreadsheet_id={id}&worksheet_id=first"), "worksheet_id"),
        (format!("{SINK}?spreadsheet_id={id}&worksheet_id=-1"), "worksheet_id"),
        (format!("{SINK}?spreadsheet_id={id}&color_by_likelihood=maybe"), "color_by_likelihood"),
    ];
    for (path, field) in cases {
        let r = post_keyed(&relay, &path, None, &body).await;
        assert_error(&r, 400, "invalid_param", Some(field));
    }
    assert_eq!(row_count(&relay, &id, 0).await, 0, "nothing appended");
    append(&relay, &id, 0, body).await;

    for format in ["pdf", "XLSX2", "json"] {
        let r = export(&relay, &id, &format!("format={format}")).await;
        assert_error(&r, 400, "invalid_param", Some(format));
        assert_eq!(r.body["field"], "format");
    }
    let r = export(&relay, &id, "format=csv&worksheet_id=x").await;
    assert_error(&r, 400, "invalid_param", Some("worksheet_id"));
    let unknown = format!("ss_{}", "0".repeat(32));
    assert_error(&export(&relay, &unknown, "format=csv").await, 404, "not_found", None);
}
