//! Cursor pagination on PostgreSQL: `store::page`'s [`read_page`](crate::store::page) with
//! the same [`Conditions`], cursors and answers, in PostgreSQL's SQL (numbered parameters,
//! each cast to its type so that a `bytea` id compares with an `hr_id` column).

use rusqlite::types::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::{OrStore, Pg};
use crate::store::page::{Conditions, Page, PageRequest, SCAN_BUDGET};
use crate::store::{StoreError, StoreResult};

/// A bound value of a condition (rusqlite's [`Value`] as a PostgreSQL parameter).
enum Param {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Null(Option<i64>),
}

impl Param {
    fn of(value: &Value) -> StoreResult<Self> {
        Ok(match value {
            Value::Integer(n) => Param::Int(*n),
            Value::Text(t) => Param::Text(t.clone()),
            Value::Blob(b) => Param::Bytes(b.clone()),
            Value::Null => Param::Null(None),
            Value::Real(_) => {
                return Err(StoreError::NotOnPostgres("a page filter on a real number"))
            }
        })
    }

    /// `$n` cast to this value's type.
    fn placeholder(&self, n: usize) -> String {
        let ty = match self {
            Param::Int(_) | Param::Null(_) => "bigint",
            Param::Text(_) => "text",
            Param::Bytes(_) => "bytea",
        };
        format!("${n}::{ty}")
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int(n) => n,
            Param::Text(t) => t,
            Param::Bytes(b) => b,
            Param::Null(n) => n,
        }
    }
}

/// SQL and parameters built together: each `?` of a condition becomes the next `$n`.
#[derive(Default)]
struct Query {
    params: Vec<Param>,
}

impl Query {
    /// `sql` with its `?` placeholders numbered, binding `values` in order.
    fn condition(&mut self, sql: &str, values: &mut impl Iterator<Item = Param>) -> String {
        let mut out = String::with_capacity(sql.len() + 8);
        for (i, part) in sql.split('?').enumerate() {
            if i > 0 {
                if let Some(param) = values.next() {
                    out.push_str(&param.placeholder(self.params.len() + 1));
                    self.params.push(param);
                }
            }
            out.push_str(part);
        }
        out
    }

    /// ` WHERE …` of `conditions` plus `extra` (a condition with at most one `?`, and its
    /// value).
    fn where_clause(
        &mut self,
        conditions: &Conditions,
        extra: Option<(&str, Option<Param>)>,
    ) -> StoreResult<String> {
        let values: Vec<Param> =
            conditions.values.iter().map(Param::of).collect::<Result<_, _>>()?;
        let mut values = values.into_iter();
        let mut parts = Vec::new();
        for sql in &conditions.sql {
            parts.push(self.condition(sql, &mut values));
        }
        if let Some((sql, value)) = extra {
            parts.push(self.condition(sql, &mut value.into_iter()));
        }
        Ok(if parts.is_empty() { String::new() } else { format!(" WHERE {}", parts.join(" AND ")) })
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(Param::as_sql).collect()
    }
}

/// The condition `cmp` (`"id < ?"` or `"id > ?"`) against the cursor `text`. A cursor that
/// is no stored id is text, which SQLite sorts before every blob: nothing is below it and
/// everything above it. The same answer here (bytea and text do not compare).
fn bound(cmp: &'static str, text: &str) -> (&'static str, Option<Param>) {
    match crate::ids::stored_value(text) {
        Value::Blob(bytes) => (cmp, Some(Param::Bytes(bytes))),
        _ if cmp.contains('<') => ("false", None),
        _ => ("true", None),
    }
}

/// SQLite's `instr(haystack, needle)` as PostgreSQL spells it: `strpos` takes the same
/// arguments and answers the same (1-based position, 0 when absent, case-sensitive).
fn in_postgres(sql: &str) -> String {
    sql.replace("instr(", "strpos(")
}

/// One page of `SELECT {columns} FROM {table}` under `conditions` (see `store::page`):
/// conditions no index serves are tested on at most [`SCAN_BUDGET`] rows, as on SQLite.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn read_page<T>(
    pg: &Pg,
    client: &(impl GenericClient + Sync),
    table: &str,
    columns: &str,
    conditions: &Conditions,
    request: &PageRequest,
    map: impl Fn(&Row) -> StoreResult<T>,
    id_of: impl Fn(&T) -> &str,
) -> StoreResult<Page<T>> {
    let forward = request.before.is_none();
    let scan_desc = request.desc == forward;
    let cursor = if forward { request.after.as_deref() } else { request.before.as_deref() };
    let (toward, away) = if scan_desc { ("id < ?", "id > ?") } else { ("id > ?", "id < ?") };

    let mut query = Query::default();
    let clause = query.where_clause(conditions, cursor.map(|c| bound(toward, c)))?;
    let order = if scan_desc { "DESC" } else { "ASC" };
    let limit = i64::from(request.limit) + 1;
    let sql = if conditions.unindexed.is_empty() {
        format!("SELECT {columns} FROM {table}{clause} ORDER BY id {order} LIMIT {limit}")
    } else {
        let mut tests = Vec::new();
        for (sql, value) in &conditions.unindexed {
            tests.push(query.condition(&in_postgres(sql), &mut [Param::of(value)?].into_iter()));
        }
        format!(
            "SELECT {columns} FROM (SELECT * FROM {table}{clause} ORDER BY id {order} \
             LIMIT {SCAN_BUDGET}) AS budget WHERE {} ORDER BY id {order} LIMIT {limit}",
            tests.join(" AND ")
        )
    };
    let rows = client.query(sql.as_str(), &query.params()).await.at(pg)?;
    let mut items = rows.iter().map(&map).collect::<StoreResult<Vec<T>>>()?;
    let more = items.len() > request.limit as usize;
    items.truncate(request.limit as usize);
    // A page cut short by the scan budget goes on from the last row it tested.
    let scan_edge = if conditions.unindexed.is_empty() || more {
        None
    } else {
        let mut query = Query::default();
        let clause = query.where_clause(conditions, cursor.map(|c| bound(toward, c)))?;
        let sql = format!(
            "SELECT {columns} FROM {table}{clause} ORDER BY id {order} LIMIT 1 OFFSET {}",
            SCAN_BUDGET - 1
        );
        let row = client.query_opt(sql.as_str(), &query.params()).await.at(pg)?;
        row.as_ref().map(&map).transpose()?.map(|edge| id_of(&edge).to_string())
    };

    // Is there anything on the other side of the scan, beyond the first item scanned?
    let other_side = match (cursor, items.first()) {
        (Some(_), Some(first)) => {
            let mut query = Query::default();
            let clause = query.where_clause(conditions, Some(bound(away, id_of(first))))?;
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {table}{clause})");
            client.query_one(sql.as_str(), &query.params()).await.at(pg)?.get::<_, bool>(0)
        }
        _ => false,
    };
    if !forward {
        items.reverse();
    }
    let first = items.first().map(|i| id_of(i).to_string());
    let last = items.last().map(|i| id_of(i).to_string());
    let (before, after) = if forward {
        (first.filter(|_| other_side), last.filter(|_| more).or(scan_edge))
    } else {
        (first.filter(|_| more).or(scan_edge), last.filter(|_| other_side))
    };
    Ok(Page { items, before, after })
}
