//! Automations as deliveries need them (with the hash of their stored snapshot), cached for
//! the writer's hot path: ingest and claims would otherwise read, decode and snapshot the
//! same automation for every message. Any write to an automation clears the cache; it is
//! used only inside writer jobs, so it always matches what the writer sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use super::automations::{self, Automation};
use super::{bodies, BodyHash, StoreResult};
use crate::redact::HeaderRedaction;

/// An automation and the hash of its snapshot (already stored in `bodies`).
#[derive(Debug)]
pub struct Target {
    /// The automation.
    pub automation: Arc<Automation>,
    /// Hash of `automation.snapshot_json(rule)`.
    pub snapshot_hash: BodyHash,
}

/// See the module doc.
#[derive(Debug)]
pub(super) struct AutomationCache {
    by_id: HashMap<String, Option<Arc<Target>>>,
    by_processor: HashMap<String, Arc<[Arc<Target>]>>,
    /// Redacts the header secrets of the snapshots it stores.
    rule: HeaderRedaction,
}

/// The cache as the store shares it with writer jobs.
#[derive(Debug, Clone)]
pub(super) struct SharedCache(Arc<Mutex<AutomationCache>>);

impl SharedCache {
    /// An empty cache storing snapshots redacted by `rule`.
    pub(super) fn new(rule: HeaderRedaction) -> Self {
        Self(Arc::new(Mutex::new(AutomationCache::new(rule))))
    }

    /// Locks the cache (only writer jobs do, one at a time, so this never waits). A
    /// poisoned lock is recovered: the cache holds no invariant a panic could break.
    pub(super) fn lock(&self) -> MutexGuard<'_, AutomationCache> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AutomationCache {
    /// An empty cache storing snapshots redacted by `rule`.
    pub(super) fn new(rule: HeaderRedaction) -> Self {
        Self { by_id: HashMap::new(), by_processor: HashMap::new(), rule }
    }

    fn target_of(&self, conn: &Connection, automation: Automation) -> StoreResult<Arc<Target>> {
        let snapshot_hash = bodies::put(conn, &automation.snapshot_json(&self.rule))?;
        Ok(Arc::new(Target { automation: Arc::new(automation), snapshot_hash }))
    }

    /// Forgets everything (after any automation write).
    pub(super) fn clear(&mut self) {
        self.by_id.clear();
        self.by_processor.clear();
    }

    /// One automation, or `None` when it does not exist.
    pub(super) fn target(
        &mut self,
        conn: &Connection,
        id: &str,
    ) -> StoreResult<Option<Arc<Target>>> {
        if let Some(found) = self.by_id.get(id) {
            return Ok(found.clone());
        }
        let found = automations::get(conn, id)?.map(|a| self.target_of(conn, a)).transpose()?;
        self.by_id.insert(id.to_string(), found.clone());
        Ok(found)
    }

    /// The enabled automations of a processor, whatever their event types.
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
            .map(|a| self.target_of(conn, a))
            .collect::<StoreResult<Vec<_>>>()?
            .into();
        self.by_processor.insert(processor_id.to_string(), targets.clone());
        Ok(targets)
    }
}
