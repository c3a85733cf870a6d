use serde_json::Value;

use super::super::openapi_ops::DOCS;
use super::super::routes::served;
use super::super::routes::Credential;
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

/// Every route served has an entry of the operations table: its summary, query, request
/// body and answers are described, not left to a generic JSON answer.
#[test]
fn every_route_has_an_entry() {
    let missing: Vec<String> = served()
        .into_iter()
        .filter(|(m, p, _)| doc_of(m.as_str(), p).is_none())
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(missing.is_empty(), "routes without an entry in openapi_ops::DOCS: {missing:#?}");
}

/// Every operation that takes a body documents its schema, under its content type, and
/// every operation documents its errors: 400, 500, 503, the credential's 401 and 403, and
/// `4XX` / `5XX` for the rest, each an `Error`. (`tests/api/openapi.rs` checks the other
/// way: a route documented without a body refuses one.)
#[test]
fn every_operation_documents_its_body_and_its_errors() {
    let doc = doc_json();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut bodies = 0;
    for (method, path, credential) in served() {
        let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
        let ctx = format!("{method} {path}");
        let entry = doc_of(method.as_str(), path).expect("an entry");
        if let Some((schema, required)) = entry.body {
            let body = &op["requestBody"];
            assert_eq!(body["required"], required, "{ctx}");
            let named = &body["content"][entry.body_type]["schema"]["$ref"];
            assert_eq!(named, &format!("#/components/schemas/{schema}"), "{ctx}");
            assert!(schemas.contains_key(schema), "{ctx}: no schema {schema}");
            bodies += 1;
        } else {
            assert!(op["requestBody"].is_null(), "{ctx}");
        }
        let mut errors = vec!["400", "500", "503", "4XX", "5XX"];
        if credential != Credential::Public {
            errors.extend(["401", "403"]);
        }
        for status in errors {
            let answer = &op["responses"][status]["content"]["application/json"]["schema"];
            let expected = if path == "/readyz" && status == "503" { "Readiness" } else { "Error" };
            assert_eq!(
                answer["$ref"],
                format!("#/components/schemas/{expected}"),
                "{ctx} {status}"
            );
        }
        let success = op["responses"][entry.status.to_string()]["content"][entry.answer_type]
            ["schema"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .unwrap_or_else(|| panic!("{ctx}: no success schema"));
        assert!(schemas.contains_key(success), "{ctx}: no schema {success}");
    }
    assert_eq!(bodies, 14, "operations with a documented body");
}

/// The keywords no attribute can carry reach their schema: a message needs exactly one of
/// `processor_id` and `automation_id`.
#[test]
fn refinements_reach_their_schema() {
    let doc = doc_json();
    let body = &doc["components"]["schemas"]["MessageBody"]["allOf"];
    assert_eq!(body[1]["oneOf"][1]["required"][0], "automation_id", "{body}");
    assert_eq!(body[0]["properties"]["payload"]["type"], "object", "{body}");
    assert_eq!(body[0]["properties"]["event_type"]["maxLength"], 32, "{body}");
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
                if status.starts_with(['4', '5']) && !(path == "/readyz" && status == "503") {
                    let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Error", "{method} {path} {status}");
                    errors += 1;
                }
            }
        }
    }
    assert!(errors > 300, "{errors}");
}
