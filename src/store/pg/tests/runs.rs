//! Workflow runs on PostgreSQL: created (an idempotency key used at once from two
//! connections makes one run), read by id and by task, finished by `pg::runs::finish` (once),
//! listed by Dify's filters and paged by the console's cursors, and the runs left running by
//! an instance that is gone told from those still running elsewhere.

use serde_json::{json, Map, Value};

use super::store::open;
use super::{admin, server, Fresh};
use crate::store::pg::{runs, Pg};
use crate::store::{
    Conflict, NodeRun, NodeStatus, RunCursor, RunFilter, RunOutcome, RunPageFilter, RunRecord,
    RunStatus, StoreError,
};
use crate::time::UnixMs;

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

pub(super) fn record(app: &str, user: &str, created_at: i64) -> RunRecord {
    RunRecord {
        id: uuid::Uuid::now_v7().to_string(),
        app_id: app.into(),
        task_id: uuid::Uuid::now_v7().to_string(),
        status: RunStatus::Running,
        inputs: object(json!({"query": format!("Bonjour {user}"), "n": 1})),
        outputs: None,
        error: None,
        user: user.into(),
        files: vec![json!({"type": "image"})],
        elapsed_time: 0.0,
        total_tokens: 0,
        total_steps: 0,
        created_at: UnixMs::from_ms(created_at),
        finished_at: None,
    }
}

pub(super) fn outcome(status: RunStatus) -> RunOutcome {
    RunOutcome {
        status,
        outputs: Some(object(json!({"answer": "Salut"}))),
        error: (status == RunStatus::Failed).then(|| "boom".into()),
        elapsed_time: 1.25,
        total_tokens: 42,
        prompt_tokens: 40,
        total_steps: 3,
        finished_at: UnixMs::from_ms(9_000),
        first_token_at: None,
        last_token_at: None,
        nodes: vec![NodeRun {
            node_id: "start".into(),
            node_type: "start".into(),
            title: "Start".into(),
            index: 1,
            status: NodeStatus::Succeeded,
            started_at: 9,
            started_at_ms: Some(9_000),
            elapsed_time: Some(0.5),
            error: None,
        }],
    }
}

/// Ends run `id` as `status` the way `finish_run` will on PostgreSQL (without the
/// completion message).
async fn finish(pg: &Pg, id: &str, status: RunStatus) -> Result<(), StoreError> {
    let client = pg.client().await.unwrap();
    let outcome = outcome(status);
    let nodes = serde_json::to_string(&outcome.nodes).unwrap();
    runs::finish(pg, &**client, id, &outcome, &nodes).await
}

#[tokio::test]
async fn runs_are_created_once_per_key_read_and_finished_once() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (a, b) = (open(&db).await, open(&db).await);
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();

    let first = record("app", "ann", 1_000);
    let (created, new) = a.create_run(first.clone(), None).await.unwrap();
    assert!(new);
    let read = b.run(first.id.clone()).await.unwrap();
    assert_eq!(
        (read.status, read.inputs.clone(), read.files.clone()),
        (RunStatus::Running, first.inputs.clone(), first.files.clone())
    );
    assert_eq!(
        (read.user.as_str(), read.created_at, read.finished_at),
        ("ann", created.created_at, None)
    );
    assert_eq!(b.run_by_task(first.task_id.clone()).await.unwrap().id, first.id);
    assert!(b.run_nodes(first.id.clone()).await.unwrap().is_empty());
    for err in [
        b.run("nope".into()).await.unwrap_err(),
        b.run_by_task("nope".into()).await.unwrap_err(),
        b.run_nodes("nope".into()).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    }

    // One key from two connections at once: one run, which both answers name.
    for i in 0..5 {
        let key = format!("key-{i}");
        let (x, y) = (record("app", "ann", 2_000 + i), record("app", "ann", 2_000 + i));
        let (x, y) = tokio::join!(a.create_run(x, Some(key.clone())), b.create_run(y, Some(key)));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.0.id, y.0.id, "one run per key");
        assert!(x.1 != y.1, "one created, the other found");
    }
    let (again, new) =
        a.create_run(record("app", "ann", 3_000), Some("key-0".into())).await.unwrap();
    assert!(!new);
    assert_eq!(again.created_at, UnixMs::from_ms(2_000));
    let (_, new) = a.create_run(record("other", "ann", 3_000), Some("key-0".into())).await.unwrap();
    assert!(new, "a key is per app");

    finish(&pg, &first.id, RunStatus::Succeeded).await.unwrap();
    let err = finish(&pg, &first.id, RunStatus::Failed).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(Conflict::RunNotRunning, _)), "{err}");
    let done = a.run(first.id.clone()).await.unwrap();
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(done.outputs, Some(object(json!({"answer": "Salut"}))));
    assert_eq!((done.elapsed_time, done.total_tokens, done.total_steps), (1.25, 42, 3));
    assert_eq!(done.finished_at, Some(UnixMs::from_ms(9_000)));
    assert_eq!(a.run_nodes(first.id.clone()).await.unwrap(), outcome(RunStatus::Succeeded).nodes);
    drop((a, b, pg));
    db.drop_now().await;
}

