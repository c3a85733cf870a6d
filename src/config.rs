//! The one typed configuration. Sources, lowest precedence first: the documented defaults,
//! the TOML file given with `--config`, then `HOOKRELAY_*` environment variables.
//! Every key is documented in `config.example.toml`; unknown keys are rejected so a typo
//! cannot silently fall back to a default.

mod console;
mod database;
mod delivery;
#[cfg(test)]
mod example_tests;
mod limits;
mod operational;
mod retention;
mod security;
mod toml_errors;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use console::ConsoleConfig;
pub use database::{Database, PostgresUrl};
pub use delivery::DeliveryConfig;
pub use limits::{LimitsConfig, MAX_JSON_DEPTH_CEILING};
pub use operational::OperationalConfig;
pub use retention::RetentionConfig;
pub use security::SecurityConfig;

/// `config.example.toml`: every key with its default, plus the demo apps; the configuration
/// used when no file is given.
pub const EXAMPLE: &str = include_str!("../config.example.toml");

/// A configuration problem, naming the key at fault. Shown as `config error at KEY: PROBLEM`
/// on one line, then the context (the TOML caret diagram) on its own lines.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// The dotted key (`delivery.max_attempts`, `apps[0].id`) or environment variable that is
    /// wrong.
    pub key: String,
    /// What is wrong with it, on one line.
    pub problem: String,
    /// Where in the file, when known: the parser's lines pointing at the spot.
    pub context: Option<String>,
}

impl ConfigError {
    /// `error`, met parsing the TOML `text`, naming the dotted key at the parser's position
    /// (`delivery.max_attempts`, `apps[0].nodes[2].type`), with its caret diagram as context.
    pub fn of_toml(text: &str, error: &toml::de::Error) -> Self {
        toml_errors::config_error(text, error)
    }

    /// The error, its context saying it is in the file at `path`.
    pub fn in_file(mut self, path: &Path) -> Self {
        let diagram = self.context.take().map_or(String::new(), |d| format!("\n{d}"));
        self.context = Some(format!("in {}{diagram}", path.display()));
        self
    }
}

fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_string(), problem: problem.into(), context: None }
}

/// The environment `hookrelay serve` reads, with the defaults, for `serve --help`. Kept
/// beside [`Config::apply_env`]; a test checks that every variable it reads is listed.
pub const ENVIRONMENT_HELP: &str = "\
Environment (each overrides its key in the file; [default] when neither sets it):
  HOOKRELAY_LISTEN                 address to listen on, host:port [default: 127.0.0.1:8080]
  HOOKRELAY_DATABASE               SQLite database file, created when missing, or a PostgreSQL
                                   postgres://user:password@host:port/db URL [default: ./hookrelay.db]
  HOOKRELAY_API_KEYS               admin API keys, comma-separated, each at least 16 characters
                                   [default: none; a key is generated and printed at first start]
  HOOKRELAY_ALLOW_PRIVATE_TARGETS  true: calls may reach any address, not only globally
                                   reachable ones (turns the SSRF guard off) [default: false]
  HOOKRELAY_LOG_FORMAT             text | json log lines on stderr [default: text]
  RUST_LOG                         log filter, e.g. warn, or info,hookrelay=debug [default: info]
  OPENAI_API_KEY                   read by the built-in configuration's `summarize` demo app

Without --config, the built-in configuration runs: config.example.toml's defaults and its two
demo apps, whose app keys are public.";

/// Top-level settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// SQLite database file (created when missing), or a PostgreSQL `postgres://` URL.
    pub database: Database,
    /// Admin API keys. When empty, a key is generated at first start and only its hash kept.
    pub api_keys: Vec<String>,
    /// `organization_id` reported on AutomationLogs.
    pub organization_id: String,
    /// `text` or `json` log lines on stderr.
    pub log_format: LogFormat,
    /// Outgoing-call safety.
    pub security: SecurityConfig,
    /// Delivery, retry and capture settings.
    pub delivery: DeliveryConfig,
    /// Input bounds of the HTTP API.
    pub limits: LimitsConfig,
    /// SQLite tuning.
    pub store: StoreConfig,
    /// How long logs, messages and content are kept.
    pub retention: RetentionConfig,
    /// Settings shared by every workflow app.
    pub workflow: WorkflowConfig,
    /// `/metrics` settings.
    pub metrics: MetricsConfig,
    /// The operator console's sessions.
    pub console: ConsoleConfig,
    /// Endpoint health: automatic disable, operational webhooks.
    pub operational: OperationalConfig,
    /// Workflow apps served by the Dify-compatible API (`[[apps]]`), kept unread: the
    /// workflow module reads and checks them from [`Config::source`] at start-up, so the
    /// relay core does not depend on it.
    pub apps: Vec<toml::Table>,
    /// The TOML text the configuration was read from, for the sections other modules read
    /// (`[[apps]]`), whose errors then name their keys as this module's do.
    #[serde(skip)]
    pub source: String,
}

