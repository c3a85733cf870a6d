//! Which deliveries a recover job takes: the SQL that matches them, with the job's filters.

use rusqlite::{params, Connection};

use crate::ids::{AutomationId, RecoverJobId};
use crate::outbound::ErrorCode;
use crate::store::StoreResult;
use crate::time::UnixMs;

/// Deliveries job `?4` may take: ended unsuccessfully in its window, with a last attempt
/// that passes the job's filters (`?5`-`?8`, see [`LAST_ATTEMPT`]), and not taken by it
/// already (one it re-queued that failed again is not sent again by the same job). The
/// status list is written exactly as `deliveries_ended`'s predicate: SQLite uses a partial
/// index only for a term it can match to that predicate, and with the values in another
/// order it scanned every delivery instead.
pub(super) const MATCH: &str =
    "status IN ('exhausted', 'failed') AND updated_at >= ?1 AND updated_at < ?2 \
    AND (?3 IS NULL OR automation_id = ?3) AND NOT EXISTS (SELECT 1 FROM recover_job_deliveries \
    WHERE job_id = ?4 AND delivery_id = deliveries.id)";

/// The filters on a delivery's last attempt, `?5` status code, `?6` status class, `?7`
/// error code, `?8` event type (each NULL = any). The delivery's `last_log_id` finds its log
/// by primary key, so a filtered job reads the window's ended deliveries from the
/// `deliveries_ended` index and one log row each; an unfiltered job reads no log. The log
/// holds the message's event type, so no message is read either.
pub(super) const LAST_ATTEMPT: &str = "(?5 IS NULL AND ?6 IS NULL AND ?7 IS NULL AND ?8 IS NULL \
    OR EXISTS (SELECT 1 FROM logs WHERE logs.id = deliveries.last_log_id \
    AND (?5 IS NULL OR logs.status_code = ?5) AND (?6 IS NULL OR logs.status_class = ?6) \
    AND (?7 IS NULL OR logs.error_code = ?7) AND (?8 IS NULL OR logs.event_type = ?8)))";

/// Which ended deliveries of its window a recover job takes: the logs list's filters, as
/// they apply to a delivery's last attempt (the automation: the delivery's own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoverFilter {
    /// Only this automation's deliveries.
    pub automation_id: Option<AutomationId>,
    /// The last attempt's HTTP status (0 = no response).
    pub status_code: Option<u16>,
    /// The last attempt's status class (2 to 5).
    pub status_class: Option<u8>,
    /// Why the last attempt failed.
    pub error_code: Option<ErrorCode>,
    /// The message's event type.
    pub event_type: Option<String>,
}

impl RecoverFilter {
    /// The error code as stored in `logs.error_code`.
    pub(crate) fn error_code_str(&self) -> Option<&'static str> {
        self.error_code.map(ErrorCode::as_str)
    }
}

/// The parameters `?1`-`?8` of [`MATCH`] and [`LAST_ATTEMPT`] for job `id`.
macro_rules! match_params {
    ($since:expr, $until:expr, $filter:expr, $id:expr $(, $rest:expr)*) => {
        params![
            $since,
            $until,
            $filter.automation_id,
            $id,
            $filter.status_code,
            $filter.status_class,
            $filter.error_code_str(),
            $filter.event_type
            $(, $rest)*
        ]
    };
}
pub(super) use match_params;

/// How many deliveries job `id` (or a dry run, with a fresh id) would take, up to `limit`.
pub(super) fn count_matching(
    conn: &Connection,
    since: UnixMs,
    until: UnixMs,
    filter: &RecoverFilter,
    id: &RecoverJobId,
    limit: i64,
) -> StoreResult<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE {MATCH} AND {LAST_ATTEMPT} \
             LIMIT ?9)"
        ))?
        .query_row(match_params!(since, until, filter, id, limit), |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::schema;

    /// What SQLite does for a job's count, filtered on every field.
    fn plan() -> String {
        let conn = Connection::open_in_memory().expect("open");
        schema::apply(&conn).expect("schema");
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT 1 FROM deliveries WHERE {MATCH} AND {LAST_ATTEMPT} LIMIT ?9"
        );
        let filter = RecoverFilter {
            automation_id: None,
            status_code: Some(500),
            status_class: Some(5),
            error_code: Some(ErrorCode::HttpStatus),
            event_type: Some("invoice.paid".into()),
        };
        let mut stmt = conn.prepare(&sql).expect("prepare");
        let rows = stmt
            .query_map(
                match_params!(
                    UnixMs::from_ms(0),
                    UnixMs::from_ms(1),
                    filter,
                    RecoverJobId::new(),
                    10
                ),
                |r| r.get::<_, String>(3),
            )
            .expect("plan")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        rows.join("\n")
    }

    /// A job reads only its window's ended deliveries (the partial index, not the whole
    /// table of deliveries, most of them succeeded), and for each the one log of its last
    /// attempt by primary key.
    #[test]
    fn a_job_reads_its_window_from_the_ended_index_and_one_log_per_delivery() {
        let plan = plan();
        assert!(plan.contains("USING INDEX deliveries_ended"), "{plan}");
        assert!(!plan.contains("SCAN deliveries"), "{plan}");
        assert!(plan.contains("SEARCH logs USING PRIMARY KEY (id=?)"), "{plan}");
    }
}
