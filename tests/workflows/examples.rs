//! The two apps `config.example.toml` ships, run as they are written: the greeting demo on
//! both branches of its if-else, and the summarizer against the fake OpenAI server.

use serde_json::json;

use crate::common::Relay;
use crate::helpers::App;
use crate::servers::FakeLlm;

/// The `[[apps]]` part of the shipped example configuration.
fn example_apps() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .expect("read config.example.toml");
    let at = text.find("\n[[apps]]").expect("the example has apps");
    text[at..].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_app_greets_on_both_branches() {
    let relay = Relay::start(&example_apps());
    let api = App::new(&relay, "app-demo-key-0123456789");
    let friendly = api.blocking(json!({"name": "Ada"}), "u-demo").await;
    assert_eq!(friendly["data"]["status"], "succeeded", "{friendly}");
    assert_eq!(friendly["data"]["outputs"], json!({"greeting": "Hi Ada! 👋"}), "default tone");
    let formal = api.blocking(json!({"name": "Ada", "tone": "formal"}), "u-demo").await;
    assert_eq!(formal["data"]["outputs"], json!({"greeting": "Good day, Ada."}));
    assert_eq!(formal["data"]["total_steps"], 4, "start, is_formal, formal, end_formal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summarizer_example_returns_the_models_structured_output() {
    let llm = FakeLlm::start().await;
    let apps = example_apps().replace("https://api.openai.com/v1", &llm.base_url());
    let relay = Relay::start_with_env(
        &apps,
        &[("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true"), ("OPENAI_API_KEY", "sk-example")],
    );
    let api = App::new(&relay, "app-summarize-key-0123456789");
    let body = api.blocking(json!({"text": "Owls hunt at night."}), "u-sum").await;
    assert_eq!(body["data"]["status"], "succeeded", "{body}");
    assert_eq!(
        body["data"]["outputs"],
        json!({"summary": "Owls hunt silently at night.", "topics": ["owls", "night"]})
    );
    let calls = llm.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body["model"], "gpt-4.1-mini");
    assert_eq!(
        calls[0].body["messages"][1],
        json!({"role": "user", "content": "Owls hunt at night."})
    );
    assert_eq!(calls[0].body["response_format"]["type"], "json_schema");
    assert_eq!(
        calls[0].headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer sk-example")
    );
}
