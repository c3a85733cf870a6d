//! Tests against a real PostgreSQL: the private cluster of `.ci/postgres.sh`, named by
//! `HOOKRELAY_TEST_DATABASE`. Each test makes a database of its own on that server and drops
//! it at the end. Without the variable they are skipped, saying so, except under `CI=true`,
//! where they fail: CI must never pass without having run them.

use tokio_postgres::NoTls;

use super::{is_postgres_url, Migrated, OrStore, Pg, PgError, VERSION};
use crate::store::StoreError;

mod bodies;
mod checks;
mod delivery;
mod fifo;
mod fifo_order;
mod finish_run;
mod health;
mod lease_expiry;
mod log_order;
mod operational;
mod ops;
mod rate_starts;
mod recover;
mod retention;
mod runs;
mod sheets;
mod store;

/// The server's URL, or None (after saying why) when these tests are skipped.
fn server() -> Option<String> {
    match std::env::var("HOOKRELAY_TEST_DATABASE") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "HOOKRELAY_TEST_DATABASE is unset under CI=true: the PostgreSQL tests are \
                 required in CI (start the server with `source .ci/postgres.sh`)"
            );
            eprintln!(
                "SKIPPED: HOOKRELAY_TEST_DATABASE is unset; `source .ci/postgres.sh` starts a \
                 private PostgreSQL and sets it"
            );
            None
        }
    }
}

/// A new, empty database on the test server, dropped by [`Fresh::drop_now`].
struct Fresh {
    server: String,
    name: String,
    url: String,
}

impl Fresh {
    async fn new(server: &str) -> Fresh {
        let name = format!("hr_test_{}", uuid::Uuid::now_v7().simple());
        admin(server).await.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let mut url = url::Url::parse(server).unwrap();
        url.set_path(&name);
        Fresh { server: server.to_string(), name, url: url.to_string() }
    }

    async fn drop_now(self) {
        admin(&self.server)
            .await
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

/// A plain connection (no pool, no TLS: the test server listens on 127.0.0.1 only).
async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[test]
fn the_postgres_schema_version_follows_the_sqlite_one() {
    assert_eq!(
        VERSION,
        crate::store::SCHEMA_VERSION,
        "a schema version changes both backends: add its step to src/store/pg/migrate.rs"
    );
}

#[test]
fn postgres_urls_are_told_from_sqlite_paths() {
    assert!(is_postgres_url("postgres://u:p@h/db"));
    assert!(is_postgres_url("postgresql://h/db"));
    assert!(!is_postgres_url("./hookrelay.db"));
    assert!(!is_postgres_url("/var/lib/postgres/hookrelay.db"));
}

#[tokio::test]
async fn the_schema_applies_on_an_empty_database() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, migrated) = Pg::open(&db.url, 2).await.unwrap();
    assert_eq!(migrated, Migrated::Applied { from: 0 });
    assert_eq!(pg.schema_version().await.unwrap(), VERSION);
    pg.check().await.unwrap();
    let tables: i64 = admin(&db.url)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN \
             ('automations', 'messages', 'deliveries', 'logs', 'bodies', 'sheet_rows', \
              'workflow_runs', 'rollup_classes', 'operational_automation', 'instances')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 10);
    let (_, again) = Pg::open(&db.url, 1).await.unwrap();
    assert_eq!(again, Migrated::Current, "a second open finds the schema current");
    drop(pg);
    db.drop_now().await;
}

#[tokio::test]
async fn two_opens_racing_apply_the_schema_once() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (a, b) = tokio::join!(Pg::open(&db.url, 1), Pg::open(&db.url, 1));
    let (a, b) = (a.unwrap(), b.unwrap());
    let applied = [a.1, b.1].iter().filter(|m| **m == Migrated::Applied { from: 0 }).count();
    assert_eq!(applied, 1, "one open applies the schema, the other finds it: {:?}", (a.1, b.1));
    let versions: i64 = admin(&db.url)
        .await
        .query_one("SELECT count(*) FROM schema_versions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
    drop((a, b));
    db.drop_now().await;
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    drop(Pg::open(&db.url, 1).await.unwrap());
    admin(&db.url)
        .await
        .execute("INSERT INTO schema_versions VALUES ($1::bigint::integer, 0)", &[&(VERSION + 1)])
        .await
        .unwrap();
    let err = Pg::open(&db.url, 1).await.unwrap_err();
    assert!(matches!(err, PgError::NewerSchema { found, .. } if found == VERSION + 1), "{err}");
    assert!(err.to_string().contains(&format!("schema version {}", VERSION + 1)), "{err}");
    let versions: Vec<i32> = admin(&db.url)
        .await
        .query("SELECT version FROM schema_versions ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [VERSION as i32, VERSION as i32 + 1], "nothing written");
    db.drop_now().await;
}

#[tokio::test]
async fn a_wrong_password_fails_without_showing_it() {
    let Some(server) = server() else { return };
    let mut url = url::Url::parse(&server).unwrap();
    url.set_password(Some("not-the-Secret-42")).unwrap();
    let err = Pg::open(url.as_str(), 1).await.unwrap_err().to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(err.contains("postgres@127.0.0.1:"), "names the target: {err}");
    assert!(!err.contains("not-the-Secret-42"), "{err}");
}

#[tokio::test]
async fn a_malformed_url_fails_without_showing_the_password() {
    let err = Pg::open("postgres://u:hunter2-Secret@h:notaport/db", 1).await.unwrap_err();
    assert!(matches!(err, PgError::Url(_)), "{err}");
    assert!(!err.to_string().contains("hunter2-Secret"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    // A port of 127.0.0.1 nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://u:pw-Secret@127.0.0.1:{port}/db?connect_timeout=2");
    let err = Pg::open(&url, 1).await.unwrap_err();
    assert!(matches!(err, PgError::Unavailable { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("u@127.0.0.1:{port}/db")), "{text}");
    assert!(!text.contains("pw-Secret"), "{text}");
}

#[tokio::test]
async fn sslmode_require_goes_through_rustls() {
    let Some(server) = server() else { return };
    // The test server has no certificate: asking for TLS must fail at the handshake (the
    // connector is asked), where `prefer` (the default, used by every other test) falls
    // back to a plain connection.
    let mut url = url::Url::parse(&server).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "require");
    let err = Pg::open(url.as_str(), 1).await.unwrap_err();
    assert!(matches!(err, PgError::Unavailable { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("tls"), "{err}");
}

/// A statement whose connection the server ends (an administrator, a shutdown) is a lost
/// connection, which the API answers 503 `unavailable`, never a fault of the relay's own.
#[tokio::test]
async fn a_connection_ended_by_the_server_mid_statement_is_lost_not_a_fault() {
    use axum::response::IntoResponse;

    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();
    let client = pg.client().await.unwrap();
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let sleeping = tokio::spawn(async move {
        let slept = client.batch_execute("SELECT pg_sleep(30)").await;
        slept.at(&pg).map(|_| ())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ended: bool = admin(&server)
        .await
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(ended);
    let err = sleeping.await.unwrap().unwrap_err();
    assert!(matches!(&err, StoreError::Postgres(PgError::Lost { .. })), "{err}");
    let answer = crate::api::ApiError::from(err).into_response();
    assert_eq!(answer.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    db.drop_now().await;
}
