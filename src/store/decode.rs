//! Reading stored values back. The schema's CHECKs keep wrong values out, but a database can
//! still hold one (written by hand, by an older build, or damaged): such a value is an error
//! naming its table, column and row, never a default. A default would change behaviour
//! silently: unreadable `event_types` would mean "every event type", unreadable
//! `webhook_headers` would send calls without their credentials.

use rusqlite::types::{FromSql, FromSqlError, ValueRef};
use rusqlite::Row;
use serde::de::DeserializeOwned;

use crate::ids::{Id, IdKind};

/// A stored value that cannot be read as what its column holds.
#[derive(Debug, thiserror::Error)]
#[error("stored data is corrupt: {table}.{column} of {id} cannot be read ({reason})")]
pub struct CorruptValue {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: String,
    /// The row's key.
    pub id: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A stored name that is none of its enum's (see the `FromSql` impls of the status enums).
#[derive(Debug, thiserror::Error)]
#[error("unknown value `{0}`")]
pub(super) struct UnknownName(pub String);

/// Reads a stored enum name with `parse`; any other name is a [`FromSqlError`].
pub(super) fn name<T>(
    value: ValueRef<'_>,
    parse: fn(&str) -> Option<T>,
) -> Result<T, FromSqlError> {
    let text = value.as_str()?;
    parse(text).ok_or_else(|| FromSqlError::Other(Box::new(UnknownName(text.to_string()))))
}

/// Defines an enum stored (and shown) by name: `as_str`, `parse`, and the `ToSql` and
/// `FromSql` that store it by that name. A stored name none of its own is an error, never
/// a default (the schema's CHECK lists the same names).
macro_rules! stored_enum {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Stored and displayed name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses a stored or requested name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                $crate::store::decode::name(value, $name::parse)
            }
        }
    };
}
pub(super) use stored_enum;

/// The error of column `idx` of row `id` of `table`, whose value is wrong for `reason`.
pub(super) fn corrupt(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
    id: &str,
    reason: String,
) -> rusqlite::Error {
    let column = r.as_ref().column_name(idx).map_or_else(|_| idx.to_string(), str::to_string);
    let value = CorruptValue { table, column, id: id.to_string(), reason };
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(value))
}

/// Column `idx` of row `id` of `table`; a value of another type, or one its type refuses
/// (an unknown enum name), is a [`CorruptValue`].
pub(super) fn value<T: FromSql>(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
    id: &str,
) -> rusqlite::Result<T> {
    r.get(idx).map_err(|e| match e {
        rusqlite::Error::FromSqlConversionFailure(_, _, reason) => {
            corrupt(r, idx, table, id, reason.to_string())
        }
        rusqlite::Error::InvalidColumnType(_, _, found) => {
            corrupt(r, idx, table, id, format!("a {found} value"))
        }
        rusqlite::Error::IntegralValueOutOfRange(_, n) => {
            corrupt(r, idx, table, id, format!("{n} is out of range"))
        }
        other => other,
    })
}

/// Column `idx` of `table`, the row's own key, read as an id of kind `K`; a key that is not
/// a stored id (16 bytes) is a [`CorruptValue`] naming the stored value.
pub(super) fn key<K: IdKind>(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
) -> rusqlite::Result<Id<K>> {
    let stored = r.get_ref(idx)?;
    Id::column_result(stored).map_err(|e| {
        let shown = format!("{stored:?}");
        corrupt(r, idx, table, &shown, e.to_string())
    })
}

/// JSON column `idx` of row `id` of `table` read as a `T`; anything else (NULL included) is
/// a [`CorruptValue`].
pub(super) fn json<T: DeserializeOwned>(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
    id: &str,
) -> rusqlite::Result<T> {
    json_or_null(r, idx, table, id)?.ok_or_else(|| corrupt(r, idx, table, id, "NULL".into()))
}

/// Like [`json`], for a column that may be NULL.
pub(super) fn json_or_null<T: DeserializeOwned>(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
    id: &str,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = value(r, idx, table, id)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(r, idx, table, id, e.to_string())))
        .transpose()
}

/// Column `idx` of row `id` of `table`, which must pass `valid` (a value its type reads but
/// the column cannot hold, such as a secret that signs nothing); otherwise a [`CorruptValue`]
/// saying it is not `what`.
pub(super) fn checked<T: FromSql>(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
    id: &str,
    valid: impl Fn(&T) -> bool,
    what: &str,
) -> rusqlite::Result<T> {
    let v = value(r, idx, table, id)?;
    if valid(&v) {
        Ok(v)
    } else {
        Err(corrupt(r, idx, table, id, format!("not {what}")))
    }
}

/// A body hash in column `idx` of row `id` of `table`, which must be 16 bytes.
pub(super) fn hash(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
    id: &str,
) -> rusqlite::Result<super::BodyHash> {
    let bytes: Vec<u8> = value(r, idx, table, id)?;
    bytes.as_slice().try_into().map_err(|_| corrupt(r, idx, table, id, "not 16 bytes".into()))
}

/// A stored flag in column `idx` of row `id` of `table`: 0 or 1, anything else a
/// [`CorruptValue`] (SQLite reads any non-zero integer as true, while the queries that
/// filter on a flag compare it with 1, so a 7 would be shown as true and acted on as false).
pub(super) fn flag(
    r: &Row<'_>,
    idx: usize,
    table: &'static str,
    id: &str,
) -> rusqlite::Result<bool> {
    checked::<i64>(r, idx, table, id, |v| matches!(v, 0 | 1), "0 or 1").map(|v| v == 1)
}
