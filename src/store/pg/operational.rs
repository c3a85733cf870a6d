//! Operational webhooks on PostgreSQL: `store::operational`'s SQL, beside it. The operational
//! automation is installed once however many instances start together (under a
//! transaction-scoped advisory lock, as the first admin key is), and each event is queued in
//! the transaction of the write that causes it (an attempt's outcome, an enable or disable):
//! the instance making that write, and only it, queues the event, committed exactly when its
//! cause is. A queued event is an ordinary unclaimed delivery, due now, announced with
//! `NOTIFY hookrelay_due`: whichever instance claims it first sends it, once.

use serde_json::{json, Value};
use tokio_postgres::GenericClient;

use super::{automations, bodies, Cached, OrStore, Pg};
use crate::ids::{AutomationId, DeliveryId, MessageId};
use crate::store::column::Column;
use crate::store::operational::{new_automation, Operations, OPERATIONAL_PROCESSOR};
use crate::store::StoreResult;
use crate::time::UnixMs;

/// The advisory lock key under which the operational automation is installed ("hroper").
const INSTALL_LOCK: i64 = 0x68_72_6f_70_65_72;

/// The operational automation, if the relay made one.
pub(crate) async fn marked(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
) -> StoreResult<Option<AutomationId>> {
    let sql = "SELECT automation_id FROM operational_automation WHERE id = 1";
    let row = c.query_opt(sql, &[]).await.at(pg)?;
    row.as_ref().map(|r| r.key(0, "operational_automation")).transpose()
}

/// `store::operational::install` on PostgreSQL, in one transaction under an advisory lock:
/// of instances starting together on a database without one, the first creates the
/// operational automation (and generates its secret when none is configured) and the others,
/// waiting on the lock, find it and only re-point it. Returns its id and whether its secret
/// was generated now (by this instance).
pub(crate) async fn install(
    pg: &Pg,
    url: &str,
    secret: Option<&str>,
) -> StoreResult<(AutomationId, bool)> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INSTALL_LOCK]).await.at(pg)?;
    let now = UnixMs::now().as_ms();
    if let Some(id) = marked(pg, &*tx).await? {
        tx.execute(
            "UPDATE automations SET webhook_url = $2, updated_at = $3 \
             WHERE id = $1 AND webhook_url <> $2",
            &[&id, &url, &now],
        )
        .await
        .at(pg)?;
        if let Some(secret) = secret {
            tx.execute(
                "UPDATE automations SET secret = $2, previous_secret = NULL, \
                 previous_secret_until = NULL, updated_at = $3 WHERE id = $1 AND secret <> $2",
                &[&id, &secret, &now],
            )
            .await
            .at(pg)?;
        }
        tx.commit().await.at(pg)?;
        return Ok((id, false));
    }
    let automation = new_automation(url, secret);
    automations::insert(pg, &*tx, &automation).await?;
    tx.execute(
        "INSERT INTO operational_automation (id, automation_id) VALUES (1, $1)",
        &[&automation.id],
    )
    .await
    .at(pg)?;
    tx.commit().await.at(pg)?;
    Ok((automation.id, secret.is_none()))
}

/// `store::operational::emit` on PostgreSQL, in the caller's transaction: queues the event
/// (a message and one unclaimed delivery due now) when there is an enabled operational
/// automation, and notifies every instance's claim loop at the commit. Returns whether one
/// was queued.
pub(crate) async fn emit(
    pg: &Pg,
    c: &impl Cached,
    ops: &Operations,
    event_type: &str,
    data: Value,
    now: UnixMs,
) -> StoreResult<bool> {
    let Some(target) = ops.webhook.as_ref().filter(|_| ops.sends) else { return Ok(false) };
    let enabled = c
        .query_opt("SELECT enabled FROM automations WHERE id = $1", &[target])
        .await
        .at(pg)?
        .map(|r| r.get::<_, bool>(0));
    if enabled != Some(true) {
        return Ok(false);
    }
    let payload = json!({"type": event_type, "timestamp": now.rfc3339(), "data": data});
    let hash = bodies::put(pg, c, payload.to_string().as_bytes()).await?;
    let message_id = MessageId::new();
    c.execute(
        "INSERT INTO messages (id, processor_id, event_type, payload_hash, created_at, \
         automation_id) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&message_id, &OPERATIONAL_PROCESSOR, &event_type, &hash.as_slice(), &now.as_ms(), target],
    )
    .await
    .at(pg)?;
    c.execute(
        "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
         next_attempt_at, claimed, next_trigger, created_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', 0, $4, 0, 'initial', $4, $4)",
        &[&DeliveryId::new(), &message_id, target, &now.as_ms()],
    )
    .await
    .at(pg)?;
    c.batch_execute("NOTIFY hookrelay_due").await.at(pg)?;
    Ok(true)
}
