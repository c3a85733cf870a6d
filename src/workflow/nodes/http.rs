//! The `http-request` node: a templated call through the same SSRF guard as deliveries.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::outbound::{ErrorCode, Sender};
use crate::workflow::error::{NodeDefinitionError, NodeError};
use crate::workflow::variables::Pool;

/// Most response bytes a node keeps.
const BODY_CAP: usize = 1024 * 1024;

/// Settings of an http-request node. `url`, header values and `body` may hold
/// `{{#node.var#}}` references.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestNode {
    /// `GET` (default), `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
    #[serde(default = "get")]
    pub method: String,
    /// Absolute http(s) URL.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// Whole-call timeout (default 30 s).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

fn get() -> String {
    "GET".into()
}

impl HttpRequestNode {
    /// Rejects an unknown method or an empty URL.
    pub fn validate(&self) -> Result<(), NodeDefinitionError> {
        if !matches!(
            self.method.to_ascii_uppercase().as_str(),
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD"
        ) {
            return Err(NodeDefinitionError::UnknownMethod(self.method.clone()));
        }
        if self.url.trim().is_empty() {
            return Err(NodeDefinitionError::EmptyUrl);
        }
        Ok(())
    }

    /// Makes the call; outputs `status_code`, `headers` (object) and `body` (text).
    pub async fn run(&self, pool: &Pool, sender: &Sender) -> Result<Map<String, Value>, NodeError> {
        let url = pool.substitute(&self.url);
        let method = reqwest::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| NodeError::UnknownMethod(self.method.clone()))?;
        let headers: Vec<(String, String)> =
            self.headers.iter().map(|(k, v)| (k.clone(), pool.substitute(v))).collect();
        let body = self.body.as_deref().map(|b| pool.substitute(b));
        let timeout = Duration::from_secs(self.timeout_secs.unwrap_or(30));
        let result = sender
            .request(method, &url, &headers, body.map(Into::into), Some(timeout), BODY_CAP)
            .await;
        // Any status is an output for the graph to branch on, except when no answer came or
        // the answer redirected to a target the SSRF guard refuses.
        if let Some((code, detail)) = result.error {
            if result.status == 0 || code == ErrorCode::BlockedTarget {
                return Err(NodeError::Call { code, detail });
            }
        }
        let headers: Value =
            serde_json::from_str(&result.response_headers).unwrap_or_else(|_| json!({}));
        let text = String::from_utf8_lossy(result.body.as_deref().unwrap_or_default()).into_owned();
        let mut out = Map::new();
        out.insert("status_code".into(), result.status.into());
        out.insert("headers".into(), headers);
        out.insert("body".into(), text.into());
        Ok(out)
    }
}
