//! Exports of one worksheet: CSV (RFC 4180) and XLSX.
//!
//! A worksheet is given as rows of [`Cell`]s, the first row being the header. Rows may be
//! ragged: CSV pads them with empty fields to the widest row, XLSX leaves the cells blank.
//!
//! In the XLSX workbook the header row is bold and frozen, text stays text, and a value
//! that is the plain decimal form of a number (`42`, `-3.5`; see [`xlsx_number`]) is
//! written as a number. A cell that carries a likelihood is filled by [`Confidence`]:
//! green at [`HIGH_CONFIDENCE`] or above, amber at [`MEDIUM_CONFIDENCE`] or above, red
//! below; when any cell has one, a second worksheet named `Legend` explains the colours.
//!
//! Values are written as data, never as formulas: in XLSX a value such as `=1+1` is a
//! string, written exactly. CSV has no such distinction, so there a value that starts like
//! a formula gets a leading `'` (see [`csv_field`]), and numbers stay as they are.

use rust_xlsxwriter::{Color, Format, FormatPattern, Workbook, Worksheet, XlsxError};

use super::a1::column_name;
use super::formula::csv_field;

/// Likelihood from which a cell is filled green ([`Confidence::High`]).
pub const HIGH_CONFIDENCE: f64 = 0.9;
/// Likelihood from which a cell is filled amber ([`Confidence::Medium`]); below it, red.
pub const MEDIUM_CONFIDENCE: f64 = 0.6;

/// Most rows an XLSX worksheet holds (Excel's limit), header included.
pub const XLSX_MAX_ROWS: usize = 1_048_576;
/// Most columns an XLSX worksheet holds (Excel's limit, `A` to `XFD`).
pub const XLSX_MAX_COLUMNS: usize = 16_384;
/// Most characters an XLSX cell holds (Excel's limit).
pub const XLSX_MAX_CELL_CHARS: usize = 32_767;

/// Name of the worksheet that explains the fills, when there are any.
const LEGEND_SHEET: &str = "Legend";
/// Name of the legend worksheet when the data worksheet is itself called `Legend`.
const LEGEND_SHEET_ALT: &str = "Likelihood legend";
/// Most characters in an XLSX worksheet name (Excel's limit).
const MAX_SHEET_NAME_CHARS: usize = 31;

/// One cell of a worksheet: its value as text and, when the sink stored one, the
/// likelihood (confidence, 0 to 1) that the value is right.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cell {
    /// The value as stored (scalars as their text, other JSON values as JSON text).
    pub value: String,
    /// Confidence in the value, from 0 to 1; `None` when none was given.
    pub likelihood: Option<f64>,
}

impl Cell {
    /// A cell with a value and no likelihood.
    pub fn new(value: impl Into<String>) -> Self {
        Self { value: value.into(), likelihood: None }
    }

    /// A cell with a value and a likelihood.
    pub fn with_likelihood(value: impl Into<String>, likelihood: f64) -> Self {
        Self { value: value.into(), likelihood: Some(likelihood) }
    }
}

/// How confident a likelihood is, which decides a cell's fill in XLSX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confidence {
    /// At least [`HIGH_CONFIDENCE`] (0.9): green.
    High,
    /// At least [`MEDIUM_CONFIDENCE`] (0.6) and below 0.9: amber.
    Medium,
    /// Below [`MEDIUM_CONFIDENCE`] (0.6): red.
    Low,
}

impl Confidence {
    /// Every level, from high to low.
    pub const ALL: [Confidence; 3] = [Confidence::High, Confidence::Medium, Confidence::Low];

    /// The level of a likelihood; `None` for NaN, which gets no fill. Values above 1 count
    /// as high and values below 0 as low.
    pub fn of(likelihood: f64) -> Option<Self> {
        if likelihood.is_nan() {
            None
        } else if likelihood >= HIGH_CONFIDENCE {
            Some(Self::High)
        } else if likelihood >= MEDIUM_CONFIDENCE {
            Some(Self::Medium)
        } else {
            Some(Self::Low)
        }
    }

    /// The fill colour as `0xRRGGBB`: Excel's "Good", "Neutral" and "Bad" fills.
    pub fn fill_rgb(self) -> u32 {
        match self {
            Self::High => 0xC6EFCE,
            Self::Medium => 0xFFEB9C,
            Self::Low => 0xFFC7CE,
        }
    }

