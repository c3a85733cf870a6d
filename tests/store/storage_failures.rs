//! Storage failures are answered for what they are: a full disk is 507, a database locked
//! by another process is 503 `database_locked` (not "shutting down"); `/readyz` reports the
//! store not writable while writes fail (a small write that still fits changes nothing) and
//! ready again a few seconds after the last failure; nothing accepted is lost.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use serde_json::{json, Value};

use crate::common::{client, Receiver, Relay, FAST_RETRIES};

/// A small tmpfs mounted for one test (this machine's tests run as root), unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root (CI runs as root)");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.path("filler");
        let mut file = std::fs::File::create(&path).expect("create filler");
        let chunk = vec![0x5a_u8; 16 * 1024];
        while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
        let mut small = [0u8; 512];
        small.fill(1);
        while file.write_all(&small[..1]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

async fn readyz(relay: &Relay) -> (u16, Value) {
    let resp = client().get(relay.url("/readyz")).send().await.expect("readyz");
    (resp.status().as_u16(), resp.json().await.expect("json"))
}

async fn post(relay: &Relay, seq: usize) -> (u16, Value) {
    let payload = json!({"seq": seq, "pad": format!("{seq:0>4096}")});
    relay.post_json("/v1/messages", &json!({"processor_id": "proc_disk", "payload": payload})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_507_and_not_ready_then_recovers_without_losing_anything() {
    let disk = SmallDisk::mount(8);
    let receiver = Receiver::ok().await;
    let mut relay = Relay::start_with_database(&disk.path("hookrelay.db"), FAST_RETRIES);
    relay.create_automation("proc_disk", &receiver.url("/disk")).await;
    assert_eq!(readyz(&relay).await.0, 200);

    let filler = disk.fill();
    let mut accepted = Vec::new();
    let refusal = loop {
        let (status, body) = post(&relay, accepted.len()).await;
        match status {
            202 => accepted.push(body["id"].as_str().expect("id").to_string()),
            _ => break (status, body),
        }
        assert!(accepted.len() < 5000, "the full disk never refused a write");
    };
    assert_eq!(refusal.0, 507, "{}", refusal.1);
    assert_eq!(refusal.1["code"], "insufficient_storage", "{}", refusal.1);
    assert!(refusal.1["message"].as_str().unwrap_or("").contains("disk"), "{}", refusal.1);
    let (status, ready) = readyz(&relay).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["writable"], false, "{ready}");
    for seq in 0..5 {
        let (status, body) = post(&relay, 100_000 + seq).await;
        assert_eq!(status, 507, "still full: {body}");
        let (status, ready) = readyz(&relay).await;
        assert_eq!(status, 503, "not ready while writes fail: {ready}");
    }

    std::fs::remove_file(&filler).expect("free space");
    relay
        .wait_for(Duration::from_secs(10), "ready again", || async {
            (readyz(&relay).await.0 == 200).then_some(())
        })
        .await;
    let (status, body) = post(&relay, 200_000).await;
    assert_eq!(status, 202, "{body}");
    accepted.push(body["id"].as_str().expect("id").to_string());

    // Attempts whose outcome could not be written are sent again after a restart.
    relay.restart();
    relay
        .wait_for(Duration::from_secs(30), "every accepted message delivered", || async {
            let seen: std::collections::HashSet<String> = receiver
                .calls()
                .iter()
                .filter_map(|c| c.headers.get("webhook-id")?.to_str().ok().map(str::to_string))
                .collect();
            accepted.iter().all(|id| seen.contains(id)).then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_is_503_database_locked_then_recovers() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start_capturing_log(FAST_RETRIES, &[]);
    relay.create_automation("proc_locked", &receiver.url("/l")).await;
    let db_path: &Path = &relay.dir.path().join("hookrelay.db");
    let other = rusqlite::Connection::open(db_path).expect("open db");
    other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");

    let (status, body) = relay
        .post_json("/v1/messages", &json!({"processor_id": "proc_locked", "payload": {"n": 1}}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "database_locked", "{body}");
    assert!(!body["message"].as_str().unwrap_or("").contains("shutting down"), "{body}");
    let asked = std::time::Instant::now();
    let (status, ready) = readyz(&relay).await;
    assert_eq!((status, &ready["writable"]), (503, &json!(false)), "{ready}");
    assert!(asked.elapsed() < Duration::from_secs(1), "/readyz answers at once while locked");
    // The refusal is logged once, at WARN, as the README says; not again at ERROR.
    let refusals: Vec<String> = relay
        .log()
        .lines()
        .filter(|l| l.contains("database_locked") || l.contains("a write failed"))
        .map(str::to_string)
        .collect();
    assert!(!refusals.is_empty() && refusals.iter().all(|l| l.contains("WARN")), "{refusals:?}");

    other.execute_batch("ROLLBACK").expect("release the lock");
    relay
        .wait_for(Duration::from_secs(10), "ready again", || async {
            (readyz(&relay).await.0 == 200).then_some(())
        })
        .await;
    relay.send_message("proc_locked", json!({"n": 2})).await;
}

/// A receiver on 127.0.0.1 that stalls its first call for `stall`, answers every call 200,
/// and records the `webhook-id` of each call it has answered.
async fn stalling_receiver(stall: Duration) -> (String, Arc<Mutex<Vec<String>>>, Arc<Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/held", listener.local_addr().expect("addr"));
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let first_arrived = Arc::new(Notify::new());
    let (done, arrived) = (answered.clone(), first_arrived.clone());
    tokio::spawn(async move {
        let mut calls = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            calls += 1;
            let (done, arrived, first) = (done.clone(), arrived.clone(), calls == 1);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !String::from_utf8_lossy(&request).contains("\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request).to_lowercase();
                let id = head
                    .lines()
                    .find_map(|l| l.strip_prefix("webhook-id: ").map(str::to_string))
                    .unwrap_or_default();
                if first {
                    arrived.notify_one();
                    tokio::time::sleep(stall).await;
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                if socket.write_all(answer.as_bytes()).await.is_ok() {
                    done.lock().expect("lock").push(id);
                }
            });
        }
    });
    (url, answered, first_arrived)
}

/// A delivery held in memory behind its automation's call in flight (`claimed` 2) while the
/// writes that would start or release it are refused (a lock held by another process, past
/// the busy timeout) is sent once the database takes writes again, without a restart. Given
/// up after one try, it stayed held until the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_delivery_whose_release_was_refused_is_sent_once_writes_are_taken_again() {
    let (url, answered, first_arrived) = stalling_receiver(Duration::from_secs(2)).await;
    let relay = Relay::start_capturing_log(
        "[delivery]\nper_automation_concurrency = 1\npoll_interval_ms = 50\n\
         request_timeout_ms = 10000\n[store]\nbusy_timeout_ms = 500\n",
        &[],
    );
    relay.create_automation("proc_held", &url).await;
    let first = relay.send_message("proc_held", json!({"n": 1})).await;
    first_arrived.notified().await;
    let held = relay.send_message("proc_held", json!({"n": 2})).await;
    let held_id = held["id"].as_str().expect("id").to_string();

    let db_path: &Path = &relay.dir.path().join("hookrelay.db");
    let other = rusqlite::Connection::open(db_path).expect("open db");
    let claimed: i64 = other
        .query_row(
            "SELECT claimed FROM deliveries WHERE message_id = ?1",
            [hookrelay::ids::stored_value(&held_id)],
            |r| r.get(0),
        )
        .expect("the held delivery");
    assert_eq!(claimed, 2, "held in memory behind the call in flight");
    other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    // The first call ends; its outcome (tried again while the lease lasts), or the held
    // one's start and then its release, are refused (each after the busy timeout).
    let refused = [
        "recording an attempt was refused",
        "could not hand unsent deliveries back",
        "releasing unsent deliveries failed",
    ];
    relay
        .wait_for(Duration::from_secs(30), "the release to be refused", || async {
            let log = relay.log();
            refused.iter().any(|line| log.contains(line)).then_some(())
        })
        .await;
    other.execute_batch("ROLLBACK").expect("release the lock");

    relay
        .wait_for(Duration::from_secs(10), "the held message to be sent", || async {
            answered.lock().expect("lock").contains(&held_id).then_some(())
        })
        .await;
    assert!(answered
        .lock()
        .expect("lock")
        .contains(&first["id"].as_str().expect("id").to_string()));
}

/// A call the receiver answered whose outcome the database refuses for a while (a lock held
/// by another process, past the busy timeout) is recorded once writes are taken again: its
/// log shows the answer, and the receiver is not called a second time. Dropped, it had no
/// log and was sent again once its lease ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_whose_outcome_was_refused_is_logged_once_writes_are_taken_again() {
    let (url, answered, first_arrived) = stalling_receiver(Duration::from_secs(2)).await;
    let relay = Relay::start_capturing_log(
        "[delivery]\npoll_interval_ms = 50\nrequest_timeout_ms = 10000\n\
         [store]\nbusy_timeout_ms = 500\n",
        &[],
    );
    relay.create_automation("proc_refused", &url).await;
    let sent = relay.send_message("proc_refused", json!({"n": 1})).await;
    let id = sent["id"].as_str().expect("id").to_string();
    first_arrived.notified().await;

    let db_path: &Path = &relay.dir.path().join("hookrelay.db");
    let other = rusqlite::Connection::open(db_path).expect("open db");
    other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    relay
        .wait_for(Duration::from_secs(30), "the outcome to be refused", || async {
            relay.log().contains("recording an attempt was refused").then_some(())
        })
        .await;
    other.execute_batch("ROLLBACK").expect("release the lock");

    let logs = relay
        .wait_for(Duration::from_secs(15), "the answered call's log", || async {
            let logs: Vec<Value> =
                relay.all_logs("").await.into_iter().filter(|l| l["message_id"] == id).collect();
            (!logs.is_empty()).then_some(logs)
        })
        .await;
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["external_request_log"]["status_code"], 200, "{logs:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(*answered.lock().expect("lock"), [id], "called once");
}
