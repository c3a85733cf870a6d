//! Claims on PostgreSQL: `store::claims`' rules, in PostgreSQL's SQL (docs/postgres.md,
//! "Claims"). Candidates are locked `FOR UPDATE SKIP LOCKED`, so instances claiming at once
//! take disjoint sets without waiting on each other; a claim names this instance in
//! `claimed_by`, and one to call at once (`claimed = 1`) carries its lease in
//! `next_attempt_at`. A lease that ran out (its instance died or stalled) is claimed again
//! like a due delivery: the at-least-once case. Its old attempt gets an `E_INTERRUPTED` log
//! (as a dead instance's started claim does, see `pg::takeover`), the new one is the next
//! attempt, and `hookrelay_lease_expiries_total` counts it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::types::{FromSql, ValueRef};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{automations, bodies, deliveries, health, listen, logs, snapshots, OrStore, Pg};
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::redact::HeaderRedaction;
use crate::store::cache::{SharedCache, Target};
use crate::store::calls_in_flight::{interrupted_log, InterruptedCall, StartingCall};
use crate::store::claims::{ClaimRequest, Take, UNREADABLE_WAIT_MS};
use crate::store::column::Column;
use crate::store::recover::BackgroundJob;
use crate::store::{
    BodyHash, ClaimedDelivery, Operations, Outcome, Recorded, StoreError, StoreResult, Trigger,
};
use crate::time::UnixMs;

/// The candidates' columns: the delivery's own, its claim, its message's payload.
const CANDIDATE: &str = "SELECT d.id, d.automation_id, d.message_id, d.attempts, \
    d.next_trigger, d.recover_job_id, d.created_at, d.claimed, m.payload_hash, \
    m.content_expunged_at IS NOT NULL FROM deliveries d JOIN messages m ON m.id = d.message_id";

/// A candidate row, read.
struct Candidate {
    id: DeliveryId,
    automation_id: AutomationId,
    message_id: MessageId,
    attempts: u32,
    trigger: Trigger,
    recover_job_id: Option<BackgroundJob>,
    created_at: UnixMs,
    lease_ran_out: bool,
    payload_hash: BodyHash,
    expunged: bool,
}

fn candidate(r: &Row, id: DeliveryId) -> StoreResult<Candidate> {
    let t = "deliveries";
    let recover_job_id = match r.opt_bytes(5, t, &id)? {
        None => None,
        Some(b) => Some(
            BackgroundJob::column_result(ValueRef::Blob(&b))
                .map_err(|e| r.corrupt(5, t, &id, e.to_string()))?,
        ),
    };
    let hash = r.bytes(8, t, &id)?;
    Ok(Candidate {
        automation_id: r.key(1, t)?,
        message_id: r.key(2, t)?,
        attempts: u32::try_from(r.int(3, t, &id)?).unwrap_or(0),
        trigger: r.parsed(4, t, &id, Trigger::parse)?,
        recover_job_id,
        created_at: r.time(6, t, &id)?,
        lease_ran_out: r.int(7, t, &id)? == 1,
        payload_hash: BodyHash::try_from(hash.as_slice())
            .map_err(|_| r.corrupt(8, t, &id, "not a body hash".into()))?,
        expunged: r.flag(9, t, &id)?,
        id,
    })
}

/// What a claim handed out, the targets whose snapshots it refers to (stored once the claim
/// commits: see `pg::snapshots::put_all`), and how many of its claims had run out of lease
/// (counted once it commits).
type Claimed = (Vec<ClaimedDelivery>, Vec<Arc<Target>>, u64);

/// `Store::claim_due` on PostgreSQL: a claim in a transaction of its own.
pub(in crate::store) async fn claim_due(
    pg: &Pg,
    rule: &HeaderRedaction,
    version: u64,
    request: &ClaimRequest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    let (claimed, snapshot_of, expired) =
        claim(pg, &tx, rule, version, request, UnixMs::now()).await?;
    tx.commit().await.at(pg)?;
    pg.lease_expiries.inc_by(expired);
    snapshots::put_all(pg, &client, &snapshot_of).await?;
    Ok(claimed)
}

