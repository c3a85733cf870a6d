//! Content-addressed blobs on PostgreSQL: `store::bodies`' SQL, beside it. The hash, the
//! compression and the encodings are `store::bodies`' own, so a blob reads back the same from
//! either backend.

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::{Cached, OrStore, Pg};
use crate::store::bodies::{decode, Prepared, USE_REFRESH_MS};
use crate::store::column::Column;
use crate::store::{BodyHash, StoreResult};

/// Stores `data` unless an identical blob is there, by the rules of `store::bodies::put`
/// (the blob counts as used now; a repeat marks it `shared`); returns its hash. Unlike on
/// SQLite the blob is compressed before looking: a lookup first would cost a round trip, more
/// than compressing a payload (about 6 us a KB).
pub(crate) async fn put(pg: &Pg, c: &impl Cached, data: &[u8]) -> StoreResult<BodyHash> {
    put_prepared(pg, c, &Prepared::of(data)).await
}

/// [`put`] of a blob hashed and compressed beforehand. A new blob is one statement; an
/// identical blob's row is then updated only when SQLite's would be (not yet `shared`, or
/// its `used_at` [`USE_REFRESH_MS`] old), by a second statement. Two statements rather than
/// one `ON CONFLICT … DO UPDATE`, which locks the conflicting row to the end of the
/// transaction even when it changes nothing: the snapshot and the common response bodies
/// (`{"ok":true}`) are put by nearly every transaction of the delivery path, which would
/// then queue behind each other, and deadlock when two put two such blobs in opposite
/// orders. Two transactions storing the same new blob make one row: the unique index makes
/// the second wait for the first's commit; its update then sees the row (a new statement
/// reads what committed before it) and marks it `shared`.
pub(crate) async fn put_prepared(
    pg: &Pg,
    c: &impl Cached,
    blob: &Prepared,
) -> StoreResult<BodyHash> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO bodies (hash, data, used_at, encoding) \
             VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, \
             $3::bigint::smallint) ON CONFLICT (hash) DO NOTHING",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 3] =
        [&blob.hash.as_slice(), &blob.encoded.data, &blob.encoded.encoding];
    let inserted = c.execute(&stmt, &params).await.at(pg)?;
    if inserted == 0 {
        touch(pg, c, &blob.hash).await?;
    }
    Ok(blob.hash)
}

/// Whether blob `hash` is stored; when it is, its use is noted as [`put`] notes a repeat.
/// For content large enough that compressing it costs more than this round trip (uploads).
pub(crate) async fn refresh(pg: &Pg, c: &impl Cached, hash: &BodyHash) -> StoreResult<bool> {
    let stored = c
        .query_opt("SELECT 1 FROM bodies WHERE hash = $1", &[&hash.as_slice()])
        .await
        .at(pg)?
        .is_some();
    if stored {
        touch(pg, c, hash).await?;
    }
    Ok(stored)
}

/// Marks the stored blob `hash` `shared` and used now, unless it is so already (see [`put`]).
async fn touch(pg: &Pg, c: &impl Cached, hash: &BodyHash) -> StoreResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE bodies SET used_at = now.ms, shared = true \
             FROM (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) now \
             WHERE hash = $1 AND (NOT shared OR used_at < now.ms - $2)",
        )
        .await
        .at(pg)?;
    let params: [&(dyn ToSql + Sync); 2] = [&hash.as_slice(), &USE_REFRESH_MS];
    c.execute(&stmt, &params).await.at(pg)?;
    Ok(())
}

/// Reads a stored blob back as it was given, `None` when it is missing (content retention or
/// an expunge deleted it, as on SQLite).
pub(crate) async fn find(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    hash: &[u8],
) -> StoreResult<Option<Vec<u8>>> {
    let Some(row) =
        c.query_opt("SELECT data, encoding FROM bodies WHERE hash = $1", &[&hash]).await.at(pg)?
    else {
        return Ok(None);
    };
    let id: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let data = row.opt_bytes(0, "bodies", &id)?;
    let encoding = row.opt_int(1, "bodies", &id)?;
    match (data, encoding) {
        (Some(data), Some(encoding)) => decode(data, encoding).map(Some),
        _ => Err(row.corrupt(1, "bodies", &id, "data or encoding is null".into())),
    }
}
