//! Request field schemas that `#[schema(...)]` attributes cannot spell, used through
//! `schema_with`, and the patterns the attributes share. Each says what the handler's
//! validation refuses, so that a request valid by the document is one the relay takes.
//!
//! The relay counts text limits in bytes of UTF-8, JSON Schema's `maxLength` in characters:
//! a `maxLength` here is the byte limit over 4 (no text that long is refused), and the
//! description gives the byte limit itself.

use serde_json::{json, Value};
use utoipa::openapi::schema::{Object, Schema};

/// A name, id or language as `automations::check_text` takes it: not only blanks, no
/// control character (C0, DEL, C1).
const TEXT_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// An absolute `http` or `https` URL (the scheme in any case, as the URL parser reads it)
/// with a host, without credentials, blanks or control characters.
const URL_PATTERN: &str = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\\\\\\s\\u0000-\\u001f\\u007f-\\u009f]+([/?#][^\\s\\u0000-\\u001f\\u007f-\\u009f]*)?$";

/// `value` as a schema. The sources are constants of this file, each checked to parse
/// whole by `every_field_schema_keeps_its_keywords`; an unparsed one would read as any value.
fn schema(value: Value) -> Schema {
    serde_json::from_value(value).unwrap_or_else(|_| Schema::Object(Object::new()))
}

/// The JSON type of a field, `null` too when `nullable`.
fn of_type(name: &str, nullable: bool) -> Value {
    if nullable {
        json!([name, "null"])
    } else {
        json!(name)
    }
}

/// Text as `automations::check_text` takes it: 1 to `max_bytes` bytes, not only blanks, no
/// control character.
fn text(max_bytes: usize, nullable: bool) -> Schema {
    schema(json!({
        "type": of_type("string", nullable),
        "description": format!("1 to {max_bytes} bytes of UTF-8, not only blanks, no control \
            character."),
        "minLength": 1,
        "maxLength": max_bytes / 4,
        "pattern": TEXT_PATTERN,
    }))
}

/// An automation's `name` or `processor_id`.
pub fn name() -> Schema {
    text(256, false)
}

/// An automation's `name` or `processor_id` on update (`null`: unchanged).
pub fn name_or_null() -> Schema {
    text(256, true)
}

/// An automation's `default_language` (`null` or absent: unchanged, `en` on create).
pub fn language_or_null() -> Schema {
    text(16, true)
}

fn url(nullable: bool) -> Schema {
    schema(json!({
        "type": of_type("string", nullable),
        "description": "An absolute http(s) URL with a host, without credentials (use \
            `webhook_headers`): at most 2048 bytes. Whether its address may be called is \
            decided at each call (the SSRF guard).",
        "maxLength": 512,
        "pattern": URL_PATTERN,
    }))
}

/// An automation's `webhook_url`.
pub fn webhook_url() -> Schema {
    url(false)
}

/// An automation's `webhook_url` on update (`null`: unchanged).
pub fn webhook_url_or_null() -> Schema {
    url(true)
}

/// `webhook_headers`: header names (RFC 9110 tokens, each once whatever its case, none of
/// those hookrelay sets) to values of visible ASCII, spaces and tabs.
pub fn header_map() -> Schema {
    schema(json!({
        "type": ["object", "null"],
        "description": "Extra headers sent with every call: at most \
            `limits.max_webhook_headers` (32 by default), names given once whatever their \
            case, not one hookrelay sets (`webhook-id`, `webhook-timestamp`, \
            `webhook-signature`, `content-type`, `content-length`, `host`, \
            `transfer-encoding`, `connection`); values of visible ASCII, \
            spaces and tabs, at most 4096 bytes. A value shown as `[REDACTED]` keeps the \
            stored one.",
        "maxProperties": 32,
        "propertyNames": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
        "additionalProperties": {"type": "string", "maxLength": 4096,
            "pattern": "^[\\t\\u0020-\\u007e]*$"},
    }))
}

/// `event_types`: 1 to 64 names of 1 to 128 bytes; `null`: every event type.
pub fn event_types() -> Schema {
    schema(json!({
        "type": ["array", "null"],
        "description": "The event types it receives: 1 to 64 names, each 1 to 128 bytes of \
            UTF-8; `null`: every one.",
        "minItems": 1,
        "maxItems": 64,
        "items": {"type": "string", "minLength": 1, "maxLength": 32},
    }))
}

/// A spreadsheet's worksheet titles: 1 to 100, distinct, each 1 to 100 bytes, not blank.
pub fn sheet_titles() -> Schema {
    schema(json!({
        "type": ["array", "null"],
        "description": "Its worksheets' titles: 1 to 100, distinct, each 1 to 100 bytes of \
            UTF-8 and not only blanks; absent or `null`: one, `Sheet1`.",
        "minItems": 1,
        "maxItems": 100,
        "uniqueItems": true,
        "items": {"type": "string", "minLength": 1, "maxLength": 25, "pattern": "\\S"},
    }))
}

/// What is added to a whole schema, which no field attribute can carry.
pub struct Refinement {
    /// The schema's name.
    pub schema: &'static str,
    /// Keywords merged into it (see [`merged`]).
    pub keywords: Value,
    /// Alternatives of which a value must match exactly one (`allOf: [schema, {oneOf}]`:
    /// utoipa's object schema has no `oneOf` of its own).
    pub one_of: Option<Value>,
}

/// The refinements of the document's schemas.
pub fn refinements() -> Vec<Refinement> {
    vec![Refinement {
        schema: "MessageBody",
        // Exactly one of the two: neither, or both, is refused (400 naming the field).
        one_of: Some(json!([
            {"type": "object", "required": ["processor_id"],
                "properties": {"processor_id": {"type": "string"}}},
            {"type": "object", "required": ["automation_id"],
                "properties": {"automation_id": {"type": "string"}}},
        ])),
        keywords: json!({
            "properties": {
                "processor_id": {"type": ["string", "null"], "minLength": 1, "maxLength": 64,
                    "description": "1 to 256 bytes of UTF-8."},
                "automation_id": {"type": ["string", "null"], "minLength": 1},
                "event_type": {"type": ["string", "null"], "minLength": 1, "maxLength": 32,
                    "description": "1 to 128 bytes of UTF-8; the prefix `hookrelay.` is the \
                        relay's own (test calls)."},
            },
        }),
    }]
}

/// `schema` (JSON) refined by `r`.
pub fn refine(schema: Value, r: &Refinement) -> Value {
    let schema = merged(schema, &r.keywords);
    match &r.one_of {
        Some(alternatives) => json!({"allOf": [schema, {"oneOf": alternatives}]}),
        None => schema,
    }
}

/// `base` with `extra`'s keywords merged in (objects key by key, anything else replaced).
pub fn merged(base: Value, extra: &Value) -> Value {
    match (base, extra) {
        (Value::Object(mut base), Value::Object(extra)) => {
            for (key, value) in extra {
                let old = base.remove(key).unwrap_or(Value::Null);
                base.insert(key.clone(), merged(old, value));
            }
            Value::Object(base)
        }
        (_, extra) => extra.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each field schema keeps every keyword of its source: one utoipa cannot read (a
    /// `propertyNames` without a `type`, say) would fall back to any value, silently.
    #[test]
    fn every_field_schema_keeps_its_keywords() {
        type Source = fn() -> Schema;
        let schemas: [(&str, Source); 8] = [
            ("name", name),
            ("name_or_null", name_or_null),
            ("language_or_null", language_or_null),
            ("webhook_url", webhook_url),
            ("webhook_url_or_null", webhook_url_or_null),
            ("header_map", header_map),
            ("event_types", event_types),
            ("sheet_titles", sheet_titles),
        ];
        for (what, schema) in schemas {
            let value = serde_json::to_value(schema()).expect("serializes");
            let keys = value.as_object().map_or(0, |o| o.len());
            assert!(keys >= 4, "{what}: keywords lost: {value}");
            assert!(value["description"].is_string(), "{what}: {value}");
        }
        let headers = serde_json::to_value(header_map()).expect("serializes");
        assert_eq!(headers["propertyNames"]["pattern"], "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$");
        assert_eq!(headers["additionalProperties"]["maxLength"], 4096);
        assert_eq!(headers["maxProperties"], 32);
    }
}
