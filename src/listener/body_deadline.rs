//! Request bodies must keep arriving: each piece within `header_read_timeout_ms` of the
//! last, the whole within `body_read_timeout_ms`. A body past either deadline ends in an
//! error, and the request is marked so that the API answers 408 whatever its handler made
//! of that error. While a body is arriving its connection is waiting on its client, as
//! for a head, and may be evicted under the connection cap (see `tracker`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use super::tracker::{Activity, BodyArriving};

/// Set on a request whose body missed a deadline (in its extensions, for the API's 408).
#[derive(Clone, Debug, Default)]
pub struct BodyTimedOut(Arc<AtomicBool>);

impl BodyTimedOut {
    /// Whether the request's body missed its deadline.
    pub fn expired(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a body that missed its deadline ends with.
#[derive(Debug)]
struct BodyTooSlow(&'static str);

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body too slow: {}", self.0)
    }
}

impl std::error::Error for BodyTooSlow {}

/// The deadlines a body is read under.
#[derive(Clone, Copy)]
pub(super) struct BodyDeadlines {
    /// Longest wait for the next piece.
    pub(super) between_reads: Duration,
    /// Longest time for the whole body, from the request's start.
    pub(super) whole: Duration,
}

/// A request body read under [`BodyDeadlines`].
pub(super) struct DeadlineBody {
    inner: Incoming,
    between_reads: Duration,
    next_read: Pin<Box<Sleep>>,
    whole: Pin<Box<Sleep>>,
    /// Held until the body has arrived whole (or failed).
    arriving: Option<BodyArriving>,
    timed_out: BodyTimedOut,
    ended: bool,
}

impl DeadlineBody {
    /// `inner` under `deadlines`, counted as arriving on `activity` until it has; and the
    /// mark set when it misses a deadline.
    pub(super) fn new(
        inner: Incoming,
        deadlines: BodyDeadlines,
        activity: Arc<Activity>,
    ) -> (Self, BodyTimedOut) {
        let now = Instant::now();
        let timed_out = BodyTimedOut::default();
        let ended = inner.is_end_stream();
        let body = Self {
            inner,
            between_reads: deadlines.between_reads,
            next_read: Box::pin(tokio::time::sleep_until(now + deadlines.between_reads)),
            whole: Box::pin(tokio::time::sleep_until(now + deadlines.whole)),
            arriving: (!ended).then(|| activity.body_arriving()),
            timed_out: timed_out.clone(),
            ended,
        };
        (body, timed_out)
    }

    fn end(&mut self) {
        self.ended = true;
        self.arriving = None;
    }

    fn expire(&mut self, which: &'static str) -> Poll<Option<Result<Frame<Bytes>, BoxedError>>> {
        self.timed_out.0.store(true, Ordering::Relaxed);
        self.end();
        tracing::debug!(which, "request body missed its deadline");
        Poll::Ready(Some(Err(Box::new(BodyTooSlow(which)))))
    }
}

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxedError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxedError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + this.between_reads;
                this.next_read.as_mut().reset(next);
                if this.inner.is_end_stream() {
                    this.end();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => {
                this.end();
                return Poll::Ready(Some(Err(Box::new(e))));
            }
            Poll::Ready(None) => {
                this.end();
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if this.whole.as_mut().poll(cx).is_ready() {
            return this.expire("the whole body took longer than limits.body_read_timeout_ms");
        }
        if this.next_read.as_mut().poll(cx).is_ready() {
            return this.expire("no data for limits.header_read_timeout_ms");
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
