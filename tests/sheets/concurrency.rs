//! 200 concurrent appends (distinct webhook-ids) get 200 distinct, contiguous data rows
//! 2..=201: none lost, none duplicated, each payload exactly once.
//!
//! (Item 5 of the test plan.)

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;
use serde_json::json;

use crate::common::{self, Relay, KEY};
use crate::helpers::{
    msg_id, new_secret, new_sheet, post_raw, post_signed_with, row_count, rows, sink_path,
};

const N: usize = 200;

/// Checks the answers and the sheet after `N` appends of `{"n": i, "tag": "p-{i}"}`.
async fn check(relay: &Relay, id: &str, answers: Vec<crate::helpers::Resp>) {
    let mut landed = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 200, "append {i}: {}", a.body);
        let range = a.body["updates"]["updatedRange"].as_str().expect("updatedRange");
        let last = range.rsplit(':').next().unwrap().trim_start_matches('B');
        landed.push(last.parse::<u32>().expect("row number"));
    }
    let distinct: HashSet<u32> = landed.iter().copied().collect();
    assert_eq!(distinct.len(), N, "two appends got the same row");
    assert_eq!(distinct, (2..=(N as u32 + 1)).collect::<HashSet<_>>(), "rows are not 2..=201");
    let header_writers = answers.iter().filter(|a| a.body["updates"]["updatedRows"] == 2).count();
    assert_eq!(header_writers, 1, "exactly one append wrote the header");

    let got = rows(relay, id, "Sheet1").await;
    assert_eq!(got.len(), N + 1, "header + {N} rows");
    assert_eq!(got[0], ["n", "tag"]);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in &got[1..] {
        assert_eq!(row.len(), 2, "{row:?}");
        assert_eq!(row[1], format!("p-{}", row[0]), "a row mixes two payloads: {row:?}");
        *seen.entry(row[1].clone()).or_default() += 1;
    }
    for i in 0..N {
        assert_eq!(seen.get(&format!("p-{i}")), Some(&1), "payload {i} not exactly once");
    }
    // Each answer's row holds that answer's payload.
    for (i, row) in landed.iter().enumerate() {
        assert_eq!(got[*row as usize - 1][1], format!("p-{i}"), "answer {i} names another row");
    }
    assert_eq!(row_count(relay, id, 0).await, N as u64 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_signed_appends_get_contiguous_rows() {
    let relay = Relay::start("");
    let secret = new_secret();
    let id = new_sheet(&relay, "Burst", Some(&secret)).await;
    let path = sink_path(&id, 0, None);
    let client = common::client();
    let calls = (0..N).map(|i| {
        let (client, relay, path, secret) = (&client, &relay, &path, &secret);
        async move {
            let body = json!({"n": i, "tag": format!("p-{i}")});
            post_signed_with(client, relay, path, secret, &msg_id(), &body).await
        }
    });
    let answers = join_all(calls).await;
    check(&relay, &id, answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_keyed_appends_with_replays_lose_nothing() {
    let relay = Relay::start("");
    let id = new_sheet(&relay, "Keyed burst", None).await;
    let path = sink_path(&id, 0, None);
    let client = common::client();
    let ids: Vec<String> = (0..N).map(|_| msg_id()).collect();
    let call = |i: usize| {
        let (client, relay, path, wid) = (&client, &relay, &path, ids[i].clone());
        async move {
            let headers = [("Api-Key", KEY.to_string()), ("webhook-id", wid)];
            let body = serde_json::to_vec(&json!({"n": i, "tag": format!("p-{i}")})).unwrap();
            post_raw(client, relay, path, &headers, body).await
        }
    };
    // Every call, plus a concurrent duplicate of every fourth one (same webhook-id).
    let (answers, replays) =
        tokio::join!(join_all((0..N).map(call)), join_all((0..N).step_by(4).map(call)));
    for (k, replay) in replays.iter().enumerate() {
        assert_eq!(replay.status, 200, "{}", replay.body);
        assert_eq!(replay.body, answers[k * 4].body, "a duplicate answers the same append");
    }
    check(&relay, &id, answers).await;
}
