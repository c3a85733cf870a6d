//! Request decoding with errors that name the field: JSON bodies (size-capped, any or no
//! content type), query strings, and cursor-pagination parameters.

use axum::body::HttpBody;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::Uri;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::io::ErrorKind;

use super::codes::ApiErrorCode;
use super::error::ApiError;
use super::json_depth::check_depth;
use super::AppState;
use crate::ids::{self, Id, IdKind};
use crate::store::PageRequest;
use crate::time::UnixMs;

/// A JSON body decoded into `T`; a type error names the path of the bad field.
pub struct JsonBody<T>(pub T);

/// Reads the whole body, at most `limits.max_body_bytes` (413 beyond). A declared
/// `Content-Length` over the limit is refused before anything is read: waiting for a body
/// the relay will refuse anyway would hold the connection until the body timeout.
pub async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.config.limits.max_body_bytes;
    let body = req.into_body();
    if body.size_hint().lower() > limit as u64 {
        return Err(ApiError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| body_error(&e, limit))
}

/// The answer to a body that could not be read whole: 413 past `limit`; 400 naming the
/// body when its chunked framing is malformed (hyper reports that as an `InvalidInput` or
/// `InvalidData` I/O error) or it could not be read otherwise. A body that missed its
/// deadline is answered 408 by the API's layer whatever this says.
pub fn body_error(error: &(dyn std::error::Error + 'static), limit: usize) -> ApiError {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return ApiError::too_large(limit);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.kind(), ErrorKind::InvalidInput | ErrorKind::InvalidData) {
                return ApiError::invalid(
                    "body",
                    format!("the request body's chunked framing is invalid: {io}"),
                );
            }
        }
        cause = e.source();
    }
    ApiError::invalid("body", format!("the request body could not be read: {error}"))
}

/// Decodes JSON `bytes`, naming the field at fault. Bodies nesting deeper than
/// `max_depth` below their top level are refused before parsing ([`check_depth`]); the
/// parser's own recursion limit (127 levels of the whole body, short of the `max_depth + 1`
/// the check allows) is then lifted, as the check has bounded its recursion.
pub fn decode_json<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    max_depth: usize,
) -> Result<T, ApiError> {
    check_depth(bytes, max_depth)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // Syntax errors are the body's fault wherever the parser stopped; only a value of
        // the wrong type or shape is blamed on the field that holds it.
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        let message = inner.to_string();
        if let Some(field) = field_not_taken(&path, &message) {
            ApiError::invalid(field, strip_position(&message))
        } else if syntax || path == "." || path.is_empty() {
            ApiError::invalid("body", format!("malformed JSON: {inner}"))
        } else {
            ApiError::invalid(path, inner.to_string())
        }
    })?;
    de.end()
        .map_err(|e| ApiError::invalid("body", format!("trailing characters after JSON: {e}")))?;
    Ok(value)
}

/// Decodes a body the API takes as an object of named fields into `T` ([`decode_json`]).
/// An array is refused: serde would fill a struct from one position by position
/// (`["current"]` as a rerun's `target`), and no body of the API is positional.
pub fn decode_object<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    max_depth: usize,
) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::invalid("body", "a JSON object is required, not an array"));
    }
    decode_json(bytes, max_depth)
}

/// The field at fault when serde refused a field the body's type does not take
/// (`#[serde(deny_unknown_fields)]`: a misspelt field must not be silently ignored) or a
/// field given twice (which of the two would count is a guess). serde words both the same
/// way in every version (`unknown field `x`…`, `duplicate field `x``); the path names an
/// unknown field itself, but stops at the object holding a duplicate one.
fn field_not_taken(path: &str, message: &str) -> Option<String> {
    let rest = ["unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))?;
    let name = &rest[..rest.find('`')?];
    Some(if path == "." || path.is_empty() {
        name.to_string()
    } else if path == name || path.ends_with(&format!(".{name}")) {
        path.to_string()
    } else {
        format!("{path}.{name}")
    })
}

/// serde_json's message without its ` at line L column C` suffix (a body is one line).
fn strip_position(message: &str) -> &str {
    message.rfind(" at line ").map_or(message, |at| &message[..at])
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid("body", "a JSON object is required"));
        }
        decode_object(&bytes, state.config.limits.max_json_depth).map(JsonBody)
    }
}

/// The body of a route that takes none. Anything but nothing (or `{}`, an object with no
/// field, as generic clients send for "no arguments") is refused: such a route would
/// otherwise act on a request whose body says something it does not do (a misspelt
/// argument, or a request meant for another route). The SDKs send no body on these routes.
pub struct NoBody;

impl FromRequest<AppState> for NoBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let empty_object = || {
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
                .is_ok_and(|fields| fields.is_empty())
        };
        if bytes.iter().all(u8::is_ascii_whitespace) || empty_object() {
            return Ok(NoBody);
        }
        Err(ApiError::invalid("body", "this route takes no body: send none (or `{}`)"))
    }
}

/// The parameters a route's query string may hold. [`ApiQuery`] refuses any other name with
/// a 400 naming it: a route must never ignore a parameter it does not know, or a list looks
/// filtered when it is not (a misspelt filter, or one this build does not have).
pub trait QueryParams: DeserializeOwned {
    /// Every accepted name, by group (a list's [`PageParams::NAMES`], then its own), including
    /// names accepted and ignored because a client SDK sends them (say why where listed).
    const ACCEPTED: &'static [&'static [&'static str]];
}

/// A query string decoded into `T` by [`decode_query`].
pub struct ApiQuery<T>(pub T);

impl<T: QueryParams + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        decode_query(&parts.uri).map(ApiQuery)
    }
}

