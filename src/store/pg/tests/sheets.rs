//! Spreadsheets on PostgreSQL through `Store`: created, read, paged, signed by an automation
//! and unlinked, deleted with their rows; appends from two connections at once get
//! contiguous row numbers, and one webhook-id appended twice at once makes one row whose
//! answer both get.

use std::collections::BTreeSet;

use serde_json::json;

use super::store::{automation, open};
use super::{admin, server, Fresh};
use crate::ids::{AutomationId, SpreadsheetId};
use crate::store::{Appended, NewRow, PageRequest, Spreadsheet, Store, StoreError, Worksheet};
use crate::time::UnixMs;

fn sheet(title: &str) -> Spreadsheet {
    let worksheet = |sheet_id, title: &str| Worksheet {
        sheet_id,
        title: title.into(),
        header: Vec::new(),
        last_row: 0,
    };
    Spreadsheet {
        id: SpreadsheetId::new(),
        title: title.into(),
        webhook_secret: Some("whsec_AAAAAAAAAAAAAAAAAAAAAA==".into()),
        signer: None,
        worksheets: vec![worksheet(0, "Sheet1"), worksheet(1, "Other")],
        created_at: UnixMs::from_ms(10),
        updated_at: UnixMs::from_ms(10),
    }
}

fn row(cells: &[(&str, &str, Option<f64>)]) -> NewRow {
    NewRow { cells: cells.iter().map(|(k, v, l)| (k.to_string(), v.to_string(), *l)).collect() }
}

/// The answer an append stores: where it landed, as JSON (the sink's answer is JSON too).
fn answer(a: &Appended) -> String {
    json!({"sheet": a.sheet_title, "first": a.first_row, "row": a.row, "columns": a.columns})
        .to_string()
}

async fn append(
    store: &Store,
    id: &SpreadsheetId,
    webhook_id: Option<&str>,
    cells: &[(&str, &str, Option<f64>)],
) -> Result<(serde_json::Value, bool), StoreError> {
    let (text, replayed) = store
        .append_row(id.clone(), 0, webhook_id.map(str::to_string), row(cells), 3, answer)
        .await?;
    Ok((serde_json::from_str(&text).unwrap(), replayed))
}

