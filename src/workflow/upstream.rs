//! Upstream apps: a run is forwarded to a Dify-compatible server in streaming mode; its
//! events are relayed to this run's client under this run's ids, and its final event
//! decides the outcome recorded here (so existing Dify deployments get completion webhooks).
//! The stream is decoded by [`super::sse::SseDecoder`].

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::app::Upstream;
use super::error::{send_checked, RunError, ServerError};
use super::events::Events;
use super::runner::{Progress, RunSpec};
use super::sse::{SseDecoder, MAX_EVENT_BYTES};
use crate::outbound::Sender;
use crate::time::UnixMs;

/// Forwards `spec` to `upstream`; `Ok` when it finished `succeeded`.
pub(super) async fn forward(
    upstream: &Upstream,
    spec: &RunSpec,
    sender: &Sender,
    events: &Events,
    progress: &mut Progress,
) -> Result<(), RunError> {
    let url = format!("{}/workflows/run", upstream.base_url.trim_end_matches('/'));
    sender.check_target(&url).map_err(RunError::UpstreamTarget)?;
    let body = json!({"inputs": spec.inputs, "response_mode": "streaming", "user": spec.user, "files": spec.files});
    let request = sender
        .client()
        .post(&url)
        .bearer_auth(&upstream.api_key)
        .timeout(std::time::Duration::from_secs(spec.app.run_timeout_secs))
        .json(&body);
    let response = send_checked(request).await.map_err(RunError::UpstreamCall)?;
    let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RunError::UpstreamCall(ServerError::Stream(e)))?;
        let decoded =
            decoder.push(&chunk).map_err(|e| RunError::UpstreamCall(ServerError::Line(e)))?;
        for event in decoded {
            if let Some(done) = relay(&event, events, progress) {
                return done;
            }
        }
    }
    Err(RunError::UpstreamEndedEarly)
}

/// Relays one upstream event; returns the run's result once the upstream run is over.
fn relay(event: &Value, events: &Events, progress: &mut Progress) -> Option<Result<(), RunError>> {
    let name = event.get("event").and_then(Value::as_str).unwrap_or("");
    if progress.upstream_task.is_none() {
        progress.upstream_task = event.get("task_id").and_then(Value::as_str).map(str::to_string);
    }
    let mut data = event.get("data").cloned().unwrap_or(Value::Null);
    match name {
        // This run's own workflow_started was already sent; its finish is sent after commit.
        "workflow_started" => None,
        "node_started" | "node_finished" | "text_chunk" => {
            if name == "node_finished" {
                progress.steps += 1;
            }
            if name == "text_chunk" {
                let now = UnixMs::now();
                progress.first_token_at.get_or_insert(now);
                progress.last_token_at = Some(now);
            }
            events.emit(name, data);
            None
        }
        "workflow_finished" => {
            progress.tokens = data.get("total_tokens").and_then(Value::as_u64).unwrap_or(0);
            progress.steps = data
                .get("total_steps")
                .and_then(|s| s.as_u64().or_else(|| s.as_str().and_then(|t| t.parse().ok())))
                .map_or(progress.steps, |s| u32::try_from(s).unwrap_or(u32::MAX));
            progress.outputs = data.get_mut("outputs").and_then(|o| o.as_object().cloned());
            match data.get("status").and_then(Value::as_str) {
                Some("succeeded") => Some(Ok(())),
                other => {
                    let error = data
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("upstream run did not succeed");
                    Some(Err(RunError::UpstreamRun {
                        status: other.unwrap_or("ended").to_string(),
                        error: error.to_string(),
                    }))
                }
            }
        }
        "error" => {
            let message = event.get("message").and_then(Value::as_str).unwrap_or("upstream error");
            Some(Err(RunError::Upstream(message.to_string())))
        }
        _ => None,
    }
}

/// Stops the upstream's task (best effort: the run here is already stopped).
pub(super) async fn stop(upstream: &Upstream, task_id: &str, user: &str, sender: &Sender) {
    let url = format!("{}/workflows/tasks/{task_id}/stop", upstream.base_url.trim_end_matches('/'));
    let sent = sender
        .client()
        .post(url)
        .bearer_auth(&upstream.api_key)
        .timeout(std::time::Duration::from_secs(5))
        .json(&json!({"user": user}))
        .send()
        .await;
    if let Err(e) = sent {
        tracing::warn!(task = %task_id, error = %e, "stopping the upstream task failed");
    }
}
