//! Which header values are secrets, and how they are shown once stored. One rule for every
//! place a header value is stored or shown: automations' `webhook_headers`, the request and
//! response headers of logs (redacted before they are stored, and again when shown, so rows
//! written under an older rule are covered too), and automation snapshots. The values
//! hookrelay sends are never touched: only what it records and shows.
//!
//! A header is secret when its name, compared case-insensitively, is in [`SECRET_NAMES`],
//! contains one of [`SECRET_WORDS`], or is listed in `security.redact_headers`. The
//! configuration only adds names: none of the built-in ones can be shown again, so a
//! configuration mistake cannot reveal a credential.
//!
//! `webhook-signature` is the one exception to the built-in rule, and is shown (unless
//! `security.redact_headers` names it). hookrelay computes it for each
//! call (the Standard Webhooks HMAC of id, timestamp and body); users cannot set it (it is a
//! reserved header), it reveals nothing of the signing secret, cannot sign any other message,
//! and is what one compares when debugging a receiver's signature check. A static
//! `X-Hub-Signature` an automation carries is different: a fixed value the receiver trusts,
//! so a credential, and redacted.

use serde_json::{Map, Value};

/// Shown instead of a secret header value.
pub const REDACTED: &str = "[REDACTED]";

/// Header names that are secret by definition (matched whole).
pub const SECRET_NAMES: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "set-cookie", "dpop", "x-honeycomb-team"];

/// Words that make any header name holding them secret: `X-Api-Key`, `X-Auth-Token`,
/// `X-Hub-Signature`, `X-Credentials`, `X-Passwd`, `X-Session-Id`, `X-Private-Token`, …
pub const SECRET_WORDS: &[&str] = &[
    "auth",
    "key",
    "token",
    "secret",
    "passw",
    "pwd",
    "signature",
    "credential",
    "session",
    "cookie",
    "private",
    "jwt",
    "hmac",
];

/// hookrelay's own per-call signature, shown (see the module doc).
pub const SHOWN_SIGNATURE: &str = "webhook-signature";

/// The redaction rule: the built-in names and words plus the operator's extra names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRedaction {
    /// `security.redact_headers`, lowercased.
    extra_names: Vec<String>,
}

impl HeaderRedaction {
    /// The built-in rule plus `extra_names` (whole names, any case).
    pub fn with_names(extra_names: impl IntoIterator<Item = String>) -> Self {
        Self { extra_names: extra_names.into_iter().map(|n| n.to_ascii_lowercase()).collect() }
    }

    /// Whether the value of header `name` must never be stored or shown.
    pub fn is_secret(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        let built_in = name != SHOWN_SIGNATURE
            && (SECRET_NAMES.contains(&name.as_str())
                || SECRET_WORDS.iter().any(|word| name.contains(word)));
        built_in || self.extra_names.contains(&name)
    }

    /// The value to record or show for header `name`.
    pub fn shown<'a>(&self, name: &str, value: &'a str) -> &'a str {
        if self.is_secret(name) {
            REDACTED
        } else {
            value
        }
    }

    /// Replaces the secret values of a headers object in place.
    pub fn redact_object(&self, headers: &mut Map<String, Value>) {
        for (name, value) in headers.iter_mut() {
            if self.is_secret(name) {
                *value = Value::String(REDACTED.into());
            }
        }
    }

    /// A headers object as logs store it (JSON text), secret values replaced. Text that is
    /// not a JSON object is not headers; it is stored as `{}`.
    pub fn redact_json(&self, headers: &str) -> String {
        let mut object = match serde_json::from_str::<Value>(headers) {
            Ok(Value::Object(object)) => object,
            _ => Map::new(),
        };
        self.redact_object(&mut object);
        Value::Object(object).to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn built_in_names_and_words_are_secret_and_ordinary_headers_are_not() {
        let rule = HeaderRedaction::default();
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "Set-Cookie",
            "X-Api-Key",
            "x-auth-token",
            "client_secret",
            "X-Hub-Signature",
            "X-Hub-Signature-256",
            "X-Credentials",
            "X-Passwd",
            "X-Password",
            "X-Session-Id",
            "X-Private-Token",
            "X-Goog-Iap-Jwt-Assertion",
            "X-Shopify-Hmac-Sha256",
            "DPoP",
        ] {
            assert!(rule.is_secret(name), "{name} should be secret");
        }
        for name in ["content-type", "webhook-id", "webhook-timestamp", "user-agent", "x-plain"] {
            assert!(!rule.is_secret(name), "{name} should be shown");
        }
    }

    #[test]
    fn hookrelays_own_webhook_signature_is_shown_unless_configured() {
        let rule = HeaderRedaction::default();
        assert!(!rule.is_secret("webhook-signature"));
        assert!(!rule.is_secret("Webhook-Signature"));
        assert_eq!(rule.shown("webhook-signature", "v1,abc"), "v1,abc");
        assert!(rule.is_secret("x-webhook-signature"), "only the exact name is exempt");
        let configured = HeaderRedaction::with_names(["Webhook-Signature".to_string()]);
        assert!(configured.is_secret("webhook-signature"), "an operator may hide it too");
    }

    #[test]
    fn configured_names_are_added_whole_and_in_any_case() {
        let rule = HeaderRedaction::with_names(["X-Tenant".to_string()]);
        assert!(rule.is_secret("x-tenant") && rule.is_secret("X-TENANT"));
        assert!(!rule.is_secret("x-tenant-name"), "configured names match whole");
        assert!(rule.is_secret("x-api-key"), "the built-in rule still applies");
        assert!(!HeaderRedaction::default().is_secret("x-tenant"));
    }

    #[test]
    fn stored_headers_objects_are_redacted() {
        let rule = HeaderRedaction::default();
        let stored = json!({"set-cookie": "sid=1", "x-auth-token": "t", "date": "now"});
        let redacted: Value =
            serde_json::from_str(&rule.redact_json(&stored.to_string())).expect("json");
        assert_eq!(
            redacted,
            json!({"set-cookie": REDACTED, "x-auth-token": REDACTED, "date": "now"})
        );
        assert_eq!(rule.redact_json("not json"), "{}");
    }
}
