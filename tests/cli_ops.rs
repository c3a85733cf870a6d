//! The operator commands (`hookrelay logs|recover|automations|keys|tail`) against a real
//! server started by the test: what they print, and their exit codes (0 ok, 1 the server
//! refused, 2 usage, 3 the server cannot be reached).

use std::process::{Output, Stdio};
use std::time::Duration;

use hookrelay_testkit::{self as common, Receiver, Relay, KEY};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(15);

/// `hookrelay <args>` against `relay` with `key` (from HOOKRELAY_URL / HOOKRELAY_API_KEY).
fn command(relay: &Relay, key: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    cmd.args(args)
        .env("HOOKRELAY_URL", &relay.base)
        .env("HOOKRELAY_API_KEY", key)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `hookrelay <args>` to its end; returns (exit code, stdout, stderr).
async fn hr(relay: &Relay, key: &str, args: &[&str]) -> (i32, String, String) {
    let Output { status, stdout, stderr } =
        command(relay, key, args).output().await.expect("run hookrelay");
    let (out, err) = (String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    (status.code().unwrap_or(-1), out.into_owned(), err.into_owned())
}

/// Like [`hr`], expecting exit 0; returns stdout.
async fn ok(relay: &Relay, args: &[&str]) -> String {
    let (code, out, err) = hr(relay, KEY, args).await;
    assert_eq!(code, 0, "hookrelay {args:?}: {err}{out}");
    out
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_and_keys_commands_manage_them_and_a_viewer_is_refused_a_rerun() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start("");
    let url = receiver.url("/hook");
    let args = ["automations", "create", "--name", "orders", "--processor-id", "proc_cli"];
    let created = json_of(&ok(&relay, &[&args[..], &["--webhook-url", &url]].concat()).await);
    let id = created["id"].as_str().expect("id").to_string();
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{created}");

    let table = ok(&relay, &["automations", "list"]).await;
    assert!(
        table.contains(&id) && table.contains("orders") && table.contains("enabled"),
        "{table}"
    );
    let shown = json_of(&ok(&relay, &["automations", "show", &id, "--json"]).await);
    assert_eq!(shown["webhook_url"], url.as_str(), "{shown}");

    let out = ok(&relay, &["automations", "disable", &id]).await;
    assert_eq!(out.trim(), format!("automation {id} disabled"));
    let api = relay.get_json(&format!("{}/{id}", common::ENDPOINTS)).await;
    assert_eq!(api["enabled"], false, "{api}");
    let out = ok(&relay, &["automations", "enable", &id]).await;
    assert_eq!(out.trim(), format!("automation {id} enabled"));

    let rotated = json_of(&ok(&relay, &["automations", "rotate-secret", &id, "--json"]).await);
    assert!(rotated["secret"].is_string(), "{rotated}");
    assert_ne!(rotated["secret"], created["secret"], "{rotated}");

    let tested = json_of(&ok(&relay, &["automations", "test", &id, "--json"]).await);
    assert_eq!(tested["external_request_log"]["status_code"], 200, "{tested}");
    assert_eq!(receiver.count(), 1);
    let log_id = tested["id"].as_str().expect("the test call's log id").to_string();

    let out = ok(&relay, &["keys", "create", "--name", "watcher", "--role", "viewer"]).await;
    let viewer = out.lines().nth(1).expect("the key line").trim().to_string();
    assert!(viewer.starts_with("hr_viewer_"), "{out}");
    let key_id = out.split_whitespace().nth(1).expect("key id").to_string();
    let keys = ok(&relay, &["keys", "list"]).await;
    assert!(
        keys.contains(&key_id) && keys.contains("watcher") && keys.contains("viewer"),
        "{keys}"
    );
    assert!(!keys.contains(&viewer), "the list shows a secret: {keys}");

    // The viewer reads, but may not rerun: exit 1 with the server's code.
    let (code, out, _) = hr(&relay, &viewer, &["logs", "show", &log_id, "--json"]).await;
    assert_eq!((code, json_of(&out)["id"].clone()), (0, json!(log_id)));
    let (code, out, err) = hr(&relay, &viewer, &["logs", "rerun", &log_id]).await;
    assert_eq!(code, 1, "{err}{out}");
    assert!(err.starts_with("error: 403 insufficient_role: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(receiver.count(), 1, "the refused rerun was sent");

    let out = ok(&relay, &["keys", "revoke", &key_id]).await;
    assert_eq!(out.trim(), format!("key {key_id} revoked"));
    let (code, _, err) = hr(&relay, &viewer, &["logs", "list"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: 401 unauthorized: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_commands_list_show_and_rerun_and_exit_codes_tell_what_failed() {
    let receiver = Receiver::failing_first(2, 500).await;
    let relay = Relay::start(&common::FAST_RETRIES.replace("max_attempts = 4", "max_attempts = 1"));
    relay.create_automation("proc_logs", &receiver.url("/r")).await;
    for n in 0..3 {
        relay.send_message("proc_logs", json!({"n": n})).await;
    }
    let logs = relay.wait_logs_exactly("", 3).await;
    let failed: Vec<&Value> =
        logs.iter().filter(|l| l["external_request_log"]["status_code"] == 500).collect();
    assert_eq!(failed.len(), 2);
    let failed_id = failed[0]["id"].as_str().expect("id").to_string();

    let table = ok(&relay, &["logs", "list"]).await;
    assert!(table.lines().next().is_some_and(|l| l.contains('─')), "{table}");
    assert!(table.contains("trigger") && table.contains("status"), "{table}");
    for log in &logs {
        assert!(table.contains(log["id"].as_str().expect("id")), "{table}");
    }
    let page = json_of(&ok(&relay, &["logs", "list", "--status-code", "500", "--json"]).await);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2), "{page}");
    let limited = json_of(&ok(&relay, &["logs", "list", "--limit", "1", "--json"]).await);
    assert_eq!(limited["data"].as_array().map(Vec::len), Some(1), "{limited}");

    let shown = json_of(&ok(&relay, &["logs", "show", &failed_id]).await);
    assert_eq!(shown["id"], failed_id.as_str());
    assert_eq!(shown["external_request_log"]["status_code"], 500);

    let out = ok(&relay, &["logs", "rerun", &failed_id]).await;
    assert!(out.starts_with(&format!("rerun of {failed_id}: ")), "{out}");
    assert!(out.contains("→ status 200"), "{out}");
    assert_eq!(receiver.count(), 4);

    // The server refused: exit 1, its error on one line, naming the field.
    let (code, out, err) = hr(&relay, KEY, &["logs", "list", "--status-class", "9xx"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.starts_with("error: 400 invalid_param: "), "{err}");
    assert!(err.trim_end().ends_with("(field: status_class)"), "{err}");
    let missing = "log_auto_00000000000000000000000000000000";
    let (code, _, err) = hr(&relay, KEY, &["logs", "show", missing]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("error: 404 not_found: "), "{err}");
    // Usage: clap's exit 2, nothing sent.
    let (code, _, err) = hr(&relay, KEY, &["logs", "list", "--no-such-flag"]).await;
    assert_eq!(code, 2, "{err}");
    // Nothing listening: exit 3.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let (code, _, err) = hr(&relay, KEY, &["logs", "list", "--url", &closed]).await;
    assert_eq!(code, 3, "{err}");
    assert!(err.starts_with(&format!("error: cannot reach the server at {closed}")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_counts_with_a_dry_run_then_follows_its_job_to_the_end() {
    let receiver = Receiver::failing_first(6, 500).await;
    let relay = Relay::start(&format!(
        "{}recover_chunk_size = 2\n",
        common::FAST_RETRIES.replace("max_attempts = 4", "max_attempts = 1")
    ));
    relay.create_automation("proc_rcv", &receiver.url("/r")).await;
    for n in 0..6 {
        relay.send_message("proc_rcv", json!({"n": n})).await;
    }
    relay.wait_logs_exactly("error_code=E_HTTP_STATUS", 6).await;
    relay
        .wait_for(WAIT, "6 exhausted deliveries", || async {
            let page = relay.get_json("/v1/deliveries?status=exhausted").await;
            (page["data"].as_array().map_or(0, Vec::len) == 6).then_some(())
        })
        .await;

    let out = ok(&relay, &["recover", "--since", "1h", "--status-code", "500", "--dry-run"]).await;
    assert_eq!(out.trim(), "dry run: 6 deliveries would be re-queued; 0 still retrying");
    assert_eq!(receiver.count(), 6, "the dry run sent something");

    // stdout is a pipe, not a terminal: plain progress lines, then the summary.
    let out = ok(&relay, &["recover", "--since", "1h", "--status-class", "5xx"]).await;
    let lines: Vec<&str> = out.lines().collect();
    let last = lines.last().expect("a summary line");
    assert!(last.starts_with("recover rcv_"), "{out}");
    assert!(last.ends_with(" completed: requeued 6/6, done 6, failed 0, pending 0"), "{out}");
    assert!(lines.len() >= 2, "no progress line before the summary: {out}");
    assert!(lines[..lines.len() - 1].iter().all(|l| l.starts_with("recover rcv_")), "{out}");
    assert_eq!(receiver.count(), 12);

    let (code, _, err) = hr(&relay, KEY, &["recover", "--since", "yesterday"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: 400 invalid_param: ") && err.contains("(field: since)"),
        "{err}"
    );
}

/// Starts `hookrelay tail`, and waits until it says it follows the logs after `newest`.
async fn start_tail(relay: &Relay, args: &[&str], newest: &str) -> tokio::process::Child {
    let mut child = command(relay, KEY, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    let stderr = child.stderr.take().expect("piped stderr");
    let first = tokio::time::timeout(WAIT, BufReader::new(stderr).lines().next_line())
        .await
        .expect("tail started in time")
        .expect("read")
        .expect("a first line on stderr");
    assert!(
        first.starts_with(&format!("tail: following the logs written after {newest}")),
        "{first}"
    );
    child
}

/// Reads `n` lines of a running `hookrelay tail`.
async fn lines_of(child: &mut tokio::process::Child, n: usize) -> Vec<String> {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(stdout).lines();
    let mut lines = Vec::new();
    while lines.len() < n {
        let line = tokio::time::timeout(WAIT, reader.next_line())
            .await
            .expect("a tail line in time")
            .expect("read")
            .expect("tail ended early");
        lines.push(line);
    }
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_each_new_log_once_as_a_line_or_as_json() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start("");
    relay.create_automation("proc_tail", &receiver.url("/t")).await;
    relay.send_message("proc_tail", json!({"before": true})).await;
    let old = relay.wait_logs_exactly("", 1).await;
    let old_id = old[0]["id"].as_str().expect("id").to_string();

    let mut plain = start_tail(&relay, &["tail", "--interval-ms", "50"], &old_id).await;
    let mut as_json = start_tail(&relay, &["tail", "--json", "--interval-ms", "50"], &old_id).await;
    for n in 0..3 {
        relay.send_message("proc_tail", json!({"n": n})).await;
    }
    let new = relay.wait_logs_exactly("", 4).await;
    let new_ids: Vec<&str> = new[1..].iter().map(|l| l["id"].as_str().expect("id")).collect();

    let lines = lines_of(&mut plain, 3).await;
    for (line, id) in lines.iter().zip(&new_ids) {
        assert!(line.contains(id) && line.contains(" initial 200 "), "{line}");
        assert!(!line.contains(&old_id), "{line}");
    }
    let lines = lines_of(&mut as_json, 3).await;
    let ids: Vec<String> =
        lines.iter().map(|l| json_of(l)["id"].as_str().expect("id").into()).collect();
    assert_eq!(ids, new_ids);
    // Ctrl-C (SIGINT) ends it, successfully.
    let pid = plain.id().expect("tail's pid").to_string();
    let sent = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill");
    assert!(sent.success());
    let ended =
        tokio::time::timeout(WAIT, plain.wait()).await.expect("tail stopped").expect("wait");
    assert_eq!(ended.code(), Some(0), "{ended:?}");
    as_json.kill().await.expect("stop tail --json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_list_url_contains_narrows_to_the_urls_holding_it() {
    let receiver = Receiver::ok().await;
    let relay = Relay::start("");
    relay.create_automation("proc_url", &receiver.url("/alpha/hook")).await;
    relay.create_automation("proc_url", &receiver.url("/beta/hook")).await;
    relay.send_message("proc_url", json!({"n": 1})).await;
    let logs = relay.wait_logs_exactly("", 2).await;

    let page = json_of(&ok(&relay, &["logs", "list", "--url-contains", "/alpha/", "--json"]).await);
    let data = page["data"].as_array().expect("data");
    assert_eq!(data.len(), 1, "{page}");
    let url = data[0]["external_request_log"]["webhook_url"].as_str().expect("url");
    assert!(url.ends_with("/alpha/hook"), "{page}");
    let table = ok(&relay, &["logs", "list", "--url-contains", "/beta/"]).await;
    let beta = logs.iter().find(|l| l["id"] != data[0]["id"]).expect("the other log");
    assert!(table.contains(beta["id"].as_str().expect("id")), "{table}");
    assert!(!table.contains(data[0]["id"].as_str().expect("id")), "{table}");

    let long = "x".repeat(201);
    let (code, out, err) = hr(&relay, KEY, &["logs", "list", "--url-contains", &long]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.trim_end().ends_with("(field: url_contains)"), "{err}");
}
