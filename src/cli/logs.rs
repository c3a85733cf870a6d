//! `hookrelay logs list|show|rerun` and `hookrelay tail`.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{encode, Client};
use super::output::{self, at, cell};
use super::CliError;

const LOGS: &str = "/v1/processors/automations/logs";

/// The filters of the logs list (the server checks each and names a bad one).
#[derive(Args, Debug, Clone, Default)]
pub struct LogFilters {
    /// Only this automation's logs (`endp_…`).
    #[arg(long)]
    pub automation_id: Option<String>,
    /// HTTP status of the call (0 = no answer).
    #[arg(long)]
    pub status_code: Option<String>,
    /// Status class: 2xx, 3xx, 4xx or 5xx.
    #[arg(long)]
    pub status_class: Option<String>,
    /// Why the call failed (`E_CONNECTION`, `E_HTTP_STATUS`, …).
    #[arg(long)]
    pub error_code: Option<String>,
    /// The event type of the message sent.
    #[arg(long)]
    pub event_type: Option<String>,
}

impl LogFilters {
    /// The filters given, as (name, value).
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("automation_id", &self.automation_id),
            ("status_code", &self.status_code),
            ("status_class", &self.status_class),
            ("error_code", &self.error_code),
            ("event_type", &self.event_type),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// The logs list's other filters and its page.
#[derive(Args, Debug, Clone, Default)]
pub struct ListArgs {
    #[command(flatten)]
    filters: LogFilters,
    /// Why the call was made: initial, retry, rerun, recover, replay or test.
    #[arg(long)]
    trigger: Option<String>,
    /// true: only successful calls; false: only failed ones.
    #[arg(long)]
    success: Option<String>,
    /// The exact URL called.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Part of the URL called (case-sensitive, up to 200 characters).
    #[arg(long)]
    url_contains: Option<String>,
    /// Created at or after (RFC 3339).
    #[arg(long)]
    created_after: Option<String>,
    /// Created before (RFC 3339).
    #[arg(long)]
    created_before: Option<String>,
    /// Logs per page.
    #[arg(long)]
    limit: Option<String>,
    /// The page after this cursor (from the previous page's `next page` line).
    #[arg(long)]
    after: Option<String>,
    /// The page before this cursor.
    #[arg(long)]
    before: Option<String>,
    /// asc (oldest first) or desc (newest first, the default).
    #[arg(long)]
    order: Option<String>,
}

impl ListArgs {
    fn query(&self) -> String {
        let mut pairs = self.filters.pairs();
        for (name, value) in [
            ("trigger", &self.trigger),
            ("success", &self.success),
            ("webhook_url", &self.webhook_url),
            ("url_contains", &self.url_contains),
            ("created_after", &self.created_after),
            ("created_before", &self.created_before),
            ("limit", &self.limit),
            ("after", &self.after),
            ("before", &self.before),
            ("order", &self.order),
        ] {
            if let Some(v) = value.as_deref() {
                pairs.push((name, v));
            }
        }
        query_string(&pairs)
    }
}

/// `?a=1&b=2`, escaped; empty without pairs.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    if joined.is_empty() {
        String::new()
    } else {
        format!("?{}", joined.join("&"))
    }
}

/// `hookrelay logs …`
#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// A page of logs, newest first, as a table.
    List(Box<ListArgs>),
    /// One log: the request sent and the answer, as JSON.
    Show {
        /// The log's id (`log_auto_…`).
        id: String,
    },
    /// Send a log's request again, now, and show the new attempt.
    Rerun {
        /// The log's id (`log_auto_…`).
        id: String,
    },
}

/// The columns of a log in a table.
const COLUMNS: &[(&str, &str)] = &[
    ("id", "id"),
    ("created_at", "created_at"),
    ("automation", "automation_id"),
    ("trigger", "trigger"),
    ("status", "external_request_log/status_code"),
    ("error", "error_code"),
    ("ms", "external_request_log/duration_ms"),
];

pub async fn run(client: &Client, command: LogsCommand, json: bool) -> Result<(), CliError> {
    match command {
        LogsCommand::List(args) => {
            let answer = client.get(&format!("{LOGS}{}", args.query())).await?;
            output::list(&answer, COLUMNS, json)
        }
        LogsCommand::Show { id } => {
            let log = client.get(&format!("{LOGS}/{}", encode(&id))).await?;
            if json {
                output::raw(&log)
            } else {
                output::pretty(&log)
            }
        }
        LogsCommand::Rerun { id } => {
            let answer = client.post(&format!("{LOGS}/{}/rerun", encode(&id)), None).await?;
            if json {
                return output::raw(&answer);
            }
            let error = match at(&answer, "error") {
                Value::Null => String::new(),
                e => format!(", {}", cell(e)),
            };
            output::line(&format!(
                "rerun of {id}: {} → status {}{error} (new log {})",
                cell(at(&answer, "webhook_url")),
                cell(at(&answer, "status_code")),
                cell(at(&answer, "id")),
            ))
        }
    }
}

/// `hookrelay tail`
#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    #[command(flatten)]
    filters: LogFilters,
    /// How often to ask the server for new logs, milliseconds.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
}

/// One log as one line: time, id, automation, trigger, status, error.
fn tail_line(log: &Value) -> String {
    format!(
        "{} {} {} {} {} {}",
        cell(at(log, "created_at")),
        cell(at(log, "id")),
        cell(at(log, "automation_id")),
        cell(at(log, "trigger")),
        cell(at(log, "external_request_log/status_code")),
        cell(at(log, "error_code")),
    )
}

/// Follows the logs list from the newest log at start: `order=asc&after=<last id>` only
/// ever lists logs written after the cursor (a log's id is taken in the write that records
/// it), so none is missed or printed twice. Stops on Ctrl-C.
pub async fn tail(client: &Client, args: TailArgs, json: bool) -> Result<(), CliError> {
    let filters = args.filters.pairs();
    let mut newest = filters.clone();
    newest.push(("limit", "1"));
    let first = client.get(&format!("{LOGS}{}", query_string(&newest))).await?;
    let mut last: Option<String> = at(&first, "data/0/id").as_str().map(str::to_string);
    // On stderr, so that stdout holds only logs: from here on, every new log is printed.
    eprintln!(
        "tail: following the logs written after {}; Ctrl-C stops",
        last.as_deref().unwrap_or("the start")
    );
    let interval = Duration::from_millis(args.interval_ms.max(10));
    let follow = async {
        loop {
            let mut pairs = filters.clone();
            pairs.extend([("order", "asc"), ("limit", "100")]);
            if let Some(after) = &last {
                pairs.push(("after", after));
            }
            let page = client.get(&format!("{LOGS}{}", query_string(&pairs))).await?;
            let logs = page.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
            for log in &logs {
                if json {
                    output::raw(log)?;
                } else {
                    output::line(&tail_line(log))?;
                }
            }
            if let Some(id) = logs.last().and_then(|l| l["id"].as_str()) {
                last = Some(id.to_string());
            }
            if logs.len() < 100 {
                tokio::time::sleep(interval).await;
            }
        }
    };
    tokio::select! {
        ended = follow => ended,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
