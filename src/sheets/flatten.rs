//! Turns a sink body into a row: the object to write (`completion.choices[0].message.parsed`
//! when present, else the body itself) flattened to dotted column names, with the
//! per-field likelihoods of `completion.likelihoods` when asked for.

use serde_json::{Map, Value};

use crate::store::NewRow;

/// Why a body yields no row.
#[derive(Debug, PartialEq, Eq)]
pub enum RowError {
    /// The body is not a JSON object.
    NotAnObject,
    /// `completion.choices[0].message.parsed` is present but not an object.
    ParsedNotAnObject,
    /// A value is longer than the cell limit.
    CellTooLong {
        /// The column.
        column: String,
        /// The limit, characters.
        limit: usize,
    },
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowError::NotAnObject => write!(f, "the body must be a JSON object"),
            RowError::ParsedNotAnObject => {
                write!(f, "completion.choices[0].message.parsed must be an object")
            }
            RowError::CellTooLong { column, limit } => {
                write!(f, "the value of `{column}` is longer than {limit} characters")
            }
        }
    }
}

/// The row of `body`, with likelihoods when `with_likelihoods`.
pub fn row_of(
    body: &Value,
    with_likelihoods: bool,
    max_cell_chars: usize,
) -> Result<NewRow, RowError> {
    let object = body.as_object().ok_or(RowError::NotAnObject)?;
    let completion = object.get("completion");
    let source = match completion.and_then(|c| c.pointer("/choices/0/message/parsed")) {
        Some(Value::Object(parsed)) => parsed,
        Some(Value::Null) | None => object,
        Some(_) => return Err(RowError::ParsedNotAnObject),
    };
    let mut flat = Vec::new();
    flatten(source, "", &mut flat);
    let mut likelihoods = Vec::new();
    if with_likelihoods {
        if let Some(Value::Object(l)) = completion.and_then(|c| c.get("likelihoods")) {
            flatten(l, "", &mut likelihoods);
        }
    }
    let mut cells = Vec::with_capacity(flat.len());
    for (column, value) in flat {
        if value.chars().count() > max_cell_chars {
            return Err(RowError::CellTooLong { column, limit: max_cell_chars });
        }
        let likelihood = likelihoods
            .iter()
            .find(|(k, _)| *k == column)
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .filter(|p| (0.0..=1.0).contains(p));
        cells.push((column, value, likelihood));
    }
    Ok(NewRow { cells })
}

/// Nested objects become `parent.child` columns; arrays and other values become one cell.
fn flatten(object: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, String)>) {
    for (key, value) in object {
        let column = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            Value::Object(inner) if !inner.is_empty() => flatten(inner, &column, out),
            other => out.push((column, cell_text(other))),
        }
    }
}

/// A cell's text: strings as they are, booleans as Sheets shows them, null as empty, the
/// rest as JSON.
fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(true) => "TRUE".into(),
        Value::Bool(false) => "FALSE".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns(row: &NewRow) -> Vec<(&str, &str, Option<f64>)> {
        row.cells.iter().map(|(c, v, l)| (c.as_str(), v.as_str(), *l)).collect()
    }

    #[test]
    fn parsed_is_flattened_with_likelihoods() {
        let body = json!({"completion": {"choices": [{"message": {"parsed": {
            "name": "Ada", "address": {"city": "Paris", "zip": 75001}, "tags": ["a", "b"], "ok": true, "none": null
        }}}], "likelihoods": {"name": 0.95, "address": {"city": 0.5}}}});
        let row = row_of(&body, true, 100).expect("row");
        assert_eq!(
            columns(&row),
            vec![
                ("name", "Ada", Some(0.95)),
                ("address.city", "Paris", Some(0.5)),
                ("address.zip", "75001", None),
                ("tags", "[\"a\",\"b\"]", None),
                ("ok", "TRUE", None),
                ("none", "", None),
            ]
        );
        assert!(row_of(&body, false, 100).expect("row").cells.iter().all(|c| c.2.is_none()));
    }

    #[test]
    fn plain_objects_and_bad_bodies() {
        assert_eq!(
            columns(&row_of(&json!({"a": 1}), true, 100).expect("row")),
            vec![("a", "1", None)]
        );
        assert_eq!(row_of(&json!([1]), false, 100).err(), Some(RowError::NotAnObject));
        let bad = json!({"completion": {"choices": [{"message": {"parsed": "text"}}]}});
        assert_eq!(row_of(&bad, false, 100).err(), Some(RowError::ParsedNotAnObject));
        let long = json!({"a": "x".repeat(11)});
        assert!(matches!(row_of(&long, false, 10), Err(RowError::CellTooLong { .. })));
    }
}
