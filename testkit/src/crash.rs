//! What the crash tests (tests/crash_loop.rs, tests/delivery/fifo_crash.rs) share: a seed
//! taken from the environment to replay a failure, senders posting messages against the
//! relay's current address until stopped, and the loop killing the relay with `kill -9` at
//! seeded random instants and restarting it on the same database.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::{client, Relay, KEY};

/// The seed of this run: the environment variable `var` when set (a replay), random
/// otherwise; printed, with how to replay it, under `what`.
pub fn seed(var: &str, what: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .map(|s| s.parse().unwrap_or_else(|_| panic!("{var} is a u64")))
        .unwrap_or_else(rand::random);
    eprintln!("{what} seed: {seed} (replay with {var}={seed})");
    seed
}

/// What the senders share with the test.
#[derive(Default)]
pub struct Load {
    /// The relay's current base URL (changes at each restart).
    base: RwLock<String>,
    /// Message ids answered 202, in the order their answers came.
    acked: Mutex<Vec<String>>,
    /// POSTs that failed to connect or were cut (retried).
    pub conn_errors: AtomicUsize,
    /// Answers other than 202 (retried).
    pub other_status: AtomicUsize,
    stop: AtomicBool,
}

impl Load {
    /// Senders will post to `base` until told otherwise.
    pub fn new(base: &str) -> Arc<Self> {
        let load = Self::default();
        *load.base.write().unwrap() = base.to_string();
        Arc::new(load)
    }

    /// The message ids acknowledged so far.
    pub fn acked(&self) -> Vec<String> {
        self.acked.lock().unwrap().clone()
    }

    /// How many messages were acknowledged so far.
    pub fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// How the senders post: to which processor, with how much padding in each payload (to make
/// messages of a realistic size), and how long each waits after a message is acknowledged.
#[derive(Clone)]
pub struct Senders {
    pub processor: &'static str,
    pub count: usize,
    pub pad: usize,
    pub pause: Duration,
}

impl Senders {
    /// Starts the senders; [`stop`] ends them.
    pub fn start(&self, load: &Arc<Load>) -> Vec<JoinHandle<()>> {
        (0..self.count).map(|i| tokio::spawn(self.clone().run(i, load.clone()))).collect()
    }

    /// One sender: posts messages `{"sender", "seq", "pad"}` until stopped, each retried
    /// against the current base URL until it is answered 202.
    async fn run(self, index: usize, load: Arc<Load>) {
        let client = client();
        let pad = "x".repeat(self.pad);
        let mut seq = 0usize;
        while !load.stopped() {
            let body = json!({
                "processor_id": self.processor,
                "payload": {"sender": index, "seq": seq, "pad": pad},
            });
            seq += 1;
            while !load.stopped() {
                let base = load.base.read().unwrap().clone();
                let sent = client
                    .post(format!("{base}/v1/messages"))
                    .header("Api-Key", KEY)
                    .timeout(Duration::from_secs(5))
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().as_u16() == 202 => {
                        let id = resp
                            .json::<Value>()
                            .await
                            .ok()
                            .and_then(|v| v["id"].as_str().map(str::to_string));
                        match id {
                            Some(id) => {
                                load.acked.lock().unwrap().push(id);
                                break;
                            }
                            // Cut while reading the answer: not acknowledged, send again.
                            None => load.conn_errors.fetch_add(1, Ordering::SeqCst),
                        };
                    }
                    Ok(_) => {
                        load.other_status.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {
                        load.conn_errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(self.pause).await;
        }
    }
}

/// Stops the senders and waits for them; returns the message ids acknowledged.
pub async fn stop(load: &Load, senders: Vec<JoinHandle<()>>) -> Vec<String> {
    load.stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender task");
    }
    load.acked()
}

/// One kill of [`kill_loop`]: how long the relay had been up and stayed down (ms), and the
/// messages acknowledged and calls received before it.
#[derive(Debug, Clone, Copy)]
pub struct Kill {
    pub up_ms: u64,
    pub down_ms: u64,
    pub acked: usize,
    pub calls: usize,
}

/// `kills` times: lets the relay run for a time drawn from `up_ms`, kills it with `kill -9`,
/// waits a time drawn from `down_ms`, restarts it on the same database and points the
/// senders at its new address. `calls` counts the calls the receivers got so far.
pub async fn kill_loop(
    relay: &mut Relay,
    load: &Load,
    rng: &mut StdRng,
    kills: usize,
    (up_ms, down_ms): (Range<u64>, Range<u64>),
    calls: impl Fn() -> usize,
) -> Vec<Kill> {
    let mut log = Vec::new();
    for _ in 0..kills {
        let up = rng.random_range(up_ms.clone());
        let down = rng.random_range(down_ms.clone());
        tokio::time::sleep(Duration::from_millis(up)).await;
        let kill = Kill { up_ms: up, down_ms: down, acked: load.acked_count(), calls: calls() };
        tokio::task::block_in_place(|| relay.kill9());
        log.push(kill);
        tokio::time::sleep(Duration::from_millis(down)).await;
        tokio::task::block_in_place(|| relay.restart());
        *load.base.write().unwrap() = relay.base.clone();
    }
    log
}
