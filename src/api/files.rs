//! `POST /v1/files/upload` (Dify): one multipart `file` plus `user`; 201 with the file's
//! metadata. Kinds and sizes follow the app's upload settings and Dify's limits.
//!
//! Every part of the form is bounded, and so is the memory an upload can take: the body by
//! the app's own limit (refused unread when its declared length is over it), the file by
//! its kind's limit while it streams in, `user` and the file's name and type by their
//! lengths, other parts (ignored, as Dify does) by the body limit, and the number of parts.
//! What the multipart parser holds besides the parts' data (preamble, part headers) is
//! bounded by [`FRAMING_BUDGET`]. At most `limits.max_concurrent_uploads` uploads are read
//! at once; past that an upload is refused (503) before its body is read, so the memory
//! uploads take is bounded whatever the number of clients or HTTP/2 streams; each file's
//! buffer is sized from the declared length, not doubled as it grows.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use axum::body::{Bytes, HttpBody};
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::routing::MethodRouter;
use axum::{Extension, Json};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::extract::NoQuery;
use super::stored_text::refuse_nul;
use super::upload_body::{metered, Meter, Refusal, FRAMING_BUDGET};
use super::{ApiError, ApiErrorCode, ApiResult, AppState};
use crate::store::UploadFile;
use crate::time::UnixMs;
use crate::workflow::app::AppDefinition;
use crate::workflow::files::{kind_for, largest_limit, size_limit};

/// Most parts a form may have: `file`, `user`, and a few more a client may add.
const MAX_PARTS: usize = 16;
/// Longest `user`, characters (as on runs).
const MAX_USER_CHARS: usize = 256;
/// Longest file name and content type of the `file` part, characters.
const MAX_NAME_CHARS: usize = 255;
/// What a body may carry beyond the app's largest file: boundaries, part headers, `user`.
const FORM_ALLOWANCE: u64 = 64 * 1024;

/// The permits for uploads being read; one per upload.
#[derive(Clone)]
pub(super) struct UploadSlots(Arc<Semaphore>);

/// The upload route's layers: its own body limit (the handler applies the app's; axum's
/// default of 2 MB must not cut it short) and `max_concurrent` upload permits.
pub(super) fn upload_layers(
    handler: MethodRouter<AppState>,
    max_concurrent: usize,
) -> MethodRouter<AppState> {
    let slots = UploadSlots(Arc::new(Semaphore::new(max_concurrent)));
    let limited: MethodRouter<AppState> = handler.layer(DefaultBodyLimit::disable());
    limited.layer(Extension(slots))
}

/// An error of Dify's upload API, naming the `file` part.
fn dify_error(code: ApiErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message).with_field("file")
}

/// The answer to a body over the app's limit.
fn too_large(meter: &Meter) -> ApiError {
    let file_mb = meter.limit().saturating_sub(FORM_ALLOWANCE) / (1024 * 1024);
    dify_error(
        ApiErrorCode::FileTooLarge,
        format!(
            "the upload is larger than this app accepts: a file of at most {file_mb} MB plus \
             {} KiB for the rest of the form ({} bytes in all)",
            FORM_ALLOWANCE / 1024,
            meter.limit()
        ),
    )
}

/// The answer to a parser error: the limit the meter stopped the body at, a body that could
/// not be read, or a malformed form.
fn form_error(meter: &Meter, e: MultipartError) -> ApiError {
    match (meter.refusal(), meter.unreadable()) {
        (Some(Refusal::TooLarge), _) => too_large(meter),
        (Some(Refusal::Framing), _) => framing_error(),
        (None, Some(unreadable)) => unreadable.clone(),
        (None, None) => {
            ApiError::invalid("file", format!("malformed multipart body: {}", e.body_text()))
        }
    }
}

/// Runs one step of the parser (`next_field`, `chunk`); a framing refusal when it must
/// wait while its feed is paused for the budget (see [`Meter::paused`]).
async fn parse<T>(
    meter: &Meter,
    step: impl Future<Output = Result<T, MultipartError>>,
) -> Result<T, ApiError> {
    let mut step = pin!(step);
    let result = poll_fn(|cx| match step.as_mut().poll(cx) {
        Poll::Pending if meter.paused() => {
            meter.refuse_framing();
            Poll::Ready(None)
        }
        other => other.map(Some),
    })
    .await;
    match result {
        Some(result) => result.map_err(|e| form_error(meter, e)),
        None => Err(framing_error()),
    }
}

/// The answer to a form whose preamble or part headers are over the budget.
fn framing_error() -> ApiError {
    ApiError::invalid(
        "body",
        format!("the form's preamble or part headers exceed {} KiB", FRAMING_BUDGET / 1024),
    )
}

/// The next chunk of `field`'s data, counted as handed out.
async fn next_chunk(meter: &Meter, field: &mut Field<'_>) -> Result<Option<Bytes>, ApiError> {
    let chunk = parse(meter, field.chunk()).await?;
    if let Some(chunk) = &chunk {
        meter.handed_out(chunk.len());
    }
    Ok(chunk)
}

struct Received {
    name: String,
    mime_type: String,
    data: Vec<u8>,
}

/// The answer to an upload past `limits.max_concurrent_uploads`.
fn too_many_uploads(max: usize) -> ApiError {
    ApiError::new(
        ApiErrorCode::TooManyUploads,
        format!(
            "{max} uploads are being received already (limits.max_concurrent_uploads); \
             retry shortly"
        ),
    )
}

