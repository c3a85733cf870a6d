//! `--database postgres://…`: a fresh database per scenario run on that server, and what the
//! server spent on the run: its processes' CPU (from /proc) and how often its backends waited
//! on a lock (sampled from `pg_stat_activity` and `pg_locks`), so a run shows whether its
//! throughput is bounded by CPU or by lock waits (issue 15 §6).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls};

/// The server `--database` named, when it was.
pub static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Relays started per scenario run (`--instances`), all on one database.
pub static INSTANCES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// How many relays each scenario run starts (1 unless `--instances` said otherwise).
pub fn instances() -> usize {
    INSTANCES.get().copied().unwrap_or(1)
}

/// A new, empty database on the server, dropped (`WITH (FORCE)`) when this is.
pub struct FreshDatabase {
    server: String,
    name: String,
    /// Its URL, with the server's credentials.
    pub url: String,
}

impl FreshDatabase {
    /// Creates one on `server` (a `postgres://…/db` URL whose user may create databases).
    pub fn create(server: &str) -> anyhow::Result<Self> {
        let name = format!("hr_bench_{}", uuid::Uuid::now_v7().simple());
        let (base, query) = match server.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (server, String::new()),
        };
        let (at, _) = base.rsplit_once('/').context("--database needs a postgres://…/db URL")?;
        let url = format!("{at}/{name}{query}");
        admin(server, format!("CREATE DATABASE {name}"))?;
        Ok(FreshDatabase { server: server.to_string(), name, url })
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = admin(&self.server, sql) {
            eprintln!("cannot drop the bench database {}: {e:#}", self.name);
        }
    }
}

/// Runs `sql` on `server`, on a thread of its own (the callers run inside the runtime).
fn admin(server: &str, sql: String) -> anyhow::Result<()> {
    let server = server.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&server, NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute(&sql).await.with_context(|| sql.clone())
        })
    })
    .join()
    .map_err(|_| anyhow!("the admin statement's thread panicked"))?
}

/// Watches the server while a run's load goes on: started before the load, ended after it.
pub struct Watch {
    client: Arc<Client>,
    database: String,
    postmaster: Option<u32>,
    cpu_at_start: Option<f64>,
    stats_at_start: BTreeMap<String, i64>,
    stop: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<Samples>,
}

/// What the sampler counted: samples taken, backends of the database seen active, and
/// per `wait_event_type/wait_event` (and per ungranted `pg_locks` locktype) how often.
#[derive(Default)]
struct Samples {
    taken: u64,
    active: u64,
    waits: BTreeMap<String, u64>,
    ungranted: BTreeMap<String, u64>,
}

/// The `pg_stat_database` counters compared before and after.
const STAT_COLUMNS: [&str; 9] = [
    "xact_commit",
    "xact_rollback",
    "deadlocks",
    "conflicts",
    "blks_read",
    "blks_hit",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
];

impl Watch {
    /// Connects to `server` and starts sampling the backends of database `url` every 100 ms.
    pub async fn start(server: &str, url: &str) -> anyhow::Result<Self> {
        let database = url
            .split('?')
            .next()
            .and_then(|base| base.rsplit_once('/'))
            .map(|(_, db)| db.to_string())
            .context("a postgres://…/db URL")?;
        let (client, connection) = tokio_postgres::connect(server, NoTls).await?;
        tokio::spawn(connection);
        let client = Arc::new(client);
        let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
        // A backend's parent is the postmaster; it reaps exited backends, so their CPU ends
        // up in its cutime/cstime.
        let postmaster = u32::try_from(backend).ok().and_then(parent_pid);
        let stats_at_start = stat_database(&client, &database).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn(sample(client.clone(), database.clone(), stop.clone()));
        Ok(Watch {
            client,
            database,
            cpu_at_start: postmaster.and_then(cluster_cpu_ms),
            postmaster,
            stats_at_start,
            stop,
            sampler,
        })
    }

