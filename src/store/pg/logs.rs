//! Logs on PostgreSQL: `store::logs`' SQL, beside it, into the same row types. Response
//! bodies go through `pg::bodies`; the request body and snapshot are stored before (with
//! the message, and as the delivery is handed out).

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::message_views::is_expunged;
use super::page::read_page;
use super::{bodies, OrStore, Pg};
use crate::ids::LogId;
use crate::outbound::ErrorCode;
use crate::store::column::Column;
use crate::store::log_filters::{conditions, LogFilter};
use crate::store::logs::{GoneBodies, LogRecord, NewLog, Trigger};
use crate::store::page::{Page, PageRequest};
use crate::store::{body_hash, implied_headers, BodyHash, GoneReason, StoreError, StoreResult};

/// `store::logs::COLUMNS`, the JSON ones read as their text.
const COLUMNS: &str = "id, delivery_id, message_id, automation_id, processor_id, attempt, \
    trigger, rerun_of, webhook_url, request_headers::text, request_body_hash, request_at, \
    response_at, status_code, response_headers::text, response_body_hash, response_truncated, \
    duration_ms, error_code, error_message, snapshot_hash, request_headers_implied";

/// The high 16 bits ("lg") of the advisory lock key a transaction writing a log holds; the
/// low 48 bits are the millisecond, on PostgreSQL's clock, its log's id is made at the
/// earliest. A bigint key, so it never meets the two-integer keys of classes 1 to 3.
const WRITER_TAG: i64 = 0x6C67 << 48;

/// Inserts `log` under a new id, returned (see `store::logs::insert`). Readers must see the
/// logs as a growing prefix of the id order (a client following a list with `after=<last
/// id seen>` never has a log commit below its cursor): SQLite's single writer gives that.
/// Here writers do not wait for each other: each first holds, to its commit, a shared
/// advisory lock whose key says the millisecond its id is made at the earliest (the
/// database's clock, so another instance's clock cannot put it below), and readers list
/// only ids below the earliest of those ([`horizon`]).
pub(crate) async fn insert(
    pg: &Pg,
    c: &deadpool_postgres::Transaction<'_>,
    log: &NewLog,
) -> StoreResult<LogId> {
    let register = c
        .prepare_cached(
            "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms), \
             held AS (SELECT pg_advisory_xact_lock_shared($1::bigint | ms) FROM now) \
             SELECT ms FROM now, held",
        )
        .await
        .at(pg)?;
    let from: i64 = c.query_one(&register, &[&WRITER_TAG]).await.at(pg)?.get(0);
    let id = LogId::new_not_before(from);
    insert_as(pg, c, &id, log).await?;
    Ok(id)
}

/// The millisecond below which every log that will ever be is committed: the earliest a
/// writer still in progress may make its id at, else now (the database's clock: a writer
/// registering later reads a later time). Read in a statement before the page it bounds,
/// so that the page's snapshot sees every writer that had finished by then.
pub(crate) async fn horizon(pg: &Pg, c: &(impl GenericClient + Sync)) -> StoreResult<i64> {
    let sql = "SELECT least((extract(epoch FROM clock_timestamp()) * 1000)::bigint, \
             (SELECT min(((l.classid::bigint << 32) | l.objid::bigint) & $2::bigint) \
             FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND d.datname = current_database() \
             AND ((l.classid::bigint << 32) | l.objid::bigint) >> 48 = $1::bigint >> 48))";
    let mask: i64 = (1 << 48) - 1;
    Ok(c.query_one(sql, &[&WRITER_TAG, &mask]).await.at(pg)?.get(0))
}

/// Inserts `log` under `id`, and its response body.
pub(crate) async fn insert_as(
    pg: &Pg,
    c: &deadpool_postgres::Transaction<'_>,
    id: &LogId,
    log: &NewLog,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO logs (id, delivery_id, message_id, automation_id, processor_id, attempt, \
             trigger, rerun_of, webhook_url, request_headers, request_body_hash, request_at, \
             response_at, status_code, response_headers, response_body_hash, response_truncated, \
             duration_ms, error_code, error_message, snapshot_hash, request_headers_implied, \
             event_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::json, $11, $12, \
             $13, $14, $15::text::json, $16, $17, $18, $19, $20, $21, $22, \
             (SELECT event_type FROM messages WHERE id = $23))",
        )
        .await
        .at(pg)?;
    let response_hash = log.response_body.as_deref().map(body_hash);
    let attempt = i32::try_from(log.attempt).unwrap_or(i32::MAX);
    let params: [&(dyn ToSql + Sync); 23] = [
        id,
        &log.delivery_id,
        &log.message_id,
        &log.automation_id,
        &log.processor_id,
        &attempt,
        &log.trigger.as_str(),
        &log.rerun_of,
        &log.webhook_url,
        &log.request_headers,
        &log.request_body_hash.as_slice(),
        &log.request_at.as_ms(),
        &log.response_at.as_ms(),
        &i32::from(log.status_code),
        &log.response_headers,
        &response_hash.as_ref().map(|h| h.as_slice()),
        &log.response_truncated,
        &log.duration_ms,
        &log.error_code.map(ErrorCode::as_str),
        &log.error_message,
        &log.snapshot_hash.as_slice(),
        &log.request_headers_implied,
        &log.message_id,
    ];
    c.execute(&stmt, &params).await.at(pg)?;
    if let Some(body) = &log.response_body {
        bodies::put(pg, c, body).await?;
    }
    Ok(())
}

