//! The HTTP decoders, against one running relay per test.

use proptest::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::http_util::{automation_template, one_if, Fuzz};
use crate::strategies::{json_bodies, mutated_bytes};

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";
const LOGS: &str = "/v1/processors/automations/logs";
const SINK: &str = "/v1/integrations/google_sheets/webhook";

/// A JSON POST of raw `bytes`.
fn post(f: &Fuzz, app: bool, path: &str, bytes: &[u8]) -> reqwest::RequestBuilder {
    f.req(app, Method::POST, path).header("content-type", "application/json").body(bytes.to_vec())
}

#[test]
fn json_bodies_of_admin_routes() {
    let f = Fuzz::start();
    // A real automation so that accepted messages create deliveries.
    f.rt.block_on(f.relay.create_automation("p1", crate::http_util::DEAD_URL));

    let before = f.rt.block_on(f.count_list(ENDPOINTS));
    let created = f.run(
        300,
        "POST automations",
        json_bodies(automation_template()),
        |b| post(&f, false, ENDPOINTS, b),
        one_if(&[201]),
    );
    assert_eq!(f.rt.block_on(f.count_list(ENDPOINTS)), before + created, "automations written");

    let before = f.rt.block_on(f.count_list("/v1/deliveries"));
    let template = json!({"processor_id": "p1", "event_type": "a", "payload": {"x": 1}});
    let created = f.run(
        300,
        "POST messages",
        json_bodies(template),
        |b| post(&f, false, "/v1/messages", b),
        |s, body: &Value| {
            if s == 202 {
                body["deliveries"].as_array().map_or(0, Vec::len)
            } else {
                0
            }
        },
    );
    assert_eq!(
        f.rt.block_on(f.count_list("/v1/deliveries")),
        before + created,
        "deliveries written"
    );

    let before = f.rt.block_on(f.count_list("/v1/spreadsheets"));
    let created = f.run(
        300,
        "POST spreadsheets",
        json_bodies(json!({"title": "T", "sheets": ["A", "B"]})),
        |b| post(&f, false, "/v1/spreadsheets", b),
        one_if(&[201]),
    );
    assert_eq!(
        f.rt.block_on(f.count_list("/v1/spreadsheets")),
        before + created,
        "spreadsheets written"
    );
    f.assert_healthy();
}

#[test]
fn workflow_run_bodies() {
    let f = Fuzz::start();
    let before = f.rt.block_on(f.count_runs());
    let template = json!({"inputs": {"name": "Ann", "tone": "formal"}, "response_mode": "blocking", "user": "u1"});
    let created = f.run(
        300,
        "POST workflows/run",
        json_bodies(template),
        |b| post(&f, true, "/v1/workflows/run", b),
        one_if(&[200]),
    );
    assert_eq!(f.rt.block_on(f.count_runs()), before + created, "runs written");
    f.assert_healthy();
}

#[test]
fn sink_bodies() {
    let f = Fuzz::start();
    let (status, sheet) =
        f.rt.block_on(f.relay.post_json("/v1/spreadsheets", &json!({"title": "S"})));
    assert_eq!(status, 201, "{sheet}");
    let id = sheet["spreadsheetId"].as_str().or(sheet["id"].as_str()).expect("id").to_string();
    let title = sheet["sheets"][0]["properties"]["title"].as_str().expect("title").to_string();
    let path = format!("{SINK}?spreadsheet_id={id}&worksheet_id=0");
    let before = f.rt.block_on(f.count_rows(&id, &title));
    let template = json!({"name": "x", "score": 1, "nested": {"a": true}});
    let appended = f.run(
        300,
        "POST sink",
        json_bodies(template),
        |b| post(&f, false, &path, b),
        |s, body: &Value| {
            if s == 200 {
                body["updates"]["updatedRows"].as_u64().unwrap_or(0) as usize
            } else {
                0
            }
        },
    );
    assert_eq!(f.rt.block_on(f.count_rows(&id, &title)), before + appended, "rows written");
    f.assert_healthy();
}

