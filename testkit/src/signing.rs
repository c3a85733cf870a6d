//! An independent Standard Webhooks signer and verifier (not hookrelay's signing code):
//! `v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the base64 part of
//! a `whsec_` secret.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};

/// How far a signed timestamp may be from now (seconds), as the Standard Webhooks
/// reference verifiers allow.
const TOLERANCE_SECS: i64 = 300;

/// The HMAC-SHA256 of `parts` keyed with the base64 part of the `whsec_` secret, in base64.
pub fn hmac_base64(secret: &str, parts: &[&[u8]]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a secret starts with whsec_"))
        .expect("a secret's key is base64");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    for part in parts {
        mac.update(part);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `webhook-signature` entry signing `body` sent as message `id` at `ts` (Unix seconds).
pub fn sign(secret: &str, id: &str, ts: i64, body: &[u8]) -> String {
    format!("v1,{}", hmac_base64(secret, &[format!("{id}.{ts}.").as_bytes(), body]))
}

/// Standard Webhooks headers signing `body` with `secret`, now, under a fresh id.
pub fn signed_headers(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let id = msg_id();
    let ts = now_secs();
    let signature = sign(secret, &id, ts, body);
    vec![
        ("webhook-id", id),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
    ]
}

/// Whether `headers` sign `body` with `secret`: a timestamp within five minutes of now and
/// any `v1,` entry of `webhook-signature` matching.
pub fn verify_signature(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, ts, signatures) =
        (get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"));
    let Ok(ts_secs) = ts.parse::<i64>() else { return false };
    if (now_secs() - ts_secs).abs() > TOLERANCE_SECS {
        return false;
    }
    let expected = sign(secret, &id, ts_secs, body);
    signatures.split(' ').any(|s| s == expected)
}

/// A fresh `whsec_` secret (32 random bytes).
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(key))
}

/// A fresh `webhook-id`.
pub fn msg_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// Now, Unix seconds.
pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}
