//! hookrelay: a single-binary webhook automation relay with an embedded SQLite store.
//!
//! Layout: [`config`] (one typed config), [`store`] (SQLite, one writer with group commit),
//! [`relay`] (the one way messages enter: stored, then handed to the dispatcher),
//! [`delivery`] (dispatcher, lanes and call slots, signing, retry policy, recover jobs),
//! [`outbound`] (the HTTP client with its SSRF guard, the error codes a call's log carries,
//! and direct calls: reruns and test calls), [`workflow`] (the workflow apps and their runs),
//! [`api`] (handlers, one file per resource, and the route table the router is built from),
//! [`server`] (wiring, start-up, shutdown),
//! [`startup`] (what the server says as it starts), [`receive`] (a stand-in webhook receiver
//! for trying it out).

pub mod api;
pub mod auth;
pub mod config;
pub mod console;
pub mod delivery;
pub mod email;
pub mod ids;
pub mod listener;
pub mod metrics;
pub mod outbound;
pub mod receive;
pub mod redact;
pub mod relay;
pub mod retention;
pub mod rollup;
pub mod server;
pub mod sheets;
pub mod startup;
pub mod store;
pub mod time;
pub mod workflow;

#[cfg(test)]
mod core_independence;
