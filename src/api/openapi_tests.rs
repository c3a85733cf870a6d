use serde_json::Value;

use super::super::openapi_ops::DOCS;
use super::super::routes::served;
use super::*;
use crate::store::{DeliveryStatus, Trigger};

fn doc_json() -> Value {
    serde_json::to_value(document()).expect("the document serializes")
}

/// Every entry of the operations table documents a route the router serves: a route
/// renamed or removed cannot leave a stale entry (which would document nothing).
#[test]
fn every_documented_operation_is_served() {
    let served: BTreeSet<(String, &str)> =
        served().into_iter().map(|(m, p, _)| (m.to_string(), p)).collect();
    for d in DOCS {
        assert!(
            served.contains(&(d.method.to_string(), d.path)),
            "{} {} is not served",
            d.method,
            d.path
        );
    }
}

/// The create's body schema has the handler's fields exactly (it only requires more).
#[test]
fn the_create_body_has_the_update_body_fields() {
    let doc = doc_json();
    let keys = |name: &str| -> BTreeSet<String> {
        let props = doc["components"]["schemas"][name]["properties"].as_object().expect(name);
        props.keys().cloned().collect()
    };
    assert_eq!(keys("AutomationCreateBody"), keys("AutomationBody"));
    assert_eq!(keys("AutomationBody").len(), 11);
}

/// Every `$ref` of the document names a schema it holds.
#[test]
fn every_reference_resolves() {
    let doc = doc_json();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "{refs:?}");
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("ref {r}"));
        assert!(schemas.contains_key(name), "{r} is not in components.schemas");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The enums the schemas spell out are the names the store parses: a schema cannot list a
/// status or trigger the relay never shows.
#[test]
fn schema_enums_are_the_stored_names() {
    let doc = doc_json();
    let values = |name: &str| -> Vec<String> {
        let e = doc["components"]["schemas"][name]["enum"].as_array().expect(name);
        e.iter().map(|v| v.as_str().expect("a name").to_string()).collect()
    };
    let statuses = values("DeliveryStatus");
    assert_eq!(statuses.len(), 4);
    assert!(statuses.iter().all(|s| DeliveryStatus::parse(s).is_some()), "{statuses:?}");
    let triggers = values("LogTrigger");
    assert_eq!(triggers.len(), 6);
    assert!(triggers.iter().all(|t| Trigger::parse(t).is_some()), "{triggers:?}");
    let roles = values("KeyRole");
    assert!(roles.iter().all(|r| Role::parse(r).is_some()), "{roles:?}");
    assert_eq!(roles.len(), 3);
}

/// The error schema lists every registered code, and every error answer refers to it.
#[test]
fn every_error_answer_is_the_error_schema() {
    let doc = doc_json();
    let codes = doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"].clone();
    assert_eq!(codes.as_array().map(Vec::len), Some(ApiErrorCode::ALL.len()));
    let mut errors = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            for (status, answer) in op["responses"].as_object().expect("responses") {
                if status.starts_with(['4', '5']) {
                    let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Error", "{method} {path} {status}");
                    errors += 1;
                }
            }
        }
    }
    assert!(errors > 300, "{errors}");
}
