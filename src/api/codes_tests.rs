use std::path::{Path, PathBuf};

use super::*;

const ALL: &[ApiErrorCode] = ApiErrorCode::ALL;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rows of the README's API error-code table: `(code, status)` of each line that
/// starts with a backquoted code.
fn readme_rows() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("API overview"))
        .expect("an API overview section")
        .to_string();
    let mut lines = section.lines().skip_while(|l| !l.starts_with("| code | status |"));
    assert!(lines.next().is_some(), "API overview has no `| code | status | meaning |` table");
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells.get(1).unwrap_or(&"").to_string())
        })
        .collect()
}

#[test]
fn wire_strings_are_unique_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for code in ALL {
        let wire = code.as_str();
        assert!(seen.insert(wire), "{wire} is in the registry twice");
        assert!(wire.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{wire}");
        assert!(code.status().is_client_error() || code.status().is_server_error(), "{wire}");
        assert!(!code.meaning().is_empty(), "{wire}");
    }
}

/// 422 means one thing, and 409 is never a bare `conflict`: each refusal names its cause.
#[test]
fn unprocessable_has_one_meaning_and_conflicts_their_own_codes() {
    let unprocessable: Vec<&str> =
        ALL.iter().filter(|c| c.status().as_u16() == 422).map(|c| c.as_str()).collect();
    assert_eq!(unprocessable, ["limit_exceeded"]);
    let conflicts = ALL.iter().filter(|c| c.status().as_u16() == 409).count();
    assert!(conflicts >= 3, "{conflicts}");
    assert!(ALL.iter().all(|c| c.as_str() != "conflict"));
}

#[test]
fn readme_lists_exactly_the_api_codes() {
    let rows = readme_rows();
    for code in ALL {
        let status = code.status().as_u16().to_string();
        assert!(
            rows.iter().any(|(c, s)| c == code.as_str() && *s == status),
            "README's API error-code table lacks the row `{}` | {status}",
            code.as_str()
        );
    }
    for (code, status) in &rows {
        assert!(
            ALL.iter().any(|c| c.as_str() == code && c.status().as_u16().to_string() == *status),
            "README lists {code} ({status}), which the registry does not have"
        );
    }
    assert_eq!(rows.len(), ALL.len(), "a code is listed twice: {rows:?}");
}

/// The rust files under `dir`, this registry excepted.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path.ends_with("api/codes.rs")
            && !path.ends_with("api/codes_tests.rs")
        {
            found.push(path);
        }
    }
}

/// Literals that are not error codes but share a code's spelling: a replay job's `ended`
/// reasons (`GET …/replay-missing/{job_id}`) say why the job stopped, in the same words.
const NOT_CODES: &[(&str, &str)] =
    &[("store/replay.rs", "automation_disabled"), ("store/replay.rs", "automation_deleted")];

/// No other source file spells a code, or writes a JSON `code` from a literal: a code
/// written elsewhere could be missing from the registry and the README, or be answered with
/// another status.
#[test]
fn codes_are_spelled_only_here() {
    let mut files = Vec::new();
    sources(&manifest_dir().join("src"), &mut files);
    let mut offenders = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read source");
        for code in ALL {
            let excepted =
                NOT_CODES.iter().any(|(file, c)| path.ends_with(file) && *c == code.as_str());
            if !excepted && text.contains(&format!("\"{}\"", code.as_str())) {
                offenders.push(format!("{}: {}", path.display(), code.as_str()));
            }
        }
        if text.contains("\"code\": \"") || text.contains("code: \"") {
            offenders.push(format!("{}: a literal code", path.display()));
        }
    }
    assert!(offenders.is_empty(), "API error codes spelled outside api/codes.rs: {offenders:?}");
}

#[test]
fn framework_answers_map_into_the_registry() {
    use axum::http::StatusCode as S;
    for (status, code) in [
        (S::BAD_REQUEST, "invalid_param"),
        (S::UNPROCESSABLE_ENTITY, "invalid_param"),
        (S::CONFLICT, "invalid_param"),
        (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (S::NOT_FOUND, "not_found"),
        (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (S::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
        (S::GATEWAY_TIMEOUT, "timeout"),
        (S::BAD_GATEWAY, "internal_error"),
    ] {
        assert_eq!(ApiErrorCode::for_status(status).as_str(), code, "{status}");
    }
}
