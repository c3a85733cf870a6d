//! `hookrelay recover --since 1h [filters] [--dry-run]`: starts a recover job and follows it
//! to its end with a progress bar (plain progress lines when stdout is not a terminal).

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::client::{encode, Client};
use super::logs::LogFilters;
use super::output::{self, cell};
use super::CliError;

const RECOVER: &str = "/v1/processors/automations/logs/recover";

/// `hookrelay recover`
#[derive(Args, Debug, Clone)]
pub struct RecoverArgs {
    /// Window start: a duration back from now (90s, 30m, 1h, 2d), RFC 3339 or Unix seconds.
    #[arg(long)]
    since: String,
    /// Window end (default: now), in the same forms.
    #[arg(long)]
    until: Option<String>,
    #[command(flatten)]
    filters: LogFilters,
    /// Only count the deliveries a job would re-queue; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// How often to ask for the job's progress, milliseconds.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
}

/// The job's numbers as one line.
fn progress(job: &Value) -> String {
    format!(
        "requeued {}/{}, done {}, failed {}, pending {}",
        cell(&job["requeued"]),
        cell(&job["total"]),
        cell(&job["done"]),
        cell(&job["failed"]),
        cell(&job["pending"]),
    )
}

pub async fn run(client: &Client, args: RecoverArgs, json: bool) -> Result<(), CliError> {
    let mut body = json!({"since": args.since, "dry_run": args.dry_run});
    if let Some(until) = &args.until {
        body["until"] = until.clone().into();
    }
    for (name, value) in args.filters.pairs() {
        body[name] = match (name, value.parse::<u16>()) {
            ("status_code", Ok(code)) => code.into(),
            _ => value.into(),
        };
    }
    let answer = client.post(RECOVER, Some(body)).await?;
    if json && args.dry_run {
        return output::raw(&answer);
    }
    if let Some(note) = answer["note"].as_str() {
        eprintln!("note: {note}");
    }
    if args.dry_run {
        return output::line(&format!(
            "dry run: {} {} would be re-queued{}; {} still retrying",
            cell(&answer["total"]),
            if answer["total"] == 1 { "delivery" } else { "deliveries" },
            if answer["capped"] == true { " (capped: more matched)" } else { "" },
            cell(&answer["still_retrying"]),
        ));
    }
    let id = answer["id"].as_str().unwrap_or_default().to_string();
    let job = follow(client, &id, answer, Duration::from_millis(args.interval_ms.max(10))).await?;
    if json {
        return output::raw(&job);
    }
    output::line(&format!("recover {id} {}: {}", cell(&job["status"]), progress(&job)))
}

/// Polls job `id` until it is no longer running; shows its progress on the way.
async fn follow(
    client: &Client,
    id: &str,
    mut job: Value,
    interval: Duration,
) -> Result<Value, CliError> {
    let total = job["total"].as_u64().unwrap_or(0);
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} attempted again  {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut shown = String::new();
    loop {
        let line = progress(&job);
        let attempted = job["done"].as_u64().unwrap_or(0) + job["failed"].as_u64().unwrap_or(0);
        match &bar {
            Some(bar) => {
                bar.set_length(job["total"].as_u64().unwrap_or(total));
                bar.set_position(attempted);
                bar.set_message(line.clone());
            }
            None if line != shown => output::line(&format!("recover {id}: {line}"))?,
            None => {}
        }
        shown = line;
        if job["status"] != "running" {
            break;
        }
        tokio::time::sleep(interval).await;
        job = client.get(&format!("{RECOVER}/{}", encode(id))).await?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(job)
}
