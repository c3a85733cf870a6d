//! The filters of the log lists, as SQL conditions, each served by an index (see schema.sql's
//! `Version 5 (log filters)`). Indexes on `logs` cost write time on every call, so those added
//! for these filters are partial, on predicates a successful first attempt (the common path)
//! does not meet; the conditions repeat a partial index's predicate where SQLite could not
//! infer it, so that the index can be used. `url_contains` is the one filter no index can
//! serve: see [`LogFilter::url_contains`].

use super::page::Conditions;
use super::Trigger;
use crate::ids::{Automation, DeliveryId, LogId};
use crate::outbound::ErrorCode;
use crate::time::UnixMs;

/// Log list filters (all optional, ANDed).
#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    /// Exact HTTP status (0 = no response).
    pub status_code: Option<u16>,
    /// Status class: 2, 3, 4 or 5 (0 = no response).
    pub status_class: Option<u8>,
    /// Automation called.
    pub automation_id: Option<String>,
    /// Processor of the automation.
    pub processor_id: Option<String>,
    /// Exact URL called.
    pub webhook_url: Option<String>,
    /// Created at or after.
    pub created_after: Option<UnixMs>,
    /// Created before.
    pub created_before: Option<UnixMs>,
    /// Why the calls failed.
    pub error_code: Option<ErrorCode>,
    /// Whether the call succeeded: a 2xx answer read to its end, i.e. no error code. A failure
    /// is any call with an error code, whether it got an answer (non-2xx, a body cut short) or
    /// none at all (status 0).
    pub success: Option<bool>,
    /// Why the call was made.
    pub trigger: Option<Trigger>,
    /// The event type of the message sent.
    pub event_type: Option<String>,
    /// A case-sensitive substring of the URL called. No index serves it: a page walks
    /// newest first along the primary key (or another filter's index) and tests at most
    /// `SCAN_BUDGET` logs, so a page of a rare substring may hold fewer matches than its
    /// limit, or none, with a cursor to go on (bound its length where it is parsed).
    pub url_contains: Option<String>,
    /// The delivery the logs belong to (its attempts, and the reruns that name it): the chain
    /// of attempts the console's log page shows.
    pub delivery_id: Option<DeliveryId>,
}

