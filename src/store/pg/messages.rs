//! Ingest on PostgreSQL: `store::messages`' SQL, beside it. One transaction per message
//! (there is no group-commit writer): the Idempotency-Key is claimed first, by the table's
//! unique key, so two instances given the same key store one message; then the message,
//! its payload (through `pg::bodies`) and one delivery per subscribed automation. The FIFO
//! line is the schema's triggers' (they may make a new delivery wait: see
//! [`insert_deliveries`]). Automations are read from the database rather than from the
//! instance's cache, which another instance's write would leave stale.

use std::sync::Arc;

use bytes::Bytes;
use tokio_postgres::types::ToSql;

use super::{automations, bodies, snapshots, Cached, OrStore, Pg};
use crate::delivery::ticket::Intake;
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::redact::HeaderRedaction;
use crate::store::bodies::{body_hash, Prepared};
use crate::store::cache::Target;
use crate::store::claims::Take;
use crate::store::fifo::{DeliveryOrder, WAITING_AT};
use crate::store::messages::{
    request_fingerprint, Accepted, Handover, IngestResult, NewMessage, Receipt, StoredMessage,
    IDEMPOTENCY_WINDOW_MS,
};
use crate::store::{BodyHash, ClaimedDelivery, Conflict, StoreError, StoreResult, Trigger};
use crate::time::UnixMs;

/// Stores `msg` (payload hashed and compressed beforehand) in a transaction of its own, as
/// `store::messages::ingest` does on SQLite; `version` is the automations' version its
/// deliveries carry.
pub(crate) async fn ingest(
    pg: &Pg,
    rule: &HeaderRedaction,
    version: u64,
    msg: NewMessage,
    payload: Prepared,
    intake: &dyn Intake,
) -> StoreResult<Accepted> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    let (accepted, taken) =
        ingest_in(pg, &tx, rule, version, msg, payload, intake, UnixMs::now()).await?;
    tx.commit().await.at(pg)?;
    snapshots::put_all(pg, &client, &taken).await?;
    Ok(accepted)
}

/// Stores `msg` at `now` in the caller's transaction `tx` (see [`ingest`]; a finished run's
/// completion is ingested with its run row). Returns the answer and the targets whose
/// snapshots the handed-over deliveries refer to: the caller stores them after its commit
/// (`snapshots::put_all`). A replayed Idempotency-Key writes nothing.
#[allow(clippy::too_many_arguments)]
pub(super) async fn ingest_in(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    rule: &HeaderRedaction,
    version: u64,
    msg: NewMessage,
    payload: Prepared,
    intake: &dyn Intake,
    now: UnixMs,
) -> StoreResult<(Accepted, Vec<Arc<Target>>)> {
    let request_hash = msg.idempotency_key.as_ref().map(|_| body_hash(&request_fingerprint(&msg)));
    if let (Some(key), Some(request_hash)) = (&msg.idempotency_key, &request_hash) {
        if let Some(result) = claim_key(pg, tx, key, request_hash, now).await? {
            let receipt = Receipt { result, replayed: true };
            return Ok((Accepted { receipt, handover: Handover::default() }, Vec::new()));
        }
    }
    let (processor_id, targets) = addressed_targets(pg, tx, rule, &msg).await?;
    lock_lines(pg, tx, &targets).await?;
    let message_id = MessageId::new();
    let payload_hash = bodies::put_prepared(pg, tx, &payload).await?;
    insert_message(
        pg,
        tx,
        &message_id,
        &processor_id,
        msg.event_type.as_deref(),
        &payload_hash,
        msg.automation_id.as_ref(),
        now,
    )
    .await?;
    let stored =
        StoredMessage { id: message_id, payload: Bytes::from(msg.payload), payload_hash, now };
    let (deliveries, handover, taken) =
        insert_deliveries(pg, tx, version, intake, &stored, targets).await?;
    let result = IngestResult {
        message_id: stored.id,
        processor_id,
        event_type: msg.event_type,
        deliveries,
        created_at: now,
    };
    if let Some(key) = &msg.idempotency_key {
        let response =
            serde_json::to_string(&result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let stmt = tx
            .prepare_cached("UPDATE idempotency_keys SET response = $2::text::json WHERE key = $1")
            .await
            .at(pg)?;
        tx.execute(&stmt, &[key, &response]).await.at(pg)?;
    }
    if handover.unclaimed {
        // Delivered at commit, to every instance's listener (see `pg::listen`).
        tx.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    Ok((Accepted { receipt: Receipt { result, replayed: false }, handover }, taken))
}

/// Takes the FIFO line lock of each FIFO target (the triggers' `hr_fifo_lock`, held to the
/// commit), in automation-id order as `targets` is, before the message's and deliveries'
/// ids are made: transactions adding to one line then take ids and commit in the same
/// order, so the line (promoted by id) is in ingest order. With ids made before the lock, a
/// later id could commit first and become the head, or be promoted before an earlier one
/// committed.
async fn lock_lines(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    targets: &[Arc<Target>],
) -> StoreResult<()> {
    for target in targets {
        if target.automation.settings.ordering == DeliveryOrder::Fifo {
            let lock = tx.prepare_cached("SELECT hr_fifo_lock($1)").await.at(pg)?;
            tx.execute(&lock, &[&target.automation.id]).await.at(pg)?;
        }
    }
    Ok(())
}

/// Takes `key` for this request, or reads the answer it gave: `None` when this transaction
/// now holds the key (new, or its window over), `Some` with the first answer when another
/// request holds it (the same request: a replay), [`Conflict::IdempotencyKeyReused`] for a
/// different one. A request racing another with the same key waits at the unique index
/// until the other commits (then reads its answer) or rolls back (then takes the key).
async fn claim_key(
    pg: &Pg,
    tx: &impl Cached,
    key: &str,
    request_hash: &BodyHash,
    now: UnixMs,
) -> StoreResult<Option<IngestResult>> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO idempotency_keys (key, request_hash, response, created_at) \
             VALUES ($1, $2, 'null', $3) ON CONFLICT (key) DO UPDATE \
             SET request_hash = EXCLUDED.request_hash, response = 'null', created_at = $3 \
             WHERE idempotency_keys.created_at <= $3 - $4 RETURNING true",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 4] =
        [&key, &request_hash.as_slice(), &now.as_ms(), &IDEMPOTENCY_WINDOW_MS];
    if tx.query_opt(&stmt, &params).await.at(pg)?.is_some() {
        return Ok(None);
    }
    let row = tx
        .query_one(
            "SELECT request_hash, response::text FROM idempotency_keys WHERE key = $1",
            &[&key],
        )
        .await
        .at(pg)?;
    if row.get::<_, &[u8]>(0) != &request_hash[..] {
        return Err(StoreError::Conflict(
            Conflict::IdempotencyKeyReused,
            "Idempotency-Key was already used for a different request".into(),
        ));
    }
    serde_json::from_str(row.get::<_, &str>(1))
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("idempotency key {key}: {e}")))
}

