//! Unit tests of `sheets::a1`.

use super::*;

fn cell(col: u32, row: u32) -> CellRef {
    CellRef::cell(col, row)
}
fn col(col: u32) -> CellRef {
    CellRef { col: Some(col), row: None }
}
fn row(row: u32) -> CellRef {
    CellRef { col: None, row: Some(row) }
}
fn range(sheet: Option<&str>, start: CellRef, end: Option<CellRef>) -> A1Range {
    A1Range { sheet: sheet.map(str::to_string), start, end }
}
fn kind(s: &str) -> A1ErrorKind {
    match parse(s) {
        Ok(r) => panic!("`{s}` parsed as {r:?}"),
        Err(e) => e.kind,
    }
}

#[test]
fn column_names() {
    let cases = [
        (0, "A"),
        (1, "B"),
        (25, "Z"),
        (26, "AA"),
        (27, "AB"),
        (51, "AZ"),
        (52, "BA"),
        (701, "ZZ"),
        (702, "AAA"),
        (16_383, "XFD"),
        (18_277, "ZZZ"),
        (18_278, "AAAA"),
    ];
    for (index, name) in cases {
        assert_eq!(column_name(index), name, "column_name({index})");
        if index < MAX_COLUMNS {
            assert_eq!(column_index(name), Some(index), "column_index({name})");
        }
    }
    assert_eq!(column_name(u32::MAX), "MWLQKWV");
}

#[test]
fn column_indexes() {
    assert_eq!(column_index("a"), Some(0));
    assert_eq!(column_index("aZ"), Some(51));
    assert_eq!(column_index("xfd"), Some(16_383));
    assert_eq!(column_index("ZZZ"), Some(MAX_COLUMNS - 1));
    assert_eq!(column_index("AAAA"), None);
    assert_eq!(column_index(""), None);
    assert_eq!(column_index("A1"), None);
    assert_eq!(column_index("É"), None);
    for index in 0..MAX_COLUMNS {
        assert_eq!(column_index(&column_name(index)), Some(index));
    }
}

#[test]
fn parses_the_documented_forms() {
    let cases = [
        ("Sheet1!A1:E10", range(Some("Sheet1"), cell(0, 1), Some(cell(4, 10)))),
        ("Sheet1", range(Some("Sheet1"), CellRef::default(), None)),
        ("Sheet1!B:B", range(Some("Sheet1"), col(1), Some(col(1)))),
        ("A2:C", range(None, cell(0, 2), Some(col(2)))),
        ("A2:C10", range(None, cell(0, 2), Some(cell(2, 10)))),
        ("C5", range(None, cell(2, 5), None)),
        ("'My Sheet'!A1", range(Some("My Sheet"), cell(0, 1), None)),
        ("'It''s'!A1:B2", range(Some("It's"), cell(0, 1), Some(cell(1, 2)))),
        ("Sheet1!2:4", range(Some("Sheet1"), row(2), Some(row(4)))),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text), Ok(want), "{text}");
    }
}

#[test]
fn columns_past_z() {
    assert_eq!(parse("AA1").map(|r| r.start), Ok(cell(26, 1)));
    assert_eq!(parse("AZ7").map(|r| r.start), Ok(cell(51, 7)));
    assert_eq!(parse("ZZ2").map(|r| r.start), Ok(cell(701, 2)));
    assert_eq!(parse("AAA3").map(|r| r.start), Ok(cell(702, 3)));
    assert_eq!(parse("ZZZ1").map(|r| r.start), Ok(cell(18_277, 1)));
    assert_eq!(parse("Sheet1!Z1:AA2"), Ok(range(Some("Sheet1"), cell(25, 1), Some(cell(26, 2)))));
    assert_eq!(parse("Data!AZ:BA"), Ok(range(Some("Data"), col(51), Some(col(52)))));
}

