//! Exactly-once rows for direct calls: the same `webhook-id` again (signed or keyed)
//! answers the first append's result and adds nothing, even with another body; ids are
//! scoped to a worksheet.
//!
//! (Item 4 of the test plan.)

use serde_json::json;

use crate::common::Relay;
use crate::helpers::{
    create_sheet, grid, id_of, msg_id, new_secret, new_sheet, post_keyed, post_signed, row_count,
    rows, sink_path,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_replay_answers_the_first_result_and_appends_nothing() {
    let relay = Relay::start("");
    let secret = new_secret();
    let id = new_sheet(&relay, "Once", Some(&secret)).await;
    let path = sink_path(&id, 0, None);
    let wid = msg_id();
    let body = json!({"order": 1, "item": "tea"});

    let first = post_signed(&relay, &path, &secret, &wid, &body).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["updates"]["updatedRange"], "Sheet1!A1:B2");
    let other =
        post_signed(&relay, &path, &secret, &msg_id(), &json!({"order": 2, "item": "coffee"}))
            .await;
    assert_eq!(other.body["updates"]["updatedRange"], "Sheet1!A3:B3", "{}", other.body);

    // The very same request again, and the same id with another body: the first answer.
    for replay_body in [body.clone(), json!({"order": 99, "item": "cake", "extra": true})] {
        let again = post_signed(&relay, &path, &secret, &wid, &replay_body).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.body, first.body, "a replay answers the original append");
    }
    assert_eq!(
        rows(&relay, &id, "Sheet1").await,
        grid(&[&["order", "item"], &["1", "tea"], &["2", "coffee"]]),
        "replays appended nothing (and added no column)"
    );
    assert_eq!(row_count(&relay, &id, 0).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_replays_are_deduplicated_and_calls_without_an_id_are_not() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Keyed once", None).await;
    let path = sink_path(&id, 0, None);
    let wid = msg_id();
    let first = post_keyed(&relay, &path, Some(&wid), &json!({"v": "a"})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = post_keyed(&relay, &path, Some(&wid), &json!({"v": "a"})).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, first.body);
    // Without a webhook-id every call is a new row.
    for _ in 0..2 {
        let r = post_keyed(&relay, &path, None, &json!({"v": "b"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(rows(&relay, &id, "Sheet1").await, grid(&[&["v"], &["a"], &["b"], &["b"]]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_id_is_scoped_to_its_worksheet() {
    let relay = Relay::start("");
    let sheet =
        create_sheet(&relay, json!({"title": "Scoped", "sheets": ["Sheet1", "Other"]})).await;
    let id = id_of(&sheet);
    let other = new_sheet(&relay, "Elsewhere", None).await;
    let wid = msg_id();
    let body = json!({"k": "v"});
    for (sheet_id, ss) in [(0, &id), (1, &id), (0, &other)] {
        let r = post_keyed(&relay, &sink_path(ss, sheet_id, None), Some(&wid), &body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["spreadsheetId"], ss.as_str(), "{}", r.body);
        assert_eq!(r.body["updates"]["updatedRows"], 2, "a first append there: {}", r.body);
    }
    assert_eq!(row_count(&relay, &id, 0).await, 2);
    assert_eq!(row_count(&relay, &id, 1).await, 2);
    assert_eq!(row_count(&relay, &other, 0).await, 2);
}

/// An empty `webhook-id` is no id: it must not make distinct calls replays of each other.
/// Either each call appends (200, a row of its own) or it is refused (4xx); never a 200
/// that silently drops the payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_webhook_id_does_not_swallow_later_calls() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Empty ids", None).await;
    let path = sink_path(&id, 0, None);
    let mut accepted = 0;
    for v in ["a", "b", "c"] {
        let r = post_keyed(&relay, &path, Some(""), &json!({ "v": v })).await;
        match r.status {
            200 => {
                accepted += 1;
                let data = rows(&relay, &id, "Sheet1!A2:A").await;
                assert!(
                    data.iter().any(|row| row == &[v]),
                    "{v} answered 200 but is not in {data:?}"
                );
            }
            400..=499 => {}
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(rows(&relay, &id, "Sheet1!A2:A").await.len(), accepted, "every 200 is a row");
}
