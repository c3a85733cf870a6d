//! Why a node or a run failed, as types: callers match on the variant; the text (`Display`)
//! is what a run records and shows in `error`, and nothing ever parses it back.

use futures_util::StreamExt;

/// Longest excerpt of an error body an llm or upstream server answered that a message keeps,
/// in characters. Bodies are read only this far (see [`body_excerpt`]).
pub const ERROR_BODY_CHARS: usize = 500;

/// How a streamed call to an llm or an upstream server failed; the two are read alike. The
/// text follows the server's name (`llm answered HTTP 401: …`).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request could not be sent or got no answer.
    #[error("request failed: {0}")]
    Request(reqwest::Error),
    /// A non-2xx status.
    #[error("answered HTTP {status}: {body}")]
    Status {
        /// The status.
        status: u16,
        /// The start of its body (at most [`ERROR_BODY_CHARS`] characters).
        body: String,
    },
    /// The stream broke off.
    #[error("stream broke: {0}")]
    Stream(reqwest::Error),
    /// The stream had a line longer than the decoder's bound.
    #[error("stream: {0}")]
    Line(super::sse::LineTooLong),
}

/// The response of `request` when its status is a success; otherwise the status with the
/// start of the body ([`body_excerpt`]).
pub(super) async fn send_checked(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ServerError> {
    let response = request.send().await.map_err(ServerError::Request)?;
    let status = response.status();
    if !status.is_success() {
        let body = body_excerpt(response).await;
        return Err(ServerError::Status { status: status.as_u16(), body });
    }
    Ok(response)
}

/// The start of an error answer's body, at most [`ERROR_BODY_CHARS`] characters. Reads no
/// more than those characters can take (4 bytes each), so an endless or huge error body
/// costs neither memory nor the run's time; an unreadable body reads as empty.
async fn body_excerpt(response: reqwest::Response) -> String {
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

/// `text` as a run records it (its `error`, a node's): each NUL replaced by U+FFFD. An llm
/// or upstream server's answer may hold NUL, which PostgreSQL's text columns refuse (the
/// write would fail and leave the run `running`) and SQLite's keep; replaced where the text
/// is made, it is the same on both backends, in the run's events and in its webhook.
pub fn recorded(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
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
        code: crate::outbound::ErrorCode,
        /// What happened.
        detail: String,
    },
    /// The call to the llm failed.
    #[error("llm {0}")]
    Llm(ServerError),
    /// The reply grew past the longest a run may hold (`limits.max_body_bytes`).
    #[error("llm reply is longer than limits.max_body_bytes ({max} bytes)")]
    LlmReplyTooLong {
        /// The bound, bytes.
        max: usize,
    },
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
    /// The call to the upstream failed.
    #[error("upstream {0}")]
    UpstreamCall(ServerError),
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
    /// The completion webhook of the run's outputs would be longer than a body may be.
    #[error(
        "the run's outputs make a completion webhook of {size} bytes, more than \
         limits.max_body_bytes ({max} bytes); the outputs are dropped"
    )]
    OutputsTooLarge {
        /// The webhook body's size with the outputs, bytes.
        size: usize,
        /// The bound, bytes.
        max: usize,
    },
    /// The upstream sent an `error` event.
    #[error("upstream error: {0}")]
    Upstream(String),
}

/// Why an app definition is refused at start-up: the dotted key at fault
/// (`apps.ID`, `apps.ID.nodes.NODE`, `apps.ID.nodes.NODE.FIELD`, `apps.ID.edges`) and the
/// problem.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct AppError {
    /// The dotted key, by app and node id.
    pub key: String,
    /// What is wrong there.
    pub problem: AppProblem,
}

