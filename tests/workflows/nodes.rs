//! start, template-transform, http-request, if-else and end in one graph with a branch;
//! both branches exercised, and the http call checked as the receiver saw it.

use serde_json::{json, Value};

use crate::common::Relay;
use crate::helpers::{branch, edges, App};
use crate::servers::Echo;

const KEY: &str = "app-nodes-key-0123456789";

/// start → greet (template) → call (http POST, templated) → created? (if-else on the status)
///   true  → summary (template over the call's headers and body) → end_ok
///   false → end_fail
fn app(echo: &Echo) -> String {
    format!(
        r#"
[[apps]]
id = "nodes"
api_keys = ["{KEY}"]
[[apps.inputs]]
type = "text-input"
variable = "name"
required = true
max_length = 16
[[apps.inputs]]
type = "select"
variable = "want"
options = ["201", "404"]
default = "201"
[[apps.inputs]]
type = "number"
variable = "n"
default = 2
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "greet"
type = "template-transform"
template = "{{% for i in range(n) %}}{{{{ name }}}}{{% if not loop.last %}}-{{% endif %}}{{% endfor %}} ({{{{ name|upper }}}}, {{{{ user }}}})"
variables = [
  {{ variable = "name", value_selector = ["start", "name"] }},
  {{ variable = "n", value_selector = ["start", "n"] }},
  {{ variable = "user", value_selector = ["sys", "user_id"] }},
]
[[apps.nodes]]
id = "call"
type = "http-request"
method = "POST"
url = "{base}/items/{{{{#start.name#}}}}?status={{{{#start.want#}}}}"
headers = {{ "X-Greeting" = "{{{{#greet.output#}}}}", "Content-Type" = "application/json" }}
body = '{{"name":"{{{{#start.name#}}}}","n":{{{{#start.n#}}}}}}'
[[apps.nodes]]
id = "created"
type = "if-else"
conditions = [{{ variable_selector = ["call", "status_code"], comparison_operator = "=", value = 201 }}]
[[apps.nodes]]
id = "summary"
type = "template-transform"
template = "{{{{ code }}}} at {{{{ headers['location'] }}}} echo={{{{ headers['x-echo'] }}}}: {{{{ body }}}}"
variables = [
  {{ variable = "code", value_selector = ["call", "status_code"] }},
  {{ variable = "headers", value_selector = ["call", "headers"] }},
  {{ variable = "body", value_selector = ["call", "body"] }},
]
[[apps.nodes]]
id = "end_ok"
type = "end"
outputs = [
  {{ variable = "greeting", value_selector = ["greet", "output"] }},
  {{ variable = "summary", value_selector = ["summary", "output"] }},
  {{ variable = "location", value_selector = ["call", "headers", "location"] }},
]
[[apps.nodes]]
id = "end_fail"
type = "end"
outputs = [
  {{ variable = "status", value_selector = ["call", "status_code"] }},
  {{ variable = "taken", value_selector = ["created", "result"] }},
  {{ variable = "body", value_selector = ["call", "body"] }},
]
{}{}{}"#,
        edges(&[("start", "greet"), ("greet", "call"), ("call", "created"), ("summary", "end_ok")]),
        branch("created", "true", "summary"),
        branch("created", "false", "end_fail"),
        base = echo.url(""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_http_if_else_and_end_nodes_on_both_branches() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);

    // The true branch: 201 from the receiver.
    let ok = api.blocking(json!({"name": "Ada", "n": 3}), "u-nodes").await;
    let data = &ok["data"];
    assert_eq!(data["status"], "succeeded", "{ok}");
    assert_eq!(data["error"], Value::Null);
    let outputs = &data["outputs"];
    assert_eq!(outputs["greeting"], "Ada-Ada-Ada (ADA, u-nodes)", "minijinja over bound variables");
    assert_eq!(outputs["location"], "/items/Ada", "a response header, read downstream");
    assert_eq!(
        outputs["summary"], "201 at /items/Ada echo=yes: {\"name\":\"Ada\",\"n\":3}",
        "status_code, headers and body of the call feed the next template"
    );
    assert_eq!(outputs.as_object().map(|o| o.len()), Some(3), "only end_ok's outputs: {outputs}");
    assert_eq!(data["total_steps"], 6, "start, greet, call, created, summary, end_ok");

    let seen = echo.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].uri, "/items/Ada?status=201", "URL templated from the inputs");
    assert_eq!(
        seen[0].headers.get("x-greeting").and_then(|v| v.to_str().ok()),
        Some("Ada-Ada-Ada (ADA, u-nodes)"),
        "a header templated from another node's output"
    );
    assert_eq!(
        seen[0].headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(seen[0].body, "{\"name\":\"Ada\",\"n\":3}", "body templated, numbers as JSON");

    // The false branch: 404, with the default n = 2.
    let fail = api.blocking(json!({"name": "Bo", "want": "404"}), "u-nodes").await;
    let data = &fail["data"];
    assert_eq!(data["status"], "succeeded", "a 404 is an answer, not a node failure: {fail}");
    assert_eq!(
        data["outputs"],
        json!({"status": 404, "taken": false, "body": "{\"name\":\"Bo\",\"n\":2}"}),
        "end_fail's outputs only"
    );
    assert_eq!(data["total_steps"], 5, "start, greet, call, created, end_fail");
    let seen = echo.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].uri, "/items/Bo?status=404");
    assert_eq!(
        seen[1].headers.get("x-greeting").and_then(|v| v.to_str().ok()),
        Some("Bo-Bo (BO, u-nodes)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_events_carry_inputs_outputs_and_the_branch_taken() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let mut sse = api.stream(json!({"name": "Cy", "want": "404", "n": 1}), "u-events").await;
    let events = sse.until("workflow_finished").await;
    let finished = |node: &str| {
        events
            .iter()
            .find(|e| e["event"] == "node_finished" && e["data"]["node_id"] == node)
            .unwrap_or_else(|| panic!("no node_finished for {node}: {events:?}"))
            .clone()
    };
    let start = finished("start");
    assert_eq!(start["data"]["node_type"], "start");
    assert_eq!(start["data"]["outputs"]["name"], "Cy");
    assert_eq!(start["data"]["outputs"]["want"], "404");

    let greet = finished("greet");
    assert_eq!(greet["data"]["node_type"], "template-transform");
    assert_eq!(greet["data"]["inputs"], json!({"name": "Cy", "n": 1, "user": "u-events"}));
    assert_eq!(greet["data"]["outputs"], json!({"output": "Cy (CY, u-events)"}));
    assert_eq!(greet["data"]["predecessor_node_id"], "start");

    let call = finished("call");
    assert_eq!(call["data"]["node_type"], "http-request");
    assert_eq!(call["data"]["status"], "succeeded");
    assert_eq!(call["data"]["outputs"]["status_code"], 404);
    assert_eq!(call["data"]["outputs"]["headers"]["x-echo"], "yes");
    assert_eq!(call["data"]["outputs"]["body"], "{\"name\":\"Cy\",\"n\":1}");

    let created = finished("created");
    assert_eq!(created["data"]["node_type"], "if-else");
    assert_eq!(created["data"]["outputs"]["result"], false);

    let end = finished("end_fail");
    assert_eq!(end["data"]["node_type"], "end");
    assert_eq!(end["data"]["predecessor_node_id"], "created");
    assert!(
        !events
            .iter()
            .any(|e| e["data"]["node_id"] == "summary" || e["data"]["node_id"] == "end_ok"),
        "the untaken branch never runs"
    );
    assert_eq!(events.last().expect("last")["data"]["outputs"]["status"], 404);
    assert!(sse.rest().await.iter().all(|f| f.data.is_none()), "nothing after workflow_finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_input_given_as_text_is_the_integer_dify_would_make() {
    let echo = Echo::start().await;
    let relay = Relay::start(&app(&echo));
    let api = App::new(&relay, KEY);
    let body = api.blocking(json!({"name": "Ada", "n": "3"}), "u-num").await;
    assert_eq!(body["data"]["status"], "succeeded", "range(n) works on the number: {body}");
    assert_eq!(body["data"]["outputs"]["greeting"], "Ada-Ada-Ada (ADA, u-num)");
    assert_eq!(echo.seen()[0].body, "{\"name\":\"Ada\",\"n\":3}", "`3`, not `3.0`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_llm_nodes_go_through_the_ssrf_guard() {
    let echo = Echo::start().await;
    let llm = crate::servers::FakeLlm::start().await;
    let toml = format!(
        r#"{}
[[apps]]
id = "guarded"
api_keys = ["app-guarded-key-0123456789"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "ask"
type = "llm"
base_url = "{}"
api_key = "sk-x"
model = "m"
messages = [{{ role = "user", text = "hi" }}]
[[apps.nodes]]
id = "end"
type = "end"
{}"#,
        app(&echo).replace("127.0.0.1", "localhost"),
        llm.base_url(),
        edges(&[("start", "ask"), ("ask", "end")]),
    );
    // Private targets are not allowed here (the default).
    let relay = Relay::start_with_env(&toml, &[]);
    let body = App::new(&relay, KEY).blocking(json!({"name": "Ada"}), "u").await;
    assert_eq!(body["data"]["status"], "failed", "{body}");
    let error = body["data"]["error"].as_str().unwrap_or("");
    assert!(error.contains("call") && error.contains("E_BLOCKED_TARGET"), "{error}");
    let body = App::new(&relay, "app-guarded-key-0123456789").blocking(json!({}), "u").await;
    assert_eq!(body["data"]["status"], "failed", "{body}");
    let error = body["data"]["error"].as_str().unwrap_or("");
    assert!(error.contains("ask") && error.contains("E_BLOCKED_TARGET"), "{error}");
    assert!(echo.seen().is_empty() && llm.calls().is_empty(), "nothing reached the targets");
}
