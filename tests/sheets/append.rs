//! The append answer (Google's `spreadsheets.values.append` shape) for the first
//! append (header written) and later ones; which object becomes the row; header growth,
//! flattening of nested objects, arrays as JSON text.
//!
//! (Items 3 and 7 of the test plan.)

use serde_json::json;

use crate::common::Relay;
use crate::helpers::{
    append, completion, create_sheet, export, grid, id_of, new_sheet, rows, sheet_meta,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_has_googles_append_shape() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Shape", None).await;

    let first = append(&relay, &id, 0, json!({"name": "Ada", "city": "Paris", "n": 1})).await;
    assert_eq!(
        first,
        json!({
            "spreadsheetId": id,
            "updates": {"spreadsheetId": id, "updatedRange": "Sheet1!A1:C2",
                "updatedRows": 2, "updatedColumns": 3, "updatedCells": 6},
        }),
        "the first append writes the header too; there was no table before it, so no tableRange"
    );
    for row in 3..=4 {
        let later = append(&relay, &id, 0, json!({"name": "Bob", "city": "Oslo", "n": row})).await;
        assert_eq!(later["spreadsheetId"], id.as_str());
        let table = later["tableRange"].as_str().expect("tableRange");
        assert!(table.starts_with("Sheet1!A1:C"), "{later}");
        assert_eq!(
            later["updates"],
            json!({"spreadsheetId": id, "updatedRange": format!("Sheet1!A{row}:C{row}"),
                "updatedRows": 1, "updatedColumns": 3, "updatedCells": 3}),
        );
    }
    assert_eq!(rows(&relay, &id, "Sheet1").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_worksheet_answers_with_its_quoted_title() {
    let relay = Relay::start("");
    let id = id_of(
        &create_sheet(&relay, json!({"title": "Two", "sheets": ["Sheet1", "My Sheet"]})).await,
    );
    let a = append(&relay, &id, 1, json!({"x": "1", "y": "2"})).await;
    assert_eq!(a["updates"]["updatedRange"], "'My Sheet'!A1:B2", "{a}");
    let b = append(&relay, &id, 1, json!({"x": "3", "y": "4"})).await;
    assert_eq!(b["updates"]["updatedRange"], "'My Sheet'!A3:B3", "{b}");
    // Worksheet 0 is untouched; worksheet 1 holds the rows.
    assert_eq!(rows(&relay, &id, "Sheet1").await, Vec::<Vec<String>>::new());
    assert_eq!(
        rows(&relay, &id, "'My Sheet'").await,
        grid(&[&["x", "y"], &["1", "2"], &["3", "4"]])
    );
    let meta = sheet_meta(&relay, &id).await;
    assert_eq!(meta["sheets"][0]["properties"]["gridProperties"]["rowCount"], 0);
    assert_eq!(meta["sheets"][1]["properties"]["gridProperties"]["rowCount"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_comes_from_parsed_when_present_else_the_object() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Source", None).await;
    // A WebhookRequest: only the parsed message becomes the row.
    append(&relay, &id, 0, completion(json!({"invoice": "F-1", "total": 12.5}), json!({}))).await;
    // `parsed: null` falls back to the object itself (its keys are new columns).
    let mut no_parsed = completion(json!({}), json!({}));
    no_parsed["completion"]["choices"][0]["message"]["parsed"] = json!(null);
    no_parsed = json!({"invoice": "F-2", "completion": no_parsed["completion"].clone()});
    append(&relay, &id, 0, no_parsed).await;
    let meta = sheet_meta(&relay, &id).await;
    let header: Vec<String> = serde_json::from_value(meta["sheets"][0]["header"].clone()).unwrap();
    assert_eq!(&header[..2], ["invoice", "total"], "{header:?}");
    assert!(header.iter().all(|h| !h.starts_with("metadata")), "{header:?}");
    let got = rows(&relay, &id, "Sheet1!A1:B3").await;
    assert_eq!(got, grid(&[&["invoice", "total"], &["F-1", "12.5"], &["F-2"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_adds_a_column_at_the_end() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Growth", None).await;
    append(&relay, &id, 0, json!({"a": 1, "b": 2})).await;
    let grown = append(&relay, &id, 0, json!({"b": 4, "c": 5, "a": 3})).await;
    assert_eq!(grown["updates"]["updatedRange"], "Sheet1!A3:C3", "{grown}");
    assert_eq!(grown["updates"]["updatedColumns"], 3, "{grown}");
    // Values go in header order whatever the object's order; a missing key is an empty cell.
    append(&relay, &id, 0, json!({"c": 6, "a": 7})).await;

    let meta = sheet_meta(&relay, &id).await;
    assert_eq!(meta["sheets"][0]["header"], json!(["a", "b", "c"]));
    assert_eq!(meta["sheets"][0]["properties"]["gridProperties"]["columnCount"], 3);
    // As the Sheets API does, trailing empty cells are left out of `values`.
    assert_eq!(
        rows(&relay, &id, "Sheet1").await,
        grid(&[&["a", "b", "c"], &["1", "2"], &["3", "4", "5"], &["7", "", "6"]])
    );
    // Column C alone: the earlier row has an empty cell there.
    assert_eq!(rows(&relay, &id, "Sheet1!C:C").await, grid(&[&["c"], &[], &["5"], &["6"]]));
    // The CSV export has every field, the earlier row padded with an empty one.
    let csv = export(&relay, &id, "format=csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(String::from_utf8(csv.bytes).unwrap(), "a,b,c\r\n1,2,\r\n3,4,5\r\n7,,6\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_objects_flatten_to_dotted_columns_and_arrays_are_json() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Nested", None).await;
    let parsed = json!({
        "name": "Ada",
        "address": {"city": "Paris", "geo": {"lat": 48.85, "lng": 2.35}},
        "tags": ["x", "y"],
        "items": [{"sku": "A", "qty": 2}],
        "vip": true,
        "note": null,
        "empty": {},
    });
    append(&relay, &id, 0, completion(parsed, json!({}))).await;
    append(&relay, &id, 0, json!({"name": "Bob", "address": {"city": "Oslo", "zip": "0150"}}))
        .await;

    let expected_header = [
        "name",
        "address.city",
        "address.geo.lat",
        "address.geo.lng",
        "tags",
        "items",
        "vip",
        "note",
        "empty",
        "address.zip",
    ];
    let got = rows(&relay, &id, "Sheet1").await;
    assert_eq!(got[0], expected_header, "{got:?}");
    let ada = &got[1];
    assert_eq!(&ada[..4], ["Ada", "Paris", "48.85", "2.35"]);
    let tags: serde_json::Value = serde_json::from_str(&ada[4]).expect("tags is JSON text");
    assert_eq!(tags, json!(["x", "y"]));
    let items: serde_json::Value = serde_json::from_str(&ada[5]).expect("items is JSON text");
    assert_eq!(items, json!([{"sku": "A", "qty": 2}]));
    assert_eq!(ada[6], "TRUE");
    assert_eq!(ada[7], "", "null is an empty cell");
    assert_eq!(ada[8], "{}", "an empty object is JSON text");
    assert_eq!(ada.len(), 9);
    assert_eq!(got[2], ["Bob", "Oslo", "", "", "", "", "", "", "", "0150"]);
}

/// Google's `tableRange` is "the range of the table that values are being appended to
/// (before the values were appended)": for an append after rows 1–2, `Sheet1!A1:C2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_range_is_the_table_before_the_append() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Table", None).await;
    append(&relay, &id, 0, json!({"a": 1, "b": 2, "c": 3})).await;
    for row in 3..=4 {
        let later = append(&relay, &id, 0, json!({"a": 1, "b": 2, "c": 3})).await;
        assert_eq!(later["updates"]["updatedRange"], format!("Sheet1!A{row}:C{row}"));
        assert_eq!(later["tableRange"], format!("Sheet1!A1:C{}", row - 1), "{later}");
    }
}
