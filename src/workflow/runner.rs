//! Runs a workflow graph: walks from the start node along edges (an if-else follows one
//! branch), records each node's outputs in the pool, emits Dify's events, and stops on
//! error, on timeout, or when asked to (dropping the node's future aborts its I/O).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::app::{AppDefinition, Node, NodeKind};
use super::error::{NodeError, RunError};
use super::events::Events;
use super::graph::successors;
use super::nodes::{self, NodeContext};
use super::variables::Pool;
use crate::outbound::Sender;
use crate::time::UnixMs;

use crate::store::{NodeRun, NodeStatus};
pub use crate::store::{RunOutcome, RunStatus};

/// What a run is given.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The app.
    pub app: Arc<AppDefinition>,
    /// `workflow_run_id` (UUID).
    pub run_id: String,
    /// `task_id` (UUID), used to stop it.
    pub task_id: String,
    /// Validated inputs (defaults applied).
    pub inputs: Map<String, Value>,
    /// The end user (Dify's `user`).
    pub user: String,
    /// Files given with the run (`sys.files`).
    pub files: Vec<Value>,
    /// When it was created.
    pub created_at: UnixMs,
}

/// The `workflow_finished` data (also the blocking answer's `data`).
pub fn finished_data(spec: &RunSpec, outcome: &RunOutcome) -> Value {
    json!({
        "id": spec.run_id,
        "workflow_id": spec.app.id,
        "status": outcome.status.as_str(),
        "outputs": outcome.outputs,
        "error": outcome.error,
        "elapsed_time": outcome.elapsed_time,
        "total_tokens": outcome.total_tokens,
        "total_steps": outcome.total_steps,
        "created_at": spec.created_at.as_secs(),
        "finished_at": outcome.finished_at.as_secs(),
    })
}

/// What a run accumulated so far (filled by the graph walk or the upstream relay).
pub(super) struct Progress {
    pub(super) steps: u32,
    pub(super) tokens: u64,
    pub(super) prompt_tokens: u64,
    pub(super) outputs: Option<Map<String, Value>>,
    pub(super) first_token_at: Option<UnixMs>,
    pub(super) last_token_at: Option<UnixMs>,
    /// For upstream apps: the upstream's task id, to stop it there too.
    pub(super) upstream_task: Option<String>,
    /// The nodes executed so far, each recorded as it starts and completed from its
    /// `node_finished` (an upstream app's nodes run upstream: none here).
    pub(super) nodes: Vec<NodeRun>,
}