/// Settings of the Workflow App API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowConfig {
    /// Interval of `event: ping` on streaming runs, milliseconds (Dify: 10 s).
    pub ping_interval_ms: u64,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        Self { ping_interval_ms: 10_000 }
    }
}

/// Settings of `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Most automations with `hookrelay_automation_attempts` series of their own; the
    /// attempts of the others are counted under `automation="_other"`. Bounds the series a
    /// scrape returns whatever the number of automations.
    pub automation_labels: usize,
}

/// Most `metrics.automation_labels`: four series each, and a scrape renders them all.
const MAX_AUTOMATION_LABELS: usize = 10_000;

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { automation_labels: 100 }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// SQLite settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Read-only connections for queries (the single writer is separate).
    pub reader_connections: usize,
    /// Most queued writes committed in one transaction (group commit).
    pub max_batch: usize,
    /// `synchronous` pragma: `full` makes each commit durable against power loss;
    /// `normal` (WAL) survives a process crash (kill -9) but not an OS crash.
    pub synchronous: Synchronous,
    /// MiB of the database each connection memory-maps (0 = none). Off by default: every
    /// connection maps the same file pages again, and each mapping counts in the process's
    /// RSS; with a million logs, queries are fast without it.
    pub mmap_size_mb: u64,
    /// How long a write waits for a lock another process holds on the database before it is
    /// refused (`database_locked`), in ms.
    pub busy_timeout_ms: u64,
    /// PostgreSQL only: connections this instance keeps to the database, at most (1 to 1000).
    pub postgres_pool_size: usize,
}

/// SQLite `synchronous` level.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Durable against power loss.
    Full,
    /// Durable against process crashes.
    Normal,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: Database::Sqlite(PathBuf::from("./hookrelay.db")),
            api_keys: Vec::new(),
            organization_id: "org_hookrelay".into(),
            log_format: LogFormat::Text,
            security: SecurityConfig::default(),
            delivery: DeliveryConfig::default(),
            limits: LimitsConfig::default(),
            store: StoreConfig::default(),
            retention: RetentionConfig::default(),
            workflow: WorkflowConfig::default(),
            metrics: MetricsConfig::default(),
            console: ConsoleConfig::default(),
            operational: OperationalConfig::default(),
            apps: Vec::new(),
            source: String::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            reader_connections: 4,
            max_batch: 1024,
            synchronous: Synchronous::Normal,
            mmap_size_mb: 0,
            busy_timeout_ms: 5000,
            postgres_pool_size: 16,
        }
    }
}

