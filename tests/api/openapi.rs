//! Issue 14 §1: the OpenAPI document served at `/openapi.json`. Every route of the router
//! (its route table) is in it with its path parameters, security schemes and role; real
//! answers of a live relay validate against the schemas the document gives for them (with
//! the `jsonschema` crate, which implements the JSON Schema 2020-12 dialect OpenAPI 3.1
//! uses); the document passes `openapi-spec-validator` (from the venv `.ci/run` makes); and
//! `/docs` serves Swagger UI from the binary, with no outside asset.

use std::collections::BTreeSet;
use std::path::PathBuf;

use hookrelay::api::openapi::{path_params, ROLE_EXTENSION};
use hookrelay::api::routes::served;
use hookrelay::api::Credential;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{Receiver, Relay, KEY};
use crate::helpers::{rfc3339_ago, send, Resp, ENDPOINTS, LOGS};

/// `GET /openapi.json`, without a key.
pub(crate) async fn document(relay: &Relay) -> Value {
    let r = send(relay, Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let content_type = r.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/json"));
    assert_eq!(r.body["openapi"], "3.1.0");
    r.body
}

/// The security scheme names and the role a route's credential takes, as documented.
fn expected(credential: Credential) -> (Vec<&'static str>, String) {
    match credential {
        Credential::Key(role) => (vec!["ApiKey", "BearerApiKey"], role.as_str().to_string()),
        Credential::App => (vec!["AppKey"], "app".into()),
        Credential::Sink => (vec!["ApiKey", "BearerApiKey", "SinkSignature"], "sink".into()),
        Credential::Public => (vec![], "public".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_document_with_its_parameters_and_role() {
    let relay = Relay::start("");
    let doc = document(&relay).await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let routes = served();
    let served_set: BTreeSet<(String, String)> =
        routes.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let missing: Vec<_> = served_set.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served_set).collect();
    assert!(missing.is_empty(), "routes served but not in /openapi.json: {missing:#?}");
    assert!(extra.is_empty(), "operations the router does not serve: {extra:#?}");
    assert!(served_set.contains(&("GET".into(), "/openapi.json".into())));

    for (method, path, credential) in routes {
        let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
        let ctx = format!("{method} {path}");
        let (schemes, role) = expected(credential);
        assert_eq!(op[ROLE_EXTENSION], role.as_str(), "{ctx}");
        let security: Vec<&str> = op["security"]
            .as_array()
            .map(|s| {
                s.iter()
                    .flat_map(|r| r.as_object().expect("req").keys())
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(security, schemes, "{ctx}");
        for scheme in &security {
            assert!(doc["components"]["securitySchemes"][scheme].is_object(), "{scheme}");
        }
        let in_path: Vec<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().expect("name"))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(in_path, path_params(path), "{ctx}");
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.keys().any(|s| s.starts_with('2')), "{ctx}: no success answer");
        assert!(responses.contains_key("4XX") && responses.contains_key("5XX"), "{ctx}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["ApiKey"]["name"], "Api-Key");
    assert_eq!(doc["components"]["securitySchemes"]["AppKey"]["scheme"], "bearer");
}

/// Validates answers against the document's schemas.
pub(crate) struct Contract {
    pub(crate) doc: Value,
    pub(crate) checked: usize,
}

impl Contract {
    /// `r`, an answer to `method template`, must be documented with its status, and its body
    /// must validate against that answer's schema.
    pub(crate) fn check(&mut self, method: &str, template: &str, r: &Resp) {
        let ctx = format!("{method} {template} -> {}", r.status);
        let responses = &self.doc["paths"][template][method.to_ascii_lowercase()]["responses"];
        let answer = match &responses[r.status.to_string()] {
            Value::Null => &responses[format!("{}XX", r.status / 100)],
            a => a,
        };
        let schema = &answer["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{ctx}: not documented: {}", r.text);
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let validator = jsonschema::validator_for(&root).expect("a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&r.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{ctx}: {errors:#?}\n{}", r.text);
        let mut undocumented = Vec::new();
        self.undocumented(schema, &r.body, "", &mut undocumented);
        assert!(undocumented.is_empty(), "{ctx}: keys the schema does not name: {undocumented:?}");
        self.checked += 1;
    }

    /// The schema `$ref` names, or `schema` itself.
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => &self.doc["components"]["schemas"][name],
            None => schema,
        }
    }

    /// The named properties of `schema` (through `$ref`, `allOf` and `oneOf`), and whether
    /// it takes any other key (a map, or a free-form object).
    fn properties<'a>(&'a self, schema: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) -> bool {
        let schema = self.resolve(schema);
        let mut open = schema["additionalProperties"].is_object();
        if let Some(props) = schema["properties"].as_object() {
            out.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
        }
        for part in ["allOf", "oneOf"].iter().filter_map(|k| schema[*k].as_array()).flatten() {
            open |= self.properties(part, out);
        }
        open
    }

    /// Collects the keys of `value` (and of the objects inside it) that `schema` does not
    /// name: the document validates open (a client must accept new keys), but an answer
    /// with a key its schema forgot means the schema fell behind the handler.
    fn undocumented(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                let mut props = Vec::new();
                // A map or a free-form object: any key is its own.
                if self.properties(schema, &mut props) || props.is_empty() {
                    return;
                }
                for (key, v) in map {
                    match props.iter().find(|(name, _)| name == key) {
                        Some((_, s)) => self.undocumented(s, v, &format!("{at}/{key}"), out),
                        None => out.push(format!("{at}/{key}")),
                    }
                }
            }
            Value::Array(items) => {
                let mut item = &self.resolve(schema)["items"];
                if item.is_null() {
                    // `oneOf: [{type: array, items}, {type: null}]`, as a nullable list is.
                    let arms = self.resolve(schema)["oneOf"].as_array();
                    item = arms
                        .and_then(|a| a.iter().find(|s| s["items"].is_object()))
                        .map_or(item, |s| &s["items"]);
                }
                for (i, v) in items.iter().enumerate() {
                    self.undocumented(item, v, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
}

/// `method path` with the admin key and an optional JSON body.
pub(crate) async fn call(relay: &Relay, method: Method, path: &str, body: Option<Value>) -> Resp {
    let headers = [("Api-Key", KEY.to_string())];
    send(relay, method, path, &headers, body.map(|b| b.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_validate_against_the_documented_schemas() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start("");
    let mut c = Contract { doc: document(&relay).await, checked: 0 };
    let one = "/v1/processors/automations/endpoints/{id}";

    let body = json!({"name": "a", "processor_id": "p1", "webhook_url": receiver.url("/h"),
        "webhook_headers": {"Authorization": "Bearer s", "X-Plain": "v"}, "event_types": ["a.b"]});
    let created = call(&relay, Method::POST, ENDPOINTS, Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    c.check("POST", ENDPOINTS, &created);
    let id = created.body["id"].as_str().expect("id").to_string();
    let at = |suffix: &str| format!("{ENDPOINTS}/{id}{suffix}");
    c.check("GET", ENDPOINTS, &call(&relay, Method::GET, ENDPOINTS, None).await);
    c.check("GET", one, &call(&relay, Method::GET, &at(""), None).await);
    let update = Some(json!({"name": "b", "event_types": null}));
    c.check("PUT", one, &call(&relay, Method::PUT, &at(""), update).await);
    for action in ["/disable", "/enable"] {
        let r = call(&relay, Method::POST, &at(action), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        c.check("POST", &format!("{one}{action}"), &r);
    }
    for (suffix, n) in [("/health", None), ("/events", Some(2))] {
        let r = call(&relay, Method::GET, &at(suffix), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if let Some(n) = n {
            assert_eq!(r.body["data"].as_array().map(Vec::len), Some(n), "{}", r.text);
        }
        c.check("GET", &format!("{one}{suffix}"), &r);
    }
    c.check(
        "GET",
        &format!("{one}/secret"),
        &call(&relay, Method::GET, &at("/secret"), None).await,
    );
    let rotated = call(&relay, Method::POST, &at("/secret/rotate"), None).await;
    assert!(rotated.body["previous_secret_expires_at"].is_string(), "{}", rotated.text);
    c.check("POST", &format!("{one}/secret/rotate"), &rotated);

    let message = json!({"processor_id": "p1", "event_type": "a.b", "payload": {"n": 1}});
    let ingested = call(&relay, Method::POST, "/v1/messages", Some(message)).await;
    assert_eq!(ingested.status, 202, "{}", ingested.text);
    c.check("POST", "/v1/messages", &ingested);
    let message_id = ingested.body["id"].as_str().expect("id").to_string();
    let delivery_id = ingested.body["delivery_ids"][0].as_str().expect("a delivery").to_string();
    relay.wait_delivery_ends(&delivery_id, "succeeded").await;
    c.check("GET", "/v1/messages", &call(&relay, Method::GET, "/v1/messages", None).await);
    let shown = call(&relay, Method::GET, &format!("/v1/messages/{message_id}"), None).await;
    assert_eq!(shown.body["deliveries"].as_array().map(Vec::len), Some(1), "{}", shown.text);
    c.check("GET", "/v1/messages/{id}", &shown);
    c.check("GET", "/v1/deliveries", &call(&relay, Method::GET, "/v1/deliveries", None).await);
    let delivery = call(&relay, Method::GET, &format!("/v1/deliveries/{delivery_id}"), None).await;
    c.check("GET", "/v1/deliveries/{id}", &delivery);

    let logs = call(&relay, Method::GET, LOGS, None).await;
    assert_eq!(logs.body["data"].as_array().map(Vec::len), Some(1), "{}", logs.text);
    c.check("GET", LOGS, &logs);
    let log_id = logs.body["data"][0]["id"].as_str().expect("log id").to_string();
    let log_path = format!("{LOGS}/{{log_id}}");
    c.check("GET", &log_path, &call(&relay, Method::GET, &format!("{LOGS}/{log_id}"), None).await);
    let rerun = call(&relay, Method::POST, &format!("{LOGS}/{log_id}/rerun"), None).await;
    assert_eq!(rerun.status, 200, "{}", rerun.text);
    c.check("POST", &format!("{log_path}/rerun"), &rerun);
    let scoped = "/v1/processors/{processor_id}/automations/logs";
    let r = call(&relay, Method::GET, "/v1/processors/p1/automations/logs", None).await;
    c.check("GET", scoped, &r);

    let recover = "/v1/processors/automations/logs/recover";
    let window = json!({"since": rfc3339_ago(3600), "dry_run": true});
    let dry = call(&relay, Method::POST, recover, Some(window)).await;
    assert_eq!((dry.status, &dry.body["dry_run"]), (200, &json!(true)), "{}", dry.text);
    c.check("POST", recover, &dry);
    let job = call(&relay, Method::POST, recover, Some(json!({"since": rfc3339_ago(3600)}))).await;
    assert_eq!(job.status, 202, "{}", job.text);
    c.check("POST", recover, &job);
    let job_id = job.body["id"].as_str().expect("job id");
    c.check("GET", recover, &call(&relay, Method::GET, recover, None).await);
    let one_job = format!("{recover}/{{job_id}}");
    c.check(
        "GET",
        &one_job,
        &call(&relay, Method::GET, &format!("{recover}/{job_id}"), None).await,
    );
    let cancel = call(&relay, Method::POST, &format!("{recover}/{job_id}/cancel"), None).await;
    assert!([200, 409].contains(&cancel.status), "{}", cancel.text);
    c.check("POST", &format!("{one_job}/cancel"), &cancel);

    let key =
        call(&relay, Method::POST, "/v1/keys", Some(json!({"name": "k", "role": "viewer"}))).await;
    assert_eq!(key.status, 201, "{}", key.text);
    c.check("POST", "/v1/keys", &key);
    c.check("GET", "/v1/keys", &call(&relay, Method::GET, "/v1/keys", None).await);
    let key_id = key.body["id"].as_str().expect("key id");
    let revoked = call(&relay, Method::DELETE, &format!("/v1/keys/{key_id}"), None).await;
    assert!(revoked.body["revoked_at"].is_string(), "{}", revoked.text);
    c.check("DELETE", "/v1/keys/{id}", &revoked);

    // Error answers: the shared `Error` component.
    let unknown =
        call(&relay, Method::GET, &format!("{ENDPOINTS}/endp_{}", "0".repeat(32)), None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    c.check("GET", one, &unknown);
    let bad = call(&relay, Method::POST, ENDPOINTS, Some(json!({"name": "x"}))).await;
    assert_eq!(
        (bad.status, bad.body["field"].as_str()),
        (400, Some("processor_id")),
        "{}",
        bad.text
    );
    c.check("POST", ENDPOINTS, &bad);
    let no_key = send(&relay, Method::GET, ENDPOINTS, &[], None).await;
    assert_eq!(no_key.status, 401);
    c.check("GET", ENDPOINTS, &no_key);

    c.check("DELETE", one, &call(&relay, Method::DELETE, &at(""), None).await);
    assert_eq!(c.checked, 31);
}

/// A schema that forbids what a real answer holds is caught: the checker is not vacuous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_breaks_its_schema_is_caught() {
    let relay = Relay::start("");
    let mut doc = document(&relay).await;
    doc["components"]["schemas"]["ApiKeyList"]["properties"]["data"] = json!({"type": "string"});
    let made = call(&relay, Method::POST, "/v1/keys", Some(json!({"name": "k", "role": "admin"})));
    assert_eq!(made.await.status, 201);
    let r = call(&relay, Method::GET, "/v1/keys", None).await;
    let mut c = Contract { doc, checked: 0 };
    let check = |c: &mut Contract| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.check("GET", "/v1/keys", &r)))
    };
    assert!(check(&mut c).is_err(), "a list validated as a string");
    // A key the answer has and its schema forgot.
    c.doc = document(&relay).await;
    assert!(check(&mut c).is_ok(), "the real schema");
    let props = c.doc["components"]["schemas"]["ApiKey"]["properties"].as_object_mut();
    assert!(props.expect("properties").remove("last_used_at").is_some());
    assert!(check(&mut c).is_err(), "an answer with a key its schema does not name passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_swagger_ui_from_the_binary() {
    let relay = Relay::start("");
    let r = send(&relay, Method::GET, "/docs", &[], None).await;
    assert_eq!(r.status, 200);
    let content_type = r.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/html; charset=utf-8"));
    assert!(
        r.text.contains("SwaggerUIBundle({url: '/openapi.json'"),
        "{}",
        r.text.get(..200).unwrap_or("")
    );
    assert!(r.text.len() > 1_000_000, "the Swagger UI bundle is inline");
    for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!r.text.contains(outside), "the page loads {outside}…");
    }
}

/// The venv's Python that has `openapi-spec-validator`: `$HOOKRELAY_OPENAPI_PYTHON`, or the
/// `.venv-openapi` `.ci/run` makes at the repository root.
fn validator_python() -> Option<PathBuf> {
    let given = std::env::var_os("HOOKRELAY_OPENAPI_PYTHON").map(PathBuf::from);
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-openapi/bin/python");
    given.or(Some(default)).filter(|p| p.exists())
}

/// `openapi-spec-validator` (an independent implementation) accepts the served document.
/// Under `CI=true` a missing validator fails the test; elsewhere it is skipped, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_spec_validator_accepts_the_document() {
    let Some(python) = validator_python() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no openapi-spec-validator venv: .ci/run makes .venv-openapi"
        );
        eprintln!("SKIPPED: no .venv-openapi (run .ci/run, or set HOOKRELAY_OPENAPI_PYTHON)");
        return;
    };
    let relay = Relay::start("");
    let doc = document(&relay).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).expect("json")).expect("write");
    let out = std::process::Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openapi-spec-validator refused the document:\n{text}");
    assert!(text.contains("OK"), "{text}");
}
