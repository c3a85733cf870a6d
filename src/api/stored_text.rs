//! Text the relay stores never holds the NUL character: PostgreSQL's `text` cannot hold it,
//! and one 400 naming the field on both backends beats SQLite taking what PostgreSQL fails
//! on. (A list filter holding it matches nothing instead: see `store::page::Conditions`;
//! and an id in a path holding it names nothing: [`refuse_nul_id`].)

use super::{ApiError, ApiResult};

/// What a refused field is told.
const NUL_REFUSED: &str = "must not contain the NUL character";

/// Refuses `value`, the text of `field` the relay is to store, when it holds NUL.
pub(super) fn refuse_nul(field: &str, value: &str) -> ApiResult<()> {
    if value.contains('\0') {
        return Err(ApiError::invalid(field, NUL_REFUSED));
    }
    Ok(())
}

/// [`refuse_nul`] for an optional field.
pub(super) fn refuse_nul_in(field: &str, value: Option<&str>) -> ApiResult<()> {
    value.map_or(Ok(()), |v| refuse_nul(field, v))
}

/// Refuses `id`, an id from a request's path that the store looks up as text, when it holds
/// NUL: no stored id does, so `resource` is not found, SQLite's answer, which PostgreSQL
/// would give as a failed query (a 500).
pub(crate) fn refuse_nul_id(resource: &str, id: &str) -> ApiResult<()> {
    if id.contains('\0') {
        return Err(ApiError::not_found(resource));
    }
    Ok(())
}
