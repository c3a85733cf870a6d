//! Bad-input cases for the automation routes.

use reqwest::Method;
use serde_json::{json, Value};

use super::Case;
use crate::helpers::{ENDPOINTS, MALFORMED};

/// Creating an automation.
pub(super) fn create(big: &str) -> Vec<Case> {
    let valid = |extra: Value| {
        let mut body =
            json!({"name": "n", "processor_id": "proc_bad", "webhook_url": "http://127.0.0.1:9/x"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body.to_string()
    };
    let mut cases: Vec<Case> = vec![
        // automations: create
        (Method::POST, ENDPOINTS.into(), vec![], Some("{\"name\": ".into()), 400, MALFORMED),
        (Method::POST, ENDPOINTS.into(), vec![], Some("not json at all".into()), 400, MALFORMED),
        (Method::POST, ENDPOINTS.into(), vec![], Some(String::new()), 400, "body"),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": 5}))), 400, "name"),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": ""}))), 400, "name"),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_headers": {"a": 1}}))),
            400,
            "webhook_headers",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_headers": "x"}))),
            400,
            "webhook_headers",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"need_validation": "yes"}))),
            400,
            "need_validation",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"enabled": "no"}))),
            400,
            "enabled",
        ),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": null}))), 400, "name"),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"processor_id": null}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_url": null}))),
            400,
            "webhook_url",
        ),
        (Method::POST, ENDPOINTS.into(), vec![], Some("{}".into()), 400, "name"),
        (
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"event_types": []}))),
            400,
            "event_types",
        ),
        (Method::POST, ENDPOINTS.into(), vec![], Some(valid(json!({"name": big}))), 413, ""),
    ];
    for url in [
        json!("ftp://x"),
        json!("/relative"),
        json!("not a url"),
        json!("http://"),
        json!("mailto:a@example.com"),
        json!("http://user:pw@example.com/"),
        json!(""),
        json!(5),
    ] {
        cases.push((
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_url": url}))),
            400,
            "webhook_url",
        ));
    }
    for reserved in ["webhook-signature", "Webhook-Id", "webhook-timestamp", "Content-Type", "Host"]
    {
        cases.push((
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({"webhook_headers": {reserved: "v"}}))),
            400,
            "webhook_headers",
        ));
    }
    cases.push((
        Method::POST,
        ENDPOINTS.into(),
        vec![],
        Some(valid(json!({"webhook_headers": {"bad header": "v"}}))),
        400,
        "webhook_headers",
    ));
    let many: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    cases.push((
        Method::POST,
        ENDPOINTS.into(),
        vec![],
        Some(valid(json!({"webhook_headers": many}))),
        400,
        "webhook_headers",
    ));
    cases.push((
        Method::POST,
        ENDPOINTS.into(),
        vec![],
        Some(valid(json!({"processor_id": "p".repeat(257)}))),
        400,
        "processor_id",
    ));
    // One header twice in two cases: the receiver would get only one of them.
    cases.push((
        Method::POST,
        ENDPOINTS.into(),
        vec![],
        Some(valid(json!({"webhook_headers": {"X-B": "1", "x-b": "2"}}))),
        400,
        "webhook_headers",
    ));
    // A control character in a name would drive the terminal of whoever lists it.
    for field in ["name", "processor_id"] {
        cases.push((
            Method::POST,
            ENDPOINTS.into(),
            vec![],
            Some(valid(json!({field: "esc\u{1b}[31mred\u{7}"}))),
            400,
            field,
        ));
    }
    cases
}

/// Updating an automation, and unknown automation ids.
pub(super) fn update(cases: &mut Vec<Case>, aid: &str, unknown_endp: &str) {
    // automations: update, and unknown ids
    let a_path = format!("{ENDPOINTS}/{aid}");
    cases.extend([
        (Method::PUT, a_path.clone(), vec![], Some("{\"name\"".into()), 400, MALFORMED),
        (Method::PUT, a_path.clone(), vec![], Some(json!({"name": 5}).to_string()), 400, "name"),
        (
            Method::PUT,
            a_path.clone(),
            vec![],
            Some(json!({"webhook_url": "ftp://x"}).to_string()),
            400,
            "webhook_url",
        ),
        (
            Method::PUT,
            a_path.clone(),
            vec![],
            Some(json!({"webhook_headers": {"webhook-signature": "v1,x"}}).to_string()),
            400,
            "webhook_headers",
        ),
        (
            Method::PUT,
            a_path.clone(),
            vec![],
            Some(json!({"webhook_headers": {"X-New-Token": "[REDACTED]"}}).to_string()),
            400,
            "webhook_headers",
        ),
        (
            Method::PUT,
            format!("{ENDPOINTS}/{unknown_endp}"),
            vec![],
            Some(json!({"name": "x"}).to_string()),
            404,
            "",
        ),
        (
            Method::PUT,
            format!("{ENDPOINTS}/garbage"),
            vec![],
            Some(json!({"name": "x"}).to_string()),
            404,
            "",
        ),
        (Method::GET, format!("{ENDPOINTS}/{unknown_endp}"), vec![], None, 404, ""),
        (Method::GET, format!("{ENDPOINTS}/garbage"), vec![], None, 404, ""),
        (Method::DELETE, format!("{ENDPOINTS}/{unknown_endp}"), vec![], None, 404, ""),
        (Method::GET, format!("{ENDPOINTS}/{unknown_endp}/secret"), vec![], None, 404, ""),
        (Method::POST, format!("{ENDPOINTS}/{unknown_endp}/secret/rotate"), vec![], None, 404, ""),
        (
            Method::POST,
            format!("/v1/processors/automations/tests/webhook/{unknown_endp}"),
            vec![],
            None,
            404,
            "",
        ),
        (
            Method::POST,
            "/v1/processors/automations/tests/webhook/nope".into(),
            vec![],
            None,
            404,
            "",
        ),
    ]);
}