/// Runs `spec` to its end (the caller commits it, then emits `workflow_finished`). `stop`
/// turning true stops it; the app's timeout fails it. No value a node produces may be longer
/// than `max_output_bytes` (see [`NodeContext::max_output_bytes`]).
pub async fn run(
    spec: &RunSpec,
    sender: &Sender,
    events: &Events,
    max_output_bytes: usize,
    mut stop: watch::Receiver<bool>,
) -> RunOutcome {
    let started = Instant::now();
    events.emit(
        "workflow_started",
        json!({"id": spec.run_id, "workflow_id": spec.app.id, "inputs": spec.inputs, "created_at": spec.created_at.as_secs()}),
    );
    let mut progress = Progress {
        steps: 0,
        tokens: 0,
        prompt_tokens: 0,
        outputs: None,
        first_token_at: None,
        last_token_at: None,
        upstream_task: None,
        nodes: Vec::new(),
    };
    let timeout = std::time::Duration::from_secs(spec.app.run_timeout_secs);
    let walk = async {
        match &spec.app.upstream {
            Some(upstream) => {
                super::upstream::forward(upstream, spec, sender, events, &mut progress).await
            }
            None => walk(spec, sender, events, max_output_bytes, &mut progress).await,
        }
    };
    let (status, error) = tokio::select! {
        result = tokio::time::timeout(timeout, walk) => match result {
            Ok(Ok(())) => (RunStatus::Succeeded, None),
            Ok(Err(e)) => (RunStatus::Failed, Some(e)),
            Err(_) => (RunStatus::Failed, Some(RunError::TimedOut(spec.app.run_timeout_secs))),
        },
        () = stopped(&mut stop) => (RunStatus::Stopped, Some(RunError::Stopped)),
    };
    if let (RunStatus::Stopped, Some(upstream), Some(task)) =
        (status, &spec.app.upstream, &progress.upstream_task)
    {
        super::upstream::stop(upstream, task, &spec.user, sender).await;
    }
    RunOutcome {
        status,
        outputs: if status == RunStatus::Succeeded {
            progress.outputs.or_else(|| Some(Map::new()))
        } else {
            None
        },
        error: error.map(|e| super::error::recorded(e.to_string())),
        elapsed_time: started.elapsed().as_secs_f64(),
        total_tokens: progress.tokens,
        prompt_tokens: progress.prompt_tokens,
        total_steps: progress.steps,
        finished_at: UnixMs::now(),
        first_token_at: progress.first_token_at,
        last_token_at: progress.last_token_at,
        nodes: progress.nodes,
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Walks the graph breadth-first from the start node, each node once, stopping at the
/// first node that fails; a walk that never reaches an end node fails too.
async fn walk(
    spec: &RunSpec,
    sender: &Sender,
    events: &Events,
    max_output_bytes: usize,
    progress: &mut Progress,
) -> Result<(), RunError> {
    let app = &spec.app;
    let mut pool = Pool::default();
    pool.set("sys", system_variables(spec));

    let start =
        app.nodes.iter().find(|n| matches!(n.kind, NodeKind::Start {})).ok_or(RunError::NoStart)?;
    let mut queue: VecDeque<(&str, Option<&str>)> = VecDeque::from([(start.id.as_str(), None)]);
    let mut done: HashSet<&str> = HashSet::new();
    while let Some((node_id, predecessor)) = queue.pop_front() {
        if !done.insert(node_id) {
            continue;
        }
        let node = app
            .nodes
            .iter()
            .find(|n| n.id == node_id)
            .ok_or_else(|| RunError::UnknownNode(node_id.to_string()))?;
        progress.steps += 1;
        let (common, record) = emit_node_started(events, node, progress.steps, predecessor);
        progress.nodes.push(record);
        let node_started = Instant::now();
        let result =
            execute_node(spec, sender, events, max_output_bytes, node, &mut pool, progress).await;
        let elapsed = node_started.elapsed().as_secs_f64();
        let mut finished = common;
        finished["elapsed_time"] = json!(elapsed);
        finished["process_data"] = Value::Null;
        match result {
            Ok(mut output) => {
                complete_record(progress, elapsed, None);
                progress.tokens += output.tokens;
                progress.prompt_tokens += output.prompt_tokens;
                emit_node_succeeded(events, finished, &mut output);
                if matches!(node.kind, NodeKind::End { .. }) {
                    progress.outputs.get_or_insert_with(Map::new).extend(output.outputs.clone());
                }
                pool.set(&node.id, output.outputs);
                for next in successors(app, &node.id, output.branch) {
                    queue.push_back((next, Some(node.id.as_str())));
                }
            }
            Err(source) => {
                let error = super::error::recorded(source.to_string());
                complete_record(progress, elapsed, Some(error.clone()));
                emit_node_failed(events, finished, error);
                return Err(RunError::Node { node: node.id.clone(), source });
            }
        }
    }
    if progress.outputs.is_none() {
        return Err(RunError::NoEndReached);
    }
    Ok(())
}

/// The `sys.*` variables every node can read (Dify's names).
fn system_variables(spec: &RunSpec) -> Map<String, Value> {
    let mut sys = Map::new();
    sys.insert("user_id".into(), spec.user.clone().into());
    sys.insert("app_id".into(), spec.app.id.clone().into());
    sys.insert("workflow_id".into(), spec.app.id.clone().into());
    sys.insert("workflow_run_id".into(), spec.run_id.clone().into());
    sys.insert("files".into(), Value::Array(spec.files.clone()));
    sys
}

/// Emits `node_started` for the `index`th node run; returns the fields it shares with the
/// node's `node_finished` (same execution id), for that event to build on, and the node's
/// record from the same values, [`NodeStatus::Unfinished`] until [`complete_record`].
fn emit_node_started(
    events: &Events,
    node: &Node,
    index: u32,
    predecessor: Option<&str>,
) -> (Value, NodeRun) {
    let execution_id = uuid::Uuid::now_v7().to_string();
    let title = node.title.clone().unwrap_or_else(|| node.id.clone());
    let started_at = UnixMs::now();
    let created_at = started_at.as_secs();
    let common = json!({
        "id": execution_id, "node_id": node.id, "node_type": node.kind.type_name(), "title": title,
        "index": index, "predecessor_node_id": predecessor, "created_at": created_at,
    });
    let mut started = common.clone();
    started["inputs"] = Value::Object(Map::new());
    events.emit("node_started", started);
    let record = NodeRun {
        node_id: node.id.clone(),
        node_type: node.kind.type_name().to_string(),
        title,
        index,
        status: NodeStatus::Unfinished,
        started_at: created_at,
        started_at_ms: Some(started_at.as_ms()),
        elapsed_time: None,
        error: None,
    };
    (common, record)
}

/// Completes the record of the node that just ran with what its `node_finished` carries.
fn complete_record(progress: &mut Progress, elapsed: f64, error: Option<String>) {
    if let Some(record) = progress.nodes.last_mut() {
        record.status = if error.is_some() { NodeStatus::Failed } else { NodeStatus::Succeeded };
        record.elapsed_time = Some(elapsed);
        record.error = error;
    }
}

/// Runs one node: the start node gives the run's inputs; any other node is executed
/// against the pool, its streamed text emitted as `text_chunk` and timed in `progress`.
async fn execute_node(
    spec: &RunSpec,
    sender: &Sender,
    events: &Events,
    max_output_bytes: usize,
    node: &Node,
    pool: &mut Pool,
    progress: &mut Progress,
) -> Result<nodes::NodeOutput, NodeError> {
    if matches!(node.kind, NodeKind::Start {}) {
        pool.set(&node.id, spec.inputs.clone());
        return Ok(nodes::NodeOutput {
            outputs: spec.inputs.clone(),
            inputs: spec.inputs.clone(),
            ..Default::default()
        });
    }
    let mut first = progress.first_token_at;
    let mut last = progress.last_token_at;
    let mut on_chunk = |text: &str| {
        let now = UnixMs::now();
        first.get_or_insert(now);
        last = Some(now);
        events
            .emit("text_chunk", json!({"text": text, "from_variable_selector": [node.id, "text"]}));
    };
    let mut ctx = NodeContext { sender, on_chunk: &mut on_chunk, max_output_bytes };
    let result = nodes::execute(node, pool, &mut ctx).await;
    progress.first_token_at = first;
    progress.last_token_at = last;
    result
}

/// Emits `node_finished` for a node that succeeded (its inputs move into the event; its
/// outputs stay with the caller for the pool).
fn emit_node_succeeded(events: &Events, mut finished: Value, output: &mut nodes::NodeOutput) {
    finished["inputs"] = Value::Object(std::mem::take(&mut output.inputs));
    finished["outputs"] = Value::Object(output.outputs.clone());
    finished["status"] = "succeeded".into();
    finished["error"] = Value::Null;
    finished["execution_metadata"] =
        json!({"total_tokens": output.tokens, "total_price": 0, "currency": "USD"});
    events.emit("node_finished", finished);
}

/// Emits `node_finished` for a node that failed, with its error.
fn emit_node_failed(events: &Events, mut finished: Value, error: String) {
    finished["inputs"] = Value::Object(Map::new());
    finished["outputs"] = Value::Null;
    finished["status"] = "failed".into();
    finished["error"] = error.into();
    finished["execution_metadata"] =
        json!({"total_tokens": 0, "total_price": 0, "currency": "USD"});
    events.emit("node_finished", finished);
}
