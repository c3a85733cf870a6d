//! `[limits]`: bounds on what the API accepts.

use serde::Deserialize;

use super::{bad, ConfigError};

/// The deepest `max_json_depth` may be set to, serde_json's default recursion limit: the
/// relay parses, drops and serialises request bodies recursively, which is safe for the
/// stack to this depth.
pub const MAX_JSON_DEPTH_CEILING: usize = 128;

/// Bounds on what the API accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, bytes (413 above).
    pub max_body_bytes: usize,
    /// Most levels of arrays and objects a JSON body's top-level member (a message's
    /// `payload`, a run's `inputs`, …) may nest, `{}` being one (400 above).
    pub max_json_depth: usize,
    /// Most `webhook_headers` one automation may carry.
    pub max_webhook_headers: usize,
    /// Largest `limit` of a list call.
    pub max_list_limit: u32,
    /// How long a client may take to send a request's headers, milliseconds (slowloris).
    pub header_read_timeout_ms: u64,
    /// Most columns a worksheet of the sheets sink may grow to.
    pub sheet_max_columns: usize,
    /// Longest cell value the sheets sink stores, characters.
    pub sheet_max_cell_chars: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_json_depth: MAX_JSON_DEPTH_CEILING,
            max_webhook_headers: 32,
            max_list_limit: 100,
            header_read_timeout_ms: 10_000,
            sheet_max_columns: 1000,
            sheet_max_cell_chars: 50_000,
        }
    }
}

impl LimitsConfig {
    /// Rejects values that parse but cannot work.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("limits.max_body_bytes", self.max_body_bytes as u64),
            ("limits.max_list_limit", u64::from(self.max_list_limit)),
            ("limits.header_read_timeout_ms", self.header_read_timeout_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        if !(1..=MAX_JSON_DEPTH_CEILING).contains(&self.max_json_depth) {
            return Err(bad(
                "limits.max_json_depth",
                format!("must be between 1 and {MAX_JSON_DEPTH_CEILING}"),
            ));
        }
        Ok(())
    }
}
