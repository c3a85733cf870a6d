//! The SSRF matrix shared by the delivery, rerun and workflow tests: every target the guard
//! must refuse, a receiver that notices if a loopback one gets through, and a "public" host
//! (`public.example`, pinned to 127.0.0.2 and allowed) that redirects to internal ones.
//!
//! Nothing here ever talks to a non-loopback address: 10/8, 172.16/12, 192.168/16,
//! 100.64/10, 169.254/16, fd00::/8, fe80::/10 and the IPv6 transition spellings of
//! loopback and private addresses (IPv4-compatible, SIIT, 6to4, local-use NAT64, Teredo)
//! must be refused before any connect, which is what the tests check. Timeouts are short, so a broken guard fails
//! fast instead of hanging.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use crate::Receiver;

/// Environment of a relay under test: the guard on, whatever the caller's shell says.
pub const GUARD_ON: [(&str, &str); 1] = [("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "false")];

/// One target of the matrix.
#[derive(Debug, Clone)]
pub struct Target {
    /// What it stands for, named in failures.
    pub name: &'static str,
    /// The URL called.
    pub url: String,
    /// Whether it is a public URL answering a redirect to an internal one (the call is made
    /// and answered 302; the redirect is refused) rather than refused before connecting.
    pub redirect: bool,
}

/// The receivers behind the matrix.
pub struct Matrix {
    /// Loopback receiver (127.0.0.1) that every loopback target points at: must get no call.
    pub private: Receiver,
    /// The `public.example` server on 127.0.0.2.
    pub public: SocketAddr,
    public_paths: Arc<Mutex<Vec<String>>>,
}

impl Matrix {
    /// Starts the private receiver and the redirecting public server.
    pub async fn start() -> Self {
        let private = Receiver::ok().await;
        let port = private.addr.port();
        let public_paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.expect("bind 127.0.0.2");
        let public = listener.local_addr().expect("addr");
        let paths = public_paths.clone();
        let app = Router::new().fallback(move |uri: Uri| {
            let paths = paths.clone();
            async move {
                paths.lock().expect("lock").push(uri.path().to_string());
                public_answer(uri.path(), port)
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { private, public, public_paths }
    }

    /// The `[security]` table: guard on, only 127.0.0.2 opened, and the test pins.
    pub fn security_toml(&self) -> String {
        "[security]\nallow_private_targets = false\nallowed_cidrs = [\"127.0.0.2/32\"]\n\
         resolve = { \"public.example\" = \"127.0.0.2\", \"private.example\" = \"10.0.0.1\", \
         \"loop.example\" = \"127.0.0.1\", \"ula.example\" = \"fd00::1\", \
         \"sixtofour.example\" = \"2002:7f00:1::1\" }\n"
            .to_string()
    }

    /// `path` on `public.example`.
    pub fn public_url(&self, path: &str) -> String {
        format!("http://public.example:{}{path}", self.public.port())
    }

    /// Every target that must be refused with `E_BLOCKED_TARGET`.
    pub fn targets(&self) -> Vec<Target> {
        let p = self.private.addr.port();
        let direct = |name, url: String| Target { name, url, redirect: false };
        let redirect =
            |name, path: &str| Target { name, url: self.public_url(path), redirect: true };
        vec![
            direct("127.0.0.1", format!("http://127.0.0.1:{p}/m")),
            direct("127.1", format!("http://127.1:{p}/m")),
            direct("2130706433", format!("http://2130706433:{p}/m")),
            direct("0x7f000001", format!("http://0x7f000001:{p}/m")),
            direct("0.0.0.0", format!("http://0.0.0.0:{p}/m")),
            direct("localhost", format!("http://localhost:{p}/m")),
            direct("[::1]", format!("http://[::1]:{p}/m")),
            direct("[::ffff:127.0.0.1]", format!("http://[::ffff:127.0.0.1]:{p}/m")),
            direct("IPv4-compatible [::127.0.0.1]", format!("http://[::127.0.0.1]:{p}/m")),
            direct("SIIT [::ffff:0:7f00:1]", format!("http://[::ffff:0:7f00:1]:{p}/m")),
            direct("6to4 [2002:7f00:1::1]", format!("http://[2002:7f00:1::1]:{p}/m")),
            direct("6to4 [2002:a00:1::1]", format!("http://[2002:a00:1::1]:{p}/m")),
            direct("local NAT64 [64:ff9b:1::7f00:1]", format!("http://[64:ff9b:1::7f00:1]:{p}/m")),
            direct(
                "Teredo with client 127.0.0.1",
                format!("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{p}/m"),
            ),
            direct("10.0.0.1", format!("http://10.0.0.1:{p}/m")),
            direct("172.16.0.1", format!("http://172.16.0.1:{p}/m")),
            direct("192.168.1.1", format!("http://192.168.1.1:{p}/m")),
            direct("100.64.0.1", format!("http://100.64.0.1:{p}/m")),
            direct("169.254.169.254", "http://169.254.169.254/latest/meta-data/".into()),
            direct("[fd00::1]", format!("http://[fd00::1]:{p}/m")),
            direct("[fe80::1]", format!("http://[fe80::1]:{p}/m")),
            direct("name pinned to 10.0.0.1", format!("http://private.example:{p}/m")),
            direct("name pinned to 127.0.0.1", format!("http://loop.example:{p}/m")),
            direct("name pinned to fd00::1", format!("http://ula.example:{p}/m")),
            direct("name pinned to 2002:7f00:1::1", format!("http://sixtofour.example:{p}/m")),
            redirect("public redirect to 127.0.0.1", "/to-loopback"),
            redirect("public redirect to 10.0.0.1", "/to-private"),
            redirect("public redirect to localhost", "/to-localhost"),
            redirect("public redirect to a name pinned to 10.0.0.1", "/to-pinned"),
            redirect("public redirect to 169.254.169.254", "/to-metadata"),
        ]
    }

    /// How many calls `public.example` got on `path`.
    pub fn public_hits(&self, path: &str) -> usize {
        self.public_paths.lock().expect("lock").iter().filter(|p| *p == path).count()
    }

    /// Asserts nothing internal was reached, and that every redirect target (and only
    /// those) was called `per_redirect` times on the public side.
    pub fn assert_only_public_calls(&self, per_redirect: usize, extra_public: &[&str]) {
        assert_eq!(self.private.count(), 0, "a refused target reached the loopback receiver");
        let mut expected: Vec<String> = self
            .targets()
            .iter()
            .filter(|t| t.redirect)
            .flat_map(|t| {
                let path = t.url.rsplit_once('/').map(|(_, p)| format!("/{p}")).unwrap_or_default();
                std::iter::repeat_n(path, per_redirect)
            })
            .collect();
        expected.extend(extra_public.iter().map(|p| p.to_string()));
        expected.sort();
        let mut got = self.public_paths.lock().expect("lock").clone();
        got.sort();
        assert_eq!(got, expected, "calls public.example got");
    }
}

/// What `public.example` answers: 200 on `/ok`, a 302 to an internal target on the
/// `/to-…` paths, and a 302 to itself (allowed) on `/to-public`.
fn public_answer(path: &str, private_port: u16) -> Response {
    let location = match path {
        "/ok" => return (StatusCode::OK, "{\"ok\":true}").into_response(),
        "/to-loopback" => format!("http://127.0.0.1:{private_port}/x"),
        "/to-private" => "http://10.0.0.1/".into(),
        "/to-localhost" => format!("http://localhost:{private_port}/x"),
        "/to-pinned" => format!("http://private.example:{private_port}/x"),
        "/to-metadata" => "http://169.254.169.254/latest/meta-data/".into(),
        "/to-public" => "/ok".into(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (StatusCode::FOUND, [("location", location)], "").into_response()
}

/// Checks one outcome against the matrix: the code, the status (0 when refused before
/// connecting, 302 for a refused redirect) and, for redirects, a message that says the
/// redirect was refused. Returns what is wrong, naming the target.
pub fn check_refused(
    target: &Target,
    code: &Value,
    status: &Value,
    message: &str,
) -> Option<String> {
    let want_status = if target.redirect { 302 } else { 0 };
    let mut wrong = Vec::new();
    if code != "E_BLOCKED_TARGET" {
        wrong.push(format!("error code {code}"));
    }
    if status != want_status {
        wrong.push(format!("status {status}, expected {want_status}"));
    }
    if target.redirect && !(message.contains("redirect") && message.contains("not followed")) {
        wrong.push("message does not say the redirect was refused".into());
    }
    (!wrong.is_empty()).then(|| {
        format!("{} ({}): {}; message: {message}", target.name, target.url, wrong.join(", "))
    })
}

/// Panics listing every failure, when there is any.
pub fn assert_no_failures(surface: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{surface}: {} target(s) not refused as E_BLOCKED_TARGET:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
