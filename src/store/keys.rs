//! API keys made by the server (`/v1/keys`, and the admin key generated at first start): only
//! their SHA-256 is stored. A revoked key keeps its row, with `revoked_at`, so the list still
//! says who had which key and when it stopped; only keys not revoked are loaded to authenticate.

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension, Row};

use super::column::Column;
use super::page::{read_page, Conditions, Page, PageRequest};
use super::pg::{self, OrStore};
use super::{decode, Backend, Store, StoreError, StoreResult};

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

pub(super) const COLUMNS: &str = "id, name, role, created_at, expires_at, last_used_at, revoked_at";

/// A stored key from its row (columns in the order of [`COLUMNS`]), on either backend.
pub(super) fn stored_key<R: Column>(r: &R) -> Result<StoredKey, R::Error> {
    const T: &str = "api_keys";
    let id: ApiKeyId = r.key(0, T)?;
    Ok(StoredKey {
        name: r.text(1, T, &id)?,
        role: r.parsed(2, T, &id, Role::parse)?,
        created_at: r.time(3, T, &id)?,
        expires_at: r.opt_time(4, T, &id)?,
        last_used_at: r.opt_time(5, T, &id)?,
        revoked_at: r.opt_time(6, T, &id)?,
        id,
    })
}

/// An active key from `key_hash, id, role, expires_at`, on either backend.
pub(super) fn active_key<R: Column>(r: &R) -> Result<ActiveKey, R::Error> {
    const T: &str = "api_keys";
    let id: ApiKeyId = r.key(1, T)?;
    let hash = r.bytes(0, T, &id)?;
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| r.corrupt(0, T, &id, "not 32 bytes".into()))?;
    Ok(ActiveKey {
        hash,
        role: r.parsed(2, T, &id, Role::parse)?,
        expires_at: r.opt_time(3, T, &id)?,
        id: Some(id),
    })
}

/// The advisory lock under which an instance stores the admin key generated at its start
/// (any constant no other lock uses: "hrfirst" in ASCII).
const FIRST_START_LOCK: i64 = 0x68_72_66_69_72_73_74;

fn key_id(k: &StoredKey) -> &str {
    k.id.as_str()
}

fn sqlite_key(r: &Row<'_>) -> rusqlite::Result<StoredKey> {
    stored_key(r)
}

/// The keys listed: those with an id (every one on PostgreSQL; see [`Store::active_keys`]).
fn listed() -> Conditions {
    let mut conditions = Conditions::default();
    conditions.push_literal("id IS NOT NULL".into());
    conditions
}

impl Store {
    /// The stored keys not revoked, to authenticate with. A key stored before keys had ids
    /// (the admin key generated at first start by a version 7 SQLite database) is given one
    /// here, once, so that it can be listed and revoked like any other.
    pub async fn active_keys(&self) -> StoreResult<Vec<ActiveKey>> {
        let p = match &self.backend {
            Backend::Postgres(p) => p,
            Backend::Sqlite(s) => {
                return s
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
                            "SELECT key_hash, id, role, expires_at FROM api_keys \
                             WHERE revoked_at IS NULL",
                        )?;
                        let keys = stmt.query_map([], |r| active_key(r))?;
                        Ok(keys.collect::<Result<_, _>>()?)
                    })
                    .await
            }
        };
        pg::keys::active(p, &**p.client().await?).await
    }

    /// Stores a new key by its hash.
    pub async fn add_key(&self, hash: [u8; 32], key: StoredKey) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |c| {
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
            Backend::Postgres(p) => pg::keys::add(p, &**p.client().await?, &hash, &key).await,
        }
    }

    /// Stores the admin key generated at start (see `server::api_keys`) unless a valid
    /// admin key is stored by now; answers whether it was stored. On SQLite one server owns
    /// the database, so it always is. On PostgreSQL instances starting together on an empty
    /// database would each generate one: a transaction-scoped advisory lock makes them
    /// check and store one after the other, so only the first stores (and prints) its key.
    pub async fn add_first_admin_key(
        &self,
        hash: [u8; 32],
        key: StoredKey,
        now: UnixMs,
    ) -> StoreResult<bool> {
        let p = match &self.backend {
            Backend::Sqlite(_) => return self.add_key(hash, key).await.map(|()| true),
            Backend::Postgres(p) => p,
        };
        let mut client = p.client().await?;
        let tx = client.transaction().await.at(p)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FIRST_START_LOCK]).await.at(p)?;
        let admin = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE role = 'admin' AND id IS NOT NULL \
                 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1))",
                &[&now.as_ms()],
            )
            .await
            .at(p)?
            .get::<_, bool>(0);
        if admin {
            return Ok(false);
        }
        pg::keys::add(p, &*tx, &hash, &key).await?;
        tx.commit().await.at(p)?;
        Ok(true)
    }

    /// A page of the stored keys, revoked ones included (they are never deleted, so the
    /// list grows without bound: it is paged like every other).
    pub async fn list_keys(&self, page: PageRequest) -> StoreResult<Page<StoredKey>> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(move |c| {
                    read_page(c, "api_keys", COLUMNS, &listed(), &page, sqlite_key, |k| {
                        k.id.as_str()
                    })
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                let conditions = listed();
                pg::page::read_page(
                    p,
                    &**client,
                    "api_keys",
                    COLUMNS,
                    &conditions,
                    &page,
                    stored_key,
                    key_id,
                )
                .await
            }
        }
    }

    /// Marks the key `id` revoked at `now` (a key already revoked keeps its first time).
    pub async fn revoke_key(&self, id: ApiKeyId, now: UnixMs) -> StoreResult<StoredKey> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |c| {
                    c.prepare_cached(
                        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                    )?
                    .execute(params![id, now])?;
                    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1");
                    c.prepare_cached(&sql)?
                        .query_row(params![id], sqlite_key)
                        .optional()?
                        .ok_or(StoreError::NotFound("key"))
                })
                .await
            }
            Backend::Postgres(p) => {
                let sql = format!(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 \
                     RETURNING {COLUMNS}"
                );
                let client = p.client().await?;
                let row = client.query_opt(sql.as_str(), &[&id, &now.as_ms()]).await.at(p)?;
                row.as_ref().map(stored_key).transpose()?.ok_or(StoreError::NotFound("key"))
            }
        }
    }

    /// Records that the key `id` was used at `now` (called at most once a minute per key).
    pub async fn note_key_used(&self, id: ApiKeyId, now: UnixMs) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |c| {
                    c.prepare_cached("UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1")?
                        .execute(params![id, now])?;
                    Ok(())
                })
                .await
            }
            Backend::Postgres(p) => {
                let client = p.client().await?;
                client
                    .execute(
                        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1",
                        &[&id, &now.as_ms()],
                    )
                    .await
                    .at(p)?;
                Ok(())
            }
        }
    }
}
