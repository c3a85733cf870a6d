//! API keys made by the server (`/v1/keys`, and the admin key generated at first start): only
//! their SHA-256 is stored. A revoked key keeps its row, with `revoked_at`, so the list still
//! says who had which key and when it stopped; only keys not revoked are loaded to authenticate.

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension, Row};

use super::page::{read_page, Conditions, Page, PageRequest};
use super::{decode, Store, StoreError, StoreResult};

use crate::auth::{ActiveKey, Role};
use crate::ids::ApiKeyId;
use crate::time::UnixMs;

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        decode::name(value, Role::parse)
    }
}

/// A stored key, as `/v1/keys` lists it (never the key: only its hash is stored).
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Its id.
    pub id: ApiKeyId,
    /// Its name, given at creation.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    pub created_at: UnixMs,
    /// When it stops being valid, if ever.
    pub expires_at: Option<UnixMs>,
    /// When it was last used, to the minute (see `auth::LAST_USED_RESOLUTION_MS`).
    pub last_used_at: Option<UnixMs>,
    /// When it was revoked.
    pub revoked_at: Option<UnixMs>,
}

const COLUMNS: &str = "id, name, role, created_at, expires_at, last_used_at, revoked_at";

fn stored_key(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    let id: ApiKeyId = decode::value(r, 0, "api_keys", "?")?;
    let row = id.to_string();
    Ok(StoredKey {
        name: decode::value(r, 1, "api_keys", &row)?,
        role: decode::value(r, 2, "api_keys", &row)?,
        created_at: decode::value(r, 3, "api_keys", &row)?,
        expires_at: decode::value(r, 4, "api_keys", &row)?,
        last_used_at: decode::value(r, 5, "api_keys", &row)?,
        revoked_at: decode::value(r, 6, "api_keys", &row)?,
        id,
    })
}

impl Store {
    /// The stored keys not revoked, to authenticate with. A key stored before keys had ids
    /// (the admin key generated at first start by a version 7 database) is given one here,
    /// once, so that it can be listed and revoked like any other.
    pub async fn active_keys(&self) -> StoreResult<Vec<ActiveKey>> {
        self.on_sqlite("active_keys")?
            .write(|c| {
                let unnamed: Vec<Vec<u8>> = c
                    .prepare_cached("SELECT key_hash FROM api_keys WHERE id IS NULL")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for hash in unnamed {
                    c.prepare_cached("UPDATE api_keys SET id = ?1 WHERE key_hash = ?2")?
                        .execute(params![ApiKeyId::new(), hash])?;
                }
                let mut stmt = c.prepare_cached(
                    "SELECT key_hash, id, role, expires_at FROM api_keys WHERE revoked_at IS NULL",
                )?;
                let keys = stmt
                    .query_map([], |r| {
                        let id: ApiKeyId = decode::value(r, 1, "api_keys", "?")?;
                        let row = id.to_string();
                        let hash: Vec<u8> = decode::value(r, 0, "api_keys", &row)?;
                        let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| {
                            decode::corrupt(r, 0, "api_keys", &row, "not 32 bytes".into())
                        })?;
                        Ok(ActiveKey {
                            hash,
                            role: decode::value(r, 2, "api_keys", &row)?,
                            expires_at: decode::value(r, 3, "api_keys", &row)?,
                            id: Some(id),
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(keys)
            })
            .await
    }

    /// Stores a new key by its hash.
    pub async fn add_key(&self, hash: [u8; 32], key: StoredKey) -> StoreResult<()> {
        self.on_sqlite("add_key")?
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO api_keys (key_hash, name, created_at, id, role, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    hash.to_vec(),
                    key.name,
                    key.created_at,
                    key.id,
                    key.role,
                    key.expires_at
                ])?;
                Ok(())
            })
            .await
    }

    /// A page of the stored keys, revoked ones included (they are never deleted, so the
    /// list grows without bound: it is paged like every other).
    pub async fn list_keys(&self, page: PageRequest) -> StoreResult<Page<StoredKey>> {
        self.on_sqlite("list_keys")?
            .read(move |c| {
                let mut conditions = Conditions::default();
                conditions.push_literal("id IS NOT NULL".into());
                read_page(c, "api_keys", COLUMNS, &conditions, &page, stored_key, |k| k.id.as_str())
            })
            .await
    }

    /// Marks the key `id` revoked at `now` (a key already revoked keeps its first time).
    pub async fn revoke_key(&self, id: ApiKeyId, now: UnixMs) -> StoreResult<StoredKey> {
        self.on_sqlite("revoke_key")?
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                )?
                .execute(params![id, now])?;
                let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1");
                c.prepare_cached(&sql)?
                    .query_row(params![id], stored_key)
                    .optional()?
                    .ok_or(StoreError::NotFound("key"))
            })
            .await
    }

    /// Records that the key `id` was used at `now` (called at most once a minute per key).
    pub async fn note_key_used(&self, id: ApiKeyId, now: UnixMs) -> StoreResult<()> {
        self.on_sqlite("note_key_used")?
            .write(move |c| {
                c.prepare_cached("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")?
                    .execute(params![id, now])?;
                Ok(())
            })
            .await
    }
}
