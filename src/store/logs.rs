//! AutomationLogs: one row per outgoing call, bodies and snapshots by hash.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::content::{self, GoneReason};
use super::log_filters::{conditions, LogFilter};
use super::page::{read_page, Page, PageRequest};
use super::{bodies, decode, implied_headers, BodyHash, Snapshot, Store, StoreError, StoreResult};
use crate::ids::{AutomationId, DeliveryId, LogId, MessageId};
use crate::outbound::ErrorCode;
use crate::time::UnixMs;

decode::stored_enum! {
    /// Why a call was made.
    pub enum Trigger {
        /// First attempt of a delivery.
        Initial = "initial",
        /// A scheduled retry.
        Retry = "retry",
        /// An operator's rerun of one log.
        Rerun = "rerun",
        /// An attempt re-queued by a recover job.
        Recover = "recover",
        /// The first attempt of a delivery a replay job created for a message that had none.
        Replay = "replay",
        /// The automation test call.
        Test = "test",
    }
}

/// A log to insert. Bodies are referenced by hash except the response body, stored here.
/// It has no id yet: [`insert`] gives it one, in the write that records it.
#[derive(Debug, Clone)]
pub struct NewLog {
    /// The delivery this attempt belongs to, or a rerun repeated (none for tests).
    pub delivery_id: Option<DeliveryId>,
    /// The message whose payload was sent (its id is the `webhook-id`).
    pub message_id: MessageId,
    /// The automation called.
    pub automation_id: AutomationId,
    /// Its processor, for the processor-scoped logs API.
    pub processor_id: String,
    /// 1-based attempt number within the delivery (reruns: 1).
    pub attempt: u32,
    /// Why the call was made.
    pub trigger: Trigger,
    /// For reruns: the log that was rerun.
    pub rerun_of: Option<LogId>,
    /// The URL called.
    pub webhook_url: String,
    /// Request headers as a JSON object, secrets redacted.
    pub request_headers: String,
    /// Whether `request_headers` leaves out the headers the log's own columns imply (see
    /// [`super::implied_headers`]); a log read back always has them in place.
    pub request_headers_implied: bool,
    /// Hash of the request body (the message payload).
    pub request_body_hash: BodyHash,
    /// When the request started.
    pub request_at: UnixMs,
    /// When the response ended (or the call failed).
    pub response_at: UnixMs,
    /// HTTP status, 0 when no response arrived.
    pub status_code: u16,
    /// Response headers as a JSON object.
    pub response_headers: String,
    /// The response body up to the cap.
    pub response_body: Option<Vec<u8>>,
    /// Whether the body was cut at the cap.
    pub response_truncated: bool,
    /// Call duration.
    pub duration_ms: f64,
    /// Why the call failed, none on success.
    pub error_code: Option<ErrorCode>,
    /// Human-readable detail of the error.
    pub error_message: Option<String>,
    /// Hash of the automation snapshot.
    pub snapshot_hash: BodyHash,
}

/// A stored log with its bodies: the call as recorded, under the id the store gave it.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// `log_auto_…`, taken when the log was recorded (see [`LogRecord::recorded_at`]).
    pub id: LogId,
    /// The call. Its `response_body` is the stored one; its hashes name the bodies below.
    pub log: NewLog,
    /// The request body bytes; `None` when it is gone ([`GoneBodies::request`] says why):
    /// the log stays readable, but cannot be rerun.
    pub request_body: Option<Vec<u8>>,
    /// The automation snapshot JSON (empty when it is gone).
    pub snapshot: Vec<u8>,
    /// Which of its bodies are gone, and why (see `content`).
    pub gone: GoneBodies,
}

/// Which bodies of a log are gone, each with why; `None` for one that is stored (or, for
/// the response, that there never was: no response arrived).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoneBodies {
    /// The request body (its message's payload).
    pub request: Option<GoneReason>,
    /// The response body.
    pub response: Option<GoneReason>,
    /// The automation snapshot (never expunged: it is the relay's own record).
    pub snapshot: Option<GoneReason>,
}

/// The columns read back, in [`from_row`]'s order.
pub(super) const COLUMNS: &str = "id, delivery_id, message_id, automation_id, processor_id, attempt, trigger, \
    rerun_of, webhook_url, request_headers, request_body_hash, request_at, response_at, status_code, \
    response_headers, response_body_hash, response_truncated, duration_ms, error_code, error_message, \
    snapshot_hash, request_headers_implied";

