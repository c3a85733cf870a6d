//! Content-addressed blobs: a body, payload or snapshot is stored once and referred to by hash.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::StoreResult;

/// The first 16 bytes of the SHA-256 of a blob: collision-safe for this use, half the index.
pub type BodyHash = [u8; 16];

/// Hash of `data` as stored.
pub fn body_hash(data: &[u8]) -> BodyHash {
    let digest = Sha256::digest(data);
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&digest[..16]);
    hash
}

/// How stale a blob's `used_at` may be: storing an identical blob refreshes it only once it is
/// this old, so a payload posted again and again costs a write at most this often. Content
/// retention allows for it (its shortest window is twice this), and so does the automation
/// cache, which stores a snapshot in use again this often.
pub const USE_REFRESH_MS: i64 = 5 * 60 * 1000;

/// Stores `data` unless an identical blob is already there; returns its hash. Either way the
/// blob counts as used now: an identical blob's `used_at` is refreshed once it is
/// [`USE_REFRESH_MS`] old, and content retention keeps it as long as its latest use needs.
/// An identical blob is marked `shared` (one write, the first time), which an expunge reads.
pub(super) fn put(conn: &Connection, data: &[u8]) -> StoreResult<BodyHash> {
    let hash = body_hash(data);
    conn.prepare_cached(
        "INSERT INTO bodies (hash, data, used_at) VALUES (?1, ?2, unixepoch() * 1000) \
         ON CONFLICT (hash) DO UPDATE SET used_at = excluded.used_at, shared = 1 \
         WHERE bodies.shared = 0 OR bodies.used_at < excluded.used_at - ?3",
    )?
    .execute(params![&hash[..], data, USE_REFRESH_MS])?;
    Ok(hash)
}

/// Reads a stored blob, `None` when it is missing: content retention or an expunge deleted
/// it (see `content`), which the caller says to whoever asked for it.
pub(super) fn find(conn: &Connection, hash: &[u8]) -> StoreResult<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT data FROM bodies WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?)
}
