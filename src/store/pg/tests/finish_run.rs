//! `Store::finish_run` on PostgreSQL: a run names the instance running it from its creation,
//! and ends with its completion message in one transaction: finished twice, the second is
//! refused and ingests nothing; a completion that cannot be stored leaves the run running.
//! A lost instance's run is adopted by one survivor.

use super::delivery::{automation, intake, message};
use super::runs::{outcome, record};
use super::{admin, server, Fresh};
use crate::store::{Conflict, NewMessage, RunStatus, Store, StoreError};
use crate::time::UnixMs;

async fn count(db: &Fresh, sql: &str) -> i64 {
    admin(&db.url).await.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_run_ends_once_with_its_completion_and_names_its_instance_while_running() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = Store::open_postgres(&db.url, 2, &Default::default()).await.unwrap();
    store.create_automation(automation("app")).await.unwrap();
    let (run, _) = store.create_run(record("app", "u", 1_000), None).await.unwrap();
    let named = "SELECT count(*) FROM workflow_runs r JOIN instances i ON i.id = r.run_by";
    assert_eq!(count(&db, named).await, 1, "a new run names this instance");

    let unaddressed = NewMessage { processor_id: None, ..message("app", "{}", None) };
    let err = store
        .finish_run(run.id.clone(), outcome(RunStatus::Failed), unaddressed, intake(None, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unaddressed), "{err:?}");
    assert_eq!(store.run(run.id.clone()).await.unwrap().status, RunStatus::Running);
    assert_eq!(count(&db, named).await, 1, "the failed finish was rolled back");

    let done = store
        .finish_run(
            run.id.clone(),
            outcome(RunStatus::Succeeded),
            message("app", r#"{"event":"workflow_finished"}"#, None),
            intake(None, 0),
        )
        .await
        .unwrap();
    assert_eq!(done.receipt.result.deliveries.len(), 1);
    assert_eq!(done.receipt.result.created_at, UnixMs::from_ms(9_000), "at the run's end");
    assert!(done.handover.unclaimed);
    let read = store.run(run.id.clone()).await.unwrap();
    assert_eq!(
        (read.status, read.finished_at),
        (RunStatus::Succeeded, Some(UnixMs::from_ms(9_000)))
    );
    assert_eq!(count(&db, named).await, 0, "an ended run names no instance");

    let again = store
        .finish_run(
            run.id.clone(),
            outcome(RunStatus::Failed),
            message("app", r#"{"event":"workflow_finished"}"#, None),
            intake(None, 0),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(Conflict::RunNotRunning, _)), "{again:?}");
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 1, "one completion");
    assert_eq!(count(&db, "SELECT count(*) FROM deliveries").await, 1);
    drop(store);
    db.drop_now().await;
}

#[tokio::test]
async fn a_lost_instances_run_is_adopted_by_one_survivor() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let rule = Default::default();
    let one = Store::open_postgres(&db.url, 2, &rule).await.unwrap();
    let two = Store::open_postgres(&db.url, 2, &rule).await.unwrap();
    let (run, _) = one.create_run(record("app", "u", 1_000), None).await.unwrap();
    assert!(one.running_runs().await.unwrap().is_empty(), "its instance lives");
    admin(&db.url)
        .await
        .batch_execute("UPDATE workflow_runs SET run_by = gen_random_uuid()")
        .await
        .unwrap();
    // Both survivors' updates queue on the run's row (held here), so the second one's
    // update runs after the first adopted the run: it must find it adopted, not lost.
    let mut holder = admin(&db.url).await;
    let hold = holder.transaction().await.unwrap();
    hold.execute("SELECT 1 FROM workflow_runs FOR UPDATE", &[]).await.unwrap();
    let (a, b) = (one.clone(), two.clone());
    let a = tokio::spawn(async move { a.running_runs().await });
    let b = tokio::spawn(async move { b.running_runs().await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    hold.commit().await.unwrap();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let found: Vec<String> = a.unwrap().into_iter().chain(b.unwrap()).map(|r| r.id).collect();
    assert_eq!(found, [run.id], "one survivor adopts it");
    let named = "SELECT count(*) FROM workflow_runs r JOIN instances i ON i.id = r.run_by";
    assert_eq!(count(&db, named).await, 1, "it names its adopter");
    assert!(two.running_runs().await.unwrap().is_empty(), "adopted: not lost any more");
    drop((one, two));
    db.drop_now().await;
}
