//! Recover jobs on PostgreSQL: two instances running chunks of one job at once re-queue each
//! delivery once (a chunk locks the job's row and runs only on the job's instance), and a
//! job whose instance is gone is adopted by one survivor, which resumes it.

use super::delivery::{automation, intake, message};
use super::{admin, server, Fresh};
use crate::ids::RecoverJobId;
use crate::store::{BackgroundJob, RecoverFilter, Store};
use crate::time::UnixMs;

async fn count(db: &Fresh, sql: &str) -> i64 {
    admin(&db.url).await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Ingests `n` messages to `proc_pg` through `store`, then marks every delivery exhausted at
/// 1 s (inside the jobs' window).
async fn exhausted(store: &Store, db: &Fresh, n: i64) {
    for i in 0..n {
        store
            .ingest(message("proc_pg", &format!("{{\"n\":{i}}}"), None), intake(None, 0))
            .await
            .unwrap();
    }
    admin(&db.url)
        .await
        .batch_execute("UPDATE deliveries SET status = 'exhausted', updated_at = 1000")
        .await
        .unwrap();
}

/// Runs `job` chunk by chunk until a chunk re-queues nothing; returns how many it did.
async fn run(store: Store, job: BackgroundJob) -> i64 {
    let mut total = 0;
    loop {
        match store.requeue_chunk(job.clone(), 3).await.unwrap() {
            0 => return total,
            n => total += n,
        }
    }
}

#[tokio::test]
async fn two_instances_running_one_job_requeue_each_delivery_once() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let rule = Default::default();
    let one = Store::open_postgres(&db.url, 4, &rule).await.unwrap();
    let two = Store::open_postgres(&db.url, 4, &rule).await.unwrap();
    one.create_automation(automation("proc_pg")).await.unwrap();
    const N: i64 = 60;
    exhausted(&one, &db, N).await;
    let (since, until) = (UnixMs::from_ms(0), UnixMs::from_ms(2_000));
    let job = one.create_recover_job(since, until, RecoverFilter::default(), 1_000).await.unwrap();
    assert_eq!((job.total, job.requeued), (N, 0));
    let job_id = BackgroundJob::Recover(job.id.clone());
    let (a, b) = tokio::join!(
        tokio::spawn(run(one.clone(), job_id.clone())),
        tokio::spawn(run(two.clone(), job_id.clone()))
    );
    assert_eq!(a.unwrap() + b.unwrap(), N, "each delivery re-queued once, by one of them");
    let done = two.recover_job(job.id.clone()).await.unwrap();
    assert_eq!((done.total, done.requeued, done.pending), (N, N, N));
    assert_eq!(count(&db, "SELECT count(*) FROM recover_job_deliveries").await, N);
    let pending = "SELECT count(*) FROM deliveries WHERE status = 'pending' \
                   AND next_trigger = 'recover' AND recover_job_id IS NOT NULL";
    assert_eq!(count(&db, pending).await, N);
    assert_eq!(one.unfinished_recover_jobs().await.unwrap(), Vec::new());
    drop((one, two));
    db.drop_now().await;
}

