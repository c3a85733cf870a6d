//! The PostgreSQL backend for the integration tests. With `HOOKRELAY_TEST_BACKEND=postgres`,
//! every relay [`crate::Relay`] starts without a database file of its own runs on a fresh
//! database of the server `HOOKRELAY_TEST_DATABASE` names (`source .ci/postgres.sh` starts a
//! private one and sets it), dropped with the relay. Selecting PostgreSQL without a server
//! is a failure, never a silent fall-back to SQLite.

use tokio_postgres::NoTls;

/// The server's URL when the suites run against PostgreSQL; `None` for SQLite (the default).
pub fn selected() -> Option<String> {
    match std::env::var("HOOKRELAY_TEST_BACKEND").as_deref() {
        Ok("postgres") => {}
        Ok("sqlite") | Err(_) => return None,
        Ok(other) => panic!("HOOKRELAY_TEST_BACKEND={other}: expected postgres or sqlite"),
    }
    match std::env::var("HOOKRELAY_TEST_DATABASE") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => panic!(
            "HOOKRELAY_TEST_BACKEND=postgres needs HOOKRELAY_TEST_DATABASE (`source \
             .ci/postgres.sh` starts a private PostgreSQL and sets it)"
        ),
    }
}

/// The test server's URL for tests that need PostgreSQL whatever the backend selected (several
/// instances, start-up failures); `None`, after saying why, when it is not set: they are
/// skipped, except under `CI=true`, where that is a failure.
pub fn required_server() -> Option<String> {
    match std::env::var("HOOKRELAY_TEST_DATABASE") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "HOOKRELAY_TEST_DATABASE is unset under CI=true: the PostgreSQL tests are \
                 required in CI (`source .ci/postgres.sh`)"
            );
            eprintln!("SKIPPED: HOOKRELAY_TEST_DATABASE is unset (`source .ci/postgres.sh`)");
            None
        }
    }
}

/// A new, empty database on the test server, dropped when this is.
pub struct FreshDatabase {
    server: String,
    name: String,
    /// Its URL (with the server's credentials).
    pub url: String,
}

impl FreshDatabase {
    /// Creates one on `server`.
    pub fn create(server: &str) -> Self {
        let name = format!("hr_test_{}", uuid::Uuid::now_v7().simple());
        admin(server, format!("CREATE DATABASE {name}"));
        let (base, query) = match server.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (server, String::new()),
        };
        let (at, _) = base.rsplit_once('/').expect("a postgres:// URL with a database");
        let url = format!("{at}/{name}{query}");
        FreshDatabase { server: server.to_string(), name, url }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        admin(&self.server, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// Runs `sql` on `server` (on a thread of its own: callers may be inside a runtime).
fn admin(server: &str, sql: String) {
    let server = server.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        runtime.expect("a runtime").block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&server, NoTls).await.expect("connect to the test server");
            tokio::spawn(connection);
            client.batch_execute(&sql).await.expect(&sql);
        });
    })
    .join()
    .expect("the admin statement's thread");
}
