//! `PUT` / `DELETE /v1/spreadsheets/{id}/signer` (admin key): the automation whose signed
//! calls a spreadsheet's sink accepts, and the rule that makes that safe: the automation
//! must send to this spreadsheet's sink on this relay, exactly. Anywhere else, its receiver
//! would get calls signed with the very secrets the sink accepts, and could replay them
//! here. The rule is checked when linking and again at every sink call, since the
//! automation can be moved after it was linked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::{Path, State};
use axum::Json;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{JsonBody, NoBody, NoQuery};
use super::sheets::{spreadsheet_id, spreadsheet_json};
use super::sink::{SINK_PARAMS, SINK_PATH};
use super::{ApiError, ApiResult, AppState};
use crate::ids::{AutomationId, SpreadsheetId};
use crate::outbound::Sender;
use crate::store::StoreError;

/// The automation whose signed calls the sink is to accept. Any other field is refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignerBody {
    /// An automation that sends to this spreadsheet's sink on this relay.
    #[schema(required, nullable = false)]
    automation_id: Option<String>,
}

/// `PUT /v1/spreadsheets/{id}/signer {"automation_id"}`: the sink then accepts calls signed
/// with that automation's secrets (following its rotations), in place of a webhook secret
/// or an admin key, so nothing secret is copied into the spreadsheet or into the
/// automation's headers. The automation must already send to this spreadsheet's sink (see
/// [`signer_target_problem`]); a wrong one is refused with the reason.
pub(super) async fn link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    JsonBody(body): JsonBody<SignerBody>,
) -> ApiResult<Json<Value>> {
    let id = spreadsheet_id(id)?;
    let automation_id =
        body.automation_id.ok_or_else(|| ApiError::invalid("automation_id", "is required"))?;
    let no_automation =
        || ApiError::invalid("automation_id", format!("no automation `{automation_id}`"));
    let Ok(signer_id) = AutomationId::try_from(automation_id.clone()) else {
        return Err(no_automation());
    };
    state.store.spreadsheet(id.clone()).await?;
    let automation = match state.store.automation(signer_id.clone()).await {
        Err(StoreError::NotFound(_)) => return Err(no_automation()),
        other => other?,
    };
    if let Some(why) = signer_target_problem(&state.sender, &automation.settings.webhook_url, &id) {
        let expected = state.sender.own_address().map_or_else(
            || "this relay's own sink".to_string(),
            |own| {
                let ip = match own.ip() {
                    IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                let own = SocketAddr::new(ip, own.port());
                format!("http://{own}{SINK_PATH}?spreadsheet_id={id}&worksheet_id=0")
            },
        );
        return Err(ApiError::invalid(
            "automation_id",
            format!(
                "automation `{automation_id}` sends to `{}`, not to this spreadsheet's sink on \
                 this relay ({expected}): {why}",
                automation.settings.webhook_url
            ),
        ));
    }
    match state.store.set_sheet_signer(id.clone(), signer_id).await {
        Err(StoreError::NotFound("automation")) => return Err(no_automation()),
        other => other?,
    }
    Ok(Json(spreadsheet_json(&state.store.spreadsheet(id).await?)))
}

/// `DELETE /v1/spreadsheets/{id}/signer`: unlinks the signer; the spreadsheet is then keyed
/// (an admin key appends; its webhook secret went when the signer was set). 404 when it has
/// none.
pub(super) async fn unlink(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    let id = spreadsheet_id(id)?;
    state.store.unlink_sheet_signer(id.clone()).await?;
    Ok(Json(spreadsheet_json(&state.store.spreadsheet(id).await?)))
}

/// Why `webhook_url` is not spreadsheet `id`'s sink on this relay, if it is not: it must be
/// the relay's own sink by the SSRF guard's rule ([`Sender::is_own_sink`]: `http`, the
/// listening IP and port), written in canonical form (no `..`, nothing the URL parser
/// rewrites), at exactly the sink's path, with exactly one `spreadsheet_id` (this one), only
/// the sink's parameters, each once, and no fragment (user info is refused already when
/// an automation is saved).
pub(super) fn signer_target_problem(
    sender: &Sender,
    webhook_url: &str,
    id: &SpreadsheetId,
) -> Option<String> {
    let url = match Url::parse(webhook_url) {
        Ok(url) => url,
        Err(e) => return Some(format!("not a URL: {e}")),
    };
    if !sender.is_own_sink(&url) {
        return Some("not this relay's own address (http, its listening IP and port)".to_string());
    }
    if url.as_str() != webhook_url {
        return Some(format!("not in canonical form (it reads as `{url}`)"));
    }
    if url.path() != SINK_PATH {
        return Some(format!("the path is not exactly `{SINK_PATH}`"));
    }
    if url.fragment().is_some() {
        return Some("it has a fragment".to_string());
    }
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url.query_pairs() {
        if !SINK_PARAMS.contains(&name.as_ref()) {
            return Some(format!("`{name}` is not a parameter of the sink"));
        }
        if seen.iter().any(|s| *s == name) {
            return Some(format!("`{name}` appears more than once"));
        }
        if name == "spreadsheet_id" && value != id.as_str() {
            return Some(format!("its spreadsheet_id is `{value}`"));
        }
        seen.push(name.into_owned());
    }
    if !seen.iter().any(|s| s == "spreadsheet_id") {
        return Some("it has no spreadsheet_id".to_string());
    }
    None
}