/// The SQL conditions of `filter`.
pub(super) fn conditions(filter: &LogFilter) -> Conditions {
    let mut c = Conditions::default();
    if let Some(code) = filter.status_code {
        c.push("status_code = ?", i64::from(code));
    }
    if let Some(class) = filter.status_class {
        c.push("status_class = ?", i64::from(class));
    }
    if let Some(a) = &filter.automation_id {
        c.push_id::<Automation>("automation_id", a);
    }
    if let Some(p) = &filter.processor_id {
        c.push("processor_id = ?", p.clone());
    }
    if let Some(u) = &filter.webhook_url {
        c.push("webhook_url = ?", u.clone());
    }
    if let Some(t) = filter.created_after {
        c.push("id >= ?", LogId::time_bound(t.as_ms()));
    }
    if let Some(t) = filter.created_before {
        c.push("id < ?", LogId::time_bound(t.as_ms()));
    }
    if let Some(code) = &filter.error_code {
        c.push("error_code = ?", code.as_str().to_string());
    }
    match filter.success {
        // Every success is a 2xx, so the status class index serves it; no index of its own
        // on the path every successful call takes.
        Some(true) => c.push_literal("status_class = 2 AND error_code IS NULL".into()),
        Some(false) => c.push_literal("error_code IS NOT NULL".into()),
        None => {}
    }
    if let Some(trigger) = filter.trigger {
        c.push("trigger = ?", trigger.as_str().to_string());
        // First attempts are not indexed (see schema.sql): the others need the partial
        // index's predicate spelt out, as SQLite does not infer it from `trigger = ?`.
        if trigger != Trigger::Initial {
            c.push_literal("trigger <> 'initial'".into());
        }
    }
    if let Some(event_type) = &filter.event_type {
        c.push("event_type = ?", event_type.clone());
    }
    if let Some(part) = &filter.url_contains {
        // instr, not LIKE: LIKE is case-insensitive for ASCII and gives `%` and `_` a meaning.
        c.push_unindexed("instr(webhook_url, ?) > 0", part.clone());
    }
    if let Some(delivery) = &filter.delivery_id {
        // `=` implies the partial index's `delivery_id IS NOT NULL`, as SQLite infers.
        c.push("delivery_id = ?", delivery.clone());
    }
    c
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::outbound::ErrorCode;
    use crate::store::logs::COLUMNS;
    use crate::store::page::first_page_plan;
    use crate::store::schema;

    fn plan(filter: LogFilter) -> String {
        let conn = Connection::open_in_memory().expect("open");
        schema::apply(&conn).expect("schema");
        first_page_plan(&conn, "logs", COLUMNS, &conditions(&filter)).expect("plan")
    }

    /// Each filter on its own reads its index in id order: no scan of the whole table and
    /// no sort of everything that matches before the first page can be answered.
    #[test]
    fn each_log_filter_is_served_by_an_index() {
        let cases = [
            (
                "error_code",
                LogFilter { error_code: Some(ErrorCode::Connection), ..Default::default() },
                "logs_error_code (error_code=?)",
            ),
            (
                "success=false",
                LogFilter { success: Some(false), ..Default::default() },
                "logs_failed",
            ),
            (
                "success=true",
                LogFilter { success: Some(true), ..Default::default() },
                "logs_status_class (status_class=?)",
            ),
            (
                "trigger=retry",
                LogFilter { trigger: Some(Trigger::Retry), ..Default::default() },
                "logs_trigger (trigger=?)",
            ),
            (
                "trigger=rerun",
                LogFilter { trigger: Some(Trigger::Rerun), ..Default::default() },
                "logs_trigger (trigger=?)",
            ),
            (
                "event_type",
                LogFilter { event_type: Some("invoice.paid".into()), ..Default::default() },
                "logs_event_type (event_type=?)",
            ),
            (
                "status_code",
                LogFilter { status_code: Some(0), ..Default::default() },
                "logs_status_code (status_code=?)",
            ),
            (
                "status_class",
                LogFilter { status_class: Some(5), ..Default::default() },
                "logs_status_class (status_class=?)",
            ),
            (
                "automation_id",
                LogFilter {
                    automation_id: Some(crate::ids::AutomationId::new().into_string()),
                    ..Default::default()
                },
                "logs_automation (automation_id=?)",
            ),
            (
                "processor_id",
                LogFilter { processor_id: Some("p".into()), ..Default::default() },
                "logs_processor (processor_id=?)",
            ),
            (
                "webhook_url",
                LogFilter { webhook_url: Some("http://x/".into()), ..Default::default() },
                "logs_webhook_url (webhook_url=?)",
            ),
            (
                "delivery_id",
                LogFilter { delivery_id: Some(DeliveryId::new()), ..Default::default() },
                "logs_delivery (delivery_id=?)",
            ),
            (
                "url_contains with automation_id",
                LogFilter {
                    url_contains: Some("/hooks/".into()),
                    automation_id: Some(crate::ids::AutomationId::new().into_string()),
                    ..Default::default()
                },
                "logs_automation (automation_id=?)",
            ),
        ];
        for (name, filter, index) in cases {
            let plan = plan(filter);
            assert!(plan.contains(&format!("USING INDEX {index}")), "{name}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{name} sorts its matches: {plan}");
        }
    }

    /// `url_contains` alone walks the table newest first by its primary key (at most
    /// `SCAN_BUDGET` logs, in a co-routine) and tests each log as it comes, stopping at the
    /// page's end: no sort of every match first, and not a scan of the URL index, whose
    /// matches would need that sort.
    #[test]
    fn url_contains_walks_the_table_in_id_order() {
        let plan = plan(LogFilter { url_contains: Some("/hooks/".into()), ..Default::default() });
        assert_eq!(plan, "CO-ROUTINE (subquery-1); SCAN logs; SCAN (subquery-1)", "{plan}");
    }

    /// First attempts, most of the logs, have no index (it would cost every call a write):
    /// `trigger=initial` reads the table in id order, where at least one log per delivery is
    /// a first attempt, without sorting.
    #[test]
    fn trigger_initial_reads_the_table_in_id_order() {
        let plan = plan(LogFilter { trigger: Some(Trigger::Initial), ..Default::default() });
        assert_eq!(plan, "SCAN logs", "{plan}");
    }
}
