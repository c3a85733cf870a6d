//! The `llm` node: any OpenAI-compatible chat-completions endpoint, streamed so that text
//! chunks reach the run's SSE stream as they arrive; optional JSON-schema structured output.
//! The stream is read by the bounded [`SseDecoder`]; a line that is not a JSON `data:` event
//! is skipped, and `data: [DONE]` ends it.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::workflow::error::{send_checked, NodeDefinitionError, NodeError, ServerError};
use crate::workflow::sse::{SseDecoder, MAX_EVENT_BYTES};
use crate::workflow::variables::Pool;

/// One templated chat message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text with `{{#node.var#}}` references.
    pub text: String,
}

/// Settings of an llm node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmNode {
    /// Base URL of the API, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// API key, sent as `Authorization: Bearer`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Environment variable holding the API key (preferred over `api_key`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Model name.
    pub model: String,
    /// The prompt.
    pub messages: Vec<LlmMessage>,
    /// A JSON schema: the reply is requested as JSON matching it, and the parsed object
    /// becomes the node's `structured_output`.
    #[serde(default)]
    pub json_schema: Option<Value>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Whole-call timeout (default 120 s).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// What the node produced.
pub struct LlmResult {
    /// Outputs: `text`, `usage`, and `structured_output` with a schema.
    pub outputs: Map<String, Value>,
    /// Tokens used (prompt + completion).
    pub total_tokens: u64,
    /// Of which prompt tokens.
    pub prompt_tokens: u64,
}

impl LlmNode {
    /// Rejects an unusable definition.
    pub fn validate(&self) -> Result<(), NodeDefinitionError> {
        if url::Url::parse(&self.base_url).is_err() {
            return Err(NodeDefinitionError::BaseUrl(self.base_url.clone()));
        }
        if self.messages.is_empty() {
            return Err(NodeDefinitionError::NoMessages);
        }
        if let Some(m) = self
            .messages
            .iter()
            .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
        {
            return Err(NodeDefinitionError::UnknownRole(m.role.clone()));
        }
        if self.json_schema.as_ref().is_some_and(|s| !s.is_object()) {
            return Err(NodeDefinitionError::SchemaNotObject);
        }
        Ok(())
    }

    fn request_body(&self, pool: &Pool) -> Value {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": pool.substitute(&m.text)}))
            .collect();
        let mut body = json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(t) = self.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(schema) = &self.json_schema {
            body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}});
        }
        body
    }

    /// Calls the model, handing each text delta to `on_chunk`. A reply longer than
    /// `max_text_bytes` fails the node before the delta that would pass it is handed on.
    pub async fn run(
        &self,
        pool: &Pool,
        client: &reqwest::Client,
        max_text_bytes: usize,
        on_chunk: &mut (dyn FnMut(&str) + Send),
    ) -> Result<LlmResult, NodeError> {
        let key = match &self.api_key_env {
            Some(var) => std::env::var(var).ok(),
            None => self.api_key.clone(),
        };
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let mut request = client
            .post(url)
            .timeout(Duration::from_secs(self.timeout_secs.unwrap_or(120)))
            .json(&self.request_body(pool));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = send_checked(request).await.map_err(NodeError::Llm)?;
        let mut text = String::new();
        let mut usage = Value::Null;
        let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| NodeError::Llm(ServerError::Stream(e)))?;
            let events = decoder.push(&chunk).map_err(|e| NodeError::Llm(ServerError::Line(e)))?;
            for event in events {
                if let Some(delta) =
                    event.pointer("/choices/0/delta/content").and_then(Value::as_str)
                {
                    if !delta.is_empty() {
                        if text.len().saturating_add(delta.len()) > max_text_bytes {
                            return Err(NodeError::LlmReplyTooLong { max: max_text_bytes });
                        }
                        text.push_str(delta);
                        on_chunk(delta);
                    }
                }
                if event.get("usage").is_some_and(Value::is_object) {
                    usage = event["usage"].clone();
                }
            }
            if decoder.is_done() {
                break;
            }
        }
        let total_tokens = usage.get("total_tokens").and_then(Value::as_u64).unwrap_or(0);
        let prompt_tokens = usage.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
        let mut outputs = Map::new();
        if self.json_schema.is_some() {
            let parsed: Value = serde_json::from_str(&text).map_err(NodeError::LlmNotJson)?;
            outputs.insert("structured_output".into(), parsed);
        }
        outputs.insert("text".into(), text.into());
        outputs.insert("usage".into(), usage);
        Ok(LlmResult { outputs, total_tokens, prompt_tokens })
    }
}
