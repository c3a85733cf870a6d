//! A TOML error as a [`ConfigError`]: the key is found at the position the parser reports
//! (its span), never read from the message, whose first backticked text may be a value
//! (`jsn`) or a symbol (`]`). Checks that name an entry inside a value (`security.resolve`)
//! run after parsing, building their key themselves.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// `error`, met parsing `text`, naming the dotted key at its position (`delivery.max_attempts`,
/// `apps[0].nodes[2].type`), with the parser's caret diagram as context.
pub(super) fn config_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let found =
        error.span().and_then(|span| key_at(text, &span).or_else(|| key_on_line(text, span.start)));
    let key = found.unwrap_or_else(|| "config file".into());
    let full = error.to_string();
    // Display is the diagram, then the message: keep the diagram whole, on its own lines.
    let context = full
        .rfind(error.message())
        .map(|at| full[..at].trim_end().to_string())
        .filter(|diagram| !diagram.is_empty());
    ConfigError { key, problem: error.message().trim().replace('\n', "; "), context }
}

/// The key or value at `span` in the document, best effort on a document that does not parse.
fn key_at(text: &str, span: &Range<usize>) -> Option<String> {
    let (document, _) = DeTable::parse_recoverable(text);
    let path = path_in_table(document.get_ref(), span.start)?;
    Some(join(&path))
}

fn path_in_table(table: &DeTable<'_>, at: usize) -> Option<Vec<String>> {
    for (key, value) in table.iter() {
        if covers(&key.span(), at) {
            return Some(vec![key.get_ref().to_string()]);
        }
        // A `[table]`'s span is its header only: look inside whatever the span says.
        let inner =
            path_in_value(value.get_ref(), at).or_else(|| covers(&value.span(), at).then(Vec::new));
        if let Some(mut path) = inner {
            path.insert(0, key.get_ref().to_string());
            return Some(path);
        }
    }
    None
}

fn path_in_value(value: &DeValue<'_>, at: usize) -> Option<Vec<String>> {
    match value {
        DeValue::Table(table) => path_in_table(table, at),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let inner = path_in_value(item.get_ref(), at)
                .or_else(|| covers(&item.span(), at).then(Vec::new));
            inner.map(|mut path| {
                path.insert(0, format!("[{i}]"));
                path
            })
        }),
        _ => None,
    }
}

fn covers(span: &Range<usize>, at: usize) -> bool {
    span.contains(&at) || (span.is_empty() && span.start == at)
}

/// `["apps", "[0]", "id"]` → `apps[0].id`.
fn join(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !out.is_empty() && !segment.starts_with('[') {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

/// For a line the parser could not read at all: the key before its `=`, under the last
/// `[table]` header above it; or the header itself.
fn key_on_line(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| l.trim_start_matches('[').trim_end_matches(']').trim().to_string();
    if line.starts_with('[') {
        return Some(header(line)).filter(|h| !h.is_empty());
    }
    let key = line.split_once('=')?.0.trim().trim_matches('"');
    if key.is_empty() {
        return None;
    }
    let table = before[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('['));
    Some(match table.map(header) {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn key_of(text: &str) -> String {
        Config::from_toml(text).expect_err(text).key
    }

    #[test]
    fn the_key_at_the_error_is_named() {
        let cases = [
            ("listen = 5\n", "listen"),
            ("log_format = \"jsn\"\n", "log_format"),
            ("[delivery]\nmax_atempts = 3\n", "delivery.max_atempts"),
            ("[delivery]\nmax_attempts = \"x\"\n", "delivery.max_attempts"),
            ("[delivry]\nmax_attempts = 3\n", "delivry"),
            ("[security]\nallowed_cidrs = [\"10.0.0.0/8\", 5]\n", "security.allowed_cidrs[1]"),
            ("[store]\nsynchronous = \"sometimes\"\n", "store.synchronous"),
            ("log_format = \"json\n", "log_format"),
            ("[delivery\nmax_attempts = 3\n", "delivery"),
            ("[limits]\nmax_body_bytes = \n", "limits.max_body_bytes"),
        ];
        for (text, key) in cases {
            assert_eq!(key_of(text), key, "{text:?}");
        }
    }

    #[test]
    fn the_caret_diagram_is_kept_apart_from_the_message() {
        let e = Config::from_toml("listen = 5\n").expect_err("a type error");
        let context = e.context.expect("a diagram");
        assert!(context.contains("1 | listen = 5"), "{context}");
        assert!(context.lines().last().is_some_and(|l| l.trim_end().ends_with('^')), "{context}");
        assert!(!e.problem.contains('\n') && !e.problem.contains('^'), "{}", e.problem);
    }
}