/// What is wrong with an app definition.
#[derive(Debug, thiserror::Error)]
pub enum AppProblem {
    /// Two apps share an id, or one has none.
    #[error("app id `{0}` is empty or used twice")]
    AppId(String),
    /// An app id with characters other than letters, digits, `-` and `_`, or too long.
    #[error(
        "must be at most {0} ASCII letters, digits, `-` and `_` (it is a path segment of \
             the processor-scoped routes)"
    )]
    AppIdForm(usize),
    /// An input that no run could use as defined.
    #[error("{0}")]
    Input(String),
    /// A template using a tag that needs a template loader.
    #[error("`{0}` needs a template loader, and templates have none: inline the template")]
    TemplateTag(String),
    /// An app without keys could never be run.
    #[error("needs at least one api key")]
    NoApiKey,
    /// A key too short or without its prefix.
    #[error("api keys must start with `app-` and have at least 16 characters")]
    ApiKeyForm,
    /// A key would select two apps.
    #[error("an api key is used by two apps")]
    ApiKeyShared,
    /// A `select` input offers nothing to choose.
    #[error("input `{0}`: a select needs options")]
    SelectWithoutOptions(String),
    /// An app is either forwarded or run here.
    #[error("an app has either an upstream or nodes and edges, not both")]
    UpstreamAndGraph,
    /// The upstream's base URL does not parse.
    #[error("upstream.base_url `{0}` is not an absolute URL")]
    UpstreamUrl(String),
    /// Two nodes share an id, or one is named `sys`.
    #[error("id used twice (or reserved)")]
    NodeId,
    /// Not exactly one start node.
    #[error("needs exactly one start node, found {0}")]
    StartNodes(usize),
    /// No end node.
    #[error("needs an end node")]
    NoEnd,
    /// An edge names a node the app lacks.
    #[error("edge {from} -> {to}: unknown node `{unknown}`")]
    EdgeToUnknownNode {
        /// Its source.
        from: String,
        /// Its target.
        to: String,
        /// Which of the two is unknown.
        unknown: String,
    },
    /// An edge leaving an if-else names no branch.
    #[error("edges from the if-else `{0}` need source_handle \"true\" or \"false\"")]
    UnlabelledBranch(String),
    /// A selector names no node.
    #[error("selector {0:?} names no node")]
    UnknownSelector(Vec<String>),
    /// A template does not compile.
    #[error("does not compile: {0}")]
    Template(String),
    /// A node is on a cycle.
    #[error("`{0}` is on a cycle; workflow graphs must be acyclic")]
    Cycle(String),
    /// No end node can be reached.
    #[error("no end node is reachable from the start node `{0}`")]
    EndUnreachable(String),
    /// A node kind's own settings are unusable.
    #[error("{0}")]
    Node(#[from] NodeDefinitionError),
}

/// Why a node kind's settings are unusable (see each kind's `validate`).
#[derive(Debug, thiserror::Error)]
pub enum NodeDefinitionError {
    /// An http-request method that is not one of the six.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// An http-request without a URL.
    #[error("url is empty")]
    EmptyUrl,
    /// An llm base URL that does not parse.
    #[error("base_url `{0}` is not an absolute URL")]
    BaseUrl(String),
    /// An llm node without a prompt.
    #[error("an llm node needs messages")]
    NoMessages,
    /// A message role other than system, user, assistant.
    #[error("unknown message role `{0}`")]
    UnknownRole(String),
    /// A `json_schema` that is not an object.
    #[error("json_schema must be an object")]
    SchemaNotObject,
    /// An if-else combinator other than and/or.
    #[error("logical_operator `{0}` is not and/or")]
    LogicalOperator(String),
    /// An if-else without conditions.
    #[error("an if-else needs at least one condition")]
    NoConditions,
    /// An unknown comparison.
    #[error("unknown comparison_operator `{0}`")]
    UnknownOperator(String),
}

impl NodeDefinitionError {
    /// The node setting at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::UnknownMethod(_) => "method",
            Self::EmptyUrl => "url",
            Self::BaseUrl(_) => "base_url",
            Self::NoMessages | Self::UnknownRole(_) => "messages",
            Self::SchemaNotObject => "json_schema",
            Self::LogicalOperator(_) => "logical_operator",
            Self::NoConditions | Self::UnknownOperator(_) => "conditions",
        }
    }
}
