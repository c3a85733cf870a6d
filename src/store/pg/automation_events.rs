//! The enable/disable trail on PostgreSQL: `store::automation_events::record`'s SQL, beside it.

use super::{operational, Cached, OrStore, Pg};
use crate::ids::AutomationEventId;
use crate::store::automation_events::{switch_event, Switch};
use crate::store::{Operations, StoreResult};

/// Records `switch` (the automation's flag already changed in this transaction): the trail's
/// row, the health row's disabled reason and the operational webhook it causes
/// (`store::automation_events::switch_event`), all in the caller's transaction: the
/// instance making the change queues the event, once, committed with it.
pub(crate) async fn record(
    pg: &Pg,
    c: &impl Cached,
    ops: &Operations,
    switch: &Switch<'_>,
) -> StoreResult<()> {
    let a = switch.automation;
    let kind = if a.settings.enabled { "enabled" } else { "disabled" };
    c.execute(
        "INSERT INTO automation_events (id, automation_id, kind, actor, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &AutomationEventId::new(),
            &a.id,
            &kind,
            &switch.actor.as_text(),
            &switch.reason,
            &switch.now.as_ms(),
        ],
    )
    .await
    .at(pg)?;
    let disabled_reason = (!a.settings.enabled).then_some(switch.reason);
    c.execute(
        "INSERT INTO automation_health (automation_id, disabled_reason) VALUES ($1, $2) \
         ON CONFLICT (automation_id) DO UPDATE SET disabled_reason = excluded.disabled_reason, \
         failing_since = CASE WHEN excluded.disabled_reason IS NULL THEN NULL \
         ELSE automation_health.failing_since END",
        &[&a.id, &disabled_reason],
    )
    .await
    .at(pg)?;
    tracing::warn!(
        automation = %a.id, actor = %switch.actor.as_text(), reason = %switch.reason,
        "automation {kind}"
    );
    if let Some((event_type, data)) = switch_event(ops, switch) {
        operational::emit(pg, c, ops, event_type, data, switch.now).await?;
    }
    Ok(())
}