    /// The colour's name, as the legend shows it.
    pub fn colour_name(self) -> &'static str {
        match self {
            Self::High => "Green",
            Self::Medium => "Amber",
            Self::Low => "Red",
        }
    }

    /// The likelihoods the level covers, as the legend shows them.
    pub fn range_text(self) -> &'static str {
        match self {
            Self::High => "0.9 or more",
            Self::Medium => "0.6 to below 0.9",
            Self::Low => "below 0.6",
        }
    }

    /// What the level means, as the legend shows it.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::High => "High confidence",
            Self::Medium => "Check: medium confidence",
            Self::Low => "Review: low confidence",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::High => 0,
            Self::Medium => 1,
            Self::Low => 2,
        }
    }
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The CSV writer failed.
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    /// The XLSX writer failed.
    #[error("writing XLSX: {0}")]
    Xlsx(#[from] XlsxError),
    /// More rows than an XLSX worksheet holds.
    #[error("the worksheet has {rows} rows; an XLSX worksheet holds at most 1,048,576")]
    TooManyRows {
        /// Rows in the worksheet, header included.
        rows: usize,
    },
    /// More columns than an XLSX worksheet holds.
    #[error("the worksheet has {columns} columns; an XLSX worksheet holds at most 16,384")]
    TooManyColumns {
        /// Columns in the widest row.
        columns: usize,
    },
    /// A value longer than an XLSX cell holds.
    #[error("cell {cell} has {chars} characters; an XLSX cell holds at most 32,767")]
    CellTooLong {
        /// The cell in A1 notation, e.g. `C5`.
        cell: String,
        /// Characters in its value.
        chars: usize,
    },
}

/// The worksheet as CSV (RFC 4180: fields quoted when they hold a comma, quote, CR or LF,
/// quotes doubled, CRLF line ends), UTF-8 without a byte-order mark. Values only:
/// likelihoods are not exported. A value (header included) that a spreadsheet program
/// would run as a formula is written with a leading `'` ([`csv_field`]). Short rows are
/// padded with empty fields to the widest row, so every record has the same number of
/// fields.
pub fn to_csv(rows: &[Vec<Cell>]) -> Result<Vec<u8>, ExportError> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return Ok(Vec::new());
    }
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    for row in rows {
        for cell in row {
            writer.write_field(csv_field(&cell.value).as_bytes())?;
        }
        for _ in row.len()..width {
            writer.write_field("")?;
        }
        // An empty record ends the one whose fields were written above.
        writer.write_record(None::<&[u8]>)?;
    }
    writer.into_inner().map_err(|e| ExportError::Csv(e.into_error().into()))
}

/// The worksheet as an XLSX workbook: one worksheet titled after `sheet_title` (made a
/// valid Excel name, see [`xlsx_sheet_name`]) holding the rows, the first row bold and
/// frozen; cells with a likelihood filled by [`Confidence`]; and, when any cell has a
/// likelihood, a `Legend` worksheet explaining the colours. Fails with a clear error past
/// Excel's limits ([`XLSX_MAX_ROWS`], [`XLSX_MAX_COLUMNS`], [`XLSX_MAX_CELL_CHARS`]).
pub fn to_xlsx(sheet_title: &str, rows: &[Vec<Cell>]) -> Result<Vec<u8>, ExportError> {
    check_xlsx_limits(rows)?;
    let styles = Styles::new();
    let mut workbook = Workbook::new();
    let name = xlsx_sheet_name(sheet_title);
    let data = workbook.add_worksheet();
    data.set_name(&name)?;
    let mut any_likelihood = false;
    for (r, row) in (0u32..).zip(rows) {
        let header = r == 0;
        for (c, cell) in (0u16..).zip(row) {
            let level = cell.likelihood.and_then(Confidence::of);
            any_likelihood |= level.is_some();
            write_cell(data, r, c, &cell.value, styles.get(header, level))?;
        }
    }
    if !rows.is_empty() {
        data.set_freeze_panes(1, 0)?;
    }
    if any_likelihood {
        let legend_name =
            if name.eq_ignore_ascii_case(LEGEND_SHEET) { LEGEND_SHEET_ALT } else { LEGEND_SHEET };
        write_legend(workbook.add_worksheet(), legend_name, &styles)?;
    }
    Ok(workbook.save_to_buffer()?)
}

fn check_xlsx_limits(rows: &[Vec<Cell>]) -> Result<(), ExportError> {
    if rows.len() > XLSX_MAX_ROWS {
        return Err(ExportError::TooManyRows { rows: rows.len() });
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    if columns > XLSX_MAX_COLUMNS {
        return Err(ExportError::TooManyColumns { columns });
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            // Only long values can be over the limit; count characters only for those.
            if cell.value.len() > XLSX_MAX_CELL_CHARS {
                let chars = cell.value.chars().count();
                if chars > XLSX_MAX_CELL_CHARS {
                    // Both indexes are within Excel's limits, checked above.
                    let cell = format!("{}{}", column_name(c as u32), r + 1);
                    return Err(ExportError::CellTooLong { cell, chars });
                }
            }
        }
    }
    Ok(())
}

