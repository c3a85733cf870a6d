//! The relay process: the real `hookrelay` binary started on a fresh config and SQLite file
//! (or PostgreSQL database, see `postgres`), killed, terminated and restarted on the same
//! database.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::postgres::FreshDatabase;
use crate::KEY;

/// The `hookrelay` binary Cargo built for the test binary running: it sits next to the
/// `deps/` folder holding the test executables (`CARGO_BIN_EXE_hookrelay` is only known
/// when compiling an integration test, not this crate).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let binary = dir.join(format!("hookrelay{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} missing: run the tests with `cargo test`", binary.display());
    binary
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
    /// Its PostgreSQL database, when the suites run against PostgreSQL (see `postgres`);
    /// dropped after the process is killed.
    _postgres: Option<FreshDatabase>,
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
        // A test naming its database file runs on SQLite whatever the backend selected.
        let postgres = match db {
            None => crate::postgres::selected().map(|server| FreshDatabase::create(&server)),
            Some(_) => None,
        };
        let database = match (&postgres, db) {
            (Some(fresh), _) => fresh.url.clone(),
            (None, Some(db)) => db.display().to_string(),
            (None, None) => dir.path().join("hookrelay.db").display().to_string(),
        };
        let toml = format!(
            "listen = \"127.0.0.1:0\"\ndatabase = {database:?}\napi_keys = [{KEY:?}]\n{extra_toml}"
        );
        std::fs::write(&config, toml).expect("write config");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self {
            child: None,
            dir,
            base: String::new(),
            config,
            env,
            fd_limit,
            log: None,
            _postgres: postgres,
        }
    }

    fn spawn(&mut self) {
        let binary = binary();
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

    /// The URL of its PostgreSQL database, when it runs on one.
    pub fn postgres_url(&self) -> Option<&str> {
        self._postgres.as_ref().map(|fresh| fresh.url.as_str())
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
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}
