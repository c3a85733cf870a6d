//! Prometheus metrics, rendered in the text exposition format at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label of [`Metrics::attempts`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `succeeded`, `retry_scheduled`, `exhausted`, `failed`, `rerun` or `test`.
    pub outcome: &'static str,
}

/// The relay's metrics.
pub struct Metrics {
    registry: Registry,
    /// Attempts by what they led to.
    pub attempts: Family<OutcomeLabel, Counter>,
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
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hookrelay");
        let attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register("delivery_attempts", "Delivery attempts by outcome", attempts.clone());
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
        Self {
            registry,
            attempts,
            attempt_seconds,
            in_flight,
            queue_depth,
            due_backlog,
            lane_backlog,
            messages_accepted,
            store_rollbacks,
        }
    }
}

impl Metrics {
    /// Counts one attempt and its latency.
    pub fn record_attempt(&self, outcome: &'static str, duration_ms: f64) {
        self.attempts.get_or_create(&OutcomeLabel { outcome }).inc();
        self.attempt_seconds.observe(duration_ms / 1000.0);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