/// Writes one value: blank when empty (kept only for its fill), a number when it is the
/// plain form of one, text otherwise.
fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    value: &str,
    format: Option<&Format>,
) -> Result<(), XlsxError> {
    match (value.is_empty(), xlsx_number(value), format) {
        (true, _, None) => {}
        (true, _, Some(format)) => {
            sheet.write_blank(row, col, format)?;
        }
        (false, Some(n), None) => {
            sheet.write_number(row, col, n)?;
        }
        (false, Some(n), Some(format)) => {
            sheet.write_number_with_format(row, col, n, format)?;
        }
        (false, None, None) => {
            sheet.write_string(row, col, value)?;
        }
        (false, None, Some(format)) => {
            sheet.write_string_with_format(row, col, value, format)?;
        }
    }
    Ok(())
}

/// The legend: a header, then one filled swatch per confidence level with its range and
/// meaning, and a note on unfilled cells.
fn write_legend(sheet: &mut Worksheet, name: &str, styles: &Styles) -> Result<(), XlsxError> {
    sheet.set_name(name)?;
    for (c, title) in (0u16..).zip(["Fill", "Likelihood", "Meaning"]) {
        sheet.write_string_with_format(0, c, title, &styles.bold)?;
    }
    for (r, level) in (1u32..).zip(Confidence::ALL) {
        sheet.write_string_with_format(r, 0, level.colour_name(), &styles.fills[level.index()])?;
        sheet.write_string(r, 1, level.range_text())?;
        sheet.write_string(r, 2, level.meaning())?;
    }
    sheet.write_string(4, 0, "No fill")?;
    sheet.write_string(4, 1, "none given")?;
    sheet.write_string(4, 2, "No likelihood was stored for the value")?;
    sheet.set_column_width(0, 10)?;
    sheet.set_column_width(1, 18)?;
    sheet.set_column_width(2, 38)?;
    Ok(())
}

/// The formats a worksheet uses: bold for the header, a fill per confidence level, and
/// both together for a header cell with a likelihood.
struct Styles {
    bold: Format,
    fills: [Format; 3],
    bold_fills: [Format; 3],
}

impl Styles {
    fn new() -> Self {
        let fill = |level: Confidence| {
            Format::new()
                .set_pattern(FormatPattern::Solid)
                .set_background_color(Color::RGB(level.fill_rgb()))
        };
        Self {
            bold: Format::new().set_bold(),
            fills: Confidence::ALL.map(fill),
            bold_fills: Confidence::ALL.map(|level| fill(level).set_bold()),
        }
    }

    fn get(&self, header: bool, level: Option<Confidence>) -> Option<&Format> {
        match (header, level) {
            (false, None) => None,
            (true, None) => Some(&self.bold),
            (false, Some(level)) => Some(&self.fills[level.index()]),
            (true, Some(level)) => Some(&self.bold_fills[level.index()]),
        }
    }
}

/// The number a value is written as in XLSX, if it is one: the value must be exactly how
/// the number prints (`42`, `-3.5`, `0.25`), with at most 15 digits, so that Excel shows
/// it unchanged. Anything else stays text: `007`, `1.50`, `+1`, `1e3`, `.5`, `-0`,
/// `1 000`, `NaN`, long identifiers such as `12345678901234567890`.
pub fn xlsx_number(value: &str) -> Option<f64> {
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    if digits == 0 || digits > 15 {
        return None;
    }
    let n: f64 = value.parse().ok()?;
    (n.is_finite() && n.to_string() == value && !(n == 0.0 && n.is_sign_negative())).then_some(n)
}

/// A worksheet title made a valid XLSX worksheet name: `[ ] : * ? / \` become `_`, a
/// leading or trailing `'` becomes `_`, the name is cut to 31 characters, an empty title
/// becomes `Sheet1` and Excel's reserved `History` becomes `History_`.
pub fn xlsx_sheet_name(title: &str) -> String {
    let mut name: String = title
        .chars()
        .map(|c| if matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\') { '_' } else { c })
        .take(MAX_SHEET_NAME_CHARS)
        .collect();
    if name.starts_with('\'') {
        name.replace_range(..1, "_");
    }
    if name.ends_with('\'') {
        name.pop();
        name.push('_');
    }
    if name.is_empty() {
        return "Sheet1".to_string();
    }
    if name.eq_ignore_ascii_case("History") {
        name.push('_');
    }
    name
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
