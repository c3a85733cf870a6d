//! Cursor pagination over id-ordered tables (ids are time-sortable, so id order is
//! creation order). `after` = the page following a cursor in listing order, `before` = the
//! page preceding it; the answer names the cursors for the neighbouring pages, or none.

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Row};

use super::StoreResult;
use crate::ids::{Id, IdKind};

/// Which page of a list to read.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Return the items just before this id, in listing order.
    pub before: Option<String>,
    /// Return the items just after this id, in listing order.
    pub after: Option<String>,
    /// Page size (already validated against the configured maximum).
    pub limit: u32,
    /// Newest first when true.
    pub desc: bool,
}

/// One page and the cursors of its neighbours.
#[derive(Debug)]
pub struct Page<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Cursor for the previous page (`before=`), when there is one.
    pub before: Option<String>,
    /// Cursor for the next page (`after=`), when there is one.
    pub after: Option<String>,
}

/// How many rows one page tests against conditions no index serves
/// ([`Conditions::push_unindexed`]): what bounds the work of a page whose matches are rare.
pub const SCAN_BUDGET: u32 = 10_000;

/// Filters as SQL conditions (`"automation_id = ?"`) with their bound values, ANDed.
#[derive(Debug, Default)]
pub struct Conditions {
    pub(super) sql: Vec<String>,
    pub(super) values: Vec<Value>,
    /// Conditions no index serves, tested on at most [`SCAN_BUDGET`] rows a page.
    pub(super) unindexed: Vec<(String, Value)>,
}

impl Conditions {
    /// Adds a condition with one `?` placeholder.
    pub fn push(&mut self, sql: &str, value: impl Into<Value>) {
        let value = value.into();
        if holds_nul(&value) {
            return self.push_literal("1 = 0".into());
        }
        self.sql.push(sql.to_string());
        self.values.push(value);
    }

    /// Adds `column = ?` for `text`, a filter's id of kind `K`; text that is no such id
    /// matches nothing (a filter naming what cannot exist finds nothing, as with text ids).
    pub fn push_id<K: IdKind>(&mut self, column: &str, text: &str) {
        match Id::<K>::parse(text) {
            Ok(id) => self.push(&format!("{column} = ?"), id),
            Err(_) => self.push_literal("1 = 0".into()),
        }
    }

    /// Adds a condition with one `?` placeholder that no index serves. A page then tests it
    /// on the next [`SCAN_BUDGET`] rows the other conditions select, and no more: it may
    /// hold fewer items than its limit, or none, with a cursor to go on from the last row
    /// tested. Without the bound a rare match would read the whole table for one page.
    pub fn push_unindexed(&mut self, sql: &str, value: impl Into<Value>) {
        let value = value.into();
        if holds_nul(&value) {
            return self.push_literal("1 = 0".into());
        }
        self.unindexed.push((sql.to_string(), value));
    }

    /// Adds a condition without parameters. Only for SQL built from trusted constants: a
    /// literal lets SQLite use partial indexes that a bound parameter cannot.
    pub fn push_literal(&mut self, sql: String) {
        self.sql.push(sql);
    }

    fn where_clause(&self, extra: Option<&str>) -> String {
        let mut parts: Vec<&str> = self.sql.iter().map(String::as_str).collect();
        parts.extend(extra);
        if parts.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", parts.join(" AND "))
        }
    }
}

/// Reads one page of `SELECT {columns} FROM {table}` under `conditions`. Each mapped item
/// must expose its id through `id_of`.
pub fn read_page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    conditions: &Conditions,
    request: &PageRequest,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
    id_of: impl Fn(&T) -> &str,
) -> StoreResult<Page<T>> {
    let forward = request.before.is_none();
    let scan_desc = request.desc == forward;
    let cursor = if forward { request.after.as_deref() } else { request.before.as_deref() };
    let (toward, away) = if scan_desc { ("id < ?", "id > ?") } else { ("id > ?", "id < ?") };

    let mut values = conditions.values.clone();
    let clause = match cursor {
        Some(c) => {
            values.push(crate::ids::stored_value(c));
            conditions.where_clause(Some(toward))
        }
        None => conditions.where_clause(None),
    };
    let scan = Scan { table, clause: &clause, values: &values, desc: scan_desc };
    let mut items = scan.page(conn, columns, &conditions.unindexed, request.limit + 1, &map)?;
    let more_in_scan = items.len() > request.limit as usize;
    items.truncate(request.limit as usize);
    // A page cut short by the scan budget goes on from the last row it tested.
    let scan_edge = if conditions.unindexed.is_empty() || more_in_scan {
        None
    } else {
        scan.budget_edge(conn, columns, &map)?.map(|edge| id_of(&edge).to_string())
    };

    // Is there anything on the other side of the scan, beyond the first item scanned?
    let other_side = match (cursor, items.first()) {
        (Some(_), Some(first)) => exists(conn, table, conditions, away, id_of(first))?,
        _ => false,
    };
    if !forward {
        items.reverse();
    }
    let first = items.first().map(|i| id_of(i).to_string());
    let last = items.last().map(|i| id_of(i).to_string());
    let (before, after) = if forward {
        (first.filter(|_| other_side), last.filter(|_| more_in_scan).or(scan_edge))
    } else {
        (first.filter(|_| more_in_scan).or(scan_edge), last.filter(|_| other_side))
    };
    Ok(Page { items, before, after })
}

