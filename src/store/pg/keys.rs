//! API keys on PostgreSQL: `store::keys`' SQL, beside it (the short statements of
//! revoking and noting a use are in `store::keys` itself).

use tokio_postgres::GenericClient;

use super::{OrStore, Pg};
use crate::auth::ActiveKey;
use crate::store::keys::{active_key, StoredKey};
use crate::store::StoreResult;

/// The stored keys not revoked. Every key here has an id: PostgreSQL databases start at a
/// schema where keys have one.
pub(crate) async fn active(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
) -> StoreResult<Vec<ActiveKey>> {
    let rows = c
        .query(
            "SELECT key_hash, id, role, expires_at FROM api_keys \
             WHERE revoked_at IS NULL AND id IS NOT NULL",
            &[],
        )
        .await
        .at(pg)?;
    rows.iter().map(active_key).collect()
}

/// Stores a new key by its hash.
pub(crate) async fn add(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    hash: &[u8; 32],
    key: &StoredKey,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO api_keys (key_hash, name, created_at, id, role, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &hash.as_slice(),
            &key.name,
            &key.created_at.as_ms(),
            &key.id,
            &key.role.as_str(),
            &key.expires_at.map(crate::time::UnixMs::as_ms),
        ],
    )
    .await
    .at(pg)?;
    Ok(())
}
