//! `[limits]`: bounds on what the HTTP API accepts and on the connections it keeps.

use serde::Deserialize;

use super::{bad, ConfigError};

/// Largest `limits.max_uri_bytes`: hyper refuses longer URIs itself (414, empty body).
const MAX_URI_BYTES: usize = 65_534;
/// Largest `limits.max_header_bytes`: with a URI of `MAX_URI_BYTES`, a head this large still
/// fits hyper's read buffer (~400 KiB), past which hyper refuses it itself (431, empty body).
const MAX_HEADER_BYTES: usize = 256 * 1024;

/// The deepest `max_json_depth` may be set to, serde_json's default recursion limit: the
/// relay parses, drops and serialises request bodies recursively, which is safe for the
/// stack to this depth.
pub const MAX_JSON_DEPTH_CEILING: usize = 128;

/// Bounds on what the API accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, bytes (413 above). Also the largest message a workflow run
    /// makes: its completion webhook (a run whose outputs pass it fails), an llm node's reply,
    /// and the events that may wait for a streaming run's client before it is cut off.
    pub max_body_bytes: usize,
    /// Most levels of arrays and objects a JSON body's top-level member (a message's
    /// `payload`, a run's `inputs`, …) may nest, `{}` being one (400 above).
    pub max_json_depth: usize,
    /// Most `webhook_headers` one automation may carry.
    pub max_webhook_headers: usize,
    /// Largest `limit` of a list call.
    pub max_list_limit: u32,
    /// How long a client may take to send a request's headers, milliseconds (slowloris);
    /// for a connection's first request, counted from its accept, whatever it speaks.
    pub header_read_timeout_ms: u64,
    /// Longest time a request body may take to arrive whole, milliseconds, from its
    /// request's start (408 past it); each piece must also come within
    /// `header_read_timeout_ms` of the last.
    pub body_read_timeout_ms: u64,
    /// How long a connection that has served a request stays open with none in flight,
    /// milliseconds (HTTP/2; HTTP/1 keep-alive also within `header_read_timeout_ms`).
    pub idle_timeout_ms: u64,
    /// Longest request URI (path and query), bytes (414 above).
    pub max_uri_bytes: usize,
    /// Largest total of a request's header names and values, bytes (431 above).
    pub max_header_bytes: usize,
    /// Most connections open at once; past it, the one that has waited on its client the
    /// longest (idle, or only receiving request bodies) is closed to make room, or, when
    /// none waits, the new one gets a 503.
    pub max_connections: usize,
    /// Most uploads (`POST /v1/files/upload`) received at once; past it, 503
    /// `too_many_uploads` before the body is read. Each may hold its app's largest file.
    pub max_concurrent_uploads: usize,
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
            body_read_timeout_ms: 20_000,
            idle_timeout_ms: 60_000,
            max_connections: 512,
            max_concurrent_uploads: 4,
            max_uri_bytes: 8192,
            max_header_bytes: 32 * 1024,
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
            ("limits.body_read_timeout_ms", self.body_read_timeout_ms),
            ("limits.idle_timeout_ms", self.idle_timeout_ms),
            ("limits.max_connections", self.max_connections as u64),
            ("limits.max_concurrent_uploads", self.max_concurrent_uploads as u64),
            ("limits.max_uri_bytes", self.max_uri_bytes as u64),
            ("limits.max_header_bytes", self.max_header_bytes as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        // Past these, hyper's own parser limits (a 65,534-byte URI, a ~400 KiB head) would
        // refuse a request first, with an empty body instead of our JSON error.
        if self.max_uri_bytes > MAX_URI_BYTES {
            return Err(bad("limits.max_uri_bytes", format!("must be at most {MAX_URI_BYTES}")));
        }
        if self.max_header_bytes > MAX_HEADER_BYTES {
            let problem = format!("must be at most {MAX_HEADER_BYTES}");
            return Err(bad("limits.max_header_bytes", problem));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_limits_past_hypers_own_are_rejected() {
        let mut limits = LimitsConfig { max_uri_bytes: MAX_URI_BYTES + 1, ..Default::default() };
        assert_eq!(limits.validate().unwrap_err().key, "limits.max_uri_bytes");
        limits = LimitsConfig { max_header_bytes: MAX_HEADER_BYTES + 1, ..Default::default() };
        assert_eq!(limits.validate().unwrap_err().key, "limits.max_header_bytes");
        limits = LimitsConfig { max_connections: 0, ..Default::default() };
        assert_eq!(limits.validate().unwrap_err().key, "limits.max_connections");
        limits = LimitsConfig { body_read_timeout_ms: 0, ..Default::default() };
        assert_eq!(limits.validate().unwrap_err().key, "limits.body_read_timeout_ms");
        limits = LimitsConfig { max_concurrent_uploads: 0, ..Default::default() };
        assert_eq!(limits.validate().unwrap_err().key, "limits.max_concurrent_uploads");
    }
}
