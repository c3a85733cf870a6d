//! Every error code an AutomationLog can carry ([`ErrorCode`]), each with its one-line
//! meaning. This is the only place a code is spelled: everything that writes or compares a
//! code uses the enum, and the README's table is checked against [`ErrorCode::ALL`].

use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`] with each code's string and meaning side by side, and lists every
/// code in [`ErrorCode::ALL`], so a code cannot be added without its meaning or left out.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $meaning:literal;)*) => {
        /// Why a call failed, as stored in its log's `error_code` (none on success).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $(#[doc = $meaning] #[serde(rename = $code)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the README's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The stable string stored and answered (`E_TIMEOUT`, …).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// What it means, in one line (the README table's second column).
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }
        }
    };
}

error_codes! {
    Timeout = "E_TIMEOUT", "no complete answer within the timeout";
    Dns = "E_DNS", "the host name did not resolve";
    Connection = "E_CONNECTION", "refused, reset or closed connection";
    Tls = "E_TLS", "TLS handshake or certificate failure";
    BlockedTarget = "E_BLOCKED_TARGET",
        "the target address is not allowed (SSRF guard), or a redirect pointed at one";
    InvalidResponse = "E_INVALID_RESPONSE", "a response that is not valid HTTP";
    HttpStatus = "E_HTTP_STATUS", "a non-2xx status (including redirects, which are not followed)";
    InvalidRequest = "E_INVALID_REQUEST",
        "the stored URL or headers cannot form a request (bad URL or scheme, invalid header)";
    AutomationDisabled = "E_AUTOMATION_DISABLED",
        "the automation was disabled or deleted when the attempt came due; nothing was sent";
    Interrupted = "E_INTERRUPTED",
        "the relay stopped (crash or shutdown) during the call; recorded at the next start";
    PayloadMissing = "E_PAYLOAD_MISSING",
        "the message's payload is no longer stored (content retention removed it); nothing was sent, and the delivery ended `failed`";
    ContentExpunged = "E_CONTENT_EXPUNGED",
        "the message's content was expunged (`DELETE /v1/messages/{id}/content`); nothing was sent, and the delivery ended `failed`";
}

impl ErrorCode {
    /// The code spelled `s`, if there is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|code| code.as_str() == s)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
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

    /// The README's "Delivery semantics" section has exactly one table row
    /// `` | `E_X` | meaning | `` for every code, its meaning as [`ErrorCode::meaning`] says,
    /// and the README names no code that does not exist.
    #[test]
    fn readme_lists_exactly_the_codes_the_relay_writes() {
        let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Delivery semantics"))
            .expect("a Delivery semantics section");
        for code in ErrorCode::ALL {
            let row = format!("| `{code}` |");
            let rows: Vec<&str> =
                section.lines().filter(|l| l.trim_start().starts_with(&row)).collect();
            let [line] = rows[..] else {
                panic!("README's Delivery semantics table has {} rows for {code}", rows.len())
            };
            let meaning = line.trim().trim_start_matches(&row).trim_end_matches('|').trim();
            assert_eq!(meaning, code.meaning(), "README's meaning of {code}");
        }
        for token in code_tokens(&readme) {
            assert!(
                ErrorCode::parse(token).is_some(),
                "README names {token}, which the relay never writes"
            );
        }
    }

    /// The strings round-trip, and serde writes and reads a code as its string.
    #[test]
    fn codes_are_stable_strings() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            let json = serde_json::to_string(code).expect("serialize");
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).expect("deserialize"), *code);
        }
        assert_eq!(ErrorCode::parse("E_NOPE"), None);
    }

    /// No other source file spells a code, in a string literal or outside comments: a code
    /// written elsewhere could be missing from [`ErrorCode`] and so from the README.
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
                    // Comments may name a code; code (up to a line's `//`) may not.
                    let in_code = text
                        .lines()
                        .any(|l| !code_tokens(l.split("//").next().unwrap_or("")).is_empty());
                    if text.contains("\"E_") || in_code {
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
