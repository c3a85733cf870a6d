//! Fills a database with synthetic logs for `logs-query` and `retention`, through the store's
//! own write path. Logs are spread 2 s apart from a given start, over 10 automations (round
//! robin) and a mix of statuses independent of the automation (70 % 200, 10 % 500, 10 % 404,
//! 10 % none). Each log delivered a message of its own, with a payload of its own (the bench's
//! payloads: 1 KB and unique unless `--same-payload`), so the database holds what real
//! traffic leaves: one message and one body blob per log.
//!
//! The store makes a message now (`Store::insert_bare_message`: a fresh time-sortable id,
//! `created_at` and its payload's `used_at` of the seeding time), whatever its log's time.
//! Retention judges messages by id and content by `used_at`, so such messages and payloads
//! are new however old their logs: [`Dates::backdated`] moves them to their log's time.

use std::path::Path;
use std::sync::Arc;

use futures_util::{stream, StreamExt};
use hookrelay::config::StoreConfig;
use hookrelay::ids::{AutomationId, LogId, MessageId};
use hookrelay::outbound::ErrorCode;
use hookrelay::redact::HeaderRedaction;
use hookrelay::store::{
    Automation, AutomationSettings, BodyHash, NewLog, Snapshot, Store, Trigger,
};
use hookrelay::time::UnixMs;

use crate::payloads::Payloads;

/// Time between two consecutive logs.
const STEP_MS: i64 = 2_000;
/// Automations the logs are spread over, round robin.
const AUTOMATIONS: usize = 10;

/// When the seeded rows are dated.
#[derive(Debug, Clone, Copy)]
pub struct Dates {
    /// Time of the first log; log `i` is `i × 2 s` later.
    pub start: UnixMs,
    /// Whether messages (id, `created_at`) and their payloads (`used_at`) take their log's
    /// time instead of the seeding time (see the module doc).
    pub backdated: bool,
}

impl Dates {
    /// `n` logs whose last one is about now (its messages and payloads made now).
    pub fn ending_now(n: usize) -> Self {
        Self { start: UnixMs::now().minus_ms(n as i64 * STEP_MS), backdated: false }
    }

    /// `n` logs, with their messages and payloads, whose last one is `age_ms` old.
    pub fn ending_ago(n: usize, age_ms: i64) -> Self {
        Self { start: UnixMs::now().minus_ms(age_ms + n as i64 * STEP_MS), backdated: true }
    }

    /// Log `i`'s time.
    fn at(&self, i: usize) -> UnixMs {
        self.start.plus_ms(i as i64 * STEP_MS)
    }

    /// Log `i`'s id: the smallest of its time, distinct since logs are `STEP_MS` apart.
    fn log_id(&self, i: usize) -> LogId {
        LogId::time_bound(self.at(i).as_ms())
    }

    /// The id of the log in the middle of `n`.
    pub fn middle_id(&self, n: usize) -> String {
        self.log_id(n / 2).into_string()
    }

    /// A window of 1 % of `n` logs around their middle, as RFC 3339 bounds.
    pub fn middle_time(&self, n: usize) -> (String, String) {
        let mid = self.at(n / 2);
        let half = (n / 200).max(50) as i64 * STEP_MS;
        (mid.minus_ms(half).rfc3339(), mid.plus_ms(half).rfc3339())
    }
}

/// Automation `k`'s id (distinct per `k`).
fn automation_id(k: usize) -> AutomationId {
    AutomationId::time_bound(k as i64)
}

/// Automation `k` as stored in its logs' snapshots: it calls `http://127.0.0.1:9/hook/{k}`.
fn automation(k: usize, created_at: UnixMs) -> Automation {
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
            ordering: hookrelay::store::DeliveryOrder::Parallel,
            rate_limit_per_sec: None,
        },
        secret: "whsec_c2VlZA==".into(),
        previous_secret: None,
        previous_secret_until: None,
        created_at,
        updated_at: created_at,
    }
}

/// Inserts `n` logs dated by `dates`, each of its own message carrying its own payload from
/// `payloads` (so the bodies table holds one blob per log, as after real traffic with unique
/// payloads); returns the automation ids used.
pub async fn seed_logs(
    path: &Path,
    n: usize,
    payloads: Payloads,
    dates: Dates,
) -> anyhow::Result<Vec<String>> {
    let store = Store::open(path, &StoreConfig::default(), &HeaderRedaction::default())?;
    let automations: Arc<Vec<(Automation, Snapshot)>> = Arc::new(
        (0..AUTOMATIONS)
            .map(|k| automation(k, dates.start))
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
            async move { seed_one(&store, &automations[i % AUTOMATIONS], i, payloads, dates).await }
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
    dates: Dates,
) -> anyhow::Result<()> {
    let at = dates.at(i);
    let (mut message_id, request_body_hash) = store
        .insert_bare_message(automation, "bench.seed", payloads.payload(i).into_bytes())
        .await?;
    if dates.backdated {
        message_id = backdate(store, message_id, request_body_hash, at).await?;
    }
    let status: u16 = match (i / 10) % 10 {
        0..=6 => 200,
        7 => 500,
        8 => 404,
        _ => 0,
    };
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
        request_headers_implied: false,
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
    store.insert_log_as(dates.log_id(i), log, snapshot.clone()).await?;
    Ok(())
}

/// Moves a message just made (nothing refers to it yet) and its payload to time `at`: the
/// message gets the smallest id of that time (distinct: logs are 2 s apart) and that
/// `created_at`, the payload that `used_at`. No store call makes a message in the past, so
/// this rewrites the row through [`Store::write`]; returns the new id.
async fn backdate(
    store: &Store,
    id: MessageId,
    payload: BodyHash,
    at: UnixMs,
) -> anyhow::Result<MessageId> {
    let backdated = MessageId::time_bound(at.as_ms());
    let written = backdated.clone();
    store
        .write(move |c| {
            c.execute(
                "UPDATE messages SET id = ?1, created_at = ?2 WHERE id = ?3",
                rusqlite::params![written, at, id],
            )?;
            c.execute(
                "UPDATE bodies SET used_at = ?1 WHERE hash = ?2",
                rusqlite::params![at, &payload[..]],
            )?;
            Ok(())
        })
        .await?;
    Ok(backdated)
}
