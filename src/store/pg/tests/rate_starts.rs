//! The rate window instances share: of starts asked for at once from two stores (two
//! instances' pools), no more than the limit are taken in any second of the database's
//! clock (the one the window counts on), and a refused start is told when to ask again; a
//! start stamped as its call arrived counts from the stamp.

use std::time::{Duration, Instant};

use super::store::{automation, open};
use super::{admin, server, Fresh};
use crate::delivery::rate_limit::RateLimit;
use crate::ids::AutomationId;
use crate::store::Store;

/// Asks for starts of `id` under `limit` until `until`, as fast as answers come: the
/// number of starts taken.
async fn take_until(store: Store, id: AutomationId, limit: RateLimit, until: Instant) -> usize {
    let mut taken = 0;
    while Instant::now() < until {
        match store.take_shared_start(&id, limit).await.unwrap() {
            Ok(_) => taken += 1,
            Err(wait) => {
                assert!(
                    wait <= Duration::from_secs(1),
                    "asked to wait {wait:?}, beyond the window"
                );
                tokio::time::sleep(wait.min(until.saturating_duration_since(Instant::now()))).await;
            }
        }
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_taking_starts_at_once_share_one_limit() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (a, b) = (open(&db).await, open(&db).await);
    let id = AutomationId::new();
    a.create_automation(automation(id.clone(), "rate")).await.unwrap();
    // Every start taken, as the database recorded it (rows leave `rate_starts` once out of
    // the window).
    admin(&db.url)
        .await
        .batch_execute(
            "CREATE TABLE taken (at bigint NOT NULL); \
             CREATE FUNCTION note_taken() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN INSERT INTO taken VALUES (NEW.started_at); RETURN NEW; END $$; \
             CREATE TRIGGER noted AFTER INSERT ON rate_starts \
             FOR EACH ROW EXECUTE FUNCTION note_taken();",
        )
        .await
        .unwrap();
    let limit = RateLimit::new(5).unwrap();
    let until = Instant::now() + Duration::from_millis(3_500);
    let tasks = [&a, &b, &a, &b, &a, &b, &a, &b]
        .map(|store| tokio::spawn(take_until(store.clone(), id.clone(), limit, until)));
    let mut count = 0;
    for task in tasks {
        count += task.await.unwrap();
    }
    let starts: Vec<i64> = admin(&db.url)
        .await
        .query("SELECT at FROM taken ORDER BY at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(starts.len(), count, "every start taken is recorded");
    for six in starts.windows(6) {
        assert!(six[5] - six[0] >= 1000, "6 starts within {} ms: {starts:?}", six[5] - six[0]);
    }
    assert!(count >= 10, "the limit is used, not only kept: {count} starts in 3.5 s");
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stamped_start_counts_from_its_stamp() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let id = AutomationId::new();
    store.create_automation(automation(id.clone(), "stamped")).await.unwrap();
    let one = RateLimit::new(1).unwrap();
    let taken = store.take_shared_start(&id, one).await.unwrap();
    let start = taken.expect("the first start is taken").expect("a shared start to stamp");
    tokio::time::sleep(Duration::from_millis(400)).await;
    store.stamp_shared_start(&id, start).await.unwrap();
    // Counted from the take, the next start would come ~600 ms later; from the stamp, ~1 s.
    let refused = store.take_shared_start(&id, one).await.unwrap();
    let wait = refused.expect_err("a second start within the second waits");
    assert!(wait >= Duration::from_millis(900), "counted from the take: wait {wait:?}");
    assert!(wait <= Duration::from_secs(1), "beyond the window: wait {wait:?}");
    db.drop_now().await;
}
