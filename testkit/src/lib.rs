//! The one harness of hookrelay's integration tests, compiled once for every test binary:
//! the real `hookrelay` binary on 127.0.0.1 with a real SQLite file ([`Relay`]), typed
//! calls to its API, programmable receivers that record every call ([`Receiver`]), an
//! independent Standard Webhooks signer and verifier ([`signing`]), the demo app of
//! `config.example.toml` ([`apps`]), and the SSRF matrix ([`ssrf`]).

use std::collections::HashMap;
use std::sync::Once;
use std::time::Duration;

use serde_json::Value;

mod api;
pub mod apps;
pub mod crash;
pub mod instances;
pub mod postgres;
mod receiver;
mod relay;
pub mod signing;
pub mod slow;
pub mod ssrf;

pub use api::{ENDPOINTS, LOGS};
pub use receiver::{Behaviour, Received, Receiver};
pub use relay::Relay;
pub use signing::verify_signature;

/// The admin key every test server is started with.
pub const KEY: &str = "test-admin-key-0123456789";

/// How long a wait for something a working relay does within a second or two (a delivery,
/// a log, a run, an SSE frame) may take before it counts as a failure. Generous, because two
/// shared cores run the suite; a wait ends as soon as its condition holds, so this only
/// bounds how long a broken mechanism takes to fail.
pub const WAIT: Duration = Duration::from_secs(20);

/// A retry schedule compressed for tests: 200 ms, 400 ms, 800 ms … with ±10 % jitter.
pub const FAST_RETRIES: &str = r#"
[delivery]
initial_backoff_ms = 200
backoff_multiplier = 2.0
max_backoff_ms = 2000
backoff_jitter = 0.1
max_attempts = 4
poll_interval_ms = 50
request_timeout_ms = 2000
connect_timeout_ms = 1000
max_retry_after_secs = 5
"#;

static CRYPTO: Once = Once::new();

/// An HTTP client for talking to the relay.
pub fn client() -> reqwest::Client {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// Counts of a JSON array's values by a string key.
pub fn count_by(items: &[Value], key: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for item in items {
        *out.entry(item[key].as_str().unwrap_or("").to_string()).or_insert(0) += 1;
    }
    out
}

/// The one delivery id of a `POST /v1/messages` answer (asserting there is exactly one).
pub fn first_delivery(message: &Value) -> String {
    let ids = message["delivery_ids"].as_array().expect("delivery_ids");
    assert_eq!(ids.len(), 1, "{message}");
    ids[0].as_str().expect("delivery id").to_string()
}

/// Most deliveries a `kill -9` can leave called (or about to be) without their outcome
/// committed: what a restart logs `E_INTERRUPTED` and sends again, each at most once more.
/// A delivery is taken to call (`claimed = 1`) only with a global slot and a lane slot set
/// aside for it (`Lanes::reserve`); `Dispatcher::run_lane` holds its global slot until
/// `record_outcome` has committed the call's log and next state, and a delivery held in the
/// in-memory backlog (`claimed = 2`) is marked started only by that write or a write of its
/// own under the same slot. So each slot has at most one such delivery at any instant;
/// deliveries claimed in a batch but still queued in memory were never called.
pub const fn calls_in_flight_bound(
    global_concurrency: usize,
    per_automation_concurrency: usize,
    automations: usize,
) -> usize {
    let lanes = per_automation_concurrency.saturating_mul(automations);
    if global_concurrency < lanes {
        global_concurrency
    } else {
        lanes
    }
}

/// Raises this process's soft open-file limit to `want` (or its hard limit); the limit in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            }
        }
    }
    limit.rlim_cur
}
