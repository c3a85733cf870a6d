//! Automations as deliveries need them (with the hash of their stored snapshot), cached for
//! the writer's hot path: ingest and claims would otherwise read, decode and snapshot the
//! same automation for every message. Any write to an automation clears the cache; it is
//! used only inside writer jobs, so it always matches what the writer sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use super::automations::{self, Automation};
use super::{bodies, BodyHash, StoreResult};

/// An automation and the hash of its snapshot (already stored in `bodies`).
#[derive(Debug)]
pub struct Target {
    /// The automation.
    pub automation: Arc<Automation>,
    /// Hash of `automation.snapshot_json()`.
    pub snapshot_hash: BodyHash,
}

/// See the module doc.
#[derive(Debug, Default)]
pub(super) struct AutomationCache {
    by_id: HashMap<String, Option<Arc<Target>>>,
    by_processor: HashMap<String, Arc<[Arc<Target>]>>,
}

/// The cache as the store shares it with writer jobs.
#[derive(Debug, Clone, Default)]
pub(super) struct SharedCache(Arc<Mutex<AutomationCache>>);

impl SharedCache {
    /// Locks the cache (only writer jobs do, one at a time, so this never waits). A
    /// poisoned lock is recovered: the cache holds no invariant a panic could break.
    pub(super) fn lock(&self) -> MutexGuard<'_, AutomationCache> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn target_of(conn: &Connection, automation: Automation) -> StoreResult<Arc<Target>> {
    let snapshot_hash = bodies::put(conn, &automation.snapshot_json())?;
    Ok(Arc::new(Target { automation: Arc::new(automation), snapshot_hash }))
}

impl AutomationCache {
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
        let found = automations::get(conn, id)?.map(|a| target_of(conn, a)).transpose()?;
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
            .map(|a| target_of(conn, a))
            .collect::<StoreResult<Vec<_>>>()?
            .into();
        self.by_processor.insert(processor_id.to_string(), targets.clone());
        Ok(targets)
    }
}
