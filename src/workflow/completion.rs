//! The completion a finished run hands to the relay: uiform's `WebhookRequest`
//! (`{completion, user, file_payload, metadata}`), with the run's outputs as the parsed
//! message of an OpenAI `chat.completion`.

use serde_json::{json, Map, Value};

use super::app::InputKind;
use super::error::RunError;
use super::runner::{RunOutcome, RunSpec, RunStatus};
use crate::time::UnixMs;

/// Event type of a run's completion: `workflow_run.succeeded|failed|stopped`. Automations
/// choose which final statuses they receive through their `event_types` (default: all).
pub fn event_type(outcome: &RunOutcome) -> String {
    format!("workflow_run.{}", outcome.status.as_str())
}

/// The outcome to record and the webhook body for it. A run whose body would be longer than
/// `max_bytes` (`limits.max_body_bytes`, the most any message the relay takes may carry) has
/// its outputs dropped and ends `failed` with [`RunError::OutputsTooLarge`], its body then
/// built without them; so neither the body, nor the outputs stored or answered, can pass
/// the bound.
pub fn bounded_webhook(
    spec: &RunSpec,
    mut outcome: RunOutcome,
    max_bytes: usize,
) -> (RunOutcome, Vec<u8>) {
    let payload = webhook_request(spec, &outcome).to_string().into_bytes();
    if payload.len() <= max_bytes || outcome.outputs.is_none() {
        return (outcome, payload);
    }
    outcome.status = RunStatus::Failed;
    outcome.outputs = None;
    outcome.error =
        Some(RunError::OutputsTooLarge { size: payload.len(), max: max_bytes }.to_string());
    let payload = webhook_request(spec, &outcome).to_string().into_bytes();
    (outcome, payload)
}

/// The webhook body for a finished run. `finish_reason` is always `stop` (the OpenAI and
/// uiform models accept no other value for a finished completion); the run's real status is
/// in `metadata.status` and `metadata.error`.
pub fn webhook_request(spec: &RunSpec, outcome: &RunOutcome) -> Value {
    let outputs = Value::Object(outcome.outputs.clone().unwrap_or_default());
    let user_email = crate::email::looks_like_email(&spec.user).then(|| spec.user.clone());
    json!({
        "completion": {
            "id": format!("chatcmpl-{}", spec.run_id),
            "object": "chat.completion",
            "created": spec.created_at.as_secs(),
            "model": format!("hookrelay-workflow/{}", spec.app.id),
            "choices": [{
                "index": 0,
                "finish_reason": "stop",
                "logprobs": null,
                "message": {"role": "assistant", "content": outputs.to_string(), "parsed": outputs, "refusal": null},
            }],
            "usage": {
                "prompt_tokens": outcome.prompt_tokens,
                "completion_tokens": outcome.total_tokens.saturating_sub(outcome.prompt_tokens),
                "total_tokens": outcome.total_tokens,
            },
            "extraction_id": spec.run_id,
            "likelihoods": {},
            "request_at": spec.created_at.rfc3339(),
            "first_token_at": outcome.first_token_at.map(UnixMs::rfc3339),
            "last_token_at": outcome.last_token_at.map(UnixMs::rfc3339),
        },
        "user": user_email,
        "file_payload": file_payload(spec),
        "metadata": {
            "workflow_run_id": spec.run_id,
            "task_id": spec.task_id,
            "workflow_id": spec.app.id,
            "status": outcome.status.as_str(),
            "error": outcome.error,
            "elapsed_time": outcome.elapsed_time,
            "total_tokens": outcome.total_tokens,
            "total_steps": outcome.total_steps,
            "user": spec.user,
        },
    })
}

/// The first input file (of `files`, else of the file inputs) as uiform's `MIMEData`
/// (`filename`, `url`, `metadata`). A run
/// without files sends its inputs as a JSON document instead: uiform's `WebhookRequest`
/// requires a `file_payload`, and the inputs are what the run was made from.
fn file_payload(spec: &RunSpec) -> Value {
    let from_inputs = || {
        spec.app.inputs.iter().find_map(|field| match spec.inputs.get(&field.variable) {
            Some(v @ Value::Object(_)) if field.kind == InputKind::File => Some(v),
            Some(Value::Array(items)) if field.kind == InputKind::FileList => items.first(),
            _ => None,
        })
    };
    let Some(file) = spec.files.first().or_else(from_inputs) else {
        use base64::Engine;
        let document = Value::Object(spec.inputs.clone()).to_string();
        let url = format!(
            "data:application/json;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(document)
        );
        return json!({"filename": format!("{}-inputs.json", spec.run_id), "url": url, "metadata": {"source": "inputs"}});
    };
    let url = file.get("url").and_then(Value::as_str).unwrap_or_default();
    let filename = file
        .get("filename")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| url.rsplit('/').next().map(|s| s.split('?').next().unwrap_or(s).to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "file".into());
    let mut metadata = Map::new();
    for key in ["type", "transfer_method", "upload_file_id", "mime_type", "size"] {
        if let Some(v) = file.get(key) {
            metadata.insert(key.into(), v.clone());
        }
    }
    json!({"filename": filename, "url": url, "metadata": metadata})
}
