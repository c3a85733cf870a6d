//! Issue 5, item 7: every route the router serves (see [`crate::auth_routes::MATRIX`]),
//! with no key, an empty key, a wrong key, a wrong scheme, the right key in the wrong case
//! or in the query string, and a key of the wrong kind (an app key on the admin API, an
//! admin key on the app API, an admin or app key on a signed sheet): 401 (no valid key of
//! the kind) or 403 (a valid key of the wrong kind), the JSON error `{code, message,
//! status}`, none of the resources' data in the answer, and nothing done. The same requests
//! with the right key succeed and do show the data, so the canaries are real. Keys of
//! each role (viewer, operator, admin) on every route: `auth_roles.rs`.
//!
//! Decisions asserted here: the scheme word is case-insensitive (RFC 7235: `bearer` and
//! `BEARER` work, tested in `auth.rs`), the key is not; a key is read only from `Api-Key`
//! or `Authorization: Bearer`, never from the query; when both headers are sent `Api-Key`
//! is the one judged, so a wrong `Api-Key` is not rescued by a right bearer token. The sink
//! answers 401 to every unauthenticated call (its key is not of a "kind": a signed sheet
//! wants a signature, a keyed one an admin key), with one and the same body whether the
//! sheet is keyed, signed, unknown or not even an id, so that ids cannot be probed.
//! Another app's resources: `auth_scoping.rs`.

use reqwest::Method;
use serde_json::json;

use crate::auth_fixture::{
    json_body, send_raw, signed_headers, sink_path, Fixture, ALPHA_KEY, BETA_KEY, PROCESSOR,
};
use crate::auth_routes::{routes_of, Kind, MATRIX};
use crate::common::{Received, KEY, WAIT};
use hookrelay::auth::Role;

use crate::helpers::{assert_error, count_list, ids_of, Headers, Resp, ENDPOINTS};

/// One way of presenting a key, and the status it must get.
struct Variant {
    what: &'static str,
    headers: Headers,
    /// Appended to the query string.
    query: Option<String>,
    status: u16,
}

fn v(what: &'static str, headers: Headers, status: u16) -> Variant {
    Variant { what, headers, query: None, status }
}

fn bearer(key: &str) -> Headers {
    vec![("Authorization", format!("Bearer {key}"))]
}

/// Presentations that are not a valid key of `right`'s kind: 401 each.
fn not_a_key(right: &str) -> Vec<Variant> {
    vec![
        v("no key", vec![], 401),
        v("empty Api-Key", vec![("Api-Key", String::new())], 401),
        v("empty Bearer", bearer(""), 401),
        v("bare Bearer", vec![("Authorization", "Bearer".into())], 401),
        v("wrong Api-Key", vec![("Api-Key", "wrong-key-123".into())], 401),
        v("wrong Bearer", bearer("wrong-key-123"), 401),
        v("wrong key, BEARER", vec![("Authorization", "BEARER wrong-key-123".into())], 401),
        v("right key, Basic scheme", vec![("Authorization", format!("Basic {right}"))], 401),
        v("right key, Token scheme", vec![("Authorization", format!("Token {right}"))], 401),
        v("right key, no space", vec![("Authorization", format!("Bearer{right}"))], 401),
        v("right key, upper case", bearer(&right.to_uppercase()), 401),
        v("right key in Authorization raw", vec![("Authorization", right.to_string())], 401),
        v(
            "wrong Api-Key beside a right Bearer",
            vec![("Api-Key", "wrong-key-123".into()), ("Authorization", format!("Bearer {right}"))],
            401,
        ),
        Variant {
            what: "right key in the query",
            headers: vec![],
            query: Some(format!("api_key={right}&key={right}&token={right}")),
            status: 401,
        },
    ]
}

fn admin_variants() -> Vec<Variant> {
    let mut out = not_a_key(KEY);
    out.push(v("app key as Bearer", bearer(ALPHA_KEY), 403));
    out.push(v("app key as Api-Key", vec![("Api-Key", ALPHA_KEY.into())], 403));
    out.push(v("unknown app- key", bearer("app-0123456789abcdef"), 403));
    out
}

fn app_variants() -> Vec<Variant> {
    let mut out = not_a_key(ALPHA_KEY);
    out.push(v("unknown app- key", bearer("app-0123456789abcdef"), 401));
    out.push(v("admin key as Bearer", bearer(KEY), 403));
    out.push(v("admin key as Api-Key", vec![("Api-Key", KEY.into())], 403));
    out
}

/// Asserts a refusal: `status`, the JSON error shape, its code, and no canary.
fn assert_refused(fx: &Fixture, r: &Resp, status: u16, ctx: &str) {
    assert_error(r, status, "", ctx);
    let code = if status == 401 { "unauthorized" } else { "forbidden" };
    assert_eq!(r.body["code"], code, "{ctx}: {}", r.text);
    for canary in &fx.canaries {
        assert!(!r.text.contains(canary.as_str()), "{ctx}: answer shows {canary:?}: {}", r.text);
    }
    assert!(!r.text.contains("wrong-key-123"), "{ctx}: the key is echoed: {}", r.text);
}

