//! Workflow app definitions, as written in the config (`[[apps]]`): identity and keys, the
//! input form, file-upload settings, and the graph of nodes and edges. They are read and
//! checked at start-up by [`super::definitions::load`].

use serde::Deserialize;
use serde_json::Value;

/// One workflow app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDefinition {
    /// Stable id; also the `processor_id` automations subscribe to for its completions.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// App API keys (`app-…`); the key a request presents selects the app, as in Dify.
    pub api_keys: Vec<String>,
    /// A run still going after this many seconds ends `failed`.
    #[serde(default = "default_run_timeout")]
    pub run_timeout_secs: u64,
    /// The input form (Dify's `user_input_form`).
    #[serde(default)]
    pub inputs: Vec<InputField>,
    /// Which files runs accept.
    #[serde(default)]
    pub file_upload: FileUpload,
    /// The graph's nodes.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// The graph's edges.
    #[serde(default)]
    pub edges: Vec<Edge>,
    /// Instead of a graph: an upstream Dify-compatible server that runs the workflow.
    #[serde(default)]
    pub upstream: Option<Upstream>,
}

/// An upstream Dify-compatible app: runs are forwarded there in streaming mode, its events
/// relayed to the client, and the finished run recorded and turned into webhooks here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Base URL including `/v1`, e.g. `https://api.dify.ai/v1`.
    pub base_url: String,
    /// The upstream app's key (`app-…`).
    pub api_key: String,
}

fn default_run_timeout() -> u64 {
    300
}

/// Input kinds, named as in Dify.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum InputKind {
    /// One line of text.
    #[serde(rename = "text-input")]
    TextInput,
    /// Multi-line text.
    #[serde(rename = "paragraph")]
    Paragraph,
    /// One of `options`.
    #[serde(rename = "select")]
    Select,
    /// A number.
    #[serde(rename = "number")]
    Number,
    /// One file (an object `{type, transfer_method, url | upload_file_id}`).
    #[serde(rename = "file")]
    File,
    /// A list of files.
    #[serde(rename = "file-list")]
    FileList,
}

impl InputKind {
    /// Dify's name.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::TextInput => "text-input",
            InputKind::Paragraph => "paragraph",
            InputKind::Select => "select",
            InputKind::Number => "number",
            InputKind::File => "file",
            InputKind::FileList => "file-list",
        }
    }
}

/// One field of the input form.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputField {
    /// Kind of input.
    #[serde(rename = "type")]
    pub kind: InputKind,
    /// Variable name (`{{#start.NAME#}}`).
    pub variable: String,
    /// Label shown to people.
    #[serde(default)]
    pub label: String,
    /// Whether a run must give it.
    #[serde(default)]
    pub required: bool,
    /// Used when a run does not give it.
    #[serde(default)]
    pub default: Option<Value>,
    /// Allowed values of a `select`.
    #[serde(default)]
    pub options: Vec<String>,
    /// Longest text accepted (characters).
    #[serde(default)]
    pub max_length: Option<usize>,
}

/// File-upload settings (Dify's `file_upload` in `/parameters`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileUpload {
    /// Whether runs accept files at all.
    pub enabled: bool,
    /// Kinds accepted: `document`, `image`, `audio`, `video`, `custom`.
    pub allowed_types: Vec<String>,
    /// Extensions accepted for `custom` (without the dot).
    pub allowed_extensions: Vec<String>,
    /// Most files per run.
    pub number_limits: usize,
    /// `local_file` and/or `remote_url`.
    pub transfer_methods: Vec<String>,
}

impl Default for FileUpload {
    fn default() -> Self {
        Self {
            enabled: false,
            allowed_types: vec!["document".into(), "image".into()],
            allowed_extensions: Vec::new(),
            number_limits: 3,
            transfer_methods: vec!["local_file".into(), "remote_url".into()],
        }
    }
}

/// A graph node: an id, a title, and its kind's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    /// Unique within the app; referenced as `{{#ID.var#}}`.
    pub id: String,
    /// Shown in events (defaults to the id).
    #[serde(default)]
    pub title: Option<String>,
    /// What the node does.
    #[serde(flatten)]
    pub kind: NodeKind,
}

/// A `{variable, value_selector}` pair: a name bound to another node's output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The name in this node.
    pub variable: String,
    /// `[node_id, output]` (or `["sys", "user_id"]`).
    pub value_selector: Vec<String>,
}

/// Node kinds, named as in Dify. Unknown settings are refused, naming the field, so a typo
/// (`output` for `outputs`) cannot silently fall back to a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum NodeKind {
    /// Entry: its outputs are the run's inputs.
    #[serde(rename = "start")]
    Start {},
    /// Renders a minijinja template over bound variables; output `output`.
    #[serde(rename = "template-transform")]
    TemplateTransform {
        /// Jinja template.
        template: String,
        /// Names available in the template.
        #[serde(default)]
        variables: Vec<Binding>,
    },
    /// Calls an HTTP endpoint (through the SSRF guard); outputs `status_code`, `headers`, `body`.
    #[serde(rename = "http-request")]
    HttpRequest(super::nodes::http::HttpRequestNode),
    /// Calls an OpenAI-compatible chat-completions endpoint; outputs `text`, `usage` and,
    /// with a JSON schema, `structured_output`.
    #[serde(rename = "llm")]
    Llm(super::nodes::llm::LlmNode),
    /// Chooses the `true` or `false` branch.
    #[serde(rename = "if-else")]
    IfElse(super::nodes::condition::IfElseNode),
    /// The run's outputs.
    #[serde(rename = "end")]
    End {
        /// Outputs of the run.
        #[serde(default)]
        outputs: Vec<Binding>,
    },
}

impl NodeKind {
    /// Dify's node type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Start {} => "start",
            NodeKind::TemplateTransform { .. } => "template-transform",
            NodeKind::HttpRequest(_) => "http-request",
            NodeKind::Llm(_) => "llm",
            NodeKind::IfElse(_) => "if-else",
            NodeKind::End { .. } => "end",
        }
    }
}

/// A directed edge; from an `if-else` node, `source_handle` is `"true"` or `"false"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edge {
    /// From node id.
    pub source: String,
    /// To node id.
    pub target: String,
    /// Branch of an if-else source.
    #[serde(default)]
    pub source_handle: Option<String>,
}
