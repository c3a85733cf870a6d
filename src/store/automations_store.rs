//! [`Store`]'s automation methods, each a match on the backend: the SQLite SQL is in
//! `automations`, the PostgreSQL SQL in `pg::automations`.

use std::collections::HashSet;

use super::automation_events::{self, Actor, Switch};
use super::automations::{self, Automation, AutomationFilter, AutomationSettings};
use super::page::{Page, PageRequest};
use super::pg::{self, OrStore};
use super::{Backend, Store, StoreError, StoreResult};
use crate::ids::AutomationId;
use crate::time::UnixMs;

/// Why an automation's `enabled` changed through the API or the console.
fn switch_reason(enabled: bool) -> &'static str {
    if enabled {
        "enabled through the API or the console"
    } else {
        "disabled through the API or the console"
    }
}

impl Store {
    /// Stores a new automation.
    pub async fn create_automation(&self, automation: Automation) -> StoreResult<Automation> {
        let cache = self.cache.clone();
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |c| {
                    cache.lock().clear();
                    automations::insert(c, &automation).map(|()| automation)
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                pg::automations::insert(p, &**client, &automation).await?;
                cache.lock().clear();
                Ok(automation)
            }
        }
    }

    /// Reads one automation.
    pub async fn automation(&self, id: AutomationId) -> StoreResult<Automation> {
        let found = match &self.backend {
            Backend::Sqlite(s) => s.read(move |c| automations::get(c, &id)).await?,
            Backend::Postgres(p) => pg::automations::get(p, &p.client().await?, &id).await?,
        };
        found.ok_or(StoreError::NotFound("automation"))
    }

    /// Replaces an automation's settable fields; a change of `enabled` is recorded as made
    /// by `actor`, in the same write (see `automation_events`).
    pub async fn update_automation(
        &self,
        id: AutomationId,
        settings: AutomationSettings,
        actor: Actor,
    ) -> StoreResult<Automation> {
        let cache = self.cache.clone();
        let ops = self.operations();
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |c| {
                    cache.lock().clear();
                    let now = UnixMs::now();
                    let was_enabled = automations::get(c, &id)?.map(|a| a.settings.enabled);
                    let updated = automations::update(c, &id, &settings, now)?;
                    if was_enabled.is_some_and(|was| was != updated.settings.enabled) {
                        let switch = Switch {
                            automation: &updated,
                            actor: &actor,
                            reason: switch_reason(updated.settings.enabled),
                            failing_since: None,
                            now,
                        };
                        automation_events::record(c, &ops, &switch)?;
                    }
                    Ok(updated)
                })
                .await
            }
            Backend::Postgres(p) => {
                let mut client = p.client().await?;
                let tx = client.transaction().await.at(p)?;
                let now = UnixMs::now();
                let was = pg::automations::get(p, &tx, &id).await?;
                let updated = pg::automations::update(p, &tx, &id, &settings, now).await?;
                if was.is_some_and(|was| was.settings.enabled != updated.settings.enabled) {
                    let switch = Switch {
                        automation: &updated,
                        actor: &actor,
                        reason: switch_reason(updated.settings.enabled),
                        failing_since: None,
                        now,
                    };
                    pg::automation_events::record(p, &tx, &ops, &switch).await?;
                }
                tx.commit().await.at(p)?;
                cache.lock().clear();
                Ok(updated)
            }
        }
    }

    /// Which of `ids` are automations that exist (one indexed lookup each).
    pub async fn existing_automations(&self, ids: Vec<String>) -> StoreResult<HashSet<String>> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(move |c| {
                    let mut exists = c.prepare_cached("SELECT 1 FROM automations WHERE id = ?1")?;
                    let mut found = HashSet::new();
                    for id in ids {
                        let Ok(typed) = AutomationId::parse(&id) else { continue };
                        if exists.exists([&typed])? {
                            found.insert(id);
                        }
                    }
                    Ok(found)
                })
                .await
            }
            Backend::Postgres(p) => {
                let typed: Vec<AutomationId> =
                    ids.iter().filter_map(|id| AutomationId::parse(id).ok()).collect();
                let found = pg::automations::existing(p, &**p.client().await?, &typed).await?;
                Ok(found.into_iter().map(|id| id.to_string()).collect())
            }
        }
    }

    /// Deletes an automation (see `automations::delete`).
    pub async fn delete_automation(&self, id: AutomationId) -> StoreResult<()> {
        let cache = self.cache.clone();
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |c| {
                    cache.lock().clear();
                    automations::delete(c, &id, UnixMs::now())
                })
                .await
            }
            Backend::Postgres(p) => {
                let mut client = p.client().await?;
                let tx = client.transaction().await.at(p)?;
                pg::automations::delete(p, &tx, &id, UnixMs::now()).await?;
                tx.commit().await.at(p)?;
                cache.lock().clear();
                Ok(())
            }
        }
    }

    /// Rotates the signing secret; the old one signs for `overlap_ms` more.
    pub async fn rotate_automation_secret(
        &self,
        id: AutomationId,
        new_secret: String,
        overlap_ms: i64,
    ) -> StoreResult<Automation> {
        let cache = self.cache.clone();
        let now = UnixMs::now();
        let until = now.plus_ms(overlap_ms);
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |c| {
                    cache.lock().clear();
                    automations::rotate_secret(c, &id, &new_secret, until, now)
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                let rotated =
                    pg::automations::rotate_secret(p, &client, &id, &new_secret, until, now)
                        .await?;
                cache.lock().clear();
                Ok(rotated)
            }
        }
    }

    /// One page of automations.
    pub async fn list_automations(
        &self,
        filter: AutomationFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Automation>> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(move |c| automations::list(c, &filter, &page)).await,
            Backend::Postgres(p) => {
                pg::automations::list(p, &**p.client().await?, &filter, &page).await
            }
        }
    }
}