fn with_query(path: &str, query: &Option<String>) -> String {
    match query {
        None => path.to_string(),
        Some(q) if path.contains('?') => format!("{path}&{q}"),
        Some(q) => format!("{path}?{q}"),
    }
}

async fn refuse_all(fx: &Fixture, kind: Kind, variants: &[Variant]) -> usize {
    let mut sent = 0;
    for (method, template) in routes_of(kind) {
        for variant in variants {
            let (m, path, body) = fx.request(method, template);
            let path = with_query(&path, &variant.query);
            let r = send_raw(&fx.relay, m, &path, &variant.headers, body).await;
            assert_refused(
                fx,
                &r,
                variant.status,
                &format!("{method} {path} with {}", variant.what),
            );
            sent += 1;
        }
    }
    sent
}

/// The sink: a keyed sheet wants an admin key, a signed sheet a valid signature.
async fn refuse_sink(fx: &Fixture) -> usize {
    let body = json!({"canary": "intruder"}).to_string().into_bytes();
    let other_secret = format!("whsec_{}", "A".repeat(43) + "=");
    let signed_by_sheet = signed_headers(&fx.sheet_secret, &body);
    let signed_other_body = signed_headers(&fx.sheet_secret, b"{\"canary\":\"other\"}");
    let mut keyed: Vec<Variant> = not_a_key(KEY);
    keyed.push(v("app key as Bearer", bearer(ALPHA_KEY), 401));
    keyed.push(v("app key as Api-Key", vec![("Api-Key", ALPHA_KEY.into())], 401));
    keyed.push(v("a valid signature instead of a key", signed_by_sheet.clone(), 401));
    let mut signed: Vec<Variant> = not_a_key(KEY);
    signed.retain(|v| v.what != "wrong Api-Key beside a right Bearer");
    signed.push(v("admin key as Api-Key", vec![("Api-Key", KEY.into())], 401));
    signed.push(v("admin key as Bearer", bearer(KEY), 401));
    signed.push(v("app key as Bearer", bearer(ALPHA_KEY), 401));
    signed.push(v("signed with another secret", signed_headers(&other_secret, &body), 401));
    signed.push(v("signature of another body", signed_other_body, 401));
    let mut with_key = signed_by_sheet.clone();
    with_key[2].1 = "v1,AAAA".into();
    with_key.push(("Api-Key", KEY.into()));
    signed.push(v("a bad signature and an admin key", with_key, 401));
    // An id that does not exist (or cannot): the same 401, so ids cannot be probed.
    let mut unknown: Vec<Variant> = not_a_key(KEY);
    unknown.push(v("app key as Bearer", bearer(ALPHA_KEY), 401));
    unknown.push(v("another sheet's valid signature", signed_by_sheet.clone(), 401));
    unknown.push(v("signed with another secret", signed_headers(&other_secret, &body), 401));
    let unknown_id = format!("ss_{}", "0".repeat(32));
    let mut sent = 0;
    let mut answers = std::collections::BTreeSet::new();
    let targets = [
        (fx.keyed_sheet.as_str(), &keyed),
        (fx.signed_sheet.as_str(), &signed),
        (unknown_id.as_str(), &unknown),
        ("not-an-id", &unknown),
    ];
    for (sheet, variants) in targets {
        for variant in variants {
            let path = with_query(&sink_path(sheet), &variant.query);
            let body = Some(("application/json".to_string(), body.clone()));
            let r = send_raw(&fx.relay, Method::POST, &path, &variant.headers, body).await;
            assert_refused(fx, &r, variant.status, &format!("POST {path} with {}", variant.what));
            answers.insert(r.text);
            sent += 1;
        }
    }
    assert_eq!(answers.len(), 1, "sink refusals differ, telling sheets apart: {answers:#?}");
    sent
}

/// Rows (header included) of worksheet `Sheet1` of `sheet`.
async fn rows(fx: &Fixture, sheet: &str) -> usize {
    let v = fx.relay.get_json(&format!("/v1/spreadsheets/{sheet}/values/Sheet1")).await;
    v["values"].as_array().map_or(0, Vec::len)
}

