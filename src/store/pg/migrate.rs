//! Applies `schema.sql` and later migrations to a PostgreSQL database, once, however many
//! instances start together: in one transaction that first takes a transaction-scoped
//! advisory lock ([`SCHEMA_LOCK`]), so a second instance waits for the first to commit and
//! then finds the version already there. A failed migration leaves nothing (PostgreSQL's DDL
//! is transactional).

use deadpool_postgres::GenericClient;

use super::{Pg, PgError};

/// The schema this build writes. The same number as the SQLite schema's version: a version
/// that changes the schema changes both backends (a test holds the two equal).
pub const VERSION: i64 = 26;

/// The whole schema at [`SCHEMA_VERSION`], applied to an empty database; the steps after
/// it ([`MIGRATIONS`]) then bring it to [`VERSION`], so each later change is written once.
const SCHEMA: &str = include_str!("schema.sql");

/// The version `schema.sql` is at.
const SCHEMA_VERSION: i64 = 23;

/// Steps from older versions, keyed by the version they upgrade from, run in order on a
/// database that has one (as in src/store/schema.rs). The first PostgreSQL schema is version
/// 22 (no PostgreSQL database was made at an earlier one). Version 23 changed only how
/// SQLite's CHECKs are spelled (no IN lists, which SQLite checks through a temporary index;
/// PostgreSQL does not): nothing to do here. Version 24 adds the shared window of rate
/// limits (`rate_starts.sql`). Version 25 adds the instance running each recover or replay
/// job ([`JOB_RUN_BY`]); version 26 counts a shared start from when its call arrived
/// (`rate_starts_stamped.sql`).
const MIGRATIONS: &[(i64, &str)] = &[
    (22, ""),
    (23, include_str!("rate_starts.sql")),
    (24, JOB_RUN_BY),
    (25, include_str!("rate_starts_stamped.sql")),
];

/// `recover_jobs.run_by`: the instance that runs the job (see `job_owner`). The jobs stored
/// before it name none: the first instance to look for lost jobs adopts those unfinished.
const JOB_RUN_BY: &str = "ALTER TABLE recover_jobs ADD COLUMN run_by uuid;";

/// The advisory lock key serialising migrations: "hookrela" in ASCII, so that it is unlikely
/// to meet another application's key on a shared server.
const SCHEMA_LOCK: i64 = 0x686f_6f6b_7265_6c61;

/// The versions applied, one row each, with when: created by the migration itself, since it
/// must exist before the schema is read.
const HISTORY: &str = "CREATE TABLE IF NOT EXISTS schema_versions ( \
     version     integer PRIMARY KEY, \
     applied_at  bigint NOT NULL)";

/// What opening the store did to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// The database was at this version (0: empty) and is now at [`VERSION`].
    Applied {
        /// The version found.
        from: i64,
    },
    /// The database was already at [`VERSION`].
    Current,
}

/// Brings the database to [`VERSION`]; refuses a newer one, leaving it untouched.
pub(super) async fn apply(pg: &Pg) -> Result<Migrated, PgError> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.map_err(|e| pg.query_error(e))?;
    let found = locked(&tx).await.map_err(|e| pg.query_error(e))?;
    if found > VERSION {
        return Err(PgError::NewerSchema { target: pg.target.clone(), found });
    }
    if found == VERSION {
        tx.commit().await.map_err(|e| pg.query_error(e))?;
        return Ok(Migrated::Current);
    }
    upgrade(&tx, found).await.map_err(|e| pg.query_error(e))?;
    tx.commit().await.map_err(|e| pg.query_error(e))?;
    tracing::info!(target = %pg.target, from = found, to = VERSION, "PostgreSQL schema applied");
    Ok(Migrated::Applied { from: found })
}

/// Takes the migration lock (held until the transaction ends) and reads the version.
async fn locked(tx: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await?;
    tx.batch_execute(HISTORY).await?;
    current(tx).await
}

/// The version the database holds (0: none yet).
pub(super) async fn current(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    let exists: bool =
        client.query_one("SELECT to_regclass('schema_versions') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0)::bigint FROM schema_versions", &[])
        .await?;
    Ok(row.get(0))
}

async fn upgrade(tx: &impl GenericClient, found: i64) -> Result<(), tokio_postgres::Error> {
    let mut found = found;
    if found == 0 {
        tx.batch_execute(SCHEMA).await?;
        found = SCHEMA_VERSION;
    }
    for (from, sql) in MIGRATIONS {
        if *from >= found {
            tx.batch_execute(sql).await?;
        }
    }
    let now = chrono::Utc::now().timestamp_millis();
    tx.execute(
        "INSERT INTO schema_versions (version, applied_at) VALUES ($1::bigint::integer, $2)",
        &[&VERSION, &now],
    )
    .await?;
    Ok(())
}