    /// Stops sampling and returns the server's figures for `count` deliveries, with
    /// `relay_cpu_ms` (all instances) beside them.
    pub async fn finish(self, count: usize, relay_cpu_ms: f64) -> anyhow::Result<Value> {
        let cpu_ms = match (self.postmaster.and_then(cluster_cpu_ms), self.cpu_at_start) {
            (Some(end), Some(start)) => Some(end - start),
            _ => None,
        };
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.sampler.await?;
        // Backends flush their statistics at most once a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let stats = stat_database(&self.client, &self.database).await?;
        let delta: serde_json::Map<String, Value> = stats
            .iter()
            .map(|(k, v)| (k.clone(), json!(v - self.stats_at_start.get(k).copied().unwrap_or(0))))
            .collect();
        let bytes: i64 = self
            .client
            .query_one("SELECT pg_database_size($1::text)", &[&self.database])
            .await?
            .get(0);
        let mut settings = serde_json::Map::new();
        for name in [
            "server_version",
            "synchronous_commit",
            "fsync",
            "shared_buffers",
            "max_connections",
            "wal_level",
            "max_wal_size",
        ] {
            let row = self.client.query_one(&format!("SHOW {name}"), &[]).await?;
            settings.insert(name.into(), json!(row.get::<_, String>(0)));
        }
        let per = |ms: f64| ms * 1000.0 / count.max(1) as f64;
        let lock_waits: u64 =
            samples.waits.iter().filter(|(k, _)| k.starts_with("Lock/")).map(|(_, n)| n).sum();
        Ok(json!({
            "cpu_ms": cpu_ms,
            "cpu_us_per_delivery": cpu_ms.map(per),
            "relay_cpu_us_per_delivery": per(relay_cpu_ms),
            "relay_plus_postgres_cpu_us_per_delivery": cpu_ms.map(|pg| per(pg + relay_cpu_ms)),
            "samples": samples.taken,
            "active_backend_samples": samples.active,
            "lock_wait_samples": lock_waits,
            "lock_wait_share_of_active": lock_waits as f64 / samples.active.max(1) as f64,
            "waits": samples.waits,
            "ungranted_locks": samples.ungranted,
            "stat_database": delta,
            "database_bytes": bytes,
            "database_bytes_per_delivery": bytes as f64 / count.max(1) as f64,
            "settings": settings,
        }))
    }
}

/// Samples `pg_stat_activity` and `pg_locks` for `database` every 100 ms until `stop`.
async fn sample(client: Arc<Client>, database: String, stop: Arc<AtomicBool>) -> Samples {
    let samples = Mutex::new(Samples::default());
    let activity = "SELECT coalesce(wait_event_type, 'CPU') || '/' || coalesce(wait_event, '-'), \
                    count(*) FROM pg_stat_activity WHERE datname = $1::text AND state = 'active' \
                    GROUP BY 1";
    let locks = "SELECT l.locktype, count(*) FROM pg_locks l JOIN pg_database d ON d.oid = \
                 l.database WHERE NOT l.granted AND d.datname = $1::text GROUP BY 1";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&database];
    while !stop.load(Ordering::Relaxed) {
        let (a, l) = tokio::join!(client.query(activity, &params), client.query(locks, &params));
        if let (Ok(a), Ok(l), Ok(mut s)) = (a, l, samples.lock()) {
            s.taken += 1;
            for row in a {
                let n = row.get::<_, i64>(1).max(0) as u64;
                s.active += n;
                *s.waits.entry(row.get(0)).or_default() += n;
            }
            for row in l {
                *s.ungranted.entry(row.get(0)).or_default() += row.get::<_, i64>(1).max(0) as u64;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    samples.into_inner().unwrap_or_default()
}

/// [`STAT_COLUMNS`] of `pg_stat_database` for `database`.
async fn stat_database(client: &Client, database: &str) -> anyhow::Result<BTreeMap<String, i64>> {
    let sql = format!(
        "SELECT {} FROM pg_stat_database WHERE datname = $1::text",
        STAT_COLUMNS.map(|c| format!("{c}::bigint")).join(", ")
    );
    let row = client.query_one(&sql, &[&database]).await?;
    Ok(STAT_COLUMNS.iter().enumerate().map(|(i, c)| (c.to_string(), row.get(i))).collect())
}

/// The fields of `/proc/<pid>/stat` after the command name (field 3 onwards).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(text.rsplit_once(')')?.1.split_whitespace().map(String::from).collect())
}

fn parent_pid(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// CPU ms of the postmaster (with its reaped children) and of its live children.
fn cluster_cpu_ms(postmaster: u32) -> Option<f64> {
    let ticks = |f: &[String], from: usize, n: usize| -> f64 {
        f.iter().skip(from).take(n).filter_map(|v| v.parse::<f64>().ok()).sum()
    };
    // utime, stime, cutime, cstime are fields 14–17: indexes 11–14 here.
    let mut total = ticks(&stat_fields(postmaster)?, 11, 4);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(f) = stat_fields(pid)
            .filter(|f| f.get(1).map(String::as_str) == Some(&postmaster.to_string()))
        {
            total += ticks(&f, 11, 2);
        }
    }
    Some(total * 10.0)
}
