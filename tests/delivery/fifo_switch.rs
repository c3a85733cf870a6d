//! Switching an automation's ordering applies to its backlog: made FIFO, the messages
//! accepted before the switch and not yet sent go one at a time in ingest order (the calls
//! already in flight finish as they are); made parallel, a FIFO backlog goes at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::common::{Relay, ENDPOINTS, WAIT};
use crate::helpers::delivery_toml;

/// Messages sent while the receiver is held: more than the per-automation concurrency.
const N: u64 = 8;
/// `per_automation_concurrency` of these tests.
const CONCURRENCY: usize = 2;
/// The relay's call timeout: far past how long a test holds its receiver, so no held call
/// times out and is retried (which would change what these tests count).
const CALL_TIMEOUT_MS: &str = "15000";

/// One call a [`GateReceiver`] got: the message's `seq`, when it arrived and was answered.
#[derive(Debug, Clone)]
struct Call {
    seq: u64,
    start: Instant,
    end: Instant,
}

/// A receiver whose calls wait until its gate is opened, then answer 200 after `delay`;
/// it records every call, how many it has at once and the most it ever had.
struct GateReceiver {
    addr: std::net::SocketAddr,
    calls: Arc<Mutex<Vec<Call>>>,
    arrived: Arc<Mutex<Vec<u64>>>,
    most_at_once: Arc<AtomicUsize>,
    gate: watch::Sender<bool>,
}

impl GateReceiver {
    async fn start(delay: Duration) -> Self {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let arrived: Arc<Mutex<Vec<u64>>> = Arc::default();
        let most_at_once: Arc<AtomicUsize> = Arc::default();
        let now_in: Arc<AtomicUsize> = Arc::default();
        let (gate, opened) = watch::channel(false);
        let (c, a, most) = (calls.clone(), arrived.clone(), most_at_once.clone());
        let app = Router::new().fallback(move |body: Bytes| {
            let (c, a, most, now_in) = (c.clone(), a.clone(), most.clone(), now_in.clone());
            let mut opened = opened.clone();
            async move {
                let start = Instant::now();
                let at_once = now_in.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(at_once, Ordering::SeqCst);
                let seq = serde_json::from_slice::<Value>(&body).expect("json")["seq"]
                    .as_u64()
                    .expect("seq");
                a.lock().unwrap().push(seq);
                opened.wait_for(|open| *open).await.expect("gate");
                tokio::time::sleep(delay).await;
                now_in.fetch_sub(1, Ordering::SeqCst);
                c.lock().unwrap().push(Call { seq, start, end: Instant::now() });
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, calls, arrived, most_at_once, gate }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The `seq` of every call that arrived so far, answered or not, in arrival order.
    fn arrived(&self) -> Vec<u64> {
        self.arrived.lock().unwrap().clone()
    }

    /// Calls answered so far, by arrival.
    fn calls(&self) -> Vec<Call> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.sort_by_key(|c| c.start);
        calls
    }

    fn open(&self) {
        self.gate.send_replace(true);
    }
}

/// Creates an automation of `processor` with `ordering`; returns its id.
async fn create(relay: &Relay, processor: &str, url: &str, ordering: &str) -> String {
    let body = json!({"name": "switch", "processor_id": processor, "webhook_url": url, "ordering": ordering});
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_string()
}

/// Sends messages `seq` 0..N one after another, so ingest order is `seq` order.
async fn send(relay: &Relay, processor: &str) {
    for seq in 0..N {
        relay.send_message(processor, json!({"seq": seq})).await;
    }
}

async fn set_ordering(relay: &Relay, id: &str, ordering: &str) {
    let resp = relay
        .req(reqwest::Method::PUT, &format!("{ENDPOINTS}/{id}"))
        .json(&json!({"ordering": ordering}))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status().as_u16(), 200);
    let shown = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(shown["ordering"], ordering, "{shown}");
}

async fn wait_arrived(relay: &Relay, receiver: &GateReceiver, n: usize, what: &str) {
    relay.wait_for(WAIT, what, || async { (receiver.arrived().len() >= n).then_some(()) }).await;
}

/// A backlog accepted under `parallel` while the receiver is held (two calls in flight, six
/// waiting, held in the dispatcher's memory): switched to `fifo`, the six not yet sent
/// arrive one at a time in ingest order once the receiver answers, each after the one
/// before it was answered; the two in flight are answered as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_backlog_made_fifo_goes_one_at_a_time_in_ingest_order() {
    let receiver = GateReceiver::start(Duration::from_millis(30)).await;
    let concurrency = CONCURRENCY.to_string();
    // The claim loop polls only every ten minutes: the calls in flight when the ordering
    // changed must hand over to the line themselves (claimed under `parallel`, they know of
    // the switch only by reading their automation again).
    let relay = Relay::start(&delivery_toml(&[
        ("per_automation_concurrency", &concurrency),
        ("request_timeout_ms", CALL_TIMEOUT_MS),
        ("poll_interval_ms", "600000"),
    ]));
    let id = create(&relay, "proc_lined", &receiver.url(), "parallel").await;
    send(&relay, "proc_lined").await;
    wait_arrived(&relay, &receiver, CONCURRENCY, "the calls in flight").await;
    // The rest are held behind the two in flight; none goes meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let in_flight = receiver.arrived();
    assert_eq!(in_flight.len(), CONCURRENCY, "{in_flight:?}");