#[test]
fn open_ended_and_whole_ranges() {
    assert_eq!(parse("A:C"), Ok(range(None, col(0), Some(col(2)))));
    assert_eq!(parse("3:3"), Ok(range(None, row(3), Some(row(3)))));
    assert_eq!(parse("B2:D"), Ok(range(None, cell(1, 2), Some(col(3)))));
    assert_eq!(parse("A:C5"), Ok(range(None, col(0), Some(cell(2, 5)))));
    assert_eq!(parse("Sheet1!A5:10"), Ok(range(Some("Sheet1"), cell(0, 5), Some(row(10)))));
}

#[test]
fn quoted_titles() {
    assert_eq!(parse("'My Sheet'"), Ok(range(Some("My Sheet"), CellRef::default(), None)));
    assert_eq!(parse("''''!A1"), Ok(range(Some("'"), cell(0, 1), None)));
    assert_eq!(parse("'a''''b'!C3"), Ok(range(Some("a''b"), cell(2, 3), None)));
    assert_eq!(parse("'x!y:z'!A1"), Ok(range(Some("x!y:z"), cell(0, 1), None)));
    assert_eq!(parse("'2024'!B:B"), Ok(range(Some("2024"), col(1), Some(col(1)))));
    assert_eq!(parse("'Été ☀'!A1"), Ok(range(Some("Été ☀"), cell(0, 1), None)));
}

#[test]
fn bare_text_is_a_title_or_cells() {
    for title in ["Sheet1", "Results", "B", "ABCD1", "R1C1", "My Sheet", "Été"] {
        assert_eq!(parse(title), Ok(whole_sheet(title.to_string())), "{title}");
    }
    assert_eq!(parse("Sheet 1!a1"), Ok(range(Some("Sheet 1"), cell(0, 1), None)));
    assert_eq!(parse("abc12"), Ok(range(None, cell(730, 12), None)));
    assert_eq!(parse("A001"), Ok(range(None, cell(0, 1), None)));
}

#[test]
fn reversed_ranges_are_normalised() {
    assert_eq!(parse("C5:A1"), Ok(range(None, cell(0, 1), Some(cell(2, 5)))));
    assert_eq!(parse("D:B"), Ok(range(None, col(1), Some(col(3)))));
    assert_eq!(parse("9:2"), Ok(range(None, row(2), Some(row(9)))));
}

#[test]
fn rejections() {
    use A1ErrorKind::*;
    assert_eq!(kind(""), Empty);
    assert_eq!(kind("A0"), RowZero);
    assert_eq!(kind("Sheet1!B0:C4"), RowZero);
    assert_eq!(kind("0:3"), RowZero);
    assert_eq!(kind("'My Sheet!A1"), UnterminatedQuote);
    assert_eq!(kind("'It''s!A1"), UnterminatedQuote);
    assert_eq!(kind("'"), UnterminatedQuote);
    assert_eq!(kind("'a'b!A1"), AfterQuote);
    assert_eq!(kind("''!A1"), EmptySheetTitle);
    assert_eq!(kind("''"), EmptySheetTitle);
    assert_eq!(kind("!A1"), EmptySheetTitle);
    assert_eq!(kind("It's!A1"), UnquotedApostrophe);
    assert_eq!(kind("It's"), UnquotedApostrophe);
    assert_eq!(kind("Sheet1!"), NoCells);
    assert_eq!(kind("'My Sheet'!"), NoCells);
    assert_eq!(kind("A1:"), EmptySide);
    assert_eq!(kind(":B2"), EmptySide);
    assert_eq!(kind(":"), EmptySide);
    assert_eq!(kind("A1:B2:C3"), TooManyColons);
    assert_eq!(kind("1A"), Malformed("1A".into()));
    assert_eq!(kind("Sheet1!A1B"), Malformed("A1B".into()));
    assert_eq!(kind("A-1:B2"), Malformed("A-1".into()));
    assert_eq!(kind("A1:B 2"), Malformed("B 2".into()));
    assert_eq!(kind("Sheet1!$A$1"), Malformed("$A$1".into()));
    assert_eq!(kind("Sheet1!A1!B2"), Malformed("A1!B2".into()));
    assert_eq!(kind("Sheet1!b"), Incomplete("B".into()));
    assert_eq!(kind("Sheet1!7"), Incomplete("7".into()));
    assert_eq!(kind("7"), Incomplete("7".into()));
    assert_eq!(kind("A1:AAAA2"), ColumnTooLarge("AAAA".into()));
    assert_eq!(kind("Sheet1!XFDZ1"), ColumnTooLarge("XFDZ".into()));
    assert_eq!(kind("A4294967296"), RowTooLarge("4294967296".into()));
    assert!(parse("A4294967295").is_ok());
}

