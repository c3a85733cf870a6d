//! The rollup: buckets and percentiles, and the job's batches against the logs they count.

use super::*;
use crate::config::StoreConfig;
use crate::outbound::ErrorCode;
use crate::redact::HeaderRedaction;

const HTTP: &str = ErrorCode::HttpStatus.as_str();
const CONNECTION: &str = ErrorCode::Connection.as_str();
const DNS: &str = ErrorCode::Dns.as_str();

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("r.db"), &StoreConfig::default(), &HeaderRedaction::default())
        .expect("open")
}

/// Stores a log of `automation` under a new id, as the writer does: (status, ms, error).
async fn log(store: &Store, automation: &AutomationId, call: (u16, f64, Option<&str>)) {
    log_as(store, automation, call, LogId::new()).await;
}

/// Stores a log of `automation` under `id`: (status, ms, error).
async fn log_as(
    store: &Store,
    automation: &AutomationId,
    call: (u16, f64, Option<&str>),
    id: LogId,
) {
    let (automation, error) = (automation.clone(), call.2.map(str::to_string));
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO logs (id, message_id, automation_id, processor_id, attempt, trigger, \
                 webhook_url, request_headers, request_body_hash, request_at, response_at, \
                 status_code, response_headers, response_truncated, duration_ms, error_code, \
                 snapshot_hash) VALUES (?1, ?2, ?3, 'p', 1, 'initial', 'http://x', '{}', x'00', \
                 0, 0, ?4, '{}', 0, ?5, ?6, x'00')",
                params![id, crate::ids::MessageId::new(), automation, call.0, call.1, error],
            )?;
            Ok(())
        })
        .await
        .expect("insert log");
}

fn latency(counts: &[(usize, i64)]) -> Latency {
    let mut l = Latency::default();
    for &(bucket, n) in counts {
        l.counts[bucket] = n;
    }
    l
}

#[test]
fn a_duration_falls_in_the_first_bucket_whose_bound_holds_it() {
    assert_eq!(bucket_of(0.2), 0);
    assert_eq!(bucket_of(1.0), 0);
    assert_eq!(bucket_of(1.01), 1);
    assert_eq!(bucket_of(100.0), 11);
    assert_eq!(bucket_of(30_000.0), 25);
    assert_eq!(bucket_of(90_000.0), 26);
}

#[test]
fn percentiles_come_from_the_merged_buckets() {
    assert_eq!(Latency::default().percentile(0.5), None);
    // 98 calls ≤ 10 ms (bucket 5), 1 ≤ 500 ms (15), 1 above 30 s (26).
    let l = latency(&[(5, 98), (15, 1), (26, 1)]);
    assert_eq!(l.percentile(0.5), Some(LatencyBound::AtMost(10.0)));
    assert_eq!(l.percentile(0.98), Some(LatencyBound::AtMost(10.0)));
    assert_eq!(l.percentile(0.99), Some(LatencyBound::AtMost(500.0)));
    assert_eq!(l.percentile(1.0), Some(LatencyBound::Above(30_000.0)));
    // Rank ⌈p·n⌉: of 4 calls, p50 is the 2nd, in the lower bucket.
    let l = latency(&[(0, 2), (9, 2)]);
    assert_eq!(l.percentile(0.5), Some(LatencyBound::AtMost(1.0)));
    assert_eq!(l.percentile(0.51), Some(LatencyBound::AtMost(50.0)));
    // Merging two minutes' buckets is adding them.
    let mut merged = latency(&[(3, 1)]);
    for (a, b) in merged.counts.iter_mut().zip(latency(&[(20, 3)]).counts) {
        *a += b;
    }
    assert_eq!(merged.percentile(0.5), Some(LatencyBound::AtMost(3000.0)));
}

/// From no cursor, bounded batches count every log once; a batch with nothing new counts 0.
#[tokio::test]
async fn batches_catch_up_from_the_first_log_and_count_each_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let (good, bad) = (AutomationId::new(), AutomationId::new());
    for _ in 0..7 {
        log(&store, &good, (200, 12.0, None)).await;
    }
    log(&store, &bad, (500, 40.0, Some(HTTP))).await;
    log(&store, &bad, (0, 3.0, Some(CONNECTION))).await;
    let mut batches = Vec::new();
    loop {
        let n = store.roll_up_logs(4).await.expect("roll up");
        batches.push(n);
        if n < 4 {
            break;
        }
    }
    assert_eq!(batches, vec![4, 4, 1]);
    assert_eq!(store.roll_up_logs(4).await.expect("again"), 0);
    log(&store, &good, (204, 2500.0, None)).await;
    assert_eq!(store.roll_up_logs(4).await.expect("one more"), 1);

    let now = UnixMs::now();
    let o = store.overview(now, 10).await.expect("overview");
    let succeeded: i64 = o.minutes.iter().map(|m| m.succeeded).sum();
    let failed: i64 = o.minutes.iter().map(|m| m.failed).sum();
    assert_eq!((succeeded, failed), (8, 2));
    assert_eq!(o.latency_day.counts.iter().sum::<i64>(), 10);
    assert_eq!(o.latency_hour.percentile(0.5), Some(LatencyBound::AtMost(15.0)));
    assert_eq!(o.latency_hour.percentile(0.99), Some(LatencyBound::AtMost(3000.0)));
    assert_eq!(o.errors, vec![(CONNECTION.into(), 1), (HTTP.into(), 1)]);
    assert_eq!(o.failing.len(), 1);
    assert_eq!(o.failing[0].automation_id, bad);
    assert_eq!(o.failing[0].last_error_code.as_deref(), Some(CONNECTION));
    assert!(o.counted_until.is_some());

    let health = store.automation_health(vec![good.clone(), bad.clone()], now).await.expect("h");
    assert!(health[&good].succeeded > 0 && health[&good].failed == 0, "{:?}", health[&good]);
    assert_eq!(health[&good].last_status_code, Some(204));
    assert_eq!(health[&good].last_call_error, None);
    assert!(health[&bad].succeeded == 0 && health[&bad].failed > 0, "{:?}", health[&bad]);
    assert_eq!(health[&bad].last_status_code, Some(0));
    assert_eq!(health[&bad].last_call_error.as_deref(), Some(CONNECTION));
    store.close().await;
}