/// A job is run by the instance that created it: another's chunk does nothing. Once it names
/// an instance that is gone (as a dead one's, whose row the takeover deleted), or none (a
/// job stored before version 25), one of two survivors looking at once adopts it and
/// finishes it from its stored progress; its first instance's chunks then do nothing.
#[tokio::test]
async fn a_lost_job_is_adopted_by_one_survivor_and_resumed_where_it_was() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let rule = Default::default();
    let one = Store::open_postgres(&db.url, 4, &rule).await.unwrap();
    let two = Store::open_postgres(&db.url, 4, &rule).await.unwrap();
    let three = Store::open_postgres(&db.url, 4, &rule).await.unwrap();
    one.create_automation(automation("proc_pg")).await.unwrap();
    const N: i64 = 12;
    exhausted(&one, &db, N).await;
    let later = automation("proc_pg");
    one.create_automation(later.clone()).await.unwrap();
    let recover = one
        .create_recover_job(UnixMs::from_ms(0), UnixMs::from_ms(2_000), Default::default(), 100)
        .await
        .unwrap();
    let until = UnixMs::now().plus_ms(60_000);
    let replay =
        one.create_replay_job(later.id.clone(), UnixMs::from_ms(0), until, 100).await.unwrap();
    let replay_id = replay.id;
    let (recover, replay) =
        (BackgroundJob::Recover(recover.id), BackgroundJob::Replay(replay_id.clone()));

    assert_eq!(one.requeue_chunk(recover.clone(), 3).await.unwrap(), 3);
    assert!(one.requeue_chunk(replay.clone(), 1).await.unwrap() > 0);
    assert_eq!(two.requeue_chunk(recover.clone(), 3).await.unwrap(), 0, "not its job");
    assert_eq!(two.requeue_chunk(replay.clone(), 1).await.unwrap(), 0, "not its job");
    assert!(two.unfinished_recover_jobs().await.unwrap().is_empty(), "their instance lives");

    let lost = "UPDATE recover_jobs SET run_by = gen_random_uuid() WHERE kind = 'recover'; \
                UPDATE recover_jobs SET run_by = NULL WHERE kind = 'replay'";
    admin(&db.url).await.batch_execute(lost).await.unwrap();
    // Both survivors' updates queue on the jobs' rows (held here): the second must find
    // them adopted, not lost.
    let mut holder = admin(&db.url).await;
    let hold = holder.transaction().await.unwrap();
    hold.execute("SELECT 1 FROM recover_jobs FOR UPDATE", &[]).await.unwrap();
    let (a, b) = (two.clone(), three.clone());
    let a = tokio::spawn(async move { a.unfinished_recover_jobs().await });
    let b = tokio::spawn(async move { b.unfinished_recover_jobs().await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    hold.commit().await.unwrap();
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert_eq!(a.len() + b.len(), 2, "each job adopted once: {a:?} {b:?}");
    assert!(a.iter().chain(&b).any(|j| *j == recover) && a.iter().chain(&b).any(|j| *j == replay));
    assert!(three.unfinished_recover_jobs().await.unwrap().is_empty(), "adopted: not lost");

    assert_eq!(one.requeue_chunk(recover.clone(), 3).await.unwrap(), 0, "adopted by another");
    assert_eq!(one.requeue_chunk(replay.clone(), 1).await.unwrap(), 0, "adopted by another");
    let (x, y) = tokio::join!(run(two.clone(), recover.clone()), run(three.clone(), recover));
    assert_eq!(x + y, N - 3, "the rest re-queued once, by its adopter");
    let (x, y) = tokio::join!(run(two.clone(), replay.clone()), run(three.clone(), replay));
    assert!(x + y > 0, "the replay resumed");
    assert_eq!(count(&db, "SELECT count(*) FROM recover_job_deliveries").await, N);
    let made = "SELECT count(*) FROM deliveries WHERE next_trigger = 'replay'";
    assert_eq!(count(&db, made).await, N, "each missing delivery made once");
    let job = two.replay_job(replay_id).await.unwrap();
    assert_eq!((job.created, job.ended.as_deref()), (N, Some("completed")));
    drop((one, two, three));
    db.drop_now().await;
}

/// A database at version 24 (no `run_by`) is upgraded; an unfinished job stored before it
/// names no instance, and the first instance to look for lost jobs adopts it, once.
#[tokio::test]
async fn a_job_stored_before_jobs_named_their_instance_is_adopted_after_the_upgrade() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let old = admin(&db.url).await;
    old.batch_execute(include_str!("../schema.sql")).await.unwrap();
    old.batch_execute(include_str!("../rate_starts.sql")).await.unwrap();
    old.batch_execute(
        "CREATE TABLE schema_versions (version integer PRIMARY KEY, applied_at bigint NOT NULL); \
         INSERT INTO schema_versions VALUES (24, 0)",
    )
    .await
    .unwrap();
    let id = RecoverJobId::new();
    old.execute(
        "INSERT INTO recover_jobs (id, since, until, total, requeued, capped, created_at) \
         VALUES ($1, 0, 1, 5, 0, false, 0)",
        &[&id],
    )
    .await
    .unwrap();
    let store = Store::open_postgres(&db.url, 2, &Default::default()).await.unwrap();
    let version = "SELECT max(version)::bigint FROM schema_versions";
    assert_eq!(count(&db, version).await, crate::store::pg::VERSION);
    assert_eq!(store.unfinished_recover_jobs().await.unwrap(), [BackgroundJob::Recover(id)]);
    assert!(store.unfinished_recover_jobs().await.unwrap().is_empty(), "adopted: not lost");
    drop((old, store));
    db.drop_now().await;
}
