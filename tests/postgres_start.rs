//! `hookrelay serve` on PostgreSQL (issue 15): a `postgres://` `database` starts the relay on
//! it, two instances share one database (no SQLite lock file refuses the second), and bad
//! input exits non-zero naming the problem without ever printing the password: a malformed
//! URL, an unreachable server, a wrong password, a database of a newer schema.
//!
//! The tests that need a server use the one `HOOKRELAY_TEST_DATABASE` names (`source
//! .ci/postgres.sh`); without it they are skipped, saying so, except under `CI=true`, where
//! they fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use hookrelay_testkit::postgres::{required_server as server, FreshDatabase};
use tokio_postgres::NoTls;

const KEY: &str = "pg-start-key-0123456789";

fn command(database: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    cmd.arg("serve")
        .env("HOOKRELAY_DATABASE", database)
        .env("HOOKRELAY_LISTEN", "127.0.0.1:0")
        .env("HOOKRELAY_API_KEYS", KEY)
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs `serve` on `database` until it exits (it must: the input is bad).
fn serve_failing(database: &str) -> (Output, String) {
    let out = command(database).stdin(Stdio::null()).output().expect("run hookrelay");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "exits non-zero: {text}");
    (out, text)
}

/// A relay process, killed when dropped (also when a test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on `database`; returns the process and its base URL.
fn serve(database: &str, cwd: &std::path::Path) -> (Running, String) {
    let mut child =
        command(database).current_dir(cwd).stdout(Stdio::piped()).spawn().expect("spawn hookrelay");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("hookrelay exited before listening").expect("read");
        if let Some(url) = line.strip_prefix("hookrelay listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Running(child), base)
}

/// The password of a `postgres://user:password@host/db` URL.
fn password(url: &str) -> &str {
    let (_, rest) = url.split_once("://").expect("a URL");
    let (credentials, _) = rest.split_once('@').expect("user:password@host");
    credentials.split_once(':').map_or("", |(_, password)| password)
}

fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (_, host) = rest.split_once('@').expect("user:password@host");
    format!("{scheme}://postgres:{password}@{host}")
}

#[test]
fn a_malformed_url_is_a_configuration_error_without_the_password() {
    let (out, text) = serve_failing("postgres://u:hunter2-Secret@h:notaport/db");
    assert_eq!(out.status.code(), Some(2), "a configuration error: {text}");
    assert!(text.contains("database"), "names the setting: {text}");
    assert!(text.contains("not a valid PostgreSQL connection string"), "{text}");
    assert!(!text.contains("hunter2-Secret"), "{text}");
}

#[test]
fn an_unreachable_server_is_named_without_the_password() {
    // A port of 127.0.0.1 nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_, text) = serve_failing(&format!(
        "postgresql://relay:pw-Secret-9@127.0.0.1:{port}/hooks?connect_timeout=2"
    ));
    assert!(text.contains(&format!("relay@127.0.0.1:{port}/hooks")), "names the target: {text}");
    assert!(text.contains("cannot open the PostgreSQL database"), "{text}");
    assert!(!text.contains("pw-Secret-9"), "{text}");
}

#[test]
fn a_wrong_password_is_named_without_the_password() {
    let Some(server) = server() else { return };
    let (_, text) = serve_failing(&with_password(&server, "not-the-Secret-42"));
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("not-the-Secret-42"), "{text}");
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let Some(server) = server() else { return };
    let db = FreshDatabase::create(&server);
    let dir = tempfile::tempdir().expect("tempdir");
    drop(serve(&db.url, dir.path()));
    let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let newer = hookrelay::store::pg::VERSION + 1;
    client
        .execute("INSERT INTO schema_versions VALUES ($1::bigint::integer, 0)", &[&newer])
        .await
        .expect("a newer version");
    drop(client);
    let (_, text) = serve_failing(&db.url);
    assert!(text.contains(&format!("schema version {newer} is newer")), "{text}");
    assert!(!text.contains(password(&server)), "{text}");
}

