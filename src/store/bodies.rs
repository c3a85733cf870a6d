//! Content-addressed blobs: a body, payload or snapshot is stored once and referred to by hash.
//!
//! A blob is stored compressed (raw deflate, `bodies.encoding` 1) when that saves at least an
//! eighth of it: a unique 1 KB JSON payload took 1,172 bytes of the database per delivered
//! message, more than everything else together. Its hash is always the hash of the blob as
//! given, and reading it back gives those bytes exactly.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{StoreError, StoreResult};

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
/// An identical blob is looked up first, so that a repeated one is never compressed again.
pub(super) fn put(conn: &Connection, data: &[u8]) -> StoreResult<BodyHash> {
    let hash = body_hash(data);
    if !refresh(conn, &hash)? {
        insert(conn, &hash, &Encoded::of(data))?;
    }
    Ok(hash)
}

/// [`put`] of a blob hashed and compressed beforehand, off the writer's thread (a message's
/// payload, by the request that posted it).
pub(super) fn put_prepared(conn: &Connection, blob: &Prepared) -> StoreResult<BodyHash> {
    if !refresh(conn, &blob.hash)? {
        insert(conn, &blob.hash, &blob.encoded)?;
    }
    Ok(blob.hash)
}

/// A blob's hash and stored form, made before the write that stores it.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) hash: BodyHash,
    pub(super) encoded: Encoded,
}

impl Prepared {
    /// Hashes and compresses `data`.
    pub fn of(data: &[u8]) -> Self {
        Self { hash: body_hash(data), encoded: Encoded::of(data) }
    }
}

/// A blob as a row stores it: `data` and `encoding`.
#[derive(Debug, Clone)]
pub(super) struct Encoded {
    pub(super) data: Vec<u8>,
    pub(super) encoding: i64,
}

impl Encoded {
    fn of(data: &[u8]) -> Self {
        match deflate(data) {
            Some(smaller) => Self { data: smaller, encoding: DEFLATE },
            None => Self { data: data.to_vec(), encoding: RAW },
        }
    }
}

/// When a blob `hash` is stored already, refreshes its use (see [`put`]) and answers true.
fn refresh(conn: &Connection, hash: &BodyHash) -> StoreResult<bool> {
    let stored =
        conn.prepare_cached("SELECT 1 FROM bodies WHERE hash = ?1")?.exists([&hash[..]])?;
    if stored {
        conn.prepare_cached(
            "UPDATE bodies SET used_at = unixepoch() * 1000, shared = 1 WHERE hash = ?1 \
             AND (shared = 0 OR used_at < unixepoch() * 1000 - ?2)",
        )?
        .execute(params![&hash[..], USE_REFRESH_MS])?;
    }
    Ok(stored)
}

fn insert(conn: &Connection, hash: &BodyHash, blob: &Encoded) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO bodies (hash, data, used_at, encoding) VALUES (?1, ?2, unixepoch() * 1000, ?3)",
    )?
    .execute(params![&hash[..], blob.data, blob.encoding])?;
    Ok(())
}

