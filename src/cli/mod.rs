//! The operator commands: `hookrelay logs|recover|automations|keys|tail …`, which talk to a
//! running server over its HTTP API. Exit codes scripts can trust: 0 done, 1 the server
//! refused (its error printed as one line), 2 usage (clap's), 3 the server cannot be reached.

mod client;
mod logs;
mod output;
mod recover;
mod resources;

use std::process::ExitCode;

use clap::{Args, Subcommand};

pub use client::CliError;
use client::Client;

/// The exit codes of the operator commands, for `hookrelay --help`.
pub const EXIT_CODES: &str = "Exit codes of logs, recover, automations, keys and tail: 0 done, \
    1 the server refused (its error on one line), 2 usage, 3 the server cannot be reached.";

/// Where the server is and the key to call it with; after any operator command.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the running server.
    #[arg(long, env = "HOOKRELAY_URL", default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// API key (sent as `Api-Key`); its role decides what the server allows.
    #[arg(long, env = "HOOKRELAY_API_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// Print the server's JSON instead of a table or a summary.
    #[arg(long, global = true)]
    json: bool,
}

/// An operator command.
#[derive(Subcommand, Debug)]
pub enum OpsCommand {
    /// Automation logs: list with filters, show one, rerun one.
    Logs {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: logs::LogsCommand,
    },
    /// Re-queue the deliveries that ended failed in a window, with a progress bar.
    Recover {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        args: recover::RecoverArgs,
    },
    /// Automations (the subscribed endpoints).
    Automations {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: resources::AutomationsCommand,
    },
    /// API keys with roles (admin).
    Keys {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: resources::KeysCommand,
    },
    /// Follow new logs as they are written, one line each, until Ctrl-C.
    Tail {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        args: logs::TailArgs,
    },
}

/// Runs `command`, prints its error (if any) as one line on stderr, and gives its exit code.
pub fn run(command: OpsCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

async fn dispatch(command: OpsCommand) -> Result<(), CliError> {
    let connect = |s: &ServerArgs| Client::new(&s.url, s.key.clone());
    match command {
        OpsCommand::Logs { server, command } => {
            logs::run(&connect(&server)?, command, server.json).await
        }
        OpsCommand::Recover { server, args } => {
            recover::run(&connect(&server)?, args, server.json).await
        }
        OpsCommand::Automations { server, command } => {
            resources::automations(&connect(&server)?, command, server.json).await
        }
        OpsCommand::Keys { server, command } => {
            resources::keys(&connect(&server)?, command, server.json).await
        }
        OpsCommand::Tail { server, args } => {
            logs::tail(&connect(&server)?, args, server.json).await
        }
    }
}