/// `store::messages::addressed_targets` on PostgreSQL: read, not cached. Writes nothing.
async fn addressed_targets(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    rule: &HeaderRedaction,
    msg: &NewMessage,
) -> StoreResult<(String, Vec<Arc<Target>>)> {
    match (&msg.automation_id, &msg.processor_id) {
        (Some(id), _) => {
            let a =
                automations::get(pg, tx, id).await?.ok_or(StoreError::NotFound("automation"))?;
            if !a.settings.enabled {
                return Err(StoreError::Conflict(
                    Conflict::AutomationDisabled,
                    format!("automation {id} is disabled"),
                ));
            }
            Ok((a.settings.processor_id.clone(), vec![Target::new(a, rule)]))
        }
        (None, Some(p)) => {
            let stmt = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM automations WHERE processor_id = $1 AND enabled \
                     AND id NOT IN (SELECT automation_id FROM operational_automation) ORDER BY id",
                    automations::COLUMNS
                ))
                .await
                .at(pg)?;
            let mut targets = Vec::new();
            for row in tx.query(&stmt, &[p]).await.at(pg)? {
                let a = crate::store::automations::from_row(&row)?;
                if a.wants(msg.event_type.as_deref()) {
                    targets.push(Target::new(a, rule));
                }
            }
            Ok((p.clone(), targets))
        }
        (None, None) => Err(StoreError::Unaddressed),
    }
}

/// Inserts a `messages` row.
#[allow(clippy::too_many_arguments)]
async fn insert_message(
    pg: &Pg,
    c: &impl Cached,
    id: &MessageId,
    processor_id: &str,
    event_type: Option<&str>,
    payload_hash: &BodyHash,
    automation_id: Option<&AutomationId>,
    now: UnixMs,
) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at, \
             automation_id) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 6] =
        [id, &processor_id, &event_type, &payload_hash.as_slice(), &now.as_ms(), &automation_id];
    c.execute(&stmt, &params).await.at(pg)?;
    Ok(())
}

