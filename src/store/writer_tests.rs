//! Group commit with guarded and unguarded writes: what commits, what rolls back, and what
//! each caller is told.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use rusqlite::Connection;

use super::Writer;
use crate::store::{Conflict, StoreError, StoreResult};

/// A writer whose `on_rollback` calls are counted.
fn writer_counting_rollbacks() -> (Writer, tempfile::TempDir, Arc<AtomicUsize>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(dir.path().join("w.db")).expect("open");
    conn.execute_batch("CREATE TABLE t (name TEXT PRIMARY KEY)").expect("schema");
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let on_rollback = Box::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    (Writer::start(conn, 64, on_rollback).expect("writer"), dir, calls)
}

fn insert(conn: &Connection, name: &str) -> StoreResult<()> {
    conn.execute("INSERT INTO t (name) VALUES (?1)", [name])?;
    Ok(())
}

fn names(dir: &tempfile::TempDir) -> Vec<String> {
    let conn = Connection::open(dir.path().join("w.db")).expect("open");
    let mut stmt = conn.prepare("SELECT name FROM t ORDER BY name").expect("prepare");
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).expect("query");
    rows.map(|r| r.expect("row")).collect()
}

/// Holds the writer thread inside a first write until `release` is sent, so the writes
/// queued meanwhile share the next transaction.
async fn hold(writer: &Writer) -> (std_mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, wait) = std_mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let w = writer.clone();
    let held = tokio::spawn(async move {
        let _ = w
            .write(
                move |_| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                    Ok(())
                },
                true,
            )
            .await;
    });
    started.await.expect("holder started");
    (release, held)
}

#[tokio::test]
async fn an_unguarded_write_failing_part_way_rolls_back_its_transaction_only() {
    let (writer, dir, on_rollback_calls) = writer_counting_rollbacks();
    let (release, held) = hold(&writer).await;
    let before = writer.write(|c| insert(c, "a-guarded"), true);
    let broken = writer.write(
        |c| {
            insert(c, "b-half-done")?;
            Err::<(), _>(StoreError::Conflict(
                Conflict::RunNotRunning,
                "failed after a change".into(),
            ))
        },
        false,
    );
    let after = writer.write(|c| insert(c, "c-after"), false);
    let (before, broken, after, ()) = tokio::join!(before, broken, after, async {
        tokio::task::yield_now().await;
        let _ = release.send(());
    });
    held.await.expect("holder");
    assert!(matches!(before, Err(StoreError::Commit(_))), "{before:?}");
    assert!(matches!(broken, Err(StoreError::Conflict(..))), "{broken:?}");
    assert!(after.is_ok(), "the write queued behind runs in a new transaction: {after:?}");
    assert_eq!(names(&dir), ["c-after"]);
    assert_eq!(writer.rollbacks(), 1, "the rolled-back transaction is counted");
    assert_eq!(on_rollback_calls.load(Ordering::SeqCst), 1, "the store was told");
}

#[tokio::test]
async fn an_unguarded_write_failing_before_any_change_costs_the_others_nothing() {
    let (writer, dir, on_rollback_calls) = writer_counting_rollbacks();
    let (release, held) = hold(&writer).await;
    let before = writer.write(|c| insert(c, "a"), false);
    let refused = writer.write(
        |_| {
            Err::<(), _>(StoreError::Conflict(
                Conflict::RunNotRunning,
                "refused before writing".into(),
            ))
        },
        false,
    );
    let guarded_fails = writer.write(
        |c| {
            insert(c, "b-rolled-back-alone")?;
            Err::<(), _>(StoreError::Conflict(Conflict::RunNotRunning, "guarded".into()))
        },
        true,
    );
    let after = writer.write(|c| insert(c, "c"), false);
    let (before, refused, guarded_fails, after, ()) =
        tokio::join!(before, refused, guarded_fails, after, async {
            tokio::task::yield_now().await;
            let _ = release.send(());
        });
    held.await.expect("holder");
    assert!(before.is_ok() && after.is_ok(), "{before:?} {after:?}");
    assert!(matches!(refused, Err(StoreError::Conflict(..))), "{refused:?}");
    assert!(matches!(guarded_fails, Err(StoreError::Conflict(..))), "{guarded_fails:?}");
    assert_eq!(names(&dir), ["a", "c"]);
    assert_eq!(writer.rollbacks(), 0, "no transaction was rolled back");
    assert_eq!(
        on_rollback_calls.load(Ordering::SeqCst),
        1,
        "the guarded write's savepoint rollback told the store"
    );
}
