//! [`Column`] for a PostgreSQL row: a value of the wrong type is a [`CorruptValue`], as on
//! SQLite (the schema's types and CHECKs make one rare: a bigint column never holds text).

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Row;

use crate::store::column::Column;
use crate::store::{CorruptValue, StoreError};

/// Column `idx` as a `T`, or the corrupt value naming it.
fn get<'a, T: FromSql<'a>>(
    r: &'a Row,
    idx: usize,
    table: &'static str,
    id: &str,
) -> Result<T, StoreError> {
    r.try_get(idx).map_err(|e| r.corrupt(idx, table, id, e.to_string()))
}

impl Column for Row {
    type Error = StoreError;

    fn text(&self, idx: usize, table: &'static str, id: &str) -> Result<String, StoreError> {
        get(self, idx, table, id)
    }

    fn opt_text(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        get(self, idx, table, id)
    }

    /// bigint, integer or smallint (counts and limits are integer columns).
    fn opt_int(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let ty = self.columns().get(idx).map(|c| c.type_().clone());
        match ty {
            Some(Type::INT4) => Ok(get::<Option<i32>>(self, idx, table, id)?.map(i64::from)),
            Some(Type::INT2) => Ok(get::<Option<i16>>(self, idx, table, id)?.map(i64::from)),
            _ => get(self, idx, table, id),
        }
    }

    fn flag(&self, idx: usize, table: &'static str, id: &str) -> Result<bool, StoreError> {
        get(self, idx, table, id)
    }

    fn opt_bytes(
        &self,
        idx: usize,
        table: &'static str,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        get(self, idx, table, id)
    }

    fn real(&self, idx: usize, table: &'static str, id: &str) -> Result<f64, StoreError> {
        get(self, idx, table, id)
    }

    fn corrupt(&self, idx: usize, table: &'static str, id: &str, reason: String) -> StoreError {
        let column = self.columns().get(idx).map_or_else(|| idx.to_string(), |c| c.name().into());
        StoreError::CorruptValue(Box::new(CorruptValue {
            table,
            column,
            id: id.to_string(),
            reason,
        }))
    }
}
