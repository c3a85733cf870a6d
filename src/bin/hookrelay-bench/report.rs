//! One scenario's result: a table row on stdout and a JSON file with the figures, the
//! settings, the machine and the commit, so a published figure can be traced to its run.

use std::path::Path;

use serde_json::{json, Value};

use crate::relay::RelayStats;
use crate::Settings;

/// One line of the results table.
pub struct Row {
    pub(crate) scenario: String,
    pub(crate) count: usize,
    pub(crate) per_second: f64,
    pub(crate) latency_ms: (f64, f64, f64),
    /// The relay's resource use; none for `raw`, which runs no relay.
    pub(crate) relay: Option<RelayStats>,
    pub(crate) extra: Value,
}

/// Header of the table [`Row::print`] writes under.
pub fn print_header() {
    println!(
        "{:<12} {:>9} {:>10} {:>8} {:>8} {:>9} {:>8} {:>9} {:>9}",
        "scenario",
        "count",
        "per_sec",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "rss_mb",
        "cpu_us/op",
        "db_B/log"
    );
}

impl Row {
    /// Prints the table row and a `json …` line, and writes `<out>/<scenario>.json`.
    /// `raw_per_second` is the loopback ceiling measured in the same run, when it was.
    pub fn print(&self, settings: &Settings, out: &Path, raw_per_second: Option<f64>) {
        let (p50, p99, max) = self.latency_ms;
        let (rss, cpu_per_op, per_log) = match &self.relay {
            Some(r) => {
                (r.peak_rss_mb, r.cpu_ms * 1000.0 / self.count.max(1) as f64, r.bytes_per_log())
            }
            None => (0.0, 0.0, 0.0),
        };
        println!(
            "{:<12} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>8.1} {:>9.1} {:>9.0}",
            self.scenario, self.count, self.per_second, p50, p99, max, rss, cpu_per_op, per_log
        );
        let record = json!({
            "scenario": self.scenario, "count": self.count, "per_second": self.per_second,
            "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            "relay": self.relay.as_ref().map(|r| r.json(self.count)),
            "extra": self.extra,
            "per_second_vs_raw": raw_per_second.map(|raw| self.per_second / raw),
            "settings": {
                "messages": settings.messages, "concurrency": settings.concurrency,
                "payload_bytes": settings.payloads.bytes, "payload": settings.payloads.label(),
                "synchronous": crate::relay::SYNCHRONOUS.get().copied().unwrap_or("normal"), "logs": settings.logs, "rate": settings.rate,
                "duration_secs": settings.duration_secs,
                "backend": if crate::postgres::SERVER.get().is_some() { "postgres" } else { "sqlite" },
                "instances": crate::postgres::instances(),
            },
            "machine": machine(),
            "commit": commit(),
            "at": chrono::Utc::now().to_rfc3339(),
        });
        println!("json {record}");
        let file = out.join(format!("{}.json", self.scenario));
        let written = std::fs::create_dir_all(out)
            .and_then(|()| Ok(serde_json::to_vec_pretty(&record)?))
            .and_then(|bytes| std::fs::write(&file, bytes));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", file.display());
        }
    }
}

/// CPU model, cores, memory and kernel of this machine.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok());
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": mem_kb.map(|kb| (kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|k| k.trim().to_string()),
    })
}

/// The checked-out commit, `-dirty` when the tree has changes; none outside a git checkout.
fn commit() -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}
