//! A run's events (Dify's `workflow_started`, `node_*`, `text_chunk`, `workflow_finished`)
//! and their way to a streaming client.
//!
//! The run never waits for its client: it goes on when the client is slow or gone, as
//! Dify's runs do. So the events sent and not yet written to the client wait in a queue, and
//! that queue is bounded in bytes: a client that falls more than the bound behind (one that
//! stopped reading, or reads slower than the run produces) is cut off. Its stream ends with
//! one `error` event saying so, rather than going on with events silently missing; the run
//! itself goes on, and its result is at `GET /v1/workflows/run/{id}` and in its completion
//! webhook. An event larger than the bound still passes when nothing else is queued, so a
//! client that keeps up gets every event.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::runner::{finished_data, RunOutcome, RunSpec};
use crate::api::ApiErrorCode;

/// One event, serialized, as the client gets it.
#[derive(Debug)]
pub struct Frame {
    /// The event's JSON.
    pub json: String,
    /// The stream ends after it (`workflow_finished`, or the cut-off `error`).
    pub last: bool,
}

/// The run's end of a client's event queue (see the module doc).
#[derive(Debug)]
pub struct EventSender {
    frames: mpsc::UnboundedSender<Frame>,
    /// Bytes of the frames sent and not yet taken by the client's response.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    cut_off: AtomicBool,
}

/// The client's end: the streaming response reads it.
#[derive(Debug)]
pub struct EventReceiver {
    frames: mpsc::UnboundedReceiver<Frame>,
    queued: Arc<AtomicUsize>,
}

/// A queue letting at most `max_queued` bytes of events wait for the client.
pub fn event_stream(max_queued: usize) -> (EventSender, EventReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let sender = EventSender {
        frames: tx,
        queued: queued.clone(),
        max_queued,
        cut_off: AtomicBool::new(false),
    };
    (sender, EventReceiver { frames: rx, queued })
}

impl EventSender {
    /// Queues `event` for the client, or cuts the client off when it would pass the bound
    /// (the cut-off notice itself is small and always queued). Nothing happens for a client
    /// that is gone or was cut off.
    pub fn send(&self, event: &Value) {
        if self.cut_off.load(Ordering::Relaxed) || self.frames.is_closed() {
            return;
        }
        let json = event.to_string();
        let last = event.get("event").and_then(Value::as_str) == Some("workflow_finished");
        // Only the run sends, so the count can only fall between this read and the add.
        let queued = self.queued.load(Ordering::Acquire);
        if queued > 0 && queued.saturating_add(json.len()) > self.max_queued {
            self.cut_off.store(true, Ordering::Relaxed);
            let run_id = event.get("workflow_run_id").and_then(Value::as_str).unwrap_or("{id}");
            let notice = json!({
                "event": "error",
                "task_id": event.get("task_id"),
                "workflow_run_id": event.get("workflow_run_id"),
                "status": ApiErrorCode::ClientTooSlow.status().as_u16(),
                "code": ApiErrorCode::ClientTooSlow.as_str(),
                "message": format!(
                    "this client fell more than {} bytes of events behind the run and is cut off; \
                     the run goes on: its result is at GET /v1/workflows/run/{run_id}",
                    self.max_queued
                ),
            });
            self.queue(Frame { json: notice.to_string(), last: true });
            return;
        }
        self.queue(Frame { json, last });
    }

    fn queue(&self, frame: Frame) {
        self.queued.fetch_add(frame.json.len(), Ordering::AcqRel);
        let _ = self.frames.send(frame);
    }
}

impl EventReceiver {
    /// The next frame; `None` once the run dropped its sender.
    pub async fn recv(&mut self) -> Option<Frame> {
        let frame = self.frames.recv().await?;
        self.queued.fetch_sub(frame.json.len(), Ordering::AcqRel);
        Some(frame)
    }
}

/// Where a run's events go: the client of a streaming run, nowhere otherwise.
#[derive(Clone)]
pub struct Events {
    sink: Option<Arc<EventSender>>,
    task_id: String,
    run_id: String,
}

impl Events {
    /// Events of `spec`, sent to `sink` when given.
    pub fn new(spec: &RunSpec, sink: Option<EventSender>) -> Self {
        Self {
            sink: sink.map(Arc::new),
            task_id: spec.task_id.clone(),
            run_id: spec.run_id.clone(),
        }
    }

    /// Emits `workflow_finished` (after the final state is committed).
    pub fn finished(&self, spec: &RunSpec, outcome: &RunOutcome) {
        self.emit("workflow_finished", finished_data(spec, outcome));
    }

    pub(super) fn emit(&self, event: &str, data: Value) {
        if let Some(sink) = &self.sink {
            sink.send(&json!({"event": event, "task_id": self.task_id, "workflow_run_id": self.run_id, "data": data}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> Value {
        json!({"event": "text_chunk", "task_id": "t", "workflow_run_id": "r", "data": {"text": text}})
    }

    #[tokio::test]
    async fn a_client_falling_behind_the_bound_is_cut_off_with_an_error_event() {
        let (tx, mut rx) = event_stream(100);
        let big = chunk(&"x".repeat(150));
        tx.send(&big);
        tx.send(&chunk("a"));
        tx.send(&chunk("b"));
        let first = rx.recv().await.expect("an event larger than the bound passes alone");
        assert_eq!(first.json, big.to_string());
        let notice = rx.recv().await.expect("the cut-off notice");
        let notice: Value = serde_json::from_str(&notice.json).expect("JSON");
        assert_eq!(
            (notice["event"].as_str(), notice["code"].as_str()),
            (Some("error"), Some(ApiErrorCode::ClientTooSlow.as_str()))
        );
        drop(tx);
        assert!(rx.recv().await.is_none(), "nothing after the notice");
    }

    #[tokio::test]
    async fn a_client_that_keeps_up_gets_every_event() {
        let (tx, mut rx) = event_stream(100);
        for i in 0..50 {
            tx.send(&chunk(&"x".repeat(60)));
            let frame = rx.recv().await.expect("event");
            assert!(!frame.last, "event {i}");
        }
        tx.send(&json!({"event": "workflow_finished", "data": {}}));
        assert!(rx.recv().await.expect("finished").last, "workflow_finished ends the stream");
    }
}
