//! Workflow runs on PostgreSQL: `store::runs`' and `store::run_pages`' SQL, beside them.
//! Rows decode through the same `from_row`; the console's pages are built by the same
//! `run_pages` functions, their `?` placeholders numbered here. `"user"` is a reserved word
//! in PostgreSQL, so it is quoted; JSON columns are read as their text.

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::{messages, snapshots, OrStore, Pg};
use crate::delivery::ticket::Intake;
use crate::redact::HeaderRedaction;
use crate::store::bodies::Prepared;
use crate::store::column::Column;
use crate::store::messages::{Accepted, NewMessage};
use crate::store::page::Page;
use crate::store::run_pages::{assemble, other_side_sql, page_sql, RunCursor, RunPageFilter};
use crate::store::runs::{from_row, NodeRun, RunFilter, RunOutcome, RunRecord};
use crate::store::{Conflict, StoreError, StoreResult};

/// `runs::COLUMNS` as PostgreSQL reads them.
const COLUMNS: &str = "id, app_id, task_id, status, inputs::text, outputs::text, error, \
    \"user\", files::text, elapsed_time, total_tokens, total_steps, created_at, finished_at";

/// Stores a new `running` run; with an idempotency key already used by this app, returns
/// that run instead (and `false`). Two instances creating runs with one key meet at the
/// unique index: the second insert waits for the first to commit and then does nothing,
/// and the run it returns is the first's.
pub(crate) async fn create(
    pg: &Pg,
    run: RunRecord,
    idempotency_key: Option<String>,
) -> StoreResult<(RunRecord, bool)> {
    let client = pg.client().await?;
    let inputs = Value::Object(run.inputs.clone()).to_string();
    let files = Value::Array(run.files.clone()).to_string();
    let inserted = client
        .execute(
            "INSERT INTO workflow_runs (id, app_id, task_id, status, inputs, outputs, error, \
             \"user\", files, elapsed_time, total_tokens, total_steps, created_at, finished_at, \
             idempotency_key, run_by) VALUES ($1, $2, $3, 'running', $4::text::json, NULL, NULL, \
             $5, $6::text::json, 0, 0, 0, $7, NULL, $8, $9::text::uuid) \
             ON CONFLICT (app_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
            &[
                &run.id,
                &run.app_id,
                &run.task_id,
                &inputs,
                &run.user,
                &files,
                &run.created_at.as_ms(),
                &idempotency_key,
                &pg.instance(),
            ],
        )
        .await
        .at(pg)?;
    if inserted == 1 {
        return Ok((run, true));
    }
    let sql =
        format!("SELECT {COLUMNS} FROM workflow_runs WHERE app_id = $1 AND idempotency_key = $2");
    let existing = client.query_opt(sql.as_str(), &[&run.app_id, &idempotency_key]).await.at(pg)?;
    // Only a run holding the key makes the insert do nothing; one deleted since is gone.
    let existing = existing.ok_or(StoreError::NotFound("workflow run"))?;
    Ok((from_row(&existing)?, false))
}

/// `Store::finish_run` on PostgreSQL: the run's final state ([`finish`]) and its completion
/// message (`pg::messages::ingest_in`, at the run's `finished_at`) in one transaction, so a
/// run never ends without its webhook nor sends it twice.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish_with_completion(
    pg: &Pg,
    rule: &HeaderRedaction,
    version: u64,
    run_id: &str,
    outcome: &RunOutcome,
    nodes: &str,
    completion: NewMessage,
    intake: &dyn Intake,
) -> StoreResult<Accepted> {
    let payload = Prepared::of(&completion.payload);
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    finish(pg, &*tx, run_id, outcome, nodes).await?;
    let (accepted, taken) = messages::ingest_in(
        pg,
        &tx,
        rule,
        version,
        completion,
        payload,
        intake,
        outcome.finished_at,
    )
    .await?;
    tx.commit().await.at(pg)?;
    snapshots::put_all(pg, &client, &taken).await?;
    Ok(accepted)
}

