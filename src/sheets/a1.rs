//! A1 notation, as the Google Sheets API accepts it in `spreadsheets.values.get` and
//! `spreadsheets.values.append`.
//!
//! A range is an optional sheet title followed by `!` and cells, or a sheet title alone:
//!
//! | text              | meaning                                                   |
//! | ----------------- | --------------------------------------------------------- |
//! | `Sheet1`          | every cell of `Sheet1`                                    |
//! | `Sheet1!A1:E10`   | a rectangle                                               |
//! | `Sheet1!B:B`      | the whole of column B                                     |
//! | `Sheet1!2:4`      | the whole of rows 2 to 4                                  |
//! | `A2:C`            | columns A to C from row 2 down (open-ended), first sheet  |
//! | `C5`              | one cell of the first sheet                               |
//! | `'My Sheet'!A1`   | a quoted title; a `'` inside it is doubled: `'It''s'!A1`  |
//!
//! Columns are 0-based indexes (`A` = 0, `Z` = 25, `AA` = 26) and rows are 1-based, as
//! in the Sheets API. Column letters are case-insensitive. The last column is `ZZZ`
//! ([`MAX_COLUMNS`] = 18,278 columns), the widest grid Google Sheets allows; anything past
//! it is rejected. Rows go up to `u32::MAX`.
//!
//! Without a `!`, unquoted text is read as cells when it contains `:`, starts with a digit
//! or is one to three letters followed by digits (`C5`, `AAA12`); otherwise it is a sheet
//! title (`Sheet1`, `Results`). So a title that starts with a digit or looks like a cell
//! must be quoted (`'2024'`, `'A1'`), which [`quote_sheet_title`] does. A reversed
//! rectangle (`C5:A1`) is normalised (`A1:C5`), as the Sheets API does.

use std::fmt;
use std::str::FromStr;

/// The number of columns a range may address: `A` to `ZZZ` (26 + 26² + 26³ = 18,278), the
/// widest grid Google Sheets allows. Column indexes run from 0 to `MAX_COLUMNS - 1`.
pub const MAX_COLUMNS: u32 = 18_278;

/// Longest run of column letters a column name can have (`ZZZ`).
const MAX_COLUMN_LETTERS: usize = 3;

/// One end of a range: a cell (`C5`), a whole column (`C`) or a whole row (`5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CellRef {
    /// 0-based column index (`A` = 0); `None` when the reference names a whole row.
    pub col: Option<u32>,
    /// 1-based row number; `None` when the reference names a whole column.
    pub row: Option<u32>,
}

impl CellRef {
    /// A single cell: 0-based column, 1-based row.
    pub fn cell(col: u32, row: u32) -> Self {
        Self { col: Some(col), row: Some(row) }
    }
}

impl fmt::Display for CellRef {
    /// Writes the reference in A1 form: `C5`, `C` or `5` (empty when both parts are open).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(col) = self.col {
            f.write_str(&column_name(col))?;
        }
        if let Some(row) = self.row {
            write!(f, "{row}")?;
        }
        Ok(())
    }
}

/// A parsed A1 range.
///
/// - a whole sheet (`Sheet1`): `start` has neither column nor row and `end` is `None`;
/// - one cell (`C5`): `start` is the cell and `end` is `None`;
/// - a range (`A2:C`, `B:B`, `2:4`, `A1:E10`): `start` and `end` are its two corners, an
///   absent column or row meaning that side is open (to the first or last column or row
///   of the data).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct A1Range {
    /// The sheet title, unquoted (`It's` for `'It''s'!A1`); `None` means the first sheet.
    pub sheet: Option<String>,
    /// The first corner, or the single cell.
    pub start: CellRef,
    /// The second corner; `None` for a single cell or a whole sheet.
    pub end: Option<CellRef>,
}

/// The part of a sheet's data that a range covers, clamped to the data: rows are 1-based
/// and columns 0-based, both inclusive. Built by [`A1Range::bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bounds {
    /// First row covered (1-based, at least 1).
    pub first_row: u32,
    /// Last row covered (1-based, inclusive, at least `first_row`).
    pub last_row: u32,
    /// First column covered (0-based).
    pub first_col: u32,
    /// Last column covered (0-based, inclusive, at least `first_col`).
    pub last_col: u32,
}

