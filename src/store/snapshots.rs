//! Automation snapshots: an automation as one of its calls saw it. The snapshot a log shows
//! (`automation_snapshot`, header secrets redacted) is a body like any other; beside it, keyed
//! by the same hash, the custom headers that version sent, in clear. A rerun of a log sends
//! exactly those again to the log's URL, never the automation's current headers: an
//! automation moved to a new receiver with a new credential must not hand that credential
//! to the old receiver. They are kept as long as the automation exists (the automation's
//! own row holds its current ones in clear too) and deleted with it.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::automations::Automation;
use super::{bodies, BodyHash, Store, StoreError, StoreResult};
use crate::ids::{AutomationId, LogId};
use crate::redact::HeaderRedaction;

/// A snapshot ready to store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Hash of the shown snapshot; logs refer to it.
    pub hash: BodyHash,
    pub(super) shown: Vec<u8>,
    pub(super) automation_id: AutomationId,
    pub(super) sent_headers: String,
}

impl Snapshot {
    /// The snapshot of `automation` as it is now, header secrets redacted by `rule`.
    pub fn of(automation: &Automation, rule: &HeaderRedaction) -> Self {
        let shown = automation.snapshot_json(rule);
        // A map of strings always encodes; an empty object is the safe fallback regardless.
        let sent_headers = serde_json::to_string(&automation.settings.webhook_headers)
            .unwrap_or_else(|_| "{}".into());
        let automation_id = automation.id.clone();
        Self { hash: bodies::body_hash(&shown), shown, automation_id, sent_headers }
    }

    /// Stores the shown snapshot and the headers sent with it (once per hash). The headers
    /// only while the automation exists: one deleted while its call was in flight keeps no
    /// secret (and its row would break the foreign key).
    pub(super) fn put(&self, conn: &Connection) -> StoreResult<()> {
        bodies::put(conn, &self.shown)?;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO snapshot_headers (snapshot_hash, automation_id, headers) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM automations WHERE id = ?2)",
        )?
        .execute(params![&self.hash[..], self.automation_id, self.sent_headers])?;
        Ok(())
    }
}

/// The custom headers sent with the calls whose log is `log_id`; empty when the log predates
/// this record (nothing is sent that is not known to have been sent then).
fn sent_headers(conn: &Connection, log_id: &LogId) -> StoreResult<BTreeMap<String, String>> {
    let headers: Option<String> = conn
        .prepare_cached(
            "SELECT s.headers FROM logs l JOIN snapshot_headers s ON s.snapshot_hash = l.snapshot_hash \
             WHERE l.id = ?1",
        )?
        .query_row([log_id], |r| r.get(0))
        .optional()?;
    headers
        .map(|h| serde_json::from_str(&h).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
        .map(Option::unwrap_or_default)
}

impl Store {
    /// See [`sent_headers`].
    pub async fn sent_headers(&self, log_id: LogId) -> StoreResult<BTreeMap<String, String>> {
        match &self.backend {
            super::Backend::Sqlite(db) => db.read(move |c| sent_headers(c, &log_id)).await,
            super::Backend::Postgres(p) => {
                super::pg::snapshots::sent_headers(p, &**p.client().await?, &log_id).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snapshot of an automation deleted while its call was in flight is stored (its
    /// log refers to it), but not the headers it sent in clear: they went with it.
    #[test]
    fn a_deleted_automations_snapshot_keeps_no_headers() {
        let conn = Connection::open_in_memory().expect("open");
        super::super::schema::apply(&conn).expect("schema");
        let automation = Automation {
            id: AutomationId::new(),
            settings: crate::store::AutomationSettings {
                name: "gone".into(),
                processor_id: "proc".into(),
                webhook_url: "http://192.0.2.1/hook".into(),
                webhook_headers: BTreeMap::from([("Authorization".into(), "Bearer t".into())]),
                need_validation: false,
                default_language: "en".into(),
                enabled: true,
                event_types: None,
                ordering: crate::store::DeliveryOrder::Parallel,
                rate_limit_per_sec: None,
            },
            secret: "whsec_x".into(),
            previous_secret: None,
            previous_secret_until: None,
            created_at: crate::time::UnixMs::EPOCH,
            updated_at: crate::time::UnixMs::EPOCH,
        };
        let snapshot = Snapshot::of(&automation, &HeaderRedaction::default());
        snapshot.put(&conn).expect("put");
        assert!(bodies::find(&conn, &snapshot.hash).expect("find").is_some());
        let kept: i64 = conn
            .query_row("SELECT count(*) FROM snapshot_headers", [], |r| r.get(0))
            .expect("count");
        assert_eq!(kept, 0, "the deleted automation's headers were kept");
    }
}
