//! A bad app definition stops `hookrelay serve` at start-up with a message naming the app
//! and the node.

use std::process::Command;

use crate::helpers::{branch, edges};

fn serve(config_toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let db = dir.path().join("h.db");
    let toml = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = {db:?}\napi_keys = [\"test-admin-key-0123456789\"]\n{config_toml}"
    );
    std::fs::write(&config, toml).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    cmd.args(["serve", "--config"]).arg(&config);
    cmd.env_remove("HOOKRELAY_API_KEYS")
        .env_remove("HOOKRELAY_LISTEN")
        .env_remove("HOOKRELAY_DATABASE");
    // An accepted config serves until stopped: seeing it listen counts as a start.
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("hookrelay listening on") {
                let _ = tx.send(());
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if rx.try_recv().is_ok() || std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status.is_some_and(|s| !s.success()), stderr)
}

/// An app `bad` with a start, an if-else `gate`, templates `yes` / `no`, and an end; `extra`
/// holds its edges (and any further nodes).
fn app(template_yes: &str, extra: &str) -> String {
    format!(
        r#"
[[apps]]
id = "good"
api_keys = ["app-good-key-0123456789"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "end"
type = "end"
{good_edges}
[[apps]]
id = "bad"
api_keys = ["app-bad-key-0123456789"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "gate"
type = "if-else"
conditions = [{{ variable_selector = ["start", "x"], comparison_operator = "is", value = "y" }}]
[[apps.nodes]]
id = "yes"
type = "template-transform"
template = "{template_yes}"
[[apps.nodes]]
id = "no"
type = "template-transform"
template = "no"
[[apps.nodes]]
id = "end"
type = "end"
{extra}"#,
        good_edges = edges(&[("start", "end")]),
    )
}

fn good_edges() -> String {
    format!(
        "{}{}{}",
        edges(&[("start", "gate"), ("yes", "end"), ("no", "end")]),
        branch("gate", "true", "yes"),
        branch("gate", "false", "no")
    )
}

#[test]
fn bad_app_definitions_stop_the_server_naming_app_and_node() {
    let (failed, stderr) = serve(&app("ok {{ 1 }}", &good_edges()));
    assert!(!failed, "the well-formed variant starts: {stderr}");

    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "if-else edge without source_handle",
            app(
                "ok",
                &format!(
                    "{}{}",
                    edges(&[("start", "gate"), ("gate", "yes"), ("yes", "end"), ("no", "end")]),
                    branch("gate", "false", "no")
                ),
            ),
            &["bad", "gate", "source_handle"],
        ),
        (
            "a cycle",
            app("ok", &format!("{}{}", good_edges(), edges(&[("no", "gate")]))),
            &["bad", "cycle"],
        ),
        (
            "an unknown node in an edge",
            app("ok", &format!("{}{}", good_edges(), edges(&[("yes", "ghost")]))),
            &["bad", "ghost"],
        ),
        (
            "a template that does not compile",
            app("broken {{ name ", &good_edges()),
            &["bad", "yes", "template"],
        ),
        (
            "an end selector naming no node",
            app("ok", &format!("{}[[apps.nodes]]\nid = \"end2\"\ntype = \"end\"\noutputs = [{{ variable = \"v\", value_selector = [\"nobody\", \"x\"] }}]\n", good_edges())),
            &["bad", "end2", "nobody"],
        ),
    ];
    for (what, toml, needles) in cases {
        let (failed, stderr) = serve(&toml);
        assert!(failed, "{what}: hookrelay must exit non-zero; stderr: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{what}: stderr should name `{needle}`: {stderr}");
        }
        assert!(!stderr.contains("apps.good"), "{what}: only the bad app is blamed: {stderr}");
    }
}

#[test]
fn a_cycle_is_reported_with_a_node_on_it() {
    let (failed, stderr) =
        serve(&app("ok", &format!("{}{}", good_edges(), edges(&[("no", "gate")]))));
    assert!(failed);
    assert!(
        ["`gate`", "`no`", "`end`"].iter().any(|n| stderr.contains(n)),
        "the message should name a node on the cycle: {stderr}"
    );
}
