//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`
//! with the key being the base64 part of a `whsec_…` secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A fresh `whsec_` secret with 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The HMAC key bytes of a `whsec_…` secret (padding optional, as the reference library allows).
fn key_bytes(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix(PREFIX).unwrap_or(secret).trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64).ok().filter(|k| !k.is_empty())
}

/// Whether `secret` is a usable `whsec_` secret: the prefix, then base64 of at least 16 bytes.
pub fn is_valid_secret(secret: &str) -> bool {
    secret.starts_with(PREFIX) && key_bytes(secret).is_some_and(|k| k.len() >= 16)
}

/// `v1,<signature>` of `body` for one secret, or `None` for an undecodable secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = key_bytes(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` value: one `v1,` entry per secret, space-separated, so a receiver
/// holding either the new or the old secret accepts the call during a rotation.
pub fn signature_header(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().filter_map(|s| sign(s, msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// What the key for the relay's own sink is derived over, before the spreadsheet id.
const SINK_KEY_CONTEXT: &[u8] = b"hookrelay sheets sink ";

/// The `whsec_` secret calls to this relay's own sink for `spreadsheet_id` are signed with:
/// HMAC-SHA256 keyed with `secret`'s key bytes over `"hookrelay sheets sink " + id`. A
/// spreadsheet linked to a signer verifies only this one, so a call the automation sent
/// anywhere else (signed with its plain secret) never opens the sheet, and one signed for
/// the sink never leaves the relay. `None` for an undecodable secret.
pub fn sink_secret(secret: &str, spreadsheet_id: &str) -> Option<String> {
    let key = key_bytes(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(SINK_KEY_CONTEXT);
    mac.update(spreadsheet_id.as_bytes());
    Some(format!("{PREFIX}{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// How far a signed timestamp may be from now (the reference libraries' tolerance).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Checks a Standard Webhooks signature: the timestamp within ±5 minutes of `now_secs`, and
/// any `v1,` entry of `signature` matching (compared in constant time). The error says why.
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), &'static str> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| "webhook-timestamp is not an integer")?;
    if now_secs - ts > TOLERANCE_SECS {
        return Err("webhook-timestamp is too old");
    }
    if ts - now_secs > TOLERANCE_SECS {
        return Err("webhook-timestamp is in the future");
    }
    let expected =
        sign(secret, msg_id, ts, body).ok_or("the configured secret is not valid base64")?;
    let matched = signature
        .split(' ')
        .filter(|entry| entry.starts_with("v1,"))
        .fold(subtle::Choice::from(0), |found, entry| {
            found | subtle::ConstantTimeEq::ct_eq(entry.as_bytes(), expected.as_bytes())
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err("no webhook-signature entry matches")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn rotation_signs_with_every_secret() {
        let (a, b) = (new_secret(), new_secret());
        let header = signature_header(&[&a, &b], "msg_1", 1, b"{}");
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(Some(entries[1].to_string()), sign(&b, "msg_1", 1, b"{}"));
        assert_eq!(sign("whsec_", "m", 1, b""), None);
    }

    #[test]
    fn verify_accepts_a_good_signature_and_refuses_stale_or_wrong_ones() {
        let secret = new_secret();
        let header = signature_header(&["whsec_AAAA", &secret], "msg_1", 1_000, b"{}");
        assert_eq!(verify(&secret, "msg_1", "1000", &header, b"{}", 1_100), Ok(()));
        assert!(verify(&secret, "msg_1", "1000", &header, b"{ }", 1_100).is_err(), "body changed");
        assert!(verify(&secret, "msg_2", "1000", &header, b"{}", 1_100).is_err(), "id changed");
        assert_eq!(
            verify(&secret, "msg_1", "1000", &header, b"{}", 1_301),
            Err("webhook-timestamp is too old")
        );
        assert!(
            verify(&new_secret(), "msg_1", "1000", &header, b"{}", 1_000).is_err(),
            "wrong secret"
        );
    }

    #[test]
    fn the_sink_secret_depends_on_the_secret_and_the_spreadsheet() {
        let secret = new_secret();
        let derived = sink_secret(&secret, "ss_a").expect("derived");
        assert!(is_valid_secret(&derived));
        assert_ne!(derived, secret);
        assert_ne!(Some(derived.clone()), sink_secret(&secret, "ss_b"));
        assert_ne!(Some(derived), sink_secret(&new_secret(), "ss_a"));
        assert_eq!(sink_secret("whsec_", "ss_a"), None);
    }
}
