//! Automations as deliveries need them (with their snapshot and its hash), cached for the
//! writer's hot path: ingest and claims would otherwise read, decode and snapshot the same
//! automation for every message. Any write to an automation clears the cache, and so does
//! every rollback in the writer (see `Store::open`): the cache remembers which snapshots it
//! has stored, and that memory must never outlive the transaction that stored them.
//!
//! Looking an automation up never writes; [`AutomationCache::store_snapshot`] writes its
//! snapshot, once per cache lifetime and again every few minutes (see [`SNAPSHOT_REFRESH_MS`]). Callers look up and refuse first, then write, so a
//! refusal never leaves a write behind in a shared transaction.
//!
//! Each map holds at most [`MAX_ENTRIES`] keys, misses (`None`, an empty subscriber list)
//! included: messages may name any `processor_id`, and a cache growing by one entry per
//! name ever posted would grow without bound. A full map drops one entry to make room;
//! dropping is always safe, as a dropped entry is read again from the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use super::automations::{self, Automation};
use super::snapshots::Snapshot;
use super::{BodyHash, StoreResult};
use crate::ids::AutomationId;
use crate::redact::HeaderRedaction;
use crate::time::UnixMs;

/// How often a snapshot in use is written again: content retention deletes content by its
/// last use (`bodies.used_at`), so a snapshot an automation keeps using must be noted as
/// used, and one retention deleted meanwhile is stored again.
const SNAPSHOT_REFRESH_MS: i64 = super::bodies::USE_REFRESH_MS;

/// Most keys each map of the cache holds.
const MAX_ENTRIES: usize = 4096;

/// An automation and its snapshot (what its logs show it was).
#[derive(Debug)]
pub struct Target {
    /// The automation.
    pub automation: Arc<Automation>,
    snapshot: Snapshot,
    /// When `snapshot` was last written, in the transaction now open or one committed before
    /// it (Unix ms; `i64::MIN`: never).
    stored_at: AtomicI64,
}

impl Target {
    /// `automation` with its snapshot redacted by `rule` (PostgreSQL reads automations
    /// uncached, see `pg::messages`, and makes these as it reads).
    pub(super) fn new(automation: Automation, rule: &HeaderRedaction) -> Arc<Self> {
        Arc::new(Self {
            snapshot: Snapshot::of(&automation, rule),
            automation: Arc::new(automation),
            stored_at: AtomicI64::new(i64::MIN),
        })
    }

    /// The snapshot its deliveries' logs refer to.
    pub(super) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// See the module doc.
#[derive(Debug)]
pub(super) struct AutomationCache {
    by_id: HashMap<String, Option<Arc<Target>>>,
    by_processor: HashMap<String, Arc<[Arc<Target>]>>,
    /// Redacts the header secrets of the snapshots it stores.
    rule: HeaderRedaction,
    /// Raised by every clear: a copy of an automation taken at another version may be stale.
    version: Arc<AtomicU64>,
}

/// The cache as the store shares it with writer jobs.
#[derive(Debug, Clone)]
pub(super) struct SharedCache(Arc<Mutex<AutomationCache>>, Arc<AtomicU64>);

impl SharedCache {
    /// An empty cache storing snapshots redacted by `rule`.
    pub(super) fn new(rule: HeaderRedaction) -> Self {
        let version = Arc::new(AtomicU64::new(0));
        Self(Arc::new(Mutex::new(AutomationCache::new(rule, version.clone()))), version)
    }

    /// The version of the automations: it changes whenever any automation may have changed.
    pub(super) fn version(&self) -> u64 {
        self.1.load(Ordering::Acquire)
    }

    /// Locks the cache (only the writer thread does, one job at a time, so this never
    /// waits). A poisoned lock is recovered: clearing the cache restores every invariant.
    pub(super) fn lock(&self) -> MutexGuard<'_, AutomationCache> {
        self.0.lock().unwrap_or_else(|poisoned| {
            let mut cache = poisoned.into_inner();
            cache.clear();
            cache
        })
    }
}

impl AutomationCache {
    /// An empty cache storing snapshots redacted by `rule`, counting its clears in `version`.
    pub(super) fn new(rule: HeaderRedaction, version: Arc<AtomicU64>) -> Self {
        Self { by_id: HashMap::new(), by_processor: HashMap::new(), rule, version }
    }

    /// Forgets everything (after any automation write, and after any rollback).
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.by_processor.clear();
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// See [`SharedCache::version`].
    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// One automation, or `None` when it does not exist. Reads only.
    pub(super) fn target(
        &mut self,
        conn: &Connection,
        id: &AutomationId,
    ) -> StoreResult<Option<Arc<Target>>> {
        if let Some(found) = self.by_id.get(id.as_str()) {
            return Ok(found.clone());
        }
        let found = automations::get(conn, id)?.map(|a| Target::new(a, &self.rule));
        insert_bounded(&mut self.by_id, id, found.clone());
        Ok(found)
    }

    /// The enabled automations of a processor, whatever their event types. Reads only.
    pub(super) fn subscribers(
        &mut self,
        conn: &Connection,
        processor_id: &str,
    ) -> StoreResult<Arc<[Arc<Target>]>> {
        if let Some(found) = self.by_processor.get(processor_id) {
            return Ok(found.clone());
        }
        let targets: Arc<[Arc<Target>]> = automations::enabled_of_processor(conn, processor_id)?
            .into_iter()
            .map(|a| Target::new(a, &self.rule))
            .collect::<Vec<_>>()
            .into();
        insert_bounded(&mut self.by_processor, processor_id, targets.clone());
        Ok(targets)
    }

