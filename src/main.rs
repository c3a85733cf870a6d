//! `hookrelay serve [--config FILE]`, `hookrelay receive`, a stand-in webhook receiver, and
//! the operator commands (`logs`, `recover`, `automations`, `keys`, `tail`; see `cli`).

mod cli;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use axum::http::StatusCode;
use clap::{Parser, Subcommand};
use hookrelay::config::{Config, ConfigError, LogFormat};
use hookrelay::delivery::signing;
use hookrelay::receive::{self, ReceiveOptions};
use hookrelay::workflow::app::AppDefinition;
use hookrelay::workflow::definitions;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: the relay allocates many short-lived buffers across
/// threads (request bodies, headers, log rows), where glibc's arena locking and chunk
/// consolidation showed up at ~10 % of CPU in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hookrelay",
    version,
    about = "Webhook automation relay with an embedded SQLite store",
    after_help = cli::EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay (HTTP API + dispatcher).
    #[command(after_help = hookrelay::config::ENVIRONMENT_HELP)]
    Serve {
        /// TOML configuration file (every key: config.example.toml) [default: the built-in
        /// configuration, see below]
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run a stand-in webhook receiver: answers every call with one status and prints it.
    Receive {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// HTTP status every call is answered with.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..=599))]
        status: u16,
        /// A `whsec_` signing secret: calls without a valid Standard Webhooks signature get 401.
        #[arg(long)]
        secret: Option<String>,
    },
    #[command(flatten)]
    Ops(Box<cli::OpsCommand>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Receive { listen, status, secret } => receive(listen, status, secret),
        Command::Ops(command) => cli::run(*command),
    }
}

/// The configuration, then the workflow apps it holds (read by the workflow module, which
/// the core configuration does not know).
fn load(path: Option<&Path>) -> Result<(Config, Vec<AppDefinition>), ConfigError> {
    let config = Config::load(path)?;
    let apps = definitions::load(&config.source).map_err(|e| match path {
        Some(path) => e.in_file(path),
        None => e,
    })?;
    Ok((config, apps))
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    let (config, apps) = match load(path.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("config error at {}: {}", e.key, e.problem);
            for line in e.context.iter().flat_map(|c| c.lines()) {
                eprintln!("  {line}");
            }
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    hookrelay::startup::log_settings(&config, &apps, path.as_deref());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookrelay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hookrelay::server::run(config, apps)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrelay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn receive(listen: SocketAddr, status: u16, secret: Option<String>) -> ExitCode {
    let Ok(status) = StatusCode::from_u16(status) else {
        eprintln!("hookrelay receive: --status {status} is not an HTTP status");
        return ExitCode::from(2);
    };
    if let Some(secret) = &secret {
        if !signing::is_valid_secret(secret) {
            eprintln!(
                "hookrelay receive: --secret must be a whsec_ secret (base64 after the prefix)"
            );
            return ExitCode::from(2);
        }
    }
    let options = ReceiveOptions { listen, status, secret };
    let served = tokio::runtime::Runtime::new().and_then(|rt| rt.block_on(receive::run(options)));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrelay receive: cannot listen on {listen}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines on stderr, filtered by RUST_LOG (default `info`); colours only on a terminal, so
/// a file or a log collector gets plain text.
fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
