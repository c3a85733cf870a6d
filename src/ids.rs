//! Prefixed, time-sortable identifiers (`log_auto_…`, `endp_…`, `msg_…`).
//!
//! The suffix is the 32-digit lowercase hex of a UUIDv7, whose first 12 digits are the
//! creation time in milliseconds. So ids sort in creation order, `ORDER BY id` needs no
//! separate time column, and a time window is an id range (see [`Id::time_bound`]).
//!
//! Our own ids are typed: an [`Id<K>`] holds only a valid id of kind `K` (its prefix and
//! suffix were checked where it was made or read), so a message id cannot be passed where a
//! delivery id is expected, and code past the edges (API, store) never re-validates.
//!
//! SQLite stores an id as the 16 bytes of its UUID (schema version 8), not its text: the
//! column's kind gives the prefix back. The text took 36–41 bytes, and the hot tables and
//! their indexes hold about twenty ids per delivered message. Byte order is the hex digits'
//! order, so `ORDER BY id` and id ranges are unchanged.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Prefix of AutomationLog ids (uiform's `log_auto_`).
pub const LOG: &str = Log::PREFIX;
/// Prefix of automation (endpoint) ids.
pub const AUTOMATION: &str = Automation::PREFIX;
/// Prefix of message ids; also the `webhook-id` receivers de-duplicate on.
pub const MESSAGE: &str = Message::PREFIX;
/// Prefix of delivery ids.
pub const DELIVERY: &str = Delivery::PREFIX;
/// Prefix of recover job ids.
pub const RECOVER_JOB: &str = RecoverJob::PREFIX;
/// Prefix of replay job ids (replay-missing; stored beside recover jobs).
pub const REPLAY_JOB: &str = ReplayJob::PREFIX;
/// Prefix of spreadsheet ids (the Sheets-style sink's).
pub const SPREADSHEET: &str = Spreadsheet::PREFIX;

const SUFFIX_LEN: usize = 32;

/// A kind of id: a zero-sized marker naming its prefix.
pub trait IdKind: 'static {
    /// What every id of this kind starts with.
    const PREFIX: &'static str;
}

