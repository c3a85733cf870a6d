//! The HTTP side of a call: one shared reqwest client (keep-alive pool, timeouts, no
//! redirects, no proxy, the SSRF guard as its resolver), bounded response capture, and a
//! stable error code for every way a call can fail.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::{Arc, Once, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{redirect, Client, Url};

use super::codes::ErrorCode;
use super::guard::{redirect_target, BlockedTarget, DnsFailure, GuardedResolver, TargetPolicy};
use crate::config::{DeliveryConfig, SecurityConfig};
use crate::delivery::retry::parse_retry_after;
use crate::redact::HeaderRedaction;
use crate::time::UnixMs;

/// What one call did.
#[derive(Debug, Clone)]
pub struct CallResult {
    /// When the request started.
    pub request_at: UnixMs,
    /// When the response ended (or the call failed).
    pub response_at: UnixMs,
    /// Wall time of the call.
    pub duration_ms: f64,
    /// HTTP status; 0 when no response arrived.
    pub status: u16,
    /// Response headers as a JSON object (repeated headers joined with ", ").
    pub response_headers: String,
    /// Response body up to the cap (none when no response).
    pub body: Option<Vec<u8>>,
    /// Whether the body was cut at the cap.
    pub truncated: bool,
    /// Error code and detail; none for a 2xx.
    pub error: Option<(ErrorCode, String)>,
    /// `Retry-After` of a 429 or 503, when given.
    pub retry_after: Option<Duration>,
}

impl CallResult {
    /// A call that failed before any byte was sent.
    pub fn not_sent(code: ErrorCode, detail: String) -> Self {
        let now = UnixMs::now();
        Self {
            request_at: now,
            response_at: now,
            duration_ms: 0.0,
            status: 0,
            response_headers: "{}".into(),
            body: None,
            truncated: false,
            error: Some((code, detail)),
            retry_after: None,
        }
    }
}

/// Sends calls. Cheap to share; build one per process.
pub struct Sender {
    client: Client,
    policy: Arc<TargetPolicy>,
    /// `security.redact_headers` and the built-in rule, for the logs of calls.
    redaction: HeaderRedaction,
    body_cap: usize,
    own_address: OnceLock<SocketAddr>,
}

/// Path prefix of the built-in sheets sink.
const OWN_SINK_PATH: &str = "/v1/integrations/google_sheets/";

static CRYPTO: Once = Once::new();

impl Sender {
    /// Builds the shared client from the delivery and security settings.
    pub fn new(
        delivery: &DeliveryConfig,
        security: &SecurityConfig,
    ) -> Result<Self, reqwest::Error> {
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let policy = Arc::new(TargetPolicy::from_config(security));
        let client = Client::builder()
            .user_agent(delivery.user_agent.clone())
            .connect_timeout(delivery.connect_timeout())
            .timeout(delivery.request_timeout())
            .redirect(redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .build()?;
        Ok(Self {
            client,
            policy,
            redaction: security.redact_headers.clone(),
            body_cap: delivery.response_body_cap_bytes,
            own_address: OnceLock::new(),
        })
    }

    /// POSTs `body` to `url` with `headers` (a webhook call), and captures the answer.
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: Bytes) -> CallResult {
        self.request(reqwest::Method::POST, url, headers, Some(body), None, self.body_cap).await
    }

