//! Bounded fuzz / property tests over hookrelay's request decoders (issue 5, item 6).
//!
//! - `decoders`: the pure decoders in-process (A1 ranges, config files, the sheets row
//!   flattener): no panic, A1 ranges round-trip through `Display`.
//! - `http`: random and mutated JSON bodies, query strings and multipart bodies against one
//!   running relay per test: never a 5xx or a dropped connection, every 4xx a JSON body
//!   with `code` and `message`, nothing written by a rejected request, `/healthz` still up.
//! - `bugs`: minimal failing inputs found by the properties, as ignored tests.
//!
//! Each property runs a bounded number of cases (see [`strategies::config`]), so the whole
//! target stays well under a minute. Run longer with
//! `PROPTEST_CASES=100000 cargo test --test fuzz` (the variable replaces every default).
//! Failures are not persisted to files: a failing run prints the shrunk input instead.

#[path = "../common/mod.rs"]
mod common;

mod bugs;
mod decoders;
mod http;
mod http_util;
mod strategies;
