//! The request headers a log leaves out because its own columns hold them.
//!
//! Every signed call sends, right after `user-agent`, `content-type: application/json`,
//! `webhook-id` (the message id) and `webhook-timestamp` (the request time in seconds). Kept
//! in each log they took half of its request headers' ~220 bytes of JSON. A log whose headers
//! hold exactly these three, in that place and with these values, stores the rest only, and
//! reading it puts them back in place: the same JSON text as was recorded. Anything else (an
//! automation's own `content-type`, a timestamp taken in the second before the request's, a
//! redacted `webhook-id`, a call never made) is stored as it is.

use serde_json::{Map, Value};

use crate::time::UnixMs;

/// Where the implied headers sit: after `user-agent`, the first header recorded.
const AT: usize = 1;

/// The headers a signed call for `message_id` made at `request_at` carries, in order.
fn implied(message_id: &str, request_at: UnixMs) -> [(&'static str, String); 3] {
    [
        ("content-type", "application/json".to_string()),
        ("webhook-id", message_id.to_string()),
        ("webhook-timestamp", request_at.as_secs().to_string()),
    ]
}

/// Removes the implied headers from `headers` when they are there as every signed call
/// sends them; whether it did (the log's `request_headers_implied`).
pub fn leave_out(headers: &mut Map<String, Value>, message_id: &str, request_at: UnixMs) -> bool {
    let expected = implied(message_id, request_at);
    let in_place = headers.len() >= AT + expected.len()
        && headers.iter().skip(AT).zip(&expected).all(
            |((name, value), (want_name, want_value))| {
                name == want_name && value.as_str() == Some(want_value.as_str())
            },
        );
    if in_place {
        for (name, _) in &expected {
            headers.shift_remove(*name);
        }
    }
    in_place
}

/// The recorded JSON of headers stored without their implied ones, or `None` when `stored`
/// is not a JSON object holding at least the header before them.
pub fn put_back(stored: &str, message_id: &str, request_at: UnixMs) -> Option<String> {
    let mut headers: Map<String, Value> = serde_json::from_str(stored).ok()?;
    if headers.len() < AT {
        return None;
    }
    for (i, (name, value)) in implied(message_id, request_at).into_iter().enumerate() {
        headers.shift_insert(AT + i, name.to_string(), Value::String(value));
    }
    Some(Value::Object(headers).to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MSG: &str = "msg_01a2b3c4d5e6f708192a3b4c5d6e7f80";

    fn at() -> UnixMs {
        UnixMs::from_ms(1_764_567_890_123)
    }

    fn signed(content_type: &str, timestamp: &str, extra: &[(&str, &str)]) -> Map<String, Value> {
        let mut headers = Map::new();
        headers.insert("user-agent".into(), json!("hookrelay/0.1.0"));
        headers.insert("content-type".into(), json!(content_type));
        headers.insert("webhook-id".into(), json!(MSG));
        headers.insert("webhook-timestamp".into(), json!(timestamp));
        headers.insert("webhook-signature".into(), json!("v1,abc="));
        for (name, value) in extra {
            headers.insert((*name).into(), json!(value));
        }
        headers
    }

    #[test]
    fn a_signed_calls_headers_are_stored_without_the_implied_ones_and_read_back_the_same() {
        let headers = signed("application/json", "1764567890", &[("x-tenant", "acme")]);
        let recorded = Value::Object(headers.clone()).to_string();
        let mut stored = headers;
        assert!(leave_out(&mut stored, MSG, at()));
        let stored = Value::Object(stored).to_string();
        assert_eq!(
            stored,
            r#"{"user-agent":"hookrelay/0.1.0","webhook-signature":"v1,abc=","x-tenant":"acme"}"#
        );
        assert!(stored.len() * 2 < recorded.len() + 40, "{} of {}", stored.len(), recorded.len());
        assert_eq!(put_back(&stored, MSG, at()).as_deref(), Some(recorded.as_str()));
    }

    #[test]
    fn headers_that_differ_from_what_a_signed_call_sends_are_kept_whole() {
        let cases = [
            signed("text/plain", "1764567890", &[]),
            signed("application/json", "1764567889", &[]),
            signed("application/json", "1764567890", &[]).into_iter().skip(1).collect(),
            Map::new(),
        ];
        for headers in cases {
            let mut kept = headers.clone();
            assert!(!leave_out(&mut kept, MSG, at()), "{headers:?}");
            assert_eq!(kept, headers);
        }
        let mut other_message = signed("application/json", "1764567890", &[]);
        assert!(!leave_out(&mut other_message, "msg_00000000000000000000000000000000", at()));
    }

    #[test]
    fn stored_text_that_is_not_an_object_with_a_first_header_is_not_put_back() {
        for stored in ["[]", "{}", "not json", "\"text\""] {
            assert_eq!(put_back(stored, MSG, at()), None, "{stored}");
        }
    }
}
