//! The API error: a status and a JSON body `{code, message, status, field?}` (the shape
//! Dify clients expect, and free-form enough for the uiform SDK).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::codes::ApiErrorCode;
use crate::delivery::NoSlot;
use crate::outbound::OneCallError;
use crate::store::{Conflict, GoneReason, StorageFailure, StoreError};

/// An error answered to a client; its status is its code's.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The registered code, which also fixes the HTTP status.
    pub code: ApiErrorCode,
    /// What is wrong, for a person.
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `code` and `message`, naming no field.
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None }
    }

    /// The same error, naming `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The HTTP status answered.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// A 400 `invalid_param` naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        Self::new(ApiErrorCode::InvalidParam, message).with_field(field)
    }

    /// A 404 for the named kind of thing.
    pub fn not_found(what: &str) -> Self {
        Self::new(ApiErrorCode::NotFound, format!("{what} not found"))
    }

    /// A 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::Unauthorized, message)
    }

    /// A 403: a valid key of the wrong kind.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ApiErrorCode::Forbidden, message)
    }

    /// A 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            ApiErrorCode::PayloadTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// A 410: `what` (e.g. "the message's payload") is gone, for reason `why`; a client
    /// can tell content retention (`missing_payload`) from an erasure (`content_expunged`).
    pub fn gone(why: GoneReason, what: &str) -> Self {
        match why {
            GoneReason::Expired => Self::new(
                ApiErrorCode::MissingPayload,
                format!("{what} is no longer stored: content retention removed it"),
            ),
            GoneReason::Expunged => Self::new(
                ApiErrorCode::ContentExpunged,
                format!("{what} was expunged (DELETE /v1/messages/{{id}}/content)"),
            ),
        }
    }

    /// A 500 whose detail is logged, not shown.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ApiErrorCode::InternalError, "internal error; see the server log")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.storage_failure() {
            Some(StorageFailure::DiskFull) => {
                tracing::debug!(error = %e, "a write failed: the disk is full");
                return Self::new(
                    ApiErrorCode::InsufficientStorage,
                    "the disk holding the database is full; nothing was written. Free space, \
                     then retry",
                );
            }
            Some(StorageFailure::Locked) => {
                tracing::debug!(error = %e, "a write failed: the database is locked");
                return Self::new(
                    ApiErrorCode::DatabaseLocked,
                    "another process holds the database's write lock; nothing was written. \
                     Retry later",
                );
            }
            Some(StorageFailure::Other(_)) | None => {}
        }
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(conflict, message) => match conflict {
                Conflict::IdempotencyKeyReused => {
                    Self::new(ApiErrorCode::IdempotencyKeyReused, message)
                        .with_field("Idempotency-Key")
                }
                Conflict::AutomationDisabled => {
                    Self::new(ApiErrorCode::AutomationDisabled, message)
                }
                // Only the run's own task finishes it; no request reaches this.
                Conflict::RunNotRunning => ApiError::internal(message),
            },
            StoreError::ContentGone { what, why } => Self::gone(why, what),
            StoreError::Unaddressed => ApiError::invalid("processor_id", e.to_string()),
            StoreError::Limit(message) => Self::new(ApiErrorCode::LimitExceeded, message),
            StoreError::Closed => {
                Self::new(ApiErrorCode::Unavailable, "the server is shutting down")
            }
            StoreError::Postgres(crate::store::pg::PgError::Unavailable { .. }) => {
                tracing::warn!(error = %e, "the database is unavailable");
                Self::new(
                    ApiErrorCode::Unavailable,
                    "the database is unavailable; nothing was written. Retry later",
                )
            }
            StoreError::Postgres(crate::store::pg::PgError::Lost { .. }) => {
                tracing::warn!(error = %e, "the connection to the database was lost");
                Self::new(
                    ApiErrorCode::Unavailable,
                    "the connection to the database was lost: what was being written may or \
                     may not have been committed. Retry later (a message retried with its \
                     Idempotency-Key is never taken twice)",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<NoSlot> for ApiError {
    fn from(e: NoSlot) -> Self {
        let code = match e {
            NoSlot::Busy { .. } | NoSlot::RateLimited { .. } => ApiErrorCode::ConcurrencyLimit,
            NoSlot::ShuttingDown => ApiErrorCode::Unavailable,
        };
        Self::new(code, e.to_string())
    }
}

impl From<OneCallError> for ApiError {
    fn from(e: OneCallError) -> Self {
        match e {
            OneCallError::NoSlot(e) => e.into(),
            OneCallError::Store(e) => e.into(),
            OneCallError::Lost(e) => ApiError::internal(e),
        }
    }
}

/// The code of an error answer, kept on the response for the layer that logs it (see
/// `json_errors`).
#[derive(Debug, Clone, Copy)]
pub struct AnsweredCode(pub ApiErrorCode);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body =
            json!({"code": self.code.as_str(), "message": self.message, "status": status.as_u16()});
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(AnsweredCode(self.code));
        response
    }
}