#[test]
fn error_messages_name_the_range_and_problem() {
    let msg = |s: &str| parse(s).map(|_| ()).unwrap_err().to_string();
    assert_eq!(msg("A0"), "invalid range `A0`: rows start at 1");
    assert_eq!(msg(""), "invalid range ``: the range is empty");
    assert_eq!(
        msg("'My Sheet!A1"),
        "invalid range `'My Sheet!A1`: the quoted sheet title has no closing `'`"
    );
    assert!(msg("A1:").starts_with("invalid range `A1:`: both sides of `:`"));
    assert!(msg("1A").contains("`1A` is not a cell"));
    assert_eq!(
        msg("Sheet1!AAAA1"),
        "invalid range `Sheet1!AAAA1`: column `AAAA` is past the last column `ZZZ` \
         (18,278 columns)"
    );
    assert!(msg("Sheet1!B").contains("`B:B`"));
}

#[test]
fn display_is_canonical_and_reparses() {
    for (text, canonical) in [
        ("Sheet1!A1:E10", "Sheet1!A1:E10"),
        ("Sheet1", "Sheet1"),
        ("sheet1!b:b", "sheet1!B:B"),
        ("a2:c", "A2:C"),
        ("C5", "C5"),
        ("'My Sheet'!A1", "'My Sheet'!A1"),
        ("'It''s'!A1:B2", "'It''s'!A1:B2"),
        ("Sheet1!2:4", "Sheet1!2:4"),
        ("My Sheet!A1", "'My Sheet'!A1"),
        ("'Sheet1'!ZZ9:AAA10", "Sheet1!ZZ9:AAA10"),
        ("'2024'", "'2024'"),
        ("C5:A1", "A1:C5"),
    ] {
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.to_string(), canonical, "{text}");
        assert_eq!(parse(canonical), Ok(parsed), "{canonical}");
    }
    assert_eq!("Sheet1!A1".parse::<A1Range>(), parse("Sheet1!A1"));
    assert_eq!(A1Range::parse("B2"), parse("B2"));
}

#[test]
fn whole_sheet_flag() {
    assert!(parse("Sheet1").unwrap().is_whole_sheet());
    assert!(parse("'A B'").unwrap().is_whole_sheet());
    assert!(!parse("Sheet1!A1").unwrap().is_whole_sheet());
    assert!(!parse("A:A").unwrap().is_whole_sheet());
}

#[test]
fn quoting_titles() {
    assert_eq!(quote_sheet_title("Sheet1"), "Sheet1");
    assert_eq!(quote_sheet_title("raw_data"), "raw_data");
    assert_eq!(quote_sheet_title("My Sheet"), "'My Sheet'");
    assert_eq!(quote_sheet_title("It's"), "'It''s'");
    assert_eq!(quote_sheet_title("a-b"), "'a-b'");
    assert_eq!(quote_sheet_title("Été"), "'Été'");
    assert_eq!(quote_sheet_title("2024"), "'2024'");
    assert_eq!(quote_sheet_title("A1"), "'A1'");
    assert_eq!(quote_sheet_title("xfd10"), "'xfd10'");
    assert_eq!(quote_sheet_title(""), "''");
    // Every quoted or plain title reads back as the same title.
    for title in ["Sheet1", "My Sheet", "It's", "''", "a!b", "2024", "A1", "x:y", "R1C1"] {
        assert_eq!(parse(&quote_sheet_title(title)), Ok(whole_sheet(title.into())), "{title}");
        let r = format!("{}!A1", quote_sheet_title(title));
        assert_eq!(parse(&r).map(|r| r.sheet), Ok(Some(title.to_string())), "{r}");
    }
}

