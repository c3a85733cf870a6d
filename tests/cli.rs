//! The `hookrelay serve` command line: invalid configuration and the generated first key.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn serve(config_toml: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let config = dir.join("config.toml");
    std::fs::write(&config, config_toml).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    cmd.args(["serve", "--config"]).arg(&config);
    cmd.env_remove("HOOKRELAY_API_KEYS")
        .env_remove("HOOKRELAY_LISTEN")
        .env_remove("HOOKRELAY_DATABASE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hookrelay")
}

#[test]
fn invalid_config_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("[delivery]\nmax_atempts = 3\n", &[], "delivery.max_atempts"),
        ("[delivery]\nmax_attempts = 0\n", &[], "delivery.max_attempts"),
        ("listen = \"nowhere\"\n", &[], "listen"),
        ("listen = 5\n", &[], "listen"),
        ("log_format = \"jsn\"\n", &[], "log_format"),
        ("log_format = \"json\n", &[], "log_format"),
        ("[delivery\nmax_attempts = 3\n", &[], "delivery"),
        ("[delivery]\nmax_attempts = [3]\n", &[], "delivery.max_attempts"),
        ("[delivery]\nuser_agent = \"bad\\nagent\"\n", &[], "delivery.user_agent"),
        ("[store]\nmmap_size_mb = 5000\n", &[], "store.mmap_size_mb"),
        ("[store]\npostgres_pool_size = 0\n", &[], "store.postgres_pool_size"),
        ("[security]\nallowed_cidrs = [\"10.0.0.0/99\"]\n", &[], "security.allowed_cidrs[0]"),
        ("", &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "maybe")], "HOOKRELAY_ALLOW_PRIVATE_TARGETS"),
        ("", &[("HOOKRELAY_API_KEYS", "short")], "api_keys"),
        ("database = \"\"\n", &[], "database"),
        ("", &[("HOOKRELAY_DATABASE", "")], "database"),
        ("database = \":memory:\"\n", &[], "database"),
        ("database = \"file::memory:\"\n", &[], "database"),
        ("database = \"file:x?mode=memory\"\n", &[], "database"),
        ("database = \" \"\n", &[], "database"),
        ("database = \"x.db \"\n", &[], "database"),
        ("[operational]\ndisable_after_hours = -1\n", &[], "operational.disable_after_hours"),
        ("[operational]\nwebhook_url = \"ftp://x.example/\"\n", &[], "operational.webhook_url"),
        ("[operational]\nfailing_after_attempts = 0\n", &[], "operational.failing_after_attempts"),
        ("[[apps]]\nid = \"a\"\nname = 7\n", &[], "apps[0].name"),
        (
            "[[apps]]\nid = \"a\"\n[[apps.nodes]]\nid = \"s\"\ntype = \"start\"\nfoo = 1\n",
            &[],
            "apps[0].nodes[0].foo",
        ),
    ];
    for (toml, env, key) in cases {
        let out = serve(toml, dir.path(), env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml:?} {env:?}: exit 2, {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("config error at {key}: ")),
            "{toml:?}: the first line should name {key}: {stderr}"
        );
    }
}

/// A TOML error keeps the parser's caret diagram, each of its lines on a line of its own
/// after the one naming the key, with the file it is in.
#[test]
fn a_toml_error_shows_where_it_is_on_lines_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = serve("database = \"x.db\"\nlisten = 5\n", dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].starts_with("config error at listen: "), "{stderr}");
    assert!(!lines[0].contains('^') && !lines[0].contains(" | "), "{stderr}");
    assert!(lines.iter().any(|l| l.trim_start().starts_with("in ") && l.ends_with("config.toml")));
    assert!(lines.iter().any(|l| l.trim() == "2 | listen = 5"), "{stderr}");
    assert!(lines.iter().any(|l| l.trim_end().ends_with("|          ^")), "{stderr}");
}

#[test]
fn without_keys_one_is_generated_printed_once_and_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let db = dir.path().join("h.db");
    std::fs::write(&config, format!("listen = \"127.0.0.1:0\"\ndatabase = {db:?}\n"))
        .expect("write");
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("HOOKRELAY_API_KEYS")
            .env_remove("HOOKRELAY_LISTEN")
            .env_remove("HOOKRELAY_DATABASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut key = None;
        let base = loop {
            let line = lines.next().expect("output").expect("line");
            if let Some(k) = line.trim().strip_prefix("hr_admin_") {
                key = Some(format!("hr_admin_{k}"));
            }
            if let Some(url) = line.strip_prefix("hookrelay listening on ") {
                break url.to_string();
            }
        };
        (child, base, key)
    };
    let (mut first, base, key) = start();
    let key = key.expect("a generated key is printed at first start");
    assert_eq!(raw_http::get_status(&base, &key), 200, "the generated key authenticates");
    assert_eq!(raw_http::get_status(&base, "hr_admin_wrong-key-0000000"), 401);
    let _ = first.kill();
    let _ = first.wait();
    let stored = std::fs::read(&db).expect("db");
    assert!(
        !stored.windows(key.len()).any(|w| w == key.as_bytes()),
        "the key itself is never stored"
    );

    let (mut second, base, again) = start();
    assert!(again.is_none(), "the key is printed only once");
    assert_eq!(raw_http::get_status(&base, &key), 200, "still valid after restart");
    let _ = second.kill();
    let _ = second.wait();

    // Every admin key revoked: the next start generates another, named for its start.
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute("UPDATE api_keys SET revoked_at = 1", []).expect("revoke");
    let (mut third, base, another) = start();
    let another = another.expect("a new key when no admin key is valid");
    assert_eq!(raw_http::get_status(&base, &another), 200);
    assert_eq!(raw_http::get_status(&base, &key), 401, "the revoked one");
    let _ = third.kill();
    let _ = third.wait();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM api_keys ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("names");
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(names[0], names[1], "the keys' names tell them apart");
    assert!(names.iter().all(|n| n.starts_with("generated at start, ")), "{names:?}");
}

