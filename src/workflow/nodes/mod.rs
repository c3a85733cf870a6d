//! Node execution: each kind turns the pool (and its settings) into outputs.

pub mod condition;
pub mod http;
pub mod llm;

use serde_json::{Map, Value};

use super::app::{Binding, Node, NodeKind};
use super::error::NodeError;
use super::variables::Pool;
use crate::outbound::Sender;

/// What a node produced.
#[derive(Debug, Default)]
pub struct NodeOutput {
    /// Its outputs (`{{#node.key#}}`).
    pub outputs: Map<String, Value>,
    /// The values it read, for the `node_*` events.
    pub inputs: Map<String, Value>,
    /// For if-else: `"true"` or `"false"`.
    pub branch: Option<&'static str>,
    /// Tokens spent (llm).
    pub tokens: u64,
    /// Of which prompt tokens.
    pub prompt_tokens: u64,
}

/// What nodes may use while running.
pub struct NodeContext<'a> {
    /// Guarded HTTP client (SSRF policy of deliveries).
    pub sender: &'a Sender,
    /// Receives streamed llm text.
    pub on_chunk: &'a mut (dyn FnMut(&str) + Send),
    /// Longest reply an llm node accumulates, bytes (`limits.max_body_bytes`): a run's
    /// outputs end in its completion webhook, which no longer reply could fit, and an
    /// endless reply must not grow memory without limit.
    pub max_output_bytes: usize,
}

fn bound(bindings: &[Binding], pool: &Pool) -> Map<String, Value> {
    bindings
        .iter()
        .map(|b| (b.variable.clone(), pool.get(&b.value_selector).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// Runs one node (start nodes are filled by the runner and yield nothing here).
pub async fn execute(
    node: &Node,
    pool: &Pool,
    ctx: &mut NodeContext<'_>,
) -> Result<NodeOutput, NodeError> {
    match &node.kind {
        NodeKind::Start {} => Ok(NodeOutput::default()),
        NodeKind::TemplateTransform { template, variables } => {
            let inputs = bound(variables, pool);
            let env = minijinja::Environment::new();
            let rendered = env
                .render_str(template, minijinja::Value::from(minijinja::value::Serde(&inputs)))
                .map_err(|e| NodeError::Template(e.to_string()))?;
            let mut outputs = Map::new();
            outputs.insert("output".into(), rendered.into());
            Ok(NodeOutput { outputs, inputs, ..NodeOutput::default() })
        }
        NodeKind::HttpRequest(h) => {
            Ok(NodeOutput { outputs: h.run(pool, ctx.sender).await?, ..NodeOutput::default() })
        }
        NodeKind::Llm(l) => {
            ctx.sender.check_target(&l.base_url).map_err(NodeError::Target)?;
            let result =
                l.run(pool, ctx.sender.client(), ctx.max_output_bytes, ctx.on_chunk).await?;
            Ok(NodeOutput {
                outputs: result.outputs,
                tokens: result.total_tokens,
                prompt_tokens: result.prompt_tokens,
                ..NodeOutput::default()
            })
        }
        NodeKind::IfElse(c) => {
            let taken = c.evaluate(pool);
            let mut outputs = Map::new();
            outputs.insert("result".into(), taken.into());
            Ok(NodeOutput {
                outputs,
                branch: Some(if taken { "true" } else { "false" }),
                ..NodeOutput::default()
            })
        }
        NodeKind::End { outputs } => {
            let values = bound(outputs, pool);
            Ok(NodeOutput { inputs: values.clone(), outputs: values, ..NodeOutput::default() })
        }
    }
}
