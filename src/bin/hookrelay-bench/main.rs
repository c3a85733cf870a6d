//! `hookrelay-bench`: the load generator behind the published figures. It starts the
//! `hookrelay` binary (built next to it) on a fresh database, its own fast receiver on
//! 127.0.0.1, and runs named scenarios, printing one table row and one JSON line each.
//!
//! ```text
//! cargo build --release && target/release/hookrelay-bench [SCENARIO…] [--messages N] [--concurrency C] [--logs N]
//! ```
//! Scenarios: raw, ingest, e2e, rerun, logs-query, workflow (blocking runs of the demo app
//! with their completion webhooks), sse (time to the first byte of a streaming run), sink
//! (signed appends to the sheets sink, then 100-row reads from the middle of the sheet),
//! fanout (each message to 10 automations), failing (a healthy automation beside one whose
//! receiver fails every other call).
//! Default: all but logs-query.

mod load;
mod receiver;
mod relay;
mod scenarios;
mod seed;
mod sink;
mod spread;
mod workflow;

use std::process::ExitCode;

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Messages (or calls) per scenario.
    pub messages: usize,
    /// Concurrent senders.
    pub concurrency: usize,
    /// Payload size in bytes.
    pub payload_bytes: usize,
    /// Logs stored before `logs-query`.
    pub logs: usize,
}

fn main() -> ExitCode {
    let mut settings =
        Settings { messages: 50_000, concurrency: 32, payload_bytes: 1024, logs: 1_000_000 };
    let mut wanted = Vec::new();
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
                Some(n) => settings.messages = n,
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
            "raw" | "ingest" | "e2e" | "rerun" | "logs-query" | "workflow" | "sse" | "sink"
            | "fanout" | "failing" => wanted.push(arg),
            other => {
                eprintln!("unknown argument {other}; scenarios: raw ingest e2e rerun logs-query workflow sse sink fanout failing");
                return ExitCode::from(2);
            }
        }
    }
    if wanted.is_empty() {
        wanted = ["raw", "ingest", "e2e", "fanout", "failing", "rerun", "workflow", "sse", "sink"]
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
    println!(
        "{:<12} {:>10} {:>12} {:>9} {:>9} {:>9} {:>10}",
        "scenario", "count", "per_second", "p50_ms", "p99_ms", "max_ms", "rss_mb"
    );
    for name in wanted {
        match runtime.block_on(scenarios::run(&name, &settings)) {
            Ok(row) => row.print(),
            Err(e) => {
                eprintln!("{name}: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
