//! Workflow runs. A run's final state and its completion message (with one delivery per
//! subscribed automation) are committed in one transaction.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::column::Column;
use super::messages::{self, Accepted, NewMessage};
use super::{decode, pg, Backend, Conflict, Store, StoreError, StoreResult};
use crate::delivery::ticket::Intake;
use crate::time::UnixMs;

decode::stored_enum! {
    /// Where a run stands: `running` from its creation until it ends in one of the others.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum RunStatus {
        /// Still going.
        Running = "running",
        /// Reached an end node.
        Succeeded = "succeeded",
        /// A node failed, or the run timed out or was interrupted.
        Failed = "failed",
        /// Stopped on request.
        Stopped = "stopped",
    }
}

/// A stored run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// `workflow_run_id`.
    pub id: String,
    /// The app (workflow) id.
    pub app_id: String,
    /// `task_id`.
    pub task_id: String,
    /// Where it stands.
    pub status: RunStatus,
    /// Inputs as given (defaults applied).
    pub inputs: Map<String, Value>,
    /// Outputs of a succeeded run.
    pub outputs: Option<Map<String, Value>>,
    /// Why it failed or stopped.
    pub error: Option<String>,
    /// Dify's `user`.
    pub user: String,
    /// Files given.
    pub files: Vec<Value>,
    /// Seconds.
    pub elapsed_time: f64,
    /// Tokens.
    pub total_tokens: u64,
    /// Nodes executed.
    pub total_steps: u32,
    /// When it was created.
    pub created_at: UnixMs,
    /// When it ended.
    pub finished_at: Option<UnixMs>,
}

/// How a run ended: what the runner returns, and what [`Store::finish_run`] records. The
/// run row keeps all but the prompt-token count and the token times, which only the
/// completion message carries.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Final status.
    pub status: RunStatus,
    /// Outputs of the end node (succeeded runs).
    pub outputs: Option<Map<String, Value>>,
    /// Why it failed or stopped: the text of a `RunError`, as recorded and shown.
    pub error: Option<String>,
    /// Seconds.
    pub elapsed_time: f64,
    /// Tokens spent by llm nodes.
    pub total_tokens: u64,
    /// Of which prompt tokens.
    pub prompt_tokens: u64,
    /// Nodes executed.
    pub total_steps: u32,
    /// When it ended.
    pub finished_at: UnixMs,
    /// When the first and last llm tokens arrived, for the completion.
    pub first_token_at: Option<UnixMs>,
    /// See `first_token_at`.
    pub last_token_at: Option<UnixMs>,
    /// The nodes it ran, in execution order (see [`NodeRun`]).
    pub nodes: Vec<NodeRun>,
}

/// How a node's execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Its `node_finished` said `succeeded`.
    Succeeded,
    /// Its `node_finished` said `failed`.
    Failed,
    /// The run ended (stopped, or timed out) while the node ran: it sent no `node_finished`,
    /// so it has no elapsed time.
    Unfinished,
}

/// One node execution of a run, as stored with the run when it ends (`workflow_runs.nodes`):
/// the fields of its `node_finished` event, without its inputs and outputs (they can be
/// large; the run keeps its own). A run executes each node at most once, so a run has at
/// most as many as its app has nodes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NodeRun {
    /// The node's id in the app.
    pub node_id: String,
    /// Dify's node type (`llm`, `http-request`, …).
    pub node_type: String,
    /// The node's title (its id when it has none).
    pub title: String,
    /// 1 for the first node the run executed, and so on.
    pub index: u32,
    /// How it ended.
    pub status: NodeStatus,
    /// When it started: Unix seconds, as the event's `created_at` (Dify's API has seconds).
    pub started_at: i64,
    /// When it started, in Unix milliseconds (the console shows this). `None` in nodes
    /// stored before it was (version 20 and older), which only have [`Self::started_at`].
    #[serde(default)]
    pub started_at_ms: Option<i64>,
    /// Seconds it took; `None` when [`NodeStatus::Unfinished`].
    pub elapsed_time: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The columns [`from_row`] reads, in its order.
pub(super) const COLUMNS: &str =
    "id, app_id, task_id, status, inputs, outputs, error, user, files, elapsed_time, \
    total_tokens, total_steps, created_at, finished_at";