/// Records a run's final state in the caller's transaction: the run-row part of
/// `Store::finish_run`. The run stops naming an instance (`run_by`); a run that is no
/// longer `running` is a [`Conflict::RunNotRunning`].
pub(crate) async fn finish(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    run_id: &str,
    outcome: &RunOutcome,
    nodes: &str,
) -> StoreResult<()> {
    let outputs = outcome.outputs.clone().map(|o| Value::Object(o).to_string());
    let params: [&(dyn ToSql + Sync); 9] = [
        &run_id,
        &outcome.status.as_str(),
        &outputs,
        &outcome.error,
        &outcome.elapsed_time,
        &i64::try_from(outcome.total_tokens).unwrap_or(i64::MAX),
        &i64::from(outcome.total_steps),
        &outcome.finished_at.as_ms(),
        &nodes,
    ];
    let changed = c
        .execute(
            "UPDATE workflow_runs SET status = $2, outputs = $3::text::json, error = $4, \
             elapsed_time = $5, total_tokens = $6, total_steps = $7, finished_at = $8, \
             nodes = $9::text::json, run_by = NULL WHERE id = $1 AND status = 'running'",
            &params,
        )
        .await
        .at(pg)?;
    if changed == 0 {
        return Err(StoreError::Conflict(
            Conflict::RunNotRunning,
            format!("run {run_id} is not running"),
        ));
    }
    Ok(())
}

/// One run.
pub(crate) async fn get(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &str,
) -> StoreResult<Option<RunRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM workflow_runs WHERE id = $1");
    let row = c.query_opt(sql.as_str(), &[&id]).await.at(pg)?;
    row.as_ref().map(from_row).transpose()
}

/// The node executions stored with a run.
pub(crate) async fn nodes(pg: &Pg, id: &str) -> StoreResult<Vec<NodeRun>> {
    let client = pg.client().await?;
    let row = client
        .query_opt("SELECT nodes::text FROM workflow_runs WHERE id = $1", &[&id])
        .await
        .at(pg)?
        .ok_or(StoreError::NotFound("workflow run"))?;
    row.json(0, "workflow_runs", id)
}

/// One run by task id.
pub(crate) async fn by_task(pg: &Pg, task_id: &str) -> StoreResult<RunRecord> {
    let client = pg.client().await?;
    let sql = format!("SELECT {COLUMNS} FROM workflow_runs WHERE task_id = $1");
    let row = client.query_opt(sql.as_str(), &[&task_id]).await.at(pg)?;
    row.as_ref().map(from_row).transpose()?.ok_or(StoreError::NotFound("task"))
}