/// A log row, before its bodies are loaded.
struct Stored {
    record: LogRecord,
    response_body_hash: Option<Vec<u8>>,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Stored> {
    let id: LogId = decode::key(r, 0, "logs")?;
    let error_code = match r.get::<_, Option<String>>(18)? {
        Some(code) => Some(ErrorCode::parse(&code).ok_or_else(|| {
            decode::corrupt(r, 18, "logs", &id, format!("unknown error code `{code}`"))
        })?),
        None => None,
    };
    let message_id: MessageId = decode::value(r, 2, "logs", &id)?;
    let request_at: UnixMs = r.get(11)?;
    let mut request_headers: String = r.get(9)?;
    if decode::flag(r, 21, "logs", &id)? {
        request_headers =
            implied_headers::put_back(&request_headers, message_id.as_str(), request_at)
                .ok_or_else(|| {
                    let problem = "request headers stored without their implied ones are not an \
                    object with a first header";
                    decode::corrupt(r, 9, "logs", &id, problem.to_string())
                })?;
    }
    let log = NewLog {
        delivery_id: decode::value(r, 1, "logs", &id)?,
        message_id,
        automation_id: decode::value(r, 3, "logs", &id)?,
        processor_id: r.get(4)?,
        attempt: r.get(5)?,
        trigger: decode::value(r, 6, "logs", &id)?,
        rerun_of: decode::value(r, 7, "logs", &id)?,
        webhook_url: r.get(8)?,
        request_headers,
        request_headers_implied: false,
        request_body_hash: decode::hash(r, 10, "logs", &id)?,
        request_at,
        response_at: r.get(12)?,
        status_code: r.get(13)?,
        response_headers: r.get(14)?,
        response_body: None,
        response_truncated: decode::flag(r, 16, "logs", &id)?,
        duration_ms: r.get(17)?,
        error_code,
        error_message: r.get(19)?,
        snapshot_hash: decode::hash(r, 20, "logs", &id)?,
    };
    Ok(Stored {
        record: LogRecord {
            id,
            log,
            request_body: None,
            snapshot: Vec::new(),
            gone: GoneBodies::default(),
        },
        response_body_hash: r.get(15)?,
    })
}

/// Loads a log's bodies. One that is gone (content retention, an expunge: see `content`)
/// is shown as absent, with why, rather than failing the read or the whole list.
fn load_bodies(conn: &Connection, stored: Stored) -> StoreResult<LogRecord> {
    let mut record = stored.record;
    let why = match content::expunged(conn, &record.log.message_id)? {
        true => GoneReason::Expunged,
        false => GoneReason::Expired,
    };
    // The request body is the message's payload: see `content::expunged` for why an
    // expunged message's is not even looked for.
    if why == GoneReason::Expired {
        record.request_body = bodies::find(conn, &record.log.request_body_hash)?;
    }
    record.gone.request = record.request_body.is_none().then_some(why);
    match bodies::find(conn, &record.log.snapshot_hash)? {
        Some(snapshot) => record.snapshot = snapshot,
        None => record.gone.snapshot = Some(GoneReason::Expired),
    }
    // An expunge never deletes a response body (see `content::expunge`: a response stored
    // the payload's bytes again, so they count as shared); one that is gone expired.
    if let Some(hash) = stored.response_body_hash {
        record.log.response_body = bodies::find(conn, &hash)?;
        record.gone.response = record.log.response_body.is_none().then_some(GoneReason::Expired);
    }
    Ok(record)
}

/// Inserts a log (and its response body, once) under a new id, returned. The id is taken
/// here, on the single writer's thread, rather than when the call ended: the writer commits
/// in the order it runs writes and ids only grow (see `ids::new_id`), so readers see the
/// logs as a growing prefix of the id order, and a client following a list with
/// `after=<last id seen>` never has a log commit below its cursor.
///
/// The rest: the log's request body and snapshot are stored
/// already: the payload with its message, the snapshot when the delivery was handed out
/// (`AutomationCache::store_snapshot`, whose memory never outlives a rollback). The message's
/// event type is copied from its row (for the `event_type` filter): every path that writes a
/// log (attempts, reruns, recover, tests, interrupted calls) gets it without carrying it.
pub(super) fn insert(conn: &Connection, log: &NewLog) -> StoreResult<LogId> {
    let id = LogId::new();
    insert_as(conn, &id, log)?;
    Ok(id)
}

/// Inserts `log` under `id` (see [`insert`], which every live path goes through).
fn insert_as(conn: &Connection, id: &LogId, log: &NewLog) -> StoreResult<()> {
    let response_hash = log.response_body.as_deref().map(bodies::body_hash);
    conn.prepare_cached(&format!(
        "INSERT INTO logs ({COLUMNS}, event_type) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
         ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
         (SELECT event_type FROM messages WHERE id = ?3))"
    ))?
    .execute(params![
        id,
        log.delivery_id,
        log.message_id,
        log.automation_id,
        log.processor_id,
        log.attempt,
        log.trigger,
        log.rerun_of,
        log.webhook_url,
        log.request_headers,
        &log.request_body_hash[..],
        log.request_at,
        log.response_at,
        log.status_code,
        log.response_headers,
        response_hash.as_ref().map(|h| &h[..]),
        log.response_truncated,
        log.duration_ms,
        log.error_code.map(ErrorCode::as_str),
        log.error_message,
        &log.snapshot_hash[..],
        log.request_headers_implied
    ])?;
    if let Some(body) = &log.response_body {
        bodies::put(conn, body)?;
    }
    Ok(())
}

