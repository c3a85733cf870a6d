//! Fills a database with synthetic logs for `logs-query`, through the store's own write path.
//! Logs are spread 2 s apart from a fixed start, over 10 automations (round robin) and a mix
//! of statuses independent of the automation (70 % 200, 10 % 500, 10 % 404, 10 % none).

use std::path::Path;

use futures_util::{stream, StreamExt};
use hookrelay::config::StoreConfig;
use hookrelay::ids::{AutomationId, LogId};
use hookrelay::outbound::ErrorCode;
use hookrelay::redact::HeaderRedaction;
use hookrelay::store::{Automation, AutomationSettings, NewLog, Snapshot, Store, Trigger};
use hookrelay::time::UnixMs;

const START: UnixMs = UnixMs::from_ms(1_767_225_600_000); // 2026-01-01T00:00:00Z
const STEP_MS: i64 = 2_000;

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

/// Inserts `n` logs; returns the automation ids used.
pub async fn seed_logs(path: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    let store = Store::open(path, &StoreConfig::default(), &HeaderRedaction::default())?;
    let body = br#"{"invoice":12345,"note":"seeded"}"#.to_vec();
    let seed_automation = Automation {
        id: AutomationId::new(),
        settings: AutomationSettings {
            name: "seed".into(),
            processor_id: "proc_bench".into(),
            webhook_url: "http://127.0.0.1:9/hook".into(),
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
    };
    let (message_id, request_hash) =
        store.insert_bare_message(&seed_automation, "bench.seed", body).await?;
    let snapshot_hash = Snapshot::of(&seed_automation, &HeaderRedaction::default()).hash;
    let automations: Vec<AutomationId> = (0..10).map(automation_id).collect();
    let started = std::time::Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let status: u16 = match (i / 10) % 10 {
                0..=6 => 200,
                7 => 500,
                8 => 404,
                _ => 0,
            };
            let at = START.plus_ms(i as i64 * STEP_MS);
            let log = NewLog {
                delivery_id: None,
                message_id: message_id.clone(),
                automation_id: automations[i % 10].clone(),
                processor_id: "proc_bench".into(),
                attempt: 1,
                trigger: Trigger::Initial,
                rerun_of: None,
                webhook_url: format!("http://127.0.0.1:9/hook/{}", i % 10),
                request_headers: r#"{"content-type":"application/json"}"#.into(),
                request_body_hash: request_hash,
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
                snapshot_hash,
            };
            let (store, snapshot) =
                (store.clone(), Snapshot::of(&seed_automation, &HeaderRedaction::default()));
            async move { store.insert_log_as(log_id(i), log, snapshot).await }
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
    Ok(automations.into_iter().map(String::from).collect())
}
