//! App-scoped resources across apps: an app key selects its app, and another app's runs,
//! tasks, logs, input form, uploads and idempotency keys are not reachable with it.
//!
//! Decision asserted here: another app's run or task is `404 not_found` — exactly what an
//! id that does not exist gets — not 401/403, so a key cannot even confirm that a foreign
//! id exists. Lists (`/v1/workflows/logs`) are filtered to the key's app (200, none of the
//! other app's runs); another app's upload id is a 400 naming the field; an Idempotency-Key
//! another app used starts a new run of this app.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::auth_fixture::{json_body, send_raw, upload_body, ALPHA_KEY, APPS, BETA_KEY};
use crate::common::{self, Relay};
use crate::helpers::{assert_error, Resp, WAIT};

const GAMMA_KEY: &str = "app-gamma-scoped-0123456789";
const CODEWORD: &str = "scoped-codeword-3391";
const USER: &str = "ann-scoped@example.com";

/// An app whose run waits on `url` (a server that answers late), so it stays `running`.
fn gamma(url: &str) -> String {
    format!(
        "[[apps]]\nid = \"gamma\"\napi_keys = [\"{GAMMA_KEY}\"]\n\
         [[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
         [[apps.nodes]]\nid = \"call\"\ntype = \"http-request\"\nmethod = \"POST\"\nurl = \"{url}\"\n\
         [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\n\
         [[apps.edges]]\nsource = \"start\"\ntarget = \"call\"\n\
         [[apps.edges]]\nsource = \"call\"\ntarget = \"end\"\n"
    )
}

/// A server on 127.0.0.1 that answers after 30 s, counting calls.
async fn slow_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/slow"), hits)
}

async fn call(relay: &Relay, key: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    let headers = [("Authorization", format!("Bearer {key}"))];
    send_raw(relay, method, path, &headers, body.and_then(json_body)).await
}

