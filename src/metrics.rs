//! Prometheus metrics, rendered in the text exposition format at `/metrics`.

mod automations;

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::MetricsConfig;

pub use automations::{AutomationAttempts, DeliveryOutcome};

/// Label of [`Metrics::attempts`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `succeeded`, `retry_scheduled`, `exhausted`, `failed`, `rerun` or `test`.
    pub outcome: &'static str,
}

/// The tables retention deletes from: the values of [`TableLabel`].
pub const RETENTION_TABLES: [&str; 5] =
    ["logs", "messages", "deliveries", "bodies", "upload_files"];

/// Label of [`Metrics::retention_deleted`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    /// One of [`RETENTION_TABLES`].
    pub table: &'static str,
}

/// The relay's metrics.
pub struct Metrics {
    registry: Registry,
    /// Series naming automations, rendered only for a scrape with an admin key: automation
    /// ids are not shown to callers without one.
    per_automation: Registry,
    /// Attempts by what they led to (reruns and test calls included).
    pub attempts: Family<OutcomeLabel, Counter>,
    /// Dispatcher attempts by automation and outcome, cardinality bounded.
    pub automation_attempts: AutomationAttempts,
    /// Deliveries that used their last attempt.
    pub deliveries_exhausted: Counter,
    /// Age of the oldest delivery due and not yet sent, seconds (set at scrape time).
    pub oldest_due_age: Gauge<f64, AtomicU64>,
    /// Attempt latency (request start to response end), seconds.
    pub attempt_seconds: Histogram,
    /// Calls in flight now.
    pub in_flight: Gauge,
    /// Pending deliveries (set at scrape time).
    pub queue_depth: Gauge,
    /// Deliveries due now but not yet sent (set at scrape time).
    pub due_backlog: Gauge,
    /// Deliveries waiting in memory behind automations at their concurrency bound (set at
    /// scrape time).
    pub lane_backlog: Gauge,
    /// Messages accepted.
    pub messages_accepted: Counter,
    /// Group-commit transactions rolled back since start (set at scrape time).
    pub store_rollbacks: Gauge,
    /// Rows deleted by retention, by table.
    pub retention_deleted: Family<TableLabel, Counter>,
    /// Size of the database file once checkpointed, bytes (set by the retention task).
    pub database_size: Gauge,
    /// Free pages in the database file (set by the retention task).
    pub database_free_pages: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(&MetricsConfig::default())
    }
}

impl Metrics {
    /// These metrics with the counters `store` keeps registered too: claims taken again after
    /// their lease ran out (`hookrelay_lease_expiries_total`, PostgreSQL; 0 on SQLite).
    pub fn with_store(mut self, store: &crate::store::Store) -> Self {
        self.registry.register(
            "lease_expiries",
            "Deliveries claimed again after their claim's lease ran out (its instance died or \
             stalled): their call may have been made twice",
            store.lease_expiries(),
        );
        self
    }

    /// The metrics, registered, with `config`'s bound on per-automation series.
    pub fn new(config: &MetricsConfig) -> Self {
        let mut registry = Registry::with_prefix("hookrelay");
        let attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register("delivery_attempts", "Delivery attempts by outcome", attempts.clone());
        let mut per_automation = Registry::with_prefix("hookrelay");
        let by_automation = Family::default();
        per_automation.register(
            "automation_attempts",
            "Delivery attempts by automation and outcome; automations past \
             metrics.automation_labels are counted as automation=\"_other\"",
            by_automation.clone(),
        );
        let automation_attempts = AutomationAttempts::new(by_automation, config.automation_labels);
        let deliveries_exhausted = Counter::default();
        registry.register(
            "deliveries_exhausted",
            "Deliveries whose last attempt failed",
            deliveries_exhausted.clone(),
        );
        let oldest_due_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_due_delivery_age_seconds",
            "How long the oldest delivery due and not yet sent has been due (0: none)",
            oldest_due_age.clone(),
        );
        let attempt_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "attempt_duration_seconds",
            "Outgoing call latency",
            attempt_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("in_flight_calls", "Outgoing calls in flight", in_flight.clone());
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Pending deliveries", queue_depth.clone());
        let due_backlog = Gauge::default();
        registry.register(
            "due_backlog",
            "Deliveries due now and not yet sent",
            due_backlog.clone(),
        );
        let lane_backlog = Gauge::default();
        registry.register(
            "lane_backlog",
            "Deliveries waiting behind automations at their concurrency bound",
            lane_backlog.clone(),
        );
        let messages_accepted = Counter::default();
        registry.register(
            "messages_accepted",
            "Messages accepted by POST /v1/messages",
            messages_accepted.clone(),
        );
        let store_rollbacks = Gauge::default();
        registry.register(
            "store_rollbacks",
            "Group-commit transactions rolled back since start (each failed innocent writes)",
            store_rollbacks.clone(),
        );
        let retention_deleted = Family::<TableLabel, Counter>::default();
        // Each series exists from the start at 0: a series that appears only with its first
        // increment breaks `rate()` and the dashboards and scrapers that read it.
        for table in RETENTION_TABLES {
            retention_deleted.get_or_create(&TableLabel { table }).inc_by(0);
        }
        registry.register(
            "retention_deleted_rows",
            "Rows deleted by retention, by table",
            retention_deleted.clone(),
        );
        let database_size = Gauge::default();
        registry.register(
            "database_size_bytes",
            "Size of the database file (pages in use or free), refreshed after each retention pass",
            database_size.clone(),
        );
        let database_free_pages = Gauge::default();
        registry.register(
            "database_free_pages",
            "Free pages in the database file, refreshed after each retention pass",
            database_free_pages.clone(),
        );
        Self {
            registry,
            per_automation,
            attempts,
            automation_attempts,
            deliveries_exhausted,
            oldest_due_age,
            attempt_seconds,
            in_flight,
            queue_depth,
            due_backlog,
            lane_backlog,
            messages_accepted,
            store_rollbacks,
            retention_deleted,
            database_size,
            database_free_pages,
        }
    }

    /// Counts one dispatcher attempt of `automation` and its latency.
    pub fn record_delivery(&self, automation: &str, outcome: DeliveryOutcome, duration_ms: f64) {
        self.record_attempt(outcome.as_str(), duration_ms);
        self.automation_attempts.inc(automation, outcome);
        if outcome == DeliveryOutcome::Exhausted {
            self.deliveries_exhausted.inc();
        }
    }

    /// Counts one attempt and its latency.
    pub fn record_attempt(&self, outcome: &'static str, duration_ms: f64) {
        self.attempts.get_or_create(&OutcomeLabel { outcome }).inc();
        self.attempt_seconds.observe(duration_ms / 1000.0);
    }

    /// Counts `rows` deleted from `table` by retention.
    pub fn record_deleted(&self, table: &'static str, rows: usize) {
        if rows > 0 {
            self.retention_deleted.get_or_create(&TableLabel { table }).inc_by(rows as u64);
        }
    }

    /// The text exposition; with the per-automation series when `admin` (see `per_automation`).
    pub fn render(&self, admin: bool) -> String {
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(
                |()| if admin { encode_registry(&mut out, &self.per_automation) } else { Ok(()) },
            )
            .and_then(|()| encode_eof(&mut out));
        if encoded.is_err() {
            out.clear();
        }
        out
    }
}
