//! Console sessions (`src/console/`): only the SHA-256 of a session's token is stored, so a
//! copy of the database signs no one in. A session names the key it was made with, by id (a
//! stored key) or by hash (a key of the config, which has no id): each request checks that
//! key against the live key set, so revoking it ends its sessions at once.

use rusqlite::{params, OptionalExtension};

use super::column::Column;
use super::pg::OrStore;
use super::{Backend, Store, StoreError, StoreResult};
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

/// The columns [`from_row`] reads.
const COLUMNS: &str = "key_id, config_key_hash, role, csrf_token, created_at, last_seen_at";

/// A session's columns as read, before its key is made out (both backends).
struct Row {
    key_id: Option<ApiKeyId>,
    config_key_hash: Option<Vec<u8>>,
    session: (Role, String, UnixMs, UnixMs),
}

fn from_row<R: Column>(r: &R) -> Result<Row, R::Error> {
    const T: &str = "console_sessions";
    Ok(Row {
        key_id: r.opt_id(0, T, "?")?,
        config_key_hash: r.opt_bytes(1, T, "?")?,
        session: (
            r.parsed(2, T, "?", Role::parse)?,
            r.text(3, T, "?")?,
            r.time(4, T, "?")?,
            r.time(5, T, "?")?,
        ),
    })
}

impl Row {
    fn session(self) -> StoreResult<ConsoleSession> {
        let key = match (self.key_id, self.config_key_hash) {
            (Some(id), _) => SessionKey::Stored(id),
            (None, Some(hash)) => SessionKey::Configured(hash_of(hash)?),
            (None, None) => {
                return Err(StoreError::Corrupt("a console session names no key".into()))
            }
        };
        let (role, csrf_token, created_at, last_seen_at) = self.session;
        Ok(ConsoleSession { key, role, csrf_token, created_at, last_seen_at })
    }
}

impl Store {
    /// Stores a new session under the hash of its token.
    pub async fn add_session(&self, token_hash: [u8; 32], s: ConsoleSession) -> StoreResult<()> {
        let (key_id, config_key_hash) = match s.key {
            SessionKey::Stored(id) => (Some(id), None),
            SessionKey::Configured(hash) => (None, Some(hash.to_vec())),
        };
        match &self.backend {
            Backend::Sqlite(db) => {
                db.write(move |c| {
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
            Backend::Postgres(p) => {
                let client = p.client().await?;
                client
                    .execute(
                        "INSERT INTO console_sessions (token_hash, key_id, config_key_hash, role, \
                         csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &token_hash.as_slice(),
                            &key_id,
                            &config_key_hash,
                            &s.role.as_str(),
                            &s.csrf_token,
                            &s.created_at.as_ms(),
                            &s.last_seen_at.as_ms(),
                        ],
                    )
                    .await
                    .at(p)?;
                Ok(())
            }
        }
    }

    /// The session whose token hashes to `token_hash`, if any.
    pub async fn session(&self, token_hash: [u8; 32]) -> StoreResult<Option<ConsoleSession>> {
        let row = match &self.backend {
            Backend::Sqlite(db) => {
                db.read(move |c| {
                    let sql =
                        format!("SELECT {COLUMNS} FROM console_sessions WHERE token_hash = ?1");
                    Ok(c.prepare_cached(&sql)?
                        .query_row(params![token_hash.to_vec()], |r| from_row(r))
                        .optional()?)
                })
                .await?
            }
            Backend::Postgres(p) => {
                let sql = format!("SELECT {COLUMNS} FROM console_sessions WHERE token_hash = $1");
                let client = p.client().await?;
                let row = client.query_opt(sql.as_str(), &[&token_hash.as_slice()]).await.at(p)?;
                row.as_ref().map(from_row).transpose()?
            }
        };
        row.map(Row::session).transpose()
    }

    /// Notes that the session was used at `now`.
    pub async fn touch_session(&self, token_hash: [u8; 32], now: UnixMs) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(db) => {
                db.write(move |c| {
                    c.prepare_cached(
                        "UPDATE console_sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
                    )?
                    .execute(params![token_hash.to_vec(), now])?;
                    Ok(())
                })
                .await
            }
            Backend::Postgres(p) => {
                let sql = "UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1";
                let client = p.client().await?;
                client.execute(sql, &[&token_hash.as_slice(), &now.as_ms()]).await.at(p)?;
                Ok(())
            }
        }
    }

    /// Ends the session (sign-out, or found expired).
    pub async fn end_session(&self, token_hash: [u8; 32]) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(db) => {
                db.write(move |c| {
                    c.prepare_cached("DELETE FROM console_sessions WHERE token_hash = ?1")?
                        .execute(params![token_hash.to_vec()])?;
                    Ok(())
                })
                .await
            }
            Backend::Postgres(p) => {
                let sql = "DELETE FROM console_sessions WHERE token_hash = $1";
                p.client().await?.execute(sql, &[&token_hash.as_slice()]).await.at(p)?;
                Ok(())
            }
        }
    }

    /// Deletes the sessions made before `created_before` or unused since `seen_before`
    /// (expired ones nobody signed out of). Called at each sign-in: sessions are few.
    pub async fn end_expired_sessions(
        &self,
        created_before: UnixMs,
        seen_before: UnixMs,
    ) -> StoreResult<usize> {
        match &self.backend {
            Backend::Sqlite(db) => {
                db.write(move |c| {
                    let n = c
                        .prepare_cached(
                            "DELETE FROM console_sessions WHERE created_at < ?1 OR last_seen_at < ?2",
                        )?
                        .execute(params![created_before, seen_before])?;
                    Ok(n)
                })
                .await
            }
            Backend::Postgres(p) => {
                let sql = "DELETE FROM console_sessions WHERE created_at < $1 OR last_seen_at < $2";
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                    [&created_before.as_ms(), &seen_before.as_ms()];
                let n = p.client().await?.execute(sql, &params).await.at(p)?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }
}
