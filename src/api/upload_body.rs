//! The body of an upload on its way into the multipart parser: a task pumps it through a
//! one-chunk channel, counting it, and stops it at the app's limit or when the parser holds
//! too much that is not the parts' data. Whatever the handler does not read is then
//! drained for a while (lingering close), so that a client still sending a body the relay
//! refused early reads the refusal instead of a broken connection.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::{stream, StreamExt};
use tokio::sync::mpsc;

/// Most bytes the parser may have been given beyond the parts' data handed out: its
/// preamble, boundaries and part headers, plus the data it has read ahead of the handler
/// (the chunk in the channel and the one it is parsing, each at most hyper's read buffer,
/// ~400 KiB). Without it, a body that never reaches a boundary or the end of a part's
/// headers would be buffered whole.
pub(super) const FRAMING_BUDGET: u64 = 1024 * 1024;
/// How long the rest of a refused body is read and discarded before the connection is
/// closed (as nginx's lingering close; its `lingering_time` is 30 s).
const LINGER_TIME: Duration = Duration::from_secs(5);
/// Most bytes read and discarded after a refusal: more than any app accepts (100 MB).
const LINGER_BYTES: u64 = 128 * 1024 * 1024;

/// Why the pump stopped the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The body is longer than the app's limit.
    TooLarge,
    /// The parser holds more than [`FRAMING_BUDGET`] that is not the parts' data.
    Framing,
}

/// The counts shared by the pump and the handler.
pub(super) struct Meter {
    limit: u64,
    fed: AtomicU64,
    handed_out: AtomicU64,
    /// 0 while the body flows; then 1 + the [`Refusal`] index.
    refusal: AtomicU8,
}

impl Meter {
    /// The app's limit on the whole body, bytes.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    /// Counts `bytes` of a part's data as taken out of the parser by the handler.
    pub(super) fn handed_out(&self, bytes: usize) {
        self.handed_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Why the body was stopped, if it was.
    pub(super) fn refusal(&self) -> Option<Refusal> {
        match self.refusal.load(Ordering::Relaxed) {
            1 => Some(Refusal::TooLarge),
            2 => Some(Refusal::Framing),
            _ => None,
        }
    }

    /// Counts a chunk going into the parser; the refusal when it must not.
    fn admit(&self, chunk: &Bytes) -> Result<(), Refusal> {
        let len = chunk.len() as u64;
        let fed = self.fed.fetch_add(len, Ordering::Relaxed) + len;
        let held_before = (fed - len).saturating_sub(self.handed_out.load(Ordering::Relaxed));
        let refusal = if fed > self.limit {
            Refusal::TooLarge
        } else if held_before > FRAMING_BUDGET {
            Refusal::Framing
        } else {
            return Ok(());
        };
        self.refusal.store(1 + refusal as u8, Ordering::Relaxed);
        Err(refusal)
    }
}

/// `body` as the parser should read it, at most `limit` bytes, and its meter. Must be
/// called within the Tokio runtime (it spawns the pump).
pub(super) fn metered(body: Body, limit: u64) -> (Body, Arc<Meter>) {
    let meter = Arc::new(Meter {
        limit,
        fed: AtomicU64::new(0),
        handed_out: AtomicU64::new(0),
        refusal: AtomicU8::new(0),
    });
    let (tx, rx) = mpsc::channel::<Result<Bytes, axum::BoxError>>(1);
    let pumped = meter.clone();
    tokio::spawn(async move {
        let mut body = body.into_data_stream();
        while let Some(chunk) = body.next().await {
            let item = match chunk {
                Ok(chunk) => match pumped.admit(&chunk) {
                    Ok(()) => Ok(chunk),
                    Err(refusal) => Err(format!("upload body refused: {refusal:?}").into()),
                },
                Err(e) => Err(e.into()),
            };
            let stop = item.is_err();
            // The receiver goes when the handler is done with the form.
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
        linger(body).await;
    });
    let chunks = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (Body::from_stream(chunks), meter)
}

/// Reads and discards the rest of a body for up to [`LINGER_TIME`] and [`LINGER_BYTES`]:
/// closing a connection with unread data makes the kernel reset it, and a client still
/// sending would see that reset rather than the answer. Nothing is kept, so memory does
/// not grow; past either bound the connection is closed anyway.
async fn linger(mut body: BodyDataStream) {
    let mut read = 0u64;
    let drain = async {
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len() as u64;
            if read > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}