impl Bounds {
    /// The covered rows as 0-based indexes into a `Vec` of rows (row 1 is index 0), ready
    /// for slicing.
    pub fn row_indices(&self) -> std::ops::Range<usize> {
        (self.first_row as usize - 1)..(self.last_row as usize)
    }

    /// The covered columns as 0-based indexes into a row, ready for slicing.
    pub fn col_indices(&self) -> std::ops::Range<usize> {
        (self.first_col as usize)..(self.last_col as usize + 1)
    }
}

impl A1Range {
    /// Parses A1 notation; same as [`parse`].
    pub fn parse(s: &str) -> Result<Self, A1Error> {
        parse(s)
    }

    /// Whether the range names a whole sheet (`Sheet1`), with no cells.
    pub fn is_whole_sheet(&self) -> bool {
        self.start == CellRef::default() && self.end.is_none()
    }

    /// Resolves the range against a sheet holding `rows` rows and `cols` columns of data:
    /// open ends (`A2:C`, `B:B`, `2:4`, a whole sheet) extend to the last row or column of
    /// the data, and every end is clamped to it. `None` when the range covers no data (an
    /// empty sheet, or a range wholly below or to the right of the data).
    pub fn bounds(&self, rows: u32, cols: u32) -> Option<Bounds> {
        if rows == 0 || cols == 0 {
            return None;
        }
        let end = self.end.unwrap_or(self.start);
        let (first_row, last_row) = axis(self.start.row, end.row, 1, rows);
        let (first_col, last_col) = axis(self.start.col, end.col, 0, cols - 1);
        let last_row = last_row.min(rows);
        let last_col = last_col.min(cols - 1);
        (first_row <= last_row && first_col <= last_col).then_some(Bounds {
            first_row,
            last_row,
            first_col,
            last_col,
        })
    }
}

/// One axis of [`A1Range::bounds`]: an absent start is `lowest`, an absent end is
/// `highest`, and two given ends are put in order.
fn axis(start: Option<u32>, end: Option<u32>, lowest: u32, highest: u32) -> (u32, u32) {
    match (start, end) {
        (Some(a), Some(b)) => (a.min(b), a.max(b)),
        (Some(a), None) => (a, highest),
        (None, Some(b)) => (lowest, b),
        (None, None) => (lowest, highest),
    }
}

impl fmt::Display for A1Range {
    /// Writes the range in canonical A1 form: the title quoted when needed, column
    /// letters upper-case, e.g. `'My Sheet'!A1:C`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells = match self.end {
            Some(end) => format!("{}:{end}", self.start),
            None => self.start.to_string(),
        };
        match (&self.sheet, cells.is_empty()) {
            (Some(sheet), true) => f.write_str(&quote_sheet_title(sheet)),
            (Some(sheet), false) => write!(f, "{}!{cells}", quote_sheet_title(sheet)),
            (None, _) => f.write_str(&cells),
        }
    }
}

impl FromStr for A1Range {
    type Err = A1Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// A range that is not valid A1 notation. Its `Display` names the range and the problem,
/// e.g. ``invalid range `A0`: rows start at 1``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid range `{range}`: {kind}")]
pub struct A1Error {
    /// The range as given.
    pub range: String,
    /// What is wrong with it.
    pub kind: A1ErrorKind,
}

/// What is wrong with a range; see [`A1Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum A1ErrorKind {
    /// The range is the empty string.
    #[error("the range is empty")]
    Empty,
    /// A quoted sheet title has no closing quote (`'My Sheet!A1`).
    #[error("the quoted sheet title has no closing `'`")]
    UnterminatedQuote,
    /// A closing quote is followed by something other than `!` (`'a'b!A1`).
    #[error("a quoted sheet title must be followed by `!` or end the range")]
    AfterQuote,
    /// The sheet title is empty (`!A1`, `''!A1`).
    #[error("the sheet title is empty")]
    EmptySheetTitle,
    /// An unquoted sheet title contains `'` (`It's!A1`).
    #[error("a sheet title containing `'` must be quoted, with the `'` doubled: `'It''s'!A1`")]
    UnquotedApostrophe,
    /// Nothing follows the `!` (`Sheet1!`).
    #[error("no cells follow `!`")]
    NoCells,
    /// More than one `:` (`A1:B2:C3`).
    #[error("a range has at most one `:`")]
    TooManyColons,
    /// One side of the `:` is empty (`A1:`, `:B2`).
    #[error("both sides of `:` must name a cell, column or row")]
    EmptySide,
    /// A side is not letters followed by digits (`1A`, `A1B`, `A-1`).
    #[error("`{0}` is not a cell (`C5`), column (`C`) or row (`5`): letters come before digits")]
    Malformed(String),
    /// A lone column or row with no `:` (`Sheet1!B`); whole columns and rows are ranges.
    #[error("`{0}` alone is not a cell; write a whole column or row as a range, e.g. `{0}:{0}`")]
    Incomplete(String),
    /// Row 0 (`A0`).
    #[error("rows start at 1")]
    RowZero,
    /// A row number that does not fit in 32 bits.
    #[error("row `{0}` is too large")]
    RowTooLarge(String),
    /// A column past `ZZZ` (`AAAA1`).
    #[error("column `{0}` is past the last column `ZZZ` (18,278 columns)")]
    ColumnTooLarge(String),
}