/// `serve --help` lists every environment variable the configuration reads (found in
/// src/config.rs, so a new one must join the help) and RUST_LOG, with the defaults.
#[test]
fn serve_help_lists_the_environment_and_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["serve", "--help"])
        .output()
        .expect("run hookrelay");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs"))
        .expect("src/config.rs");
    let read: Vec<&str> = source
        .split("get(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|name| name.starts_with("HOOKRELAY_"))
        .collect();
    assert!(read.len() >= 5, "variables read by src/config.rs: {read:?}");
    for name in read.iter().chain(&["RUST_LOG"]) {
        let line = help.lines().find(|l| l.trim_start().starts_with(name));
        assert!(line.is_some(), "serve --help lacks {name}: {help}");
    }
    let defaults = hookrelay::config::Config::default();
    for default in [
        format!("[default: {}]", defaults.listen),
        format!("[default: {}]", defaults.database),
        "[default: info]".to_string(),
        "[default: text]".to_string(),
        "[default: false]".to_string(),
    ] {
        assert!(help.contains(&default), "serve --help lacks {default}: {help}");
    }
}

/// Runs `serve` with `args` and `env` until it listens, stops it with SIGTERM, and returns
/// (stdout, stderr) as written, both pipes (so stderr is not a terminal).
fn start_and_stop(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    cmd.arg("serve").args(args);
    for name in ["HOOKRELAY_API_KEYS", "HOOKRELAY_LISTEN", "HOOKRELAY_DATABASE", "RUST_LOG"] {
        cmd.env_remove(name);
    }
    cmd.env_remove("HOOKRELAY_ALLOW_PRIVATE_TARGETS").env_remove("HOOKRELAY_LOG_FORMAT");
    let mut child = cmd
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        stdout.push_str(&line);
        stdout.push('\n');
        if line.starts_with("hookrelay listening on ") {
            break;
        }
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let out = child.wait_with_output().expect("wait");
    stdout.push_str(&String::from_utf8_lossy(&out.stdout));
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Lines of `text` containing `needle`.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

/// Start-up says once each where it listens, which configuration file and database it uses,
/// and whether the SSRF guard is on, warning when it is off; plain text when stderr is not a
/// terminal.
#[test]
fn start_up_says_each_setting_once_without_colours_off_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("mine.toml");
    let db = dir.path().join("start.db");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = {db:?}\napi_keys = [\"k-0123456789abcdef\"]\n"
        ),
    )
    .expect("write");
    let config_arg = config.to_str().expect("utf-8 path");
    let (stdout, stderr) = start_and_stop(&["--config", config_arg], &[]);
    let listening = stdout.lines().find_map(|l| l.strip_prefix("hookrelay listening on http://"));
    let addr = listening.expect("the listen line on stdout");
    let both = format!("{stdout}{stderr}");
    assert_eq!(lines_with(&both, addr).len(), 1, "where it listens, once: {both}");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes off a terminal: {stderr:?}");
    let with_config = lines_with(&stderr, config_arg);
    assert!(with_config.len() == 1 && with_config[0].contains("INFO"), "{stderr}");
    let with_db = lines_with(&stderr, db.to_str().expect("utf-8 path"));
    assert!(with_db.len() == 1 && with_db[0].contains("INFO"), "{stderr}");
    let guard = lines_with(&stderr, "SSRF guard");
    assert!(guard.len() == 1 && guard[0].contains("INFO") && guard[0].contains("on"), "{stderr}");
    assert!(lines_with(&stderr, "WARN").is_empty(), "nothing to warn about: {stderr}");

    let (_, stderr) =
        start_and_stop(&["--config", config_arg], &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")]);
    let guard = lines_with(&stderr, "SSRF guard");
    assert!(guard.len() == 1 && guard[0].contains("WARN") && guard[0].contains("off"), "{stderr}");
}

/// Without --config the built-in configuration runs, and its demo apps (public keys) are
/// named in a warning.
#[test]
fn start_up_warns_about_the_built_in_demo_apps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("builtin.db");
    let env = [
        ("HOOKRELAY_LISTEN", "127.0.0.1:0"),
        ("HOOKRELAY_DATABASE", db.to_str().expect("utf-8 path")),
        ("HOOKRELAY_API_KEYS", "k-0123456789abcdef"),
    ];
    let (_, stderr) = start_and_stop(&[], &env);
    let config = lines_with(&stderr, "built-in configuration");
    assert!(config.len() == 1 && config[0].contains("INFO"), "{stderr}");
    let warning = lines_with(&stderr, "WARN");
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(warning[0].contains("demo") && warning[0].contains("summarize"), "{stderr}");
    assert!(warning[0].contains("public") || warning[0].contains("published"), "{stderr}");
}

/// A tiny HTTP GET of the automations list with `Api-Key`, over a plain TCP socket (no async
/// runtime needed in these synchronous tests); returns the status code.
mod raw_http {
    use std::io::{Read, Write};

    pub fn get_status(base: &str, key: &str) -> u16 {
        let addr = base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        let request = format!(
            "GET /v1/processors/automations/endpoints HTTP/1.1\r\nHost: {addr}\r\nApi-Key: {key}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line")
    }
}
