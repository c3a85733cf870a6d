//! What an instance leaves behind (docs/postgres.md, "Instances"): at its close, its own
//! claims; at its death, found by a survivor once its heartbeat is older than [`DEAD_AFTER`],
//! the dead one's. As SQLite's `deliveries::release_claims` at start: a delivery only held
//! in memory (`claimed = 2`, its call not started) goes back to the queue untouched; one
//! whose call may have started (`claimed = 1`) gets an `E_INTERRUPTED` log of that attempt
//! and is due again at once.

use tokio_postgres::types::ToSql;

use super::{automations, logs, snapshots, OrStore, Pg};
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::redact::HeaderRedaction;
use crate::store::calls_in_flight::{interrupted_log, InterruptedCall, StartingCall};
use crate::store::column::Column;
use crate::store::logs::Trigger;
use crate::store::{BodyHash, Snapshot, StoreError, StoreResult};
use crate::time::UnixMs;

/// An instance whose heartbeat is this old is dead.
pub(super) const DEAD_AFTER_MS: i64 = 10_000;

/// Releases the claims of instance `instance` in `tx`; returns how many there were.
pub(super) async fn release(
    pg: &Pg,
    tx: &deadpool_postgres::Transaction<'_>,
    rule: &HeaderRedaction,
    instance: &str,
) -> StoreResult<u64> {
    let now = UnixMs::now();
    let mut released = tx
        .execute(
            "UPDATE deliveries SET claimed = 0, claimed_by = NULL \
             WHERE claimed_by = $1::text::uuid AND (claimed = 2 OR status <> 'pending')",
            &[&instance],
        )
        .await
        .at(pg)?;
    let rows = tx
        .query(
            "SELECT d.id, d.message_id, d.automation_id, d.attempts, d.next_trigger, \
             m.payload_hash FROM deliveries d JOIN messages m ON m.id = d.message_id \
             WHERE d.claimed_by = $1::text::uuid ORDER BY d.id FOR UPDATE OF d",
            &[&instance],
        )
        .await
        .at(pg)?;
    for r in &rows {
        let id: DeliveryId = r.key(0, "deliveries")?;
        let message_id: MessageId = r.key(1, "deliveries")?;
        let automation_id: AutomationId = r.key(2, "deliveries")?;
        let attempts = u32::try_from(r.int(3, "deliveries", &id)?).unwrap_or(0);
        let trigger = r.parsed(4, "deliveries", &id, Trigger::parse)?;
        let hash = r.bytes(5, "deliveries", &id)?;
        let Some(automation) = automations::get(pg, tx, &automation_id).await? else {
            tx.execute(
                "UPDATE deliveries SET status = 'failed', claimed = 0, claimed_by = NULL, \
                 updated_at = $2 WHERE id = $1",
                &[&id, &now.as_ms()],
            )
            .await
            .at(pg)?;
            continue;
        };
        let snapshot = Snapshot::of(&automation, rule);
        snapshots::put(pg, tx, &snapshot).await?;
        let call = StartingCall {
            message_id,
            automation_id,
            processor_id: automation.settings.processor_id.clone(),
            trigger,
            rerun_of: None,
            webhook_url: automation.settings.webhook_url.clone(),
            request_body_hash: BodyHash::try_from(hash.as_slice())
                .map_err(|_| StoreError::Corrupt("payload hash".into()))?,
        };
        let log = interrupted_log(InterruptedCall {
            call,
            delivery_id: Some(id.clone()),
            attempt: attempts + 1,
            snapshot_hash: snapshot.hash,
            at: now,
        });
        let log_id = logs::insert(pg, tx, &log).await?;
        let attempt = i32::try_from(attempts + 1).unwrap_or(i32::MAX);
        let params: [&(dyn ToSql + Sync); 4] = [&id, &now.as_ms(), &attempt, &log_id];
        tx.execute(
            "UPDATE deliveries SET claimed = 0, claimed_by = NULL, next_attempt_at = $2, \
             attempts = $3, next_trigger = 'retry', last_log_id = $4, updated_at = $2 \
             WHERE id = $1",
            &params,
        )
        .await
        .at(pg)?;
        released += 1;
    }
    if released > 0 {
        tx.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    }
    Ok(released)
}

/// Takes over what the dead instances left (see the module doc), each under its row's lock
/// (`SKIP LOCKED`: two survivors never take over the same one), and deletes their rows.
/// Silence is counted from the server's start at the earliest: while it was down nobody
/// could beat, so an instance is not dead for a heartbeat the restart made old.
pub(super) async fn take_over_dead(pg: &Pg, rule: &HeaderRedaction) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    let dead = tx
        .query(
            "SELECT id::text FROM instances \
             WHERE greatest(heartbeat_at, (extract(epoch FROM pg_postmaster_start_time()) \
                   * 1000)::bigint) < $1 \
               AND id <> $2::text::uuid \
             FOR UPDATE SKIP LOCKED",
            &[&UnixMs::now().minus_ms(DEAD_AFTER_MS).as_ms(), &pg.instance()],
        )
        .await
        .at(pg)?;
    for row in &dead {
        let instance: &str = row.get(0);
        let released = release(pg, &tx, rule, instance).await?;
        tx.execute("DELETE FROM instances WHERE id = $1::text::uuid", &[&instance]).await.at(pg)?;
        tracing::warn!(
            %instance, claims = released,
            "PostgreSQL: an instance stopped beating; its claims were taken over"
        );
    }
    tx.commit().await.at(pg)?;
    Ok(())
}

/// Releases this instance's own claims and deletes its row (at close).
pub(super) async fn leave(pg: &Pg, rule: &HeaderRedaction) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    release(pg, &tx, rule, pg.instance()).await?;
    tx.execute("DELETE FROM instances WHERE id = $1::text::uuid", &[&pg.instance()])
        .await
        .at(pg)?;
    tx.commit().await.at(pg)?;
    Ok(())
}