/// Reads a stored blob, `None` when it is missing: content retention or an expunge deleted
/// it (see `content`), which the caller says to whoever asked for it.
pub(super) fn find(conn: &Connection, hash: &[u8]) -> StoreResult<Option<Vec<u8>>> {
    let row = conn
        .prepare_cached("SELECT data, encoding FROM bodies WHERE hash = ?1")?
        .query_row([hash], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    row.map(|(data, encoding)| decode(data, encoding)).transpose()
}

/// The blob a row's `data` stored with `encoding` holds; an encoding this build does not know
/// is corrupt.
pub(super) fn decode(data: Vec<u8>, encoding: i64) -> StoreResult<Vec<u8>> {
    match encoding {
        RAW => Ok(data),
        DEFLATE => inflate(&data),
        other => Err(StoreError::Corrupt(format!(
            "a stored body has encoding {other}, which this build does not know"
        ))),
    }
}

/// `bodies.encoding`: the blob as given.
pub(super) const RAW: i64 = 0;
/// `bodies.encoding`: the blob compressed with raw deflate (no zlib or gzip header).
pub(super) const DEFLATE: i64 = 1;

/// Blobs shorter than this are stored as they are: deflate's block overhead and the call
/// cost more than the few bytes it could save.
const MIN_TO_COMPRESS: usize = 128;

thread_local! {
    /// This thread's deflate state, reset after each blob: making one allocates and zeroes a
    /// few hundred KB, about a third of compressing a 1 KB payload.
    static DEFLATER: RefCell<Compress> = RefCell::new(new_deflater());
    /// This thread's inflate state, reset between blobs, for the same reason: every delivery
    /// reads its payload back.
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

fn new_deflater() -> Compress {
    Compress::new(Compression::fast(), false)
}

/// `data` compressed at deflate's fastest level (on JSON it compresses nearly as well as the
/// best level at a fraction of the time), or `None` when it is short or the result is not at
/// least an eighth smaller.
///
/// The output is given room for the whole stream even when it does not compress, so every
/// stream ends before the state is reset: zlib-rs 0.6 panics compressing after the reset of
/// a stream cut short for want of room. A stream that still does not end gets its state
/// replaced.
fn deflate(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < MIN_TO_COMPRESS {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 64);
    DEFLATER.with_borrow_mut(|compress| {
        let ended = matches!(
            compress.compress_vec(data, &mut out, FlushCompress::Finish),
            Ok(Status::StreamEnd)
        );
        if ended {
            compress.reset();
        } else {
            *compress = new_deflater();
        }
        (ended && out.len() <= data.len() - data.len() / 8).then_some(out)
    })
}

/// The blob `deflate` compressed. A stream that ends early or does not decode is corrupt.
/// Its state is then replaced, not reset, as `deflate` does for a stream that did not end:
/// a stored body is not trusted to leave the reused state sound for the next read.
fn inflate(data: &[u8]) -> StoreResult<Vec<u8>> {
    INFLATER.with_borrow_mut(|inflater| {
        inflater.reset(false);
        let inflated = inflate_with(inflater, data);
        if inflated.is_err() {
            *inflater = Decompress::new(false);
        }
        inflated
    })
}

fn inflate_with(inflater: &mut Decompress, data: &[u8]) -> StoreResult<Vec<u8>> {
    let corrupt = |why: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("a compressed body does not inflate: {why}"))
    };
    let mut out = Vec::with_capacity(data.len().saturating_mul(3).max(64));
    loop {
        let read = usize::try_from(inflater.total_in()).map_err(|e| corrupt(&e))?;
        let rest = data.get(read..).ok_or_else(|| corrupt(&"it read past its end"))?;
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_vec(rest, &mut out, FlushDecompress::Finish)
            .map_err(|e| corrupt(&e))?;
        if status == Status::StreamEnd {
            return Ok(out);
        }
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        } else if before == (inflater.total_in(), inflater.total_out()) {
            return Err(corrupt(&"the stream ends before its last block"));
        }
    }
}