pub(super) async fn upload(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<AppDefinition>>,
    Extension(slots): Extension<UploadSlots>,
    _: NoQuery,
    req: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let limit = largest_limit(&app.file_upload.allowed_types) + FORM_ALLOWANCE;
    let (parts, body) = req.into_parts();
    // A declared length (hyper has checked it is a number) over the limit is refused
    // unread, and so is an upload past the cap; the pump then only drains what the client
    // still sends, keeping nothing.
    let declared = body.size_hint().lower();
    let (body, meter) = metered(body, limit);
    if declared > limit {
        return Err(too_large(&meter));
    }
    let _slot = slots
        .0
        .try_acquire_owned()
        .map_err(|_| too_many_uploads(state.config.limits.max_concurrent_uploads))?;
    // Not multipart at all (e.g. a client that sent no file): Dify answers no_file_uploaded.
    let mut form = Multipart::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|e| dify_error(ApiErrorCode::NoFileUploaded, e.body_text()))?;
    let mut file: Option<Received> = None;
    let mut user: Option<String> = None;
    let mut count = 0;
    while let Some(mut field) = parse(&meter, form.next_field()).await? {
        count += 1;
        if count > MAX_PARTS {
            return Err(ApiError::invalid("body", format!("a form has at most {MAX_PARTS} parts")));
        }
        match field.name() {
            Some("file") => {
                if file.is_some() {
                    return Err(dify_error(
                        ApiErrorCode::TooManyFiles,
                        "only one file may be uploaded at a time",
                    ));
                }
                file = Some(read_file(&app, &meter, declared, &mut field).await?);
            }
            Some("user") => {
                if user.is_some() {
                    return Err(ApiError::invalid("user", "give one user part"));
                }
                user = Some(read_user(&meter, &mut field).await?);
            }
            // Ignored, as Dify does; drained here so that its bytes are counted.
            _ => while next_chunk(&meter, &mut field).await?.is_some() {},
        }
    }
    let file =
        file.ok_or_else(|| dify_error(ApiErrorCode::NoFileUploaded, "please upload your file"))?;
    let user = user
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::invalid("user", "user is required"))?;
    let record = UploadFile {
        id: uuid::Uuid::now_v7().to_string(),
        app_id: app.id.clone(),
        extension: extension_of(&file.name),
        name: file.name,
        size: file.data.len() as u64,
        mime_type: file.mime_type,
        created_by: user,
        created_at: UnixMs::now(),
    };
    let stored = state.store.insert_upload(record, file.data).await?;
    Ok((StatusCode::CREATED, Json(upload_json(&stored))))
}

/// The `file` part: its kind must be allowed, and its data is refused as soon as it passes
/// the kind's limit, so no more than the limit is ever held. The buffer is reserved for
/// the body's `declared` length (at most the limit): grown by doubling instead, it would
/// hold up to twice the file while it is read.
async fn read_file(
    app: &AppDefinition,
    meter: &Meter,
    declared: u64,
    field: &mut Field<'_>,
) -> Result<Received, ApiError> {
    let name = field.file_name().unwrap_or("file").to_string();
    let mime_type = field.content_type().unwrap_or("application/octet-stream").to_string();
    for (what, value) in [("file name", &name), ("content type", &mime_type)] {
        if value.chars().count() > MAX_NAME_CHARS {
            return Err(ApiError::invalid(
                "file",
                format!("the {what} is longer than {MAX_NAME_CHARS} characters"),
            ));
        }
        if value.contains('\0') {
            return Err(ApiError::invalid("file", format!("the {what} must not contain NUL")));
        }
    }
    let extension = extension_of(&name);
    let kind =
        kind_for(&extension, &app.file_upload.allowed_types, &app.file_upload.allowed_extensions)
            .ok_or_else(|| {
            dify_error(
                ApiErrorCode::UnsupportedFileType,
                format!("files of type `.{extension}` are not allowed"),
            )
        })?;
    let limit = size_limit(kind);
    let mut data = Vec::with_capacity(usize::try_from(declared.min(limit)).unwrap_or(0));
    while let Some(chunk) = next_chunk(meter, field).await? {
        if (data.len() + chunk.len()) as u64 > limit {
            return Err(dify_error(
                ApiErrorCode::FileTooLarge,
                format!("{kind} files may be at most {} MB", limit / (1024 * 1024)),
            ));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Received { name, mime_type, data })
}

/// The `user` part, read no further than [`MAX_USER_CHARS`] characters can take.
async fn read_user(meter: &Meter, field: &mut Field<'_>) -> Result<String, ApiError> {
    let too_long = || ApiError::invalid("user", format!("at most {MAX_USER_CHARS} characters"));
    let mut bytes = Vec::new();
    while let Some(chunk) = next_chunk(meter, field).await? {
        // A character is at most 4 bytes in UTF-8.
        if bytes.len() + chunk.len() > MAX_USER_CHARS * 4 {
            return Err(too_long());
        }
        bytes.extend_from_slice(&chunk);
    }
    let user = String::from_utf8(bytes).map_err(|_| ApiError::invalid("user", "must be UTF-8"))?;
    if user.chars().count() > MAX_USER_CHARS {
        return Err(too_long());
    }
    refuse_nul("user", &user)?;
    Ok(user)
}

/// Dify's answer for an upload.
pub(super) fn upload_json(f: &UploadFile) -> Value {
    json!({"id": f.id, "name": f.name, "size": f.size, "extension": f.extension, "mime_type": f.mime_type,
           "created_by": f.created_by, "created_at": f.created_at.as_secs()})
}

fn extension_of(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}
