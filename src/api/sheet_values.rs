//! Reading a worksheet back: `GET /v1/spreadsheets/{id}/values/{range}` (the Sheets API's
//! `{range, majorDimension, values}`) and `GET /v1/spreadsheets/{id}/export?format=csv|xlsx`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiQuery, NoQuery, QueryParams};
use super::sheets::spreadsheet_id;
use super::{ApiError, ApiResult, AppState};
use crate::sheets::a1::{format_range, A1Range};
use crate::sheets::export::{to_csv, to_xlsx, Cell};
use crate::store::{Spreadsheet, Worksheet};

/// All rows of a worksheet, header first, each padded to the header's width.
async fn grid(
    state: &AppState,
    spreadsheet: &Spreadsheet,
    sheet: &Worksheet,
) -> ApiResult<Vec<Vec<Cell>>> {
    if sheet.last_row == 0 {
        return Ok(Vec::new());
    }
    let width = sheet.header.len();
    let mut rows = Vec::with_capacity(sheet.last_row as usize);
    rows.push(sheet.header.iter().map(|h| Cell::new(h.clone())).collect());
    let stored =
        state.store.sheet_rows(spreadsheet.id.clone(), sheet.sheet_id, 2, sheet.last_row).await?;
    for row in stored {
        let mut cells: Vec<Cell> = Vec::with_capacity(width);
        for (i, value) in row.cells.into_iter().enumerate() {
            let likelihood = row.likelihoods.as_ref().and_then(|l| l.get(i).copied().flatten());
            cells.push(Cell { value, likelihood });
        }
        cells.resize_with(width, || Cell::new(""));
        rows.push(cells);
    }
    Ok(rows)
}

fn worksheet<'a>(
    spreadsheet: &'a Spreadsheet,
    title: Option<&str>,
    id: Option<u32>,
) -> ApiResult<&'a Worksheet> {
    let found = match (title, id) {
        (Some(t), _) => spreadsheet.worksheets.iter().find(|w| w.title == t),
        (None, Some(i)) => spreadsheet.worksheets.iter().find(|w| w.sheet_id == i),
        (None, None) => spreadsheet.worksheets.first(),
    };
    found.ok_or_else(|| ApiError::not_found("worksheet"))
}

pub(super) async fn values(
    State(state): State<AppState>,
    Path((id, range)): Path<(String, String)>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    let id = spreadsheet_id(id)?;
    let parsed = A1Range::parse(&range).map_err(|e| ApiError::invalid("range", e.to_string()))?;
    let spreadsheet = state.store.spreadsheet(id).await?;
    let sheet = worksheet(&spreadsheet, parsed.sheet.as_deref(), None)?;
    let width = sheet.header.len() as u32;
    let Some(bounds) = parsed.bounds(sheet.last_row, width) else {
        let empty_range =
            format!("{}!{}", crate::sheets::a1::quote_sheet_title(&sheet.title), parsed.start);
        return Ok(Json(json!({"range": empty_range, "majorDimension": "ROWS", "values": []})));
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    if bounds.first_row == 1 {
        rows.push(sheet.header.clone());
    }
    let first_data = bounds.first_row.max(2);
    if bounds.last_row >= first_data {
        for row in state
            .store
            .sheet_rows(spreadsheet.id.clone(), sheet.sheet_id, first_data, bounds.last_row)
            .await?
        {
            rows.push(row.cells);
        }
    }
    // As Google does: only the covered columns, trailing empty cells dropped.
    let values: Vec<Vec<String>> = rows
        .into_iter()
        .map(|mut r| {
            r.resize(width as usize, String::new());
            let mut cut: Vec<String> = r[bounds.col_indices()].to_vec();
            while cut.last().is_some_and(String::is_empty) {
                cut.pop();
            }
            cut
        })
        .collect();
    let range = format_range(
        &sheet.title,
        bounds.first_col,
        bounds.first_row,
        bounds.last_col,
        bounds.last_row,
    );
    Ok(Json(json!({"range": range, "majorDimension": "ROWS", "values": values})))
}

/// The export's query: `format` (csv, the default, or xlsx) and `worksheet_id`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    format: Option<String>,
    worksheet_id: Option<String>,
}

impl QueryParams for ExportQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[&["format", "worksheet_id"]];
}

/// A worksheet as a CSV or XLSX download. The console's download links are served by this
/// same handler, behind the console session.
pub(crate) async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let id = spreadsheet_id(id)?;
    let format = q.format.unwrap_or_else(|| "csv".into());
    if !matches!(format.as_str(), "csv" | "xlsx") {
        return Err(ApiError::invalid("format", format!("`{format}` is not csv or xlsx")));
    }
    let sheet_id = super::extract::parse_number::<u32>("worksheet_id", q.worksheet_id.as_deref())?;
    let spreadsheet = state.store.spreadsheet(id).await?;
    let sheet = worksheet(&spreadsheet, None, sheet_id)?;
    let rows = grid(&state, &spreadsheet, sheet).await?;
    let file =
        |ext: &str| format!("attachment; filename=\"{}-{}.{ext}\"", spreadsheet.id, sheet.sheet_id);
    let response = if format == "csv" {
        let bytes = to_csv(&rows).map_err(ApiError::internal)?;
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, file("csv")),
            ],
            bytes,
        )
            .into_response()
    } else {
        let bytes = to_xlsx(&sheet.title, &rows).map_err(ApiError::internal)?;
        (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
                ),
                (header::CONTENT_DISPOSITION, file("xlsx")),
            ],
            bytes,
        )
            .into_response()
    };
    Ok(response)
}