/// How often an instance looks for runs of a lost instance (its heartbeat's interval).
pub(crate) const LOST_RUNS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The runs left `running` by an instance that is gone (`run_by` names no instance), adopted
/// by this one (`run_by` set to it) in the same statement: of survivors looking at once, each
/// run goes to one (the second's update waits on the row, then finds it named by a live
/// instance), which fails it with its webhook once; if it dies first, the run is lost again
/// and adopted by another. Other instances' runs are not among them (on SQLite every
/// `running` run at start-up was left by a crash; here most are running elsewhere). A run
/// naming no instance (`run_by` NULL) is not either: nothing tells whether its instance
/// lives. A run that cannot be read is left as it is, logged at ERROR (see
/// `Store::running_runs`).
pub(crate) async fn left_running(pg: &Pg) -> StoreResult<Vec<RunRecord>> {
    let client = pg.client().await?;
    // `r.run_by = lost.run_by`, not the `NOT EXISTS` alone: a survivor whose update waited
    // on a row another adopted meanwhile rechecks only the row's new version against the
    // same (anti-)join result (READ COMMITTED's re-check), so the `NOT EXISTS` still held
    // and both adopted it (seen as two survivors' runs in a loaded test run); the new
    // `run_by` no longer equals the one found lost, and the row is left to its adopter.
    let columns = COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "UPDATE workflow_runs r SET run_by = $1::text::uuid \
         FROM (SELECT id, run_by FROM workflow_runs w WHERE status = 'running' \
         AND run_by IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = w.run_by)) lost \
         WHERE r.id = lost.id AND r.run_by = lost.run_by AND r.status = 'running' \
         RETURNING {columns}"
    );
    let rows = client.query(sql.as_str(), &[&pg.instance()]).await.at(pg)?;
    let mut runs = Vec::with_capacity(rows.len());
    for row in &rows {
        match from_row(row) {
            Ok(run) => runs.push(run),
            Err(e) if e.is_unreadable_row() => {
                let id = row.opt_text(0, "workflow_runs", "?").ok().flatten().unwrap_or_default();
                tracing::error!(run = %id, error = %e, "an interrupted run cannot be read; it is left as it is");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(runs)
}

/// A page of an app's runs, newest first, and the total matching (see `Store::list_runs`).
pub(crate) async fn list(
    pg: &Pg,
    app_id: &str,
    filter: &RunFilter,
    page: u32,
    limit: u32,
) -> StoreResult<(Vec<RunRecord>, u64)> {
    let mut sql = String::from(" FROM workflow_runs WHERE app_id = $1");
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(app_id.to_string())];
    let mut add = |cond: &str, v: Box<dyn ToSql + Sync + Send>| {
        values.push(v);
        sql.push_str(&format!(" AND {cond} ${}", values.len()));
    };
    if let Some(s) = filter.status {
        add("status =", Box::new(s.as_str()));
    }
    if let Some(t) = filter.created_before {
        add("created_at <", Box::new(t.as_ms()));
    }
    if let Some(t) = filter.created_after {
        add("created_at >", Box::new(t.as_ms()));
    }
    if let Some(u) = &filter.user {
        add("\"user\" =", Box::new(u.clone()));
    }
    if let Some(k) = &filter.keyword {
        let pattern = format!("%{}%", k.to_lowercase().replace('%', "\\%").replace('_', "\\_"));
        values.push(Box::new(pattern));
        let n = values.len();
        sql.push_str(&format!(
            " AND (lower(inputs::text) LIKE ${n} ESCAPE '\\' \
             OR lower(coalesce(outputs::text, '')) LIKE ${n} ESCAPE '\\' \
             OR lower(\"user\") LIKE ${n} ESCAPE '\\')"
        ));
    }
    let params: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
    let client = pg.client().await?;
    let total: i64 =
        client.query_one(format!("SELECT count(*){sql}").as_str(), &params).await.at(pg)?.get(0);
    let offset = i64::from(page.saturating_sub(1)) * i64::from(limit);
    let query = format!(
        "SELECT {COLUMNS}{sql} ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
    );
    let rows = client.query(query.as_str(), &params).await.at(pg)?;
    let runs = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
    Ok((runs, total.max(0) as u64))
}

/// `sql` with its `?` placeholders numbered `$1::text`, `$2::text`, … (every value of a
/// run page is text; no `?` appears otherwise in those queries).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    for (i, part) in sql.split('?').enumerate() {
        if i > 0 {
            out.push_str(&format!("${i}::text"));
        }
        out.push_str(part);
    }
    out
}

fn text_params(values: &[String]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// A page of `limit` runs matching `filter`, newest first, from `cursor` (see
/// `store::run_pages`).
pub(crate) async fn page(
    pg: &Pg,
    filter: &RunPageFilter,
    cursor: &RunCursor,
    limit: u32,
) -> StoreResult<Page<RunRecord>> {
    let client = pg.client().await?;
    let (sql, values) = page_sql(COLUMNS, filter, cursor, limit);
    let rows = client.query(numbered(&sql).as_str(), &text_params(&values)).await.at(pg)?;
    let items = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
    let scanned_first = items.first().filter(|_| limit > 0);
    let other_side = match scanned_first.and_then(|r| other_side_sql(filter, cursor, &r.id)) {
        Some((sql, values)) => client
            .query_one(numbered(&sql).as_str(), &text_params(&values))
            .await
            .at(pg)?
            .get::<_, bool>(0),
        None => false,
    };
    Ok(assemble(items, cursor, limit, other_side))
}
