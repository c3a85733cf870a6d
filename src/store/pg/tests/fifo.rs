//! The FIFO line's triggers (schema.sql, end): at most one pending FIFO delivery of an
//! automation is due (its head), the others wait at WAITING_AT; the next one becomes due when
//! the head ends or is deleted; and two transactions storing FIFO deliveries of one
//! automation at once still make one head (the per-automation advisory lock), which
//! PostgreSQL's concurrent writers would otherwise break; a waiting one handed back due keeps
//! waiting while its line has a head.

use tokio_postgres::Client;

use super::{admin, server, Fresh};
use crate::store::pg::Pg;
use crate::store::WAITING_AT;

const AUTOMATION: &str = r"'\x000000000000000000000000000000aa'::bytea";

/// Stores message `n` and its FIFO delivery (ids `n`), due at 5.
async fn store(client: &Client, n: u8) {
    let id = format!(r"'\x{:032x}'::bytea", n);
    client
        .batch_execute(&format!(
            "INSERT INTO messages (id, payload_hash, created_at) VALUES ({id}, '\\x01', 0);
             INSERT INTO deliveries (id, message_id, automation_id, status, attempts,
                 next_attempt_at, next_trigger, created_at, updated_at, fifo)
             VALUES ({id}, {id}, {AUTOMATION}, 'pending', 0, 5, 'initial', 0, 0, true);"
        ))
        .await
        .unwrap();
}

/// The pending deliveries that are due (not waiting), by their last id byte.
async fn due(client: &Client) -> Vec<u8> {
    client
        .query(
            "SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at < $1 \
             ORDER BY id",
            &[&WAITING_AT.as_ms()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, Vec<u8>>(0)[15])
        .collect()
}

async fn set_status(client: &Client, n: u8, status: &str) {
    let sql = format!(r"UPDATE deliveries SET status = '{status}' WHERE id = '\x{n:032x}'");
    assert_eq!(client.execute(&sql, &[]).await.unwrap(), 1);
}

#[tokio::test]
async fn a_fifo_line_has_one_head_and_moves_on_when_it_ends() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    drop(Pg::open(&db.url, 1).await.unwrap());
    let client = admin(&db.url).await;
    for n in 1..=4 {
        store(&client, n).await;
    }
    assert_eq!(due(&client).await, [1], "the first stored is the head");
    set_status(&client, 1, "succeeded").await;
    assert_eq!(due(&client).await, [2], "the next waiting one becomes due");
    client
        .execute(r"DELETE FROM deliveries WHERE id = '\x00000000000000000000000000000002'", &[])
        .await
        .unwrap();
    assert_eq!(due(&client).await, [3], "a deleted head gives its place too");
    set_status(&client, 1, "pending").await;
    assert_eq!(due(&client).await, [3], "a recovered delivery waits behind the head");
    set_status(&client, 3, "failed").await;
    assert_eq!(due(&client).await, [1], "then goes before later ones (lowest id)");
    drop(client);
    db.drop_now().await;
}

#[tokio::test]
async fn a_waiting_one_handed_back_due_keeps_waiting_behind_the_head() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    drop(Pg::open(&db.url, 1).await.unwrap());
    let client = admin(&db.url).await;
    for n in 1..=3 {
        store(&client, n).await;
    }
    // A stale copy of 3 released (due now) while 1 is the head: it keeps waiting.
    let release = r"UPDATE deliveries SET next_attempt_at = 7, claimed = 0
                    WHERE id = '\x00000000000000000000000000000003'";
    assert_eq!(client.execute(release, &[]).await.unwrap(), 1);
    assert_eq!(due(&client).await, [1], "one head only");
    set_status(&client, 1, "succeeded").await;
    assert_eq!(due(&client).await, [2], "the line goes on in id order");
    drop(client);
    db.drop_now().await;
}

#[tokio::test]
async fn two_writers_at_once_still_make_one_head() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    drop(Pg::open(&db.url, 1).await.unwrap());
    let (first, second) = (admin(&db.url).await, admin(&db.url).await);
    first.batch_execute("BEGIN").await.unwrap();
    store(&first, 1).await;
    // The second writer's trigger waits on the first's lock; without it, neither would see
    // the other's uncommitted delivery and both would be heads.
    let writer = tokio::spawn(async move {
        second.batch_execute("BEGIN").await.unwrap();
        store(&second, 2).await;
        second.batch_execute("COMMIT").await.unwrap();
        second
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "the second writer waits for the first");
    first.batch_execute("COMMIT").await.unwrap();
    let second = writer.await.unwrap();
    assert_eq!(due(&second).await, [1], "one head: the second delivery waits");
    drop((first, second));
    db.drop_now().await;
}
