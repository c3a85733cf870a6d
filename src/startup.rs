//! What the server says about itself as it starts, once each: the configuration in force, the
//! database, the SSRF guard, and warnings for settings that expose it. The address it listens
//! on is printed once too, on stdout, by [`crate::server::run`].

use std::path::Path;

use crate::config::{Config, Database, EXAMPLE};
use crate::workflow::app::AppDefinition;
use crate::workflow::definitions;

/// Logs the settings a person starting the server must know about.
pub fn log_settings(config: &Config, apps: &[AppDefinition], file: Option<&Path>) {
    match file {
        Some(file) => tracing::info!(path = %absolute(file), "configuration file"),
        None => tracing::info!(
            "built-in configuration (config.example.toml: the defaults and its demo apps)"
        ),
    }
    match &config.database {
        Database::Sqlite(path) => tracing::info!(path = %absolute(path), "database"),
        // Shown without its password (see `Database`'s Display).
        postgres => tracing::info!(url = %postgres, "database (PostgreSQL)"),
    }
    let security = &config.security;
    if security.allow_private_targets {
        tracing::warn!(
            "SSRF guard off: security.allow_private_targets (HOOKRELAY_ALLOW_PRIVATE_TARGETS) \
             is true, so calls may reach loopback, private and cloud metadata addresses"
        );
    } else if security.allowed_cidrs.is_empty() {
        tracing::info!("SSRF guard on: calls reach only globally reachable addresses");
    } else {
        let allowed: Vec<String> = security.allowed_cidrs.iter().map(ToString::to_string).collect();
        tracing::info!(
            allowed_cidrs = %allowed.join(", "),
            "SSRF guard on: calls reach only globally reachable addresses and allowed_cidrs"
        );
    }
    let public = apps_with_public_keys(apps);
    if !public.is_empty() {
        tracing::warn!(
            apps = %public.join(", "),
            "apps with the demo keys published in config.example.toml are active: anyone can \
             run them; remove them, or run with your own --config, before exposing the server"
        );
    }
}

/// Ids of the configured apps holding a key of config.example.toml's demo apps (public, since
/// that file is), whether they run from the built-in configuration or a copied file.
fn apps_with_public_keys(apps: &[AppDefinition]) -> Vec<String> {
    let Ok(example) = definitions::load(EXAMPLE) else {
        return Vec::new();
    };
    let published: Vec<&String> = example.iter().flat_map(|a| &a.api_keys).collect();
    apps.iter()
        .filter(|app| app.api_keys.iter().any(|k| published.contains(&k)))
        .map(|app| app.id.clone())
        .collect()
}

/// `path` made absolute against the working directory, for a log a person reads elsewhere.
fn absolute(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}
