//! Spreadsheets CRUD: create (default and named worksheets, with a secret), list with
//! cursor pagination, show (header, row and column counts), delete, and their bad input.
//!
//! (Item 1 of the test plan.)

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, Relay};
use crate::helpers::{
    append, assert_error, create_sheet, get, id_of, new_secret, new_sheet, post_keyed, send,
    sheet_meta, sink_path, values, SHEETS,
};

fn is_spreadsheet_id(id: &str) -> bool {
    id.strip_prefix("ss_").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn worksheet(sheet: &Value, i: usize) -> &Value {
    &sheet["sheets"][i]["properties"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_gives_an_id_and_a_default_worksheet() {
    let relay = Relay::start("");
    let sheet = create_sheet(&relay, json!({"title": "Leads"})).await;
    let id = id_of(&sheet);
    assert!(is_spreadsheet_id(&id), "{id}");
    assert_eq!(sheet["properties"]["title"], "Leads");
    assert_eq!(sheet["signed"], false);
    let sheets = sheet["sheets"].as_array().expect("sheets");
    assert_eq!(sheets.len(), 1, "{sheet}");
    let ws = worksheet(&sheet, 0);
    assert_eq!(ws["sheetId"], 0);
    assert_eq!(ws["title"], "Sheet1");
    assert_eq!(ws["gridProperties"]["rowCount"], 0);
    assert_eq!(ws["gridProperties"]["columnCount"], 0);
    assert_eq!(sheets[0]["header"], json!([]));

    // Shown as created.
    let shown = sheet_meta(&relay, &id).await;
    assert_eq!(shown["spreadsheetId"], id.as_str());
    assert_eq!(shown["sheets"], sheet["sheets"]);
    // Without the admin key, nothing is shown or created.
    let anon = send(common::client().get(relay.url(&format!("{SHEETS}/{id}")))).await;
    assert_error(&anon, 401, "unauthorized", None);
    let anon = send(common::client().post(relay.url(SHEETS)).json(&json!({"title": "x"}))).await;
    assert_error(&anon, 401, "unauthorized", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_worksheets_get_ids_from_zero_and_a_secret_marks_it_signed() {
    let relay = Relay::start("");
    let body = json!({"title": "Q3", "sheets": ["Alpha", "My Sheet", "Gamma"], "webhook_secret": new_secret()});
    let sheet = create_sheet(&relay, body).await;
    assert_eq!(sheet["signed"], true);
    assert!(sheet.get("webhook_secret").is_none(), "the secret is never shown: {sheet}");
    let got: Vec<(u64, String)> = (0..3)
        .map(|i| {
            let ws = worksheet(&sheet, i);
            (ws["sheetId"].as_u64().unwrap(), ws["title"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        got,
        vec![(0, "Alpha".to_string()), (1, "My Sheet".to_string()), (2, "Gamma".to_string())]
    );
    assert_eq!(sheet["sheets"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_reports_header_and_counts_after_appends() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Counts", None).await;
    append(&relay, &id, 0, json!({"name": "Ada", "city": "Paris"})).await;
    append(&relay, &id, 0, json!({"name": "Bob", "city": "Oslo", "age": 40})).await;
    let meta = sheet_meta(&relay, &id).await;
    assert_eq!(meta["sheets"][0]["header"], json!(["name", "city", "age"]));
    let grid = &worksheet(&meta, 0)["gridProperties"];
    assert_eq!(grid["rowCount"], 3, "header + 2 rows: {meta}");
    assert_eq!(grid["columnCount"], 3, "{meta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_every_spreadsheet_with_cursors() {
    let relay = Relay::start("");
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(new_sheet(&relay, &format!("List {i}"), None).await);
    }
    let walk = |order: &'static str| {
        let relay = &relay;
        async move {
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            let mut pages = 0;
            loop {
                let cursor = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
                let page = relay.get_json(&format!("{SHEETS}?limit=2&order={order}{cursor}")).await;
                assert_eq!(page["object"], "list");
                let data = page["data"].as_array().expect("data");
                assert!(data.len() <= 2, "{page}");
                for s in data {
                    assert!(s["sheets"][0]["properties"]["title"] == "Sheet1", "{s}");
                    seen.push(id_of(s));
                }
                pages += 1;
                assert!(pages < 10, "pagination does not end");
                match page["list_metadata"]["after"].as_str() {
                    Some(a) => after = Some(a.to_string()),
                    None => return seen,
                }
            }
        }
    };
    let desc = walk("desc").await;
    let asc = walk("asc").await;
    assert_eq!(desc.len(), 5, "{desc:?}");
    let unique: HashSet<&String> = desc.iter().collect();
    assert_eq!(unique, created.iter().collect::<HashSet<_>>());
    let mut reversed = asc.clone();
    reversed.reverse();
    assert_eq!(desc, reversed, "desc is asc reversed");
    // A malformed cursor is named.
    let bad = get(&relay, &format!("{SHEETS}?after=nope")).await;
    assert_error(&bad, 400, "invalid_param", Some("after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_spreadsheet_and_its_rows() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Doomed", None).await;
    let keep = new_sheet(&relay, "Kept", None).await;
    append(&relay, &id, 0, json!({"a": 1})).await;
    append(&relay, &keep, 0, json!({"a": 2})).await;

    let r = send(relay.req(Method::DELETE, &format!("{SHEETS}/{id}"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"spreadsheetId": id, "deleted": true}));

    assert_error(&get(&relay, &format!("{SHEETS}/{id}")).await, 404, "not_found", None);
    assert_error(&values(&relay, &id, "Sheet1").await, 404, "not_found", None);
    let sink = post_keyed(&relay, &sink_path(&id, 0, None), None, &json!({"a": 3})).await;
    assert_error(&sink, 404, "not_found", Some("spreadsheet"));
    let again = send(relay.req(Method::DELETE, &format!("{SHEETS}/{id}"))).await;
    assert_error(&again, 404, "not_found", None);

    let listed = relay.get_json(&format!("{SHEETS}?limit=100")).await;
    let ids: Vec<String> = listed["data"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(ids, vec![keep.clone()], "only the kept one is listed");
    // The other spreadsheet is untouched.
    assert_eq!(crate::helpers::rows(&relay, &keep, "Sheet1").await, vec![vec!["a"], vec!["2"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_bad_titles_worksheets_and_secrets() {
    let relay = Relay::start("");
    let cases = [
        (json!({"title": ""}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(257)}), "title"),
        (json!({"title": "t", "sheets": []}), "sheets"),
        (json!({"title": "t", "sheets": ["A", "A"]}), "sheets.1"),
        (json!({"title": "t", "sheets": ["A", ""]}), "sheets.1"),
        (json!({"title": "t", "webhook_secret": "whsec_***not base64***"}), "webhook_secret"),
        // Base64, but a 1-byte key, or no `whsec_` prefix: signatures with them are worthless.
        (json!({"title": "t", "webhook_secret": "whsec_cg=="}), "webhook_secret"),
        (json!({"title": "t", "webhook_secret": "MDEyMzQ1Njc4OWFiY2RlZg=="}), "webhook_secret"),
    ];
    for (body, field) in cases {
        let (status, answer) = relay.post_json(SHEETS, &body).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["code"], "invalid_param", "{answer}");
        assert_eq!(answer["field"], field, "{body} → {answer}");
    }
    // A missing title is a clear 400 too, and nothing was created.
    let (status, answer) = relay.post_json(SHEETS, &json!({"sheets": ["A"]})).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap_or("").contains("title"), "{answer}");
    let listed = relay.get_json(SHEETS).await;
    assert_eq!(listed["data"], json!([]), "{listed}");
}

/// A stored spreadsheet id that is not one (the database edited by hand or damaged) is an
/// error naming it, never listed as if it were a spreadsheet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_spreadsheet_id_that_is_not_one_is_an_error() {
    let mut relay = Relay::start("");
    let sheet = new_sheet(&relay, "Damaged", None).await;
    relay.kill9();
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("db");
    // Past the foreign keys and CHECKs that would refuse it.
    db.execute_batch(&format!(
        "PRAGMA foreign_keys = 0; PRAGMA ignore_check_constraints = 1; \
         UPDATE spreadsheets SET id = 'ss_not-an-id' WHERE id = unhex('{}')",
        &sheet[sheet.len() - 32..]
    ))
    .expect("corrupt");
    drop(db);
    relay.restart();
    let r = get(&relay, SHEETS).await;
    assert_eq!(r.status, 500, "a malformed stored id was listed: {}", r.body);
}