    /// Keys held, both maps together.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len() + self.by_processor.len()
    }

    /// Writes `target`'s snapshot unless this cache did within the last
    /// [`SNAPSHOT_REFRESH_MS`] (the cache is cleared on every rollback, so "did" means it is in
    /// the database or in this transaction).
    pub(super) fn store_snapshot(conn: &Connection, target: &Target) -> StoreResult<BodyHash> {
        Self::store_snapshot_at(conn, target, UnixMs::now())
    }

    fn store_snapshot_at(conn: &Connection, target: &Target, now: UnixMs) -> StoreResult<BodyHash> {
        let stored_at = target.stored_at.load(Ordering::Relaxed);
        if now.as_ms().saturating_sub(stored_at) >= SNAPSHOT_REFRESH_MS {
            target.snapshot.put(conn)?;
            target.stored_at.store(now.as_ms(), Ordering::Relaxed);
        }
        Ok(target.snapshot.hash)
    }
}

/// Inserts `key`, first dropping some other entry when `map` is full (which one does not
/// matter: any entry is only a saved query).
fn insert_bounded<V>(map: &mut HashMap<String, V>, key: &str, value: V) {
    if map.len() >= MAX_ENTRIES && !map.contains_key(key) {
        if let Some(victim) = map.keys().next().cloned() {
            map.remove(&victim);
        }
    }
    map.insert(key.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    const REAL: &str = "endp_0000000000000000000000000000000f";

    /// Posting to more distinct processors (and naming more missing automations) than the
    /// cache holds keeps it at its bound, and lookups still answer from the database.
    #[test]
    fn distinct_processor_ids_past_the_bound_keep_the_cache_bounded() {
        let conn = Connection::open_in_memory().expect("open");
        super::super::schema::apply(&conn).expect("schema");
        conn.execute(
            "INSERT INTO automations (id, name, processor_id, webhook_url, webhook_headers, \
             need_validation, default_language, enabled, secret, created_at, updated_at) \
             VALUES (?1, 'c', 'proc_real', 'http://127.0.0.1:9/c', '{}', 0, 'en', 1, \
             'whsec_AAAAAAAAAAAAAAAAAAAAAA==', 0, 0)",
            [REAL.parse::<AutomationId>().expect("a valid id")],
        )
        .expect("insert");
        let mut cache = AutomationCache::new(HeaderRedaction::default(), Default::default());
        for i in 0..MAX_ENTRIES + 500 {
            let none = cache.subscribers(&conn, &format!("proc_{i}")).expect("subscribers");
            assert!(none.is_empty());
            let unknown = AutomationId::time_bound(i as i64);
            assert!(cache.target(&conn, &unknown).expect("target").is_none());
        }
        assert!(cache.len() <= 2 * MAX_ENTRIES, "{} entries", cache.len());
        let real = cache.subscribers(&conn, "proc_real").expect("subscribers");
        assert_eq!(real.len(), 1);
        let real_id: AutomationId = REAL.parse().expect("a valid id");
        assert_eq!(real[0].automation.id, real_id);
        assert!(cache.target(&conn, &real_id).expect("target").is_some());
        assert!(cache.len() <= 2 * MAX_ENTRIES, "{} entries", cache.len());
    }

    /// A snapshot in use is written again every refresh: one content retention deleted comes
    /// back, and its `used_at` moves on, so retention never takes a snapshot still in use.
    #[test]
    fn a_snapshot_in_use_is_written_again_every_refresh() {
        let conn = Connection::open_in_memory().expect("open");
        super::super::schema::apply(&conn).expect("schema");
        conn.execute(
            "INSERT INTO automations (id, name, processor_id, webhook_url, webhook_headers, \
             need_validation, default_language, enabled, secret, created_at, updated_at) \
             VALUES (?1, 'c', 'proc_real', 'http://127.0.0.1:9/c', '{}', 0, 'en', 1, \
             'whsec_AAAAAAAAAAAAAAAAAAAAAA==', 0, 0)",
            [REAL.parse::<AutomationId>().expect("a valid id")],
        )
        .expect("insert");
        let mut cache = AutomationCache::new(HeaderRedaction::default(), Default::default());
        let target = cache.subscribers(&conn, "proc_real").expect("subscribers")[0].clone();
        let stored = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM bodies", [], |r| r.get(0)).expect("count")
        };
        let start = UnixMs::from_ms(1_000_000_000_000);
        AutomationCache::store_snapshot_at(&conn, &target, start).expect("store");
        assert_eq!(stored(&conn), 1);
        conn.execute("DELETE FROM bodies", []).expect("retention deletes it");
        let later = start.plus_ms(SNAPSHOT_REFRESH_MS - 1);
        AutomationCache::store_snapshot_at(&conn, &target, later).expect("store");
        assert_eq!(stored(&conn), 0, "within the refresh: not written again");
        let hour = start.plus_ms(SNAPSHOT_REFRESH_MS);
        AutomationCache::store_snapshot_at(&conn, &target, hour).expect("store");
        assert_eq!(stored(&conn), 1, "a refresh on: written again");
    }
}