/// `len` bytes that no compression shrinks (a xorshift stream from `seed`): tests that count
/// pages need bodies stored at their own size.
#[cfg(test)]
pub(super) fn incompressible(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A JSON payload as the bench posts them: 1 KB of words.
#[cfg(test)]
pub(super) fn json_payload() -> Vec<u8> {
    let words = ["invoice", "total", "customer", "shipped", "amount", "vendor", "tax"];
    let mut text = String::from("{\"seq\":17,\"run_id\":\"9f3a61c2b8e04d75\",\"note\":\"");
    let mut i = 0usize;
    while text.len() < 1020 {
        text.push_str(words[(i * 7 + i / 3) % words.len()]);
        text.push(' ');
        i += 1;
    }
    text.push_str("\"}");
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::schema;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        schema::apply(&conn).expect("schema");
        conn
    }

    /// (encoding, stored length) of the blob stored under `hash`.
    fn stored(conn: &Connection, hash: &BodyHash) -> (i64, usize) {
        let (encoding, len): (i64, i64) = conn
            .query_row(
                "SELECT encoding, length(data) FROM bodies WHERE hash = ?1",
                [&hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("stored");
        (encoding, usize::try_from(len).expect("a length"))
    }

    #[test]
    fn a_json_payload_is_stored_compressed_and_read_back_byte_for_byte() {
        let conn = db();
        let payload = json_payload();
        let hash = put(&conn, &payload).expect("put");
        assert_eq!(hash, body_hash(&payload), "the hash is the payload's, not the stored bytes'");
        let (encoding, len) = stored(&conn, &hash);
        assert_eq!(encoding, DEFLATE);
        assert!(len * 2 < payload.len(), "{len} bytes stored for {}", payload.len());
        assert_eq!(find(&conn, &hash).expect("find"), Some(payload));
    }

    #[test]
    fn short_and_incompressible_blobs_are_stored_as_given() {
        let conn = db();
        let mut random = Vec::new();
        let mut block = Sha256::digest(b"seed");
        while random.len() < 2048 {
            random.extend_from_slice(&block[..]);
            block = Sha256::digest(block);
        }
        for blob in [b"{\"a\":1}".to_vec(), random, Vec::new()] {
            let hash = put(&conn, &blob).expect("put");
            assert_eq!(stored(&conn, &hash), (RAW, blob.len()));
            assert_eq!(find(&conn, &hash).expect("find"), Some(blob));
        }
    }

    #[test]
    fn a_repeated_blob_is_stored_once_and_marked_shared() {
        let conn = db();
        let payload = json_payload();
        let first = put(&conn, &payload).expect("put");
        let again = put(&conn, &payload).expect("put again");
        assert_eq!(first, again);
        let (rows, shared): (i64, i64) = conn
            .query_row("SELECT count(*), max(shared) FROM bodies", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("count");
        assert_eq!((rows, shared), (1, 1));
        assert_eq!(find(&conn, &first).expect("find"), Some(payload));
    }

    #[test]
    fn a_row_of_an_unknown_encoding_or_that_does_not_inflate_is_reported_corrupt() {
        let conn = db();
        let hash = put(&conn, &json_payload()).expect("put");
        conn.execute("UPDATE bodies SET data = x'ffff00'", []).expect("garble");
        assert!(matches!(find(&conn, &hash), Err(StoreError::Corrupt(_))));
    }

    /// A corrupt body read on a thread leaves that thread's reads of sound ones intact.
    #[test]
    fn a_stream_cut_short_is_reported_corrupt_and_the_next_read_is_sound() {
        let conn = db();
        let payload = json_payload();
        let hash = put(&conn, &payload).expect("put");
        let sound: Vec<u8> = payload.iter().rev().copied().collect();
        let sound_hash = put(&conn, &sound).expect("put sound");
        conn.execute(
            "UPDATE bodies SET data = substr(data, 1, length(data) / 2) WHERE hash = ?1",
            [&hash[..]],
        )
        .expect("cut");
        for _ in 0..3 {
            assert!(matches!(find(&conn, &hash), Err(StoreError::Corrupt(_))));
            assert_eq!(find(&conn, &sound_hash).expect("find sound"), Some(sound.clone()));
        }
    }

    /// zlib-rs 0.6 panicked compressing after the reset of a stream cut short for want of
    /// room, which is what an incompressible blob's stream was.
    #[test]
    fn incompressible_blobs_between_compressible_ones_on_one_thread_are_stored_and_read_back() {
        let conn = db();
        for seed in 0..40u64 {
            let blob = if seed % 4 == 3 { json_payload() } else { incompressible(seed, 4096) };
            let hash = put(&conn, &blob).expect("put");
            let expected = if seed % 4 == 3 { DEFLATE } else { RAW };
            assert_eq!(stored(&conn, &hash).0, expected, "blob {seed}");
            assert_eq!(find(&conn, &hash).expect("find"), Some(blob));
        }
    }

    /// The states are reused between blobs on one thread: each blob must come back as its
    /// own, whatever was compressed or read before it, and one that inflates to far more
    /// than the room first given grows it.
    #[test]
    fn blobs_compressed_one_after_another_on_one_thread_read_back_as_their_own() {
        let conn = db();
        let zeros = vec![b'0'; 1 << 20];
        let mut blobs = vec![zeros.clone(), json_payload(), zeros];
        blobs[2][12_345] = b'1';
        blobs.push(blobs[1].iter().rev().copied().collect());
        let hashes: Vec<BodyHash> = blobs.iter().map(|b| put(&conn, b).expect("put")).collect();
        assert!(stored(&conn, &hashes[0]).1 * 100 < blobs[0].len(), "a megabyte of zeros");
        for (blob, hash) in blobs.iter().zip(&hashes).rev().chain(blobs.iter().zip(&hashes)) {
            assert_eq!(stored(&conn, hash).0, DEFLATE);
            assert_eq!(find(&conn, hash).expect("find").as_ref(), Some(blob));
        }
    }
}
