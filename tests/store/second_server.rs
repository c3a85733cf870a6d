//! One server per database: a second `hookrelay serve` on the same file refuses to start,
//! naming the file and the process holding it; after that process dies (even by kill -9),
//! a server starts again on it.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Relay, FAST_RETRIES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_database_refuses_to_start() {
    let mut relay = Relay::start(FAST_RETRIES);
    let db = relay.dir.path().join("hookrelay.db");
    let second = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .arg("serve")
        .arg("--config")
        .arg(&relay.config)
        .env_remove("HOOKRELAY_DATABASE")
        .env_remove("HOOKRELAY_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a second server");
    let mut second = second;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while second.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second server started on the same database and kept running");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = second.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the second server started: {stderr}");
    assert!(stderr.contains(&db.display().to_string()), "names the database: {stderr}");
    let pid = relay.pid().expect("running");
    assert!(stderr.contains(&format!("pid {pid}")), "names the holder: {stderr}");
    relay.get_json("/v1/processors/automations/endpoints").await;

    relay.restart();
    tokio::time::sleep(Duration::from_millis(100)).await;
    relay.get_json("/v1/processors/automations/endpoints").await;
}
