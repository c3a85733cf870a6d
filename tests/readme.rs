//! The README works as written: its shell blocks run in order, in one bash session, as a
//! user pasting them would, against a fresh server they start themselves. Only the ports are
//! substituted (so the test can run beside anything): in the blocks' text, and in
//! `HOOKRELAY_LISTEN`, since the blocks rely on the default listen address. `hookrelay` on PATH is this build; curl
//! reads a `.curlrc` that makes an HTTP error answer fail the command (`fail-with-body`), so a
//! block that prints an error fails the test.
//!
//! A block may be left out only with a marker line just above it,
//! `<!-- not run by tests/readme.rs: <why> -->`, and only a few are (a server in the
//! foreground, commands that build for minutes).

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SKIP_MARKER: &str = "<!-- not run by tests/readme.rs:";
/// The ports the README uses, each replaced by a free one.
const README_PORTS: [&str; 3] = ["8080", "9000", "9001"];
/// Every block together must finish within this.
const DEADLINE: Duration = Duration::from_secs(240);

/// A fenced `sh` block of the README and the line its fence opens on.
struct Block {
    line: usize,
    text: String,
    skipped_because: Option<String>,
}

fn sh_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines().enumerate().peekable();
    let mut previous = "";
    while let Some((n, line)) = lines.next() {
        if line.trim_end() == "```sh" {
            let skipped_because = previous
                .strip_prefix(SKIP_MARKER)
                .map(|rest| rest.trim_end().trim_end_matches("-->").trim().to_owned());
            let mut text = String::new();
            for (_, body) in lines.by_ref() {
                if body.trim_end() == "```" {
                    break;
                }
                text.push_str(body);
                text.push('\n');
            }
            blocks.push(Block { line: n + 1, text, skipped_because });
        }
        previous = line.trim();
    }
    blocks
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One bash script: every block in README order, each announced so a failure names it.
fn script(blocks: &[Block], ports: &[(String, String)]) -> String {
    let mut script = String::from("set -euo pipefail\n");
    for block in blocks.iter().filter(|b| b.skipped_because.is_none()) {
        let mut text = block.text.clone();
        for (from, to) in ports {
            text = text.replace(from.as_str(), to);
        }
        script.push_str(&format!("echo '== README block at line {}' >&2\n{text}\n", block.line));
    }
    script.push_str("echo '== README: every block ran' >&2\n");
    script
}

#[test]
fn every_shell_block_of_the_readme_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let blocks = sh_blocks(&readme);
    let skipped: Vec<_> = blocks.iter().filter(|b| b.skipped_because.is_some()).collect();
    for block in &skipped {
        let why = block.skipped_because.as_deref().unwrap_or_default();
        assert!(why.len() > 10, "the block at line {} is skipped without a reason", block.line);
    }
    assert!(skipped.len() <= 2, "only the install and benchmark blocks may be skipped");
    assert!(blocks.len() - skipped.len() >= 5, "the walkthroughs are found");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(".curlrc"), "fail-with-body\nshow-error\n").expect("curlrc");
    let ports: Vec<(String, String)> =
        README_PORTS.iter().map(|p| (p.to_string(), free_port().to_string())).collect();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_hookrelay")).parent().expect("bin dir");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let log = dir.path().join("output.log");
    let output_file = std::fs::File::create(&log).expect("log");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script(&blocks, &ports))
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .env("HOOKRELAY_LISTEN", format!("127.0.0.1:{}", ports[0].1))
        .stdin(Stdio::null())
        .stderr(output_file.try_clone().expect("log"))
        .stdout(output_file)
        .process_group(0);
    for (key, _) in
        std::env::vars().filter(|(k, _)| k.starts_with("HOOKRELAY_") && k != "HOOKRELAY_LISTEN")
    {
        cmd.env_remove(key);
    }
    let mut child = cmd.spawn().expect("bash");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The blocks start servers in the background: stop everything they left running.
    // SAFETY: kill(2) on the process group this test created; no memory is involved.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    let mut output = String::new();
    std::fs::File::open(&log).expect("log").read_to_string(&mut output).expect("read log");
    let failed_at = output.lines().rfind(|l| l.starts_with("== README")).unwrap_or("before any");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{s}; the last block started: {failed_at}\n{output}"),
        None => panic!("still running after {DEADLINE:?}; last block: {failed_at}\n{output}"),
    }
    assert!(output.contains("== README: every block ran"), "{output}");

    // What the walkthroughs say happens, happened (the stand-in receivers print each call, on
    // lines other output may run into).
    let calls = |call: &str| output.matches(call).count();
    assert_eq!(calls("POST /hook webhook-id=msg_"), 2, "the event and its rerun\n{output}");
    assert_eq!(calls("POST /crm webhook-id=msg_"), 1, "the replayed message\n{output}");
    assert!(
        output.contains(r#""payload":null,"payload_state":"expunged""#),
        "the erased message\n{output}"
    );
    let orders = |status: &str| {
        output.lines().filter(|l| l.contains("POST /orders") && l.contains(status)).count()
    };
    assert!(orders("-> 503") >= 3, "the outage's attempts\n{output}");
    assert_eq!(orders("-> 200"), 3, "the recovered deliveries\n{output}");
    assert!(output.contains(r#""values":[["#), "the sheet's row\n{output}");
}

/// The README's first command, `cargo run --release -- serve`, once failed because two
/// binaries exist: `cargo run` picks the package's `default-run` binary, which must be the
/// relay. Read from `cargo metadata` (what cargo itself decides with) rather than by `cargo
/// run`, whose build without the dev-dependencies' features recompiled the crate for a
/// minute; the binary so named is then asked for `serve --help`.
#[test]
fn cargo_run_picks_the_relay_binary() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let package = metadata["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "hookrelay"))
        .expect("the hookrelay package");
    let bins: Vec<&str> = package["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(bins.len() > 1, "several binaries, so cargo run needs default-run: {bins:?}");
    assert_eq!(package["default_run"], "hookrelay", "cargo run's binary, of {bins:?}");

    let help = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["serve", "--help"])
        .output()
        .expect("hookrelay serve --help");
    let stdout = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{}", String::from_utf8_lossy(&help.stderr));
    assert!(stdout.contains("--config"), "serve's help: {stdout}");
}