/// A database upgraded with months of logs: those older than the rollup keeps move its
/// cursor without a count, which retention would delete at once.
#[tokio::test]
async fn logs_older_than_the_rollup_keeps_are_passed_over_uncounted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let automation = AutomationId::new();
    let old = UnixMs::now().minus_ms(ROLLUP_KEEP_MS + 3_600_000).as_ms();
    for i in 0..5 {
        log_as(&store, &automation, (500, 9.0, Some(HTTP)), LogId::time_bound(old + i)).await;
    }
    log(&store, &automation, (200, 9.0, None)).await;
    assert_eq!(store.roll_up_logs(100).await.expect("roll up"), 6, "the cursor passes all");
    assert_eq!(store.roll_up_logs(100).await.expect("again"), 0);
    let rows: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) + coalesce(sum(failed), 0) FROM rollup_minutes",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .expect("count");
    assert_eq!(rows, 1, "one minute row, of the recent success, and no failure counted");
    let o = store.overview(UnixMs::now(), 10).await.expect("overview");
    assert_eq!(
        o.minutes
            .iter()
            .map(|m| (m.succeeded, m.failed))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        (1, 0)
    );
    store.close().await;
}

/// Retention deletes rollup rows by minute, and never touches the newer ones.
#[tokio::test]
async fn old_rollup_rows_are_deleted_in_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    store
        .write(|c| {
            for minute in 0..5i64 {
                c.execute(
                    "INSERT INTO rollup_minutes VALUES (?1, x'01', 1, 0, 200, NULL, NULL)",
                    [minute],
                )?;
                c.execute("INSERT INTO rollup_latency VALUES (?1, 3, 1)", [minute])?;
                c.execute("INSERT INTO rollup_errors VALUES (?1, ?2, 1)", params![minute, DNS])?;
            }
            Ok(())
        })
        .await
        .expect("rows");
    let before = UnixMs::from_ms(3 * MINUTE_MS);
    assert_eq!(store.delete_rollup_before(before, 2).await.expect("first"), 6);
    assert_eq!(store.delete_rollup_before(before, 2).await.expect("second"), 3);
    assert_eq!(store.delete_rollup_before(before, 2).await.expect("third"), 0);
    let left: i64 = store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM rollup_minutes", [], |r| r.get(0))?))
        .await
        .expect("count");
    assert_eq!(left, 2);
    store.close().await;
}

/// The health windows count every log of the automation once, whether the rollup has counted
/// it yet or not; once it has, from the rollup alone (the logs deleted, the counts stay).
#[tokio::test]
async fn health_windows_count_each_log_once_from_the_rollup_or_after_its_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let (a, other) = (AutomationId::new(), AutomationId::new());
    for call in [(200, 5.0, None), (503, 9.0, Some(HTTP)), (0, 2.0, Some(DNS)), (201, 4.0, None)] {
        log(&store, &a, call).await;
    }
    log(&store, &other, (500, 1.0, Some(HTTP))).await;
    let windows = |store: Store, a: AutomationId| async move {
        let now = UnixMs::now();
        store.read(move |c| super::super::health_windows::windows(c, &a, now)).await.expect("read")
    };
    let expect = |ws: Vec<super::super::health::HealthWindow>, stage: &str| {
        assert_eq!(ws.iter().map(|w| w.hours).collect::<Vec<_>>(), [1, 24], "{stage}");
        for w in ws {
            assert_eq!((w.total, w.succeeded, w.failed), (4, 2, 2), "{stage}: {w:?}");
            let classes: Vec<(&str, i64)> =
                w.status_classes.iter().map(|(k, v)| (*k, *v)).filter(|(_, v)| *v > 0).collect();
            assert_eq!(classes, [("2xx", 2), ("5xx", 1), ("no_response", 1)], "{stage}");
        }
    };
    expect(windows(store.clone(), a.clone()).await, "none rolled up");
    assert_eq!(store.roll_up_logs(2).await.expect("roll up"), 2);
    expect(windows(store.clone(), a.clone()).await, "half rolled up");
    assert_eq!(store.roll_up_logs(100).await.expect("roll up"), 3);
    expect(windows(store.clone(), a.clone()).await, "all rolled up");
    store.write(|c| Ok(c.execute("DELETE FROM logs", [])?)).await.expect("delete logs");
    expect(windows(store.clone(), a.clone()).await, "read from the rollup alone");
}