    set_ordering(&relay, &id, "fifo").await;
    let waiting = relay.deliveries_of(&id).await;
    let lined = waiting.iter().filter(|d| d["next_attempt_at"].is_null()).count();
    assert_eq!(
        lined,
        N as usize - CONCURRENCY - 1,
        "all but the head wait their turn: {waiting:?}"
    );
    receiver.open();
    relay
        .wait_for(WAIT, "every message answered", || async {
            (receiver.calls().len() == N as usize).then_some(())
        })
        .await;

    let calls = receiver.calls();
    let lined: Vec<&Call> = calls.iter().filter(|c| !in_flight.contains(&c.seq)).collect();
    let seqs: Vec<u64> = lined.iter().map(|c| c.seq).collect();
    let mut expected: Vec<u64> = (0..N).filter(|s| !in_flight.contains(s)).collect();
    expected.sort_unstable();
    assert_eq!(seqs, expected, "the backlog in ingest order, each once: {calls:?}");
    for pair in lined.windows(2) {
        assert!(pair[1].start >= pair[0].end, "calls overlap: {:?} and {:?}", pair[0], pair[1]);
    }
}

/// A FIFO backlog (its head held by the receiver, the rest waiting their turn) made parallel
/// goes at once: as many calls at a time as the concurrency allows, while the head is still
/// unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_backlog_made_parallel_goes_at_once() {
    let receiver = GateReceiver::start(Duration::from_millis(10)).await;
    let relay = Relay::start(&delivery_toml(&[
        ("per_automation_concurrency", "4"),
        ("request_timeout_ms", CALL_TIMEOUT_MS),
    ]));
    let id = create(&relay, "proc_unlined", &receiver.url(), "fifo").await;
    send(&relay, "proc_unlined").await;
    wait_arrived(&relay, &receiver, 1, "the head's call").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.arrived(), [0], "the line waits behind its head");

    set_ordering(&relay, &id, "parallel").await;
    wait_arrived(&relay, &receiver, 4, "three more calls beside the head").await;
    assert_eq!(receiver.most_at_once.load(Ordering::SeqCst), 4, "{:?}", receiver.arrived());
    receiver.open();
    relay
        .wait_for(WAIT, "every message answered", || async {
            (receiver.calls().len() == N as usize).then_some(())
        })
        .await;
    let mut seqs: Vec<u64> = receiver.calls().iter().map(|c| c.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "each message once");
}
