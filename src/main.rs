//! `hookrelay serve [--config FILE]`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookrelay::config::{Config, LogFormat};
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
    about = "Webhook automation relay with an embedded SQLite store"
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
    }
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("config error: {e}");
            for line in e.context.iter().flat_map(|c| c.lines()) {
                eprintln!("  {line}");
            }
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    hookrelay::startup::log_settings(&config, path.as_deref());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookrelay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hookrelay::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrelay: {e:#}");
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
