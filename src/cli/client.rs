//! The HTTP client of the operator commands: one call to the server's API, its JSON answer,
//! or why there is none, as a [`CliError`] that knows its exit code.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// Why a command failed, each with its exit code (listed in `hookrelay --help`).
#[derive(Debug)]
pub enum CliError {
    /// The server answered with an error (any 4xx or 5xx): exit 1.
    Refused {
        /// HTTP status.
        status: u16,
        /// The error body's `code` (empty when the body was not an API error).
        code: String,
        /// The error body's `message` (or the body itself).
        message: String,
        /// The field the error names, if any.
        field: Option<String>,
    },
    /// No answer: the server is down, the address wrong, or the answer unreadable: exit 3.
    Unreachable(String),
    /// Writing the output failed (a closed pipe): exit 1.
    Output(String),
}

impl CliError {
    /// The process exit code: 1 refused, 3 unreachable (2, usage, is clap's own).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Refused { .. } | CliError::Output(_) => ExitCode::from(1),
            CliError::Unreachable(_) => ExitCode::from(3),
        }
    }

    /// An error answer, read from its `{code, message, field}` body when it has one.
    fn refused(status: u16, body: &str) -> Self {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let text = |key: &str| parsed.get(key).and_then(Value::as_str).map(str::to_string);
        CliError::Refused {
            status,
            code: text("code").unwrap_or_default(),
            message: text("message").unwrap_or_else(|| body.trim().chars().take(300).collect()),
            field: text("field"),
        }
    }
}

/// One readable line: `error: 404 not_found: log not found (field: x)`.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Refused { status, code, message, field } => {
                write!(f, "error: {status} {code}: {message}")?;
                if let Some(field) = field {
                    write!(f, " (field: {field})")?;
                }
                Ok(())
            }
            CliError::Unreachable(why) => write!(f, "error: {why}"),
            CliError::Output(why) => write!(f, "error: cannot write the output: {why}"),
        }
    }
}

/// A server's API at `base`, called with `key`.
pub struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`); `key` is sent as `Api-Key`.
    pub fn new(base: &str, key: Option<String>) -> Result<Self, CliError> {
        // reqwest is built without a default TLS provider (as the relay's own sender):
        // an https:// server needs one installed. Err = one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CliError::Unreachable(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self { base: base.trim_end_matches('/').to_string(), key, http })
    }

    /// `GET path` (with its query).
    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body, or none.
    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        self.call(Method::POST, path, body).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value, CliError> {
        self.call(Method::DELETE, path, None).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(key) = &self.key {
            request = request.header("api-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |e: reqwest::Error| {
            CliError::Unreachable(format!("cannot reach the server at {}: {}", self.base, why(&e)))
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(CliError::refused(status.as_u16(), &text));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| CliError::Unreachable(format!("the answer from {url} is not JSON ({e})")))
    }
}

/// The innermost cause of a failed call (reqwest's own message is the outermost, and says
/// only "error sending request").
fn why(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

/// `value` for a URL's path or query, with everything but unreserved characters escaped.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