/// Two instances on one database both start and both serve what either wrote; neither makes
/// an SQLite file or lock file.
#[tokio::test]
async fn two_instances_share_one_database() {
    let Some(server) = server() else { return };
    let db = FreshDatabase::create(&server);
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, base_a) = serve(&db.url, dir.path());
    let (b, base_b) = serve(&db.url, dir.path());
    let http = hookrelay_testkit::client();
    for base in [&base_a, &base_b] {
        let ready = http.get(format!("{base}/readyz")).send().await.expect("readyz");
        assert_eq!(ready.status(), 200, "{base} is ready");
    }
    let endpoints = "/v1/processors/automations/endpoints";
    let created: serde_json::Value = http
        .post(format!("{base_a}{endpoints}"))
        .header("Api-Key", KEY)
        .json(&serde_json::json!({
            "name": "shared", "processor_id": "proc_pg", "webhook_url": "https://example.com/h"
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("an id");
    let seen = http
        .get(format!("{base_b}{endpoints}/{id}"))
        .header("Api-Key", KEY)
        .send()
        .await
        .expect("get");
    assert_eq!(seen.status(), 200, "the other instance reads it");
    let seen: serde_json::Value = seen.json().await.expect("json");
    assert_eq!(seen["name"], "shared");
    let files: Vec<_> = std::fs::read_dir(dir.path()).expect("read_dir").collect();
    assert!(files.is_empty(), "no SQLite file or lock file: {files:?}");
    drop((a, b));
}

/// The database going away while the relay runs: requests answer 503 `unavailable` and
/// `/readyz` says the database is not ready; the process stays up.
#[tokio::test]
async fn a_database_gone_while_running_answers_503() {
    let Some(server) = server() else { return };
    let db = FreshDatabase::create(&server);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut relay, base) = serve(&db.url, dir.path());
    let http = hookrelay_testkit::client();
    let list = format!("{base}/v1/processors/automations/endpoints");
    let before = http.get(&list).header("Api-Key", KEY).send().await.expect("list");
    assert_eq!(before.status(), 200);

    let name = db.url.rsplit('/').next().expect("a database name").to_string();
    let (client, connection) = tokio_postgres::connect(&server, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop");

    let after = http.get(&list).header("Api-Key", KEY).send().await.expect("list");
    assert_eq!(after.status(), 503);
    let body: serde_json::Value = after.json().await.expect("json");
    assert_eq!(body["code"], "unavailable", "{body}");
    let ready = http.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(ready["database"], false, "{ready}");
    assert!(relay.0.try_wait().expect("try_wait").is_none(), "the relay is still running");
}

/// Two instances starting together on an empty database with no key configured: one of
/// them generates the admin key and prints it, and both accept it.
#[tokio::test]
async fn two_instances_starting_together_generate_one_admin_key() {
    let Some(server) = server() else { return };
    let db = FreshDatabase::create(&server);
    let dir = tempfile::tempdir().expect("tempdir");
    let start = || {
        let mut cmd = command(&db.url);
        cmd.env_remove("HOOKRELAY_API_KEYS").current_dir(dir.path()).stdout(Stdio::piped());
        let mut child = Running(cmd.spawn().expect("spawn hookrelay"));
        let stdout = child.0.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let (mut base, mut key) = (String::new(), None);
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            let mut announced = false;
            for line in lines.by_ref() {
                if announced {
                    key = Some(line.trim().to_string());
                }
                announced = line.starts_with("No API key configured");
                if let Some(url) = line.strip_prefix("hookrelay listening on ") {
                    base = url.trim().to_string();
                    break;
                }
            }
            std::thread::spawn(move || for _ in lines {});
            (child, base, key)
        })
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.join().expect("a"), b.join().expect("b"));
    let keys: Vec<&String> = [&a.2, &b.2].into_iter().flatten().collect();
    assert_eq!(keys.len(), 1, "one instance generates the key: {keys:?}");
    let http = hookrelay_testkit::client();
    for base in [&a.1, &b.1] {
        let r = http
            .get(format!("{base}/v1/processors/automations/endpoints"))
            .header("Api-Key", keys[0].as_str())
            .send()
            .await
            .expect("list");
        assert_eq!(r.status(), 200, "{base} accepts the generated key");
    }
}
