//! Logs appear to readers as a growing prefix of the id order, and writers do not wait for
//! each other: a reader lists only ids below the earliest a writer still in progress may
//! take (`pg::logs::horizon`), so a log committed late never lands below a cursor already
//! handed out.

use std::time::Duration;

use super::delivery::{automation, intake, message, open, succeeded};
use super::{server, Fresh};
use crate::store::log_filters::LogFilter;
use crate::store::page::PageRequest;
use crate::store::pg::{logs, Pg};
use crate::store::{ClaimedDelivery, Store, Take};

async fn listed(store: &Store) -> Vec<String> {
    let page = PageRequest { before: None, after: None, limit: 100, desc: false };
    let page = store.list_logs(LogFilter::default(), page).await.unwrap();
    page.items.into_iter().map(|l| l.id.into_string()).collect()
}

#[tokio::test]
async fn a_log_still_being_written_hides_later_ones_without_making_their_writers_wait() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    store.create_automation(automation("proc_order")).await.unwrap();
    let mut claimed = Vec::new();
    for n in 0..2 {
        let msg = message("proc_order", &format!(r#"{{"n":{n}}}"#), None);
        let accepted = store.ingest(msg, intake(Some(Take::Call), 60_000)).await.unwrap();
        claimed.extend(accepted.handover.ready);
    }
    let [first, second] = <[ClaimedDelivery; 2]>::try_from(claimed).unwrap();
    let (pg, _) = Pg::open(&db.url, 4).await.unwrap();

    let mut slow = pg.client().await.unwrap();
    let slow = slow.transaction().await.unwrap();
    let early = logs::insert(&pg, &slow, &succeeded(&first).log).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut quick = pg.client().await.unwrap();
    let quick = quick.transaction().await.unwrap();
    // Another response body: a body one writer stored, uncommitted, is waited for.
    let mut answered = succeeded(&second).log;
    answered.response_body = Some(b"{\"second\":true}".to_vec());
    let late = tokio::time::timeout(Duration::from_secs(5), logs::insert(&pg, &quick, &answered))
        .await
        .expect("a log's writer waited for another's commit")
        .unwrap();
    quick.commit().await.unwrap();
    assert!(early < late);

    assert_eq!(
        listed(&store).await,
        Vec::<String>::new(),
        "a log above one still being written was listed: following with after= it, the \
         earlier one would be missed"
    );
    slow.commit().await.unwrap();
    assert_eq!(listed(&store).await, [early.into_string(), late.into_string()]);
    drop(store);
    db.drop_now().await;
}
