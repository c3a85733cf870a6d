//! PostgreSQL storage (issue 15), for several instances sharing one outbox: a connection
//! pool opened from a `postgres://` URL, with TLS through rustls (ring) when the URL's
//! `sslmode` asks for it, and the schema applied at open ([`migrate`]). Each table family
//! written for it has its module here, beside the SQLite one of `store` (docs/postgres.md
//! lists which are).

pub(crate) mod automation_events;
pub(crate) mod automations;
pub(crate) mod bodies;
pub(crate) mod calls_in_flight;
pub(crate) mod claims;
mod column;
pub(crate) mod deliveries;
pub(crate) mod duties;
pub(crate) mod health;
pub(crate) mod health_reads;
mod instances;
pub(crate) mod job_owner;
pub(crate) mod keys;
mod listen;
pub(crate) mod logs;
pub(crate) mod message_views;
pub(crate) mod messages;
mod migrate;
pub(crate) mod operational;
pub(crate) mod page;
pub(crate) mod rate_starts;
pub(crate) mod recover;
pub(crate) mod replay;
mod reruns;
pub(crate) mod retention;
pub(crate) mod rollup;
pub(crate) mod rollup_reads;
pub(crate) mod runs;
pub(crate) mod sheets;
pub(crate) mod snapshots;
mod takeover;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use migrate::{Migrated, VERSION};

/// A connection or transaction of the pool, with its statement cache (`prepare_cached`): the
/// hot families (ingest, claims, outcomes) prepare each statement once per connection.
pub(crate) use deadpool_postgres::GenericClient as Cached;

/// How long a request waits for a free connection, or for a new one to be made, before the
/// store answers that the database is unavailable.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Why the PostgreSQL store could not be opened or used. No variant ever carries the URL's
/// password: connections are named by [`Target`].
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The `database` setting is not a connection string tokio-postgres reads.
    #[error("database: not a valid PostgreSQL connection string ({0})")]
    Url(String),
    /// The TLS configuration could not be built (no usable root certificates).
    #[error("database: cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// No connection could be made or taken from the pool.
    #[error("database {target}: {reason}")]
    Unavailable {
        /// Where the relay tried to connect.
        target: Target,
        /// What failed.
        reason: String,
    },
    /// The database holds a schema newer than this build knows.
    #[error("database {target}: schema version {found} is newer than this build ({VERSION})")]
    NewerSchema {
        /// Where the database is.
        target: Target,
        /// The version it holds.
        found: i64,
    },
    /// The connection was lost while a statement ran (the server shut down or ended it, the
    /// network failed): whether a commit in flight took effect is unknown.
    #[error("database {target}: the connection was lost ({reason})")]
    Lost {
        /// Where the database is.
        target: Target,
        /// What ended it.
        reason: String,
    },
    /// A statement failed.
    #[error("database {target}: {}", describe(source))]
    Query {
        /// Where the database is.
        target: Target,
        /// The server's or the driver's error.
        source: tokio_postgres::Error,
    },
}

/// A database named without its password, for messages and logs: `user@host:port/dbname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(String);

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Target {
    /// The database `url` names, or why it names none ([`PgError::Url`]).
    pub fn of_url(url: &str) -> Result<Self, PgError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| PgError::Url(e.to_string()))?;
        Ok(Self::of(&config))
    }

    fn of(config: &tokio_postgres::Config) -> Self {
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port =
                    config.get_ports().get(i).or(config.get_ports().first()).unwrap_or(&5432);
                match host {
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(dir) => format!("{}:{port}", dir.display()),
                }
            })
            .collect();
        Target(format!(
            "{}@{}/{}",
            config.get_user().unwrap_or("?"),
            hosts.join(","),
            config.get_dbname().unwrap_or("?")
        ))
    }
}

/// An open PostgreSQL store: a pool of connections to a database whose schema is current.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    target: Target,
    /// Where and how to connect, for the listening connection (outside the pool: see
    /// [`listen`]).
    config: Arc<tokio_postgres::Config>,
    /// This instance's id in `instances` (a uuid drawn at open, as text: it is bound as
    /// `$n::text::uuid`), naming its claims in `deliveries.claimed_by`.
    instance: Arc<str>,
    /// Stop requests for workflow tasks heard by the listener (see [`listen`]).
    stops: tokio::sync::broadcast::Sender<Arc<str>>,
    /// Claims taken again after their lease ran out (see [`claims`]), for `/metrics`.
    lease_expiries: prometheus_client::metrics::counter::Counter,
    /// The snapshots this instance stored lately (see [`snapshots::Stored`]).
    stored_snapshots: Arc<snapshots::Stored>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").field("target", &self.target).finish_non_exhaustive()
    }
}

