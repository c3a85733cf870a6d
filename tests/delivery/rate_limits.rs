//! `rate_limit_per_sec`: at most N calls start in any second, measured where it matters (the
//! receiver's arrival times); deliveries waiting for their start hold no global slot, so an
//! unlimited automation beside a limited one goes at full speed; an update takes effect on
//! the deliveries already waiting; reruns and test calls count and wait too.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, Receiver, Relay, ENDPOINTS};
use crate::helpers::{delivery_toml, queue};

/// What the receiver's clock may see of the relay's pace beyond the limit: the time from the
/// relay starting a call to its arrival varies, by a few milliseconds on an open connection,
/// by about a hundred for the first calls, which open theirs, and by more while the machine
/// runs other tests (a debug build), so N + 1 arrivals are only required to span a second
/// less this. It still catches a token bucket's burst (N at once, then one every 1/N s: N +
/// 3 within 700 ms); the exact check is on the relay's own record ([`LOG_SLACK_MS`]).
const SLACK: Duration = Duration::from_millis(300);

/// The same for the relay's own record of each call (its log's `request_at`, in ms), taken a
/// few milliseconds after the start: what lies between is signing the call.
const LOG_SLACK_MS: i64 = 50;

/// The most of `times` (µs from any origin) in any window of one second less `slack_us`.
fn busiest(mut times: Vec<i64>, slack_us: i64) -> usize {
    times.sort_unstable();
    let window = 1_000_000 - slack_us;
    let (mut most, mut first) = (0, 0);
    for (last, t) in times.iter().enumerate() {
        while t - times[first] >= window {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

/// The most arrivals in any window of one second (less [`SLACK`]).
fn busiest_second(calls: &[common::Received]) -> usize {
    let Some(origin) = calls.iter().map(|c| c.at).min() else { return 0 };
    let times = calls.iter().map(|c| c.at.duration_since(origin).as_micros() as i64).collect();
    busiest(times, SLACK.as_micros() as i64)
}

/// The most calls the relay's logs of automation `id` record in any second (less
/// [`LOG_SLACK_MS`]).
async fn busiest_logged_second(relay: &Relay, id: &str) -> usize {
    let logs = relay.all_logs(&format!("automation_id={id}")).await;
    let times = logs
        .iter()
        .map(|l| {
            let at = l["external_request_log"]["request_at"].as_str().expect("request_at");
            chrono::DateTime::parse_from_rfc3339(at).expect("rfc3339").timestamp_micros()
        })
        .collect();
    busiest(times, LOG_SLACK_MS * 1000)
}

/// A [`Receiver`] on a thread and runtime of its own, so that the arrival times it records
/// are not held up by the test's own load (its producers, the other receiver).
fn receiver_apart() -> Receiver {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            tx.send(Receiver::ok().await).expect("send");
            std::future::pending::<()>().await
        });
    });
    rx.recv().expect("receiver")
}

/// Creates an automation for `processor` calling `receiver`, limited to `per_sec` (`null`:
/// none); returns its id.
async fn limited(relay: &Relay, processor: &str, receiver: &Receiver, per_sec: Value) -> String {
    let body = json!({"name": processor, "processor_id": processor,
        "webhook_url": receiver.url("/hook"), "rate_limit_per_sec": per_sec});
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["rate_limit_per_sec"], per_sec, "{created}");
    created["id"].as_str().expect("id").to_string()
}

/// Sets the automation's limit with a PUT of that field alone; returns the answer.
async fn set_limit(relay: &Relay, id: &str, per_sec: Value) -> (u16, Value) {
    let resp = relay
        .req(reqwest::Method::PUT, &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"rate_limit_per_sec": per_sec}))
        .send()
        .await
        .expect("put");
    (resp.status().as_u16(), resp.json().await.expect("json"))
}

