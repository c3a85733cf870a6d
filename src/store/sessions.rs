//! Console sessions (`src/console/`): only the SHA-256 of a session's token is stored, so a
//! copy of the database signs no one in. A session names the key it was made with, by id (a
//! stored key) or by hash (a key of the config, which has no id): each request checks that
//! key against the live key set, so revoking it ends its sessions at once.

use rusqlite::{params, OptionalExtension};

use super::{decode, Store, StoreError, StoreResult};
use crate::auth::Role;
use crate::ids::ApiKeyId;
use crate::time::UnixMs;

/// The key a session was signed in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKey {
    /// A stored key, by id.
    Stored(ApiKeyId),
    /// A key of the config, by its SHA-256.
    Configured([u8; 32]),
}

/// A stored console session.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// The key it acts for.
    pub key: SessionKey,
    /// The key's role at sign-in (each request uses the key's role then).
    pub role: Role,
    /// The token every state-changing request must carry (CSRF).
    pub csrf_token: String,
    /// When it was made: it ends `console.session_absolute_secs` later.
    pub created_at: UnixMs,
    /// When it was last used (noted coarsely, see `console::session`).
    pub last_seen_at: UnixMs,
}

fn hash_of(bytes: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt("console_sessions.config_key_hash is not 32 bytes".into()))
}

impl Store {
    /// Stores a new session under the hash of its token.
    pub async fn add_session(&self, token_hash: [u8; 32], s: ConsoleSession) -> StoreResult<()> {
        self.on_sqlite("add_session")?
            .write(move |c| {
                let (key_id, config_key_hash) = match s.key {
                    SessionKey::Stored(id) => (Some(id), None),
                    SessionKey::Configured(hash) => (None, Some(hash.to_vec())),
                };
                c.prepare_cached(
                    "INSERT INTO console_sessions (token_hash, key_id, config_key_hash, role, \
                 csrf_token, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    token_hash.to_vec(),
                    key_id,
                    config_key_hash,
                    s.role,
                    s.csrf_token,
                    s.created_at,
                    s.last_seen_at
                ])?;
                Ok(())
            })
            .await
    }

    /// The session whose token hashes to `token_hash`, if any.
    pub async fn session(&self, token_hash: [u8; 32]) -> StoreResult<Option<ConsoleSession>> {
        self.on_sqlite("session")?
            .read(move |c| {
                let row = c
                .prepare_cached(
                    "SELECT key_id, config_key_hash, role, csrf_token, created_at, last_seen_at \
                     FROM console_sessions WHERE token_hash = ?1",
                )?
                .query_row(params![token_hash.to_vec()], |r| {
                    let key_id: Option<ApiKeyId> = decode::value(r, 0, "console_sessions", "?")?;
                    let config_key_hash: Option<Vec<u8>> = r.get(1)?;
                    let role: Role = decode::value(r, 2, "console_sessions", "?")?;
                    let csrf_token: String = r.get(3)?;
                    let created_at: UnixMs = decode::value(r, 4, "console_sessions", "?")?;
                    let last_seen_at: UnixMs = decode::value(r, 5, "console_sessions", "?")?;
                    Ok((key_id, config_key_hash, role, csrf_token, created_at, last_seen_at))
                })
                .optional()?;
                let Some((key_id, config_key_hash, role, csrf_token, created_at, last_seen_at)) =
                    row
                else {
                    return Ok(None);
                };
                let key = match (key_id, config_key_hash) {
                    (Some(id), _) => SessionKey::Stored(id),
                    (None, Some(hash)) => SessionKey::Configured(hash_of(hash)?),
                    (None, None) => {
                        return Err(StoreError::Corrupt("a console session names no key".into()))
                    }
                };
                Ok(Some(ConsoleSession { key, role, csrf_token, created_at, last_seen_at }))
            })
            .await
    }

    /// Notes that the session was used at `now`.
    pub async fn touch_session(&self, token_hash: [u8; 32], now: UnixMs) -> StoreResult<()> {
        self.on_sqlite("touch_session")?
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE console_sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
                )?
                .execute(params![token_hash.to_vec(), now])?;
                Ok(())
            })
            .await
    }

    /// Ends the session (sign-out, or found expired).
    pub async fn end_session(&self, token_hash: [u8; 32]) -> StoreResult<()> {
        self.on_sqlite("end_session")?
            .write(move |c| {
                c.prepare_cached("DELETE FROM console_sessions WHERE token_hash = ?1")?
                    .execute(params![token_hash.to_vec()])?;
                Ok(())
            })
            .await
    }

    /// Deletes the sessions made before `created_before` or unused since `seen_before`
    /// (expired ones nobody signed out of). Called at each sign-in: sessions are few.
    pub async fn end_expired_sessions(
        &self,
        created_before: UnixMs,
        seen_before: UnixMs,
    ) -> StoreResult<usize> {
        self.on_sqlite("end_expired_sessions")?
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "DELETE FROM console_sessions WHERE created_at < ?1 OR last_seen_at < ?2",
                    )?
                    .execute(params![created_before, seen_before])?;
                Ok(n)
            })
            .await
    }
}
