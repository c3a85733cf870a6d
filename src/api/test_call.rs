//! The test call `/v1/processors/automations/tests/webhook/{id}`: a sample call to an
//! automation, sent at once; also the console's "Send a test call".

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::automations::automation_id;
use super::extract::{NoBody, NoQuery};
use super::{ApiResult, AppState};
use crate::store::LogRecord;
use crate::time::UnixMs;

/// A sample `WebhookRequest` (`{completion, user, file_payload, metadata}`), the shape the
/// uiform SDK parses, sent synchronously; answers the AutomationLog of the call.
pub(super) async fn test_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: NoQuery,
    _: NoBody,
) -> ApiResult<Json<Value>> {
    let record = send_test_call(&state, id).await?;
    let (org, rule) = (&state.config.organization_id, &state.config.security.redact_headers);
    Ok(Json(super::logs_view::automation_log(&record, org, rule)))
}

/// Sends the sample call to the automation `id` and answers its log: the API's test call,
/// also the console's "Send a test call".
pub(crate) async fn send_test_call(state: &AppState, id: String) -> ApiResult<LogRecord> {
    let automation = state.store.automation(automation_id(id)?).await?;
    let now = UnixMs::now();
    let parsed = json!({"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com", "company": "Example Corp"});
    let payload = json!({
        "completion": {
            "id": format!("chatcmpl-test-{}", now.as_ms()),
            "object": "chat.completion",
            "created": now.as_secs(),
            "model": "hookrelay-test",
            "choices": [{
                "index": 0,
                "finish_reason": "stop",
                "logprobs": null,
                "message": {"role": "assistant", "content": parsed.to_string(), "parsed": parsed, "refusal": null},
            }],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "extraction_id": null,
            "likelihoods": {},
            "request_at": now.rfc3339(),
            "first_token_at": now.rfc3339(),
            "last_token_at": now.rfc3339(),
        },
        "user": "test@example.com",
        "file_payload": {"filename": "sample.txt", "url": "data:text/plain;base64,aGVsbG8=", "metadata": {}},
        "metadata": {"test": true, "automation_id": automation.id},
    });
    let body = payload.to_string().into_bytes();
    let (message_id, body_hash) =
        state.store.insert_bare_message(&automation, "hookrelay.test", body.clone()).await?;
    let call = crate::outbound::OneCall {
        message_id,
        body,
        body_hash,
        url: automation.settings.webhook_url.clone(),
        trigger: crate::store::Trigger::Test,
        rerun_of: None,
    };
    let (record, _) = state.one_calls.send(&automation, call).await?;
    Ok(record)
}