/// A run from a row of [`COLUMNS`] (on PostgreSQL, `pg::runs::COLUMNS`).
pub(super) fn from_row<R: Column>(r: &R) -> Result<RunRecord, R::Error> {
    const T: &str = "workflow_runs";
    let id = r.text(0, T, "?")?;
    Ok(RunRecord {
        app_id: r.text(1, T, &id)?,
        task_id: r.text(2, T, &id)?,
        status: r.parsed(3, T, &id, RunStatus::parse)?,
        inputs: r.json(4, T, &id)?,
        outputs: r.json_or_null(5, T, &id)?,
        error: r.opt_text(6, T, &id)?,
        user: r.text(7, T, &id)?,
        files: r.json(8, T, &id)?,
        elapsed_time: r.real(9, T, &id)?,
        total_tokens: r.int(10, T, &id)?.max(0) as u64,
        total_steps: r.uint(11, T, &id)?,
        created_at: r.time(12, T, &id)?,
        finished_at: r.opt_time(13, T, &id)?,
        id,
    })
}

fn get(conn: &Connection, id: &str) -> StoreResult<Option<RunRecord>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM workflow_runs WHERE id = ?1"))?
        .query_row([id], |r| from_row(r))
        .optional()?)
}

/// Dify's `/workflows/logs` filters.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Case-insensitive substring of inputs, outputs or user.
    pub keyword: Option<String>,
    /// Final status.
    pub status: Option<RunStatus>,
    /// Created before.
    pub created_before: Option<UnixMs>,
    /// Created after.
    pub created_after: Option<UnixMs>,
    /// Exact end-user session id.
    pub user: Option<String>,
}

