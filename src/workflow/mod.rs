//! Workflows: app definitions, node types, the runner, run events (SSE), and the
//! completion each finished run hands to the relay.

pub mod app;
mod app_checks;
pub mod completion;
pub mod definitions;
pub mod error;
pub mod events;
pub mod files;
pub mod graph;
mod node_keys;
pub mod nodes;
pub mod runner;
pub mod service;
pub mod sse;
pub mod upstream;
pub mod variables;
