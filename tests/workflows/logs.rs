//! GET /v1/workflows/logs (newest first, status, keyword, paging, bounds) and
//! GET /v1/parameters (the input form, file upload settings, system parameters).

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{assert_dify_error, branch, edges, App};

const KEY: &str = "app-logs-key-0123456789";

/// start → fails? (if-else on `mode`) → false: echo → end | true: boom (refused call) → end_x
fn config() -> String {
    format!(
        r#"
[[apps]]
id = "logs"
api_keys = ["{KEY}"]
[[apps.inputs]]
type = "text-input"
variable = "word"
label = "A word"
required = true
max_length = 32
[[apps.inputs]]
type = "select"
variable = "mode"
label = "Mode"
options = ["ok", "fail"]
default = "ok"
[[apps.inputs]]
type = "paragraph"
variable = "notes"
[[apps.inputs]]
type = "number"
variable = "weight"
label = "Weight"
required = false
default = 1
[[apps.inputs]]
type = "file"
variable = "doc"
label = "Document"
[apps.file_upload]
enabled = true
allowed_types = ["document", "image"]
number_limits = 2
transfer_methods = ["remote_url"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "fails"
type = "if-else"
conditions = [{{ variable_selector = ["start", "mode"], comparison_operator = "is", value = "fail" }}]
[[apps.nodes]]
id = "echo"
type = "template-transform"
template = "said-{{{{ w }}}}-done"
variables = [{{ variable = "w", value_selector = ["start", "word"] }}]
[[apps.nodes]]
id = "boom"
type = "http-request"
url = "http://127.0.0.1:9/refused"
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{{ variable = "said", value_selector = ["echo", "output"] }}]
[[apps.nodes]]
id = "end_x"
type = "end"
outputs = [{{ variable = "status", value_selector = ["boom", "status_code"] }}]
{}{}{}"#,
        edges(&[("start", "fails"), ("echo", "end"), ("boom", "end_x")]),
        branch("fails", "false", "echo"),
        branch("fails", "true", "boom"),
    )
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_newest_first_filtered_searched_and_paged() {
    let relay = Relay::start(&config());
    let api = App::new(&relay, KEY);
    // Oldest first: alpha, beta (failed), gamma, delta (user zed-user), eps (failed).
    let runs = [
        ("alpha", "ok", "u1@example.com"),
        ("beta", "fail", "u1@example.com"),
        ("gamma", "ok", "u2"),
        ("delta", "ok", "zed-user"),
        ("eps", "fail", "u2"),
    ];
    let mut created = Vec::new();
    for (word, mode, user) in runs {
        let body = api.blocking(json!({"word": word, "mode": mode}), user).await;
        let expected = if mode == "ok" { "succeeded" } else { "failed" };
        assert_eq!(body["data"]["status"], expected, "{body}");
        created.push(body["workflow_run_id"].as_str().expect("id").to_string());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let all = api.logs("").await;
    assert_eq!(all["total"], 5);
    assert_eq!(all["page"], 1);
    assert_eq!(all["limit"], 20, "Dify's default limit");
    assert_eq!(all["has_more"], false);
    assert_eq!(ids(&all), newest_first, "newest first");
    let entry = &all["data"][0];
    assert_eq!(entry["workflow_run"]["id"], created[4].as_str());
    assert_eq!(entry["workflow_run"]["status"], "failed");
    assert!(entry["workflow_run"]["error"].as_str().is_some_and(|e| e.contains("boom")));
    assert_eq!(entry["created_from"], "service-api");
    assert_eq!(entry["created_by_role"], "end_user");
    assert_eq!(entry["created_by_account"], Value::Null);
    assert_eq!(entry["created_by_end_user"]["session_id"], "u2");
    assert_eq!(entry["created_by_end_user"]["type"], "service_api");
    assert!(entry["created_at"].is_i64() && entry["workflow_run"]["finished_at"].is_i64());
    assert_eq!(all["data"][1]["workflow_run"]["total_steps"], 4, "start, fails, echo, end");

    // status
    let failed = api.logs("?status=failed").await;
    assert_eq!(failed["total"], 2);
    assert_eq!(ids(&failed), vec![created[4].clone(), created[1].clone()]);
    let ok = api.logs("?status=succeeded").await;
    assert_eq!(ok["total"], 3);
    assert!(ok["data"]
        .as_array()
        .expect("data")
        .iter()
        .all(|e| e["workflow_run"]["status"] == "succeeded"));
    assert_eq!(api.logs("?status=stopped").await["total"], 0);

    // keyword: inputs, outputs or user, case-insensitively
    assert_eq!(ids(&api.logs("?keyword=gamma").await), vec![created[2].clone()], "in the inputs");
    assert_eq!(ids(&api.logs("?keyword=GAMMA").await), vec![created[2].clone()], "any case");
    let done = api.logs("?keyword=-done").await;
    assert_eq!(done["total"], 3, "in the outputs (failed runs have none): {done}");
    assert_eq!(ids(&api.logs("?keyword=zed-us").await), vec![created[3].clone()], "in the user");
    assert_eq!(api.logs("?keyword=nowhere-to-be-found").await["total"], 0);
    let both = api.logs("?keyword=u1%40example&status=failed").await;
    assert_eq!(ids(&both), vec![created[1].clone()], "keyword and status together");

    // time window and end user
    assert_eq!(api.logs("?created_at__after=2020-01-01T00:00:00Z").await["total"], 5);
    assert_eq!(api.logs("?created_at__after=2099-01-01T00:00:00Z").await["total"], 0);
    assert_eq!(api.logs("?created_at__before=2099-01-01T00:00:00Z").await["total"], 5);
    assert_eq!(api.logs("?created_at__before=2020-01-01T00:00:00Z").await["total"], 0);
    let u2 = api.logs("?created_by_end_user_session_id=u2").await;
    assert_eq!(ids(&u2), vec![created[4].clone(), created[2].clone()]);

    // paging
    let p1 = api.logs("?page=1&limit=2").await;
    assert_eq!(
        (p1["page"].clone(), p1["limit"].clone(), p1["total"].clone()),
        (json!(1), json!(2), json!(5))
    );
    assert_eq!(p1["has_more"], true);
    assert_eq!(ids(&p1), newest_first[0..2]);
    let p2 = api.logs("?page=2&limit=2").await;
    assert_eq!(ids(&p2), newest_first[2..4]);
    assert_eq!(p2["has_more"], true);
    let p3 = api.logs("?page=3&limit=2").await;
    assert_eq!(ids(&p3), newest_first[4..5]);
    assert_eq!(p3["has_more"], false);
    let p4 = api.logs("?page=4&limit=2").await;
    assert!(ids(&p4).is_empty());
    assert_eq!(p4["total"], 5);

    // bounds
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=ten",
        "?page=0",
        "?status=bogus",
        "?created_at__before=yesterday",
    ] {
        let (status, body) = api.get(&format!("/v1/workflows/logs{query}")).await;
        assert_dify_error(status, &body, 400, "invalid_param", query);
    }
    assert_eq!(api.logs("?limit=100").await["limit"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_describe_the_form_and_the_file_settings() {
    let relay = Relay::start(&config());
    let api = App::new(&relay, KEY);
    let (status, p) = api.get("/v1/parameters?user=u1").await;
    assert_eq!(status, 200, "{p}");
    let form = p["user_input_form"].as_array().expect("user_input_form");
    let kinds: Vec<&str> = form
        .iter()
        .map(|entry| {
            let obj = entry.as_object().expect("entry");
            assert_eq!(obj.len(), 1, "each entry is keyed by its type: {entry}");
            obj.keys().next().expect("key").as_str()
        })
        .collect();
    assert_eq!(kinds, ["text-input", "select", "paragraph", "number", "file"], "in form order");
    let word = &form[0]["text-input"];
    assert_eq!(word["variable"], "word");
    assert_eq!(word["label"], "A word");
    assert_eq!(word["required"], true);
    assert_eq!(word["max_length"], 32);
    let mode = &form[1]["select"];
    assert_eq!(mode["variable"], "mode");
    assert_eq!(mode["label"], "Mode");
    assert_eq!(mode["required"], false);
    assert_eq!(mode["options"], json!(["ok", "fail"]));
    assert_eq!(mode["default"], "ok");
    assert_eq!(form[2]["paragraph"]["variable"], "notes");
    assert_eq!(form[2]["paragraph"]["label"], "notes", "the label defaults to the variable");
    assert_eq!(form[3]["number"]["default"], 1);
    assert_eq!(form[4]["file"]["variable"], "doc");

    let upload = &p["file_upload"];
    for (kind, enabled) in
        [("document", true), ("image", true), ("audio", false), ("video", false), ("custom", false)]
    {
        assert_eq!(upload[kind]["enabled"], enabled, "{kind}: {upload}");
    }
    assert_eq!(upload["document"]["number_limits"], 2);
    assert_eq!(upload["image"]["transfer_methods"], json!(["remote_url"]));
    let system = &p["system_parameters"];
    let keys: HashSet<&str> =
        system.as_object().expect("object").keys().map(String::as_str).collect();
    for key in [
        "file_size_limit",
        "image_file_size_limit",
        "audio_file_size_limit",
        "video_file_size_limit",
    ] {
        assert!(keys.contains(key), "{key} in {system}");
        assert!(system[key].as_u64().is_some_and(|n| n > 0));
    }

    // A key of no app is refused.
    let (status, body) =
        crate::helpers::App::new(&relay, "app-nope-0123456789").get("/v1/parameters").await;
    assert_dify_error(status, &body, 401, "unauthorized", "parameters with a wrong key");
}

/// Attack F5: the NUL character, which PostgreSQL's text cannot hold, is never a 500. A run's
/// `user` holding it is a 400 naming `user`, and a logs filter holding it matches nothing,
/// on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_a_runs_user_is_refused_and_in_a_logs_filter_matches_nothing() {
    let relay = Relay::start(&config());
    let api = App::new(&relay, KEY);
    let body = json!({"inputs": {"word": "w"}, "response_mode": "blocking", "user": "u\u{0}"});
    let (status, refused) = api.run(&body).await;
    assert_dify_error(status, &refused, 400, "invalid_param", "a user holding NUL");
    assert!(refused["message"].as_str().is_some_and(|m| m.contains("user")), "{refused}");
    assert_eq!(api.logs("").await["total"], 0, "nothing was stored");

    api.blocking(json!({"word": "w"}), "u").await;
    for query in ["?keyword=%00", "?keyword=w%00", "?created_by_end_user_session_id=u%00"] {
        let page = api.logs(query).await;
        assert_eq!(page["total"], 0, "{query}: {page}");
        assert_eq!(page["data"], json!([]), "{query}: {page}");
    }
    assert_eq!(api.logs("?keyword=w").await["total"], 1, "the run is found without the NUL");
}
