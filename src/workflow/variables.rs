//! The variable pool of a run: each finished node's outputs, the inputs (as `start`), and
//! `sys` values; and Dify's `{{#node_id.var#}}` references inside strings.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Outputs by node id.
#[derive(Debug, Default, Clone)]
pub struct Pool {
    nodes: HashMap<String, Map<String, Value>>,
}

impl Pool {
    /// Records a node's outputs.
    pub fn set(&mut self, node: &str, outputs: Map<String, Value>) {
        self.nodes.insert(node.to_string(), outputs);
    }

    /// The value at `[node, key, nested…]`, if any.
    pub fn get(&self, selector: &[String]) -> Option<&Value> {
        let (node, rest) = selector.split_first()?;
        let (key, path) = rest.split_first()?;
        let mut value = self.nodes.get(node)?.get(key)?;
        for part in path {
            value = match value {
                Value::Object(m) => m.get(part)?,
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// Replaces every `{{#node.var#}}` in `text` with that value (strings as they are, other
    /// values as JSON, missing ones as empty).
    pub fn substitute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{#") {
            let Some(len) = rest[start + 3..].find("#}}") else { break };
            out.push_str(&rest[..start]);
            let reference = &rest[start + 3..start + 3 + len];
            let selector: Vec<String> = reference.split('.').map(str::to_string).collect();
            if let Some(value) = self.get(&selector) {
                out.push_str(&as_text(value));
            }
            rest = &rest[start + 3 + len + 3..];
        }
        out.push_str(rest);
        out
    }
}

/// A value as text: strings unquoted, the rest as JSON.
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_nested_and_missing() {
        let mut pool = Pool::default();
        pool.set(
            "start",
            json!({"name": "Ada", "n": 3, "obj": {"a": [1, 2]}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(pool.substitute("Hi {{#start.name#}} x{{#start.n#}}"), "Hi Ada x3");
        assert_eq!(pool.substitute("{{#start.obj.a.1#}}|{{#nope.x#}}|{{#start"), "2||{{#start");
    }
}
