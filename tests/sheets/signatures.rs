//! Authenticity. A spreadsheet with a webhook secret accepts only calls signed with it
//! (Standard Webhooks, ±5 minutes): unsigned, wrongly signed and stale calls get 401 and
//! append nothing. Without a secret, the sink wants an admin key.
//!
//! (Item 6 of the test plan.)

use serde_json::json;

use crate::common::{self, Relay, KEY};
use crate::helpers::{
    assert_error, grid, msg_id, new_secret, new_sheet, now_secs, post_raw, row_count, rows, sign,
    sink_path, Resp,
};

/// A sink call with the given signing headers (`None` leaves one out) and extra headers.
async fn call(
    relay: &Relay,
    path: &str,
    id: Option<&str>,
    ts: Option<i64>,
    signature: Option<String>,
    extra: &[(&str, String)],
    body: &[u8],
) -> Resp {
    let mut headers: Vec<(&str, String)> = extra.to_vec();
    if let Some(id) = id {
        headers.push(("webhook-id", id.to_string()));
    }
    if let Some(ts) = ts {
        headers.push(("webhook-timestamp", ts.to_string()));
    }
    if let Some(sig) = signature {
        headers.push(("webhook-signature", sig));
    }
    post_raw(&common::client(), relay, path, &headers, body.to_vec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_spreadsheet_refuses_unsigned_wrong_and_stale_calls() {
    let relay = Relay::start("");
    let secret = new_secret();
    let id = new_sheet(&relay, "Signed", Some(&secret)).await;
    let path = sink_path(&id, 0, None);
    let body = serde_json::to_vec(&json!({"who": "mallory"})).unwrap();
    let now = now_secs();
    let wid = msg_id();
    let good = sign(&secret, &wid, now, &body);
    let key = [("Api-Key", KEY.to_string())];

    let refused = [
        ("unsigned", call(&relay, &path, None, None, None, &[], &body).await),
        ("unsigned, admin key", call(&relay, &path, None, None, None, &key, &body).await),
        ("no signature", call(&relay, &path, Some(&wid), Some(now), None, &[], &body).await),
        (
            "no timestamp",
            call(&relay, &path, Some(&wid), None, Some(good.clone()), &[], &body).await,
        ),
        (
            "another secret",
            call(
                &relay,
                &path,
                Some(&wid),
                Some(now),
                Some(sign(&new_secret(), &wid, now, &body)),
                &[],
                &body,
            )
            .await,
        ),
        (
            "another body",
            call(
                &relay,
                &path,
                Some(&wid),
                Some(now),
                Some(good.clone()),
                &[],
                br#"{"who":"eve"}"#,
            )
            .await,
        ),
        (
            "another webhook-id",
            call(&relay, &path, Some(&msg_id()), Some(now), Some(good.clone()), &[], &body).await,
        ),
        (
            "garbage signature",
            call(&relay, &path, Some(&wid), Some(now), Some("v1,AAAA".into()), &[], &body).await,
        ),
        (
            "stale (6 minutes)",
            call(
                &relay,
                &path,
                Some(&wid),
                Some(now - 360),
                Some(sign(&secret, &wid, now - 360, &body)),
                &[],
                &body,
            )
            .await,
        ),
        (
            "future (6 minutes)",
            call(
                &relay,
                &path,
                Some(&wid),
                Some(now + 360),
                Some(sign(&secret, &wid, now + 360, &body)),
                &[],
                &body,
            )
            .await,
        ),
        (
            "timestamp not a number",
            call(
                &relay,
                &path,
                Some(&wid),
                None,
                Some(good.clone()),
                &[("webhook-timestamp", "soon".into())],
                &body,
            )
            .await,
        ),
    ];
    for (what, r) in &refused {
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_error(r, 401, "unauthorized", None);
    }
    assert_eq!(row_count(&relay, &id, 0).await, 0, "a refused call appended something");

    // Within the window (4 minutes old) and signed right: accepted, even among other
    // entries (as during a secret rotation).
    let ts = now - 240;
    let sig = format!("v1,bm90IGl0 {}", sign(&secret, &wid, ts, &body));
    let ok = call(&relay, &path, Some(&wid), Some(ts), Some(sig), &[], &body).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(rows(&relay, &id, "Sheet1").await, grid(&[&["who"], &["mallory"]]));
    // A later refused call still appends nothing.
    let late = call(&relay, &path, Some(&msg_id()), None, None, &[], &body).await;
    assert_error(&late, 401, "unauthorized", None);
    assert_eq!(row_count(&relay, &id, 0).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_the_sink_wants_an_admin_key() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Keyed", None).await;
    let path = sink_path(&id, 0, None);
    let body = serde_json::to_vec(&json!({"k": 1})).unwrap();
    let wid = msg_id();
    let now = now_secs();
    let secret = new_secret();
    let signed_only = call(
        &relay,
        &path,
        Some(&wid),
        Some(now),
        Some(sign(&secret, &wid, now, &body)),
        &[],
        &body,
    );
    let refused = [
        ("no key", call(&relay, &path, None, None, None, &[], &body).await),
        (
            "wrong key",
            call(
                &relay,
                &path,
                None,
                None,
                None,
                &[("Api-Key", "not-the-admin-key-0000".into())],
                &body,
            )
            .await,
        ),
        (
            "app key",
            call(
                &relay,
                &path,
                None,
                None,
                None,
                &[("Authorization", "Bearer app-demo-key-0123456789".into())],
                &body,
            )
            .await,
        ),
        ("signed but no key", signed_only.await),
    ];
    for (what, r) in &refused {
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_error(r, 401, "unauthorized", None);
    }
    assert_eq!(row_count(&relay, &id, 0).await, 0, "a refused call appended something");

    let api_key =
        call(&relay, &path, None, None, None, &[("Api-Key", KEY.to_string())], &body).await;
    assert_eq!(api_key.status, 200, "{}", api_key.body);
    let bearer =
        call(&relay, &path, None, None, None, &[("Authorization", format!("Bearer {KEY}"))], &body)
            .await;
    assert_eq!(bearer.status, 200, "{}", bearer.body);
    assert_eq!(rows(&relay, &id, "Sheet1").await, grid(&[&["k"], &["1"], &["1"]]));
}

/// An unauthenticated caller cannot probe which spreadsheet ids exist: without an admin key
/// or a valid signature, an unknown, malformed or deleted id gets the very same 401 as a
/// keyed or a signed spreadsheet (same body, whatever was wrong). With an admin key an
/// unknown id is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_caller_cannot_tell_which_spreadsheets_exist() {
    let relay = Relay::start("");
    let secret = new_secret();
    let keyed = new_sheet(&relay, "Keyed", None).await;
    let signed = new_sheet(&relay, "Signed", Some(&secret)).await;
    let deleted = new_sheet(&relay, "Gone", None).await;
    let gone = crate::helpers::send(
        relay.req(reqwest::Method::DELETE, &format!("{}/{deleted}", crate::helpers::SHEETS)),
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    let unknown = format!("ss_{}", "0".repeat(32));
    let body = serde_json::to_vec(&json!({"probe": 1})).unwrap();
    let (wid, now) = (msg_id(), now_secs());
    let variants: [(&str, Vec<(&str, String)>); 5] = [
        ("no credentials", vec![]),
        ("wrong key", vec![("Api-Key", "not-the-admin-key-0000".into())]),
        ("app key", vec![("Authorization", "Bearer app-demo-key-0123456789".into())]),
        (
            "signed with another secret",
            vec![
                ("webhook-id", wid.clone()),
                ("webhook-timestamp", now.to_string()),
                ("webhook-signature", sign(&new_secret(), &wid, now, &body)),
            ],
        ),
        (
            "stale signature",
            vec![
                ("webhook-id", wid.clone()),
                ("webhook-timestamp", (now - 3600).to_string()),
                ("webhook-signature", sign(&new_secret(), &wid, now - 3600, &body)),
            ],
        ),
    ];
    let targets = [
        ("unknown", unknown.as_str()),
        ("malformed", "nope"),
        ("deleted", deleted.as_str()),
        ("keyed", keyed.as_str()),
        ("signed", signed.as_str()),
    ];
    let mut answers = std::collections::BTreeSet::new();
    for (what, headers) in &variants {
        for (target, id) in targets {
            let r = call(&relay, &sink_path(id, 0, None), None, None, None, headers, &body).await;
            assert_eq!(r.status, 401, "{what} on {target}: {}", r.body);
            assert_error(&r, 401, "unauthorized", None);
            assert!(!r.body.to_string().contains(id), "{what} on {target}: {}", r.body);
            answers.insert(r.body.to_string());
        }
    }
    assert_eq!(answers.len(), 1, "refusals differ, so they tell ids apart: {answers:#?}");
    for id in [&keyed, &signed] {
        assert_eq!(row_count(&relay, id, 0).await, 0, "a refused call appended something");
    }

    // An admin key is authenticated: it learns that an id does not exist.
    let key = [("Api-Key", KEY.to_string())];
    for id in [unknown.as_str(), "nope", deleted.as_str()] {
        let r = call(&relay, &sink_path(id, 0, None), None, None, None, &key, &body).await;
        assert_error(&r, 404, "not_found", Some("spreadsheet"));
    }
}
