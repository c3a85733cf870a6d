//! The run supervisor contains a panic: driven with a run future that panics, the run ends
//! `failed` with [`RunError::Panicked`], its completion message and delivery are committed, its task
//! is forgotten, and `workflow_finished` (status failed) is emitted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::watch;

use super::Workflows;
use crate::config::Config;
use crate::delivery::Dispatcher;
use crate::metrics::Metrics;
use crate::outbound::Sender;
use crate::store::{Automation, RunRecord, RunStatus, Store};
use crate::time::UnixMs;
use crate::workflow::error::{NodeError, RunError};
use crate::workflow::events::{event_stream, Events};
use crate::workflow::runner::{RunOutcome, RunSpec};

const APP: &str = r#"
[[apps]]
id = "panicky"
api_keys = ["app-panicky-key-0123456789"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "end"
type = "end"
outputs = []
[[apps.edges]]
source = "start"
target = "end"
"#;

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    workflows: Arc<Workflows>,
    automation: crate::ids::AutomationId,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::from_toml(APP).expect("config");
    let store =
        Store::open(&dir.path().join("runs.db"), &config.store, &config.security.redact_headers)
            .expect("store");
    let sender = Arc::new(Sender::new(&config.delivery, &config.security).expect("sender"));
    let dispatcher = Dispatcher::new(
        store.clone(),
        sender.clone(),
        config.delivery.clone(),
        Arc::new(Metrics::default()),
    );
    let apps = crate::workflow::definitions::load(APP).expect("apps");
    let relay = crate::relay::Relay::new(store.clone(), dispatcher);
    let workflows = Workflows::new(&apps, store.clone(), sender, relay, 1024 * 1024);
    let now = UnixMs::now();
    let automation = Automation {
        id: crate::ids::AutomationId::new(),
        settings: crate::store::AutomationSettings {
            name: "runs".into(),
            processor_id: "panicky".into(),
            webhook_url: "http://192.0.2.1/runs".into(),
            webhook_headers: BTreeMap::new(),
            need_validation: false,
            default_language: "en".into(),
            enabled: true,
            event_types: None,
            ordering: crate::store::DeliveryOrder::Parallel,
            rate_limit_per_sec: None,
        },
        secret: crate::delivery::signing::new_secret(),
        previous_secret: None,
        previous_secret_until: None,
        created_at: now,
        updated_at: now,
    };
    let automation = store.create_automation(automation).await.expect("automation").id;
    World { _dir: dir, store, workflows, automation }
}

/// A stored `running` run of the app, as `Workflows::start` leaves it.
async fn running_run(w: &World) -> RunSpec {
    let app = w.workflows.app_for_key("app-panicky-key-0123456789").expect("app");
    let record = RunRecord {
        id: uuid::Uuid::now_v7().to_string(),
        app_id: app.id.clone(),
        task_id: uuid::Uuid::now_v7().to_string(),
        status: RunStatus::Running,
        inputs: Map::new(),
        outputs: None,
        error: None,
        user: "ada@example.com".into(),
        files: Vec::new(),
        elapsed_time: 0.0,
        total_tokens: 0,
        total_steps: 0,
        created_at: UnixMs::now(),
        finished_at: None,
    };
    let (record, is_new) = w.store.create_run(record, None).await.expect("run");
    assert!(is_new);
    let (stop, _) = watch::channel(false);
    w.workflows.running.lock().expect("lock").insert(record.task_id.clone(), stop);
    RunSpec {
        app,
        run_id: record.id,
        task_id: record.task_id,
        inputs: record.inputs,
        user: record.user,
        files: record.files,
        created_at: record.created_at,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_panics_ends_failed_with_its_webhook() {
    let w = world().await;
    let spec = running_run(&w).await;
    let (tx, mut rx) = event_stream(1024 * 1024);
    let events = Events::new(&spec, Some(tx));
    let panics = async {
        tokio::task::yield_now().await;
        if spec.user.contains('@') {
            panic!("a node went wrong");
        }
        unreachable!("the run panics first")
    };
    let outcome: RunOutcome = w.workflows.supervise(&spec, &events, panics).await;
    let panicked = RunError::Panicked.to_string();

    assert_eq!(outcome.status.as_str(), "failed");
    assert_eq!(outcome.error.as_deref(), Some(panicked.as_str()));
    assert!(outcome.outputs.is_none());

    // Recorded final, not running.
    let stored = w.store.run(spec.run_id.clone()).await.expect("stored run");
    assert_eq!(stored.status, RunStatus::Failed);
    assert_eq!(stored.error.as_deref(), Some(panicked.as_str()));
    assert!(stored.finished_at.is_some());
    assert!(w.store.running_runs().await.expect("running").is_empty());
    assert!(!w.workflows.stop(&spec.task_id), "the task is still listed as running");

    // Its completion webhook is committed: one delivery to the app's automation.
    let automation = w.automation.clone();
    let committed: Vec<(String, Option<String>, String)> = w
        .store
        .read(move |c| {
            let mut q = c.prepare(
                "SELECT m.processor_id, m.event_type, d.status FROM deliveries d \
                 JOIN messages m ON m.id = d.message_id WHERE d.automation_id = ?1",
            )?;
            let rows = q.query_map([automation], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .expect("deliveries");
    assert_eq!(committed.len(), 1, "{committed:?}");
    assert_eq!(committed[0].0, "panicky");
    assert_eq!(committed[0].1.as_deref(), Some("workflow_run.failed"));

    // A streaming client gets workflow_finished, failed.
    let frame = rx.recv().await.expect("an event");
    let finished: Value = serde_json::from_str(&frame.json).expect("event JSON");
    assert!(frame.last, "workflow_finished ends the stream");
    assert_eq!(finished["event"], "workflow_finished", "{finished}");
    assert_eq!(finished["data"]["status"], "failed", "{finished}");
    assert_eq!(finished["data"]["error"], panicked.as_str(), "{finished}");
    w.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ends_is_recorded_as_it_ended() {
    let w = world().await;
    let spec = running_run(&w).await;
    let events = Events::new(&spec, None);
    let boom = RunError::Node { node: "t".into(), source: NodeError::Template("boom".into()) };
    let mut failed = super::failed_now(&spec, &boom);
    failed.total_steps = 2;
    let expected = failed.clone();
    let outcome = w.workflows.supervise(&spec, &events, async move { failed }).await;
    assert_eq!(outcome.error, expected.error);
    let stored = w.store.run(spec.run_id.clone()).await.expect("stored run");
    assert_eq!((stored.status.as_str(), stored.total_steps), ("failed", 2));
    assert_eq!(stored.error.as_deref(), Some("node t: template failed: boom"));
    w.store.close().await;
}
