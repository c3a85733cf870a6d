//! The llm node against a fake OpenAI-compatible server on 127.0.0.1: what the node sends
//! (model, substituted messages, key, stream, response_format), text streamed as text_chunk
//! events while the model answers, structured output, tokens counted into the run, and error
//! answers failing the run (one holding a NUL byte too).

use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{edges, wait_calls, App};
use crate::servers::{
    FakeLlm, NUL_MODEL, PLAIN_CHUNKS, PLAIN_USAGE, STRUCTURED_REPLY, STRUCTURED_USAGE,
};

const KEY: &str = "app-llm-key-0123456789";
const SCHEMA: &str = r#"{ type = "object", properties = { summary = { type = "string" }, topics = { type = "array", items = { type = "string" } } }, required = ["summary", "topics"], additionalProperties = false }"#;

/// start → draft (llm, plain, key inline) → summary (llm, json_schema, key from the
/// environment, fed the draft's text) → end.
fn app(llm: &FakeLlm) -> String {
    format!(
        r#"
[[apps]]
id = "writer"
api_keys = ["{KEY}"]
[[apps.inputs]]
type = "text-input"
variable = "topic"
required = true
[[apps.inputs]]
type = "paragraph"
variable = "text"
required = true
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "draft"
type = "llm"
base_url = "{base}"
api_key = "sk-inline-key"
model = "fake-mini"
temperature = 0.2
messages = [
  {{ role = "system", text = "You write about {{{{#start.topic#}}}}." }},
  {{ role = "user", text = "Notes: {{{{#start.text#}}}}" }},
]
[[apps.nodes]]
id = "summary"
type = "llm"
base_url = "{base}/"
api_key_env = "FAKE_LLM_KEY"
model = "fake-large"
messages = [{{ role = "user", text = "Summarize: {{{{#draft.text#}}}}" }}]
json_schema = {SCHEMA}
[[apps.nodes]]
id = "end"
type = "end"
outputs = [
  {{ variable = "draft", value_selector = ["draft", "text"] }},
  {{ variable = "summary", value_selector = ["summary", "structured_output", "summary"] }},
  {{ variable = "topics", value_selector = ["summary", "structured_output", "topics"] }},
  {{ variable = "usage", value_selector = ["draft", "usage"] }},
]
{}"#,
        edges(&[("start", "draft"), ("draft", "summary"), ("summary", "end")]),
        base = llm.base_url(),
    )
}

fn start(llm: &FakeLlm) -> Relay {
    Relay::start_with_env(
        &app(llm),
        &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true"), ("FAKE_LLM_KEY", "sk-from-env")],
    )
}

