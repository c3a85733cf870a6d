//! Prefixed, time-sortable identifiers (`log_auto_…`, `endp_…`, `msg_…`).
//!
//! The suffix is the 32-digit lowercase hex of a UUIDv7, whose first 12 digits are the
//! creation time in milliseconds. So ids sort in creation order, `ORDER BY id` needs no
//! separate time column, and a time window is an id range (see [`Id::time_bound`]).
//!
//! Our own ids are typed: an [`Id<K>`] holds only a valid id of kind `K` (its prefix and
//! suffix were checked where it was made or read), so a message id cannot be passed where a
//! delivery id is expected, and code past the edges (API, store) never re-validates.

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
}

/// A valid id of kind `K`: `K::PREFIX` followed by 32 lowercase hex digits. Serialized and
/// stored as that string; read back (JSON or SQLite) only if it is one.
pub struct Id<K: IdKind> {
    text: String,
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
        Id { text: new_id(K::PREFIX), kind: PhantomData }
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
        Id { text: time_bound(K::PREFIX, ms), kind: PhantomData }
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
            Ok(Id { text: value, kind: PhantomData })
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
        Id { text: self.text.clone(), kind: PhantomData }
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

/// For SQL built with bound values (`store::page::Conditions`).
impl<K: IdKind> From<Id<K>> for rusqlite::types::Value {
    fn from(id: Id<K>) -> Self {
        rusqlite::types::Value::Text(id.text)
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

impl<K: IdKind> ToSql for Id<K> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.text.as_str().into())
    }
}

/// A stored id not of its kind is a conversion failure, which the store reports as a
/// corrupt value naming the row (`store::decode::value`), never a default.
impl<K: IdKind> FromSql for Id<K> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Self::parse(text).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
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
