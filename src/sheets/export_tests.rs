//! Unit tests of `sheets::export`.

use super::*;
use calamine::{Data, Reader, Xlsx};
use std::io::{Cursor, Read};

fn row(values: &[&str]) -> Vec<Cell> {
    values.iter().map(|v| Cell::new(*v)).collect()
}

fn read_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn values(rows: &[Vec<Cell>]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|c| c.value.clone()).collect()).collect()
}

#[test]
fn csv_round_trips_awkward_values() {
    let rows = vec![
        row(&["name", "note", "amount", "city"]),
        row(&["Smith, John", "said \"hi\"", "12.50", "Zürich"]),
        row(&["multi\nline", "cr\r\nlf", "", "東京 🗼"]),
        row(&["'quote", "1+1=2", " padded ", "\"\""]),
    ];
    let bytes = to_csv(&rows).unwrap();
    assert_eq!(read_csv(&bytes), values(&rows));
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("name,note,amount,city\r\n"), "{text}");
    assert!(text.contains("\"Smith, John\",\"said \"\"hi\"\"\",12.50,Zürich\r\n"), "{text}");
    assert!(text.contains("\"multi\nline\""), "{text}");
}

#[test]
fn csv_fields_that_start_like_formulas_get_a_quote() {
    let rows = vec![row(&["=title", "b"]), row(&["-5", "-5+1"]), row(&["@x"])];
    let text = String::from_utf8(to_csv(&rows).unwrap()).unwrap();
    assert_eq!(text, "'=title,b\r\n-5,'-5+1\r\n'@x,\r\n");
}

#[test]
fn csv_pads_ragged_rows_and_drops_likelihoods() {
    let rows = vec![
        row(&["a", "b", "c"]),
        vec![Cell::with_likelihood("1", 0.95)],
        vec![],
        row(&["x", "y", "z"]),
    ];
    let bytes = to_csv(&rows).unwrap();
    assert_eq!(String::from_utf8(bytes.clone()).unwrap(), "a,b,c\r\n1,,\r\n,,\r\nx,y,z\r\n");
    assert_eq!(read_csv(&bytes)[1], vec!["1", "", ""]);
}

#[test]
fn csv_of_nothing_is_empty() {
    assert!(to_csv(&[]).unwrap().is_empty());
    assert!(to_csv(&[vec![], vec![]]).unwrap().is_empty());
    assert_eq!(to_csv(&[row(&[""])]).unwrap(), b"\"\"\r\n");
}

/// Reads a file out of the XLSX zip.
fn zip_file(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

/// The XML elements named `tag` inside the first `<parent …>…</parent>` block.
fn elements<'a>(xml: &'a str, parent: &str, tag: &str) -> Vec<&'a str> {
    let start = xml.find(&format!("<{parent}")).unwrap();
    let end = start + xml[start..].find(&format!("</{parent}>")).unwrap();
    let block = &xml[start..end];
    let open = format!("<{tag}");
    let mut out = Vec::new();
    let mut rest = block;
    while let Some(at) = rest.find(&open) {
        let tail = &rest[at..];
        let after = tail.as_bytes().get(open.len()).copied();
        if !matches!(after, Some(b' ' | b'>' | b'/')) {
            rest = &tail[open.len()..];
            continue;
        }
        let close = format!("</{tag}>");
        let len = match (tail.find("/>"), tail.find('>'), tail.find(&close)) {
            (Some(e), Some(g), _) if e + 1 == g => e + 2,
            (_, _, Some(c)) => c + close.len(),
            _ => tail.len(),
        };
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    out
}

fn attr<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = element.find(&key)? + key.len();
    Some(&element[at..at + element[at..].find('"')?])
}

