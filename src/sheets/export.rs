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
//! string. CSV has no such distinction, so a spreadsheet program opening the CSV may still
//! evaluate a value that starts with `=`, `+`, `-` or `@`; the CSV is left exact (it
//! round-trips) rather than altered to prevent that.

use rust_xlsxwriter::{Color, Format, FormatPattern, Workbook, Worksheet, XlsxError};

use super::a1::column_name;

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
/// likelihoods are not exported. Short rows are padded with empty fields to the widest
/// row, so every record has the same number of fields.
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
        let values = row.iter().map(|cell| cell.value.as_str());
        let padding = std::iter::repeat_n("", width - row.len());
        writer.write_record(values.chain(padding))?;
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
mod tests {
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
            row(&["'quote", "=1+1", " padded ", "\"\""]),
        ];
        let bytes = to_csv(&rows).unwrap();
        assert_eq!(read_csv(&bytes), values(&rows));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("name,note,amount,city\r\n"), "{text}");
        assert!(text.contains("\"Smith, John\",\"said \"\"hi\"\"\",12.50,Zürich\r\n"), "{text}");
        assert!(text.contains("\"multi\nline\""), "{text}");
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
        assert_eq!(
            err.to_string(),
            "cell B2 has 32768 characters; an XLSX cell holds at most 32,767"
        );
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
}
