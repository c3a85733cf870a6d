//! `hookrelay automations …` and `hookrelay keys …`: thin commands over their API routes;
//! lists print a table, single objects their JSON (one line with `--json`).

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{encode, Client};
use super::output::{self, at, cell};
use super::CliError;

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

/// `hookrelay automations …`
#[derive(Subcommand, Debug)]
pub enum AutomationsCommand {
    /// The automations, as a table.
    List,
    /// One automation.
    Show {
        /// `endp_…`
        id: String,
    },
    /// Create an automation (admin); prints it with its signing secret, shown once.
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// The processor whose completions it receives.
        #[arg(long)]
        processor_id: String,
        /// Where the calls go.
        #[arg(long)]
        webhook_url: String,
        /// Only these event types (repeat the option); every event type when not given.
        #[arg(long = "event-type")]
        event_types: Vec<String>,
    },
    /// Enable an automation (operator).
    Enable {
        /// `endp_…`
        id: String,
    },
    /// Disable an automation: its deliveries wait until it is enabled again (operator).
    Disable {
        /// `endp_…`
        id: String,
    },
    /// Give an automation a new signing secret (admin); prints it, shown once.
    RotateSecret {
        /// `endp_…`
        id: String,
    },
    /// Send a sample call to an automation and show the log it produced (operator).
    Test {
        /// `endp_…`
        id: String,
    },
}

/// `hookrelay keys …`
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; prints it once (only its hash is stored).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// When it stops working (RFC 3339); never when not given.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// The keys, without their secrets, as a table.
    List,
    /// Revoke a key, effective at once.
    Revoke {
        /// The key's id (`key_…`).
        id: String,
    },
}

const AUTOMATION_COLUMNS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("processor", "processor_id"),
    ("enabled", "enabled"),
    ("webhook_url", "webhook_url"),
];

const KEY_COLUMNS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("role", "role"),
    ("created_at", "created_at"),
    ("expires_at", "expires_at"),
    ("last_used_at", "last_used_at"),
    ("revoked_at", "revoked_at"),
];

/// Prints one object: indented JSON, or as it came with `json`.
fn object(value: &Value, json: bool) -> Result<(), CliError> {
    if json {
        output::raw(value)
    } else {
        output::pretty(value)
    }
}

pub async fn automations(
    client: &Client,
    command: AutomationsCommand,
    json: bool,
) -> Result<(), CliError> {
    let one = |id: &str| format!("{ENDPOINTS}/{}", encode(id));
    match command {
        AutomationsCommand::List => output::list(
            &client.get(&format!("{ENDPOINTS}?limit=100")).await?,
            AUTOMATION_COLUMNS,
            json,
        ),
        AutomationsCommand::Show { id } => object(&client.get(&one(&id)).await?, json),
        AutomationsCommand::Create { name, processor_id, webhook_url, event_types } => {
            let mut body =
                json!({"name": name, "processor_id": processor_id, "webhook_url": webhook_url});
            if !event_types.is_empty() {
                body["event_types"] = event_types.into();
            }
            object(&client.post(ENDPOINTS, Some(body)).await?, json)
        }
        AutomationsCommand::Enable { id } => switch(client, &one(&id), "enable", json).await,
        AutomationsCommand::Disable { id } => switch(client, &one(&id), "disable", json).await,
        AutomationsCommand::RotateSecret { id } => {
            let answer = client.post(&format!("{}/secret/rotate", one(&id)), None).await?;
            object(&answer, json)
        }
        AutomationsCommand::Test { id } => {
            let path = format!("/v1/processors/automations/tests/webhook/{}", encode(&id));
            object(&client.post(&path, None).await?, json)
        }
    }
}

/// `POST {path}/{action}` (enable or disable); prints the automation's new state.
async fn switch(client: &Client, path: &str, action: &str, json: bool) -> Result<(), CliError> {
    let answer = client.post(&format!("{path}/{action}"), None).await?;
    if json {
        return output::raw(&answer);
    }
    let state = if answer["enabled"] == true { "enabled" } else { "disabled" };
    output::line(&format!("automation {} {state}", cell(at(&answer, "id"))))
}

pub async fn keys(client: &Client, command: KeysCommand, json: bool) -> Result<(), CliError> {
    match command {
        KeysCommand::Create { name, role, expires_at } => {
            let mut body = json!({"name": name, "role": role});
            if let Some(at) = expires_at {
                body["expires_at"] = at.into();
            }
            let answer = client.post("/v1/keys", Some(body)).await?;
            if json {
                return output::raw(&answer);
            }
            output::line(&format!(
                "key {} ({}) created; it is shown this once:",
                cell(at(&answer, "id")),
                cell(at(&answer, "role"))
            ))?;
            output::line(&cell(at(&answer, "key")))
        }
        KeysCommand::List => {
            output::list(&client.get("/v1/keys?limit=100").await?, KEY_COLUMNS, json)
        }
        KeysCommand::Revoke { id } => {
            let answer = client.delete(&format!("/v1/keys/{}", encode(&id))).await?;
            if json {
                return output::raw(&answer);
            }
            output::line(&format!("key {id} revoked"))
        }
    }
}