/// The fill colour (`RRGGBB`) and boldness of cell `r` (e.g. `B2`) of worksheet 1.
fn style_of(bytes: &[u8], r: &str) -> (Option<String>, bool) {
    let sheet = zip_file(bytes, "xl/worksheets/sheet1.xml");
    let styles = zip_file(bytes, "xl/styles.xml");
    let cell = elements(&sheet, "sheetData", "c")
        .into_iter()
        .find(|c| attr(c, "r") == Some(r))
        .unwrap_or_else(|| panic!("no cell {r}"));
    let xf_index: usize = attr(cell, "s").unwrap_or("0").parse().unwrap();
    let xf = elements(&styles, "cellXfs", "xf")[xf_index];
    let fill_id: usize = attr(xf, "fillId").unwrap().parse().unwrap();
    let font_id: usize = attr(xf, "fontId").unwrap().parse().unwrap();
    let fill = elements(&styles, "fills", "fill")[fill_id];
    let colour = elements(fill, "fill", "fgColor")
        .first()
        .and_then(|fg| attr(fg, "rgb"))
        .map(|argb| argb.strip_prefix("FF").unwrap_or(argb).to_string());
    let bold = elements(&styles, "fonts", "font")[font_id].contains("<b/>");
    (colour, bold)
}

fn read_xlsx(bytes: &[u8]) -> Xlsx<Cursor<Vec<u8>>> {
    calamine::open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap()
}

fn sheet_data(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let range = read_xlsx(bytes).worksheet_range(name).unwrap();
    assert_eq!(range.start(), Some((0, 0)));
    range.rows().map(<[Data]>::to_vec).collect()
}

fn s(v: &str) -> Data {
    Data::String(v.to_string())
}

#[test]
fn xlsx_holds_the_values() {
    let rows = vec![
        row(&["name", "amount", "zip", "note"]),
        row(&["Smith, John", "42", "007", "multi\nline \"quoted\""]),
        row(&["東京 🗼", "-3.25", "12345678901234567890", "=1+1"]),
        row(&["<tag> & more", "1.50", "true", ""]),
    ];
    let bytes = to_xlsx("Sheet1", &rows).unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04", "an XLSX is a zip archive");
    let mut workbook = read_xlsx(&bytes);
    assert_eq!(workbook.sheet_names(), vec!["Sheet1"], "no legend without likelihoods");
    let got = workbook.worksheet_range("Sheet1").unwrap();
    let got: Vec<Vec<Data>> = got.rows().map(<[Data]>::to_vec).collect();
    assert_eq!(
        got,
        vec![
            vec![s("name"), s("amount"), s("zip"), s("note")],
            vec![s("Smith, John"), Data::Float(42.0), s("007"), s("multi\nline \"quoted\"")],
            vec![s("東京 🗼"), Data::Float(-3.25), s("12345678901234567890"), s("=1+1")],
            vec![s("<tag> & more"), s("1.50"), s("true"), Data::Empty],
        ]
    );
    // Formulas are never written: `=1+1` is a string cell.
    let sheet = zip_file(&bytes, "xl/worksheets/sheet1.xml");
    assert!(!sheet.contains("<f>"), "{sheet}");
    assert!(sheet.contains("<v>42</v>") && sheet.contains("<v>-3.25</v>"), "{sheet}");
    let strings = zip_file(&bytes, "xl/sharedStrings.xml");
    assert!(strings.contains("Smith, John") && strings.contains("&lt;tag&gt; &amp; more"));
}

#[test]
fn xlsx_header_is_bold_and_frozen() {
    let rows = vec![row(&["a", "b"]), row(&["1", "x"])];
    let bytes = to_xlsx("Data", &rows).unwrap();
    assert_eq!(style_of(&bytes, "A1"), (None, true));
    assert_eq!(style_of(&bytes, "B1"), (None, true));
    assert_eq!(style_of(&bytes, "B2"), (None, false));
    let sheet = zip_file(&bytes, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains("state=\"frozen\""), "{sheet}");
    assert_eq!(read_xlsx(&bytes).sheet_names(), vec!["Data"]);
}

