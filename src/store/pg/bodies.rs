//! Content-addressed blobs on PostgreSQL: `store::bodies`' SQL, beside it. The hash, the
//! compression and the encodings are `store::bodies`' own, so a blob reads back the same from
//! either backend.

use tokio_postgres::GenericClient;

use super::{OrStore, Pg};
use crate::store::bodies::{decode, Prepared, USE_REFRESH_MS};
use crate::store::column::Column;
use crate::store::{BodyHash, StoreResult};

/// Stores `data` unless an identical blob is there, by the rules of `store::bodies::put`
/// (the blob counts as used now; a repeat marks it `shared`); returns its hash. Unlike on
/// SQLite the blob is compressed before looking: a lookup first would cost a round trip, more
/// than compressing a payload (about 6 us a KB).
pub(crate) async fn put(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    data: &[u8],
) -> StoreResult<BodyHash> {
    put_prepared(pg, c, &Prepared::of(data)).await
}

/// [`put`] of a blob hashed and compressed beforehand, in one statement. An identical blob's
/// row is updated only when SQLite's would be (not yet `shared`, or its `used_at`
/// [`USE_REFRESH_MS`] old). Two transactions storing the same new blob make one row: the
/// unique index makes the second wait for the first's commit, then it takes the conflict
/// branch. The conflicting row stays locked until the transaction ends even when it is not
/// updated (`ON CONFLICT DO UPDATE` locks it), which a long transaction must allow for.
pub(crate) async fn put_prepared(
    pg: &Pg,
    c: &(impl GenericClient + Sync),
    blob: &Prepared,
) -> StoreResult<BodyHash> {
    c.execute(
        "INSERT INTO bodies (hash, data, used_at, encoding) \
         VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, $3::bigint::smallint) \
         ON CONFLICT (hash) DO UPDATE SET used_at = EXCLUDED.used_at, shared = true \
         WHERE NOT bodies.shared OR bodies.used_at < EXCLUDED.used_at - $4",
        &[&blob.hash.as_slice(), &blob.encoded.data, &blob.encoded.encoding, &USE_REFRESH_MS],
    )
    .await
    .at(pg)?;
    Ok(blob.hash)
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
