//! Starts the `hookrelay` binary that sits next to this one, on a fresh database.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, Context};

/// Admin key the benchmark relay is started with.
pub const KEY: &str = "bench-admin-key-0123456789";

/// A relay process, killed on drop.
pub struct Relay {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
}

impl Relay {
    /// Starts the relay with the documented defaults (config.example.toml, demo apps
    /// included) on loopback, in a fresh directory (or `db_dir` when given).
    pub fn start(db_dir: Option<PathBuf>) -> anyhow::Result<Self> {
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
                &format!("database = {:?}", dir.join("hookrelay.db")),
                1,
            )
            .replacen("api_keys = []", &format!("api_keys = [{KEY:?}]"), 1)
            .replacen("allow_private_targets = false", "allow_private_targets = true", 1);
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
        Ok(Self { child, base, dir })
    }

    /// Resident set size of the relay process, MiB (from /proc).
    pub fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }

    /// Database size on disk (main file + WAL), bytes.
    pub fn db_bytes(&self) -> u64 {
        ["hookrelay.db", "hookrelay.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(self.dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
