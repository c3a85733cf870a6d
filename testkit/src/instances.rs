//! Several relay instances on one PostgreSQL database (issue 15), and a private PostgreSQL
//! cluster of a test's own that it may stop and start again (the database going away).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::postgres::FreshDatabase;
use crate::Relay;

/// `n` relays started on one fresh database of `server`, each with `extra_toml`. The relays
/// are killed before the database is dropped (fields drop in order).
pub struct Instances {
    /// The relays, in start order.
    pub relays: Vec<Relay>,
    /// Their database.
    pub db: FreshDatabase,
}

impl Instances {
    /// Starts `n` relays on a new database of `server`.
    pub fn start(server: &str, n: usize, extra_toml: &str) -> Self {
        let db = FreshDatabase::create(server);
        let relays = (0..n).map(|_| Relay::start_with_database(Path::new(&db.url), extra_toml));
        Instances { relays: relays.collect(), db }
    }
}

/// A PostgreSQL cluster of its own, started by `.ci/postgres.sh` in a directory of its own
/// (so stopping it touches no other test's server), removed when dropped.
pub struct PrivateCluster {
    dir: PathBuf,
    /// The `hookrelay_test` database's URL.
    pub url: String,
}

impl PrivateCluster {
    /// Starts one (installing PostgreSQL first if missing, as the script does).
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("hookrelay-pg-{}", uuid::Uuid::now_v7()));
        let out = script(&dir, "start");
        let text = String::from_utf8_lossy(&out.stdout);
        let url = text
            .lines()
            .find_map(|l| l.strip_prefix("export HOOKRELAY_TEST_DATABASE='")?.strip_suffix('\''))
            .unwrap_or_else(|| panic!("postgres.sh start printed no URL: {text}"))
            .to_string();
        PrivateCluster { dir, url }
    }

    /// `pg_ctl stop -m fast`: the server ends every connection and stops.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        pg_ctl(&["-D", path(&data), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the stopped server again on the same data directory and port, with the
    /// options `.ci/postgres.sh` starts it with.
    pub fn start_again(&self) {
        let port = std::fs::read_to_string(self.dir.join("port")).expect("the port file");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} \
             -c max_connections=200 -c fsync=off -c synchronous_commit=off",
            port.trim(),
            self.dir.display()
        );
        let (data, log) = (self.dir.join("data"), self.dir.join("server.log"));
        pg_ctl(&["-D", path(&data), "-l", path(&log), "-w", "-t", "30", "-o", &options, "start"]);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        script(&self.dir, "stop");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs `.ci/postgres.sh <command>` for the cluster in `dir`.
fn script(dir: &Path, command: &str) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/postgres.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(command)
        .env("HOOKRELAY_PG_DIR", dir)
        .output()
        .expect("run .ci/postgres.sh");
    assert!(
        out.status.success(),
        "postgres.sh {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the newest installed `pg_ctl` as the cluster's owner (`postgres` when root).
fn pg_ctl(args: &[&str]) {
    let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed")
        .filter_map(|e| Some(e.ok()?.path().join("bin/pg_ctl")))
        .filter(|p| p.exists())
        .collect();
    bins.sort_by_key(|p| {
        let version = p.parent().and_then(Path::parent).and_then(Path::file_name);
        version.and_then(|v| v.to_str()?.parse::<u32>().ok()).unwrap_or(0)
    });
    let pg_ctl = bins.pop().expect("a pg_ctl");
    // SAFETY: geteuid only reads the process's effective user id.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        Command::new(&pg_ctl)
    };
    let out = cmd.args(args).output().expect("run pg_ctl");
    assert!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
