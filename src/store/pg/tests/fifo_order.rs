//! A FIFO line on PostgreSQL stays in message id order under concurrent ingest from two
//! instances: each ingest takes its line's lock before its ids are made (see
//! `pg::messages::lock_lines`), so no later id becomes the head, nor is promoted, before an
//! earlier one.

use tokio_postgres::types::ToSql;

use super::delivery::{automation, intake, message};
use super::{admin, server, Fresh};
use crate::store::{DeliveryOrder, Store, WAITING_AT};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_to_a_fifo_line_are_sent_in_id_order() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let rule = Default::default();
    let one = Store::open_postgres(&db.url, 8, &rule).await.unwrap();
    let two = Store::open_postgres(&db.url, 8, &rule).await.unwrap();
    let mut line = automation("proc_pg");
    line.settings.ordering = DeliveryOrder::Fifo;
    let line = one.create_automation(line).await.unwrap();
    const SENDERS: usize = 8;
    const EACH: usize = 25;
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let store = if s % 2 == 0 { one.clone() } else { two.clone() };
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                let msg = message("proc_pg", &format!("{{\"s\":{s},\"i\":{i}}}"), None);
                store.ingest(msg, intake(None, 0)).await.unwrap();
            }
        }));
    }
    // The receiver's side: the head is sent (ended succeeded) as soon as there is one, while
    // the posts go on; the trigger then promotes the next.
    let consumer = admin(&db.url).await;
    let params: [&(dyn ToSql + Sync); 2] = [&line.id, &WAITING_AT.as_ms()];
    let mut sent: Vec<Vec<u8>> = Vec::new();
    while sent.len() < SENDERS * EACH {
        let head = consumer
            .query_opt(
                "UPDATE deliveries SET status = 'succeeded' WHERE id = (SELECT id FROM deliveries \
                 WHERE automation_id = $1 AND status = 'pending' AND next_attempt_at < $2) \
                 RETURNING message_id",
                &params,
            )
            .await
            .unwrap();
        match head {
            Some(row) => sent.push(row.get(0)),
            None => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
    for s in senders {
        s.await.unwrap();
    }
    let out_of_order = sent.windows(2).filter(|w| w[0] >= w[1]).count();
    assert_eq!(out_of_order, 0, "{} messages sent, {out_of_order} after a later one", sent.len());
    drop((one, two));
    db.drop_now().await;
}
