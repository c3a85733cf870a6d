//! A claim whose lease ran out, claimed again (docs/postgres.md, "Claims"): the old attempt
//! is logged `E_INTERRUPTED` and counted as made, the new claim is the next attempt, and the
//! claiming instance counts it in `hookrelay_lease_expiries_total`.

use super::delivery::{automation, intake, message, open, request, succeeded};
use super::{server, Fresh};
use crate::metrics::Metrics;
use crate::outbound::ErrorCode;
use crate::store::{ClaimedDelivery, DeliveryStatus, LogFilter, PageRequest, Take, Trigger};

#[tokio::test]
async fn a_lease_that_ran_out_is_logged_interrupted_and_counted() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (one, two) = (open(&db).await, open(&db).await);
    one.create_automation(automation("proc_lease")).await.unwrap();
    let msg = message("proc_lease", r#"{"lease":1}"#, None);
    let accepted = one.ingest(msg, intake(Some(Take::Call), 500)).await.unwrap();
    let [first] = <[ClaimedDelivery; 1]>::try_from(accepted.handover.ready).unwrap();
    assert_eq!((first.attempt, first.trigger), (1, Trigger::Initial));
    // A claim whose lease has not run out is nobody else's.
    assert!(two.claim_due(request(10, Take::Call, 60_000)).await.unwrap().is_empty());
    assert_eq!(two.lease_expiries().get(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;

    let taken = two.claim_due(request(10, Take::Call, 60_000)).await.unwrap();
    let [again] = <[ClaimedDelivery; 1]>::try_from(taken).unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!((again.attempt, again.trigger), (2, Trigger::Retry), "the next attempt");
    assert_eq!(two.lease_expiries().get(), 1, "counted by the instance that claimed again");
    assert_eq!(one.lease_expiries().get(), 0);

    let row = two.delivery(first.id.clone()).await.unwrap();
    assert_eq!(row.attempts, 1, "the interrupted attempt counts");
    let interrupted = ErrorCode::Interrupted.as_str();
    assert_eq!(row.last_error_code.as_deref(), Some(interrupted));
    let page = PageRequest { before: None, after: None, limit: 10, desc: true };
    let logs = two.list_logs(LogFilter::default(), page).await.unwrap().items;
    let [log] = <[_; 1]>::try_from(logs).unwrap();
    assert_eq!(log.log.error_code, Some(ErrorCode::Interrupted));
    assert_eq!(log.log.attempt, 1, "logged on the old attempt");
    assert_eq!(log.log.delivery_id.as_ref(), Some(&first.id));
    assert_eq!(log.request_body.as_deref(), Some(br#"{"lease":1}"#.as_slice()));

    // The new holder's outcome ends it as attempt 2.
    two.record_outcome(succeeded(&again).into(), None).await.unwrap();
    let row = two.delivery(first.id.clone()).await.unwrap();
    assert_eq!((row.status, row.attempts), (DeliveryStatus::Succeeded, 2));

    // `/metrics` shows the store's count.
    let text = Metrics::default().with_store(&two).render(false);
    assert!(text.contains("hookrelay_lease_expiries_total 1\n"), "{text}");
    drop((one, two));
    db.drop_now().await;
}
