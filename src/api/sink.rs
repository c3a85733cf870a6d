//! `POST /v1/integrations/google_sheets/webhook?spreadsheet_id=…&worksheet_id=0&color_by_likelihood=false`:
//! appends a completion (or any JSON object) as one row, answering like Google's
//! `spreadsheets.values.append`. A signed spreadsheet accepts only calls signed (Standard
//! Webhooks, ±5 min) with its webhook secret, or with the key derived for this spreadsheet
//! from any secret its signer automation signs with now (see `store::sheet_signers`,
//! `signing::sink_secret`) while that automation still sends to this sink (see
//! `api::sheet_signer`); one without either requires an admin key. Every
//! unauthenticated call gets the same 401, also for a spreadsheet that does not exist: only
//! an admin key learns that (404).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{body_bytes, decode_query, QueryParams};
use super::sheet_signer::signer_target_problem;
use super::sheets::spreadsheet_id;
use super::{ApiError, ApiErrorCode, ApiResult, AppState};
use crate::delivery::signing;
use crate::sheets::flatten::row_of;
use crate::store::{Appended, NewRow, Spreadsheet};
use crate::time::UnixMs;

#[derive(Debug, Deserialize)]
struct SinkQuery {
    spreadsheet_id: Option<String>,
    worksheet_id: Option<String>,
    color_by_likelihood: Option<String>,
}

/// The sink's path on this relay.
pub(super) const SINK_PATH: &str = "/v1/integrations/google_sheets/webhook";

/// The query parameters the sink takes.
pub(super) const SINK_PARAMS: &[&str] = &["spreadsheet_id", "worksheet_id", "color_by_likelihood"];

impl QueryParams for SinkQuery {
    const ACCEPTED: &'static [&'static [&'static str]] = &[SINK_PARAMS];
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Google's append answer for `appended` with `spreadsheet_id`.
fn append_answer(spreadsheet_id: &str, a: &Appended) -> String {
    let last_col = a.columns.saturating_sub(1);
    let rows = a.row - a.first_row + 1;
    let range = crate::sheets::a1::format_range(&a.sheet_title, 0, a.first_row, last_col, a.row);
    let mut answer = json!({
        "spreadsheetId": spreadsheet_id,
        "updates": {
            "spreadsheetId": spreadsheet_id,
            "updatedRange": range,
            "updatedRows": rows,
            "updatedColumns": a.columns,
            "updatedCells": rows * a.columns,
        },
    });
    // As Google: the table found before the append; none when this call wrote the header.
    if a.first_row > 1 {
        answer["tableRange"] =
            crate::sheets::a1::format_range(&a.sheet_title, 0, 1, last_col, a.first_row - 1).into();
    }
    answer.to_string()
}

/// The one answer to every call that is not authenticated: the same whether the
/// spreadsheet is unknown, keyed or signed, and whatever was wrong, so that it tells a
/// caller without credentials nothing about which spreadsheets exist. The reason is logged
/// at DEBUG, like any client's error: no key is needed to be refused, so at a level shown
/// by default every anonymous call would add a line to the relay's log.
fn refused(reason: &str) -> ApiError {
    tracing::debug!(reason, "sheets sink call refused");
    ApiError::unauthorized(
        "not authenticated: a signed spreadsheet (a webhook secret, or a signer automation) \
         accepts only calls signed with its secret (webhook-id, webhook-timestamp, \
         webhook-signature, within 5 minutes); one without requires an admin key",
    )
}

/// What the headers present. A caller with neither an admin key nor the three signature
/// headers is refused by [`caller_of`] before anything else is read.
struct Caller {
    /// A valid admin key was presented.
    admin: bool,
    /// The `webhook-id`, when present and not blank.
    webhook_id: Option<String>,
}

/// The caller as the headers present it; refused when it has no credential at all, before
/// the body is read, so that an anonymous client cannot hold a connection by sending a body
/// slowly. The headers alone decide, so this tells nothing about the spreadsheet.
fn caller_of(state: &AppState, headers: &HeaderMap) -> ApiResult<Caller> {
    // An empty id is no id: it must not make every later id-less call a "duplicate".
    let webhook_id = header(headers, "webhook-id")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    let admin = super::access::authenticate(state, headers)
        .is_ok_and(|who| who.role.allows(crate::auth::Role::Admin));
    let signed = webhook_id.is_some()
        && header(headers, "webhook-timestamp").is_some()
        && header(headers, "webhook-signature").is_some();
    if !admin && !signed {
        return Err(refused("no admin key and no signature headers"));
    }
    Ok(Caller { admin, webhook_id })
}

/// Where to append, as the query asks (the spreadsheet id not yet checked).
struct Target {
    /// `spreadsheet_id` as given.
    raw_spreadsheet_id: String,
    /// `worksheet_id` (0 by default).
    sheet_id: u32,
    /// `color_by_likelihood`.
    colour: bool,
}

/// The query decoded: decoded only once the caller presents a credential, so that a caller
/// without one learns nothing from it either.
fn target_of(uri: &Uri) -> ApiResult<Target> {
    let q: SinkQuery = decode_query(uri)?;
    let raw_spreadsheet_id =
        q.spreadsheet_id.ok_or_else(|| ApiError::invalid("spreadsheet_id", "is required"))?;
    let sheet_id: u32 = match q.worksheet_id.as_deref() {
        None => 0,
        Some(v) => v.parse().map_err(|_| {
            ApiError::invalid("worksheet_id", format!("`{v}` is not a worksheet id"))
        })?,
    };
    let colour = match q.color_by_likelihood.as_deref() {
        None | Some("false") | Some("False") | Some("0") => false,
        Some("true") | Some("True") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "color_by_likelihood",
                format!("`{other}` is not true or false"),
            ))
        }
    };
    Ok(Target { raw_spreadsheet_id, sheet_id, colour })
}

