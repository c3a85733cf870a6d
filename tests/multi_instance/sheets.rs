//! Sheet rows stay contiguous across instances: concurrent appends to one worksheet through
//! three instances (some webhook-ids sent twice, to two instances) land on rows 2..=N+1,
//! no gap, no duplicate, each webhook-id once (docs/postgres.md, "Sheets row numbers").

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::common::instances::Instances;
use crate::common::{self, Relay, KEY};

/// Distinct appends (webhook-ids).
const N: usize = 300;
/// Every this many, a webhook-id is also sent to the next instance at the same time.
const TWICE_EVERY: usize = 5;
/// Appends in flight at once, over the three instances: enough that every instance has
/// several waiting on the worksheet's row lock, few enough that none waits past the pool's
/// 5 s (a 503) on this shared machine.
const IN_FLIGHT: usize = 24;

/// Appends `{"n": i, "tag": "p-i"}` under webhook-id `wid` through `relay`; its status and body.
async fn append(client: &reqwest::Client, relay: &Relay, path: &str, wid: &str, i: usize) -> Value {
    let resp = client
        .post(relay.url(path))
        .header("Api-Key", KEY)
        .header("webhook-id", wid)
        .json(&json!({"n": i, "tag": format!("p-{i}")}))
        .send()
        .await
        .expect("append");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(status, 200, "append {i} through {}: {body}", relay.base);
    body
}

/// The row an append's answer names (`Sheet1!A7:B7` → 7).
fn row_of(answer: &Value) -> u32 {
    let range = answer["updates"]["updatedRange"].as_str().expect("updatedRange");
    let last = range.rsplit(':').next().expect("a range").trim_start_matches(char::is_alphabetic);
    last.parse().unwrap_or_else(|_| panic!("a row number in {range}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_through_three_instances_get_contiguous_rows() {
    let Some(server) = crate::server() else { return };
    let began = std::time::Instant::now();
    let set = Instances::start(&server, 3, "");
    let (status, sheet) =
        set.relays[0].post_json("/v1/spreadsheets", &json!({"title": "Shared"})).await;
    assert_eq!(status, 201, "{sheet}");
    let id = sheet["spreadsheetId"].as_str().expect("spreadsheetId").to_string();
    let path = format!("/v1/integrations/google_sheets/webhook?spreadsheet_id={id}&worksheet_id=0");
    let wids: Vec<String> = (0..N).map(|_| common::signing::msg_id()).collect();
    let client = common::client();
    let relays = &set.relays;
    let call = |i: usize, shift: usize| {
        let (client, path, wid) = (&client, &path, &wids[i]);
        async move { append(client, &relays[(i + shift) % relays.len()], path, wid, i).await }
    };
    let (answers, twice): (Vec<Value>, Vec<Value>) = tokio::join!(
        stream::iter((0..N).map(|i| call(i, 0))).buffered(IN_FLIGHT).collect(),
        stream::iter((0..N).step_by(TWICE_EVERY).map(|i| call(i, 1)))
            .buffered(IN_FLIGHT / 4)
            .collect()
    );
    for (k, again) in twice.iter().enumerate() {
        assert_eq!(again, &answers[k * TWICE_EVERY], "a webhook-id sent twice: one append");
    }
    let landed: Vec<u32> = answers.iter().map(row_of).collect();
    let distinct: HashSet<u32> = landed.iter().copied().collect();
    assert_eq!(distinct.len(), N, "two appends got the same row");
    let expected: HashSet<u32> = (2..=N as u32 + 1).collect();
    assert_eq!(distinct, expected, "rows are not 2..={}", N + 1);

    // Every instance reads the same rows: the header, then each payload once, where its
    // answer said.
    for relay in relays {
        let values = relay.get_json(&format!("/v1/spreadsheets/{id}/values/Sheet1")).await;
        let rows: Vec<Vec<String>> =
            serde_json::from_value(values["values"].clone()).expect("rows");
        assert_eq!(rows.len(), N + 1, "header + {N} rows through {}", relay.base);
        assert_eq!(rows[0], ["n", "tag"]);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for row in &rows[1..] {
            assert_eq!(row[1], format!("p-{}", row[0]), "a row mixes two payloads: {row:?}");
            *seen.entry(row[1].as_str()).or_default() += 1;
        }
        assert!(seen.values().all(|&n| n == 1), "a payload twice");
        for (i, row) in landed.iter().enumerate() {
            assert_eq!(
                rows[*row as usize - 1][1],
                format!("p-{i}"),
                "answer {i} names another row"
            );
        }
    }
    eprintln!("sheets across instances: {N} appends (+{}) in {:?}", twice.len(), began.elapsed());
}