impl Config {
    /// Loads `path` (or, without one, the embedded `config.example.toml`, whose demo app
    /// makes the first minute work), then the environment, and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
                Self::from_toml(&text).map_err(|e| e.in_file(path))?
            }
            None => Self::from_toml(EXAMPLE)?,
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML document; the error names the key at the parser's position.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| ConfigError::of_toml(text, &e))?;
        config.security.read_written()?;
        config.source = text.to_string();
        Ok(config)
    }

    /// Applies `HOOKRELAY_*` overrides read through `get` (each listed in [`ENVIRONMENT_HELP`]).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("HOOKRELAY_LISTEN") {
            self.listen = v
                .parse()
                .map_err(|_| bad("HOOKRELAY_LISTEN", format!("`{v}` is not host:port")))?;
        }
        if let Some(v) = get("HOOKRELAY_DATABASE") {
            self.database = Database::from_setting(&v);
        }
        if let Some(v) = get("HOOKRELAY_API_KEYS") {
            self.api_keys =
                v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect();
        }
        if let Some(v) = get("HOOKRELAY_ALLOW_PRIVATE_TARGETS") {
            self.security.allow_private_targets =
                parse_bool("HOOKRELAY_ALLOW_PRIVATE_TARGETS", &v)?;
        }
        if let Some(v) = get("HOOKRELAY_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(bad("HOOKRELAY_LOG_FORMAT", "expected `text` or `json`")),
            };
        }
        Ok(())
    }

    /// Rejects values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        let positive = [
            ("delivery.connect_timeout_ms", d.connect_timeout_ms),
            ("delivery.request_timeout_ms", d.request_timeout_ms),
            ("delivery.max_attempts", u64::from(d.max_attempts)),
            ("delivery.initial_backoff_ms", d.initial_backoff_ms),
            ("delivery.max_backoff_ms", d.max_backoff_ms),
            ("delivery.global_concurrency", d.global_concurrency as u64),
            ("delivery.per_automation_concurrency", d.per_automation_concurrency as u64),
            ("delivery.per_automation_backlog", d.per_automation_backlog as u64),
            ("delivery.lane_backlog", d.lane_backlog as u64),
            ("delivery.poll_interval_ms", d.poll_interval_ms),
            ("delivery.recover_max_deliveries", u64::from(d.recover_max_deliveries)),
            ("delivery.recover_chunk_size", u64::from(d.recover_chunk_size)),
            ("delivery.failure_log_interval_ms", d.failure_log_interval_ms),
            ("store.reader_connections", self.store.reader_connections as u64),
            ("store.max_batch", self.store.max_batch as u64),
            ("workflow.ping_interval_ms", self.workflow.ping_interval_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        if !(d.backoff_multiplier >= 1.0 && d.backoff_multiplier.is_finite()) {
            return Err(bad("delivery.backoff_multiplier", "must be a number >= 1"));
        }
        if !(0.0..1.0).contains(&d.backoff_jitter) {
            return Err(bad("delivery.backoff_jitter", "must be in [0, 1)"));
        }
        // Checked here, as the HTTP client checks it when it is built: a bad value would
        // otherwise stop start-up with the client's error, naming no key.
        if reqwest::header::HeaderValue::from_str(&d.user_agent).is_err() {
            let problem = "must be a valid HTTP header value: no newline or other control \
                           character (a tab aside)";
            return Err(bad("delivery.user_agent", problem));
        }
        self.limits.validate()?;
        self.retention.validate()?;
        self.console.validate()?;
        self.operational.validate()?;
        if self.metrics.automation_labels > MAX_AUTOMATION_LABELS {
            let problem = format!("must be at most {MAX_AUTOMATION_LABELS}");
            return Err(bad("metrics.automation_labels", problem));
        }
        if !(1..=1000).contains(&self.store.postgres_pool_size) {
            return Err(bad("store.postgres_pool_size", "must be between 1 and 1000"));
        }
        if self.store.mmap_size_mb > 4096 {
            return Err(bad("store.mmap_size_mb", "must be at most 4096"));
        }
        if self.store.busy_timeout_ms > 60_000 {
            return Err(bad("store.busy_timeout_ms", "must be at most 60000"));
        }
        if self.api_keys.iter().any(|k| k.len() < 16) {
            return Err(bad("api_keys", "every key must be at least 16 characters"));
        }
        if let Some(problem) = self.database.problem() {
            return Err(bad("database", problem));
        }
        if self.organization_id.is_empty() {
            return Err(bad("organization_id", "must not be empty"));
        }
        Ok(())
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(bad(key, format!("`{v}` is not a boolean (true/false)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_wrong_keys_are_named() {
        let e = Config::from_toml("[delivery]\nmax_atempts = 3\n").unwrap_err();
        assert_eq!(e.key, "delivery.max_atempts", "{e}");
        let e = Config::from_toml("listen = 5\n").unwrap_err();
        assert_eq!(e.key, "listen", "{e}");
        let e = Config::from_toml("[delivery]\nrequest_timeout_ms = \"x\"\n").unwrap_err();
        assert_eq!(e.key, "delivery.request_timeout_ms", "{e}");
        let mut c = Config::default();
        c.delivery.max_attempts = 0;
        assert_eq!(c.validate().unwrap_err().key, "delivery.max_attempts");
        for depth in [0, MAX_JSON_DEPTH_CEILING + 1] {
            let mut c = Config::default();
            c.limits.max_json_depth = depth;
            assert_eq!(c.validate().unwrap_err().key, "limits.max_json_depth", "{depth}");
        }
    }

    /// config.example.toml documents the defaults: apart from its demo apps, parsing it must
    /// give exactly what an empty file gives; and its apps must pass validation.
    #[test]
    fn example_file_is_the_defaults() {
        let mut example = Config::from_toml(EXAMPLE).unwrap();
        example.validate().unwrap();
        assert_eq!(example.apps.len(), 2);
        example.apps.clear();
        example.source.clear();
        assert_eq!(format!("{example:?}"), format!("{:?}", Config::from_toml("").unwrap()));
    }

    #[test]
    fn env_overrides_file() {
        let mut c = Config::from_toml("listen = \"127.0.0.1:9000\"\n").unwrap();
        c.apply_env(|k| match k {
            "HOOKRELAY_LISTEN" => Some("127.0.0.1:9100".into()),
            "HOOKRELAY_API_KEYS" => Some("k1-aaaaaaaaaaaaaaaa, k2-bbbbbbbbbbbbbbbb".into()),
            "HOOKRELAY_ALLOW_PRIVATE_TARGETS" => Some("true".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.api_keys.len(), 2);
        assert!(c.security.allow_private_targets);
        let e = c.apply_env(|k| (k == "HOOKRELAY_ALLOW_PRIVATE_TARGETS").then(|| "maybe".into()));
        assert_eq!(e.unwrap_err().key, "HOOKRELAY_ALLOW_PRIVATE_TARGETS");
    }
}
