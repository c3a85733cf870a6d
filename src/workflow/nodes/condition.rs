//! The `if-else` node: conditions over pool values, combined with `and`/`or`; the run
//! follows the `true` or `false` edge.

use serde::Deserialize;
use serde_json::Value;

use crate::workflow::error::NodeDefinitionError;
use crate::workflow::variables::{as_text, Pool};

/// Settings of an if-else node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IfElseNode {
    /// `and` (default) or `or`.
    #[serde(default = "and")]
    pub logical_operator: String,
    /// The conditions.
    pub conditions: Vec<Condition>,
}

fn and() -> String {
    "and".into()
}

/// One comparison, as in Dify.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The value compared: `[node_id, output]`.
    pub variable_selector: Vec<String>,
    /// `contains`, `not contains`, `start with`, `end with`, `is`, `is not`, `empty`,
    /// `not empty`, `=`, `≠`, `>`, `<`, `≥`, `≤` (also `!=`, `>=`, `<=`).
    pub comparison_operator: String,
    /// What it is compared with (absent for `empty` / `not empty`).
    #[serde(default)]
    pub value: Option<Value>,
}

const OPERATORS: &[&str] = &[
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "empty",
    "not empty",
    "=",
    "≠",
    "!=",
    ">",
    "<",
    "≥",
    ">=",
    "≤",
    "<=",
];

impl IfElseNode {
    /// Rejects unknown operators and combinators.
    pub fn validate(&self) -> Result<(), NodeDefinitionError> {
        if !matches!(self.logical_operator.as_str(), "and" | "or") {
            return Err(NodeDefinitionError::LogicalOperator(self.logical_operator.clone()));
        }
        if self.conditions.is_empty() {
            return Err(NodeDefinitionError::NoConditions);
        }
        for c in &self.conditions {
            if !OPERATORS.contains(&c.comparison_operator.as_str()) {
                return Err(NodeDefinitionError::UnknownOperator(c.comparison_operator.clone()));
            }
        }
        Ok(())
    }

    /// Which branch the run takes.
    pub fn evaluate(&self, pool: &Pool) -> bool {
        let mut results = self.conditions.iter().map(|c| c.holds(pool));
        if self.logical_operator == "or" {
            results.any(|r| r)
        } else {
            results.all(|r| r)
        }
    }
}

impl Condition {
    fn holds(&self, pool: &Pool) -> bool {
        let actual = pool.get(&self.variable_selector).cloned().unwrap_or(Value::Null);
        let expected = self.value.clone().unwrap_or(Value::Null);
        let text = as_text(&actual);
        let want = as_text(&expected);
        let number = |v: &Value| v.as_f64().or_else(|| as_text(v).trim().parse().ok());
        let compare = |f: fn(f64, f64) -> bool| match (number(&actual), number(&expected)) {
            (Some(a), Some(b)) => f(a, b),
            _ => false,
        };
        let empty = match &actual {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        let contains = match &actual {
            Value::Array(items) => items.iter().any(|i| as_text(i) == want),
            _ => text.contains(&want),
        };
        match self.comparison_operator.as_str() {
            "contains" => contains,
            "not contains" => !contains,
            "start with" => text.starts_with(&want),
            "end with" => text.ends_with(&want),
            "is" => text == want,
            "is not" => text != want,
            "empty" => empty,
            "not empty" => !empty,
            "=" => compare(|a, b| a == b),
            "≠" | "!=" => compare(|a, b| a != b),
            ">" => compare(|a, b| a > b),
            "<" => compare(|a, b| a < b),
            "≥" | ">=" => compare(|a, b| a >= b),
            "≤" | "<=" => compare(|a, b| a <= b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(op: &str, value: Value, logical: &str) -> IfElseNode {
        IfElseNode {
            logical_operator: logical.into(),
            conditions: vec![Condition {
                variable_selector: vec!["start".into(), "x".into()],
                comparison_operator: op.into(),
                value: Some(value),
            }],
        }
    }

    #[test]
    fn operators_compare_text_numbers_and_emptiness() {
        let mut pool = Pool::default();
        pool.set("start", json!({"x": "hello world"}).as_object().cloned().unwrap_or_default());
        assert!(node("contains", json!("world"), "and").evaluate(&pool));
        assert!(!node("start with", json!("world"), "and").evaluate(&pool));
        assert!(node("not empty", Value::Null, "or").evaluate(&pool));
        pool.set("start", json!({"x": 7}).as_object().cloned().unwrap_or_default());
        assert!(node(">", json!("5"), "and").evaluate(&pool));
        assert!(!node("≤", json!(6), "and").evaluate(&pool));
        assert!(node("bogus", json!(1), "and").validate().is_err());
    }
}
