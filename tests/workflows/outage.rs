//! F10: a run whose final state is written while PostgreSQL is away. The write is tried
//! again until the database answers: the run then ends as it ended, with its completion
//! webhook, instead of staying `running` without one. Run with
//! `HOOKRELAY_TEST_BACKEND=postgres`; it stops a cluster, a `PrivateCluster` of its own, so no
//! other test's server goes away.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::common::instances::PrivateCluster;
use crate::common::postgres::selected;
use crate::common::{Receiver, Relay};
use crate::helpers::{slow_app, wait_calls, App, WAIT};
use crate::servers::SlowServer;

const KEY: &str = "app-slow-key-0123456789";
/// How long the run's one call takes: the database is stopped meanwhile.
const CALL: Duration = Duration::from_secs(4);
/// How long the database stays away after the call answered: the run's end is written and
/// refused several times (100 ms, 200 ms, 400 ms, … apart).
const AWAY_AFTER_THE_END: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ending_while_postgres_is_away_ends_with_its_webhook_once_it_is_back() {
    if selected().is_none() {
        eprintln!("SKIPPED: needs HOOKRELAY_TEST_BACKEND=postgres (it stops a PostgreSQL cluster)");
        return;
    }
    let cluster = tokio::task::block_in_place(PrivateCluster::start);
    let slow = SlowServer::start(CALL).await;
    let relay = Relay::start_with_database(
        Path::new(&cluster.url),
        &slow_app("slow", KEY, &slow.url("/s"), None),
    );
    let receiver = Receiver::ok().await;
    relay.create_automation("slow", &receiver.url("/done")).await;
    let api = App::new(&relay, KEY);
    let (status, body) =
        api.run(&json!({"inputs": {}, "user": "u-outage", "response_mode": "async"})).await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["workflow_run_id"].as_str().expect("id").to_string();
    relay
        .wait_for(WAIT, "the slow call", || async { (!slow.hits().is_empty()).then_some(()) })
        .await;

    tokio::task::block_in_place(|| cluster.stop());
    assert!(!slow.hits()[0].answered, "the database went away while the run's call ran");
    relay
        .wait_for(WAIT, "the call's answer", || async { slow.hits()[0].answered.then_some(()) })
        .await;
    tokio::time::sleep(AWAY_AFTER_THE_END).await;
    let (status, detail) = api.get(&format!("/v1/workflows/run/{run_id}")).await;
    assert_eq!(status, 503, "the database is still away: {detail}");
    assert_eq!(receiver.count(), 0, "no webhook without the database");
    tokio::task::block_in_place(|| cluster.start_again());

    let detail = api.wait_finished(&run_id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["outputs"], json!({"status": 200}), "{detail}");
    let calls = wait_calls(&relay, &receiver, 1).await;
    let metadata = &calls[0].1["metadata"];
    assert_eq!(metadata["workflow_run_id"], run_id.as_str(), "{metadata}");
    assert_eq!(metadata["status"], "succeeded", "{metadata}");
}
