//! `hookrelay receive`, the stand-in receiver the README's walkthroughs use: it answers with
//! the status it was given, prints each call, and with a secret refuses unsigned calls.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use hookrelay::delivery::signing;

struct Receiver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    base: String,
}

impl Receiver {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args(["receive", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a first line").expect("utf-8");
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .and_then(|w| w.strip_suffix(','))
            .expect("the address")
            .to_owned();
        Self { child, lines, base }
    }

    fn next_line(&mut self) -> String {
        self.lines.next().expect("a line").expect("utf-8")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn post(url: &str, headers: &[(&str, String)], body: &str) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-d", body, url]);
    for (name, value) in headers {
        cmd.args(["-H", &format!("{name}: {value}")]);
    }
    let out = cmd.output().expect("curl");
    String::from_utf8_lossy(&out.stdout).parse().expect("a status")
}

#[test]
fn answers_the_status_it_was_given_and_prints_each_call() {
    let mut receiver = Receiver::start(&["--status", "503"]);
    let status = post(
        &format!("{}/orders", receiver.base),
        &[("webhook-id", "msg_1".into())],
        r#"{"order":1}"#,
    );
    assert_eq!(status, 503);
    assert_eq!(receiver.next_line(), r#"POST /orders webhook-id=msg_1 -> 503 body={"order":1}"#);
}

#[test]
fn with_a_secret_only_validly_signed_calls_get_the_status() {
    let secret = signing::new_secret();
    let mut receiver = Receiver::start(&["--secret", &secret]);
    let url = format!("{}/hook", receiver.base);
    let body = r#"{"invoice":42}"#;
    let now = hookrelay::time::UnixMs::now().as_secs();
    let signature = signing::sign(&secret, "msg_2", now, body.as_bytes()).expect("sign");
    let signed = [
        ("webhook-id", "msg_2".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", signature.clone()),
    ];
    assert_eq!(post(&url, &signed, body), 200);
    assert!(receiver.next_line().contains("webhook-id=msg_2 signature=valid -> 200"));

    assert_eq!(post(&url, &signed, r#"{"invoice":43}"#), 401, "a changed body");
    assert!(receiver
        .next_line()
        .contains("signature=invalid (no webhook-signature entry matches)"));
    assert_eq!(post(&url, &signed[..1], body), 401, "no signature");
    assert!(receiver.next_line().contains("signature=invalid"));
}

#[test]
fn refuses_a_secret_that_is_not_a_signing_secret() {
    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["receive", "--listen", "127.0.0.1:0", "--secret", "hunter2"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret"));
}
