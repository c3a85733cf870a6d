//! Workflow runs of every app (or of one), of any status (or of one), newest first, by
//! cursor: the console's runs list. No order sorts: across apps the primary key gives it
//! (run ids are UUIDv7, so id order is creation order) or, for one status,
//! `workflow_runs_status` (status, then the key); within one app `workflow_runs_app` (app id,
//! creation time, then the key) or, for one status, `workflow_runs_app_status` does. The Dify
//! API's own list (`Store::list_runs`) pages by number within one app.

use rusqlite::{params_from_iter, Connection};

use super::page::Page;
use super::runs::{from_row, COLUMNS};
use super::{pg, Backend, RunRecord, RunStatus, Store, StoreResult};

/// Which runs a page lists.
#[derive(Debug, Clone, Default)]
pub struct RunPageFilter {
    /// One app's runs, or every app's.
    pub app_id: Option<String>,
    /// Runs in one status, or in any.
    pub status: Option<RunStatus>,
}

/// Where a page of runs starts: after (older than) or before (newer than) a run id.
#[derive(Debug, Clone)]
pub enum RunCursor {
    /// The first page, newest first.
    Newest,
    /// The runs just older than this id.
    After(String),
    /// The runs just newer than this id.
    Before(String),
}

/// The listing key, and the same key of the run whose id is bound: one app's runs go by
/// (creation time, id), as its index holds them; all runs by id.
fn key(app_id: Option<&str>) -> (&'static str, &'static str) {
    match app_id {
        Some(_) => ("(created_at, id)", "(SELECT created_at, id FROM workflow_runs WHERE id = ?)"),
        None => ("id", "?"),
    }
}

fn where_clause(filter: &RunPageFilter, extra: Option<String>) -> (String, Vec<String>) {
    let mut parts = Vec::new();
    let mut values = Vec::new();
    if let Some(app) = &filter.app_id {
        parts.push("app_id = ?".to_string());
        values.push(app.clone());
    }
    if let Some(status) = filter.status {
        parts.push("status = ?".to_string());
        values.push(status.as_str().to_string());
    }
    parts.extend(extra);
    let clause =
        if parts.is_empty() { String::new() } else { format!(" WHERE {}", parts.join(" AND ")) };
    (clause, values)
}

/// The query of a page of `columns` (`?` placeholders, every value text): one more run than
/// `limit`, to tell whether there are more.
pub(super) fn page_sql(
    columns: &str,
    filter: &RunPageFilter,
    cursor: &RunCursor,
    limit: u32,
) -> (String, Vec<String>) {
    let app_id = filter.app_id.as_deref();
    let (key, bound) = key(app_id);
    let (cmp, order, id) = match cursor {
        RunCursor::Newest => ("", "DESC", None),
        RunCursor::After(id) => ("<", "DESC", Some(id)),
        RunCursor::Before(id) => (">", "ASC", Some(id)),
    };
    let (clause, mut values) = where_clause(filter, id.map(|_| format!("{key} {cmp} {bound}")));
    values.extend(id.cloned());
    let order_by = match app_id {
        Some(_) => format!("created_at {order}, id {order}"),
        None => format!("id {order}"),
    };
    let sql = format!(
        "SELECT {columns} FROM workflow_runs{clause} ORDER BY {order_by} LIMIT {}",
        u64::from(limit) + 1
    );
    (sql, values)
}

/// Whether a page reached by `cursor`, whose first run scanned is `first`, has neighbours
/// on the side it came from: the query (as [`page_sql`]'s) answering it, if one is needed.
pub(super) fn other_side_sql(
    filter: &RunPageFilter,
    cursor: &RunCursor,
    first: &str,
) -> Option<(String, Vec<String>)> {
    let cmp = match cursor {
        RunCursor::Newest => return None,
        RunCursor::After(_) => ">",
        RunCursor::Before(_) => "<",
    };
    let (key, bound) = key(filter.app_id.as_deref());
    let (clause, mut values) = where_clause(filter, Some(format!("{key} {cmp} {bound}")));
    values.push(first.to_string());
    Some((format!("SELECT EXISTS (SELECT 1 FROM workflow_runs{clause})"), values))
}

/// The page of `items` read by [`page_sql`] (at most `limit` + 1, in scan order).
pub(super) fn assemble(
    mut items: Vec<RunRecord>,
    cursor: &RunCursor,
    limit: u32,
    other_side: bool,
) -> Page<RunRecord> {
    let more_in_scan = items.len() > limit as usize;
    items.truncate(limit as usize);
    let backward = matches!(cursor, RunCursor::Before(_));
    if backward {
        items.reverse();
    }
    let first = items.first().map(|r| r.id.clone());
    let last = items.last().map(|r| r.id.clone());
    let (before, after) = if backward {
        (first.filter(|_| more_in_scan), last.filter(|_| other_side))
    } else {
        (first.filter(|_| other_side), last.filter(|_| more_in_scan))
    };
    Page { items, before, after }
}

fn read(
    conn: &Connection,
    filter: &RunPageFilter,
    cursor: &RunCursor,
    limit: u32,
) -> StoreResult<Page<RunRecord>> {
    let (sql, values) = page_sql(COLUMNS, filter, cursor, limit);
    let items = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(values), |r| from_row(r))?
        .collect::<Result<Vec<_>, _>>()?;
    // A page reached by a cursor has neighbours on the side it came from, if any run is
    // beyond the first one scanned.
    let scanned_first = items.first().filter(|_| limit > 0);
    let other_side = match scanned_first.and_then(|r| other_side_sql(filter, cursor, &r.id)) {
        Some((sql, values)) => {
            conn.prepare_cached(&sql)?.query_row(params_from_iter(values), |r| r.get(0))?
        }
        None => false,
    };
    Ok(assemble(items, cursor, limit, other_side))
}

impl Store {
    /// A page of `limit` runs matching `filter`, newest first, from `cursor`.
    pub async fn run_page(
        &self,
        filter: RunPageFilter,
        cursor: RunCursor,
        limit: u32,
    ) -> StoreResult<Page<RunRecord>> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::runs::page(p, &filter, &cursor, limit).await,
        };
        db.read(move |c| read(c, &filter, &cursor, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every page query walks an index in the listing order: no scan in another order, no
    /// sort of the app's runs.
    #[test]
    fn every_run_page_reads_an_index_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::schema::apply(&conn).unwrap();
        let id = || "0193a7c4-0000-7000-8000-000000000000".to_string();
        let filters = [None, Some("demo")].into_iter().flat_map(|app| {
            [None, Some(RunStatus::Failed)]
                .map(|status| RunPageFilter { app_id: app.map(str::to_string), status })
        });
        for filter in filters {
            for cursor in [RunCursor::Newest, RunCursor::After(id()), RunCursor::Before(id())] {
                let (sql, values) = page_sql(COLUMNS, &filter, &cursor, 10);
                let plan: Vec<String> = conn
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .unwrap()
                    .query_map(params_from_iter(values), |r| r.get(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                // The first page of all runs scans the table itself, in key order.
                let in_order = |p: &String| match (&filter.app_id, filter.status) {
                    (Some(_), None) => p.contains("workflow_runs_app "),
                    (Some(_), Some(_)) => p.contains("workflow_runs_app_status "),
                    (None, Some(_)) => p.contains("workflow_runs_status "),
                    (None, None) => p.contains("PRIMARY KEY") || p == "SCAN workflow_runs",
                };
                assert!(plan.first().is_some_and(in_order), "{filter:?} {cursor:?}: {plan:?}");
                assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{cursor:?}: {plan:?}");
            }
        }
    }
}
