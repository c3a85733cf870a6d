//! The nesting bound of JSON request bodies (`limits.max_json_depth`), checked on the raw
//! bytes before anything parses them.
//!
//! Why here: a message payload is kept as the producer's bytes, which serde_json skips over
//! without recursing, so nothing else would stop one producer handing every receiver a
//! document that overflows a recursive parser's stack; and bodies parsed into values would
//! fail at serde_json's own recursion limit (127 levels of the whole body) with an error
//! naming neither the field nor the limit.
//!
//! Depth counts arrays and objects below the body's top level: each top-level member
//! (`payload`, `inputs`, a sink row's column) may nest `max` levels, `{}` and `[]` being
//! one. The scan tracks strings (brackets in them are text) and, on any prefix of the body
//! that is valid JSON, agrees with a parser's depth, so a body it passes never takes a
//! parser deeper than `max + 1` (at most
//! [`crate::config::MAX_JSON_DEPTH_CEILING`] + 1).

use super::ApiError;

/// Refuses a body that nests deeper than `max` below its top level, naming the top-level
/// member at fault (`body` when the body is an array).
pub fn check_depth(bytes: &[u8], max: usize) -> Result<(), ApiError> {
    match deepest_member(bytes, max) {
        None => Ok(()),
        Some(field) => Err(ApiError::invalid(
            field,
            format!("nests deeper than {max} levels of arrays and objects (limits.max_json_depth)"),
        )),
    }
}

/// The name of the first top-level member nested deeper than `max`, if any.
fn deepest_member(bytes: &[u8], max: usize) -> Option<String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut top_is_object = false;
    // At depth 1 of an object: whether the next string is a key, where the key being read
    // starts, and the last key read (byte ranges inside the quotes).
    let mut expecting_key = false;
    let mut key_start: Option<usize> = None;
    let mut key = 0..0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    if let Some(start) = key_start.take() {
                        key = start..i;
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                if depth == 1 && top_is_object && expecting_key {
                    key_start = Some(i + 1);
                    expecting_key = false;
                }
            }
            b'{' | b'[' => {
                if depth == 0 {
                    top_is_object = b == b'{';
                    expecting_key = top_is_object;
                }
                depth += 1;
                if depth > max + 1 {
                    return Some(if top_is_object { key_name(bytes, key) } else { "body".into() });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expecting_key = top_is_object,
            _ => {}
        }
    }
    None
}

/// A key as it reads: its escapes decoded when it has any.
fn key_name(bytes: &[u8], key: std::ops::Range<usize>) -> String {
    let raw = &bytes[key.clone()];
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw).into_owned();
    }
    // The key's bytes with their quotes form a JSON string.
    serde_json::from_slice(&bytes[key.start - 1..key.end + 1])
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn members_nest_up_to_the_limit() {
        let body = |member: &str| format!("{{\"a\":1,\"deep\":{member},\"z\":[]}}");
        assert_eq!(deepest_member(body(&nested(3)).as_bytes(), 3), None);
        assert_eq!(deepest_member(body(&nested(4)).as_bytes(), 3).as_deref(), Some("deep"));
        assert_eq!(deepest_member(nested(4).as_bytes(), 3), None, "a top-level array");
        assert_eq!(deepest_member(nested(5).as_bytes(), 3).as_deref(), Some("body"));
        assert_eq!(deepest_member(b"", 3), None);
    }

    #[test]
    fn strings_are_text_and_keys_are_decoded() {
        let quoted = format!("{{\"s\":\"{}\\\"{}\",\"t\":1}}", nested(9), "[[[[");
        assert_eq!(deepest_member(quoted.as_bytes(), 1), None);
        let escaped = format!("{{\"k\\u0065y\\\\\":{}}}", nested(2));
        assert_eq!(deepest_member(escaped.as_bytes(), 1).as_deref(), Some("key\\"));
        let nested_keys = format!("{{\"outer\":{{\"inner\":{}}}}}", nested(2));
        assert_eq!(deepest_member(nested_keys.as_bytes(), 2).as_deref(), Some("outer"));
    }
}