/// Decodes the query string of `uri` into `T`, with a 400 naming the parameter on failure.
/// Names that `T` does not accept ([`QueryParams::ACCEPTED`]) are refused before decoding.
/// For a handler that must check something else first; others take [`ApiQuery`].
pub fn decode_query<T: QueryParams>(uri: &Uri) -> Result<T, ApiError> {
    refuse_unknown(uri.query().unwrap_or(""), T::ACCEPTED)?;
    Query::<T>::try_from_uri(uri).map(|Query(v)| v).map_err(|e| {
        ApiError::invalid(
            "query",
            e.body_text().replace("Failed to deserialize query string: ", ""),
        )
    })
}

/// A 400 naming every parameter of `query` not in `accepted` (`field`: the first of them),
/// or naming a parameter given twice: which of the two would count is a guess.
fn refuse_unknown(query: &str, accepted: &[&[&str]]) -> Result<(), ApiError> {
    let mut unknown: Vec<String> = Vec::new();
    let (mut seen, mut twice): (Vec<String>, Option<String>) = (Vec::new(), None);
    for (name, _) in url::form_urlencoded::parse(query.as_bytes()) {
        if seen.iter().any(|s| *s == name) {
            twice.get_or_insert_with(|| name.to_string());
        }
        seen.push(name.to_string());
        if !accepted.iter().any(|group| group.contains(&name.as_ref()))
            && !unknown.iter().any(|u| *u == name)
        {
            unknown.push(name.into_owned());
        }
    }
    let Some(first) = unknown.first() else {
        return match twice {
            Some(name) => Err(ApiError::invalid(name, "is given more than once: give it once")),
            None => Ok(()),
        };
    };
    let names = unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    let takes: Vec<&str> = accepted.iter().flat_map(|group| group.iter().copied()).collect();
    let takes = if takes.is_empty() {
        "this route takes no query parameter".to_string()
    } else {
        format!("this route takes {}", takes.join(", "))
    };
    let noun = if unknown.len() == 1 { "parameter" } else { "parameters" };
    Err(ApiError::new(ApiErrorCode::InvalidParam, format!("unknown query {noun} {names}: {takes}"))
        .with_field(first.clone()))
}

/// The query of a route that takes no parameter: any is refused.
#[derive(Debug, Deserialize)]
pub struct NoParams {}

impl QueryParams for NoParams {
    const ACCEPTED: &'static [&'static [&'static str]] = &[];
}

/// Extractor for routes without query parameters (`_: NoQuery`).
pub type NoQuery = ApiQuery<NoParams>;

/// `before`, `after`, `limit`, `order` as every list takes them; list queries embed it with
/// `#[serde(flatten)]`. Flattened query values arrive as strings, so numbers are parsed here.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    /// Cursor: the page before this id.
    pub before: Option<String>,
    /// Cursor: the page after this id.
    pub after: Option<String>,
    /// Page size, 1..=limits.max_list_limit (default 10).
    pub limit: Option<String>,
    /// `desc` (default, newest first) or `asc`.
    pub order: Option<String>,
}

/// Parses an optional integer query parameter, naming it when it is not one.
pub fn parse_number<T: std::str::FromStr>(
    field: &str,
    value: Option<&str>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::invalid(field, format!("`{v}` is not a valid number")))
        })
        .transpose()
}

/// Parses an optional time query parameter (RFC 3339 or Unix seconds, as every list takes
/// them), naming it when it is neither.
pub fn parse_time_param(field: &str, value: Option<String>) -> Result<Option<UnixMs>, ApiError> {
    value
        .map(|v| {
            UnixMs::parse(&v).ok_or_else(|| {
                ApiError::invalid(field, format!("`{v}` is not an RFC 3339 time or Unix seconds"))
            })
        })
        .transpose()
}

/// Path id `id` as an id of kind `K`; a malformed one, or one of another kind, is answered
/// 404 like an unknown `resource` (no such id can exist).
pub fn path_id<K: IdKind>(id: String, resource: &str) -> Result<Id<K>, ApiError> {
    Id::try_from(id).map_err(|_| ApiError::not_found(resource))
}

/// A list that takes no filter, only the page parameters.
impl QueryParams for PageParams {
    const ACCEPTED: &'static [&'static [&'static str]] = &[PageParams::NAMES];
}

impl PageParams {
    /// The names of its fields, for a list's [`QueryParams::ACCEPTED`].
    pub const NAMES: &'static [&'static str] = &["before", "after", "limit", "order"];

    /// Validates against the id `prefix` of the listed kind and the configured maximum.
    pub fn to_request(&self, prefix: &str, max_limit: u32) -> Result<PageRequest, ApiError> {
        if self.before.is_some() && self.after.is_some() {
            return Err(ApiError::invalid("before", "give either before or after, not both"));
        }
        for (name, cursor) in [("before", &self.before), ("after", &self.after)] {
            if let Some(c) = cursor {
                if !ids::is_valid(prefix, c) {
                    return Err(ApiError::invalid(
                        name,
                        format!("`{c}` is not a valid {prefix}… cursor"),
                    ));
                }
            }
        }
        let limit = parse_number::<u32>("limit", self.limit.as_deref())?.unwrap_or(10);
        if limit == 0 || limit > max_limit {
            return Err(ApiError::invalid("limit", format!("must be between 1 and {max_limit}")));
        }
        let desc = match self.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                return Err(ApiError::invalid("order", format!("`{other}` is not asc or desc")))
            }
        };
        Ok(PageRequest { before: self.before.clone(), after: self.after.clone(), limit, desc })
    }
}

/// The `{data, list_metadata: {before, after}}` shape of every list.
pub fn list_body(
    data: Vec<serde_json::Value>,
    before: Option<String>,
    after: Option<String>,
) -> serde_json::Value {
    serde_json::json!({"object": "list", "data": data, "list_metadata": {"before": before, "after": after}})
}