/// Parses a range in A1 notation (see the module documentation for the accepted forms).
pub fn parse(s: &str) -> Result<A1Range, A1Error> {
    parse_inner(s).map_err(|kind| A1Error { range: s.to_string(), kind })
}

fn parse_inner(s: &str) -> Result<A1Range, A1ErrorKind> {
    if s.is_empty() {
        return Err(A1ErrorKind::Empty);
    }
    if let Some(quoted) = s.strip_prefix('\'') {
        let (title, rest) = unquote(quoted)?;
        if title.is_empty() {
            return Err(A1ErrorKind::EmptySheetTitle);
        }
        return match rest.strip_prefix('!') {
            Some(cells) => with_cells(Some(title), cells),
            None if rest.is_empty() => Ok(whole_sheet(title)),
            None => Err(A1ErrorKind::AfterQuote),
        };
    }
    match s.split_once('!') {
        Some((title, cells)) => {
            if title.is_empty() {
                return Err(A1ErrorKind::EmptySheetTitle);
            }
            if title.contains('\'') {
                return Err(A1ErrorKind::UnquotedApostrophe);
            }
            with_cells(Some(title.to_string()), cells)
        }
        None if reads_as_cells(s) => with_cells(None, s),
        None if s.contains('\'') => Err(A1ErrorKind::UnquotedApostrophe),
        None => Ok(whole_sheet(s.to_string())),
    }
}

/// Reads a quoted title after its opening `'`: returns the title with `''` undoubled and
/// the text after the closing quote.
fn unquote(s: &str) -> Result<(String, &str), A1ErrorKind> {
    let mut title = String::new();
    let mut rest = s;
    loop {
        let Some(at) = rest.find('\'') else {
            return Err(A1ErrorKind::UnterminatedQuote);
        };
        title.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        match rest.strip_prefix('\'') {
            Some(after) => {
                title.push('\'');
                rest = after;
            }
            None => return Ok((title, rest)),
        }
    }
}

fn whole_sheet(title: String) -> A1Range {
    A1Range { sheet: Some(title), start: CellRef::default(), end: None }
}

/// Whether unquoted text with no `!` is cells rather than a sheet title: it contains `:`,
/// starts with a digit, or is one to three ASCII letters followed by ASCII digits.
fn reads_as_cells(s: &str) -> bool {
    if s.contains(':') || s.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    let letters = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let digits = &s[letters..];
    (1..=MAX_COLUMN_LETTERS).contains(&letters)
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
}

fn with_cells(sheet: Option<String>, cells: &str) -> Result<A1Range, A1ErrorKind> {
    if cells.is_empty() {
        return Err(A1ErrorKind::NoCells);
    }
    let mut sides = cells.split(':');
    let first = sides.next().unwrap_or_default();
    let second = sides.next();
    if sides.next().is_some() {
        return Err(A1ErrorKind::TooManyColons);
    }
    match second {
        None => {
            let start = parse_side(first)?;
            if start.col.is_none() || start.row.is_none() {
                return Err(A1ErrorKind::Incomplete(first.to_ascii_uppercase()));
            }
            Ok(A1Range { sheet, start, end: None })
        }
        Some(second) => {
            let mut start = parse_side(first)?;
            let mut end = parse_side(second)?;
            if let (Some(a), Some(b)) = (start.col, end.col) {
                start.col = Some(a.min(b));
                end.col = Some(a.max(b));
            }
            if let (Some(a), Some(b)) = (start.row, end.row) {
                start.row = Some(a.min(b));
                end.row = Some(a.max(b));
            }
            Ok(A1Range { sheet, start, end: Some(end) })
        }
    }
}

