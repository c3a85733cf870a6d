//! Why a node or a run failed, as types: callers match on the variant; the text (`Display`)
//! is what a run records and shows in `error`, and nothing ever parses it back.

use futures_util::StreamExt;

/// Longest excerpt of an error body an llm or upstream server answered that a message keeps,
/// in characters. Bodies are read only this far (see [`body_excerpt`]).
pub const ERROR_BODY_CHARS: usize = 500;

/// The start of an error answer's body, at most [`ERROR_BODY_CHARS`] characters. Reads no
/// more than those characters can take (4 bytes each), so an endless or huge error body
/// costs neither memory nor the run's time; an unreadable body reads as empty.
pub(super) async fn body_excerpt(response: reqwest::Response) -> String {
    let max_bytes = ERROR_BODY_CHARS * 4;
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while bytes.len() < max_bytes {
        match stream.next().await {
            Some(Ok(chunk)) => {
                bytes.extend_from_slice(&chunk[..chunk.len().min(max_bytes - bytes.len())])
            }
            Some(Err(_)) | None => break,
        }
    }
    String::from_utf8_lossy(&bytes).chars().take(ERROR_BODY_CHARS).collect()
}

/// Why a node failed while running.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A template-transform's template failed to render.
    #[error("template failed: {0}")]
    Template(String),
    /// An http-request node's method is not an HTTP method.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// The SSRF guard refused the target, or the URL did not parse.
    #[error("{0}")]
    Target(String),
    /// The call got no answer, or a redirect led to a refused target.
    #[error("{code}: {detail}")]
    Call {
        /// The delivery error code (`E_TIMEOUT`, `E_BLOCKED_TARGET`, …).
        code: &'static str,
        /// What happened.
        detail: String,
    },
    /// The llm request could not be sent or got no answer.
    #[error("llm request failed: {0}")]
    LlmRequest(reqwest::Error),
    /// The llm answered a non-2xx status.
    #[error("llm answered HTTP {status}: {body}")]
    LlmStatus {
        /// The status.
        status: u16,
        /// The start of its body (at most [`ERROR_BODY_CHARS`] characters).
        body: String,
    },
    /// The llm's stream broke off.
    #[error("llm stream broke: {0}")]
    LlmStream(reqwest::Error),
    /// The llm's stream had a line longer than the decoder's bound.
    #[error("llm stream: {0}")]
    LlmLine(super::sse::LineTooLong),
    /// A reply requested as JSON (`json_schema`) was not JSON.
    #[error("llm reply is not the requested JSON: {0}")]
    LlmNotJson(serde_json::Error),
}

/// Why a run failed or stopped (recorded as its `error`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The app has no start node (validation prevents it).
    #[error("no start node")]
    NoStart,
    /// An edge leads to a node the app lacks (validation prevents it).
    #[error("unknown node {0}")]
    UnknownNode(String),
    /// A node failed.
    #[error("node {node}: {source}")]
    Node {
        /// Its id.
        node: String,
        /// Why.
        source: NodeError,
    },
    /// The walk ended on a branch without an end node.
    #[error("the run ended without reaching an end node")]
    NoEndReached,
    /// The app's `run_timeout_secs` passed.
    #[error("run timed out after {0} s")]
    TimedOut(u64),
    /// Stopped on request.
    #[error("stopped by the user")]
    Stopped,
    /// The code running it panicked (the panic itself is logged).
    #[error("internal error: the run panicked")]
    Panicked,
    /// The relay stopped while it ran.
    #[error("the relay stopped during the run")]
    Interrupted,
    /// The SSRF guard refused the upstream's URL.
    #[error("{0}")]
    UpstreamTarget(String),
    /// The upstream could not be reached.
    #[error("upstream request failed: {0}")]
    UpstreamRequest(reqwest::Error),
    /// The upstream answered a non-2xx status.
    #[error("upstream answered HTTP {status}: {body}")]
    UpstreamStatus {
        /// The status.
        status: u16,
        /// The start of its body (at most [`ERROR_BODY_CHARS`] characters).
        body: String,
    },
    /// The upstream's stream broke off.
    #[error("upstream stream broke: {0}")]
    UpstreamStream(reqwest::Error),
    /// The upstream's stream had a line longer than the decoder's bound.
    #[error("upstream stream: {0}")]
    UpstreamLine(super::sse::LineTooLong),
    /// The upstream's stream ended before `workflow_finished`.
    #[error("the upstream stream ended before workflow_finished")]
    UpstreamEndedEarly,
    /// The upstream run finished without succeeding.
    #[error("upstream run {status}: {error}")]
    UpstreamRun {
        /// Its final status (`failed`, `stopped`; `ended` when it named none).
        status: String,
        /// Its error.
        error: String,
    },
    /// The upstream sent an `error` event.
    #[error("upstream error: {0}")]
    Upstream(String),
}