#[tokio::test]
async fn runs_are_listed_by_filter_and_paged_by_cursor() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();
    let mut made = Vec::new();
    for (i, user) in ["ann", "bob", "ann", "cy_1", "ann"].iter().enumerate() {
        let run = record("app", user, 1_000 * (i as i64 + 1));
        store.create_run(run.clone(), None).await.unwrap();
        made.push(run);
    }
    store.create_run(record("other", "ann", 500), None).await.unwrap();
    finish(&pg, &made[1].id, RunStatus::Failed).await.unwrap();

    let list = |filter: RunFilter, page, limit| store.list_runs("app".into(), filter, page, limit);
    let ids = |runs: &[RunRecord]| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    let (runs, total) = list(RunFilter::default(), 1, 2).await.unwrap();
    assert_eq!((ids(&runs), total), (vec![made[4].id.clone(), made[3].id.clone()], 5));
    let (runs, _) = list(RunFilter::default(), 3, 2).await.unwrap();
    assert_eq!(ids(&runs), [made[0].id.clone()]);
    let by_user = RunFilter { user: Some("ann".into()), ..Default::default() };
    assert_eq!(list(by_user, 1, 10).await.unwrap().1, 3);
    let failed = RunFilter { status: Some(RunStatus::Failed), ..Default::default() };
    assert_eq!(ids(&list(failed, 1, 10).await.unwrap().0), [made[1].id.clone()]);
    let window = RunFilter {
        created_after: Some(UnixMs::from_ms(1_000)),
        created_before: Some(UnixMs::from_ms(4_000)),
        ..Default::default()
    };
    assert_eq!(list(window, 1, 10).await.unwrap().1, 2);
    // Case-insensitive, in inputs, outputs or user; `_` is a character, not a wildcard.
    let keyword = |k: &str| RunFilter { keyword: Some(k.into()), ..Default::default() };
    assert_eq!(list(keyword("BONJOUR BOB"), 1, 10).await.unwrap().1, 1);
    assert_eq!(list(keyword("salut"), 1, 10).await.unwrap().1, 1, "the failed run's outputs");
    assert_eq!(list(keyword("cy_"), 1, 10).await.unwrap().1, 1);
    assert_eq!(list(keyword("y_1"), 1, 10).await.unwrap().1, 1);
    assert_eq!(list(keyword("a_n"), 1, 10).await.unwrap().1, 0);

    // The console's pages, one app or all, newest first; back again from the last page.
    let page = |app: Option<&str>, status, cursor| {
        let filter = RunPageFilter { app_id: app.map(str::to_string), status };
        store.run_page(filter, cursor, 2)
    };
    let mut seen = Vec::new();
    let mut cursor = RunCursor::Newest;
    loop {
        let p = page(Some("app"), None, cursor).await.unwrap();
        seen.extend(ids(&p.items));
        match p.after {
            Some(after) => cursor = RunCursor::After(after),
            None => {
                let back = page(Some("app"), None, RunCursor::Before(p.items[0].id.clone()))
                    .await
                    .unwrap();
                assert_eq!(ids(&back.items), [made[2].id.clone(), made[1].id.clone()]);
                assert_eq!(back.before, Some(made[2].id.clone()));
                assert_eq!(back.after, Some(made[1].id.clone()));
                break;
            }
        }
    }
    assert_eq!(seen, made.iter().rev().map(|r| r.id.clone()).collect::<Vec<_>>());
    let all = page(None, None, RunCursor::Newest).await.unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.before.is_none() && all.after.is_some());
    let failed = page(None, Some(RunStatus::Failed), RunCursor::Newest).await.unwrap();
    assert_eq!((ids(&failed.items), failed.after), (vec![made[1].id.clone()], None));
    let unknown = page(Some("app"), None, RunCursor::After("bogus".into())).await.unwrap();
    assert!(unknown.items.is_empty(), "a cursor that is no run lists nothing");
    drop((store, pg));
    db.drop_now().await;
}

#[tokio::test]
async fn only_the_runs_of_an_instance_that_is_gone_are_left_running() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();
    let [live, gone, unnamed, ended] =
        ["live", "gone", "unnamed", "ended"].map(|u| record("app", u, 1_000));
    for run in [&live, &gone, &unnamed, &ended] {
        store.create_run(run.clone(), None).await.unwrap();
    }
    finish(&pg, &ended.id, RunStatus::Succeeded).await.unwrap();
    let admin = admin(&db.url).await;
    let instance = uuid::Uuid::now_v7();
    admin
        .batch_execute(&format!(
            "INSERT INTO instances (id, started_at, heartbeat_at, host) VALUES ('{instance}', 1, 1, 'h'); \
             UPDATE workflow_runs SET run_by = '{instance}' WHERE id = '{}'; \
             UPDATE workflow_runs SET run_by = gen_random_uuid() WHERE id = '{}'; \
             UPDATE workflow_runs SET run_by = NULL WHERE id = '{}'",
            live.id, gone.id, unnamed.id
        ))
        .await
        .unwrap();
    let left = store.running_runs().await.unwrap();
    assert_eq!(left.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [gone.id.as_str()]);
    // Finishing clears run_by (the schema's CHECK would refuse an ended run naming one).
    finish(&pg, &live.id, RunStatus::Stopped).await.unwrap();
    let run_by: Option<String> = admin
        .query_one("SELECT run_by::text FROM workflow_runs WHERE id = $1", &[&live.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(run_by, None);
    drop((store, pg));
    db.drop_now().await;
}
