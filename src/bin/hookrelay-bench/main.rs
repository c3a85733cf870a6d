//! `hookrelay-bench`: the load generator behind the published figures. It starts the
//! `hookrelay` binary (built next to it) on a fresh database, its own fast receiver on
//! 127.0.0.1, and runs named scenarios, printing one table row and one JSON line each.
//!
//! ```text
//! cargo build --release && target/release/hookrelay-bench [SCENARIO…] [--messages N]
//!     [--concurrency C] [--same-payload] [--synchronous normal|full] [--logs N] [--rate R] [--duration S]
//!     [--receiver-delay-ms D] [--out DIR] [--database postgres://… [--instances N]]
//! ```
//! `--database postgres://user:pass@host/db` runs each scenario's relays on a fresh database
//! of that server (created beside `db`, dropped after the run; the user must be allowed to
//! create databases), `--instances N` relays on it with the producers spread round-robin over
//! them and one receiver; e2e then also reports the server's CPU per delivery (its processes,
//! from /proc: run the bench on the database's machine) and the lock waits sampled from
//! `pg_stat_activity`/`pg_locks`. Only e2e, ingest, raw and forward run there (e2e by default).
//! Scenarios: raw, forward (a storage-free forwarder: the ceiling of one call in and one
//! out per message), ingest, e2e, rerun, logs-query, console (p50/p99 per console page with
//! `--logs` logs stored), workflow (blocking runs of the demo app
//! with their completion webhooks), sse (time to the first byte of a streaming run), sink
//! (signed appends to the sheets sink, then 100-row reads from the middle of the sheet),
//! fanout (each message to 10 automations), failing (a healthy automation beside one whose
//! receiver fails every other call), steady (R messages/s for S seconds, open loop:
//! enqueue→delivered latency at a fixed rate), retention (`--logs` logs, messages and payloads
//! 40 days old, deleted by the relay's default retention at start-up while the steady load
//! runs, then the same load again once they are gone), soak (the steady load for
//! `--duration`, 600 s by default, under 60 s retention windows, sampling the database's size
//! every 10 s), fifo (one FIFO automation whose receiver answers after `--receiver-delay-ms`,
//! 10 ms by default, 2,000 messages unless `--messages` is given: messages/s delivered against
//! the ceiling 1 / receiver latency measured in the same run, and the ingest order checked).
//! Every message carries a unique payload (sequence number, random run id, varied text) of
//! 1 KB, as real completions do; `--same-payload` repeats one payload, the variant reported
//! beside it to show what content addressing saves. `--synchronous full` starts every relay
//! with `store.synchronous = "full"` (an fsync per commit: a commit survives power loss).
//! Default: all but logs-query, console, retention, soak (long) and fifo (bounded by its
//! receiver's delay by design). Each scenario also writes `DIR/<scenario>.json` (default
//! `target/bench`) with its figures, settings, the machine and the commit.

mod console;
mod fifo;
mod forward;
mod load;
mod logs_query;
mod payloads;
mod postgres;
mod receiver;
mod relay;
mod report;
mod retention;
mod scenarios;
mod scrape;
mod seed;
mod sink;
mod soak;
mod spread;
mod steady;
mod workflow;

use std::process::ExitCode;

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Messages (or calls) per scenario.
    pub messages: usize,
    /// Whether `--messages` was given (a scenario with a default of its own then uses it).
    pub messages_given: bool,
    /// How long `fifo`'s receiver takes to answer each call, milliseconds.
    pub receiver_delay_ms: u64,
    /// Concurrent senders.
    pub concurrency: usize,
    /// The payloads posted: their size, and whether every message repeats one payload.
    pub payloads: payloads::Payloads,
    /// Logs stored before `logs-query`, `console` and `retention`.
    pub logs: usize,
    /// Offered messages per second in `steady`, `retention` and `soak`.
    pub rate: usize,
    /// How long the steady load runs, seconds; each scenario has its own default.
    pub duration_secs: Option<usize>,
}

/// `section.key=value` as `(section, key, value)`.
fn parse_set(arg: &str) -> Option<(String, String, String)> {
    let (path, value) = arg.split_once('=')?;
    let (section, key) = path.split_once('.')?;
    Some((section.trim().into(), key.trim().into(), value.trim().into()))
}

