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
#[path = "a1_tests.rs"]
mod tests;
