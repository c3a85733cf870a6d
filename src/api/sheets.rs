//! `/v1/spreadsheets`: create, list, show, delete (admin key); the signer routes are in
//! [`super::sheet_signer`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{list_body, path_id, ApiQuery, JsonBody, NoBody, NoQuery, PageParams};
use super::stored_text::refuse_nul;
use super::{ApiError, ApiResult, AppState};
use crate::ids::{self, SpreadsheetId};
use crate::store::{Spreadsheet, Worksheet};
use crate::time::UnixMs;

/// A spreadsheet to create. Any other field is refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SpreadsheetCreateBody)]
pub(super) struct CreateBody {
    /// 1 to 256 bytes of UTF-8, not only blanks (its blanks around are dropped).
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    title: String,
    #[serde(default)]
    #[schema(schema_with = super::openapi_fields::sheet_titles)]
    sheets: Option<Vec<String>>,
    /// A `whsec_` secret the sink then requires calls to be signed with: `whsec_` and the
    /// base64 of at least 16 bytes (padding optional).
    #[serde(default)]
    #[schema(
        pattern = "^whsec_(?:[A-Za-z0-9+/]{4}){5}(?:(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/][AQgw]|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048])?|[A-Za-z0-9+/][AQgw]|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048])=*$"
    )]
    webhook_secret: Option<String>,
}

/// The spreadsheet as the API shows it (a Sheets-API-like `properties`/`sheets` shape).
pub(super) fn spreadsheet_json(s: &Spreadsheet) -> Value {
    let sheets: Vec<Value> = s
        .worksheets
        .iter()
        .map(|w| {
            json!({"properties": {
                "sheetId": w.sheet_id, "title": w.title, "index": w.sheet_id,
                "gridProperties": {"rowCount": w.last_row, "columnCount": w.header.len()},
            }, "header": w.header})
        })
        .collect();
    json!({
        "spreadsheetId": s.id,
        "properties": {"title": s.title},
        "sheets": sheets,
        "signed": s.webhook_secret.is_some() || s.signer.is_some(),
        "signer_automation_id": s.signer.as_ref().map(|a| a.id.clone()),
        "created_at": s.created_at.rfc3339(),
        "updated_at": s.updated_at.rfc3339(),
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    _: NoQuery,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let title = body.title.trim().to_string();
    if title.is_empty() || title.len() > 256 {
        return Err(ApiError::invalid("title", "1 to 256 bytes of UTF-8"));
    }
    refuse_nul("title", &title)?;
    let titles = body.sheets.unwrap_or_else(|| vec!["Sheet1".into()]);
    if titles.is_empty() || titles.len() > 100 {
        return Err(ApiError::invalid("sheets", "1 to 100 worksheet titles"));
    }
    for (i, t) in titles.iter().enumerate() {
        if t.trim().is_empty() || t.len() > 100 || titles[..i].contains(t) {
            return Err(ApiError::invalid(
                format!("sheets.{i}"),
                "titles are 1 to 100 bytes of UTF-8 and distinct",
            ));
        }
        refuse_nul(&format!("sheets.{i}"), t)?;
    }
    if let Some(secret) = &body.webhook_secret {
        if !crate::delivery::signing::is_valid_secret(secret) {
            return Err(ApiError::invalid(
                "webhook_secret",
                "not a whsec_ secret (base64 of at least 16 bytes after the prefix)",
            ));
        }
    }
    let now = UnixMs::now();
    let worksheets = titles
        .into_iter()
        .enumerate()
        .map(|(i, title)| Worksheet { sheet_id: i as u32, title, header: Vec::new(), last_row: 0 })
        .collect();
    let sheet = Spreadsheet {
        id: SpreadsheetId::new(),
        title,
        webhook_secret: body.webhook_secret,
        signer: None,
        worksheets,
        created_at: now,
        updated_at: now,
    };
    let stored = state.store.create_spreadsheet(sheet).await?;
    Ok((StatusCode::CREATED, Json(spreadsheet_json(&stored))))
}

pub(super) async fn list(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = page.to_request(ids::SPREADSHEET, state.config.limits.max_list_limit)?;
    let page = state.store.list_spreadsheets(page).await?;
    Ok(Json(list_body(page.items.iter().map(spreadsheet_json).collect(), page.before, page.after)))
}

/// Validates a spreadsheet id from a path or query (404 when malformed, like an unknown id).
pub(super) fn spreadsheet_id(id: String) -> ApiResult<SpreadsheetId> {
    path_id(id, "spreadsheet")
}

pub(super) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
) -> ApiResult<Json<Value>> {
    Ok(Json(spreadsheet_json(&state.store.spreadsheet(spreadsheet_id(id)?).await?)))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    let id = spreadsheet_id(id)?;
    state.store.delete_spreadsheet(id.clone()).await?;
    Ok(Json(json!({"spreadsheetId": id, "deleted": true})))
}