/// Query values: numbers, words the API knows, ids, times, and arbitrary text.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{0,25}",
        prop::sample::select(vec!["asc", "desc", "2xx", "4xx", "5xx", "xx", "", "log_", "0", "-0"])
            .prop_map(str::to_string),
        "(log|msg|dlv)_[0-9A-Za-z]{0,30}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?",
        ".{0,16}",
    ]
}

fn query_string() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        8 => prop::sample::select(vec!["limit", "order", "before", "after", "status_class", "created_after"])
            .prop_map(str::to_string),
        1 => "[a-z_%]{0,8}",
    ];
    let pairs = prop::collection::vec((key, query_value(), any::<bool>()), 0..5);
    pairs.prop_map(|pairs| {
        let mut q = String::new();
        for (k, v, raw) in pairs {
            let v = if raw {
                v.replace(['#', ' '], "%20")
            } else {
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
            };
            q.push_str(&format!("{k}={v}&"));
        }
        q
    })
}

#[test]
fn log_query_strings() {
    let f = Fuzz::start();
    f.rt.block_on(f.relay.create_automation("p1", crate::http_util::DEAD_URL));
    for _ in 0..3 {
        f.rt.block_on(f.relay.send_message("p1", json!({"x": 1})));
    }
    f.run(
        400,
        "GET logs",
        query_string(),
        |q| f.req(false, Method::GET, &format!("{LOGS}?{q}")),
        |_, _| 0,
    );
    f.assert_healthy();
}

/// One multipart part: name, filename, content type, content.
type Part = (String, Option<String>, Option<String>, Vec<u8>);

fn part() -> impl Strategy<Value = Part> {
    (
        prop_oneof![Just("file".to_string()), Just("user".to_string()), "[a-z\"]{0,6}"],
        proptest::option::of(prop_oneof!["[a-z]{1,8}\\.(pdf|png|txt|exe|)", ".{0,12}"]),
        proptest::option::of(prop_oneof![
            Just("application/pdf".to_string()),
            Just("image/png".to_string()),
            "[a-z/;=\"]{0,16}"
        ]),
        prop::collection::vec(any::<u8>(), 0..64),
    )
}

const BOUNDARY: &str = "fuzzBOUNDARY42";

fn multipart(parts: &[Part], close: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, ctype, content) in parts {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = filename {
            out.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(c) = ctype {
            out.extend_from_slice(format!("Content-Type: {c}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    }
    out
}

fn multipart_bodies() -> impl Strategy<Value = (Vec<u8>, String)> {
    let valid: Vec<Part> = vec![
        ("user".into(), None, None, b"u1".to_vec()),
        (
            "file".into(),
            Some("a.pdf".into()),
            Some("application/pdf".into()),
            b"%PDF-1.4 hi".to_vec(),
        ),
    ];
    let ctype = prop_oneof![
        6 => Just(format!("multipart/form-data; boundary={BOUNDARY}")),
        1 => Just("multipart/form-data".to_string()),
        1 => Just("application/json".to_string()),
        1 => "multipart/form-data; boundary=[a-zA-Z0-9\"]{0,12}",
    ];
    let body = prop_oneof![
        (prop::collection::vec(part(), 0..4), any::<bool>()).prop_map(|(p, c)| multipart(&p, c)),
        mutated_bytes(multipart(&valid, true)),
        Just(multipart(&valid, true)),
    ];
    (body, ctype)
}

#[test]
fn upload_multipart_bodies() {
    let f = Fuzz::start();
    f.run(
        300,
        "POST files/upload",
        multipart_bodies(),
        |(body, ctype)| {
            f.req(true, Method::POST, "/v1/files/upload")
                .header("content-type", ctype)
                .body(body.clone())
        },
        one_if(&[201]),
    );
    f.assert_healthy();
}
