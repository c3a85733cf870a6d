//! The single writer. Writes queue on a bounded channel; the writer thread takes everything
//! queued (up to `max_batch`), runs them inside one transaction, commits once, and only then
//! answers each caller. Many small writes thus share one fsync.
//!
//! A guarded write runs in a savepoint of its own, so when it fails it rolls back alone. The
//! hot-path writes (ingest, an attempt's outcome) are unguarded: the savepoint's page
//! journal was ~15 % of the writer's CPU. One that fails before changing anything costs
//! nothing; one that fails after changing something (which for them means a storage failure)
//! rolls the whole transaction back, failing the writes already run in it, and the rest of
//! the queue goes on in a new one. Either way no half-written record is ever committed.
//!
//! Every rollback (a savepoint's or a transaction's) calls the store's `on_rollback` on the
//! writer thread before the next write runs, so state kept beside the database (the
//! automation cache) never outlives the writes it mirrors. Whole-transaction rollbacks are
//! counted: each one failed writes that had done nothing wrong. When the database refuses
//! writes as a whole (a full disk, a lock held by another process), every write of the batch
//! is answered with that [`StorageFailure`], and the time is noted: the store counts as
//! failing for [`FAILURE_HOLD_MS`] after the last storage failure. (A write that succeeds
//! proves little: a small one still fits on a disk too full for the next batch.)

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{StorageFailure, StoreError, StoreResult};

use crate::time::UnixMs;

/// Called once the batch's fate is known: `Ok` when committed.
type Reply = Box<dyn FnOnce(Result<(), StorageFailure>) + Send>;
/// A write: runs on the connection (or, when the transaction could not even begin, is told
/// why) and says how it went and how to answer.
type Job = Box<dyn FnOnce(Result<&Connection, &StorageFailure>) -> Ran + Send>;

/// What running a job gave.
struct Ran {
    ok: bool,
    /// Set when the job failed because the database refused writes as a whole.
    storage_failure: Option<StorageFailure>,
    reply: Reply,
}

/// A queued write and whether it runs in a savepoint of its own.
struct Queued {
    job: Job,
    guarded: bool,
}

/// Runs on the writer thread after anything was rolled back.
pub(super) type OnRollback = Box<dyn Fn() + Send>;

#[derive(Clone)]
pub(super) struct Writer {
    sender: Arc<Mutex<Option<mpsc::Sender<Queued>>>>,
    done: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    health: Arc<Health>,
}

/// What the writer tells about itself.
#[derive(Default)]
struct Health {
    rollbacks: AtomicU64,
    /// When the last storage failure was, as [`UnixMs::as_ms`] (0: none yet).
    last_failure_ms: AtomicI64,
}

/// How long after a storage failure the store still counts as failing.
pub(super) const FAILURE_HOLD_MS: i64 = 5_000;

impl Health {
    fn failed(&self) {
        self.last_failure_ms.store(UnixMs::now().as_ms(), Ordering::Relaxed);
    }
}

/// What the writer thread owns.
struct Thread {
    conn: Connection,
    on_rollback: OnRollback,
    health: Arc<Health>,
}

const QUEUE_DEPTH: usize = 8192;
/// A batch that found at least this many writes queued (the writer is busy) waits
/// [`LINGER`] for more to share its commit: one commit writes each touched page once.
const LINGER_FROM: usize = 8;
/// How long such a batch waits.
const LINGER: std::time::Duration = std::time::Duration::from_micros(200);

impl Writer {
    pub(super) fn start(
        conn: Connection,
        max_batch: usize,
        on_rollback: OnRollback,
    ) -> StoreResult<Self> {
        let (sender, receiver) = mpsc::channel::<Queued>(QUEUE_DEPTH);
        let (done_tx, done_rx) = oneshot::channel();
        let health = Arc::new(Health::default());
        let thread = Thread { conn, on_rollback, health: health.clone() };
        std::thread::Builder::new()
            .name("hookrelay-writer".into())
            .spawn(move || {
                run(&thread, receiver, max_batch);
                let _ = done_tx.send(());
            })
            .map_err(|e| {
                StoreError::Commit(StorageFailure::Other(format!("cannot start writer: {e}")))
            })?;
        Ok(Self {
            sender: Arc::new(Mutex::new(Some(sender))),
            done: Arc::new(Mutex::new(Some(done_rx))),
            health,
        })
    }

    /// How many group-commit transactions were rolled back since start.
    pub(super) fn rollbacks(&self) -> u64 {
        self.health.rollbacks.load(Ordering::Relaxed)
    }

    /// Whether the last batch that tried to write met a storage failure.
    pub(super) fn failing(&self) -> bool {
        let last = self.health.last_failure_ms.load(Ordering::Relaxed);
        last > 0 && UnixMs::now().since(UnixMs::from_ms(last)) < FAILURE_HOLD_MS
    }

