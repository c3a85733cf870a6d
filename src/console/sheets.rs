//! Sheets: the list of spreadsheets, a worksheet as a paged table (header row, then the data
//! rows with their row numbers), and CSV/XLSX downloads. The list is paged by the API's own
//! page parameters and store list; the downloads are the API's export handler, behind the
//! console session. Every signed-in role may read sheets (the API's routes need viewer, the
//! lowest role).

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use super::runs::given_pairs;
use super::session::Signed;
use super::Console;
use crate::api::extract::{decode_query, path_id, ApiQuery, PageParams};
use crate::api::sheet_values::{export as api_export, ExportQuery};
use crate::api::ApiError;
use crate::ids::{self, SpreadsheetId};
use crate::store::{Spreadsheet, Worksheet};

/// Spreadsheets per list page (the API's default is 10; a screen holds more).
const LIST_SIZE: &str = "50";
/// Data rows per table page.
const ROWS_PER_PAGE: u32 = 50;

/// An API refusal as a console page: 404 says what was not found, others the API's words.
fn refusal(console: &Console, e: &ApiError, what: &str) -> Response {
    if e.status() == StatusCode::NOT_FOUND {
        return console.pages.error(StatusCode::NOT_FOUND, &format!("There is no {what}."));
    }
    // The API's message starts with the field at fault.
    console.pages.error(e.status(), &format!("Wrong parameter: {}", e.message))
}

fn summary(sheet: &Spreadsheet) -> Value {
    let worksheets: Vec<Value> = sheet
        .worksheets
        .iter()
        .map(|w| json!({"title": w.title, "rows": w.last_row.saturating_sub(1)}))
        .collect();
    json!({"id": sheet.id.as_str(), "title": sheet.title, "worksheets": worksheets,
           "updated_at": sheet.updated_at.rfc3339()})
}

