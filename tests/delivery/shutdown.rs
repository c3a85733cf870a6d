use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{self, Receiver, Relay};
use crate::helpers::{delivery_toml, first_delivery, SlowReceiver, WAIT};

// 11. SIGTERM lets the call in flight finish, exits 0, and a restart keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_call_and_restart_serves() {
    let slow = SlowReceiver::start(Duration::from_millis(1500)).await;
    let ok = Receiver::ok().await;
    let mut relay = Relay::start(common::FAST_RETRIES);
    relay.create_automation("proc_slow", &slow.url()).await;
    relay.create_automation("proc_after", &ok.url("/after")).await;
    let id = first_delivery(&relay.send_message("proc_slow", json!({"slow": 1})).await);
    relay
        .wait_for(WAIT, "the slow call to start", || async { (slow.count() == 1).then_some(()) })
        .await;
    assert_eq!(slow.answered.load(Ordering::SeqCst), 0, "the call is still in flight");

    let started = Instant::now();
    // `terminate` blocks on the child; keep the runtime (and the receiver) running meanwhile.
    let status = tokio::task::block_in_place(|| relay.terminate());
    assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
    assert_eq!(slow.answered.load(Ordering::SeqCst), 1, "the in-flight call was let finish");
    assert!(started.elapsed() < Duration::from_secs(9), "shutdown took {:?}", started.elapsed());

    relay.restart();
    let d = relay.delivery(&id).await;
    assert_eq!(d["status"], "succeeded", "the finished call was recorded before exit: {d}");
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 1, "{logs:#?}");
    assert_eq!(logs[0]["external_request_log"]["status_code"], 200);
    let after =
        first_delivery(&relay.send_message("proc_after", json!({"after": "restart"})).await);
    relay.wait_delivery_ends(&after, "succeeded").await;
    assert_eq!(ok.count(), 1);
    assert_eq!(slow.count(), 1, "a delivered call is not sent again after restart");
}

// SIGTERM with a call outlasting the grace period: exit 0 within the grace, the delivery
// stays pending, and the next start sends it again (at-least-once, same webhook-id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_past_grace_leaves_delivery_pending_for_next_start() {
    // The call (3 s) outlasts the grace (1 s) but not the request timeout (5 s).
    let slow = SlowReceiver::start(Duration::from_secs(3)).await;
    let mut relay = Relay::start(&delivery_toml(&[
        ("shutdown_grace_secs", "1"),
        ("request_timeout_ms", "5000"),
    ]));
    relay.create_automation("proc_grace", &slow.url()).await;
    let message = relay.send_message("proc_grace", json!({"grace": 1})).await;
    let id = first_delivery(&message);
    relay
        .wait_for(WAIT, "the slow call to start", || async { (slow.count() == 1).then_some(()) })
        .await;
    let started = Instant::now();
    let status = tokio::task::block_in_place(|| relay.terminate());
    let took = started.elapsed();
    assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
    assert!(took < Duration::from_millis(2500), "grace is 1 s but shutdown took {took:?}");
    assert_eq!(slow.answered.load(Ordering::SeqCst), 0, "exited before the call finished");

    relay.restart();
    relay.wait_delivery_ends(&id, "succeeded").await;
    let arrivals = slow.count();
    assert_eq!(arrivals, 2, "sent again after restart, exactly once more");
    let logs = relay.logs_of(&id).await;
    assert_eq!(logs.len(), 2, "the cut-off attempt and the resend are both logged: {logs:#?}");
    assert_eq!(logs[0]["error_code"], "E_INTERRUPTED", "{}", logs[0]);
    assert_eq!(logs[0]["attempt"], 1);
    assert_eq!(logs[1]["external_request_log"]["status_code"], 200);
    assert_eq!(logs[1]["attempt"], 2);
    for log in &logs {
        assert_eq!(log["message_id"], message["id"]);
    }
}