impl Store {
    /// Stores a new `running` run; with an idempotency key already used by this app,
    /// returns that run instead (and `false`).
    pub async fn create_run(
        &self,
        run: RunRecord,
        idempotency_key: Option<String>,
    ) -> StoreResult<(RunRecord, bool)> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::runs::create(p, run, idempotency_key).await,
        };
        db.write(move |c| {
            if let Some(key) = &idempotency_key {
                let existing = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM workflow_runs WHERE app_id = ?1 AND idempotency_key = ?2"
                    ))?
                    .query_row(params![run.app_id, key], |r| from_row(r))
                    .optional()?;
                if let Some(existing) = existing {
                    return Ok((existing, false));
                }
            }
            let to_text = |v: &Value| v.to_string();
            c.prepare_cached(&format!(
                "INSERT INTO workflow_runs ({COLUMNS}, idempotency_key) \
                 VALUES (?1, ?2, ?3, 'running', ?4, NULL, NULL, ?5, ?6, 0, 0, 0, ?7, NULL, ?8)"
            ))?
            .execute(params![
                run.id,
                run.app_id,
                run.task_id,
                to_text(&Value::Object(run.inputs.clone())),
                run.user,
                to_text(&Value::Array(run.files.clone())),
                run.created_at,
                idempotency_key
            ])?;
            Ok((run, true))
        })
        .await
    }

    /// Records a run's final state and ingests its completion in the same transaction. For
    /// `relay::Relay`, like [`Store::ingest`].
    pub(crate) async fn finish_run(
        &self,
        run_id: String,
        outcome: RunOutcome,
        completion: NewMessage,
        intake: Arc<dyn Intake>,
    ) -> StoreResult<Accepted> {
        let cache = self.cache.clone();
        // Never fails for these plain fields; if it did, the run must still end.
        let nodes = serde_json::to_string(&outcome.nodes).unwrap_or_else(|e| {
            tracing::warn!(run = %run_id, error = %e, "the run's nodes are not stored");
            "[]".into()
        });
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                let version = self.cache.version();
                return pg::runs::finish_with_completion(
                    p,
                    &self.rule,
                    version,
                    &run_id,
                    &outcome,
                    &nodes,
                    completion,
                    intake.as_ref(),
                )
                .await;
            }
        };
        db.write(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE workflow_runs SET status = ?2, outputs = ?3, error = ?4, elapsed_time = ?5, \
                     total_tokens = ?6, total_steps = ?7, finished_at = ?8, nodes = ?9 \
                     WHERE id = ?1 AND status = 'running'",
                )?
                .execute(params![
                    run_id,
                    outcome.status,
                    outcome.outputs.map(|o| Value::Object(o).to_string()),
                    outcome.error,
                    outcome.elapsed_time,
                    i64::try_from(outcome.total_tokens).unwrap_or(i64::MAX),
                    outcome.total_steps,
                    outcome.finished_at,
                    nodes
                ])?;
            if changed == 0 {
                return Err(StoreError::Conflict(
                    Conflict::RunNotRunning,
                    format!("run {run_id} is not running"),
                ));
            }
            messages::ingest(c, &mut cache.lock(), completion, intake.as_ref(), outcome.finished_at)
        })
        .await
    }

    /// One run.
    pub async fn run(&self, id: String) -> StoreResult<RunRecord> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                let found = pg::runs::get(p, &**p.client().await?, &id).await?;
                return found.ok_or(StoreError::NotFound("workflow run"));
            }
        };
        db.read(move |c| get(c, &id)?.ok_or(StoreError::NotFound("workflow run"))).await
    }

    /// The node executions stored with a run (none for a run that has not ended, nor for
    /// one that ended before they were stored).
    pub async fn run_nodes(&self, id: String) -> StoreResult<Vec<NodeRun>> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::runs::nodes(p, &id).await,
        };
        db.read(move |c| {
            c.prepare_cached("SELECT id, nodes FROM workflow_runs WHERE id = ?1")?
                .query_row([&id], |r| decode::json(r, 1, "workflow_runs", &id))
                .optional()?
                .ok_or(StoreError::NotFound("workflow run"))
        })
        .await
    }

    /// One run by task id.
    pub async fn run_by_task(&self, task_id: String) -> StoreResult<RunRecord> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::runs::by_task(p, &task_id).await,
        };
        db.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM workflow_runs WHERE task_id = ?1"))?
                .query_row([task_id], |r| from_row(r))
                .optional()?
                .ok_or(StoreError::NotFound("task"))
        })
        .await
    }

    /// Runs left `running` (by a crash). On PostgreSQL, where other instances run runs of
    /// their own, only the runs whose instance is gone (see `pg::runs::left_running`).
    ///
    /// A run that cannot be read is left as it is, logged at ERROR: it cannot be failed with
    /// its webhook, and it must not keep the relay from starting or the others from ending.
    pub async fn running_runs(&self) -> StoreResult<Vec<RunRecord>> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::runs::left_running(p).await,
        };
        db.read(|c| {
            let ids = c
                .prepare_cached("SELECT id FROM workflow_runs WHERE status = 'running'")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut runs = Vec::with_capacity(ids.len());
            for id in ids {
                match get(c, &id) {
                    Ok(Some(run)) => runs.push(run),
                    Ok(None) => {}
                    Err(e) if e.is_unreadable_row() => {
                        tracing::error!(run = %id, error = %e, "an interrupted run cannot be read; it is left as it is");
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(runs)
        })
        .await
    }

    /// A page of an app's runs, newest first, and the total matching.
    pub async fn list_runs(
        &self,
        app_id: String,
        filter: RunFilter,
        page: u32,
        limit: u32,
    ) -> StoreResult<(Vec<RunRecord>, u64)> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::runs::list(p, &app_id, &filter, page, limit).await,
        };
        db.read(move |c| {
            let mut sql = String::from(" FROM workflow_runs WHERE app_id = ?1");
            let mut values: Vec<rusqlite::types::Value> = vec![app_id.into()];
            let mut add = |cond: &str, v: rusqlite::types::Value| {
                values.push(v);
                sql.push_str(&format!(" AND {cond} ?{}", values.len()));
            };
            if let Some(s) = filter.status {
                add("status =", s.as_str().to_string().into());
            }
            if let Some(t) = filter.created_before {
                add("created_at <", t.into());
            }
            if let Some(t) = filter.created_after {
                add("created_at >", t.into());
            }
            if let Some(u) = filter.user {
                add("user =", u.into());
            }
            if let Some(k) = filter.keyword {
                let pattern = format!("%{}%", k.to_lowercase().replace('%', "\\%").replace('_', "\\_"));
                values.push(pattern.into());
                let n = values.len();
                sql.push_str(&format!(
                    " AND (lower(inputs) LIKE ?{n} ESCAPE '\\' OR lower(coalesce(outputs, '')) LIKE ?{n} ESCAPE '\\' \
                     OR lower(user) LIKE ?{n} ESCAPE '\\')"
                ));
            }
            let total: i64 = c
                .prepare_cached(&format!("SELECT count(*){sql}"))?
                .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
            let offset = i64::from(page.saturating_sub(1)) * i64::from(limit);
            let query = format!("SELECT {COLUMNS}{sql} ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}");
            let mut stmt = c.prepare_cached(&query)?;
            let runs = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| from_row(r))?.collect::<Result<Vec<_>, _>>()?;
            Ok((runs, total.max(0) as u64))
        })
        .await
    }
}