macro_rules! id_kinds {
    ($($(#[$meta:meta])* $kind:ident = $prefix:literal, $alias:ident;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum $kind {}

            impl IdKind for $kind {
                const PREFIX: &'static str = $prefix;
            }

            #[doc = concat!("An id of kind [`", stringify!($kind), "`] (`", $prefix, "…`).")]
            pub type $alias = Id<$kind>;
        )+
    };
}

id_kinds! {
    /// AutomationLog ids (uiform's `log_auto_`).
    Log = "log_auto_", LogId;
    /// Automation (endpoint) ids.
    Automation = "endp_", AutomationId;
    /// Message ids; also the `webhook-id` receivers de-duplicate on.
    Message = "msg_", MessageId;
    /// Delivery ids.
    Delivery = "dlv_", DeliveryId;
    /// Recover job ids.
    RecoverJob = "rcv_", RecoverJobId;
    /// Replay job ids (replay-missing; stored beside recover jobs).
    ReplayJob = "rpl_", ReplayJobId;
    /// Spreadsheet ids (the Sheets-style sink's).
    Spreadsheet = "ss_", SpreadsheetId;
    /// API key ids (`/v1/keys`); not the key itself, which is shown once and never stored.
    ApiKey = "key_", ApiKeyId;
    /// Enable/disable events of an automation (its trail).
    AutomationEvent = "aevt_", AutomationEventId;
}

/// A valid id of kind `K`: `K::PREFIX` followed by 32 lowercase hex digits. Serialized as
/// that string, stored in SQLite as the 16 bytes the digits spell; read back only if it is one.
pub struct Id<K: IdKind> {
    text: String,
    /// The suffix's 16 bytes, what SQLite stores (kept beside the text, so binding one
    /// neither parses nor allocates).
    bytes: [u8; 16],
    // `fn() -> K`: the id owns no `K`, so it is `Send`/`Sync` whatever `K` is.
    kind: PhantomData<fn() -> K>,
}

/// A string that is not an id of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {prefix}… id")]
pub struct InvalidId {
    /// The prefix the id should have had.
    pub prefix: &'static str,
    /// What was given.
    pub value: String,
}

impl<K: IdKind> Id<K> {
    /// A new id, ordered after every id this process made before (see [`new_id`]).
    #[allow(clippy::new_without_default)] // a default id would be a fresh one: say `new`
    pub fn new() -> Self {
        Self::from_valid(new_id(K::PREFIX))
    }

    /// A new id made at `ms` (Unix milliseconds) at the earliest: [`Id::new`], unless this
    /// host's clock is behind `ms` (another clock's reading, PostgreSQL's), then a version 7
    /// uuid of `ms` itself.
    pub fn new_not_before(ms: i64) -> Self {
        let id = Self::new();
        if id.time_of() >= ms {
            return id;
        }
        let ms = u64::try_from(ms).unwrap_or_default();
        let at =
            uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
        Self::from_bytes(Uuid::new_v7(at).into_bytes())
    }

    /// An id from text already known to be valid for `K`.
    fn from_valid(text: String) -> Self {
        let bytes = suffix_bytes(&text[K::PREFIX.len()..]);
        Id { text, bytes, kind: PhantomData }
    }

    /// The id whose stored form is `bytes` (either backend's).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut text = String::with_capacity(K::PREFIX.len() + SUFFIX_LEN);
        text.push_str(K::PREFIX);
        text.push_str(Uuid::from_bytes(bytes).simple().encode_lower(&mut Uuid::encode_buffer()));
        Id { text, bytes, kind: PhantomData }
    }

    /// The 32 hex digits after the prefix (the stored bytes, spelled out).
    pub fn hex_digits(&self) -> &str {
        &self.text[K::PREFIX.len()..]
    }

    /// The 16 bytes SQLite stores for this id.
    pub fn stored_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// `s` as an id of this kind, if it is one.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        Self::try_from(s.to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The id as an owned `String`.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The smallest id of this kind created at or after `ms` (Unix milliseconds); every id
    /// created before `ms` sorts below it.
    pub fn time_bound(ms: i64) -> Self {
        Self::from_valid(time_bound(K::PREFIX, ms))
    }

    /// When this id was made (Unix ms), from its first 12 hex digits.
    pub fn time_of(&self) -> i64 {
        // Valid by construction, so the 12 digits are hex and fit in 48 bits.
        time_of(K::PREFIX, &self.text).unwrap_or_default()
    }
}

impl<K: IdKind> TryFrom<String> for Id<K> {
    type Error = InvalidId;

    fn try_from(value: String) -> Result<Self, InvalidId> {
        if is_valid(K::PREFIX, &value) {
            Ok(Self::from_valid(value))
        } else {
            Err(InvalidId { prefix: K::PREFIX, value })
        }
    }
}

impl<K: IdKind> std::str::FromStr for Id<K> {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, InvalidId> {
        Self::parse(s)
    }
}

// The derives would require `K: Clone`, `K: PartialEq`, …; the kinds are uninhabited
// markers, so these are written out over the text alone.
impl<K: IdKind> Clone for Id<K> {
    fn clone(&self) -> Self {
        Id { text: self.text.clone(), bytes: self.bytes, kind: PhantomData }
    }
}

impl<K: IdKind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<K: IdKind> Eq for Id<K> {}

impl<K: IdKind> Hash for Id<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl<K: IdKind> PartialOrd for Id<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: IdKind> Ord for Id<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl<K: IdKind> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Read-only access to the text, so an id goes wherever a `&str` is read (SQL parameters,
/// headers, logs); it cannot be changed through it.
impl<K: IdKind> std::ops::Deref for Id<K> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

/// Maps keyed by id can be searched with a `&str` (hash and order are the text's).
impl<K: IdKind> std::borrow::Borrow<str> for Id<K> {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl<K: IdKind> From<Id<K>> for String {
    fn from(id: Id<K>) -> String {
        id.text
    }
}

/// For SQL built with bound values (`store::page::Conditions`): the stored bytes.
impl<K: IdKind> From<Id<K>> for rusqlite::types::Value {
    fn from(id: Id<K>) -> Self {
        rusqlite::types::Value::Blob(id.bytes.to_vec())
    }
}

/// For JSON built with `json!`: the id as a string.
impl<K: IdKind> From<Id<K>> for serde_json::Value {
    fn from(id: Id<K>) -> Self {
        serde_json::Value::String(id.text)
    }
}

impl<K: IdKind> Serialize for Id<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de, K: IdKind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::try_from(text).map_err(serde::de::Error::custom)
    }
}

