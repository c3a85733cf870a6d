use std::collections::HashSet;

use serde_json::json;

use crate::common::{self, Receiver, Relay};
use crate::helpers::{assert_uiform_log, ids_of, LOGS};

// ---------------------------------------------------------------------------------------
// 4. Cursor walk
// ---------------------------------------------------------------------------------------

/// `list` with `query` appended as further query parameters.
pub(crate) fn with_query(list: &str, query: &str) -> String {
    format!("{list}{}{query}", if list.contains('?') { '&' } else { '?' })
}

/// Walks `after` cursors over `list` (a logs path, maybe with filters) from the first page,
/// returning the pages; checks the cursors as it goes.
pub(crate) async fn walk_after(
    relay: &Relay,
    list: &str,
    order: &str,
    limit: usize,
) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    let mut page_no = 0;
    loop {
        let page = relay
            .get_json(&with_query(list, &format!("limit={limit}&order={order}{cursor}")))
            .await;
        let data = page["data"].as_array().unwrap();
        for log in data {
            assert_uiform_log(log);
        }
        assert!(!data.is_empty(), "empty page {page_no} in {order} walk");
        assert!(data.len() <= limit);
        let meta = &page["list_metadata"];
        if page_no == 0 {
            assert!(meta["before"].is_null(), "first page has a before cursor: {meta}");
        } else {
            assert_eq!(meta["before"].as_str(), data[0]["id"].as_str(), "page {page_no}: {meta}");
        }
        out.push(ids_of(data));
        page_no += 1;
        match meta["after"].as_str() {
            Some(a) => {
                assert_eq!(data.len(), limit, "short page with an after cursor");
                assert_eq!(Some(a), data.last().unwrap()["id"].as_str());
                cursor = format!("&after={a}");
            }
            None => break,
        }
        assert!(page_no < 1000, "walk does not end");
    }
    out
}

/// Walks `before` cursors back from `last_page`, returning everything from the start.
pub(crate) async fn walk_before(
    relay: &Relay,
    list: &str,
    order: &str,
    limit: usize,
    last_page: Vec<String>,
) -> Vec<String> {
    let mut out = last_page;
    let mut cursor = out[0].clone();
    let mut pages = 0;
    loop {
        let page = relay
            .get_json(&with_query(list, &format!("limit={limit}&order={order}&before={cursor}")))
            .await;
        let data = page["data"].as_array().unwrap();
        let ids = ids_of(data);
        assert!(!ids.is_empty(), "empty page walking back {order}");
        let meta = &page["list_metadata"];
        assert_eq!(meta["after"].as_str(), ids.last().map(String::as_str), "{meta}");
        let mut new = ids.clone();
        new.extend(out);
        out = new;
        pages += 1;
        match meta["before"].as_str() {
            Some(b) => {
                assert_eq!(ids.len(), limit, "short page with a before cursor");
                assert_eq!(b, ids[0]);
                cursor = b.to_string();
            }
            None => break,
        }
        assert!(pages < 1000, "walk does not end");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_walks_reproduce_the_full_list_in_both_orders() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start(common::FAST_RETRIES);
    for _ in 0..10 {
        relay.create_automation("proc_walk", &receiver.url("/w")).await;
    }
    for i in 0..25 {
        let m = relay.send_message("proc_walk", json!({"i": i})).await;
        assert_eq!(m["delivery_ids"].as_array().unwrap().len(), 10);
    }
    const N: usize = 250;
    let reference = relay.wait_logs_exactly("", N).await;
    let asc_ref = ids_of(&reference);
    let unique: HashSet<&String> = asc_ref.iter().collect();
    assert_eq!(unique.len(), N, "duplicate ids in the reference list");
    let mut sorted = asc_ref.clone();
    sorted.sort();
    assert_eq!(sorted, asc_ref, "asc listing is not in id order");
    let mut desc_ref = asc_ref.clone();
    desc_ref.reverse();

    for (order, want) in [("desc", &desc_ref), ("asc", &asc_ref)] {
        let pages = walk_after(&relay, LOGS, order, 7).await;
        assert_eq!(pages.len(), N.div_ceil(7), "{order} page count");
        let walked = pages.concat();
        assert_eq!(walked.len(), N, "{order} walk length");
        assert_eq!(&walked, want, "{order} walk with after cursors");

        // Back from the last page with before cursors.
        let last_page = pages.last().unwrap().clone();
        assert_eq!(last_page.len(), N % 7);
        let back = walk_before(&relay, LOGS, order, 7, last_page).await;
        assert_eq!(&back, want, "{order} walk back with before cursors");
    }

    // The default (desc, 10) and the maximum page size.
    let first = relay.get_json(LOGS).await;
    assert_eq!(ids_of(first["data"].as_array().unwrap()), desc_ref[..10].to_vec());
    let pages = walk_after(&relay, LOGS, "desc", 100).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![100, 100, 50]);
    assert_eq!(pages.concat(), desc_ref);
}
