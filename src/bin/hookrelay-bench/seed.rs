//! Fills a database with synthetic logs for `logs-query`, through the store's own write path.
//! Logs are spread 2 s apart from a fixed start, over 10 automations (round robin) and a mix
//! of statuses independent of the automation (70 % 200, 10 % 500, 10 % 404, 10 % none).
//! Each log delivered a message of its own, with a payload of its own (the bench's payloads:
//! 1 KB and unique unless `--same-payload`), so the database holds what real traffic leaves:
//! one message and one body blob per log.

use std::path::Path;
use std::sync::Arc;

use futures_util::{stream, StreamExt};
use hookrelay::config::StoreConfig;
use hookrelay::ids::{AutomationId, LogId};
use hookrelay::outbound::ErrorCode;
use hookrelay::redact::HeaderRedaction;
use hookrelay::store::{Automation, AutomationSettings, NewLog, Snapshot, Store, Trigger};
use hookrelay::time::UnixMs;

use crate::payloads::Payloads;

const START: UnixMs = UnixMs::from_ms(1_767_225_600_000); // 2026-01-01T00:00:00Z
const STEP_MS: i64 = 2_000;
/// Automations the logs are spread over, round robin.
const AUTOMATIONS: usize = 10;

/// Log `i`'s id: the smallest of its time, distinct since logs are `STEP_MS` apart.
fn log_id(i: usize) -> LogId {
    LogId::time_bound(START.plus_ms(i as i64 * STEP_MS).as_ms())
}

/// Automation `k`'s id (distinct per `k`).
fn automation_id(k: usize) -> AutomationId {
    AutomationId::time_bound(k as i64)
}

/// The id of the log in the middle of the table.
pub fn middle_id(n: usize) -> String {
    log_id(n / 2).into_string()
}

/// A window of 1 % of the table around its middle, as RFC 3339 bounds.
pub fn middle_time(n: usize) -> (String, String) {
    let mid = START.plus_ms((n / 2) as i64 * STEP_MS);
    let half = (n / 200).max(50) as i64 * STEP_MS;
    (mid.minus_ms(half).rfc3339(), mid.plus_ms(half).rfc3339())
}

/// Automation `k` as stored in its logs' snapshots: it calls `http://127.0.0.1:9/hook/{k}`.
fn automation(k: usize) -> Automation {
    Automation {
        id: automation_id(k),
        settings: AutomationSettings {
            name: format!("seed {k}"),
            processor_id: "proc_bench".into(),
            webhook_url: format!("http://127.0.0.1:9/hook/{k}"),
            webhook_headers: Default::default(),
            need_validation: false,
            default_language: "en".into(),
            enabled: true,
            event_types: None,
        },
        secret: "whsec_c2VlZA==".into(),
        previous_secret: None,
        previous_secret_until: None,
        created_at: START,
        updated_at: START,
    }
}

/// Inserts `n` logs, each of its own message carrying its own payload from `payloads` (so
/// the bodies table holds one blob per log, as after real traffic with unique payloads);
/// returns the automation ids used.
pub async fn seed_logs(path: &Path, n: usize, payloads: Payloads) -> anyhow::Result<Vec<String>> {
    let store = Store::open(path, &StoreConfig::default(), &HeaderRedaction::default())?;
    let automations: Arc<Vec<(Automation, Snapshot)>> = Arc::new(
        (0..AUTOMATIONS)
            .map(automation)
            .map(|a| {
                let snapshot = Snapshot::of(&a, &HeaderRedaction::default());
                (a, snapshot)
            })
            .collect(),
    );
    let started = std::time::Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let (store, automations) = (store.clone(), automations.clone());
            async move { seed_one(&store, &automations[i % AUTOMATIONS], i, payloads).await }
        })
        .buffer_unordered(512)
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("seed: {e}");
            }
        })
        .await;
    store.close().await;
    eprintln!("seeded {n} logs in {:.1} s", started.elapsed().as_secs_f64());
    Ok(automations.iter().map(|(a, _)| String::from(a.id.clone())).collect())
}

/// Stores log `i` and the message it delivered. The log's request body is its message's
/// payload, referred to by the payload's hash, as the relay records a delivery.
async fn seed_one(
    store: &Store,
    (automation, snapshot): &(Automation, Snapshot),
    i: usize,
    payloads: Payloads,
) -> anyhow::Result<()> {
    let (message_id, request_body_hash) = store
        .insert_bare_message(automation, "bench.seed", payloads.payload(i).into_bytes())
        .await?;
    let status: u16 = match (i / 10) % 10 {
        0..=6 => 200,
        7 => 500,
        8 => 404,
        _ => 0,
    };
    let at = START.plus_ms(i as i64 * STEP_MS);
    let log = NewLog {
        delivery_id: None,
        message_id,
        automation_id: automation.id.clone(),
        processor_id: "proc_bench".into(),
        attempt: 1,
        trigger: Trigger::Initial,
        rerun_of: None,
        webhook_url: automation.settings.webhook_url.clone(),
        request_headers: r#"{"content-type":"application/json"}"#.into(),
        request_body_hash,
        request_at: at,
        response_at: at.plus_ms(12),
        status_code: status,
        response_headers: r#"{"content-type":"application/json"}"#.into(),
        response_body: (status != 0).then(|| br#"{"ok":true}"#.to_vec()),
        response_truncated: false,
        duration_ms: 12.0,
        error_code: (status != 200).then_some(if status == 0 {
            ErrorCode::Timeout
        } else {
            ErrorCode::HttpStatus
        }),
        error_message: None,
        snapshot_hash: snapshot.hash,
    };
    store.insert_log_as(log_id(i), log, snapshot.clone()).await?;
    Ok(())
}
