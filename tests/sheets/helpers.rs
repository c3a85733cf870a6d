//! Shared helpers: spreadsheet calls, the sink call (signed or keyed), A1 reads and exports,
//! error checks, demo runs.

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use crate::common::{self, Relay, KEY};

pub(crate) use crate::common::apps::{demo_app, DEMO_KEY};
pub(crate) use crate::common::signing::{msg_id, new_secret, now_secs, sign};
pub(crate) use crate::common::{ENDPOINTS, LOGS, WAIT};

pub(crate) const SHEETS: &str = "/v1/spreadsheets";
pub(crate) const SINK: &str = "/v1/integrations/google_sheets/webhook";

/// One answer: status, headers, raw bytes, and the body as JSON when it is JSON.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Vec<u8>,
    pub(crate) body: Value,
}

impl Resp {
    async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, bytes, body }
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Sends a prepared request and reads the whole answer.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Resp {
    Resp::from(req.send().await.expect("send")).await
}

/// GET with the admin key.
pub(crate) async fn get(relay: &Relay, path: &str) -> Resp {
    send(relay.req(reqwest::Method::GET, path)).await
}

/// Asserts an error answer: `status`, JSON `{code, message, status}` with `code`, and a
/// message that mentions `mentions` (when given).
pub(crate) fn assert_error(resp: &Resp, status: u16, code: &str, mentions: Option<&str>) {
    assert_eq!(resp.status, status, "{:?}", String::from_utf8_lossy(&resp.bytes));
    assert!(resp.header("content-type").starts_with("application/json"), "{:?}", resp.headers);
    assert_eq!(resp.body["code"], code, "{}", resp.body);
    assert_eq!(resp.body["status"], status, "{}", resp.body);
    let message = resp.body["message"].as_str().expect("message");
    assert!(!message.is_empty());
    if let Some(m) = mentions {
        assert!(message.contains(m), "message {message:?} does not mention {m:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Spreadsheets
// ---------------------------------------------------------------------------------------

/// Creates a spreadsheet from `body`, asserting 201; returns its JSON.
pub(crate) async fn create_sheet(relay: &Relay, body: Value) -> Value {
    let (status, answer) = relay.post_json(SHEETS, &body).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

/// Creates a spreadsheet titled `title` (one worksheet, `Sheet1`), with `secret` when given;
/// returns its id.
pub(crate) async fn new_sheet(relay: &Relay, title: &str, secret: Option<&str>) -> String {
    let mut body = json!({ "title": title });
    if let Some(s) = secret {
        body["webhook_secret"] = s.into();
    }
    id_of(&create_sheet(relay, body).await)
}

pub(crate) fn id_of(sheet: &Value) -> String {
    sheet["spreadsheetId"].as_str().expect("spreadsheetId").to_string()
}

/// The spreadsheet's metadata (asserting 200).
pub(crate) async fn sheet_meta(relay: &Relay, id: &str) -> Value {
    relay.get_json(&format!("{SHEETS}/{id}")).await
}

/// `rowCount` of worksheet `sheet_id`.
pub(crate) async fn row_count(relay: &Relay, id: &str, sheet_id: usize) -> u64 {
    let meta = sheet_meta(relay, id).await;
    meta["sheets"][sheet_id]["properties"]["gridProperties"]["rowCount"]
        .as_u64()
        .unwrap_or_else(|| panic!("no rowCount: {meta}"))
}

/// Percent-encodes everything but unreserved characters (for a path segment).
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET …/values/{range}` (the range URL-encoded).
pub(crate) async fn values(relay: &Relay, id: &str, range: &str) -> Resp {
    get(relay, &format!("{SHEETS}/{id}/values/{}", encode(range))).await
}

/// The `values` of a range, asserting 200 and the Sheets shape.
pub(crate) async fn rows(relay: &Relay, id: &str, range: &str) -> Vec<Vec<String>> {
    let r = values(relay, id, range).await;
    assert_eq!(r.status, 200, "{range}: {}", r.body);
    assert_eq!(r.body["majorDimension"], "ROWS", "{}", r.body);
    assert!(r.body["range"].is_string(), "{}", r.body);
    serde_json::from_value(r.body["values"].clone()).expect("values: rows of strings")
}

/// `GET …/export?{query}`.
pub(crate) async fn export(relay: &Relay, id: &str, query: &str) -> Resp {
    get(relay, &format!("{SHEETS}/{id}/export?{query}")).await
}

/// Turns `&[&[&str]]` into owned rows, for comparisons.
pub(crate) fn grid(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
}

// ---------------------------------------------------------------------------------------
// The sink
// ---------------------------------------------------------------------------------------

/// The sink path for worksheet `sheet_id` of `id`, with `color_by_likelihood` when given.
pub(crate) fn sink_path(id: &str, sheet_id: u32, colour: Option<bool>) -> String {
    let mut path = format!("{SINK}?spreadsheet_id={id}&worksheet_id={sheet_id}");
    if let Some(c) = colour {
        path.push_str(&format!("&color_by_likelihood={c}"));
    }
    path
}

/// A raw POST to `path` with exactly `headers` (no key unless given) and `body`.
pub(crate) async fn post_raw(
    client: &reqwest::Client,
    relay: &Relay,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Resp {
    let mut req = client.post(relay.url(path)).header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    send(req.body(body)).await
}

/// Signed sink call: `webhook-id` = `id`, timestamp now, signed with `secret`.
pub(crate) async fn post_signed(
    relay: &Relay,
    path: &str,
    secret: &str,
    id: &str,
    body: &Value,
) -> Resp {
    post_signed_with(&common::client(), relay, path, secret, id, body).await
}

/// [`post_signed`] on a given client (to share one connection pool).
pub(crate) async fn post_signed_with(
    client: &reqwest::Client,
    relay: &Relay,
    path: &str,
    secret: &str,
    id: &str,
    body: &Value,
) -> Resp {
    let bytes = serde_json::to_vec(body).expect("json");
    let ts = now_secs();
    let headers = [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sign(secret, id, ts, &bytes)),
    ];
    post_raw(client, relay, path, &headers, bytes).await
}

/// Keyed sink call (admin key), with a `webhook-id` when given.
pub(crate) async fn post_keyed(relay: &Relay, path: &str, id: Option<&str>, body: &Value) -> Resp {
    let mut headers = vec![("Api-Key", KEY.to_string())];
    if let Some(id) = id {
        headers.push(("webhook-id", id.to_string()));
    }
    post_raw(&common::client(), relay, path, &headers, serde_json::to_vec(body).expect("json"))
        .await
}

/// [`post_keyed`] without a webhook-id, asserting 200; returns the append answer.
pub(crate) async fn append(relay: &Relay, id: &str, sheet_id: u32, body: Value) -> Value {
    let r = post_keyed(relay, &sink_path(id, sheet_id, None), None, &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// A uiform `WebhookRequest` whose completion's parsed message is `parsed`.
pub(crate) fn completion(parsed: Value, likelihoods: Value) -> Value {
    json!({
        "completion": {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                "message": {"role": "assistant", "content": parsed.to_string(), "parsed": parsed}}],
            "likelihoods": likelihoods,
        },
        "user": null,
        "file_payload": null,
        "metadata": {"source": "sheets-test"},
    })
}

// ---------------------------------------------------------------------------------------
// Automations and workflow runs
// ---------------------------------------------------------------------------------------

/// Creates an automation from `body` (asserting 201); returns its JSON (with `secret`).
pub(crate) async fn create_automation(relay: &Relay, body: Value) -> Value {
    let (status, answer) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{answer}");
    answer
}

/// Runs the demo app (blocking) with `name` and `tone`; asserts it succeeded with `greeting`.
pub(crate) async fn run_demo(relay: &Relay, name: &str, tone: &str, greeting: &str) -> Value {
    let req = common::client()
        .post(relay.url("/v1/workflows/run"))
        .header("Authorization", format!("Bearer {DEMO_KEY}"))
        .json(&json!({"inputs": {"name": name, "tone": tone}, "response_mode": "blocking", "user": "sheets-test"}));
    let r = send(req).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["status"], "succeeded", "{}", r.body);
    assert_eq!(r.body["data"]["outputs"], json!({ "greeting": greeting }), "{}", r.body);
    r.body
}

/// Waits until worksheet 0 of `id` holds `n` rows (header included); returns its values.
pub(crate) async fn wait_rows(relay: &Relay, id: &str, n: usize) -> Vec<Vec<String>> {
    relay
        .wait_for(WAIT, &format!("{n} rows in {id}"), || async {
            let v = rows(relay, id, "Sheet1").await;
            (v.len() >= n).then_some(v)
        })
        .await
}

/// The key the relay signs its own calls to spreadsheet `sheet`'s sink with, derived
/// independently (not hookrelay's code): `whsec_` + base64 HMAC-SHA256 keyed with the
/// base64 part of `secret` over `"hookrelay sheets sink " + sheet`.
pub(crate) fn sink_secret(secret: &str, sheet: &str) -> String {
    let sheet = format!("hookrelay sheets sink {sheet}");
    format!("whsec_{}", crate::common::signing::hmac_base64(secret, &[sheet.as_bytes()]))
}
