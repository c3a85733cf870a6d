//! Starts the `hookrelay` binary that sits next to this one, on a fresh database.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::sync::Arc;

use anyhow::{anyhow, bail, Context};

use crate::postgres::FreshDatabase;

/// `store.synchronous` every relay of this run is started with ("normal" unless
/// `--synchronous full` was given).
pub static SYNCHRONOUS: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// `--set section.key=value` from the command line, applied after a scenario's own
/// overrides: one binary run with other settings, for a comparison within one build.
pub static SET: std::sync::OnceLock<Vec<(String, String, String)>> = std::sync::OnceLock::new();

/// Admin key the benchmark relay is started with.
pub const KEY: &str = "bench-admin-key-0123456789";

/// A relay process, killed on drop.
pub struct Relay {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
    /// The PostgreSQL database it runs on (`--database`), shared by a run's instances and
    /// dropped after the last of them.
    pub database: Option<Arc<FreshDatabase>>,
}

impl Relay {
    /// Starts the relay with the documented defaults (config.example.toml, demo apps
    /// included) on loopback, in a fresh directory (or `db_dir` when given).
    pub fn start(db_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        Self::start_with(db_dir, &[])
    }

    /// Like [`Relay::start`], with the keys in `overrides` (`(section, key, value)`, value as
    /// TOML) set to other values than config.example.toml's.
    pub fn start_with(db_dir: Option<PathBuf>, overrides: &[Override]) -> anyhow::Result<Self> {
        let database = match crate::postgres::SERVER.get() {
            Some(server) => Some(Arc::new(FreshDatabase::create(server)?)),
            None => None,
        };
        Self::start_on(db_dir, overrides, database)
    }

    /// The relays of one run: `--instances` of them on one fresh PostgreSQL database with
    /// `--database`, else one on SQLite.
    pub fn start_instances() -> anyhow::Result<Vec<Self>> {
        let first = Self::start(None)?;
        let mut all = Vec::with_capacity(crate::postgres::instances());
        for _ in 1..crate::postgres::instances() {
            all.push(Self::start_on(None, &[], first.database.clone())?);
        }
        all.insert(0, first);
        Ok(all)
    }

    /// Like [`Relay::start_with`], on `database` when given (else SQLite in its directory).
    fn start_on(
        db_dir: Option<PathBuf>,
        overrides: &[Override],
        database: Option<Arc<FreshDatabase>>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?.with_file_name("hookrelay");
        let dir = match db_dir {
            Some(d) => d,
            None => {
                let d = std::env::temp_dir().join(format!(
                    "hookrelay-bench-{}-{}",
                    std::process::id(),
                    crate::load::nanos()
                ));
                std::fs::create_dir_all(&d)?;
                d
            }
        };
        let config = dir.join("config.toml");
        let toml = hookrelay::config::EXAMPLE
            .replacen("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"", 1)
            .replacen(
                "database = \"./hookrelay.db\"",
                &match &database {
                    Some(db) => format!("database = {:?}", db.url),
                    None => format!("database = {:?}", dir.join("hookrelay.db")),
                },
                1,
            )
            .replacen("api_keys = []", &format!("api_keys = [{KEY:?}]"), 1)
            .replacen("allow_private_targets = false", "allow_private_targets = true", 1)
            .replacen(
                "synchronous = \"normal\"",
                &format!("synchronous = {:?}", SYNCHRONOUS.get().copied().unwrap_or("normal")),
                1,
            );
        let given = SET.get().map(Vec::as_slice).unwrap_or_default();
        let toml = overrides
            .iter()
            .map(|(section, key, value)| (*section, *key, value.as_str()))
            .chain(given.iter().map(|(s, k, v)| (s.as_str(), k.as_str(), v.as_str())))
            .try_fold(toml, |toml, o| set_key(&toml, o))?;
        std::fs::write(&config, toml)?;
        let mut child = Command::new(&exe)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().ok_or_else(|| anyhow!("relay exited before listening"))??;
            if let Some(url) = line.strip_prefix("hookrelay listening on ") {
                break url.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Self { child, base, dir, database })
    }

    /// The figures of a run's instances summed ([`RelayStats::sum`]).
    pub fn sum_stats(relays: &[Relay]) -> Option<RelayStats> {
        RelayStats::sum(relays.iter().map(Relay::stats).collect())
    }

    /// What the relay used so far: peak RSS, CPU time (all threads, and the writer's), and
    /// the database's size and log count.
    pub fn stats(&self) -> RelayStats {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let peak_rss_mb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0);
        let writer_cpu_ms = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim() == "hookrelay-write")
            })
            .filter_map(|t| cpu_ms(&t.path().join("stat")))
            .sum();
        let db = self.dir.join("hookrelay.db");
        let (logs, space) =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| {
                    let logs: i64 = c.query_row("SELECT count(*) FROM logs", [], |r| r.get(0))?;
                    Ok((logs.max(0) as u64, space_by_object(&c)?))
                })
                .unwrap_or_default();
        RelayStats {
            peak_rss_mb,
            cpu_ms: cpu_ms(std::path::Path::new(&format!("/proc/{pid}/stat"))).unwrap_or(0.0),
            writer_cpu_ms,
            db_bytes: ["hookrelay.db", "hookrelay.db-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(self.dir.join(f)).ok())
                .map(|m| m.len())
                .sum(),
            logs,
            space,
        }
    }
}

