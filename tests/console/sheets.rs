//! Sheets in the console: the list, a worksheet's table a page of rows at a time, the CSV and
//! XLSX downloads, stored cells shown escaped, 404s, bad parameters, and sign-in.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{Relay, KEY};
use crate::helpers::{key_of, Browser};

const HOSTILE: &str = "<script>alert(1)</script>";
/// Data rows per table page (the console's).
const PAGE: usize = 50;
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The note of the `n`th row appended: row 3 (the second appended) holds a script, the others
/// a comma and quotes (CSV quoting).
fn note_of(n: usize) -> String {
    if n == 2 {
        HOSTILE.to_string()
    } else {
        format!("note, \"{n}\"")
    }
}

/// Appends `row` to worksheet 0 of `sheet` through the sink, with the admin key.
async fn append(relay: &Relay, sheet: &str, row: &Value) {
    let path =
        format!("/v1/integrations/google_sheets/webhook?spreadsheet_id={sheet}&worksheet_id=0");
    let resp = crate::common::client()
        .post(relay.url(&path))
        .header("Api-Key", KEY)
        .json(row)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

/// Worksheet 0's values by the API: header, then the data rows.
async fn values(relay: &Relay, sheet: &str) -> Vec<Vec<String>> {
    let body = relay.get_json(&format!("/v1/spreadsheets/{sheet}/values/Sheet1")).await;
    serde_json::from_value(body["values"].clone()).expect("rows of strings")
}

/// The data row numbers a table page shows, in page order.
fn row_numbers(page: &str) -> Vec<usize> {
    page.match_indices("<tr id=\"row-")
        .map(|(at, m)| {
            let rest = &page[at + m.len()..];
            rest[..rest.find('"').expect("end")].parse().expect("a row number")
        })
        .collect()
}

/// The `href` of the link with `rel`, unescaped.
fn rel_link(page: &str, rel: &str) -> String {
    let page = page.replace("&#x2f;", "/");
    let end = page.find(&format!("\" rel=\"{rel}\"")).expect("the link");
    let start = page[..end].rfind("href=\"").expect("href") + 6;
    page[start..end].replace("&amp;", "&")
}

/// GET `path` with the browser's session: status, content type, bytes.
async fn download(relay: &Relay, browser: &Browser, path: &str) -> (StatusCode, String, Vec<u8>) {
    let cookie = format!("hr_console={}", browser.cookie.as_deref().expect("signed in"));
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(relay.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("send");
    let status = resp.status();
    let kind = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let kind = kind.to_string();
    (status, kind, resp.bytes().await.expect("bytes").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheet_is_shown_a_page_at_a_time_and_downloads_as_its_rows() {
    let relay = Relay::start("");
    let (status, created) =
        relay.post_json("/v1/spreadsheets", &json!({"title": "<b>Orders</b>"})).await;
    assert_eq!(status, 201, "{created}");
    let sheet = created["spreadsheetId"].as_str().expect("id").to_string();
    let count = PAGE + 6;
    for n in 1..=count {
        append(&relay, &sheet, &json!({"n": n, "note": note_of(n)})).await;
    }
    let expected = values(&relay, &sheet).await;
    assert_eq!(expected.len(), count + 1, "header and rows");
    let note = expected[0].iter().position(|h| h == "note").expect("a note column");
    let notes: Vec<&str> = expected[1..].iter().map(|r| r[note].as_str()).collect();
    let appended: Vec<String> = (1..=count).map(note_of).collect();
    assert_eq!(notes, appended, "rows in the order appended");

    let mut browser = Browser::new(&relay);
    browser.sign_in(&key_of(&relay, "viewer").await.0).await;
    let list = browser.get("/console/sheets").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert!(list.text.contains(&format!("href=\"/console/sheets/{sheet}\"")), "{}", list.text);
    assert!(list.text.contains("&lt;b&gt;Orders&lt;&#x2f;b&gt;"), "title not escaped");

    let first = browser.get(&format!("/console/sheets/{sheet}")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(row_numbers(&first.text), (2..2 + PAGE).collect::<Vec<_>>());
    let header: String = expected[0].iter().map(|h| format!("<td>{h}</td>")).collect();
    assert!(first.text.contains(&format!("<th scope=\"row\">1</th>{header}")), "{}", first.text);
    let row_3: String = expected[2]
        .iter()
        .map(|c| {
            format!(
                "<td>{}</td>",
                c.replace('<', "&lt;").replace('>', "&gt;").replace('/', "&#x2f;")
            )
        })
        .collect();
    assert!(first.text.contains(&row_3), "row 3 not shown escaped: {}", first.text);
    assert!(!first.text.contains(HOSTILE), "a stored cell rendered as markup");
    assert!(!first.text.contains("rel=\"prev\""));
    let second = browser.get(&rel_link(&first.text, "next")).await;
    assert_eq!(row_numbers(&second.text), (2 + PAGE..=count + 1).collect::<Vec<_>>());
    assert!(!second.text.contains("rel=\"next\""));
    let back = browser.get(&rel_link(&second.text, "prev")).await;
    assert_eq!(row_numbers(&back.text), (2..2 + PAGE).collect::<Vec<_>>());

    let csv_path = rel_link_of(&first.text, "download-csv");
    let (status, kind, bytes) = download(&relay, &browser, &csv_path).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    assert!(kind.starts_with("text/csv"), "{kind}");
    let parsed: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice())
        .records()
        .map(|r| r.expect("a CSV record").iter().map(String::from).collect())
        .collect();
    assert_eq!(parsed, expected);
    assert_eq!(parsed[3][note], "note, \"3\"", "quoting round-trips");

    let (status, kind, bytes) =
        download(&relay, &browser, &rel_link_of(&first.text, "download-xlsx")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, XLSX);
    assert!(bytes.starts_with(b"PK"), "not a zip");
    let mut book = Xlsx::new(Cursor::new(bytes)).expect("an XLSX");
    let range = book.worksheet_range("Sheet1").expect("Sheet1");
    let cells: Vec<Vec<String>> = range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(cells.len(), expected.len());
    assert_eq!(cells[2][note], HOSTILE, "the XLSX holds the cell as stored");
}

/// The `href` of the element with `id`, unescaped.
fn rel_link_of(page: &str, id: &str) -> String {
    let page = page.replace("&#x2f;", "/");
    let end = page.find(&format!("\" id=\"{id}\"")).expect("the link");
    let start = page[..end].rfind("href=\"").expect("href") + 6;
    page[start..end].replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sheets_are_404_pages_and_bad_parameters_are_named() {
    let relay = Relay::start("");
    let (_, created) = relay.post_json("/v1/spreadsheets", &json!({"title": "Empty"})).await;
    let sheet = created["spreadsheetId"].as_str().expect("id").to_string();
    let mut browser = Browser::new(&relay);
    browser.sign_in(&key_of(&relay, "viewer").await.0).await;

    let unknown = format!("ss_{}", "0".repeat(32));
    for path in [
        format!("/console/sheets/{unknown}"),
        "/console/sheets/not-a-sheet".to_string(),
        format!("/console/sheets/{sheet}?worksheet_id=7"),
        format!("/console/sheets/{unknown}/export?format=csv"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}: {}", page.text);
        assert!(page.text.contains("<h1>404 Not Found</h1>"), "{path}: {}", page.text);
    }
    for (query, field) in [
        ("?from=x", "from"),
        ("?from=1", "from"),
        ("?worksheet_id=-1", "worksheet_id"),
        ("?sort=n", "sort"),
        ("/export?format=pdf", "format"),
    ] {
        let page = browser.get(&format!("/console/sheets/{sheet}{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}: {}", page.text);
        assert!(page.text.contains(&format!("Wrong parameter: {field}")), "{query}: {}", page.text);
    }
    let empty = browser.get(&format!("/console/sheets/{sheet}")).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert!(row_numbers(&empty.text).is_empty());

    let signed_out = Browser::new(&relay);
    for path in [
        "/console/sheets".to_string(),
        format!("/console/sheets/{sheet}"),
        format!("/console/sheets/{sheet}/export?format=csv"),
    ] {
        let page = signed_out.get(&path).await;
        assert!(page.status.is_redirection(), "{path}: {}", page.status);
        assert_eq!(page.location(), "/console/sign-in", "{path}");
    }
}
