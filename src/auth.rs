//! API keys and their roles. Only SHA-256 hashes are kept, in memory and in the database; a
//! presented key is hashed and compared with every known hash in constant time, and never
//! logged. The in-memory set is the one every request is judged by: a key created or
//! revoked through `/v1/keys` is added to it or removed from it in the same request.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::ApiKeyId;
use crate::time::UnixMs;

/// Prefix of Dify-style app keys; such a key on the admin API is the wrong kind (403).
pub const APP_KEY_PREFIX: &str = "app-";

/// How coarsely a key's last use is recorded: at most one write per key per this period,
/// so that authenticating never costs a database write per request.
pub const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// What a key may do. Each role may do everything the roles below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything except secrets (an automation's signing secret, keys).
    Viewer,
    /// A viewer who may also rerun, recover, enable or disable an automation, and send a
    /// test call: acting on deliveries without changing what is configured.
    Operator,
    /// Everything: automations, secrets, keys, ingest, expunge, spreadsheets, replay.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name, as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `name` (exactly as [`Role::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether a key of this role may use a route that needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

/// Who a valid key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id; `None` for a key from the config (not stored, never listed).
    pub key_id: Option<ApiKeyId>,
    /// What it may do.
    pub role: Role,
}

/// A stored key, as the in-memory set holds it.
#[derive(Debug, Clone)]
pub struct ActiveKey {
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// Its id (`None`: a key from the config).
    pub id: Option<ApiKeyId>,
    /// Its role.
    pub role: Role,
    /// When it stops being valid, if ever.
    pub expires_at: Option<UnixMs>,
}

#[derive(Debug)]
struct Known {
    key: ActiveKey,
    /// The last period (`now / LAST_USED_RESOLUTION_MS`) a use was recorded in.
    recorded_period: AtomicI64,
}

/// The set of valid keys, by hash: those of the config (admin) and the stored ones not
/// revoked. Shared by every request; changed by `/v1/keys` as it answers.
#[derive(Debug, Default)]
pub struct Keys {
    known: RwLock<Vec<Arc<Known>>>,
}

/// SHA-256 of a key.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random key of `role`: `hr_<role>_` and 48 hex digits (192 random bits).
pub fn generate_key(role: Role) -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("hr_{}_{hex}", role.as_str())
}

impl Keys {
    /// The set holding `keys`.
    pub fn new(keys: impl IntoIterator<Item = ActiveKey>) -> Self {
        let set = Self::default();
        for key in keys {
            set.add(key);
        }
        set
    }

    /// The admin keys of the config, by hash: no id, no expiry.
    pub fn config_key(key: &str) -> ActiveKey {
        ActiveKey { hash: key_hash(key), id: None, role: Role::Admin, expires_at: None }
    }

    /// Adds a key; valid from now on.
    pub fn add(&self, key: ActiveKey) {
        let known = Arc::new(Known { key, recorded_period: AtomicI64::new(i64::MIN) });
        self.known.write().unwrap_or_else(PoisonError::into_inner).push(known);
    }

    /// Removes the key `id`; refused from now on. Whether it was in the set.
    pub fn revoke(&self, id: &ApiKeyId) -> bool {
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        let before = known.len();
        known.retain(|k| k.key.id.as_ref() != Some(id));
        known.len() != before
    }

    /// Whether the set holds an admin key valid at `now`.
    pub fn has_admin(&self, now: UnixMs) -> bool {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        known
            .iter()
            .any(|k| k.key.role == Role::Admin && k.key.expires_at.is_none_or(|at| at > now))
    }

    /// Who `presented` is, if it is a valid key at `now` (known, not revoked, not expired).
    /// Every hash is compared, in constant time.
    pub fn authenticate(&self, presented: &str, now: UnixMs) -> Option<Principal> {
        let hash = key_hash(presented);
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        let mut found = None;
        for k in known.iter() {
            if bool::from(k.key.hash.ct_eq(&hash)) {
                found = Some(Arc::clone(k));
            }
        }
        drop(known);
        let k = found?;
        if k.key.expires_at.is_some_and(|at| at <= now) {
            return None;
        }
        Some(Principal { key_id: k.key.id.clone(), role: k.key.role })
    }

