//! Storage failures are answered for what they are: a full disk is 507, a database locked
//! by another process is 503 `database_locked` (not "shutting down"); `/readyz` reports the
//! store not writable while writes fail (a small write that still fits changes nothing) and
//! ready again a few seconds after the last failure; nothing accepted is lost.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
    let relay = Relay::start(FAST_RETRIES);
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

    other.execute_batch("ROLLBACK").expect("release the lock");
    relay
        .wait_for(Duration::from_secs(10), "ready again", || async {
            (readyz(&relay).await.0 == 200).then_some(())
        })
        .await;
    relay.send_message("proc_locked", json!({"n": 2})).await;
}