/// One side of a range: letters (a column), digits (a row) or both (a cell).
fn parse_side(side: &str) -> Result<CellRef, A1ErrorKind> {
    if side.is_empty() {
        return Err(A1ErrorKind::EmptySide);
    }
    let letters = side.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (col_text, row_text) = side.split_at(letters);
    if !row_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(A1ErrorKind::Malformed(side.to_string()));
    }
    let col = if col_text.is_empty() {
        None
    } else {
        let index = column_index(col_text)
            .ok_or_else(|| A1ErrorKind::ColumnTooLarge(col_text.to_ascii_uppercase()))?;
        Some(index)
    };
    let row = if row_text.is_empty() {
        None
    } else {
        let row: u32 =
            row_text.parse().map_err(|_| A1ErrorKind::RowTooLarge(row_text.to_string()))?;
        if row == 0 {
            return Err(A1ErrorKind::RowZero);
        }
        Some(row)
    };
    Ok(CellRef { col, row })
}

/// The letters of a 0-based column index: 0 → `A`, 25 → `Z`, 26 → `AA`, 701 → `ZZ`,
/// 702 → `AAA`. Defined for every `u32`, even past [`MAX_COLUMNS`].
pub fn column_name(index: u32) -> String {
    let mut letters = Vec::new();
    let mut n = u64::from(index) + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        // rem < 26, so the cast cannot truncate.
        letters.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    letters.into_iter().map(char::from).collect()
}

/// The 0-based index of a column name, case-insensitive: `A` → 0, `aa` → 26, `ZZZ` →
/// 18,277. `None` for an empty name, anything but ASCII letters, or a column past `ZZZ`
/// ([`MAX_COLUMNS`]).
pub fn column_index(name: &str) -> Option<u32> {
    if name.is_empty() || name.len() > MAX_COLUMN_LETTERS {
        return None;
    }
    let mut n: u32 = 0;
    for b in name.bytes() {
        if !b.is_ascii_alphabetic() {
            return None;
        }
        n = n * 26 + u32::from(b.to_ascii_uppercase() - b'A') + 1;
    }
    (n <= MAX_COLUMNS).then(|| n - 1)
}

/// A sheet title as it must be written in A1 notation: as is when it is made only of ASCII
/// letters, digits and `_`, does not start with a digit and would not read as a cell
/// (`C5`); otherwise in single quotes with each `'` doubled (`'My Sheet'`, `'It''s'`,
/// `'2024'`, `'A1'`).
pub fn quote_sheet_title(title: &str) -> String {
    let plain = !title.is_empty()
        && title.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !reads_as_cells(title);
    if plain {
        title.to_string()
    } else {
        format!("'{}'", title.replace('\'', "''"))
    }
}

/// A rectangle in A1 notation with its sheet title, as the Sheets API reports one
/// (`updatedRange`, `tableRange`): columns are 0-based, rows 1-based, both inclusive.
/// `format_range("Sheet1", 0, 2, 4, 2)` is `Sheet1!A2:E2` and `format_range("My Sheet", 0,
/// 2, 4, 2)` is `'My Sheet'!A2:E2`; a single cell is written once (`Sheet1!C5`).
pub fn format_range(
    sheet: &str,
    first_col: u32,
    first_row: u32,
    last_col: u32,
    last_row: u32,
) -> String {
    let title = quote_sheet_title(sheet);
    let start = CellRef::cell(first_col, first_row);
    let end = CellRef::cell(last_col, last_row);
    if start == end {
        format!("{title}!{start}")
    } else {
        format!("{title}!{start}:{end}")
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(
            parse("Sheet1!Z1:AA2"),
            Ok(range(Some("Sheet1"), cell(25, 1), Some(cell(26, 2))))
        );
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
        let got: Option<Vec<Vec<u32>>> = parse("B2:C3").unwrap().bounds(10, 5).map(|b| {
            values[b.row_indices()].iter().map(|row| row[b.col_indices()].to_vec()).collect()
        });
        assert_eq!(got, Some(vec![vec![11, 12], vec![21, 22]]));
        let whole = parse("Sheet1").unwrap().bounds(10, 5).unwrap();
        assert_eq!((whole.row_indices(), whole.col_indices()), (0..10, 0..5));
    }
}
