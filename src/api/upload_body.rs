//! The body of an upload on its way into the multipart parser: a task pumps it through a
//! one-chunk channel, counting it, and stops it at the app's limit. The parser is fed no
//! more than [`FRAMING_BUDGET`] beyond the parts' data the handler has taken: past that the
//! feed pauses, and if the parser then cannot go on, what it holds is not the parts' data
//! (see [`Meter::paused`]). Whatever the handler does not read is then drained for a while
//! (lingering close), so that a client still sending a body the relay refused early reads
//! the refusal instead of a broken connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::extract::body_error;
use super::ApiError;

/// Most bytes the parser may have been given beyond the parts' data handed out: its
/// preamble, boundaries and part headers, plus the data it has read ahead of the handler.
/// Without it, a body that never reaches a boundary or the end of a part's headers would
/// be buffered whole. The parser reads every chunk that is ready before it parses, so its
/// read-ahead is bounded by pausing the feed, not by refusing: refusing counted a fast
/// client's part data (HTTP/2 streams, whose data arrives ready) as framing.
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

/// The counts shared by the pump, the parser's feed and the handler.
pub(super) struct Meter {
    limit: u64,
    /// Bytes the pump took from the body.
    pumped: AtomicU64,
    /// Bytes fed to the parser.
    parsed: AtomicU64,
    handed_out: AtomicU64,
    /// Whether the feed's last answer was a pause for the budget.
    paused: AtomicBool,
    /// 0 while the body flows; then 1 + the [`Refusal`] index.
    refusal: AtomicU8,
    /// The answer to a body that could not be read (malformed chunked framing…): the
    /// parser only sees that its stream failed.
    unreadable: OnceLock<ApiError>,
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

    /// Whether the feed paused the parser for the budget at its last read. The parser
    /// reads before it parses, so if it then answers that it must wait, it cannot go on
    /// without more than [`FRAMING_BUDGET`] beyond the data handed out: the caller refuses
    /// the body ([`Meter::refuse_framing`]), as the feed will not resume on its own.
    pub(super) fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// The answer to the body's read error, if it failed to arrive.
    pub(super) fn unreadable(&self) -> Option<&ApiError> {
        self.unreadable.get()
    }

    /// Records the refusal of a body whose framing is over [`FRAMING_BUDGET`].
    pub(super) fn refuse_framing(&self) {
        self.refusal.store(1 + Refusal::Framing as u8, Ordering::Relaxed);
    }

    /// Counts a chunk the pump took from the body; `TooLarge` past the limit.
    fn admit(&self, chunk: &Bytes) -> Result<(), Refusal> {
        let len = chunk.len() as u64;
        if self.pumped.fetch_add(len, Ordering::Relaxed) + len > self.limit {
            self.refusal.store(1 + Refusal::TooLarge as u8, Ordering::Relaxed);
            return Err(Refusal::TooLarge);
        }
        Ok(())
    }

    /// Bytes fed to the parser and not handed out as the parts' data.
    fn held(&self) -> u64 {
        let parsed = self.parsed.load(Ordering::Relaxed);
        parsed.saturating_sub(self.handed_out.load(Ordering::Relaxed))
    }
}

/// The parser's side of the channel: pauses (without waking) while the parser holds
/// [`FRAMING_BUDGET`] beyond the data handed out; see [`Meter::paused`].
struct Feed {
    chunks: mpsc::Receiver<Result<Bytes, axum::BoxError>>,
    meter: Arc<Meter>,
}

impl Stream for Feed {
    type Item = Result<Bytes, axum::BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let paused = this.meter.held() >= FRAMING_BUDGET;
        this.meter.paused.store(paused, Ordering::Relaxed);
        if paused {
            return Poll::Pending;
        }
        let item = this.chunks.poll_recv(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &item {
            this.meter.parsed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        item
    }
}

/// `body` as the parser should read it, at most `limit` bytes, and its meter. Must be
/// called within the Tokio runtime (it spawns the pump).
pub(super) fn metered(body: Body, limit: u64) -> (Body, Arc<Meter>) {
    let meter = Arc::new(Meter {
        limit,
        pumped: AtomicU64::new(0),
        parsed: AtomicU64::new(0),
        handed_out: AtomicU64::new(0),
        paused: AtomicBool::new(false),
        refusal: AtomicU8::new(0),
        unreadable: OnceLock::new(),
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
                Err(e) => {
                    let _ = pumped.unreadable.set(body_error(&e, limit as usize));
                    Err(e.into())
                }
            };
            let stop = item.is_err();
            // The receiver goes when the handler is done with the form.
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
        linger(body).await;
    });
    let feed = Feed { chunks: rx, meter: meter.clone() };
    (Body::from_stream(feed), meter)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A parser reads every chunk that is ready before it hands any data out, so with a
    /// fast client it may hold more than the budget of the parts' data: the feed must pause
    /// then, not refuse the body as if that were framing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reading_ahead_of_the_handler_pauses_the_feed_and_refuses_nothing() {
        const CHUNK: usize = 128 * 1024;
        const CHUNKS: usize = 24;
        let chunks = (0..CHUNKS).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'p'; CHUNK])));
        let (body, meter) = metered(Body::from_stream(futures_util::stream::iter(chunks)), 1 << 30);
        let mut feed = body.into_data_stream();
        let (mut read, mut paused) = (0, 0);
        while read < CHUNK * CHUNKS {
            match tokio::time::timeout(Duration::from_millis(200), feed.next()).await {
                Ok(Some(chunk)) => read += chunk.expect("no refusal").len(),
                Ok(None) => panic!("the body ended after {read} bytes"),
                // The handler takes what was read, as `next_chunk` counts it.
                Err(_) => {
                    paused += 1;
                    meter.handed_out(read - meter.handed_out.load(Ordering::Relaxed) as usize);
                }
            }
        }
        assert!(paused > 0, "the feed never paused: {read} bytes held");
        assert_eq!(meter.refusal(), None);
    }
}