/// `store::messages::insert_deliveries` on PostgreSQL. A FIFO delivery is offered to the
/// intake only when its line looks empty; the trigger has the last word (another instance
/// may have lined one up meanwhile): a delivery it made wait comes back unclaimed and is
/// not handed over (the intake's room for it is given back with the ticket). Returns the
/// targets whose snapshots the deliveries handed over refer to, stored after the commit.
async fn insert_deliveries(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    version: u64,
    intake: &dyn Intake,
    message: &StoredMessage,
    targets: Vec<Arc<Target>>,
) -> StoreResult<(Vec<(DeliveryId, AutomationId)>, Handover, Vec<Arc<Target>>)> {
    let now = message.now;
    let lease_until = now.plus_ms(intake.lease_ms());
    let insert = tx
        .prepare_cached(
            "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
             next_attempt_at, claimed, next_trigger, created_at, updated_at, fifo, claimed_by) \
             VALUES ($1, $2, $3, 'pending', 0, $4, $5, 'initial', $6, $6, $7, $8::text::uuid) \
             RETURNING claimed",
        )
        .await
        .at(pg)?;
    let mut deliveries = Vec::with_capacity(targets.len());
    let mut ready = Vec::with_capacity(targets.len());
    let mut unclaimed = false;
    let mut taken_targets = Vec::new();
    for target in targets {
        let delivery_id = DeliveryId::new();
        let automation = &target.automation;
        let in_line = automation.settings.ordering == DeliveryOrder::Fifo;
        let waits = in_line && line_busy(pg, tx, &automation.id).await?;
        let taken = if waits { None } else { intake.take(&automation.id, &delivery_id) };
        let taken = taken.map(|t| t.stored_for(automation));
        let next_attempt_at = match taken {
            Some(Take::Call) => lease_until,
            Some(Take::Hold) => now,
            None if waits => WAITING_AT,
            None => now,
        };
        let claimed = taken.map_or(0, Take::claimed) as i16;
        let claimed_by = taken.map(|_| pg.instance());
        let params: [&(dyn ToSql + Sync); 8] = [
            &delivery_id,
            &message.id,
            &automation.id,
            &next_attempt_at.as_ms(),
            &claimed,
            &now.as_ms(),
            &in_line,
            &claimed_by,
        ];
        let stored: i16 = tx.query_one(&insert, &params).await.at(pg)?.get(0);
        let taken = taken.filter(|_| stored != 0);
        unclaimed |= taken.is_none() && !waits;
        deliveries.push((delivery_id.clone(), automation.id.clone()));
        if let Some(taken) = taken {
            ready.push(ClaimedDelivery {
                id: delivery_id,
                message_id: message.id.clone(),
                automation: automation.clone(),
                automation_version: version,
                snapshot_hash: target.snapshot().hash,
                payload: (taken == Take::Call).then(|| message.payload.clone()),
                payload_hash: message.payload_hash,
                attempt: 1,
                trigger: Trigger::Initial,
                recover_job_id: None,
                created_at: now,
                started: taken == Take::Call,
            });
            taken_targets.push(target);
        }
    }
    Ok((deliveries, Handover { ready, unclaimed }, taken_targets))
}

/// Whether automation `id`'s FIFO line has a pending delivery (see `store::fifo::line_busy`).
async fn line_busy(pg: &Pg, c: &impl Cached, id: &AutomationId) -> StoreResult<bool> {
    let stmt = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM deliveries \
             WHERE automation_id = $1 AND status = 'pending' AND fifo)",
        )
        .await
        .at(pg)?;
    Ok(c.query_one(&stmt, &[id]).await.at(pg)?.get(0))
}

/// `Store::insert_bare_message` on PostgreSQL: a message with no delivery.
pub(crate) async fn insert_bare(
    pg: &Pg,
    processor_id: &str,
    automation_id: &AutomationId,
    event_type: &str,
    payload: &[u8],
) -> StoreResult<(MessageId, BodyHash)> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    let id = MessageId::new();
    let hash = bodies::put(pg, &tx, payload).await?;
    let now = UnixMs::now();
    insert_message(pg, &tx, &id, processor_id, Some(event_type), &hash, Some(automation_id), now)
        .await?;
    tx.commit().await.at(pg)?;
    Ok((id, hash))
}

/// Forgets idempotency keys older than the window.
pub(crate) async fn purge_idempotency_keys(pg: &Pg) -> StoreResult<usize> {
    let cutoff = UnixMs::now().minus_ms(IDEMPOTENCY_WINDOW_MS).as_ms();
    let client = pg.client().await?;
    let n = client
        .execute("DELETE FROM idempotency_keys WHERE created_at < $1", &[&cutoff])
        .await
        .at(pg)?;
    Ok(n as usize)
}