/// The list, newest first, by the API's page parameters (a 400 names the bad one).
pub(super) async fn list(State(console): State<Console>, signed: Signed, uri: Uri) -> Response {
    let mut pairs = given_pairs(&uri);
    if !pairs.iter().any(|(k, _)| k == "limit") {
        pairs.push(("limit".into(), LIST_SIZE.into()));
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    let request = format!("/console/sheets?{query}")
        .parse::<Uri>()
        .map_err(|_| ApiError::invalid("query", "the query string is not valid"))
        .and_then(|uri| decode_query::<PageParams>(&uri))
        .and_then(|p| p.to_request(ids::SPREADSHEET, console.app.config.limits.max_list_limit));
    let request = match request {
        Ok(request) => request,
        Err(e) => return refusal(&console, &e, "such page"),
    };
    let page = match console.app.store.list_spreadsheets(request).await {
        Ok(page) => page,
        Err(e) => return console.failed(e),
    };
    let context = json!({
        "session": signed.context(),
        "sheets": page.items.iter().map(summary).collect::<Vec<_>>(),
        "newer": page.before.map(|id| format!("/console/sheets?before={id}")),
        "older": page.after.map(|id| format!("/console/sheets?after={id}")),
    });
    console.pages.render(StatusCode::OK, "sheets.html", &context)
}

/// Which worksheet and which first row the table shows (a 400 names the bad parameter).
fn table_query(pairs: &[(String, String)]) -> Result<(Option<u32>, u32), ApiError> {
    let (mut worksheet, mut from) = (None, 2);
    for (name, value) in pairs {
        let number = |what: &str| {
            value.parse::<u32>().map_err(|_| ApiError::invalid(name.as_str(), what.to_string()))
        };
        match name.as_str() {
            "worksheet_id" => worksheet = Some(number("not a worksheet id (0, 1, …)")?),
            "from" => from = number("not a row number")?,
            _ => {
                let message = format!("`{name}` is not one of worksheet_id, from");
                return Err(ApiError::invalid(name.as_str(), message));
            }
        }
    }
    if from < 2 {
        return Err(ApiError::invalid("from", "data rows start at row 2 (row 1 is the header)"));
    }
    Ok((worksheet, from))
}

fn table_link(id: &SpreadsheetId, sheet: &Worksheet, from: u32) -> String {
    format!("/console/sheets/{id}?worksheet_id={}&from={from}", sheet.sheet_id)
}

/// The table's context: header, this page's rows padded to the header's width, page links.
async fn table(
    console: &Console,
    sheet: &Spreadsheet,
    worksheet: &Worksheet,
    from: u32,
) -> Result<Value, Response> {
    let width = worksheet.header.len();
    let last = worksheet.last_row.min(from.saturating_add(ROWS_PER_PAGE - 1));
    let stored = if from <= last {
        let store = &console.app.store;
        let rows = store.sheet_rows(sheet.id.clone(), worksheet.sheet_id, from, last).await;
        rows.map_err(|e| console.failed(e))?
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = stored
        .into_iter()
        .map(|mut row| {
            row.cells.resize(width.max(row.cells.len()), String::new());
            json!({"number": row.row, "cells": row.cells})
        })
        .collect();
    let previous = (from > 2).then(|| from.saturating_sub(ROWS_PER_PAGE).max(2));
    let next = (last < worksheet.last_row).then_some(last + 1);
    let export = |format: &str| {
        format!(
            "/console/sheets/{}/export?format={format}&worksheet_id={}",
            sheet.id, worksheet.sheet_id
        )
    };
    Ok(json!({
        "header": worksheet.header,
        "rows": rows,
        "previous": previous.map(|f| table_link(&sheet.id, worksheet, f)),
        "next": next.map(|f| table_link(&sheet.id, worksheet, f)),
        "csv": export("csv"),
        "xlsx": export("xlsx"),
        "data_rows": worksheet.last_row.saturating_sub(1),
    }))
}

/// A worksheet as a table, a page of rows at a time; unknown spreadsheets and worksheets are
/// the console's 404 page.
pub(super) async fn show(
    State(console): State<Console>,
    signed: Signed,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let (worksheet_id, from) = match table_query(&given_pairs(&uri)) {
        Ok(query) => query,
        Err(e) => return refusal(&console, &e, "such page"),
    };
    let found = match path_id::<ids::Spreadsheet>(id, "spreadsheet") {
        Ok(id) => console.app.store.spreadsheet(id).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let sheet = match found {
        Ok(sheet) => sheet,
        Err(e) => return refusal(&console, &e, "spreadsheet with this id"),
    };
    let worksheet = match worksheet_id {
        Some(n) => sheet.worksheets.iter().find(|w| w.sheet_id == n),
        None => sheet.worksheets.first(),
    };
    let Some(worksheet) = worksheet else {
        return console.pages.error(StatusCode::NOT_FOUND, "There is no such worksheet.");
    };
    let table = match table(&console, &sheet, worksheet, from).await {
        Ok(table) => table,
        Err(answer) => return answer,
    };
    let tabs: Vec<Value> = sheet
        .worksheets
        .iter()
        .map(|w| {
            json!({"title": w.title, "link": table_link(&sheet.id, w, 2),
                        "current": w.sheet_id == worksheet.sheet_id})
        })
        .collect();
    let context = json!({"session": signed.context(), "sheet": summary(&sheet), "tabs": tabs,
                         "worksheet": worksheet.title, "table": table});
    console.pages.render(StatusCode::OK, "sheet.html", &context)
}

/// A worksheet as CSV or XLSX: the API's export, behind the console session.
pub(super) async fn export(
    State(console): State<Console>,
    _: Signed,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let query = match decode_query::<ExportQuery>(&uri) {
        Ok(query) => query,
        Err(e) => return refusal(&console, &e, "such page"),
    };
    match api_export(State(console.app.clone()), Path(id), ApiQuery(query)).await {
        Ok(file) => file,
        Err(e) => refusal(&console, &e, "spreadsheet or worksheet with this id"),
    }
}
