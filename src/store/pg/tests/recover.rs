//! Recover jobs on PostgreSQL: two instances running chunks of one job at once re-queue each
//! delivery once (the job row is locked `FOR UPDATE SKIP LOCKED` by a chunk).

use super::delivery::{automation, intake, message};
use super::{admin, server, Fresh};
use crate::store::{BackgroundJob, RecoverFilter, Store};
use crate::time::UnixMs;

async fn count(db: &Fresh, sql: &str) -> i64 {
    admin(&db.url).await.query_one(sql, &[]).await.unwrap().get(0)
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
    for i in 0..N {
        one.ingest(message("proc_pg", &format!("{{\"n\":{i}}}"), None), intake(None, 0))
            .await
            .unwrap();
    }
    admin(&db.url)
        .await
        .batch_execute("UPDATE deliveries SET status = 'exhausted', updated_at = 1000")
        .await
        .unwrap();
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
