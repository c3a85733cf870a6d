//! A success that changes nothing on its automation's health row does not lock it: outcomes
//! of one automation, on any instance, do not wait for each other's commits there.

use std::time::Duration;

use super::delivery::{automation, intake, message, open, succeeded};
use super::{admin, server, Fresh};
use crate::store::{ClaimedDelivery, Take};

#[tokio::test]
async fn a_success_within_the_second_does_not_wait_for_the_health_rows_lock() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let created = store.create_automation(automation("proc_health")).await.unwrap();
    let mut claimed = Vec::new();
    for n in 0..2 {
        let msg = message("proc_health", &format!(r#"{{"n":{n}}}"#), None);
        let accepted = store.ingest(msg, intake(Some(Take::Call), 60_000)).await.unwrap();
        claimed.extend(accepted.handover.ready);
    }
    let [first, second] = <[ClaimedDelivery; 2]>::try_from(claimed).unwrap();
    store.record_outcome(succeeded(&first).into(), None).await.unwrap();

    // Another transaction holds the health row, as a concurrent outcome's would.
    let mut holder = admin(&db.url).await;
    let held = holder.transaction().await.unwrap();
    let locked = held
        .execute(
            "SELECT 1 FROM automation_health WHERE automation_id = $1::bytea FOR UPDATE",
            &[&created.id],
        )
        .await
        .unwrap();
    assert_eq!(locked, 1, "the first success made the row");
    let recorded = tokio::time::timeout(
        Duration::from_secs(5),
        store.record_outcome(succeeded(&second).into(), None),
    )
    .await;
    assert!(recorded.is_ok(), "a success that changes nothing waited for the row's lock");
    recorded.unwrap().unwrap();
    held.rollback().await.unwrap();
    let row = store.delivery(second.id.clone()).await.unwrap();
    assert_eq!(row.status, crate::store::DeliveryStatus::Succeeded);
    drop(store);
    db.drop_now().await;
}