fn assert_hides(r: &Resp, canaries: &[&str], ctx: &str) {
    for canary in canaries {
        assert!(!r.text.contains(canary), "{ctx}: answer shows {canary:?}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_apps_runs_tasks_logs_uploads_and_keys_are_out_of_reach() {
    let (slow_url, hits) = slow_server().await;
    let relay = Relay::start(&format!("{}{APPS}{}", common::FAST_RETRIES, gamma(&slow_url)));

    // App alpha: an upload and a finished run using it, under an Idempotency-Key.
    let auth = [("Authorization", format!("Bearer {ALPHA_KEY}"))];
    let up = send_raw(
        &relay,
        Method::POST,
        "/v1/files/upload",
        &auth,
        upload_body("scoped-doc-771.pdf", USER),
    )
    .await;
    assert_eq!(up.status, 201, "{}", up.text);
    let upload = up.body["id"].as_str().expect("upload id").to_string();
    let files =
        json!([{"type": "document", "transfer_method": "local_file", "upload_file_id": upload}]);
    let run_body = json!({"inputs": {"codeword": CODEWORD}, "user": USER, "files": files});
    let mut req = common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(ALPHA_KEY)
        .header("Idempotency-Key", "idem-shared-1");
    req = req.json(&run_body);
    let alpha: Value = req.send().await.expect("send").json().await.expect("json");
    assert_eq!(alpha["data"]["status"], "succeeded", "{alpha}");
    let run = alpha["workflow_run_id"].as_str().expect("run").to_string();
    let task = alpha["task_id"].as_str().expect("task").to_string();

    // App gamma: a run that stays running.
    let g = call(
        &relay,
        GAMMA_KEY,
        Method::POST,
        "/v1/workflows/run",
        Some(json!({"inputs": {}, "user": "gus", "response_mode": "async"})),
    )
    .await;
    assert_eq!(g.status, 202, "{}", g.text);
    let g_run = g.body["workflow_run_id"].as_str().expect("run").to_string();
    let g_task = g.body["task_id"].as_str().expect("task").to_string();
    relay
        .wait_for(WAIT, "gamma's call", || async {
            (hits.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;

    let canaries =
        [run.as_str(), task.as_str(), &g_run, &g_task, CODEWORD, USER, "scoped-doc-771", "gus"];

    // With beta's key: the other apps' runs and tasks do not exist.
    for (path, body) in [
        (format!("/v1/workflows/run/{run}"), None),
        (format!("/v1/workflows/run/{g_run}"), None),
        (format!("/v1/workflows/tasks/{g_task}/stop"), Some(json!({"user": "gus"}))),
        (format!("/v1/workflows/tasks/{task}/stop"), Some(json!({"user": USER}))),
    ] {
        let method = if body.is_some() { Method::POST } else { Method::GET };
        let r = call(&relay, BETA_KEY, method.clone(), &path, body).await;
        let ctx = format!("{method} {path} with beta's key");
        assert_error(&r, 404, "", &ctx);
        assert_eq!(r.body["code"], "not_found", "{ctx}: {}", r.text);
        assert_hides(&r, &canaries, &ctx);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still =
        call(&relay, GAMMA_KEY, Method::GET, &format!("/v1/workflows/run/{g_run}"), None).await;
    assert_eq!(still.body["status"], "running", "beta's stop stopped gamma's run: {}", still.text);

    // Beta's log and form are its own.
    for query in ["", "?keyword=scoped", "?status=succeeded", "?created_by_end_user_session_id=gus"]
    {
        let r =
            call(&relay, BETA_KEY, Method::GET, &format!("/v1/workflows/logs{query}"), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["total"], 0, "beta's log {query}: {}", r.text);
        assert_hides(&r, &canaries, &format!("beta's log {query}"));
    }
    let form = call(&relay, BETA_KEY, Method::GET, "/v1/parameters", None).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(form.text.contains("\"topic\"") && !form.text.contains("codeword"), "{}", form.text);

    // Alpha's upload is not beta's to use.
    let r = call(
        &relay,
        BETA_KEY,
        Method::POST,
        "/v1/workflows/run",
        Some(json!({"inputs": {"topic": "t"}, "user": USER, "files": files})),
    )
    .await;
    assert_error(&r, 400, "files[0]", "beta using alpha's upload");
    assert_hides(&r, &["scoped-doc-771", "upload-canary-4471", "base64", run.as_str()], "upload");

    // Alpha's Idempotency-Key is not beta's: the same request starts a new run of beta.
    let r = common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(BETA_KEY)
        .header("Idempotency-Key", "idem-shared-1")
        .json(&json!({"inputs": {"codeword": CODEWORD, "topic": "t1"}, "user": USER}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let beta: Value = r.json().await.expect("json");
    assert_eq!(beta["data"]["workflow_id"], "beta", "{beta}");
    assert_eq!(beta["data"]["outputs"], json!({"topic": "t1"}), "{beta}");
    assert_ne!(beta["workflow_run_id"], run.as_str());
    assert!(!beta.to_string().contains(CODEWORD) && !beta.to_string().contains(&task), "{beta}");

    // Controls: with their own keys the same ids are found, and the stop works.
    let own = call(&relay, ALPHA_KEY, Method::GET, &format!("/v1/workflows/run/{run}"), None).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert!(own.text.contains(CODEWORD), "{}", own.text);
    let logs = call(&relay, ALPHA_KEY, Method::GET, "/v1/workflows/logs", None).await;
    assert_eq!(logs.body["total"], 1, "{}", logs.text);
    let stop = call(
        &relay,
        GAMMA_KEY,
        Method::POST,
        &format!("/v1/workflows/tasks/{g_task}/stop"),
        Some(json!({"user": "gus"})),
    )
    .await;
    assert_eq!(stop.body["result"], "success", "{}", stop.text);
    let status = relay
        .wait_for(WAIT, "gamma's run stopped", || async {
            let r =
                call(&relay, GAMMA_KEY, Method::GET, &format!("/v1/workflows/run/{g_run}"), None)
                    .await;
            (r.body["status"] != "running").then(|| r.body["status"].clone())
        })
        .await;
    assert_eq!(status, "stopped");
}
