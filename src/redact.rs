//! Which header values are secrets, and how they are shown once stored.

/// Shown instead of a secret header value.
pub const REDACTED: &str = "[REDACTED]";

/// Whether a header's value must never be stored or shown: credentials, cookies, and
/// anything whose name says key, token, secret or password.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "authorization" | "proxy-authorization" | "cookie" | "set-cookie")
        || ["key", "token", "secret", "password", "auth", "signature-key"]
            .iter()
            .any(|w| name.contains(w))
}

/// The value to record for header `name`.
pub fn shown<'a>(name: &str, value: &'a str) -> &'a str {
    if is_sensitive(name) {
        REDACTED
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        for name in ["Authorization", "X-Api-Key", "x-auth-token", "Cookie", "client_secret"] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["content-type", "webhook-id", "webhook-signature", "user-agent"] {
            assert!(!is_sensitive(name), "{name}");
        }
        assert_eq!(shown("X-Api-Key", "abc"), REDACTED);
    }
}
