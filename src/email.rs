//! Which user strings count as email addresses.

/// A conservative check matching what the SDK's `EmailStr` accepts: a local part, and a
/// dotted domain with an alphabetic top-level label (`x@localhost` is refused there).
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    let tld = domain.rsplit('.').next().unwrap_or("");
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !s.contains(char::is_whitespace)
        && domain.split('.').all(|label| !label.is_empty())
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_those_the_sdk_accepts() {
        assert!(looks_like_email("john.doe@example.com"));
        for bad in
            ["x@localhost", "x@test", "no-at", "@example.com", "a b@example.com", "x@example.c0m"]
        {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }
}
