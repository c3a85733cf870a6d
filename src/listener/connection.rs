//! One connection: HTTP/1.1 or HTTP/2 (told apart by its first bytes), served with the
//! router, and closed when idle too long, when evicted, or at shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use super::body_deadline::{BodyDeadlines, DeadlineBody};
use super::tracker::{Activity, InFlight, Slot};
use crate::api::MAX_HEADER_FIELDS;
use crate::config::LimitsConfig;

/// How often an HTTP/2 connection with requests in flight pings its client, and how long
/// it waits for the answer: a peer that vanished mid-stream (a long SSE answer) is noticed
/// and its connection closed instead of waiting on TCP's own timeouts (hours).
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Concurrent streams one HTTP/2 client may open; more wait for the client's own turn.
const H2_MAX_STREAMS: u32 = 100;

/// Header fields hyper's HTTP/1 parser takes in. Above `MAX_HEADER_FIELDS`, so that a
/// request with too many reaches the router's check and gets a JSON 431; hyper answers
/// past this itself, with an empty body.
const PARSER_MAX_HEADERS: usize = 2 * MAX_HEADER_FIELDS;

/// The HTTP/2 header list size accepted (SETTINGS_MAX_HEADER_LIST_SIZE), which counts each
/// field's name and value plus 32 bytes, pseudo-headers (`:path`…) included. Twice our own
/// limits, so a request past them reaches the router's check and gets a JSON 414 or 431;
/// past this, h2 refuses the stream itself (431, empty body).
fn h2_max_header_list_size(limits: &LimitsConfig) -> u32 {
    let bytes = 2 * (limits.max_header_bytes + limits.max_uri_bytes) + 32 * PARSER_MAX_HEADERS;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// How long an idle connection told to close may take to finish its HTTP/2 goodbye (GOAWAY,
/// and a PING its client must answer) before it is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How connections are served; one for the whole listener.
pub(super) struct ConnectionSettings {
    builder: Builder<TokioExecutor>,
    first_request: Duration,
    between_requests: Duration,
    bodies: BodyDeadlines,
}

impl ConnectionSettings {
    /// The settings `limits` asks for.
    pub(super) fn new(limits: &LimitsConfig) -> Self {
        let header_read = Duration::from_millis(limits.header_read_timeout_ms);
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read)
            .max_headers(PARSER_MAX_HEADERS);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_TIMEOUT)
            .max_concurrent_streams(H2_MAX_STREAMS)
            .max_header_list_size(h2_max_header_list_size(limits));
        Self {
            builder,
            first_request: header_read,
            between_requests: Duration::from_millis(limits.idle_timeout_ms),
            bodies: BodyDeadlines {
                between_reads: header_read,
                whole: Duration::from_millis(limits.body_read_timeout_ms),
            },
        }
    }
}

/// Serves one admitted connection until it ends. `shutdown`'s receivers going away means
/// the server shuts down: the connection then finishes its requests in flight and closes.
pub(super) async fn serve(
    stream: TcpStream,
    app: Router,
    settings: Arc<ConnectionSettings>,
    slot: Slot,
    shutdown: watch::Sender<()>,
) {
    let activity = slot.activity.clone();
    let service = TrackedService { app, activity: activity.clone(), bodies: settings.bodies };
    let mut conn =
        pin!(settings.builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
    let mut shutting_down = pin!(shutdown.closed());
    let mut draining = false;
    let mut idle = pin!(activity.idle_expired(settings.first_request, settings.between_requests));
    let mut evicted = pin!(activity.evicted());
    let mut was_evicted = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut shutting_down, if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut idle => break,
            // Dropped at once: its descriptor is needed now, and it has nothing in flight
            // but requests still receiving their bodies, unless a request came in since it was chosen; that one is
            // finished first.
            () = &mut evicted, if !was_evicted => {
                if !activity.has_work_in_flight() {
                    return;
                }
                was_evicted = true;
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    if tokio::time::timeout(IDLE_CLOSE_GRACE, conn).await.is_err() {
        tracing::debug!("idle connection did not close gracefully; dropped");
    }
}

/// The router, recording each request in flight on the connection's activity, its body
/// read under the body deadlines.
struct TrackedService {
    app: Router,
    activity: Arc<Activity>,
    bodies: BodyDeadlines,
}

impl hyper::service::Service<Request<Incoming>> for TrackedService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started();
        let app = self.app.clone();
        let (parts, body) = req.into_parts();
        let (body, timed_out) = DeadlineBody::new(body, self.bodies, self.activity.clone());
        let mut req = Request::from_parts(parts, Body::new(body));
        req.extensions_mut().insert(timed_out);
        Box::pin(async move {
            let response = app.oneshot(req).await?;
            Ok(response.map(|body| TrackedBody { body, _in_flight: in_flight }))
        })
    }
}

/// A response body that keeps its request in flight until it is sent or dropped, so a
/// streaming answer (SSE) counts as activity for as long as it lasts.
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
