//! Reading back through HTTP with A1 notation: rectangles, whole columns and rows,
//! open-ended ranges, the first worksheet by default, quoted titles (URL-encoded), ranges
//! past the data, unknown titles, and malformed ranges (400 naming the range).
//!
//! (Item 9 of the test plan.)

use serde_json::json;

use crate::common::Relay;
use crate::helpers::{
    append, assert_error, create_sheet, get, grid, id_of, new_sheet, rows, values, SHEETS,
};

/// A spreadsheet with `Sheet1` (a, b, c × 3 rows) and `My Sheet` (x, y × 2 rows).
async fn filled(relay: &Relay) -> String {
    let sheet = create_sheet(relay, json!({"title": "A1", "sheets": ["Sheet1", "My Sheet"]})).await;
    let id = id_of(&sheet);
    for n in [1, 4, 7] {
        append(relay, &id, 0, json!({"a": n, "b": n + 1, "c": n + 2})).await;
    }
    append(relay, &id, 1, json!({"x": "p", "y": "q"})).await;
    append(relay, &id, 1, json!({"x": "r", "y": "s"})).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a1_ranges_read_back_as_the_sheets_api_does() {
    let relay = Relay::start("");
    let id = filled(&relay).await;
    let cases: &[(&str, &str, &[&[&str]])] = &[
        ("Sheet1!A1:B2", "Sheet1!A1:B2", &[&["a", "b"], &["1", "2"]]),
        ("Sheet1!B:B", "Sheet1!B1:B4", &[&["b"], &["2"], &["5"], &["8"]]),
        ("A2:C", "Sheet1!A2:C4", &[&["1", "2", "3"], &["4", "5", "6"], &["7", "8", "9"]]),
        (
            "Sheet1",
            "Sheet1!A1:C4",
            &[&["a", "b", "c"], &["1", "2", "3"], &["4", "5", "6"], &["7", "8", "9"]],
        ),
        ("Sheet1!2:3", "Sheet1!A2:C3", &[&["1", "2", "3"], &["4", "5", "6"]]),
        ("Sheet1!c3:b2", "Sheet1!B2:C3", &[&["2", "3"], &["5", "6"]]),
        ("Sheet1!A3:Z99", "Sheet1!A3:C4", &[&["4", "5", "6"], &["7", "8", "9"]]),
        ("C4", "Sheet1!C4", &[&["9"]]),
        ("'My Sheet'!A1", "'My Sheet'!A1", &[&["x"]]),
        ("'My Sheet'!A2:B", "'My Sheet'!A2:B3", &[&["p", "q"], &["r", "s"]]),
        ("'My Sheet'", "'My Sheet'!A1:B3", &[&["x", "y"], &["p", "q"], &["r", "s"]]),
    ];
    for (range, answered, expected) in cases {
        let r = values(&relay, &id, range).await;
        assert_eq!(r.status, 200, "{range}: {}", r.body);
        assert_eq!(
            r.body,
            json!({"range": answered, "majorDimension": "ROWS", "values": grid(expected)}),
            "{range}"
        );
    }
    // Unencoded `!` and `:` in the path work too.
    let raw = get(&relay, &format!("{SHEETS}/{id}/values/Sheet1!A1:B2")).await;
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert_eq!(raw.body["values"], json!([["a", "b"], ["1", "2"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_past_the_data_and_empty_sheets_have_no_values() {
    let relay = Relay::start("");
    let id = filled(&relay).await;
    for range in ["Sheet1!A10:C12", "Sheet1!E1:F2", "Sheet1!Z:Z"] {
        let r = values(&relay, &id, range).await;
        assert_eq!(r.status, 200, "{range}: {}", r.body);
        assert_eq!(r.body["majorDimension"], "ROWS");
        let empty = r.body.get("values").is_none() || r.body["values"] == json!([]);
        assert!(empty, "{range}: {}", r.body);
    }
    let fresh = new_sheet(&relay, "Fresh", None).await;
    assert!(rows(&relay, &fresh, "Sheet1").await.is_empty());
    assert!(rows(&relay, &fresh, "A1:C10").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_titles_and_spreadsheets_are_404() {
    let relay = Relay::start("");
    let id = filled(&relay).await;
    for range in ["Nope!A1", "'Not There'!A1:B2", "Results"] {
        assert_error(&values(&relay, &id, range).await, 404, "not_found", Some("worksheet"));
    }
    let unknown = format!("ss_{}", "0".repeat(32));
    assert_error(&values(&relay, &unknown, "Sheet1").await, 404, "not_found", None);
    assert_error(&values(&relay, "ss_bogus", "Sheet1").await, 404, "not_found", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ranges_are_400_naming_the_range() {
    let relay = Relay::start("");
    let id = filled(&relay).await;
    for range in [
        "A0",
        "Sheet1!",
        "Sheet1!A1:",
        "Sheet1!A0:B2",
        "'My Sheet!A1",
        "Sheet1!AAAA1",
        "Sheet1!1A",
        "!A1",
        "Sheet1!A1:B2:C3",
    ] {
        let r = values(&relay, &id, range).await;
        assert_eq!(r.status, 400, "{range}: {}", r.body);
        assert_error(&r, 400, "invalid_param", Some(&format!("`{range}`")));
        assert_eq!(r.body["field"], "range", "{range}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn titles_that_need_quoting_are_quoted_and_read_back() {
    let relay = Relay::start("");
    let titles = ["It's", "Q3/plan", "2024", "A1", "Ünïcode sheet"];
    let sheet = create_sheet(&relay, json!({"title": "Odd", "sheets": titles})).await;
    let id = id_of(&sheet);
    let quoted = ["'It''s'", "'Q3/plan'", "'2024'", "'A1'", "'Ünïcode sheet'"];
    for (i, q) in quoted.iter().enumerate() {
        let answer = append(&relay, &id, i as u32, json!({"t": titles[i], "n": i})).await;
        assert_eq!(answer["updates"]["updatedRange"], format!("{q}!A1:B2"), "{answer}");
        let r = values(&relay, &id, &format!("{q}!A1:B2")).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        assert_eq!(r.body["range"], format!("{q}!A1:B2"));
        assert_eq!(r.body["values"], json!([["t", "n"], [titles[i], i.to_string()]]), "{q}");
        // The whole worksheet by its quoted title alone.
        assert_eq!(rows(&relay, &id, q).await.len(), 2, "{q}");
    }
    // Unquoted, a title that reads as a cell is a cell of the first worksheet.
    assert_eq!(rows(&relay, &id, "A1").await, vec![vec!["t".to_string()]]);
}
