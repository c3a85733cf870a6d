//! The HTTP listener: accepts connections, serves HTTP/1.1 and HTTP/2 with the router, and
//! shuts down gracefully. Our own accept loop (rather than `axum::serve`) because it must
//! bound what an unauthenticated client can hold: every connection must send its first
//! request's headers within `header_read_timeout_ms` of its accept (whatever it speaks, or
//! if it sends nothing), is closed after `idle_timeout_ms` without a request in flight, must
//! keep sending a request body (see `body_deadline`), and at most `max_connections` are open. Without these, silent, slow-header (slowloris) or
//! idle HTTP/2 clients hold file descriptors for as long as they like, and once the process
//! runs out of them nobody, `/healthz` included, gets an answer.

mod body_deadline;
mod connection;
mod tracker;

pub use body_deadline::BodyTimedOut;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::config::LimitsConfig;
use connection::ConnectionSettings;
use tracker::{Admission, Connections};

/// How long the listener waits before accepting again after an accept error (for example
/// when the process is out of file descriptors) that no idle connection could relieve, so
/// the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// After an accept error relieved by evicting an idle connection: long enough for that
/// connection's task to close its descriptor, short enough to drain a backlog quickly.
const EVICTED_PAUSE: Duration = Duration::from_millis(1);

/// At most one "accept failed" warning this often: out of descriptors, every accept fails.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Refusals (503 past the connection cap) being written at once; past this, a refused
/// connection is closed without an answer, so refusing cannot itself exhaust descriptors.
const REFUSALS_AT_ONCE: usize = 32;

/// How long a refusal may take: writing the 503, then reading what the client sends until
/// it closes (closing with unread data would reset the connection and lose the 503).
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets
/// connections finish their current requests for up to `drain`, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let settings = Arc::new(ConnectionSettings::new(limits));
    let connections = Connections::new(limits.max_connections);
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    // Connections hold `signal_tx` clones and watch for its receivers to go (= shut down);
    // they hold `close_rx` clones, whose going tells us they are done.
    let (signal_tx, signal_rx) = watch::channel(());
    let (close_tx, close_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut last_accept_warning: Option<Instant> = None;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Most likely out of file descriptors: an idle connection's is worth
                    // less than the next client's.
                    let evicted = connections.evict_longest_idle();
                    if last_accept_warning.is_none_or(|at| at.elapsed() > ACCEPT_WARNING_EVERY) {
                        tracing::warn!(error = %e, evicted, "accept failed");
                        last_accept_warning = Some(Instant::now());
                    }
                    let pause = if evicted { EVICTED_PAUSE } else { ACCEPT_ERROR_PAUSE };
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match connections.admit() {
            Admission::Admitted(slot) => slot,
            Admission::Full => {
                refuse(stream, &refusals);
                continue;
            }
        };
        // No Nagle delay: streamed responses (SSE) send each event as its own small write.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let (app, settings, signal_tx, close_rx) =
            (app.clone(), settings.clone(), signal_tx.clone(), close_rx.clone());
        tokio::spawn(async move {
            connection::serve(stream, app, settings, slot, signal_tx).await;
            drop(close_rx);
        });
    }
    drop(listener);
    drop(signal_rx);
    drop(close_rx);
    if tokio::time::timeout(drain, close_tx.closed()).await.is_err() {
        tracing::warn!("connections still open after the drain period; closing them");
    }
}

/// Answers a connection past the cap with a 503 JSON error (HTTP/1.1; an HTTP/2 client
/// sees a protocol error, which also fails it fast) and closes it.
fn refuse(mut stream: TcpStream, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        tracing::debug!("connection refused without an answer: too many refusals at once");
        return;
    };
    tracing::debug!("connection refused: max_connections reached and none is idle");
    tokio::spawn(async move {
        let answer = async {
            stream.write_all(&refusal_answer()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, answer).await;
        drop(permit);
    });
}

fn refusal_answer() -> Vec<u8> {
    let code = crate::api::ApiErrorCode::Unavailable;
    let body = serde_json::json!({
        "code": code.as_str(),
        "message": "too many connections, each with a request in flight; retry shortly",
        "status": code.status().as_u16(),
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
