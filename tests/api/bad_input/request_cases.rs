//! Bad-input cases for messages, list parameters, unknown ids and recover jobs.

use reqwest::Method;
use serde_json::{json, Value};

use super::Case;
use crate::helpers::{rfc3339_ago, ENDPOINTS, LOGS, MALFORMED, ZERO_HEX};

/// Posting messages.
pub(super) fn messages(
    cases: &mut Vec<Case>,
    aid: &str,
    unknown_endp: &str,
    big: &str,
    long_key: String,
) {
    let msg = |v: Value| v.to_string();
    // messages
    let m = "/v1/messages".to_string();
    cases.extend([
        (
            Method::POST,
            m.clone(),
            vec![],
            Some("{\"processor_id\": \"proc_bad\",".into()),
            400,
            MALFORMED,
        ),
        (Method::POST, m.clone(), vec![], Some(String::new()), 400, "body"),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad"}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": null}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": [1, 2]}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": "text"}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": 5}))),
            400,
            "payload",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "automation_id": aid, "payload": {}}))),
            400,
            "automation_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"payload": {"a": 1}}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": 5, "payload": {"a": 1}}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "", "payload": {"a": 1}}))),
            400,
            "processor_id",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "event_type": "", "payload": {"a": 1}}))),
            400,
            "event_type",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"automation_id": unknown_endp, "payload": {"a": 1}}))),
            404,
            "",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"automation_id": "garbage", "payload": {"a": 1}}))),
            404,
            "",
        ),
        (
            Method::POST,
            m.clone(),
            vec![],
            Some(msg(json!({"processor_id": "proc_bad", "payload": {"big": big}}))),
            413,
            "",
        ),
        (
            Method::POST,
            m.clone(),
            vec![("Idempotency-Key", long_key)],
            Some(msg(json!({"processor_id": "proc_bad", "payload": {"a": 1}}))),
            400,
            "idempotency-key",
        ),
    ]);
}

/// List parameters.
pub(super) fn lists(cases: &mut Vec<Case>, unknown_log: &str) {
    // list parameters, on every list
    for list in [
        LOGS.to_string(),
        "/v1/processors/proc_bad/automations/logs".to_string(),
        ENDPOINTS.to_string(),
        "/v1/deliveries".to_string(),
    ] {
        for (query, hint) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=abc", "limit"),
            ("limit=-1", "limit"),
            ("after=garbage", "after"),
            ("before=garbage", "before"),
            (&*format!("after=msg_{ZERO_HEX}"), "after"),
            ("order=sideways", "order"),
        ] {
            cases.push((Method::GET, format!("{list}?{query}"), vec![], None, 400, hint));
        }
    }
    for list in [LOGS.to_string(), "/v1/processors/proc_bad/automations/logs".to_string()] {
        for (query, hint) in [
            ("status_class=9xx", "status_class"),
            ("status_class=2", "status_class"),
            ("status_code=abc", "status_code"),
            ("created_after=yesterday", "created_after"),
            ("created_before=2024-13-45T00:00:00Z", "created_before"),
            (&*format!("after={unknown_log}&before={unknown_log}"), "before"),
        ] {
            cases.push((Method::GET, format!("{list}?{query}"), vec![], None, 400, hint));
        }
    }
    cases.push((Method::GET, "/v1/deliveries?status=bogus".into(), vec![], None, 400, "status"));
}

/// Unknown logs, deliveries and recover jobs.
pub(super) fn unknown(cases: &mut Vec<Case>, unknown_log: &str) {
    // unknown logs, deliveries and recover jobs
    cases.extend([
        (Method::GET, format!("{LOGS}/{unknown_log}"), vec![], None, 404, ""),
        (Method::GET, format!("{LOGS}/garbage"), vec![], None, 404, ""),
        (Method::POST, format!("{LOGS}/{unknown_log}/rerun"), vec![], Some(String::new()), 404, ""),
        (Method::POST, format!("{LOGS}/garbage/rerun"), vec![], Some(String::new()), 404, ""),
        (
            Method::GET,
            format!("/v1/processors/proc_bad/automations/logs/{unknown_log}"),
            vec![],
            None,
            404,
            "",
        ),
        (
            Method::POST,
            format!("/v1/processors/proc_bad/automations/logs/{unknown_log}/rerun"),
            vec![],
            Some(String::new()),
            404,
            "",
        ),
        (Method::GET, format!("/v1/deliveries/dlv_{ZERO_HEX}"), vec![], None, 404, ""),
        (Method::GET, "/v1/deliveries/garbage".into(), vec![], None, 404, ""),
        (Method::GET, format!("{LOGS}/recover/rcv_{ZERO_HEX}"), vec![], None, 404, ""),
        (Method::GET, format!("{LOGS}/recover/garbage"), vec![], None, 404, ""),
    ]);
}

/// Starting recover jobs.
pub(super) fn recover(cases: &mut Vec<Case>) {
    // recover
    let rec = format!("{LOGS}/recover");
    cases.extend([
        (
            Method::POST,
            rec.clone(),
            vec![],
            Some(json!({"since": "yesterday"}).to_string()),
            400,
            "since",
        ),
        (Method::POST, rec.clone(), vec![], Some(json!({}).to_string()), 400, "since"),
        (Method::POST, rec.clone(), vec![], Some(json!({"since": true}).to_string()), 400, "since"),
        (Method::POST, rec.clone(), vec![], Some("{\"since\":".into()), 400, MALFORMED),
        (
            Method::POST,
            rec.clone(),
            vec![],
            Some(json!({"since": rfc3339_ago(10), "until": rfc3339_ago(20)}).to_string()),
            400,
            "until",
        ),
        (
            Method::POST,
            rec.clone(),
            vec![],
            Some(json!({"since": rfc3339_ago(10), "automation_id": "garbage"}).to_string()),
            400,
            "automation_id",
        ),
    ]);
}
