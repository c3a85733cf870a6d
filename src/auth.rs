//! Admin API keys: only SHA-256 hashes are kept in memory and in the database; a presented
//! key is hashed and compared with every known hash in constant time, and never logged.

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of Dify-style app keys; such a key on the admin API is the wrong kind (403).
pub const APP_KEY_PREFIX: &str = "app-";
/// Prefix of generated admin keys.
pub const ADMIN_KEY_PREFIX: &str = "hr_admin_";

/// The set of valid admin keys, by hash.
#[derive(Debug, Clone, Default)]
pub struct AdminKeys {
    hashes: Vec<[u8; 32]>,
}

/// SHA-256 of a key.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random admin key.
pub fn generate_admin_key() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{ADMIN_KEY_PREFIX}{hex}")
}

impl AdminKeys {
    /// Keys from their hashes.
    pub fn from_hashes(hashes: impl IntoIterator<Item = [u8; 32]>) -> Self {
        Self { hashes: hashes.into_iter().collect() }
    }

    /// Whether `presented` is an admin key. Every hash is compared, in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        let hash = key_hash(presented);
        let mut found = subtle::Choice::from(0);
        for known in &self.hashes {
            found |= known.ct_eq(&hash);
        }
        found.into()
    }
}

/// The key a request presents: `Api-Key: K` (uiform) or `Authorization: Bearer K`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, key) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_known_keys_from_either_header() {
        let key = generate_admin_key();
        let keys = AdminKeys::from_hashes([key_hash(&key)]);
        assert!(keys.verify(&key));
        assert!(!keys.verify("hr_admin_wrong"));
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {key}").parse().unwrap());
        assert_eq!(presented_key(&h), Some(key.as_str()));
        h.insert("api-key", "other".parse().unwrap());
        assert_eq!(presented_key(&h), Some("other"));
    }
}
