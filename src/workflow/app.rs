//! Workflow app definitions, as written in the config (`[[apps]]`): identity and keys, the
//! input form, file-upload settings, and the graph of nodes and edges. [`validate`] rejects a
//! bad definition at start-up with a message naming the app and node.

use std::collections::{HashMap, HashSet};

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

/// Node kinds, named as in Dify.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum NodeKind {
    /// Entry: its outputs are the run's inputs.
    #[serde(rename = "start")]
    Start,
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
            NodeKind::Start => "start",
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

/// Checks every app: unique ids and keys, one start node, at least one end, edges between
/// known nodes, if-else edges labelled, no cycles, templates that compile, selectors that
/// name a node. The error names the app and the node.
pub fn validate(apps: &[AppDefinition]) -> Result<(), String> {
    let mut app_ids = HashSet::new();
    let mut keys = HashSet::new();
    for app in apps {
        let at = |what: String| format!("apps.{}: {what}", app.id);
        if app.id.is_empty() || !app_ids.insert(app.id.as_str()) {
            return Err(format!("apps: app id `{}` is empty or used twice", app.id));
        }
        if app.api_keys.is_empty() {
            return Err(at("needs at least one api key".into()));
        }
        for key in &app.api_keys {
            if !key.starts_with("app-") || key.len() < 16 {
                return Err(at(
                    "api keys must start with `app-` and have at least 16 characters".into()
                ));
            }
            if !keys.insert(key.as_str()) {
                return Err(at("an api key is used by two apps".into()));
            }
        }
        for field in &app.inputs {
            if field.kind == InputKind::Select && field.options.is_empty() {
                return Err(at(format!("input `{}`: a select needs options", field.variable)));
            }
        }
        match &app.upstream {
            Some(upstream) => {
                if !app.nodes.is_empty() || !app.edges.is_empty() {
                    return Err(at(
                        "an app has either an upstream or nodes and edges, not both".into()
                    ));
                }
                if url::Url::parse(&upstream.base_url).is_err() {
                    return Err(at(format!(
                        "upstream.base_url `{}` is not an absolute URL",
                        upstream.base_url
                    )));
                }
            }
            None => validate_graph(app).map_err(at)?,
        }
    }
    Ok(())
}

fn validate_graph(app: &AppDefinition) -> Result<(), String> {
    let mut ids = HashMap::new();
    for node in &app.nodes {
        if ids.insert(node.id.as_str(), node).is_some() || node.id == "sys" {
            return Err(format!("node `{}`: id used twice (or reserved)", node.id));
        }
    }
    let starts: Vec<_> = app.nodes.iter().filter(|n| matches!(n.kind, NodeKind::Start)).collect();
    if starts.len() != 1 {
        return Err(format!("needs exactly one start node, found {}", starts.len()));
    }
    if !app.nodes.iter().any(|n| matches!(n.kind, NodeKind::End { .. })) {
        return Err("needs an end node".into());
    }
    for edge in &app.edges {
        for end in [&edge.source, &edge.target] {
            if !ids.contains_key(end.as_str()) {
                return Err(format!(
                    "edge {} -> {}: unknown node `{end}`",
                    edge.source, edge.target
                ));
            }
        }
        let from_if =
            ids.get(edge.source.as_str()).is_some_and(|n| matches!(n.kind, NodeKind::IfElse(_)));
        let handle = edge.source_handle.as_deref();
        if from_if && !matches!(handle, Some("true" | "false")) {
            return Err(format!(
                "node `{}`: edges from an if-else need source_handle \"true\" or \"false\"",
                edge.source
            ));
        }
    }
    for node in &app.nodes {
        let check = |selector: &[String]| -> Result<(), String> {
            match selector.first().map(String::as_str) {
                Some("sys") if selector.len() == 2 => Ok(()),
                Some(id) if selector.len() >= 2 && ids.contains_key(id) => Ok(()),
                _ => Err(format!("node `{}`: selector {selector:?} names no node", node.id)),
            }
        };
        match &node.kind {
            NodeKind::TemplateTransform { template, variables } => {
                variables.iter().try_for_each(|b| check(&b.value_selector))?;
                minijinja::Environment::new()
                    .template_from_str(template)
                    .map_err(|e| format!("node `{}`: template does not compile: {e}", node.id))?;
            }
            NodeKind::End { outputs } => {
                outputs.iter().try_for_each(|b| check(&b.value_selector))?
            }
            NodeKind::IfElse(c) => {
                c.conditions.iter().try_for_each(|c| check(&c.variable_selector))?
            }
            NodeKind::HttpRequest(h) => {
                h.validate().map_err(|e| format!("node `{}`: {e}", node.id))?
            }
            NodeKind::Llm(l) => l.validate().map_err(|e| format!("node `{}`: {e}", node.id))?,
            NodeKind::Start => {}
        }
    }
    if let Some(node) = super::graph::cycle_node(app) {
        return Err(format!("node `{node}`: is on a cycle; workflow graphs must be acyclic"));
    }
    let start = starts[0].id.as_str();
    let reachable = super::graph::reachable(app, start);
    if !app
        .nodes
        .iter()
        .any(|n| matches!(n.kind, NodeKind::End { .. }) && reachable.contains(n.id.as_str()))
    {
        return Err(format!("no end node is reachable from the start node `{start}`"));
    }
    Ok(())
}