/// True when a `database` setting names PostgreSQL rather than an SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

impl Pg {
    /// Opens a pool of at most `pool_size` connections to `url` and brings the database's
    /// schema to [`VERSION`] (see [`migrate`]). Fails when the URL is malformed, the database
    /// cannot be reached or refuses the credentials, or holds a newer schema. TLS follows the
    /// URL's `sslmode` (`disable`, `prefer` — the default —, `require`), with the system's
    /// root certificates.
    pub async fn open(url: &str, pool_size: usize) -> Result<(Self, Migrated), PgError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| PgError::Url(e.to_string()))?;
        let target = Target::of(&config);
        let listen_config = Arc::new(config.clone());
        let manager = Manager::from_config(
            config,
            tls()?,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::Unavailable { target: target.clone(), reason: e.to_string() })?;
        let instance = uuid::Uuid::now_v7().to_string().into();
        let (stops, _) = tokio::sync::broadcast::channel(listen::STOPS_QUEUED);
        let lease_expiries = Default::default();
        let stored_snapshots = Default::default();
        let pg = Pg {
            pool,
            target,
            config: listen_config,
            instance,
            stops,
            lease_expiries,
            stored_snapshots,
        };
        let migrated = migrate::apply(&pg).await?;
        instances::register(&pg).await?;
        Ok((pg, migrated))
    }

    /// Where this store's database is (without its password).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// This instance's id (see [`Pg::open`]), for `$n::text::uuid`.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// Answers when a connection can be taken and a statement run (`/readyz`).
    pub async fn check(&self) -> Result<(), PgError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(|e| self.query_error(e))?;
        Ok(())
    }

    /// Closes the pool: no new connection is made, idle ones are closed.
    pub fn close(&self) {
        self.pool.close();
    }

    /// The schema version the database holds.
    pub async fn schema_version(&self) -> Result<i64, PgError> {
        let client = self.client().await?;
        migrate::current(&client).await.map_err(|e| self.query_error(e))
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, PgError> {
        self.pool.get().await.map_err(|e| PgError::Unavailable {
            target: self.target.clone(),
            reason: match e {
                deadpool_postgres::PoolError::Backend(e) => describe(&e),
                other => other.to_string(),
            },
        })
    }

    /// A statement's failure as the store's error, naming this database.
    pub(crate) fn failed(&self, source: tokio_postgres::Error) -> crate::store::StoreError {
        crate::store::StoreError::Postgres(self.query_error(source))
    }

    fn query_error(&self, source: tokio_postgres::Error) -> PgError {
        let target = self.target.clone();
        if connection_lost(&source) {
            return PgError::Lost { target, reason: describe(&source) };
        }
        PgError::Query { target, source }
    }
}

/// A statement's failure as the store's error, naming the database.
pub(crate) trait OrStore<T> {
    /// The result, its error naming `pg`'s database.
    fn at(self, pg: &Pg) -> crate::store::StoreResult<T>;
}

impl<T> OrStore<T> for Result<T, tokio_postgres::Error> {
    fn at(self, pg: &Pg) -> crate::store::StoreResult<T> {
        self.map_err(|e| crate::store::StoreError::Postgres(pg.query_error(e)))
    }
}

/// Whether `e` ended the connection rather than the statement: the driver found it closed or
/// could not read or write it, or the server sent a connection exception (class 08) or an
/// operator intervention that ends sessions (57P01 admin shutdown, 57P02 crash shutdown,
/// 57P03 cannot connect now, …).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    let code = e.code().map(|c| c.code());
    e.is_closed()
        || code.is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// A driver error as a person reads it: tokio-postgres shows a server's error as "db error",
/// with the server's message only in its source.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// The TLS connector: rustls with ring (the provider the relay's HTTP client uses; no
/// aws-lc, no OpenSSL), verifying the server against the platform's roots.
fn tls() -> Result<MakeRustlsConnect, PgError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests;