async fn app_get(fx: &Fixture, key: &str, path: &str) -> Resp {
    send_raw(&fx.relay, Method::GET, path, &bearer(key), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_wrong_key_and_shows_nothing() {
    let fx = Fixture::start().await;
    let (keyed_rows, signed_rows) =
        (rows(&fx, &fx.keyed_sheet).await, rows(&fx, &fx.signed_sheet).await);
    assert_eq!((keyed_rows, signed_rows), (2, 2), "header and one row each");

    let messages = count_list(&fx.relay, "/v1/messages?limit=100").await;
    let mut admin = 0;
    for role in Role::ALL {
        admin += refuse_all(&fx, Kind::Key(role), &admin_variants()).await;
    }
    let app = refuse_all(&fx, Kind::App, &app_variants()).await;
    let sink = refuse_sink(&fx).await;
    eprintln!("auth matrix: {admin} admin, {app} app, {sink} sink refusals");
    let per_role = Role::ALL.map(|role| routes_of(Kind::Key(role)).count());
    assert_eq!(per_role, [19, 7, 15], "viewer, operator and admin routes");
    assert_eq!(routes_of(Kind::App).count(), 6);

    // Nothing any refused request asked for happened: what is stored before an answer, now;
    // the receiver's calls at the end, once a message sent after every refusal has arrived.
    let list = fx.relay.get_json(&format!("{ENDPOINTS}?limit=100")).await;
    assert_eq!(ids_of(list["data"].as_array().expect("data")), vec![fx.automation.clone()]);
    assert_eq!(list["data"][0]["name"], "test");
    let secret = fx.relay.get_json(&format!("{ENDPOINTS}/{}/secret", fx.automation)).await;
    assert_eq!(secret["secret"], fx.secret.as_str());
    assert!(secret["previous_secret_expires_at"].is_null(), "rotated: {secret}");
    assert_eq!(fx.relay.all_logs("").await.len(), 1);
    assert_eq!(count_list(&fx.relay, "/v1/deliveries?limit=100").await, 1);
    assert_eq!(count_list(&fx.relay, "/v1/messages?limit=100").await, messages);
    assert_eq!(count_list(&fx.relay, "/v1/spreadsheets?limit=100").await, 2);
    assert_eq!(rows(&fx, &fx.keyed_sheet).await, keyed_rows, "a refused append wrote a row");
    assert_eq!(rows(&fx, &fx.signed_sheet).await, signed_rows, "a refused append wrote a row");
    for (key, runs) in [(ALPHA_KEY, 1), (BETA_KEY, 0)] {
        let logs = app_get(&fx, key, "/v1/workflows/logs").await;
        assert_eq!(logs.body["total"], runs, "a refused run ran: {}", logs.text);
    }

    // The right credential works on the same requests, and shows the data the refusals hid.
    for (method, template, kind) in MATRIX.iter().filter(|r| r.0 == "GET") {
        let (m, path, _) = fx.request(method, template);
        let headers = match kind {
            Kind::Key(_) => vec![("Api-Key", KEY.to_string())],
            Kind::App => bearer(ALPHA_KEY),
            Kind::Public => vec![],
            Kind::Sink => unreachable!("the sink is POST only"),
        };
        let r = send_raw(&fx.relay, m, &path, &headers, None).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
        let shows = fx.canaries.iter().any(|c| r.text.contains(c.as_str()));
        match (*kind, *template) {
            (Kind::Public, _) => assert!(!shows, "{path} needs no key and shows data: {}", r.text),
            (_, "/v1/parameters") => assert!(r.text.contains("\"codeword\""), "{}", r.text),
            _ => assert!(shows, "{method} {path} shows no canary: {}", r.text),
        }
    }
    let keyed = send_raw(
        &fx.relay,
        Method::POST,
        &sink_path(&fx.keyed_sheet),
        &[("Api-Key", KEY.into())],
        json_body(json!({"canary": "allowed"})),
    )
    .await;
    assert_eq!(keyed.status, 200, "{}", keyed.text);
    let body = json!({"canary": "signed"}).to_string().into_bytes();
    let signed = send_raw(
        &fx.relay,
        Method::POST,
        &sink_path(&fx.signed_sheet),
        &signed_headers(&fx.sheet_secret, &body),
        Some(("application/json".into(), body)),
    )
    .await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    let scoped = fx.relay.get_json(&format!("/v1/processors/{PROCESSOR}/automations/logs")).await;
    assert_eq!(ids_of(scoped["data"].as_array().expect("data")), vec![fx.log.clone()]);

    // Positive control: a message sent after the refusals reaches the receiver, and by then
    // it is the receiver's second call (the fixture's message the first), none from a refusal.
    fx.relay.send_message(PROCESSOR, json!({"m": "control"})).await;
    let calls = fx
        .relay
        .wait_for(WAIT, "the control message", || async {
            let calls = fx.receiver.calls();
            let control = |c: &Received| {
                serde_json::from_slice::<serde_json::Value>(&c.body).ok()
                    == Some(json!({"m": "control"}))
            };
            calls.iter().any(control).then_some(calls)
        })
        .await;
    assert_eq!(calls.len(), 2, "a refused request reached the receiver: {calls:?}");
}
