//! The API error: a status and a JSON body `{code, message, status, field?}` (the shape
//! Dify clients expect, and free-form enough for the uiform SDK).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::delivery::NoSlot;
use crate::outbound::OneCallError;
use crate::store::{StorageFailure, StoreError};

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`invalid_param`, `not_found`, `unauthorized`, …).
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A 400 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field}: {}", message.into());
        Self { status: StatusCode::BAD_REQUEST, code: "invalid_param", message, field: Some(field) }
    }

    /// A 404 for the named kind of thing.
    pub fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("{what} not found"),
            field: None,
        }
    }

    /// A 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
            field: None,
        }
    }

    /// A 403: a valid key of the wrong kind.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
            field: None,
        }
    }

    /// A 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: None,
        }
    }

    /// A 413.
    pub fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("request body is larger than {limit} bytes"),
            field: None,
        }
    }

    /// A 500 whose detail is logged, not shown.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: "internal error; see the server log".into(),
            field: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.storage_failure() {
            Some(StorageFailure::DiskFull) => {
                tracing::error!(error = %e, "a write failed: the disk is full");
                return Self {
                    status: StatusCode::INSUFFICIENT_STORAGE,
                    code: "insufficient_storage",
                    message: "the disk holding the database is full; nothing was written. \
                              Free space, then retry"
                        .into(),
                    field: None,
                };
            }
            Some(StorageFailure::Locked) => {
                tracing::error!(error = %e, "a write failed: the database is locked");
                return Self {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "database_locked",
                    message: "another process holds the database's write lock; nothing was \
                              written. Retry later"
                        .into(),
                    field: None,
                };
            }
            Some(StorageFailure::Other(_)) | None => {}
        }
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(message) => ApiError::conflict(message),
            StoreError::Limit(message) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "limit_exceeded",
                message,
                field: None,
            },
            StoreError::Closed => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "unavailable",
                message: "the server is shutting down".into(),
                field: None,
            },
            other => ApiError::internal(other),
        }
    }
}

impl From<NoSlot> for ApiError {
    fn from(e: NoSlot) -> Self {
        let code = match e {
            NoSlot::Busy { .. } => "concurrency_limit",
            NoSlot::ShuttingDown => "unavailable",
        };
        Self { status: StatusCode::SERVICE_UNAVAILABLE, code, message: e.to_string(), field: None }
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
pub struct AnsweredCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body =
            json!({"code": self.code, "message": self.message, "status": self.status.as_u16()});
        if let Some(field) = self.field {
            body["field"] = field.into();
        }
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(AnsweredCode(self.code));
        response
    }
}