/// The page query: `clause` (empty or ` WHERE …`), by id, then the limit (the last parameter).
fn page_sql(table: &str, columns: &str, clause: &str, desc: bool) -> String {
    let order = if desc { "DESC" } else { "ASC" };
    format!("SELECT {columns} FROM {table}{clause} ORDER BY id {order} LIMIT ?")
}

/// The rows a page reads: those of `table` under `clause` (the indexed conditions and the
/// cursor, whose values are `values`), in id order.
struct Scan<'a> {
    table: &'a str,
    clause: &'a str,
    values: &'a [Value],
    desc: bool,
}

impl Scan<'_> {
    /// The first `limit` rows that also meet `unindexed`, among the first [`SCAN_BUDGET`]
    /// rows when there are such conditions.
    fn page<T>(
        &self,
        conn: &Connection,
        columns: &str,
        unindexed: &[(String, Value)],
        limit: u32,
        map: &impl Fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Vec<T>> {
        let (sql, values) = self.page_query(columns, unindexed, limit);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), |r| map(r))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// [`Self::page`]'s query and its values.
    fn page_query(
        &self,
        columns: &str,
        unindexed: &[(String, Value)],
        limit: u32,
    ) -> (String, Vec<Value>) {
        let mut values = self.values.to_vec();
        let sql = if unindexed.is_empty() {
            page_sql(self.table, columns, self.clause, self.desc)
        } else {
            values.push(Value::Integer(i64::from(SCAN_BUDGET)));
            values.extend(unindexed.iter().map(|(_, value)| value.clone()));
            let tests: Vec<&str> = unindexed.iter().map(|(sql, _)| sql.as_str()).collect();
            let budget = page_sql(self.table, "*", self.clause, self.desc);
            let order = if self.desc { "DESC" } else { "ASC" };
            format!(
                "SELECT {columns} FROM ({budget}) WHERE {} ORDER BY id {order} LIMIT ?",
                tests.join(" AND ")
            )
        };
        values.push(Value::Integer(i64::from(limit)));
        (sql, values)
    }

    /// The last row of the budget, when the budget ran out before the rows did.
    fn budget_edge<T>(
        &self,
        conn: &Connection,
        columns: &str,
        map: &impl Fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>> {
        let sql = format!("{} OFFSET ?", page_sql(self.table, columns, self.clause, self.desc));
        let mut values = self.values.to_vec();
        values.extend([Value::Integer(1), Value::Integer(i64::from(SCAN_BUDGET) - 1)]);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query_map(params_from_iter(values), |r| map(r))?;
        Ok(rows.next().transpose()?)
    }
}

/// What SQLite does to answer the first page, newest first, of `table` under `conditions`:
/// the `detail` of each `EXPLAIN QUERY PLAN` step, joined by `; `.
#[cfg(test)]
pub(super) fn first_page_plan(
    conn: &Connection,
    table: &str,
    columns: &str,
    conditions: &Conditions,
) -> StoreResult<String> {
    let clause = conditions.where_clause(None);
    let scan = Scan { table, clause: &clause, values: &conditions.values, desc: true };
    let (sql, values) = scan.page_query(columns, &conditions.unindexed, 11);
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let steps = stmt
        .query_map(params_from_iter(values), |r| r.get::<_, String>(3))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(steps.join("; "))
}

/// Whether `value` is text holding the NUL character. The API stores no such text (and
/// PostgreSQL's text cannot hold it): a filter on it matches nothing, on either backend,
/// rather than failing on PostgreSQL.
fn holds_nul(value: &Value) -> bool {
    matches!(value, Value::Text(t) if t.contains('\0'))
}

fn exists(
    conn: &Connection,
    table: &str,
    conditions: &Conditions,
    cmp: &str,
    id: &str,
) -> StoreResult<bool> {
    let sql =
        format!("SELECT EXISTS (SELECT 1 FROM {table}{})", conditions.where_clause(Some(cmp)));
    let mut values = conditions.values.clone();
    values.push(crate::ids::stored_value(id));
    Ok(conn.prepare_cached(&sql)?.query_row(params_from_iter(values), |r| r.get(0))?)
}

#[cfg(test)]
impl Conditions {
    /// The WHERE clause and its values, for query-plan tests.
    pub(super) fn sql_for_test(&self) -> (String, Vec<Value>) {
        (self.where_clause(None), self.values.clone())
    }
}
