//! The registry of API error codes: every `code` an error answer carries, with its one HTTP
//! status and what it means. An [`super::ApiError`] holds one of these, so a code cannot be
//! spelled anywhere else, nor answered with another status. The wire strings Dify's Workflow
//! App API defines (`invalid_param`, `unauthorized`, `not_found`, `no_file_uploaded`,
//! `too_many_files`, `file_too_large`, `unsupported_file_type`) are kept exactly as Dify
//! clients read them.

use axum::http::StatusCode;

/// Declares the enum and its table from one list, so that no code can lack a row.
macro_rules! registry {
    ($($code:ident => $wire:literal, $status:literal, $meaning:literal;)*) => {
        /// A stable, machine-readable error code of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ApiErrorCode {
            $(#[doc = $meaning] $code,)*
        }

        impl ApiErrorCode {
            /// Every code, in the README table's order.
            pub const ALL: &'static [ApiErrorCode] = &[$(Self::$code,)*];

            /// The code as written in the JSON `code` member.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$code => $wire,)* }
            }

            /// The one HTTP status answered with this code.
            pub fn status(self) -> StatusCode {
                let status = match self { $(Self::$code => $status,)* };
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }

            /// What the code means, in one line.
            pub fn meaning(self) -> &'static str {
                match self { $(Self::$code => $meaning,)* }
            }
        }
    };
}

registry! {
    InvalidParam => "invalid_param", 400,
        "a query parameter, body field or body is malformed or invalid; `field` names it";
    NoFileUploaded => "no_file_uploaded", 400,
        "an upload has no `file` part, or is not a multipart form (Dify's code)";
    TooManyFiles => "too_many_files", 400,
        "an upload has more than one `file` part (Dify's code)";
    Unauthorized => "unauthorized", 401,
        "no key, or a key that is not valid";
    Forbidden => "forbidden", 403,
        "a valid key of the wrong kind: an app key on the admin API, an admin key on the app API";
    InsufficientRole => "insufficient_role", 403,
        "a valid key whose role is below the one the route needs (viewer < operator < admin); the message names it";
    NotFound => "not_found", 404,
        "no such route, or the thing the path names does not exist";
    MethodNotAllowed => "method_not_allowed", 405,
        "the route does not serve this method; `Allow` lists those it does";
    RequestTimeout => "request_timeout", 408,
        "the request body did not arrive within `limits.body_read_timeout_ms`";
    IdempotencyKeyReused => "idempotency_key_reused", 409,
        "the `Idempotency-Key` was already used for a different request (a message's within 24 hours, a workflow run's by the app)";
    AutomationDisabled => "automation_disabled", 409,
        "the automation is disabled (a message addressed to it, a replay); enable it first";
    JobEnded => "job_ended", 409,
        "the recover job has ended (completed or cancelled): there is nothing left to cancel";
    AutomationDeleted => "automation_deleted", 409,
        "the log's automation was deleted: no secret to sign a rerun with, no current target";
    MissingPayload => "missing_payload", 410,
        "the content needed (a log's request body, an uploaded file) is no longer stored: content retention removed it (Svix's code)";
    ContentExpunged => "content_expunged", 410,
        "the message's content was erased by `DELETE /v1/messages/{id}/content`; it cannot be sent again";
    PayloadTooLarge => "payload_too_large", 413,
        "the request body is larger than `limits.max_body_bytes`";
    FileTooLarge => "file_too_large", 413,
        "an upload is larger than its file kind allows (Dify's code)";
    UriTooLong => "uri_too_long", 414,
        "the path and query are longer than `limits.max_uri_bytes`";
    UnsupportedFileType => "unsupported_file_type", 415,
        "the app does not accept the uploaded file's type (Dify's code)";
    LimitExceeded => "limit_exceeded", 422,
        "well-formed, but the write would pass a documented limit (a sheet's rows or cells, a cell's length)";
    HeadersTooLarge => "headers_too_large", 431,
        "too many header fields, or header bytes past `limits.max_header_bytes`";
    InternalError => "internal_error", 500,
        "a fault of the relay's own; the server log has the detail";
    Unavailable => "unavailable", 503,
        "the relay is shutting down, or every connection is busy; retry";
    DatabaseLocked => "database_locked", 503,
        "another process holds the database's write lock; nothing was written";
    ConcurrencyLimit => "concurrency_limit", 503,
        "no call slot came free for a rerun or test call; retry";
    TooManyUploads => "too_many_uploads", 503,
        "`limits.max_concurrent_uploads` uploads are being received; retry";
    ClientTooSlow => "client_too_slow", 503,
        "(an `error` event of a streaming run) the client fell `limits.max_body_bytes` of events behind and its stream ends; the run goes on";
    Timeout => "timeout", 504,
        "the request took longer than the API's timeout";
    InsufficientStorage => "insufficient_storage", 507,
        "the disk holding the database is full; nothing was written";
}

use ApiErrorCode as C;

impl ApiErrorCode {
    /// The code for an error answer no handler of ours wrote (an extractor's rejection, a
    /// 405, the timeout layer's 504). A status no code has is answered as the nearest
    /// generic one: a client error as `invalid_param` (400), a server error as
    /// `internal_error` (500). So axum's 422 for a JSON body of the wrong shape becomes a
    /// 400, and 422 keeps its one meaning.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => C::Unauthorized,
            StatusCode::FORBIDDEN => C::Forbidden,
            StatusCode::NOT_FOUND => C::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => C::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => C::RequestTimeout,
            StatusCode::PAYLOAD_TOO_LARGE => C::PayloadTooLarge,
            StatusCode::URI_TOO_LONG => C::UriTooLong,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => C::HeadersTooLarge,
            StatusCode::SERVICE_UNAVAILABLE => C::Unavailable,
            StatusCode::GATEWAY_TIMEOUT => C::Timeout,
            s if s.is_client_error() => C::InvalidParam,
            _ => C::InternalError,
        }
    }
}

#[cfg(test)]
#[path = "codes_tests.rs"]
mod tests;