fn hash(r: &Row, idx: usize, id: &LogId) -> StoreResult<BodyHash> {
    let bytes = r.bytes(idx, "logs", id)?;
    BodyHash::try_from(bytes.as_slice())
        .map_err(|_| r.corrupt(idx, "logs", id, "not a body hash".into()))
}

/// A log row, its bodies not yet loaded (the response body's hash beside it).
fn from_row(r: &Row) -> StoreResult<(LogRecord, Option<Vec<u8>>)> {
    let id: LogId = r.key(0, "logs")?;
    let error_code = r
        .opt_text(18, "logs", &id)?
        .map(|code| {
            ErrorCode::parse(&code)
                .ok_or_else(|| r.corrupt(18, "logs", &id, format!("unknown error code `{code}`")))
        })
        .transpose()?;
    let message_id = r.key(2, "logs")?;
    let request_at = r.time(11, "logs", &id)?;
    let mut request_headers = r.text(9, "logs", &id)?;
    if r.flag(21, "logs", &id)? {
        request_headers =
            implied_headers::put_back(&request_headers, message_id.as_str(), request_at)
                .ok_or_else(|| {
                    let problem = "request headers stored without their implied ones are not an \
                    object with a first header";
                    r.corrupt(9, "logs", &id, problem.to_string())
                })?;
    }
    let duration_ms: f64 = r.try_get(17).map_err(|e| r.corrupt(17, "logs", &id, e.to_string()))?;
    let log = NewLog {
        delivery_id: r.opt_id(1, "logs", &id)?,
        message_id,
        automation_id: r.key(3, "logs")?,
        processor_id: r.text(4, "logs", &id)?,
        attempt: u32::try_from(r.int(5, "logs", &id)?).unwrap_or(0),
        trigger: r.parsed(6, "logs", &id, Trigger::parse)?,
        rerun_of: r.opt_id(7, "logs", &id)?,
        webhook_url: r.text(8, "logs", &id)?,
        request_headers,
        request_headers_implied: false,
        request_body_hash: hash(r, 10, &id)?,
        request_at,
        response_at: r.time(12, "logs", &id)?,
        status_code: u16::try_from(r.int(13, "logs", &id)?).unwrap_or(0),
        response_headers: r.text(14, "logs", &id)?,
        response_body: None,
        response_truncated: r.flag(16, "logs", &id)?,
        duration_ms,
        error_code,
        error_message: r.opt_text(19, "logs", &id)?,
        snapshot_hash: hash(r, 20, &id)?,
    };
    let response_hash = r.opt_bytes(15, "logs", &id)?;
    let record = LogRecord {
        id,
        log,
        request_body: None,
        snapshot: Vec::new(),
        gone: GoneBodies::default(),
    };
    Ok((record, response_hash))
}

/// `store::logs::load_bodies` on PostgreSQL.
async fn load_bodies(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    (mut record, response_hash): (LogRecord, Option<Vec<u8>>),
) -> StoreResult<LogRecord> {
    let why = match is_expunged(pg, c, &record.log.message_id).await? {
        true => GoneReason::Expunged,
        false => GoneReason::Expired,
    };
    if why == GoneReason::Expired {
        record.request_body = bodies::find(pg, c, &record.log.request_body_hash).await?;
    }
    record.gone.request = record.request_body.is_none().then_some(why);
    match bodies::find(pg, c, &record.log.snapshot_hash).await? {
        Some(snapshot) => record.snapshot = snapshot,
        None => record.gone.snapshot = Some(GoneReason::Expired),
    }
    if let Some(hash) = response_hash {
        record.log.response_body = bodies::find(pg, c, &hash).await?;
        record.gone.response = record.log.response_body.is_none().then_some(GoneReason::Expired);
    }
    Ok(record)
}

/// One log with its bodies.
pub(crate) async fn get(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    id: &LogId,
) -> StoreResult<LogRecord> {
    let sql = format!("SELECT {COLUMNS} FROM logs WHERE id = $1");
    let row = c.query_opt(sql.as_str(), &[id]).await.at(pg)?;
    let stored = from_row(&row.ok_or(StoreError::NotFound("log"))?)?;
    load_bodies(pg, c, stored).await
}

/// One page of logs with their bodies.
pub(crate) async fn list(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    filter: &LogFilter,
    page: &PageRequest,
) -> StoreResult<Page<LogRecord>> {
    let mut cond = conditions(filter);
    cond.push("id < ?", LogId::time_bound(horizon(pg, c).await?));
    let page =
        read_page(pg, c, "logs", COLUMNS, &cond, page, from_row, |s| s.0.id.as_str()).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for stored in page.items {
        items.push(load_bodies(pg, c, stored).await?);
    }
    Ok(Page { items, before: page.before, after: page.after })
}