fn main() -> ExitCode {
    let mut settings = Settings {
        messages: 50_000,
        messages_given: false,
        receiver_delay_ms: 10,
        concurrency: 32,
        payloads: payloads::Payloads { bytes: 1024, same: false },
        logs: 1_000_000,
        rate: 1_000,
        duration_secs: None,
    };
    let mut out = std::path::PathBuf::from("target/bench");
    let mut wanted = Vec::new();
    let mut sets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Option<usize> {
            let v = args.next().and_then(|v| v.parse().ok());
            if v.is_none() {
                eprintln!("{name} needs a number");
            }
            v
        };
        match arg.as_str() {
            "--messages" => match number("--messages") {
                Some(n) => {
                    settings.messages = n;
                    settings.messages_given = true;
                }
                None => return ExitCode::from(2),
            },
            "--receiver-delay-ms" => match number("--receiver-delay-ms") {
                Some(n) => settings.receiver_delay_ms = n as u64,
                None => return ExitCode::from(2),
            },
            "--concurrency" => match number("--concurrency") {
                Some(n) => settings.concurrency = n.max(1),
                None => return ExitCode::from(2),
            },
            "--logs" => match number("--logs") {
                Some(n) => settings.logs = n,
                None => return ExitCode::from(2),
            },
            "--rate" => match number("--rate") {
                Some(n) => settings.rate = n.max(1),
                None => return ExitCode::from(2),
            },
            "--duration" => match number("--duration") {
                Some(n) => settings.duration_secs = Some(n.max(1)),
                None => return ExitCode::from(2),
            },
            "--database" => match args.next() {
                Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    let _ = postgres::SERVER.set(url);
                }
                _ => {
                    eprintln!("--database needs a postgres://user:pass@host/db URL");
                    return ExitCode::from(2);
                }
            },
            "--instances" => match number("--instances") {
                Some(n) if n >= 1 => {
                    let _ = postgres::INSTANCES.set(n);
                }
                _ => {
                    eprintln!("--instances needs a number of at least 1");
                    return ExitCode::from(2);
                }
            },
            "--same-payload" => settings.payloads.same = true,
            "--synchronous" => match args.next().as_deref() {
                Some("full") => {
                    let _ = relay::SYNCHRONOUS.set("full");
                }
                Some("normal") => {
                    let _ = relay::SYNCHRONOUS.set("normal");
                }
                _ => {
                    eprintln!("--synchronous needs normal or full");
                    return ExitCode::from(2);
                }
            },
            "--set" => match args.next().as_deref().and_then(parse_set) {
                Some(set) => sets.push(set),
                None => {
                    eprintln!("--set needs section.key=value (the value as TOML)");
                    return ExitCode::from(2);
                }
            },
            "--out" => match args.next() {
                Some(dir) => out = dir.into(),
                None => {
                    eprintln!("--out needs a directory");
                    return ExitCode::from(2);
                }
            },
            "raw" | "ingest" | "e2e" | "rerun" | "logs-query" | "console" | "workflow" | "sse"
            | "sink" | "fanout" | "failing" | "steady" | "forward" | "retention" | "soak"
            | "fifo" => wanted.push(arg),
            other => {
                eprintln!("unknown argument {other}; scenarios: raw forward ingest e2e rerun logs-query console workflow sse sink fanout failing steady retention soak fifo");
                return ExitCode::from(2);
            }
        }
    }
    let _ = relay::SET.set(sets);
    if postgres::instances() > 1 && postgres::SERVER.get().is_none() {
        eprintln!("--instances above 1 needs --database postgres://… (SQLite allows one server)");
        return ExitCode::from(2);
    }
    if wanted.is_empty() && postgres::SERVER.get().is_some() {
        wanted.push("e2e".to_string());
    }
    if wanted.is_empty() {
        wanted = [
            "raw", "forward", "ingest", "e2e", "fanout", "failing", "steady", "rerun", "workflow",
            "sse", "sink",
        ]
        .map(String::from)
        .to_vec();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    report::print_header();
    let mut raw_per_second = None;
    for name in wanted {
        match runtime.block_on(scenarios::run(&name, &settings)) {
            Ok(row) => {
                row.print(&settings, &out, raw_per_second);
                if name == "raw" {
                    raw_per_second = Some(row.per_second);
                }
            }
            Err(e) => {
                eprintln!("{name}: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