#[tokio::test]
async fn spreadsheets_round_trip_page_sign_and_delete_with_their_rows() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let first = store.create_spreadsheet(sheet("one")).await.unwrap();
    let second = store.create_spreadsheet(sheet("two")).await.unwrap();

    let read = store.spreadsheet(first.id.clone()).await.unwrap();
    assert_eq!((read.title.as_str(), read.created_at), ("one", UnixMs::from_ms(10)));
    assert_eq!(read.webhook_secret, first.webhook_secret);
    let sheets: Vec<_> =
        read.worksheets.iter().map(|w| (w.sheet_id, w.title.as_str(), w.last_row)).collect();
    assert_eq!(sheets, [(0, "Sheet1", 0), (1, "Other", 0)]);
    assert!(read.signer.is_none());

    // Paged one at a time, oldest first, each with its worksheets.
    let request = |after| PageRequest { before: None, after, limit: 1, desc: false };
    let p = store.list_spreadsheets(request(None)).await.unwrap();
    assert_eq!(p.items.iter().map(|s| &s.id).collect::<Vec<_>>(), [&first.id]);
    assert_eq!(p.items[0].worksheets.len(), 2);
    let p = store.list_spreadsheets(request(p.after)).await.unwrap();
    assert_eq!(p.items.iter().map(|s| &s.id).collect::<Vec<_>>(), [&second.id]);
    assert_eq!(p.after, None);

    // The header grows with new keys (at the end); values land in header order, with their
    // likelihoods.
    let (a, replayed) =
        append(&store, &first.id, Some("msg_1"), &[("b", "2", None)]).await.unwrap();
    assert_eq!(
        (a, replayed),
        (json!({"sheet": "Sheet1", "first": 1, "row": 2, "columns": 1}), false)
    );
    let (a, _) =
        append(&store, &first.id, None, &[("a", "1", Some(0.5)), ("b", "3", None)]).await.unwrap();
    assert_eq!(a, json!({"sheet": "Sheet1", "first": 3, "row": 3, "columns": 2}));
    let (a, replayed) =
        append(&store, &first.id, Some("msg_1"), &[("z", "9", None)]).await.unwrap();
    assert_eq!((a["row"].as_u64(), replayed), (Some(2), true), "a replay adds nothing");
    let err = append(&store, &first.id, None, &[("c", "", None), ("d", "", None)]).await;
    assert!(matches!(err, Err(StoreError::Limit(_))), "{err:?}");
    let rows = store.sheet_rows(first.id.clone(), 0, 2, 10).await.unwrap();
    let cells: Vec<_> = rows.iter().map(|r| (r.row, r.cells.clone())).collect();
    assert_eq!(cells, [(2, vec!["2".to_string()]), (3, vec!["3".into(), "1".into()])]);
    assert_eq!(rows[0].likelihoods, None);
    assert_eq!(rows[1].likelihoods, Some(vec![None, Some(0.5)]));
    let read = store.spreadsheet(first.id.clone()).await.unwrap();
    assert_eq!(read.worksheets[0].header, ["b", "a"]);
    assert_eq!(read.worksheets[0].last_row, 3);
    let missing = store
        .append_row(first.id.clone(), 7, None, row(&[("a", "1", None)]), 3, answer)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound("worksheet")), "{missing}");

    // Signed by an automation: the webhook secret goes; unlinked, the signer goes.
    let automation_id = AutomationId::new();
    store.create_automation(automation(automation_id.clone(), "proc_pg")).await.unwrap();
    let err = store.set_sheet_signer(first.id.clone(), AutomationId::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("automation")), "{err}");
    let err = store.set_sheet_signer(SpreadsheetId::new(), automation_id.clone()).await;
    assert!(matches!(err, Err(StoreError::NotFound("spreadsheet"))), "{err:?}");
    store.set_sheet_signer(first.id.clone(), automation_id.clone()).await.unwrap();
    store.set_sheet_signer(first.id.clone(), automation_id.clone()).await.unwrap();
    let signed = store.spreadsheet(first.id.clone()).await.unwrap();
    assert_eq!(signed.signer.map(|a| a.id), Some(automation_id.clone()));
    assert_eq!(signed.webhook_secret, None);
    assert!(signed.updated_at > UnixMs::from_ms(10));
    store.unlink_sheet_signer(first.id.clone()).await.unwrap();
    assert!(store.spreadsheet(first.id.clone()).await.unwrap().signer.is_none());
    let err = store.unlink_sheet_signer(first.id.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("signer")), "{err}");

    store.delete_spreadsheet(first.id.clone()).await.unwrap();
    let err = store.spreadsheet(first.id.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("spreadsheet")), "{err}");
    let err = store.delete_spreadsheet(first.id.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("spreadsheet")), "{err}");
    let left: i64 = admin(&db.url)
        .await
        .query_one("SELECT count(*) FROM sheet_rows WHERE spreadsheet_id = $1", &[&first.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the rows went with their spreadsheet");
    drop(store);
    db.drop_now().await;
}

#[tokio::test]
async fn concurrent_appends_from_two_connections_get_contiguous_rows() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    // Two stores: two pools, as two instances would have.
    let (a, b) = (open(&db).await, open(&db).await);
    let sheet = a.create_spreadsheet(sheet("race")).await.unwrap();
    const EACH: usize = 25;
    let run = |store: Store, tag: &'static str| {
        let id = sheet.id.clone();
        tokio::spawn(async move {
            let mut rows = Vec::new();
            for i in 0..EACH {
                let webhook_id = format!("{tag}_{i}");
                let (a, replayed) =
                    append(&store, &id, Some(&webhook_id), &[("n", &webhook_id, None)])
                        .await
                        .unwrap();
                assert!(!replayed);
                rows.push(a["row"].as_u64().unwrap());
            }
            rows
        })
    };
    let (from_a, from_b) = tokio::join!(run(a.clone(), "a"), run(b.clone(), "b"));
    let all: BTreeSet<u64> = from_a.unwrap().into_iter().chain(from_b.unwrap()).collect();
    let expected: BTreeSet<u64> = (2..2 + 2 * EACH as u64).collect();
    assert_eq!(all, expected, "every row number once, no gap");
    let stored = b.sheet_rows(sheet.id.clone(), 0, 1, 1000).await.unwrap();
    assert_eq!(stored.len(), 2 * EACH);
    let numbers: Vec<u32> = stored.iter().map(|r| r.row).collect();
    assert_eq!(numbers, (2..2 + 2 * EACH as u32).collect::<Vec<_>>());
    let read = a.spreadsheet(sheet.id.clone()).await.unwrap();
    assert_eq!(read.worksheets[0].last_row, 1 + 2 * EACH as u32);
    drop((a, b));
    db.drop_now().await;
}

#[tokio::test]
async fn one_webhook_id_appended_twice_at_once_makes_one_row_and_one_answer() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (a, b) = (open(&db).await, open(&db).await);
    let sheet = a.create_spreadsheet(sheet("once")).await.unwrap();
    for i in 0..10 {
        let webhook_id = format!("msg_{i}");
        let (x, y) = tokio::join!(
            append(&a, &sheet.id, Some(&webhook_id), &[("n", "from a", None)]),
            append(&b, &sheet.id, Some(&webhook_id), &[("n", "from b", None)]),
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.0, y.0, "both get the answer of the append that was made");
        assert!(x.1 != y.1, "one appended, the other replayed: {x:?} {y:?}");
        assert_eq!(x.0["row"].as_u64(), Some(2 + i));
    }
    let stored = a.sheet_rows(sheet.id.clone(), 0, 1, 100).await.unwrap();
    assert_eq!(stored.len(), 10, "one row per webhook-id");
    drop((a, b));
    db.drop_now().await;
}