#[test]
fn xlsx_fills_cells_by_likelihood_with_a_legend() {
    let rows = vec![
        vec![Cell::new("invoice"), Cell::new("total"), Cell::with_likelihood("vendor", 0.3)],
        vec![
            Cell::with_likelihood("INV-1", 0.95),
            Cell::with_likelihood("12.5", 0.9),
            Cell::with_likelihood("ACME", 0.89),
        ],
        vec![
            Cell::with_likelihood("INV-2", 0.6),
            Cell::with_likelihood("7", 0.59),
            Cell::with_likelihood("", 0.0),
        ],
        vec![Cell::new("INV-3"), Cell::with_likelihood("8", f64::NAN), Cell::new("Initech")],
    ];
    let bytes = to_xlsx("My Sheet", &rows).unwrap();
    let styles = zip_file(&bytes, "xl/styles.xml");
    for rgb in ["FFC6EFCE", "FFFFEB9C", "FFFFC7CE"] {
        assert!(styles.contains(&format!("rgb=\"{rgb}\"")), "{rgb} missing: {styles}");
    }
    let green = Some("C6EFCE".to_string());
    let amber = Some("FFEB9C".to_string());
    let red = Some("FFC7CE".to_string());
    assert_eq!(style_of(&bytes, "A1"), (None, true));
    assert_eq!(style_of(&bytes, "C1"), (red.clone(), true));
    assert_eq!(style_of(&bytes, "A2"), (green.clone(), false));
    assert_eq!(style_of(&bytes, "B2"), (green, false));
    assert_eq!(style_of(&bytes, "C2"), (amber.clone(), false));
    assert_eq!(style_of(&bytes, "A3"), (amber, false));
    assert_eq!(style_of(&bytes, "B3"), (red.clone(), false));
    assert_eq!(style_of(&bytes, "C3"), (red, false), "an empty value keeps its fill");
    assert_eq!(style_of(&bytes, "B4"), (None, false), "NaN gets no fill");
    assert_eq!(style_of(&bytes, "A4"), (None, false));

    let mut workbook = read_xlsx(&bytes);
    assert_eq!(workbook.sheet_names(), vec!["My Sheet", "Legend"]);
    let data = sheet_data(&bytes, "My Sheet");
    assert_eq!(data[1], vec![s("INV-1"), Data::Float(12.5), s("ACME")]);
    assert_eq!(data[2], vec![s("INV-2"), Data::Float(7.0), Data::Empty]);
    let legend = workbook.worksheet_range("Legend").unwrap();
    let legend: Vec<Vec<Data>> = legend.rows().map(<[Data]>::to_vec).collect();
    assert_eq!(legend[0], vec![s("Fill"), s("Likelihood"), s("Meaning")]);
    assert_eq!(legend[1][0], s("Green"));
    assert_eq!(legend[1][1], s("0.9 or more"));
    assert_eq!(legend[2][0], s("Amber"));
    assert_eq!(legend[3][0], s("Red"));
    assert_eq!(legend[4][0], s("No fill"));
}

#[test]
fn xlsx_legend_name_avoids_the_data_sheet() {
    let rows = vec![vec![Cell::with_likelihood("a", 1.0)]];
    let bytes = to_xlsx("legend", &rows).unwrap();
    assert_eq!(read_xlsx(&bytes).sheet_names(), vec!["legend", "Likelihood legend"]);
}

#[test]
fn xlsx_of_nothing_is_a_valid_workbook() {
    let bytes = to_xlsx("Sheet1", &[]).unwrap();
    assert_eq!(read_xlsx(&bytes).sheet_names(), vec!["Sheet1"]);
}

#[test]
fn xlsx_writes_ragged_rows() {
    let rows = vec![row(&["a", "b", "c"]), row(&["1"]), vec![], row(&["x", "y"])];
    let data = sheet_data(&to_xlsx("S", &rows).unwrap(), "S");
    assert_eq!(data[1], vec![Data::Float(1.0), Data::Empty, Data::Empty]);
    assert_eq!(data[3], vec![s("x"), s("y"), Data::Empty]);
}

