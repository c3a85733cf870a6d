//! Messages read back: every accepted message can be listed and read with its payload and
//! its deliveries, whether it reached any automation or none.

use rusqlite::{Connection, OptionalExtension, Row};

use super::content::{self, GoneReason};
use super::deliveries::{self, DeliveryRow};
use super::page::{read_page, Conditions, Page, PageRequest};
use super::{decode, Store, StoreError, StoreResult};
use crate::ids::{AutomationId, MessageId};
use crate::time::UnixMs;

/// A message as listed.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// `msg_…`, also the `webhook-id` of every call made for it.
    pub id: MessageId,
    /// The processor it was posted to (or of the automation it was addressed to).
    pub processor_id: Option<String>,
    /// The one automation it was addressed to; `None` when it went to its processor's.
    pub automation_id: Option<AutomationId>,
    /// The event type given, if any.
    pub event_type: Option<String>,
    /// How many deliveries it has (0: it reached no automation).
    pub delivery_count: u32,
    /// When it was created.
    pub created_at: UnixMs,
    /// When its content was expunged (`DELETE /v1/messages/{id}/content`), if it was.
    pub content_expunged_at: Option<UnixMs>,
}

/// A message with its payload and deliveries.
#[derive(Debug, Clone)]
pub struct MessageDetail {
    /// The message.
    pub message: MessageRow,
    /// The payload as accepted (the body of every call made for it), or why it is gone
    /// (the message is shown without it rather than failing the read).
    pub payload: Result<Vec<u8>, GoneReason>,
    /// Its deliveries, oldest first.
    pub deliveries: Vec<DeliveryRow>,
}

/// Message list filters (all optional, ANDed). Each is served by an index: the processor
/// by `messages_processor`, the event type by `messages_event_type`, the window by the
/// primary key (ids are time-sortable).
#[derive(Debug, Default, Clone)]
pub struct MessageFilter {
    /// Exact processor.
    pub processor_id: Option<String>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Created at or after.
    pub created_after: Option<UnixMs>,
    /// Created before.
    pub created_before: Option<UnixMs>,
}

const COLUMNS: &str = "id, processor_id, automation_id, event_type, created_at, \
    (SELECT count(*) FROM deliveries WHERE deliveries.message_id = messages.id), \
    content_expunged_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    let id: MessageId = decode::key(r, 0, "messages")?;
    Ok(MessageRow {
        automation_id: decode::value(r, 2, "messages", &id)?,
        id,
        processor_id: r.get(1)?,
        event_type: r.get(3)?,
        created_at: r.get(4)?,
        delivery_count: r.get(5)?,
        content_expunged_at: r.get(6)?,
    })
}

pub(super) fn conditions(filter: &MessageFilter) -> Conditions {
    let mut c = Conditions::default();
    if let Some(p) = &filter.processor_id {
        c.push("processor_id = ?", p.clone());
    }
    if let Some(t) = &filter.event_type {
        c.push("event_type = ?", t.clone());
    }
    if let Some(t) = filter.created_after {
        c.push("id >= ?", MessageId::time_bound(t.as_ms()));
    }
    if let Some(t) = filter.created_before {
        c.push("id < ?", MessageId::time_bound(t.as_ms()));
    }
    c
}

fn detail(conn: &Connection, id: &MessageId) -> StoreResult<MessageDetail> {
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS}, payload_hash FROM messages WHERE id = ?1"))?
        .query_row([id], |r| Ok((from_row(r)?, r.get::<_, Vec<u8>>(7)?)))
        .optional()?;
    let (message, payload_hash) = found.ok_or(StoreError::NotFound("message"))?;
    let payload = match content::payload(conn, id, &payload_hash) {
        Ok(data) => Ok(data),
        Err(StoreError::ContentGone { why, .. }) => Err(why),
        Err(e) => return Err(e),
    };
    let deliveries = deliveries::of_message(conn, id)?;
    Ok(MessageDetail { message, payload, deliveries })
}

impl Store {
    /// One page of messages.
    pub async fn list_messages(
        &self,
        filter: MessageFilter,
        page: PageRequest,
    ) -> StoreResult<Page<MessageRow>> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::message_views::list(p, &**p.client().await?, &filter, &page)
                    .await
            }
        };
        db.read(move |c| {
            read_page(c, "messages", COLUMNS, &conditions(&filter), &page, from_row, |m| {
                m.id.as_str()
            })
        })
        .await
    }

    /// One message with its payload and deliveries.
    pub async fn message(&self, id: MessageId) -> StoreResult<MessageDetail> {
        let db = match &self.backend {
            super::Backend::Sqlite(db) => db,
            super::Backend::Postgres(p) => {
                return super::pg::message_views::detail(p, &**p.client().await?, &id).await
            }
        };
        db.read(move |c| detail(c, &id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each list filter is served by an index, never by a scan of the whole table in
    /// another order: the plan of the page query names the index it walks.
    #[test]
    fn every_message_filter_is_served_by_an_index() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::schema::apply(&conn).unwrap();
        let request = PageRequest { before: None, after: None, limit: 10, desc: true };
        let cases = [
            (
                MessageFilter { processor_id: Some("p".into()), ..Default::default() },
                "messages_processor",
            ),
            (
                MessageFilter { event_type: Some("e".into()), ..Default::default() },
                "messages_event_type",
            ),
            (
                MessageFilter {
                    created_after: Some(crate::time::UnixMs::from_ms(1)),
                    created_before: Some(crate::time::UnixMs::from_ms(2)),
                    ..Default::default()
                },
                "PRIMARY KEY",
            ),
            (
                MessageFilter {
                    processor_id: Some("p".into()),
                    created_after: Some(crate::time::UnixMs::from_ms(1)),
                    ..Default::default()
                },
                "messages_processor",
            ),
        ];
        for (filter, index) in cases {
            let c = conditions(&filter);
            let (clause, values) = c.sql_for_test();
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT {COLUMNS} FROM messages{clause} ORDER BY id DESC LIMIT {}",
                request.limit
            );
            let plan: Vec<String> = conn
                .prepare(&sql)
                .unwrap()
                .query_map(rusqlite::params_from_iter(values), |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let scan = plan.iter().find(|p| p.contains("messages")).unwrap();
            assert!(scan.contains(index), "{filter:?}: {plan:?}");
            assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{filter:?} sorts: {plan:?}");
        }
    }
}
