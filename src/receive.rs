//! `hookrelay receive`: a stand-in webhook receiver for trying the relay out and for
//! walkthroughs. It answers every request with one status, prints one line per call, and
//! with a secret checks each call's Standard Webhooks signature.

use std::io::Write;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::delivery::signing;
use crate::time::UnixMs;

/// Largest body the receiver reads; a larger one is answered 413.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How much of each body is printed.
const PRINTED_BODY_CHARS: usize = 300;

/// How the stand-in receiver answers.
#[derive(Clone, Debug)]
pub struct ReceiveOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The status every call is answered with (unless a signature check fails).
    pub status: StatusCode,
    /// With a `whsec_` secret, calls without a valid signature are answered 401.
    pub secret: Option<String>,
}

/// Serves until the process is stopped. Errors only when the address cannot be bound.
pub async fn run(options: ReceiveOptions) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    println!(
        "hookrelay receive: listening on http://{}, answering {}",
        listener.local_addr()?,
        options.status.as_u16()
    );
    let app = Router::new()
        .fallback(answer)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(options);
    axum::serve(listener, app).await
}

async fn answer(
    State(options): State<ReceiveOptions>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let webhook_id = header("webhook-id");
    let (status, verdict) = match &options.secret {
        None => (options.status, String::new()),
        Some(secret) => match signing::verify(
            secret,
            webhook_id,
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
            UnixMs::now().as_secs(),
        ) {
            Ok(()) => (options.status, " signature=valid".to_owned()),
            Err(why) => (StatusCode::UNAUTHORIZED, format!(" signature=invalid ({why})")),
        },
    };
    let text = String::from_utf8_lossy(&body);
    let printed: String = text.chars().take(PRINTED_BODY_CHARS).collect();
    let ellipsis = if printed.len() < text.len() { "…" } else { "" };
    let line = format!(
        "{method} {uri} webhook-id={webhook_id}{verdict} -> {} body={printed}{ellipsis}\n",
        status.as_u16()
    );
    // A closed stdout (the terminal went away) must not stop the answers.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    (status, [("content-type", "application/json")], format!("{{\"status\":{}}}", status.as_u16()))
        .into_response()
}