    /// Queues `f`; `guarded` runs it in a savepoint of its own (see the module doc).
    pub(super) async fn write<T, F>(&self, f: F, guarded: bool) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let sender = self.sender.lock().map_err(|_| StoreError::Closed)?.clone();
        let sender = sender.ok_or(StoreError::Closed)?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => f(conn),
                Err(failure) => Err(StoreError::Commit(failure.clone())),
            };
            let ok = result.is_ok();
            let storage_failure = result.as_ref().err().and_then(StoreError::storage_failure);
            let reply: Reply = Box::new(move |commit| {
                let answer = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(failure)) => Err(StoreError::Commit(failure)),
                    (Err(e), _) => Err(e),
                };
                let _ = tx.send(answer);
            });
            Ran { ok, storage_failure, reply }
        });
        sender.send(Queued { job, guarded }).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Closes the queue; queued writes still commit. Waits for the thread to finish.
    pub(super) async fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.await;
        }
    }
}

fn run(thread: &Thread, mut receiver: mpsc::Receiver<Queued>, max_batch: usize) {
    let mut batch: VecDeque<Queued> = VecDeque::with_capacity(max_batch);
    let mut replies: Vec<Reply> = Vec::with_capacity(max_batch);
    while let Some(first) = receiver.blocking_recv() {
        batch.push_back(first);
        drain_queue(&mut receiver, &mut batch, max_batch);
        if batch.len() >= LINGER_FROM && batch.len() < max_batch {
            // Writes are arriving concurrently: wait a moment for more to share the commit.
            std::thread::sleep(LINGER);
            drain_queue(&mut receiver, &mut batch, max_batch);
        }
        // A transaction cut short by a half-done unguarded write leaves the rest queued.
        while !batch.is_empty() {
            let outcome = run_batch(thread, &mut batch, &mut replies);
            for reply in replies.drain(..) {
                reply(outcome.clone());
            }
        }
    }
    if let Err(e) = thread.conn.execute_batch("PRAGMA optimize;") {
        tracing::warn!(error = %e, "PRAGMA optimize failed at shutdown");
    }
}

/// Moves what is queued into `batch`, up to `max_batch`.
fn drain_queue(
    receiver: &mut mpsc::Receiver<Queued>,
    batch: &mut VecDeque<Queued>,
    max_batch: usize,
) {
    while batch.len() < max_batch {
        match receiver.try_recv() {
            Ok(job) => batch.push_back(job),
            Err(_) => break,
        }
    }
}

/// Runs queued writes in one transaction until the queue is empty or an unguarded write
/// fails part-way (then the transaction is rolled back and the rest stays queued).
fn run_batch(
    thread: &Thread,
    batch: &mut VecDeque<Queued>,
    replies: &mut Vec<Reply>,
) -> Result<(), StorageFailure> {
    let conn = &thread.conn;
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let failure = StorageFailure::of(&e);
        tracing::error!(error = %e, "cannot begin a write transaction");
        thread.health.failed();
        for Queued { job, .. } in batch.drain(..) {
            replies.push(job(Err(&failure)).reply);
        }
        return Err(failure);
    }
    let mut storage_failed = false;
    while let Some(Queued { job, guarded }) = batch.pop_front() {
        if guarded {
            let savepoint = exec(conn, "SAVEPOINT op");
            let ran = job_or_abort(conn, job);
            storage_failed |= ran.storage_failure.is_some();
            let closed = if ran.ok && savepoint.is_ok() {
                exec(conn, "RELEASE op")
            } else {
                (thread.on_rollback)();
                exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
            };
            if let Err(e) = closed {
                tracing::error!(error = %e, "savepoint handling failed");
            }
            replies.push(ran.reply);
            continue;
        }
        let changes_before = conn.total_changes();
        let ran = job_or_abort(conn, job);
        storage_failed |= ran.storage_failure.is_some();
        replies.push(ran.reply);
        if !ran.ok && conn.total_changes() != changes_before {
            rollback(thread);
            tracing::error!("a write failed part-way; its transaction was rolled back");
            return Err(ran.storage_failure.unwrap_or_else(|| {
                StorageFailure::Other("a write in the same transaction failed part-way".into())
            }));
        }
    }
    match exec(conn, "COMMIT") {
        Ok(()) => {
            if storage_failed {
                thread.health.failed();
            }
            Ok(())
        }
        Err(e) => {
            rollback(thread);
            tracing::error!(error = %e, "group commit failed; batch rolled back");
            Err(StorageFailure::of(&e))
        }
    }
}

/// Rolls the open transaction back, counts it, and tells the store.
fn rollback(thread: &Thread) {
    if let Err(e) = exec(&thread.conn, "ROLLBACK") {
        // SQLite rolls back by itself after some errors (a full disk, I/O); nothing is open then.
        tracing::debug!(error = %e, "ROLLBACK found no open transaction");
    }
    thread.health.rollbacks.fetch_add(1, Ordering::Relaxed);
    thread.health.failed();
    (thread.on_rollback)();
}

/// Runs a transaction-control statement through the statement cache (parsed once, not per job).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs one job; a panic inside it is contained (its savepoint is rolled back and its caller
/// sees the store as closed) instead of killing the writer thread.
fn job_or_abort(conn: &Connection, job: Job) -> Ran {
    match catch_unwind(AssertUnwindSafe(|| job(Ok(conn)))) {
        Ok(ran) => ran,
        Err(_) => {
            tracing::error!("a write panicked; its changes were rolled back");
            Ran { ok: false, storage_failure: None, reply: Box::new(|_| {}) }
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