#[test]
fn xlsx_limits_give_clear_errors() {
    let long = "é".repeat(XLSX_MAX_CELL_CHARS + 1);
    let rows = vec![row(&["a", "b"]), row(&["x", &long])];
    let err = to_xlsx("S", &rows).unwrap_err();
    assert_eq!(err.to_string(), "cell B2 has 32768 characters; an XLSX cell holds at most 32,767");
    let fits = "é".repeat(XLSX_MAX_CELL_CHARS);
    assert!(to_xlsx("S", &[row(&[&fits])]).is_ok(), "the limit counts characters");

    let wide = vec![vec![Cell::default(); XLSX_MAX_COLUMNS + 1]];
    let err = to_xlsx("S", &wide).unwrap_err();
    assert!(matches!(err, ExportError::TooManyColumns { columns: 16_385 }), "{err}");
    let tall = vec![Vec::new(); XLSX_MAX_ROWS + 1];
    let err = to_xlsx("S", &tall).unwrap_err();
    assert!(matches!(err, ExportError::TooManyRows { rows: 1_048_577 }), "{err}");
}

#[test]
fn confidence_levels() {
    assert_eq!(Confidence::of(1.0), Some(Confidence::High));
    assert_eq!(Confidence::of(0.9), Some(Confidence::High));
    assert_eq!(Confidence::of(1.5), Some(Confidence::High));
    assert_eq!(Confidence::of(0.899), Some(Confidence::Medium));
    assert_eq!(Confidence::of(0.6), Some(Confidence::Medium));
    assert_eq!(Confidence::of(0.599), Some(Confidence::Low));
    assert_eq!(Confidence::of(0.0), Some(Confidence::Low));
    assert_eq!(Confidence::of(-1.0), Some(Confidence::Low));
    assert_eq!(Confidence::of(f64::NAN), None);
}

#[test]
fn numbers_and_text() {
    for (v, n) in [("42", 42.0), ("-3.5", -3.5), ("0", 0.0), ("0.25", 0.25)] {
        assert_eq!(xlsx_number(v), Some(n), "{v}");
    }
    assert_eq!(xlsx_number("123456789012345"), Some(123_456_789_012_345.0));
    for v in [
        "",
        "007",
        "1.50",
        "+1",
        "1e3",
        ".5",
        "5.",
        "-0",
        "1 000",
        "1,5",
        "NaN",
        "inf",
        "-inf",
        "0x10",
        " 42",
        "42 ",
        "1234567890123456",
        "12345678901234567890",
        "true",
    ] {
        assert_eq!(xlsx_number(v), None, "{v:?}");
    }
}

#[test]
fn sheet_names_are_made_valid() {
    assert_eq!(xlsx_sheet_name("Sheet1"), "Sheet1");
    assert_eq!(xlsx_sheet_name("My Sheet"), "My Sheet");
    assert_eq!(xlsx_sheet_name("a/b:c[d]*?\\"), "a_b_c_d____");
    assert_eq!(xlsx_sheet_name("'quoted'"), "_quoted_");
    assert_eq!(xlsx_sheet_name("It's"), "It's");
    assert_eq!(xlsx_sheet_name(""), "Sheet1");
    assert_eq!(xlsx_sheet_name("history"), "history_");
    let long = "ü".repeat(40);
    assert_eq!(xlsx_sheet_name(&long).chars().count(), 31);
    for title in ["a/b", "'x'", "", "History", &long, "Été ☀"] {
        let bytes = to_xlsx(title, &[row(&["v"])]).unwrap();
        assert_eq!(read_xlsx(&bytes).sheet_names(), vec![xlsx_sheet_name(title)]);
    }
}
