//! Workflow apps for relays under test, read from the files that ship them.

/// The demo app's key, as `config.example.toml` lists it.
pub const DEMO_KEY: &str = "app-demo-key-0123456789";

/// The `[[apps]]` table of the greeting demo (id `demo`, inputs `name` and `tone`, output
/// `greeting`, uploads enabled), read from `config.example.toml` so the tests run the app
/// the file ships. [`crate::Relay::start`] writes a config with no apps; append this.
pub fn demo_app() -> String {
    example_app("demo")
}

/// The `[[apps]]` table of app `id` of `config.example.toml`, as TOML to append to a config.
pub fn example_app(id: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.example.toml");
    let text = std::fs::read_to_string(path).expect("config.example.toml");
    let mut config: toml::Table = toml::from_str(&text).expect("config.example.toml is TOML");
    let apps = config.remove("apps").expect("config.example.toml lists apps");
    let app = apps
        .as_array()
        .expect("apps is an array of tables")
        .iter()
        .find(|app| app.get("id").and_then(toml::Value::as_str) == Some(id))
        .unwrap_or_else(|| panic!("config.example.toml has no app {id}"))
        .clone();
    let mut only = toml::Table::new();
    only.insert("apps".into(), toml::Value::Array(vec![app]));
    format!("\n{}", toml::to_string(&only).expect("an app serializes"))
}

/// The `[[apps]]` table of the smallest app: id `id`, key `key`, a `start` node joined to an
/// `end` node with no outputs (for tests that need an app but not what it computes).
pub fn start_to_end_app(id: &str, key: &str) -> String {
    format!(
        r#"
[[apps]]
id = "{id}"
name = "{id}"
api_keys = ["{key}"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "end"
type = "end"
outputs = []
[[apps.edges]]
source = "start"
target = "end"
"#
    )
}