fn get(conn: &Connection, id: &LogId) -> StoreResult<Option<LogRecord>> {
    let stored = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM logs WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?;
    stored.map(|s| load_bodies(conn, s)).transpose()
}

fn list(conn: &Connection, filter: &LogFilter, page: &PageRequest) -> StoreResult<Page<LogRecord>> {
    let c = conditions(filter);
    let page = read_page(conn, "logs", COLUMNS, &c, page, from_row, |s| s.record.id.as_str())?;
    let items =
        page.items.into_iter().map(|s| load_bodies(conn, s)).collect::<StoreResult<Vec<_>>>()?;
    Ok(Page { items, before: page.before, after: page.after })
}

impl Store {
    /// Records a call that belongs to no delivery (a test call), with the snapshot of the
    /// automation it was made for (`log.snapshot_hash` must be its hash); returns its id.
    pub async fn insert_log(&self, log: NewLog, snapshot: Snapshot) -> StoreResult<LogId> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let mut client = p.client().await?;
                super::pg::snapshots::put(p, &client, &snapshot).await?;
                let tx = client.transaction().await.map_err(|e| p.failed(e))?;
                let id = super::pg::logs::insert(p, &tx, &log).await?;
                tx.commit().await.map_err(|e| p.failed(e))?;
                return Ok(id);
            }
        };
        db.write(move |c| {
            snapshot.put(c)?;
            insert(c, &log)
        })
        .await
    }

    /// Records `log` under a chosen `id`, as a past log: for seeding a database with logs of
    /// given times (the benchmark). A live relay never does this; its ids are taken in the
    /// write (see [`insert`]), or a client following a list could miss a log.
    pub async fn insert_log_as(
        &self,
        id: LogId,
        log: NewLog,
        snapshot: Snapshot,
    ) -> StoreResult<()> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                let mut client = p.client().await?;
                super::pg::snapshots::put(p, &client, &snapshot).await?;
                let tx = client.transaction().await.map_err(|e| p.failed(e))?;
                super::pg::logs::insert_as(p, &tx, &id, &log).await?;
                return tx.commit().await.map_err(|e| p.failed(e));
            }
        };
        db.write(move |c| {
            snapshot.put(c)?;
            insert_as(c, &id, &log)
        })
        .await
    }

    /// Reads one log with its bodies.
    pub async fn log(&self, id: LogId) -> StoreResult<LogRecord> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::logs::get(p, &**p.client().await?, &id).await
            }
        };
        db.read(move |c| get(c, &id)?.ok_or(StoreError::NotFound("log"))).await
    }

    /// One page of logs with their bodies.
    pub async fn list_logs(
        &self,
        filter: LogFilter,
        page: PageRequest,
    ) -> StoreResult<Page<LogRecord>> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::logs::list(p, &**p.client().await?, &filter, &page).await
            }
        };
        db.read(move |c| list(c, &filter, &page)).await
    }
}

impl LogRecord {
    /// When the log was recorded: the time its id carries, shown as its
    /// `created_at`. It orders the lists and bounds `created_after`/`created_before`, so
    /// all three agree. The call's start is `request_at`.
    pub fn recorded_at(&self) -> UnixMs {
        UnixMs::from_ms(self.id.time_of())
    }
}

impl NewLog {
    /// The record this log reads back as once stored under `id`, given the bodies it refers
    /// to by hash.
    pub fn into_record(mut self, id: LogId, request_body: Vec<u8>, snapshot: Vec<u8>) -> LogRecord {
        // As read back: the implied request headers in place (a rerun's or a test call's
        // answer shows the log it stored, the same as the list will).
        if self.request_headers_implied {
            let (message, at) = (self.message_id.as_str(), self.request_at);
            if let Some(whole) = implied_headers::put_back(&self.request_headers, message, at) {
                self.request_headers = whole;
                self.request_headers_implied = false;
            }
        }
        LogRecord {
            id,
            log: self,
            request_body: Some(request_body),
            snapshot,
            gone: GoneBodies::default(),
        }
    }
}