#[test]
fn formatting_ranges() {
    assert_eq!(format_range("Sheet1", 0, 2, 4, 2), "Sheet1!A2:E2");
    assert_eq!(format_range("My Sheet", 0, 2, 4, 2), "'My Sheet'!A2:E2");
    assert_eq!(format_range("It's", 26, 1, 702, 100), "'It''s'!AA1:AAA100");
    assert_eq!(format_range("Sheet1", 2, 5, 2, 5), "Sheet1!C5");
    let r = parse(&format_range("My Sheet", 1, 3, 27, 9)).unwrap();
    assert_eq!(r, range(Some("My Sheet"), cell(1, 3), Some(cell(27, 9))));
}

#[test]
fn bounds_clamp_to_the_data() {
    let b = |s: &str, rows, cols| parse(s).unwrap().bounds(rows, cols);
    let bounds = |first_row, last_row, first_col, last_col| {
        Some(Bounds { first_row, last_row, first_col, last_col })
    };
    // A 10-row, 5-column sheet (A1:E10).
    assert_eq!(b("Sheet1", 10, 5), bounds(1, 10, 0, 4));
    assert_eq!(b("Sheet1!A1:E10", 10, 5), bounds(1, 10, 0, 4));
    assert_eq!(b("Sheet1!A1:Z1000", 10, 5), bounds(1, 10, 0, 4));
    assert_eq!(b("Sheet1!B:B", 10, 5), bounds(1, 10, 1, 1));
    assert_eq!(b("A2:C", 10, 5), bounds(2, 10, 0, 2));
    assert_eq!(b("A2:C4", 10, 5), bounds(2, 4, 0, 2));
    assert_eq!(b("C5", 10, 5), bounds(5, 5, 2, 2));
    assert_eq!(b("Sheet1!2:4", 10, 5), bounds(2, 4, 0, 4));
    assert_eq!(b("D8:ZZZ", 10, 5), bounds(8, 10, 3, 4));
    assert_eq!(b("A:C5", 10, 5), bounds(1, 5, 0, 2));
    assert_eq!(b("B3:2", 10, 5), bounds(2, 3, 1, 4));
    // Outside the data, or no data at all.
    assert_eq!(b("A11", 10, 5), None);
    assert_eq!(b("F1:G3", 10, 5), None);
    assert_eq!(b("12:14", 10, 5), None);
    assert_eq!(b("Sheet1", 0, 0), None);
    assert_eq!(b("Sheet1", 3, 0), None);
    // Reversed corners built by hand are put in order.
    let reversed = range(None, cell(3, 6), Some(cell(1, 2)));
    assert_eq!(reversed.bounds(10, 5), bounds(2, 6, 1, 3));
}

#[test]
fn bounds_slice_values() {
    let values: Vec<Vec<u32>> = (0..10).map(|r| (0..5).map(|c| r * 10 + c).collect()).collect();
    let got: Option<Vec<Vec<u32>>> = parse("B2:C3")
        .unwrap()
        .bounds(10, 5)
        .map(|b| values[b.row_indices()].iter().map(|row| row[b.col_indices()].to_vec()).collect());
    assert_eq!(got, Some(vec![vec![11, 12], vec![21, 22]]));
    let whole = parse("Sheet1").unwrap().bounds(10, 5).unwrap();
    assert_eq!((whole.row_indices(), whole.col_indices()), (0..10, 0..5));
}
