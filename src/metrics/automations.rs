//! Attempts by outcome per automation, with bounded label cardinality: the first
//! `limit` automations seen get series of their own; the attempts of any other are counted
//! under `automation="_other"`. A deleted automation's series are dropped (see
//! [`AutomationAttempts::retain`]), which frees its place for another.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// The `automation` label of the attempts of automations past the limit.
pub const OTHER: &str = "_other";

/// What a dispatcher attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Succeeded,
    /// It failed; a retry is scheduled.
    RetryScheduled,
    /// It failed and was the last attempt the schedule allows.
    Exhausted,
    /// It failed and gets no retry: its automation is disabled, or a recover job's one attempt.
    Failed,
}

impl DeliveryOutcome {
    const ALL: [Self; 4] = [Self::Succeeded, Self::RetryScheduled, Self::Exhausted, Self::Failed];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::RetryScheduled => "retry_scheduled",
            Self::Exhausted => "exhausted",
            Self::Failed => "failed",
        }
    }
}

/// Labels of [`AutomationAttempts`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AutomationOutcome {
    /// Automation id, or [`OTHER`].
    pub automation: String,
    /// A [`DeliveryOutcome`].
    pub outcome: &'static str,
}

/// One automation's counters, one per [`DeliveryOutcome`], shared with the family's series.
type Counters = Arc<[Counter; 4]>;

/// See the module doc.
pub struct AutomationAttempts {
    family: Family<AutomationOutcome, Counter>,
    limit: usize,
    tracked: RwLock<HashMap<String, Counters>>,
    other: OnceLock<Counters>,
}

impl AutomationAttempts {
    /// Counters exposed through `family`, at most `limit` automations with series of their own.
    pub fn new(family: Family<AutomationOutcome, Counter>, limit: usize) -> Self {
        Self { family, limit, tracked: RwLock::default(), other: OnceLock::new() }
    }

    /// Counts one attempt of `automation`. After an automation's first attempt this only
    /// takes a read lock and finds its counters: no allocation.
    pub fn inc(&self, automation: &str, outcome: DeliveryOutcome) {
        let at = outcome as usize;
        {
            let tracked = self.read();
            if let Some(counters) = tracked.get(automation) {
                counters[at].inc();
                return;
            }
            // Past the cap, an untracked automation's attempts never take the write lock.
            if tracked.len() >= self.limit {
                drop(tracked);
                self.other.get_or_init(|| self.series(OTHER))[at].inc();
                return;
            }
        }
        let mut tracked = self.tracked.write().unwrap_or_else(PoisonError::into_inner);
        let counters = match tracked.get(automation) {
            Some(counters) => counters.clone(),
            None if tracked.len() < self.limit => {
                let counters = self.series(automation);
                tracked.insert(automation.to_string(), counters.clone());
                counters
            }
            None => self.other.get_or_init(|| self.series(OTHER)).clone(),
        };
        drop(tracked);
        counters[at].inc();
    }

    /// The automations with series of their own.
    pub fn tracked(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Drops the series of the automations not in `exists` (of those [`Self::tracked`]
    /// returned; one seen since keeps its series).
    pub fn retain(&self, exists: &HashSet<String>, checked: &[String]) {
        let checked: HashSet<&str> = checked.iter().map(String::as_str).collect();
        let mut tracked = self.tracked.write().unwrap_or_else(PoisonError::into_inner);
        tracked.retain(|automation, _| {
            let keep = exists.contains(automation) || !checked.contains(automation.as_str());
            if !keep {
                for outcome in DeliveryOutcome::ALL {
                    let labels = AutomationOutcome {
                        automation: automation.clone(),
                        outcome: outcome.as_str(),
                    };
                    self.family.remove(&labels);
                }
            }
            keep
        });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Counters>> {
        self.tracked.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The series of `automation`, all four created at once so each outcome shows from 0.
    fn series(&self, automation: &str) -> Counters {
        Arc::new(DeliveryOutcome::ALL.map(|outcome| {
            let labels =
                AutomationOutcome { automation: automation.to_string(), outcome: outcome.as_str() };
            self.family.get_or_create_owned(&labels)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(family: &Family<AutomationOutcome, Counter>, automation: &str, outcome: &str) -> u64 {
        let outcome = DeliveryOutcome::ALL.into_iter().find(|o| o.as_str() == outcome);
        let labels = AutomationOutcome {
            automation: automation.into(),
            outcome: outcome.expect("an outcome").as_str(),
        };
        family.get(&labels).map_or(0, |c| c.get())
    }

    #[test]
    fn past_the_limit_attempts_go_to_other_and_a_deleted_automation_frees_its_place() {
        let family = Family::default();
        let attempts = AutomationAttempts::new(family.clone(), 2);
        attempts.inc("a", DeliveryOutcome::Succeeded);
        attempts.inc("b", DeliveryOutcome::RetryScheduled);
        attempts.inc("c", DeliveryOutcome::Exhausted);
        attempts.inc("a", DeliveryOutcome::Succeeded);
        assert_eq!(value(&family, "a", "succeeded"), 2);
        assert_eq!(value(&family, "b", "retry_scheduled"), 1);
        assert_eq!(value(&family, OTHER, "exhausted"), 1);
        let series = |automation: &str| {
            DeliveryOutcome::ALL
                .into_iter()
                .filter(|o| {
                    let labels =
                        AutomationOutcome { automation: automation.into(), outcome: o.as_str() };
                    family.get(&labels).is_some()
                })
                .count()
        };
        assert_eq!((series("a"), series("b"), series(OTHER), series("c")), (4, 4, 4, 0));

        let mut checked = attempts.tracked();
        checked.sort();
        assert_eq!(checked, ["a", "b"]);
        attempts.retain(&HashSet::from(["b".to_string()]), &checked);
        assert_eq!((series("a"), series("b")), (0, 4), "a's series are gone");
        attempts.inc("c", DeliveryOutcome::Failed);
        assert_eq!(value(&family, "c", "failed"), 1, "c took a's place");
    }
}