    /// Whether a use of the stored key `id` at `now` is its first in its
    /// [`LAST_USED_RESOLUTION_MS`] period, so its last-used time should be written: true for
    /// one caller per key and period, however many requests race.
    pub fn first_use_in_period(&self, id: &ApiKeyId, now: UnixMs) -> bool {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        let period = now.as_ms().div_euclid(LAST_USED_RESOLUTION_MS);
        known
            .iter()
            .find(|k| k.key.id.as_ref() == Some(id))
            .is_some_and(|k| k.recorded_period.swap(period, Ordering::Relaxed) != period)
    }

    /// The role of the stored key `id` at `now`, or `None` once it is revoked or expired:
    /// what a session made with the key checks on each request, so a revocation or an
    /// expiry ends it at once.
    pub fn role_of(&self, id: &ApiKeyId, now: UnixMs) -> Option<Role> {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        let k = known.iter().find(|k| k.key.id.as_ref() == Some(id))?;
        k.key.expires_at.is_none_or(|at| at > now).then_some(k.key.role)
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

    fn stored(key: &str, role: Role, expires_at: Option<UnixMs>) -> (ApiKeyId, ActiveKey) {
        let id = ApiKeyId::new();
        (id.clone(), ActiveKey { hash: key_hash(key), id: Some(id), role, expires_at })
    }

    #[test]
    fn verifies_only_known_keys_from_either_header() {
        let key = generate_key(Role::Admin);
        assert!(key.starts_with("hr_admin_") && key.len() == "hr_admin_".len() + 48, "{key}");
        let keys = Keys::new([Keys::config_key(&key)]);
        let now = UnixMs::now();
        let who = keys.authenticate(&key, now).expect("the key");
        assert_eq!((who.key_id, who.role), (None, Role::Admin));
        assert!(keys.authenticate("hr_admin_wrong", now).is_none());
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {key}").parse().unwrap());
        assert_eq!(presented_key(&h), Some(key.as_str()));
        h.insert("api-key", "other".parse().unwrap());
        assert_eq!(presented_key(&h), Some("other"));
    }

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Admin.allows(Role::Operator) && Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator) && !Role::Operator.allows(Role::Admin));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert!(generate_key(role).starts_with(&format!("hr_{}_", role.as_str())));
        }
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn expired_and_revoked_keys_are_refused_at_once() {
        let now = UnixMs::from_ms(1_000_000);
        let (id, key) = stored("k-viewer-0123456789", Role::Viewer, Some(now.plus_ms(10)));
        let keys = Keys::new([key]);
        assert_eq!(
            keys.authenticate("k-viewer-0123456789", now).map(|p| p.role),
            Some(Role::Viewer)
        );
        assert_eq!(keys.role_of(&id, now), Some(Role::Viewer));
        assert!(keys.authenticate("k-viewer-0123456789", now.plus_ms(10)).is_none(), "expired");
        assert_eq!(keys.role_of(&id, now.plus_ms(10)), None);
        assert!(keys.revoke(&id));
        assert!(keys.authenticate("k-viewer-0123456789", now).is_none(), "revoked");
        assert!(!keys.revoke(&id), "revoked twice");
    }

    #[test]
    fn a_use_is_recorded_once_per_period() {
        let (id, key) = stored("k-operator-0123456789", Role::Operator, None);
        let keys = Keys::new([key]);
        let start = UnixMs::from_ms(LAST_USED_RESOLUTION_MS * 1000);
        let period = LAST_USED_RESOLUTION_MS;
        let uses = [0, 1, period - 1, period, period + 5];
        let recorded: Vec<bool> =
            uses.iter().map(|ms| keys.first_use_in_period(&id, start.plus_ms(*ms))).collect();
        assert_eq!(recorded, [true, false, false, true, false]);
        assert!(!keys.first_use_in_period(&ApiKeyId::new(), start), "an unknown key");
    }
}
