//! Start-up checks of an app's id, input form and templates: definitions that read and
//! compile, yet could not be addressed or would fail every run that uses them.

use std::collections::HashSet;

use serde_json::Value;

use super::app::{AppDefinition, InputKind};
use super::error::{AppError, AppProblem};

/// Longest app id, as a `processor_id` (an app's id is the processor id of its completions).
const MAX_APP_ID_BYTES: usize = 256;

/// Template tags that need a loader; templates have none, so such a template compiles
/// but fails whenever it is rendered.
const LOADER_TAGS: [&str; 4] = ["include", "import", "from", "extends"];

/// An app id is ASCII letters, digits, `-` and `_`: it is a path segment of the
/// processor-scoped routes (a `/` could not be addressed there) and a segment of the dotted
/// keys that name an app's fields in errors (so no `.`).
pub(super) fn check_app_id(id: &str) -> Result<(), AppError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !id.is_empty() && (id.len() > MAX_APP_ID_BYTES || !id.chars().all(allowed)) {
        return Err(AppError {
            key: format!("apps.{id}.id"),
            problem: AppProblem::AppIdForm(MAX_APP_ID_BYTES),
        });
    }
    Ok(())
}

/// Each input has a variable of its own, a usable `max_length`, and a default the run
/// would accept (a select's among its options, a text within its length).
pub(super) fn check_inputs(app: &AppDefinition) -> Result<(), AppError> {
    let mut seen = HashSet::new();
    for (index, field) in app.inputs.iter().enumerate() {
        let at = |name: &str, problem: String| AppError {
            key: if field.variable.is_empty() {
                format!("apps.{}.inputs[{index}].{name}", app.id)
            } else {
                format!("apps.{}.inputs.{}.{name}", app.id, field.variable)
            },
            problem: AppProblem::Input(problem),
        };
        if field.variable.is_empty() {
            return Err(at("variable", "must not be empty".into()));
        }
        if !seen.insert(field.variable.as_str()) {
            return Err(at("variable", "is used by another input".into()));
        }
        if field.kind == InputKind::Select && field.options.is_empty() {
            return Err(AppError {
                key: format!("apps.{}", app.id),
                problem: AppProblem::SelectWithoutOptions(field.variable.clone()),
            });
        }
        if field.max_length == Some(0) {
            return Err(at("max_length", "must be at least 1 (omit it for no limit)".into()));
        }
        let text = matches!(field.kind, InputKind::TextInput | InputKind::Paragraph);
        match &field.default {
            Some(Value::String(d))
                if field.kind == InputKind::Select && !field.options.contains(d) =>
            {
                let problem = format!("`{d}` is not one of the options {:?}", field.options);
                return Err(at("default", problem));
            }
            Some(Value::String(d))
                if text && field.max_length.is_some_and(|max| d.chars().count() > max) =>
            {
                return Err(at("default", "is longer than max_length".into()));
            }
            Some(Value::String(_)) => {}
            Some(d) if field.kind == InputKind::Select || text => {
                return Err(at("default", format!("must be a string, not {d}")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a template using a tag that needs a loader ([`LOADER_TAGS`]). Tags inside
/// comments and `raw` blocks are text, and skipped.
pub(super) fn check_template_tags(template: &str) -> Result<(), AppProblem> {
    let mut rest = template;
    while let Some(open) = rest.find(['{']) {
        let after = &rest[open..];
        if after.starts_with("{#") {
            let Some(close) = after.find("#}") else { return Ok(()) };
            rest = &after[close + 2..];
            continue;
        }
        let Some(tag) = after.strip_prefix("{%") else {
            rest = &after[1..];
            continue;
        };
        let tag = tag.trim_start_matches(['-', '+']).trim_start();
        let word: String =
            tag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if LOADER_TAGS.contains(&word.as_str()) {
            return Err(AppProblem::TemplateTag(word));
        }
        rest = if word == "raw" {
            match tag.find("endraw") {
                Some(end) => &tag[end..],
                None => return Ok(()),
            }
        } else {
            tag
        };
    }
    Ok(())
}