/// Bound as PostgreSQL's `hr_id` (a bytea domain of 16 bytes, see src/store/pg/schema.sql):
/// the same 16 bytes as in SQLite. A parameter PostgreSQL infers as the domain is accepted
/// as well as plain bytea (tokio-postgres checks the exact type otherwise).
impl<K: IdKind> tokio_postgres::types::ToSql for Id<K> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        tokio_postgres::types::ToSql::to_sql(&self.bytes.as_slice(), ty, out)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        use tokio_postgres::types::{Kind, Type};
        *ty == Type::BYTEA || matches!(ty.kind(), Kind::Domain(inner) if *inner == Type::BYTEA)
    }

    tokio_postgres::types::to_sql_checked!();
}

impl<K: IdKind> ToSql for Id<K> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Blob(&self.bytes)))
    }
}

/// A stored id that is not 16 bytes is a conversion failure, which the store reports as a
/// corrupt value naming the row (`store::decode::value`), never a default.
impl<K: IdKind> FromSql for Id<K> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let blob = value.as_blob()?;
        let bytes: [u8; 16] = blob.try_into().map_err(|_| FromSqlError::InvalidBlobSize {
            expected_size: 16,
            blob_size: blob.len(),
        })?;
        Ok(Self::from_bytes(bytes))
    }
}

/// The 16 bytes 32 valid lowercase hex digits spell.
fn suffix_bytes(hex: &str) -> [u8; 16] {
    let digit = |b: u8| match b {
        b'0'..=b'9' => b - b'0',
        _ => b - b'a' + 10,
    };
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    bytes
}

/// A new id with `prefix`, ordered after every id this process made before (of any prefix).
/// `Uuid::now_v7` guarantees it: one process-wide context holds the last timestamp and a
/// counter, reseeded each millisecond and incremented within it; when the counter wraps
/// the timestamp moves on, and when the clock goes back the last timestamp is kept. The
/// store relies on this: ids taken in order in its writer are committed in that order.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + SUFFIX_LEN);
    id.push_str(prefix);
    id.push_str(Uuid::now_v7().simple().encode_lower(&mut Uuid::encode_buffer()));
    id
}

/// Whether `s` is an id of this kind: the prefix followed by 32 lowercase hex digits.
pub fn is_valid(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == SUFFIX_LEN && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The smallest id of this kind created at or after `ms` (Unix milliseconds); every id
/// created before `ms` sorts below it.
pub fn time_bound(prefix: &str, ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1);
    format!("{prefix}{ms:012x}{:020}", 0)
}

/// The stored form (SQLite value) of `text`, an id of any kind: its suffix's 16 bytes. For
/// code that holds ids as text whose kind it has already checked (list cursors); text that
/// is not an id stays text, which equals no stored id.
pub fn stored_value(text: &str) -> rusqlite::types::Value {
    let suffix = text.len().checked_sub(SUFFIX_LEN).and_then(|at| text.get(at..));
    match suffix {
        Some(hex) if hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            rusqlite::types::Value::Blob(suffix_bytes(hex).to_vec())
        }
        _ => rusqlite::types::Value::Text(text.to_string()),
    }
}

/// When an id of this kind was made (Unix ms), from its first 12 hex digits; `None` when
/// `id` is not of this kind.
pub fn time_of(prefix: &str, id: &str) -> Option<i64> {
    if !is_valid(prefix, id) {
        return None;
    }
    i64::from_str_radix(&id[prefix.len()..prefix.len() + 12], 16).ok()
}

#[cfg(test)]
#[path = "ids_tests.rs"]
mod tests;
