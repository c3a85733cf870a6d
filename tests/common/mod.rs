//! Test support: the real `hookrelay` binary on 127.0.0.1 with a real SQLite file, and
//! programmable receivers that record every call they get.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

pub mod slow;
pub mod ssrf;

/// The admin key every test server is started with.
pub const KEY: &str = "test-admin-key-0123456789";

/// A retry schedule compressed for tests: 200 ms, 400 ms, 800 ms … with ±10 % jitter.
pub const FAST_RETRIES: &str = r#"
[delivery]
initial_backoff_ms = 200
backoff_multiplier = 2.0
max_backoff_ms = 2000
backoff_jitter = 0.1
max_attempts = 4
poll_interval_ms = 50
request_timeout_ms = 2000
connect_timeout_ms = 1000
max_retry_after_secs = 5
"#;

static CRYPTO: Once = Once::new();

/// An HTTP client for talking to the relay.
pub fn client() -> reqwest::Client {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// A running relay process.
pub struct Relay {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub base: String,
    pub config: PathBuf,
    env: Vec<(String, String)>,
    /// The open-file limit (`ulimit -n`) the binary runs under, when not inherited.
    fd_limit: Option<u32>,
    /// What the relay wrote on stderr, when captured (see [`Relay::start_capturing_log`]).
    log: Option<Arc<Mutex<String>>>,
}

impl Relay {
    /// Starts the binary with `extra_toml` appended to a config that allows private targets.
    pub fn start(extra_toml: &str) -> Self {
        Self::start_with_env(extra_toml, &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")])
    }

    /// Starts the binary with `extra_toml` and extra environment variables.
    pub fn start_with_env(extra_toml: &str, env: &[(&str, &str)]) -> Self {
        Self::launch(None, extra_toml, env, None)
    }

    /// Starts the binary on the database file `db` (allowing private targets).
    pub fn start_with_database(db: &std::path::Path, extra_toml: &str) -> Self {
        Self::launch(Some(db), extra_toml, &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")], None)
    }

    /// Starts the binary with `extra_toml` (allowing private targets) and `env`, keeping what
    /// it writes on stderr for [`Relay::log`] instead of passing it through.
    pub fn start_capturing_log(extra_toml: &str, env: &[(&str, &str)]) -> Self {
        let mut all = vec![("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")];
        all.extend_from_slice(env);
        let mut relay = Self::prepare(None, extra_toml, &all, None);
        relay.log = Some(Arc::default());
        relay.spawn();
        relay
    }

    /// The relay's stderr so far (only when started with [`Relay::start_capturing_log`]).
    pub fn log(&self) -> String {
        self.log.as_ref().expect("stderr is captured").lock().expect("lock").clone()
    }

    /// Starts the binary with `extra_toml` under an open-file limit of `fd_limit`
    /// (`ulimit -n`, as systemd's default soft limit of 1024 would impose).
    pub fn start_with_fd_limit(extra_toml: &str, fd_limit: u32) -> Self {
        let env = [("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")];
        Self::launch(None, extra_toml, &env, Some(fd_limit))
    }

    fn launch(
        db: Option<&std::path::Path>,
        extra_toml: &str,
        env: &[(&str, &str)],
        fd_limit: Option<u32>,
    ) -> Self {
        let mut relay = Self::prepare(db, extra_toml, env, fd_limit);
        relay.spawn();
        relay
    }

    fn prepare(
        db: Option<&std::path::Path>,
        extra_toml: &str,
        env: &[(&str, &str)],
        fd_limit: Option<u32>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        let db = db.map(PathBuf::from).unwrap_or_else(|| dir.path().join("hookrelay.db"));
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndatabase = {:?}\napi_keys = [{:?}]\n{extra_toml}",
            db, KEY
        );
        std::fs::write(&config, toml).expect("write config");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self { child: None, dir, base: String::new(), config, env, fd_limit, log: None }
    }

    fn spawn(&mut self) {
        let binary = env!("CARGO_BIN_EXE_hookrelay");
        let mut cmd = match self.fd_limit {
            None => Command::new(binary),
            Some(limit) => {
                // `exec` keeps the process id, so kill9 and terminate reach the relay itself.
                let mut sh = Command::new("sh");
                sh.arg("-c").arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\"")).arg(binary);
                sh
            }
        };
        cmd.arg("serve").arg("--config").arg(&self.config);
        cmd.env_remove("HOOKRELAY_API_KEYS")
            .env_remove("HOOKRELAY_LISTEN")
            .env_remove("HOOKRELAY_DATABASE");
        cmd.env("RUST_LOG", "warn");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let stderr = if self.log.is_some() { Stdio::piped() } else { Stdio::inherit() };
        let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn hookrelay");
        if let (Some(log), Some(stderr)) = (self.log.clone(), child.stderr.take()) {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = log.lock().expect("lock");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let base = loop {
            let line =
                lines.next().expect("hookrelay exited before listening").expect("read stdout");
            if let Some(url) = line.strip_prefix("hookrelay listening on ") {
                break url.trim().to_string();
            }
            assert!(Instant::now() < deadline, "hookrelay did not start");
        };
        std::thread::spawn(move || for _ in lines {});
        self.base = base;
        self.child = Some(child);
    }

    /// Sends SIGKILL and waits for the process to die.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().expect("wait")
    }

    /// Starts the binary again on the same database (new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Process id of the running relay, `None` after it was stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Peak (`VmHWM`) and current (`VmRSS`) resident memory of the relay process, KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.pid().expect("the relay is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(name)).expect(name);
            line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB value")
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// Absolute URL of `path` on the relay.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An authenticated request builder.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        client().request(method, self.url(path)).header("Api-Key", KEY)
    }

    /// GET `path`, expecting `status`, returning the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.req(reqwest::Method::GET, path).send().await.expect("send");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    /// POST JSON to `path`, returning status and JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.req(reqwest::Method::POST, path).json(body).send().await.expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates an automation for `processor_id` calling `url`; returns its JSON (with `secret`).
    pub async fn create_automation(&self, processor_id: &str, url: &str) -> Value {
        let (status, body) = self
            .post_json(
                "/v1/processors/automations/endpoints",
                &serde_json::json!({"name": "test", "processor_id": processor_id, "webhook_url": url}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Posts a message to `processor_id`; returns the 202 body.
    pub async fn send_message(&self, processor_id: &str, payload: Value) -> Value {
        let (status, body) = self
            .post_json(
                "/v1/messages",
                &serde_json::json!({"processor_id": processor_id, "payload": payload}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body
    }

    /// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout`.
    pub async fn wait_for<T, F, Fut>(&self, timeout: Duration, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of the unlabelled metric `name` on `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let value = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' '));
        value
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing from:\n{text}"))
    }

    /// Every log (following cursors), oldest first, optionally filtered by a query string.
    pub async fn all_logs(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
            let page = self
                .get_json(&format!(
                    "/v1/processors/automations/logs?limit=100&order=asc{query}{cursor}"
                ))
                .await;
            out.extend(page["data"].as_array().expect("data").iter().cloned());
            match page["list_metadata"]["after"].as_str() {
                Some(a) => after = Some(a.to_string()),
                None => return out,
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// One call a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

/// What a receiver answers to its n-th call (0-based).
pub type Behaviour = Arc<dyn Fn(usize) -> Response + Send + Sync>;

/// A receiver on 127.0.0.1 that records calls and answers as its behaviour says.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Answers 200 `{"ok":true}` to everything.
    pub async fn ok() -> Self {
        Self::with(Arc::new(|_| {
            (StatusCode::OK, [("content-type", "application/json")], "{\"ok\":true}")
                .into_response()
        }))
        .await
    }

    /// Answers `fail_status` to the first `n` calls, then 200.
    pub async fn failing_first(n: usize, fail_status: u16) -> Self {
        Self::with(Arc::new(move |i| {
            if i < n {
                (StatusCode::from_u16(fail_status).expect("status"), "{\"error\":\"nope\"}")
                    .into_response()
            } else {
                (StatusCode::OK, "{\"ok\":true}").into_response()
            }
        }))
        .await
    }

    /// A receiver with a custom behaviour.
    pub async fn with(behaviour: Behaviour) -> Self {
        let calls: Arc<Mutex<Vec<Received>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = (calls.clone(), behaviour);
        let app = Router::new().fallback(handle).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, calls }
    }

    /// URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Calls so far.
    pub fn calls(&self) -> Vec<Received> {
        self.calls.lock().expect("lock").clone()
    }

    /// Number of calls so far.
    pub fn count(&self) -> usize {
        self.calls.lock().expect("lock").len()
    }
}

async fn handle(
    State((calls, behaviour)): State<(Arc<Mutex<Vec<Received>>>, Behaviour)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut calls = calls.lock().expect("lock");
        calls.push(Received { headers, body, at: Instant::now() });
        calls.len() - 1
    };
    behaviour(n)
}

/// An independent Standard Webhooks verifier (not hookrelay's signing code): HMAC-SHA256
/// over "{id}.{timestamp}.{body}" with the base64-decoded secret, any `v1,` entry matching.
pub fn verify_signature(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, ts, sigs) = (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"));
    let Ok(ts_num) = ts.parse::<i64>() else { return false };
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 {
        return false;
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("secret is base64");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|s| s == expected)
}

/// Counts of a JSON array's values by a string key.
pub fn count_by(items: &[Value], key: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for item in items {
        *out.entry(item[key].as_str().unwrap_or("").to_string()).or_insert(0) += 1;
    }
    out
}

/// Raises this process's soft open-file limit to `want` (or its hard limit); the limit in force.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            }
        }
    }
    limit.rlim_cur
}