    /// Any call through the guarded client: `timeout` overrides the configured one, and the
    /// response body is kept up to `body_cap` bytes.
    pub async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<Bytes>,
        timeout: Option<Duration>,
        body_cap: usize,
    ) -> CallResult {
        let url = match Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                return CallResult::not_sent(
                    ErrorCode::InvalidRequest,
                    format!("unsupported scheme {}", u.scheme()),
                )
            }
            Err(e) => {
                return CallResult::not_sent(ErrorCode::InvalidRequest, format!("invalid URL: {e}"))
            }
        };
        if let Some(blocked) = self.literal_ip_blocked(&url) {
            return CallResult::not_sent(ErrorCode::BlockedTarget, blocked.to_string());
        }
        let header_map = match to_header_map(headers) {
            Ok(h) => h,
            Err(detail) => return CallResult::not_sent(ErrorCode::InvalidRequest, detail),
        };
        let request_at = UnixMs::now();
        let started = Instant::now();
        let mut builder = self.client.request(method, url).headers(header_map);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        let mut redirect = None;
        let mut result = match builder.send().await {
            Ok(response) => {
                redirect = redirect_target(&response);
                capture(response, request_at, body_cap).await
            }
            Err(e) => {
                let (code, detail) = classify(&e);
                CallResult::not_sent(code, detail)
            }
        };
        result.request_at = request_at;
        result.response_at = UnixMs::now();
        result.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Some(target) = redirect {
            self.refuse_blocked_redirect(&target, &mut result).await;
        }
        result
    }

    /// Which header values the logs of calls show as `[REDACTED]`. Calls themselves send
    /// every value, and [`CallResult`] holds the answer as received.
    pub fn redaction(&self) -> &HeaderRedaction {
        &self.redaction
    }

    /// The guarded client itself (resolver filter, no redirects, no proxy), for callers that
    /// stream; pair it with [`Sender::check_target`] for literal IP hosts.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Refuses a URL whose literal IP host the policy does not allow (`E_BLOCKED_TARGET: …`).
    pub fn check_target(&self, url: &str) -> Result<(), String> {
        let parsed = Url::parse(url)
            .map_err(|e| format!("{}: invalid URL: {e}", ErrorCode::InvalidRequest))?;
        match self.literal_ip_blocked(&parsed) {
            Some(blocked) => Err(format!("{}: {blocked}", ErrorCode::BlockedTarget)),
            None => Ok(()),
        }
    }

    /// Literal IP hosts (including forms like `127.1` or `2130706433`, which the URL parser
    /// normalises) never reach the resolver, so they are checked here.
    fn literal_ip_blocked(&self, url: &Url) -> Option<BlockedTarget> {
        let ip = literal_ip(url)?;
        if self.is_own_sink(url) {
            return None;
        }
        let reason = self.policy.refusal(ip)?;
        Some(BlockedTarget { address: ip.to_string(), reason })
    }

    /// Redirects are never followed; one to a target the guard would refuse (literal IP, or
    /// a name whose pin or DNS answer is refused) is recorded as `E_BLOCKED_TARGET`, so a
    /// public receiver pointing at an internal address shows as what it is.
    async fn refuse_blocked_redirect(&self, target: &Url, result: &mut CallResult) {
        let blocked = match self.literal_ip_blocked(target) {
            Some(blocked) => Some(blocked),
            None => self.policy.refuses_host(target).await,
        };
        if let Some(blocked) = blocked {
            let detail = format!(
                "receiver answered HTTP {} redirecting to {target}; the redirect was refused \
                 and not followed: {blocked}",
                result.status
            );
            result.error = Some((ErrorCode::BlockedTarget, detail));
        }
    }

    /// Records the relay's own listening address: calls to its built-in sheets sink there
    /// (`http://<that ip:port>/v1/integrations/google_sheets/…`) pass the SSRF guard, so an
    /// automation can feed the sink without opening loopback to every target.
    pub fn allow_own_sink(&self, listening: SocketAddr) {
        let _ = self.own_address.set(listening);
    }

    /// The relay's own listening address, once it listens.
    pub fn own_address(&self) -> Option<SocketAddr> {
        self.own_address.get().copied()
    }

    /// Whether `url` is the built-in sheets sink at the relay's own listening address: plain
    /// `http`, a literal IP (the listening one, or loopback when listening on all addresses),
    /// its port, a sink path. The one rule for "this relay's own sink": the SSRF guard lets
    /// such calls through, and a spreadsheet trusts only an automation sending there.
    pub fn is_own_sink(&self, url: &Url) -> bool {
        let (Some(own), Some(ip)) = (self.own_address.get(), literal_ip(url)) else {
            return false;
        };
        let same_host = ip == own.ip() || (own.ip().is_unspecified() && ip.is_loopback());
        same_host
            && url.port_or_known_default() == Some(own.port())
            && url.scheme() == "http"
            && url.path().starts_with(OWN_SINK_PATH)
    }

    /// The `spreadsheet_id` of `url` when it is this relay's own sink ([`Sender::is_own_sink`]),
    /// the spreadsheet whose derived key signs the call. The substring test first keeps the
    /// parse off every other call's path.
    pub fn own_sink_spreadsheet(&self, url: &str) -> Option<String> {
        self.own_address.get()?;
        if !url.contains(OWN_SINK_PATH) {
            return None;
        }
        let parsed = Url::parse(url).ok()?;
        if !self.is_own_sink(&parsed) {
            return None;
        }
        let id = parsed.query_pairs().find(|(name, _)| name == "spreadsheet_id")?.1;
        Some(id.into_owned())
    }
}

/// The host of `url` when it is a literal IP (forms like `127.1` already normalised).
fn literal_ip(url: &Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(v4.into()),
        url::Host::Ipv6(v6) => Some(v6.into()),
        url::Host::Domain(_) => None,
    }
}

/// Reads the status, headers and up to `body_cap` bytes of the body.
async fn capture(
    mut response: reqwest::Response,
    request_at: UnixMs,
    body_cap: usize,
) -> CallResult {
    let status = response.status().as_u16();
    let headers = headers_json(response.headers());
    let retry_after = if status == 429 || status == 503 {
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, request_at))
    } else {
        None
    };
    let mut body = Vec::new();
    let mut truncated = false;
    let mut read_error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = body_cap - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break; // dropping the response closes the connection: the rest is never read
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                read_error = Some(classify(&e));
                break;
            }
        }
    }
    let error = match read_error {
        Some((code, detail)) => Some((code, format!("reading the response body: {detail}"))),
        None if (200..300).contains(&status) => None,
        None => Some((ErrorCode::HttpStatus, format!("receiver answered HTTP {status}"))),
    };
    CallResult {
        request_at,
        response_at: UnixMs::now(),
        duration_ms: 0.0,
        status,
        response_headers: headers,
        body: Some(body),
        truncated,
        error,
        retry_after,
    }
}

fn to_header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// Headers as a JSON object of strings, the shape `ExternalRequestLog` requires.
pub fn headers_json(headers: &HeaderMap) -> String {
    let mut object = serde_json::Map::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        object.insert(name.as_str().to_string(), serde_json::Value::String(joined));
    }
    serde_json::Value::Object(object).to_string()
}

/// Maps a reqwest failure to a stable code by walking its cause chain.
fn classify(error: &reqwest::Error) -> (ErrorCode, String) {
    let mut detail = error.to_string();
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    let mut code = None;
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        if code.is_none() {
            if cause.is::<BlockedTarget>() {
                code = Some(ErrorCode::BlockedTarget);
            } else if cause.is::<DnsFailure>() {
                code = Some(ErrorCode::Dns);
            } else if cause.is::<rustls::Error>() {
                code = Some(ErrorCode::Tls);
            } else if cause.downcast_ref::<hyper::Error>().is_some_and(|h| h.is_parse())
                || cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
                    // hyper reports broken body framing (bad chunk sizes) as these kinds.
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
                    )
                })
            {
                code = Some(ErrorCode::InvalidResponse);
            }
        }
        source = cause.source();
    }
    let code =
        code.unwrap_or(if error.is_timeout() { ErrorCode::Timeout } else { ErrorCode::Connection });
    (code, detail)
}
