//! Every error code an AutomationLog can carry, each with its one-line meaning. This is the
//! only place a code is spelled: the README's table is checked against [`ALL`] by a test.

/// Declares each code as a constant and lists them all, with their doc lines, in [`ALL`], so
/// a code cannot be added without its meaning or left out of the list.
macro_rules! error_codes {
    ($(#[doc = $meaning:literal] $name:ident = $code:literal;)*) => {
        $(#[doc = $meaning] pub const $name: &str = $code;)*

        /// Every code, with its meaning.
        pub const ALL: &[(&str, &str)] = &[$(($code, $meaning.trim_ascii())),*];
    };
}

error_codes! {
    /// No complete answer within the timeout.
    TIMEOUT = "E_TIMEOUT";
    /// The host name did not resolve.
    DNS = "E_DNS";
    /// Refused, reset or closed connection.
    CONNECTION = "E_CONNECTION";
    /// TLS handshake or certificate failure.
    TLS = "E_TLS";
    /// The target address is not allowed (SSRF guard), or a redirect pointed at one.
    BLOCKED_TARGET = "E_BLOCKED_TARGET";
    /// A response that is not valid HTTP.
    INVALID_RESPONSE = "E_INVALID_RESPONSE";
    /// A non-2xx status (including redirects, which are not followed).
    HTTP_STATUS = "E_HTTP_STATUS";
    /// The stored URL or headers cannot form a request (bad URL or scheme, invalid header).
    INVALID_REQUEST = "E_INVALID_REQUEST";
    /// The automation was disabled or deleted when the attempt came due; nothing was sent.
    AUTOMATION_DISABLED = "E_AUTOMATION_DISABLED";
    /// The relay stopped (crash or shutdown) during the call; recorded at the next start.
    INTERRUPTED = "E_INTERRUPTED";
}

#[cfg(test)]
mod tests {
    use super::ALL;
    use std::path::{Path, PathBuf};

    fn manifest_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every `E_…` token in `text`.
    fn code_tokens(text: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find("E_") {
            let tail = &rest[at..];
            let end = tail[2..]
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .map_or(tail.len(), |n| n + 2);
            let preceded_by_word =
                rest[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
            if end > 2 && !preceded_by_word {
                found.push(&tail[..end]);
            }
            rest = &tail[end.max(2)..];
        }
        found
    }

    /// The README's "Delivery semantics" section has a table row `` | `E_X` | meaning | ``
    /// for every code, and names no code that does not exist anywhere.
    #[test]
    fn readme_lists_exactly_the_codes_the_relay_writes() {
        let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Delivery semantics"))
            .expect("a Delivery semantics section");
        for (code, _) in ALL {
            let row = format!("| `{code}` |");
            assert!(
                section.lines().any(|l| l.trim_start().starts_with(&row)),
                "README's Delivery semantics table lacks a row for {code}"
            );
        }
        let known: Vec<&str> = ALL.iter().map(|(code, _)| *code).collect();
        for token in code_tokens(&readme) {
            assert!(known.contains(&token), "README names {token}, which the relay never writes");
        }
    }

    /// No other source file spells a code: a code written elsewhere could be missing from
    /// [`ALL`] and so from the README.
    #[test]
    fn codes_are_spelled_only_here() {
        let mut dirs = vec![manifest_dir().join("src")];
        let mut offenders = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path: PathBuf = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("outbound/codes.rs")
                {
                    let text = std::fs::read_to_string(&path).expect("read source");
                    if text.contains("\"E_") {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "error codes spelled outside outbound/codes.rs: {offenders:?}"
        );
    }

    #[test]
    fn tokens_are_whole_codes() {
        assert_eq!(
            code_tokens("`E_DNS`, E_HTTP_STATUS; HOOKRELAY_E_X E_"),
            ["E_DNS", "E_HTTP_STATUS"]
        );
    }
}
