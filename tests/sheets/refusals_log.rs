//! A refused sink call is the caller's error, like any other 4xx: it is logged at DEBUG, so
//! an anonymous client (no key needed to be refused) cannot grow the relay's log.

use std::time::Duration;

use serde_json::json;

use crate::common::{self, Relay};
use crate::helpers::{msg_id, new_secret, new_sheet, post_raw, post_signed_with, sink_path};

/// The INFO lines a clean stop writes (the marker that every earlier line was read).
const STOP_LINES: &[&str] = &["shutdown signal received", "shutting down", "stopped"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_anonymous_sink_calls_add_no_log_lines_at_the_default_level() {
    let mut relay = Relay::start_capturing_log("", &[("RUST_LOG", "info")]);
    let signed = new_sheet(&relay, "Signed", Some(&new_secret())).await;
    let keyed = new_sheet(&relay, "Keyed", None).await;
    let unknown = format!("ss_{}", "0".repeat(32));
    let before = relay.log().lines().count();
    let client = common::client();
    for i in 0..200 {
        // No credential; a signature with a secret not the sheet's; an unknown sheet.
        let r = match i % 4 {
            0 => post_raw(&client, &relay, &sink_path(&keyed, 0, None), &[], b"{}".to_vec()).await,
            1 => {
                post_raw(&client, &relay, "/v1/integrations/google_sheets/webhook", &[], vec![])
                    .await
            }
            2 => {
                let path = sink_path(&signed, 0, None);
                post_signed_with(&client, &relay, &path, &new_secret(), &msg_id(), &json!({})).await
            }
            _ => {
                let path = sink_path(&unknown, 0, None);
                post_signed_with(&client, &relay, &path, &new_secret(), &msg_id(), &json!({})).await
            }
        };
        assert_eq!(r.status, 401, "call {i}: {}", r.body);
    }
    assert!(relay.terminate().success());
    let log = relay
        .wait_for(Duration::from_secs(5), "the stop in the log", || async {
            let log = relay.log();
            log.contains("stopped").then_some(log)
        })
        .await;
    let added: Vec<&str> = log
        .lines()
        .skip(before)
        .filter(|line| !STOP_LINES.iter().any(|stop| line.contains(stop)))
        .collect();
    assert!(added.is_empty(), "{} lines added by refused calls: {added:#?}", added.len());
}
