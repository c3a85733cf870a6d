//! Reading a row of either backend by column index: what the table families' decoders
//! share. A family writes its `from_row` once, generic over [`Column`], and both
//! `rusqlite::Row` and `tokio_postgres::Row` feed it. A value that is not what its column
//! holds is a [`super::CorruptValue`] naming table, column and row, on both backends (see
//! `decode`); each backend returns it in its own error type (rusqlite's row mapping takes
//! only `rusqlite::Error`).

use serde::de::DeserializeOwned;

use crate::ids::{Id, IdKind};
use crate::time::UnixMs;

use super::decode;

/// A row, read column by column; `table` and `id` name the row in a corrupt value's error.
pub(crate) trait Column {
    /// The backend's error.
    type Error;
    /// Text.
    fn text(&self, idx: usize, table: &'static str, id: &str) -> Result<String, Self::Error>;
    /// Text or NULL.
    fn opt_text(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<String>, Self::Error>;
    /// An integer or NULL.
    fn opt_int(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<i64>, Self::Error>;
    /// A flag (SQLite: 0 or 1, anything else corrupt; PostgreSQL: boolean).
    fn flag(&self, idx: usize, table: &'static str, id: &str) -> Result<bool, Self::Error>;
    /// Bytes or NULL.
    fn opt_bytes(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, Self::Error>;
    /// A real number (SQLite: REAL or INTEGER; PostgreSQL: double precision).
    fn real(&self, idx: usize, table: &'static str, id: &str) -> Result<f64, Self::Error>;
    /// The error saying column `idx` of row `id` is wrong for `reason`.
    fn corrupt(&self, idx: usize, table: &'static str, id: &str, reason: String) -> Self::Error;

    /// Bytes.
    fn bytes(&self, idx: usize, table: &'static str, id: &str) -> Result<Vec<u8>, Self::Error> {
        self.opt_bytes(idx, table, id)?.ok_or_else(|| self.corrupt(idx, table, id, "NULL".into()))
    }

    /// An integer.
    fn int(&self, idx: usize, table: &'static str, id: &str) -> Result<i64, Self::Error> {
        self.opt_int(idx, table, id)?.ok_or_else(|| self.corrupt(idx, table, id, "NULL".into()))
    }

    /// An integer from 0 to `u32::MAX` (a row number, a count); any other is corrupt.
    fn uint(&self, idx: usize, table: &'static str, id: &str) -> Result<u32, Self::Error> {
        let n = self.int(idx, table, id)?;
        u32::try_from(n).map_err(|_| self.corrupt(idx, table, id, format!("{n} is out of range")))
    }

    /// A time (Unix ms).
    fn time(&self, idx: usize, table: &'static str, id: &str) -> Result<UnixMs, Self::Error> {
        self.int(idx, table, id).map(UnixMs::from_ms)
    }

    /// A time or NULL.
    fn opt_time(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<UnixMs>, Self::Error> {
        Ok(self.opt_int(idx, table, id)?.map(UnixMs::from_ms))
    }

    /// The row's own key, an id of kind `K` (16 bytes).
    fn key<K: IdKind>(&self, idx: usize, table: &'static str) -> Result<Id<K>, Self::Error> {
        let bytes = self.bytes(idx, table, "?")?;
        let stored: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
            self.corrupt(idx, table, &format!("{bytes:?}"), "not a stored id (16 bytes)".into())
        })?;
        Ok(Id::from_bytes(stored))
    }

    /// An id of kind `K` (16 bytes) that refers to another row, or NULL.
    fn opt_id<K: IdKind>(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<Id<K>>, Self::Error> {
        let Some(bytes) = self.opt_bytes(idx, table, id)? else { return Ok(None) };
        let stored: [u8; 16] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| self.corrupt(idx, table, id, "not a stored id (16 bytes)".into()))?;
        Ok(Some(Id::from_bytes(stored)))
    }

    /// Text that `parse` reads (a stored enum name); anything else is corrupt.
    fn parsed<T>(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, Self::Error> {
        let text = self.text(idx, table, id)?;
        parse(&text).ok_or_else(|| self.corrupt(idx, table, id, format!("unknown value `{text}`")))
    }

    /// Text that must pass `valid`; otherwise corrupt, saying it is not `what`.
    fn checked_text(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
        valid: impl Fn(&str) -> bool,
        what: &str,
    ) -> Result<String, Self::Error> {
        let text = self.text(idx, table, id)?;
        if valid(&text) {
            Ok(text)
        } else {
            Err(self.corrupt(idx, table, id, format!("not {what}")))
        }
    }

    /// JSON text read as a `T`, or NULL; JSON that is not a `T` is corrupt.
    fn json_or_null<T: DeserializeOwned>(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<T>, Self::Error> {
        self.opt_text(idx, table, id)?
            .map(|t| {
                serde_json::from_str(&t).map_err(|e| self.corrupt(idx, table, id, e.to_string()))
            })
            .transpose()
    }

    /// JSON text read as a `T`; NULL is corrupt.
    fn json<T: DeserializeOwned>(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<T, Self::Error> {
        self.json_or_null(idx, table, id)?
            .ok_or_else(|| self.corrupt(idx, table, id, "NULL".into()))
    }
}

impl Column for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn text(&self, idx: usize, table: &'static str, id: &str) -> rusqlite::Result<String> {
        decode::value(self, idx, table, id)
    }

    fn opt_text(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> rusqlite::Result<Option<String>> {
        decode::value(self, idx, table, id)
    }

    fn opt_int(&self, idx: usize, table: &'static str, id: &str) -> rusqlite::Result<Option<i64>> {
        decode::value(self, idx, table, id)
    }

    fn flag(&self, idx: usize, table: &'static str, id: &str) -> rusqlite::Result<bool> {
        decode::flag(self, idx, table, id)
    }

    fn opt_bytes(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> rusqlite::Result<Option<Vec<u8>>> {
        decode::value(self, idx, table, id)
    }

    fn real(&self, idx: usize, table: &'static str, id: &str) -> rusqlite::Result<f64> {
        decode::value(self, idx, table, id)
    }

    fn key<K: IdKind>(&self, idx: usize, table: &'static str) -> rusqlite::Result<Id<K>> {
        decode::key(self, idx, table)
    }

    fn corrupt(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
        reason: String,
    ) -> rusqlite::Error {
        decode::corrupt(self, idx, table, id, reason)
    }
}
