//! One signed call for an automation and the log it leaves. Shared by the dispatcher,
//! reruns and the test call, so every path signs and records the same way.

use bytes::Bytes;

use super::rate_limit_stamp::{stamped, StartStamp};
use super::signing;
use crate::ids::{DeliveryId, LogId, MessageId};
use crate::outbound::{CallResult, Sender};
use crate::redact::HeaderRedaction;
use crate::store::{implied_headers, Automation, BodyHash, NewLog, Trigger};
use crate::time::UnixMs;

/// Headers every call carries: content type, Standard Webhooks id/timestamp/signature (the
/// timestamp in integer seconds, signed exactly as sent), then the automation's own headers.
/// A call to this relay's own sink for `sink_spreadsheet` is signed first with the keys
/// derived for that spreadsheet ([`signing::sink_secret`], what a signer-linked sheet
/// verifies), then with the plain ones (what a sheet holding a copied `webhook_secret`
/// verifies); such a call never leaves the relay, and no other call carries a derived key.
pub fn signed_headers(
    automation: &Automation,
    message_id: &MessageId,
    body: &[u8],
    now: UnixMs,
    sink_spreadsheet: Option<&str>,
) -> Vec<(String, String)> {
    let timestamp = now.as_secs();
    let plain = automation.signing_secrets(now);
    let derived: Vec<String> = match sink_spreadsheet {
        Some(id) => plain.iter().filter_map(|s| signing::sink_secret(s, id)).collect(),
        None => Vec::new(),
    };
    let secrets: Vec<&str> = derived.iter().map(String::as_str).chain(plain).collect();
    let mut headers = Vec::with_capacity(4 + automation.settings.webhook_headers.len());
    headers.push(("content-type".to_string(), "application/json".to_string()));
    headers.push(("webhook-id".to_string(), message_id.to_string()));
    headers.push(("webhook-timestamp".to_string(), timestamp.to_string()));
    headers.push((
        "webhook-signature".to_string(),
        signing::signature_header(&secrets, message_id, timestamp, body),
    ));
    for (name, value) in &automation.settings.webhook_headers {
        headers.push((name.clone(), value.clone()));
    }
    headers
}

/// The request headers as the log of a call for `message_id` made at `request_at` stores
/// them: a JSON object with secret values redacted, without the headers the log's own
/// columns imply when they are as sent ([`implied_headers`]); and whether it left them out.
fn recorded_headers(
    headers: &[(String, String)],
    user_agent: &str,
    rule: &HeaderRedaction,
    message_id: &MessageId,
    request_at: UnixMs,
) -> (String, bool) {
    let mut object = serde_json::Map::with_capacity(headers.len() + 1);
    object.insert("user-agent".into(), user_agent.into());
    for (name, value) in headers {
        object.insert(name.to_ascii_lowercase(), rule.shown(name, value).into());
    }
    let implied = implied_headers::leave_out(&mut object, message_id.as_str(), request_at);
    (serde_json::Value::Object(object).to_string(), implied)
}

/// Where a call sits: which delivery, attempt and trigger, and what it refers to.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The delivery, for dispatcher attempts.
    pub delivery_id: Option<DeliveryId>,
    /// The message (`webhook-id`).
    pub message_id: MessageId,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Why the call is made.
    pub trigger: Trigger,
    /// For reruns, the log rerun.
    pub rerun_of: Option<LogId>,
    /// Hash of the body sent.
    pub body_hash: BodyHash,
    /// Hash of the automation snapshot.
    pub snapshot_hash: BodyHash,
}

/// Signs and sends `body` to `url` for `automation`; returns the log to store, request and
/// response header secrets redacted, and the `Retry-After` the receiver asked for, if any.
/// A start taken from the shared rate window is stamped as the call arrives (`stamp`).
pub async fn call(
    sender: &Sender,
    user_agent: &str,
    automation: &Automation,
    url: &str,
    body: Bytes,
    context: CallContext,
    stamp: Option<StartStamp>,
) -> (NewLog, Option<std::time::Duration>) {
    let sink_spreadsheet = sender.own_sink_spreadsheet(url);
    let now = UnixMs::now();
    let headers =
        signed_headers(automation, &context.message_id, &body, now, sink_spreadsheet.as_deref());
    let mut result = stamped(sender.post(url, &headers, body), stamp).await;
    let retry_after = result.retry_after;
    let rule = sender.redaction();
    result.response_headers = rule.redact_json(&result.response_headers);
    let (request_headers, implied) =
        recorded_headers(&headers, user_agent, rule, &context.message_id, result.request_at);
    let mut log = log_of(automation, url, request_headers, result, context);
    log.request_headers_implied = implied;
    (log, retry_after)
}

/// The log of a call (or of a call that was never made, such as a disabled automation's).
pub fn log_of(
    automation: &Automation,
    url: &str,
    request_headers: String,
    result: CallResult,
    context: CallContext,
) -> NewLog {
    let (error_code, error_message) = match result.error {
        Some((code, detail)) => (Some(code), Some(detail)),
        None => (None, None),
    };
    NewLog {
        delivery_id: context.delivery_id,
        message_id: context.message_id,
        automation_id: automation.id.clone(),
        processor_id: automation.settings.processor_id.clone(),
        attempt: context.attempt,
        trigger: context.trigger,
        rerun_of: context.rerun_of,
        webhook_url: url.to_string(),
        request_headers,
        request_headers_implied: false,
        request_body_hash: context.body_hash,
        request_at: result.request_at,
        response_at: result.response_at,
        status_code: result.status,
        response_headers: result.response_headers,
        response_body: result.body,
        response_truncated: result.truncated,
        duration_ms: result.duration_ms,
        error_code,
        error_message,
        snapshot_hash: context.snapshot_hash,
    }
}