/// Claims due deliveries as `request`'s intake takes them, in `tx` (see
/// `store::claims::claim`, whose rules these are).
async fn claim(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    rule: &HeaderRedaction,
    version: u64,
    request: &ClaimRequest,
    now: UnixMs,
) -> StoreResult<Claimed> {
    let rows = match &request.line {
        None => {
            let stmt = tx
                .prepare_cached(&format!(
                    "{CANDIDATE} WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                     AND d.claimed <> 2 AND d.automation_id <> ALL($2::bytea[]) \
                     ORDER BY d.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED"
                ))
                .await
                .at(pg)?;
            let saturated: Vec<&[u8]> =
                request.saturated.iter().map(|a| a.stored_bytes().as_slice()).collect();
            let scan = i64::try_from(request.scan).unwrap_or(i64::MAX);
            let params: [&(dyn ToSql + Sync); 3] = [&now.as_ms(), &saturated, &scan];
            tx.query(&stmt, &params).await.at(pg)?
        }
        Some(automation_id) => {
            let stmt = tx
                .prepare_cached(&format!(
                    "{CANDIDATE} WHERE d.automation_id = $1 AND d.status = 'pending' AND d.fifo \
                     AND d.next_attempt_at <= $2 AND d.claimed <> 2 \
                     LIMIT 1 FOR UPDATE OF d SKIP LOCKED"
                ))
                .await
                .at(pg)?;
            tx.query(&stmt, &[automation_id, &now.as_ms()]).await.at(pg)?
        }
    };

    let lease_until = now.plus_ms(request.intake.lease_ms());
    let mut targets: HashMap<AutomationId, Option<Arc<Target>>> = HashMap::new();
    let mut payloads: HashMap<BodyHash, Bytes> = HashMap::new();
    let mut taken_ids: Vec<Vec<u8>> = Vec::new();
    let mut taken_claims: Vec<i16> = Vec::new();
    let mut claimed = Vec::with_capacity(request.want.min(rows.len()));
    let mut snapshot_of = Vec::new();
    let mut expired = 0;
    for row in &rows {
        if claimed.len() == request.want {
            break;
        }
        let Ok(id) = row.key::<crate::ids::Delivery>(0, "deliveries") else {
            tracing::error!("a due delivery's id is not a stored id: it is passed over");
            continue;
        };
        let due = match candidate(row, id.clone()) {
            Ok(due) => due,
            Err(e) => {
                wait_unreadable(pg, tx, &id, &e, now).await?;
                continue;
            }
        };
        let target = match targets.get(&due.automation_id) {
            Some(found) => found.clone(),
            None => {
                let found = match automations::get(pg, tx, &due.automation_id).await {
                    Ok(found) => found.map(|a| Target::new(a, rule)),
                    Err(e) if e.is_unreadable_row() => {
                        wait_unreadable(pg, tx, &id, &e, now).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                targets.insert(due.automation_id.clone(), found.clone());
                found
            }
        };
        let Some(target) = target else {
            tx.execute(
                "UPDATE deliveries SET status = 'failed', claimed = 0, claimed_by = NULL, \
                 updated_at = $2 WHERE id = $1",
                &[&id, &now.as_ms()],
            )
            .await
            .at(pg)?;
            continue;
        };
        let Some(taken) = request.intake.take(&due.automation_id, &id) else { continue };
        let taken = taken.stored_for(&target.automation);
        let (attempts, trigger) = if due.lease_ran_out {
            tracing::warn!(
                delivery = %id,
                "a claim's lease ran out (its instance died or stalled): the delivery is \
                 claimed again, and its call may be made twice (at-least-once)"
            );
            interrupt(pg, tx, &due, &target, now).await?;
            expired += 1;
            (due.attempts + 1, Trigger::Retry)
        } else {
            (due.attempts, due.trigger)
        };
        if !snapshot_of.iter().any(|t: &Arc<Target>| t.automation.id == due.automation_id) {
            snapshot_of.push(target.clone());
        }
        taken_ids.push(id.stored_bytes().to_vec());
        taken_claims.push(taken.claimed() as i16);
        let payload = match (taken, payloads.get(&due.payload_hash)) {
            (Take::Hold, _) => None,
            (Take::Call, _) if due.expunged => None,
            (Take::Call, Some(payload)) => Some(payload.clone()),
            (Take::Call, None) => bodies::find(pg, &**tx, &due.payload_hash).await?.map(|data| {
                let payload = Bytes::from(data);
                payloads.insert(due.payload_hash, payload.clone());
                payload
            }),
        };
        claimed.push(ClaimedDelivery {
            id: due.id,
            message_id: due.message_id,
            automation: target.automation.clone(),
            automation_version: version,
            snapshot_hash: target.snapshot().hash,
            payload,
            payload_hash: due.payload_hash,
            attempt: attempts + 1,
            trigger,
            recover_job_id: due.recover_job_id,
            created_at: due.created_at,
            started: taken == Take::Call,
        });
    }
    if !taken_ids.is_empty() {
        let stmt = tx
            .prepare_cached(
                "UPDATE deliveries d SET claimed = t.claimed, claimed_by = $3::text::uuid, \
                 next_attempt_at = CASE WHEN t.claimed = 1 THEN $4 ELSE d.next_attempt_at END \
                 FROM unnest($1::bytea[], $2::smallint[]) AS t(id, claimed) WHERE d.id = t.id",
            )
            .await
            .at(pg)?;
        let params: [&(dyn ToSql + Sync); 4] =
            [&taken_ids, &taken_claims, &pg.instance(), &lease_until.as_ms()];
        tx.execute(&stmt, &params).await.at(pg)?;
    }
    Ok((claimed, snapshot_of, expired))
}

/// The attempt of `due` whose lease ran out, logged `E_INTERRUPTED` (its outcome, if it ever
/// comes, is logged too, see `pg::deliveries::record`) and counted as made.
async fn interrupt(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    due: &Candidate,
    target: &Target,
    now: UnixMs,
) -> StoreResult<()> {
    let automation = &target.automation;
    snapshots::put(pg, tx, target.snapshot()).await?;
    let log = interrupted_log(InterruptedCall {
        call: StartingCall {
            message_id: due.message_id.clone(),
            automation_id: automation.id.clone(),
            processor_id: automation.settings.processor_id.clone(),
            trigger: due.trigger,
            rerun_of: None,
            webhook_url: automation.settings.webhook_url.clone(),
            request_body_hash: due.payload_hash,
        },
        delivery_id: Some(due.id.clone()),
        attempt: due.attempts + 1,
        snapshot_hash: target.snapshot().hash,
        at: now,
    });
    let log_id = logs::insert(pg, tx, &log).await?;
    let attempts = i32::try_from(due.attempts + 1).unwrap_or(i32::MAX);
    let params: [&(dyn ToSql + Sync); 4] = [&due.id, &attempts, &log_id, &now.as_ms()];
    tx.execute(
        "UPDATE deliveries SET attempts = $2, next_trigger = 'retry', last_log_id = $3, \
         updated_at = $4 WHERE id = $1",
        &params,
    )
    .await
    .at(pg)?;
    Ok(())
}

/// Puts a due delivery that cannot be read back by [`UNREADABLE_WAIT_MS`], saying why.
async fn wait_unreadable(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    id: &DeliveryId,
    why: &StoreError,
    now: UnixMs,
) -> StoreResult<()> {
    tracing::error!(delivery = %id, error = %why, "a due delivery waits: it cannot be read");
    tx.execute(
        "UPDATE deliveries SET next_attempt_at = $2 WHERE id = $1",
        &[id, &now.plus_ms(UNREADABLE_WAIT_MS).as_ms()],
    )
    .await
    .at(pg)?;
    Ok(())
}

/// `Store::record_outcome` on PostgreSQL (see `store::deliveries::record_and_mark`), and with
/// `then`, the claim of `Store::record_outcome_and_claim` in the same transaction. The
/// outcome's snapshot is stored before it, the claim's after it (see `pg::snapshots`).
pub(in crate::store) async fn record_outcome(
    pg: &Pg,
    ops: &Operations,
    cache: &SharedCache,
    outcome: &Outcome,
    next: Option<(DeliveryId, UnixMs)>,
    then: Option<(&HeaderRedaction, u64, &ClaimRequest)>,
) -> StoreResult<(Recorded, Vec<ClaimedDelivery>)> {
    let mut client = pg.client().await?;
    if let Some(snapshot) = &outcome.snapshot {
        snapshots::put_committed(pg, &client, snapshot).await?;
    }
    let tx = client.transaction().await.at(pg)?;
    let disabled = deliveries::record(pg, &tx, ops, outcome).await?;
    if disabled {
        listen::automations_changed(pg, &tx).await?;
    }
    let marked = match next {
        Some((id, lease_until)) => deliveries::mark_started(pg, &tx, &id, lease_until).await?,
        None => false,
    };
    let (claimed, snapshot_of, expired) = match then {
        Some((rule, version, request)) => {
            claim(pg, &tx, rule, version, request, UnixMs::now()).await?
        }
        None => Default::default(),
    };
    tx.commit().await.at(pg)?;
    pg.lease_expiries.inc_by(expired);
    if disabled {
        cache.lock().clear();
    }
    // The outcome is committed: a health refresh that fails must not make it look unrecorded
    // (a caller would record it again); the next success refreshes the row.
    if let Err(e) = health::after_success(pg, &client, outcome).await {
        tracing::warn!(automation = %outcome.log.automation_id, error = %e, "refreshing endpoint health after a success failed");
    }
    snapshots::put_all(pg, &client, &snapshot_of).await?;
    Ok((Recorded { marked, queued: false }, claimed))
}

impl crate::store::Store {
    /// Claims taken again after their lease ran out (PostgreSQL; see the module doc), for
    /// `/metrics`. A counter nothing moves on SQLite, where one process holds every claim of
    /// its file and releases them at its start.
    pub fn lease_expiries(&self) -> prometheus_client::metrics::counter::Counter {
        match &self.backend {
            crate::store::Backend::Sqlite(_) => Default::default(),
            crate::store::Backend::Postgres(p) => p.lease_expiries.clone(),
        }
    }
}