const PLAIN: &str = "Owls are silent hunters.";
const TOTAL: u64 = PLAIN_USAGE.0 + PLAIN_USAGE.1 + STRUCTURED_USAGE.0 + STRUCTURED_USAGE.1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_nodes_send_the_chat_completions_request_and_parse_the_stream() {
    let llm = FakeLlm::start().await;
    let relay = start(&llm);
    let receiver = Receiver::ok().await;
    relay.create_automation("writer", &receiver.url("/done")).await;
    let api = App::new(&relay, KEY);
    let body = api.blocking(json!({"topic": "owls", "text": "night; quiet"}), "u-llm").await;
    let data = &body["data"];
    assert_eq!(data["status"], "succeeded", "{body}");
    assert_eq!(data["outputs"]["draft"], PLAIN);
    assert_eq!(data["outputs"]["summary"], "Owls hunt silently at night.", "structured_output");
    assert_eq!(data["outputs"]["topics"], json!(["owls", "night"]));
    assert_eq!(
        data["outputs"]["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}),
        "the node's usage output is the model's"
    );
    assert_eq!(data["total_tokens"], TOTAL, "tokens of both llm nodes");

    let calls = llm.calls();
    assert_eq!(calls.len(), 2);
    let auth = |i: usize| calls[i].headers.get("authorization").and_then(|v| v.to_str().ok());
    let (draft, summary) = (&calls[0].body, &calls[1].body);
    assert_eq!(calls[0].path, "/v1/chat/completions");
    assert_eq!(calls[1].path, "/v1/chat/completions", "a trailing slash on base_url is fine");
    assert_eq!(auth(0), Some("Bearer sk-inline-key"));
    assert_eq!(auth(1), Some("Bearer sk-from-env"), "api_key_env read from the environment");
    assert_eq!(draft["model"], "fake-mini");
    assert_eq!(draft["stream"], true);
    assert_eq!(draft["temperature"], 0.2);
    assert_eq!(
        draft["messages"],
        json!([
            {"role": "system", "content": "You write about owls."},
            {"role": "user", "content": "Notes: night; quiet"},
        ]),
        "messages with the variables substituted"
    );
    assert!(draft.get("response_format").is_none(), "no schema, no response_format: {draft}");
    assert_eq!(summary["model"], "fake-large");
    assert_eq!(
        summary["messages"],
        json!([{"role": "user", "content": format!("Summarize: {PLAIN}")}])
    );
    let format = &summary["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert!(format["json_schema"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{format}");
    assert_eq!(
        format["json_schema"]["schema"],
        json!({"type": "object", "properties": {"summary": {"type": "string"},
               "topics": {"type": "array", "items": {"type": "string"}}},
               "required": ["summary", "topics"], "additionalProperties": false})
    );

    // The completion webhook reports the tokens as the model counted them.
    let calls = wait_calls(&relay, &receiver, 1).await;
    let completion = &calls[0].1["completion"];
    let prompt = PLAIN_USAGE.0 + STRUCTURED_USAGE.0;
    assert_eq!(completion["usage"]["total_tokens"], TOTAL);
    assert_eq!(completion["usage"]["prompt_tokens"], prompt);
    assert_eq!(completion["usage"]["completion_tokens"], TOTAL - prompt);
    let first = completion["first_token_at"].as_str().expect("first_token_at");
    let last = completion["last_token_at"].as_str().expect("last_token_at");
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339");
    assert!(parse(first) <= parse(last));
    assert!(
        parse(completion["request_at"].as_str().expect("request_at")).timestamp()
            <= parse(first).timestamp()
    );
    assert_eq!(calls[0].1["metadata"]["total_tokens"], TOTAL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_text_streams_as_text_chunks_while_the_model_answers() {
    let llm = FakeLlm::gated().await;
    let relay = start(&llm);
    let api = App::new(&relay, KEY);
    let mut sse = api.stream(json!({"topic": "owls", "text": "t"}), "u-chunks").await;
    let mut events: Vec<Value> = Vec::new();
    // The fake holds its first reply after one content chunk until that chunk is seen here.
    loop {
        let e = sse.next_event().await;
        let first_chunk = e["event"] == "text_chunk";
        events.push(e);
        if first_chunk {
            break;
        }
    }
    assert_eq!(events.last().expect("chunk")["data"]["text"], PLAIN_CHUNKS[0]);
    llm.release();
    events.extend(sse.until("workflow_finished").await);
    assert!(sse.rest().await.is_empty());

    let position = |event: &str, node: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e["data"]["node_id"] == node)
            .unwrap_or_else(|| panic!("no {event} for {node}"))
    };
    for (node, text) in [("draft", PLAIN.to_string()), ("summary", STRUCTURED_REPLY.to_string())] {
        let (s, f) = (position("node_started", node), position("node_finished", node));
        let chunks: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["event"] == "text_chunk" && e["data"]["from_variable_selector"][0] == node
            })
            .collect();
        assert!(chunks.len() > 1, "{node}: streamed in several chunks");
        let joined: String =
            chunks.iter().map(|c| c["data"]["text"].as_str().unwrap_or("")).collect();
        assert_eq!(joined, text, "{node}: the chunks are the reply");
        for (i, e) in events.iter().enumerate() {
            if e["event"] == "text_chunk" && e["data"]["from_variable_selector"][0] == node {
                assert!(
                    s < i && i < f,
                    "{node}: text_chunk between its node_started and node_finished"
                );
                assert_eq!(e["data"]["from_variable_selector"], json!([node, "text"]));
            }
        }
        let finished = &events[f]["data"];
        assert_eq!(finished["node_type"], "llm");
        assert_eq!(finished["outputs"]["text"], text.as_str());
        let (p, c) = if node == "draft" { PLAIN_USAGE } else { STRUCTURED_USAGE };
        assert_eq!(finished["execution_metadata"]["total_tokens"], p + c);
    }
    let summary = &events[position("node_finished", "summary")]["data"]["outputs"];
    assert_eq!(
        summary["structured_output"],
        serde_json::from_str::<Value>(STRUCTURED_REPLY).expect("json")
    );
    let done = &events.last().expect("finished")["data"];
    assert_eq!(done["total_tokens"], TOTAL);
    assert_eq!(done["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_error_fails_the_run_with_the_models_answer() {
    let llm = FakeLlm::start().await;
    // Without FAKE_LLM_KEY the second node sends no key, and the fake answers 401.
    let relay = Relay::start(&app(&llm));
    let api = App::new(&relay, KEY);
    let body = api.blocking(json!({"topic": "owls", "text": "t"}), "u-llm-err").await;
    let data = &body["data"];
    assert_eq!(data["status"], "failed", "{body}");
    let error = data["error"].as_str().expect("error");
    assert!(
        error.contains("summary") && error.contains("401"),
        "names the node and status: {error}"
    );
    assert_eq!(data["outputs"], Value::Null);
    assert_eq!(data["total_tokens"], PLAIN_USAGE.0 + PLAIN_USAGE.1, "the first node's tokens");
    assert_eq!(llm.calls().len(), 2);
    assert!(llm.calls()[1].headers.get("authorization").is_none());
}

const NUL_KEY: &str = "app-nul-key-0123456789";

/// start → l (llm answering 500 with a NUL in its body) → end.
fn nul_app(llm: &FakeLlm) -> String {
    format!(
        r#"
[[apps]]
id = "nul"
api_keys = ["{NUL_KEY}"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "l"
type = "llm"
base_url = "{base}"
api_key = "sk-inline-key"
model = "{NUL_MODEL}"
messages = [{{ role = "user", text = "Hello" }}]
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{{ variable = "text", value_selector = ["l", "text"] }}]
{}"#,
        edges(&[("start", "l"), ("l", "end")]),
        base = llm.base_url(),
    )
}

/// F6: an error body holding a NUL byte fails the run like any other, on both backends
/// (PostgreSQL's text columns refuse NUL: the run stayed `running`, without its webhook). The
/// NUL is recorded as U+FFFD everywhere the run's error shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_error_body_holding_a_nul_fails_the_run_with_its_webhook() {
    let llm = FakeLlm::start().await;
    let relay = Relay::start(&nul_app(&llm));
    let receiver = Receiver::ok().await;
    relay.create_automation("nul", &receiver.url("/done")).await;
    let api = App::new(&relay, NUL_KEY);
    let (status, body) =
        api.run(&json!({"inputs": {}, "user": "u-nul", "response_mode": "async"})).await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["workflow_run_id"].as_str().expect("id");

    let expected = "node l: llm answered HTTP 500: {\"error\":\"bad\u{FFFD}thing\"}";
    let detail = api.wait_finished(run_id).await;
    assert_eq!(detail["status"], "failed", "{detail}");
    assert_eq!(detail["error"], expected, "{detail}");
    let calls = wait_calls(&relay, &receiver, 1).await;
    let metadata = &calls[0].1["metadata"];
    assert_eq!(metadata["workflow_run_id"], run_id, "{metadata}");
    assert_eq!(metadata["status"], "failed", "{metadata}");
    assert_eq!(metadata["error"], expected, "{metadata}");
    assert_eq!(llm.calls().len(), 1);
}
