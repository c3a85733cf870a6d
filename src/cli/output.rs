//! What the commands print: tables (comfy-table), JSON, and the cells they are made of.

use std::io::Write;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

use super::CliError;

/// Prints one line on stdout; a closed pipe is an error rather than a panic.
pub fn line(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| CliError::Output(e.to_string()))
}

/// Prints `value` as indented JSON.
pub fn pretty(value: &Value) -> Result<(), CliError> {
    line(&serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()))
}

/// Prints `value` as it came, on one line.
pub fn raw(value: &Value) -> Result<(), CliError> {
    line(&value.to_string())
}

/// A cell: a string as is but for its control characters, null as `-`, anything else as
/// its JSON (which escapes them).
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => printable(s),
        other => other.to_string(),
    }
}

/// `text` with each control character shown escaped (`\u{1b}`): a name any API caller
/// wrote must not recolour, retitle or otherwise drive the terminal of whoever lists it.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// The value at a `/`-separated path of `item` (`external_request_log/status_code`).
pub fn at<'a>(item: &'a Value, path: &str) -> &'a Value {
    item.pointer(&format!("/{path}")).unwrap_or(&Value::Null)
}

/// Prints the `data` of a list answer as a table of `columns` (header, path), or the raw
/// answer with `json`; says so when the list is empty, and how to get the next page.
pub fn list(answer: &Value, columns: &[(&str, &str)], json: bool) -> Result<(), CliError> {
    if json {
        return raw(answer);
    }
    let items = answer.get("data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return line("(none)");
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(columns.iter().map(|(header, _)| *header));
    for item in items {
        table.add_row(columns.iter().map(|(_, path)| cell(at(item, path))));
    }
    line(&table.to_string())?;
    if let Some(after) = at(answer, "list_metadata/after").as_str() {
        line(&format!("next page: --after {after}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::cell;

    #[test]
    fn a_cell_shows_control_characters_escaped_and_other_text_as_is() {
        assert_eq!(cell(&json!("esc\u{1b}[31mred\u{7}")), "esc\\u{1b}[31mred\\u{7}");
        assert_eq!(cell(&json!("tab\there")), "tab\\there");
        assert_eq!(cell(&json!("plain ünïcode")), "plain ünïcode");
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(200)), "200");
    }
}