/// Waits until `receiver` has `n` calls, at most `within`; returns how long that took.
async fn calls_within(receiver: &Receiver, n: usize, within: Duration) -> Duration {
    let started = Instant::now();
    while receiver.count() < n {
        assert!(started.elapsed() < within, "{} of {n} calls after {within:?}", receiver.count());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

// Few global slots, more lane slots per automation than that: if the deliveries waiting for
// their start held a global slot, the limited automation would take them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_automation_keeps_its_pace_and_never_slows_the_others() {
    let toml = delivery_toml(&[
        ("global_concurrency", "4"),
        ("per_automation_concurrency", "8"),
        ("request_timeout_ms", "10000"),
    ]);
    let relay = Relay::start(&toml);
    let (slow, fast) = (receiver_apart(), Receiver::ok().await);
    let id = limited(&relay, "proc_limited", &slow, json!(5)).await;
    limited(&relay, "proc_free", &fast, Value::Null).await;

    // 60 at 5/s: 5 at once, then 5 a second, the last after at least 11 s.
    queue(&relay, "proc_limited", 60).await;
    let posted = Instant::now();
    queue(&relay, "proc_free", 100).await;
    let free_took = calls_within(&fast, 100, Duration::from_secs(5)).await;
    let limited_then = slow.count();
    eprintln!("unlimited: 100 calls in {free_took:?}; limited had {limited_then} by then");
    assert!(limited_then < 40, "the limited automation had {limited_then} calls already");

    calls_within(&slow, 60, Duration::from_secs(20)).await;
    let calls = slow.calls();
    let span = calls.last().expect("calls").at.duration_since(calls[0].at);
    eprintln!("limited: 60 calls over {span:?}, {:?} after the posts", posted.elapsed());
    assert_eq!(
        busiest_logged_second(&relay, &id).await,
        5,
        "more than 5 calls started in a second"
    );
    assert_eq!(busiest_second(&calls), 5, "more than 5 calls arrived within a second");
    assert!(span >= Duration::from_secs(11) - SLACK, "60 calls in {span:?} at 5/s");
    assert!(span < Duration::from_secs(14), "60 calls took {span:?} at 5/s");
    assert!(busiest_second(&fast.calls()) > 5, "the unlimited automation was paced");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(slow.count(), 60, "a delivery was called twice");
}

// An update changes the pace of the deliveries already waiting, without a restart: lifted,
// the rest go at once; set again, the next ones keep the new pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_changes_the_pace_at_once() {
    let relay = Relay::start(common::FAST_RETRIES);
    let receiver = receiver_apart();
    let id = limited(&relay, "proc_paced", &receiver, json!(1)).await;

    queue(&relay, "proc_paced", 20).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = receiver.count();
    assert!((2..=4).contains(&before), "{before} calls in 2.5 s at 1/s");
    assert_eq!(busiest_second(&receiver.calls()), 1);

    let (status, body) = set_limit(&relay, &id, Value::Null).await;
    assert_eq!((status, &body["rate_limit_per_sec"]), (200, &Value::Null), "{body}");
    let rest = calls_within(&receiver, 20, Duration::from_secs(3)).await;
    eprintln!("the other {} calls {rest:?} after the limit was lifted", 20 - before);

    let (status, body) = set_limit(&relay, &id, json!(3)).await;
    assert_eq!((status, &body["rate_limit_per_sec"]), (200, &json!(3)), "{body}");
    let shown = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(shown["rate_limit_per_sec"], 3, "{shown}");
    queue(&relay, "proc_paced", 9).await;
    calls_within(&receiver, 29, Duration::from_secs(6)).await;
    let calls = receiver.calls();
    let paced = &calls[20..];
    let span = paced[8].at.duration_since(paced[0].at);
    assert_eq!(busiest_second(paced), 3, "more than 3 calls within a second");
    assert!(span >= Duration::from_secs(2) - SLACK, "9 calls in {span:?} at 3/s");
}

// A test call counts against the limit and waits for its start, without queueing behind the
// deliveries waiting for theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_call_counts_and_waits_for_its_start() {
    let relay = Relay::start(common::FAST_RETRIES);
    let receiver = receiver_apart();
    let id = limited(&relay, "proc_tested", &receiver, json!(2)).await;

    queue(&relay, "proc_tested", 6).await;
    let asked = Instant::now();
    let path = format!("/v1/processors/automations/tests/webhook/{id}");
    let resp = relay.req(reqwest::Method::POST, &path).send().await.expect("test call");
    let waited = asked.elapsed();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    eprintln!("the test call was answered after {waited:?}");
    assert!(waited < Duration::from_secs(2), "the test call waited {waited:?} in line");
    calls_within(&receiver, 7, Duration::from_secs(5)).await;
    assert_eq!(busiest_second(&receiver.calls()), 2, "more than 2 calls within a second");
    assert_eq!(
        busiest_logged_second(&relay, &id).await,
        2,
        "more than 2 calls started in a second"
    );
}

// Refused values name the field and change nothing; a limit outlives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limits_are_refused_and_a_limit_outlives_a_restart() {
    let mut relay = Relay::start(common::FAST_RETRIES);
    let receiver = receiver_apart();
    let id = limited(&relay, "proc_kept", &receiver, json!(7)).await;
    let before = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    let refused =
        [json!(0), json!(-1), json!(1.5), json!("5"), json!(1e9), json!(10_001), json!(true)];
    for value in &refused {
        let (status, body) = set_limit(&relay, &id, value.clone()).await;
        assert_eq!(status, 400, "{value}: {body}");
        assert_eq!(body["field"], "rate_limit_per_sec", "{value}: {body}");
        let body = json!({"name": "n", "processor_id": "proc_new",
            "webhook_url": receiver.url("/hook"), "rate_limit_per_sec": value});
        let (status, body) = relay.post_json(ENDPOINTS, &body).await;
        assert_eq!((status, &body["field"]), (400, &json!("rate_limit_per_sec")), "{value}");
    }
    assert_eq!(relay.get_json(&format!("{ENDPOINTS}/{id}")).await, before);
    assert!(
        relay.list_all(&format!("{ENDPOINTS}?name=n")).await.is_empty(),
        "an automation was created"
    );
    let (status, body) = set_limit(&relay, &id, json!(10_000)).await;
    assert_eq!((status, &body["rate_limit_per_sec"]), (200, &json!(10_000)), "{body}");
    let (status, _) = set_limit(&relay, &id, json!(7)).await;
    assert_eq!(status, 200);

    relay.restart();
    let shown = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(shown["rate_limit_per_sec"], 7, "{shown}");
    queue(&relay, "proc_kept", 14).await;
    calls_within(&receiver, 14, Duration::from_secs(5)).await;
    let calls = receiver.calls();
    assert_eq!(busiest_second(&calls), 7, "more than 7 calls within a second after a restart");
    assert_eq!(
        busiest_logged_second(&relay, &id).await,
        7,
        "more than 7 calls started in a second"
    );
    let span = calls[13].at.duration_since(calls[0].at);
    assert!(span >= Duration::from_secs(1) - SLACK, "14 calls in {span:?} at 7/s");
}