/// A config key set to another value than config.example.toml's: `(section, key, value)`,
/// the value written as TOML (`"60"`, `"\"full\""`).
pub type Override = (&'static str, &'static str, String);

/// `toml` with the line of `key` in `[section]` replaced by `key = value`. The key must be
/// there: appending it instead would make a duplicate key, which TOML rejects, and a key the
/// example lost should fail the run rather than be silently ignored.
fn set_key(toml: &str, (section, key, value): (&str, &str, &str)) -> anyhow::Result<String> {
    let header = format!("[{section}]");
    let mut in_section = false;
    let mut found = false;
    let mut out = String::with_capacity(toml.len());
    for line in toml.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_section = trimmed.trim_end() == header;
        }
        let is_key =
            trimmed.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='));
        if in_section && is_key && !found {
            out.push_str(&format!("{key} = {value}"));
            found = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        bail!("config.example.toml has no {key} under {header}");
    }
    Ok(out)
}

/// Bytes of every table and index (SQLite's `dbstat`: the pages each one holds, as the
/// database holds them with the WAL applied), largest first.
fn space_by_object(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare(
        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name HAVING sum(pgsize) > 0 ORDER BY 2 DESC",
    )?;
    let rows =
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
    rows.collect()
}

/// utime + stime of a `/proc/…/stat` file, in ms (Linux reports them in 1/100 s ticks).
fn cpu_ms(stat: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// The relay's resource use, read from /proc and its database.
pub struct RelayStats {
    /// Peak resident set size (VmHWM), MiB; SQLite's memory-mapped pages count here too.
    pub peak_rss_mb: f64,
    /// CPU time of the whole process, ms.
    pub cpu_ms: f64,
    /// CPU time of the single SQLite writer thread, ms.
    pub writer_cpu_ms: f64,
    /// Database file plus WAL, bytes.
    pub db_bytes: u64,
    /// AutomationLogs stored.
    pub logs: u64,
    /// Bytes per table and index (`dbstat`), largest first.
    pub space: Vec<(String, u64)>,
}

impl RelayStats {
    /// Several instances' figures as one: memory and CPU summed, the stored figures (one
    /// database) taken from the first.
    pub fn sum(all: Vec<RelayStats>) -> Option<RelayStats> {
        let mut all = all.into_iter();
        let mut total = all.next()?;
        for other in all {
            total.peak_rss_mb += other.peak_rss_mb;
            total.cpu_ms += other.cpu_ms;
            total.writer_cpu_ms += other.writer_cpu_ms;
        }
        Some(total)
    }

    /// Database bytes per stored log (0 without logs).
    pub fn bytes_per_log(&self) -> f64 {
        if self.logs == 0 {
            0.0
        } else {
            self.db_bytes as f64 / self.logs as f64
        }
    }

    /// The figures as JSON, with per-operation CPU for `count` operations.
    pub fn json(&self, count: usize) -> serde_json::Value {
        let per_op = |ms: f64| ms * 1000.0 / count.max(1) as f64;
        serde_json::json!({
            "peak_rss_mb": self.peak_rss_mb, "cpu_ms": self.cpu_ms, "writer_cpu_ms": self.writer_cpu_ms,
            "cpu_us_per_op": per_op(self.cpu_ms), "writer_cpu_us_per_op": per_op(self.writer_cpu_ms),
            "db_bytes": self.db_bytes, "logs": self.logs, "db_bytes_per_log": self.bytes_per_log(),
            "stored_bytes": self.space.iter().map(|(_, b)| b).sum::<u64>(),
            "stored_bytes_per_log": self.space.iter().map(|(_, b)| *b as f64).sum::<f64>() / self.logs.max(1) as f64,
            "space_per_log": self.space.iter()
                .map(|(name, b)| (name.clone(), serde_json::json!((*b as f64 / self.logs.max(1) as f64).round())))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("HOOKRELAY_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