/// The spreadsheet `raw_id` names. Only an admin learns that it does not exist (404, also
/// for a malformed id); anyone else gets the one [`refused`] answer.
async fn spreadsheet_for(state: &AppState, raw_id: String, admin: bool) -> ApiResult<Spreadsheet> {
    let found = match spreadsheet_id(raw_id) {
        Ok(id) => state.store.spreadsheet(id).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match found {
        Ok(spreadsheet) => Ok(spreadsheet),
        Err(e) if e.code == ApiErrorCode::NotFound && !admin => {
            Err(refused("unknown spreadsheet, no admin key"))
        }
        Err(e) => Err(e),
    }
}

/// The secrets a call to `spreadsheet` may be signed with now; none when it is keyed.
fn accepted_secrets(
    state: &AppState,
    spreadsheet: &Spreadsheet,
    now: UnixMs,
) -> ApiResult<Vec<String>> {
    let id = &spreadsheet.id;
    Ok(match (&spreadsheet.signer, &spreadsheet.webhook_secret) {
        // Trusted only while it sends here: moved elsewhere, its calls (signed alike) could
        // be received there and replayed to this sink.
        (Some(signer), _)
            if signer_target_problem(&state.sender, &signer.settings.webhook_url, id).is_some() =>
        {
            return Err(refused("signer automation no longer sends to this spreadsheet's sink"))
        }
        // Only the keys derived for this spreadsheet: the relay signs with them only calls to
        // this sink, so a call the automation sent anywhere else cannot be replayed here.
        (Some(signer), _) => signer
            .signing_secrets(now)
            .into_iter()
            .filter_map(|secret| signing::sink_secret(secret, id))
            .collect(),
        // A secret shared with an outside sender by design: verified as it is.
        (None, Some(secret)) => vec![secret.clone()],
        (None, None) => Vec::new(),
    })
}

/// Accepts the call when it is signed with one of `secrets` over `body`, or, when there are
/// none (a keyed spreadsheet), when the caller is an admin.
fn verify(
    caller: &Caller,
    headers: &HeaderMap,
    secrets: &[String],
    body: &[u8],
    now: UnixMs,
) -> ApiResult<()> {
    if secrets.is_empty() {
        return if caller.admin { Ok(()) } else { Err(refused("keyed spreadsheet, no admin key")) };
    }
    let (Some(msg_id), Some(ts), Some(sig)) = (
        caller.webhook_id.as_deref(),
        header(headers, "webhook-timestamp"),
        header(headers, "webhook-signature"),
    ) else {
        return Err(refused("signed spreadsheet, signature headers missing"));
    };
    let now_secs = now.as_secs();
    // Any one will do: a signer automation signs with its previous secret too for a
    // while after a rotation, and may have rotated since this call was signed.
    let mut reason = "";
    let verified = secrets.iter().any(|secret| {
        match signing::verify(secret, msg_id, ts, sig, body, now_secs) {
            Ok(()) => true,
            Err(why) => {
                reason = why;
                false
            }
        }
    });
    if verified {
        Ok(())
    } else {
        Err(refused(reason))
    }
}

/// The body as one row: a JSON object flattened to cells (too long a cell is a
/// `LimitExceeded` error, anything else invalid, both on `body`).
fn row_from(state: &AppState, body: &[u8], colour: bool) -> ApiResult<NewRow> {
    let limits = &state.config.limits;
    let body: Value = super::extract::decode_json(body, limits.max_json_depth)?;
    row_of(&body, colour, limits.sheet_max_cell_chars).map_err(|e| match e {
        crate::sheets::flatten::RowError::CellTooLong { .. } => {
            ApiError::new(ApiErrorCode::LimitExceeded, e.to_string()).with_field("body")
        }
        other => ApiError::invalid("body", other.to_string()),
    })
}

/// The sink's handler: caller, target, body, spreadsheet, signature, row, append, in this
/// order, so that nothing about a spreadsheet is told before the caller is authenticated.
pub(super) async fn append(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Json<Value>> {
    let caller = caller_of(&state, &headers)?;
    let target = target_of(&uri)?;
    // Read before anything about the spreadsheet is looked at, so that a body too large is
    // refused alike whether or not the spreadsheet exists.
    let bytes = body_bytes(req, &state).await?;
    let spreadsheet = spreadsheet_for(&state, target.raw_spreadsheet_id, caller.admin).await?;
    let now = UnixMs::now();
    let secrets = accepted_secrets(&state, &spreadsheet, now)?;
    verify(&caller, &headers, &secrets, &bytes, now)?;
    let row = row_from(&state, &bytes, target.colour)?;
    if !spreadsheet.worksheets.iter().any(|w| w.sheet_id == target.sheet_id) {
        return Err(ApiError::not_found("worksheet"));
    }
    let id = spreadsheet.id;
    let answer_id = id.clone();
    let (answer, _replayed) = state
        .store
        .append_row(
            id,
            target.sheet_id,
            caller.webhook_id,
            row,
            state.config.limits.sheet_max_columns,
            move |a| append_answer(&answer_id, a),
        )
        .await?;
    let answer: Value = serde_json::from_str(&answer).map_err(ApiError::internal)?;
    Ok(Json(answer))
}
