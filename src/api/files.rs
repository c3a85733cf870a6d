//! `POST /v1/files/upload` (Dify): one multipart `file` plus `user`; 201 with the file's
//! metadata. Kinds and sizes follow the app's upload settings and Dify's limits.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::{ApiError, ApiResult, AppState};
use crate::store::UploadFile;
use crate::time::now_ms;
use crate::workflow::app::AppDefinition;
use crate::workflow::files::{kind_for, size_limit, MAX_UPLOAD_BYTES};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/files/upload", post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
}

fn dify_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status, code, message: message.into(), field: Some("file".into()) }
}

struct Received {
    name: String,
    mime_type: String,
    data: Vec<u8>,
}

async fn upload(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<AppDefinition>>,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // Not multipart at all (e.g. a client that sent no file): Dify answers no_file_uploaded.
    let mut form =
        form.map_err(|e| dify_error(StatusCode::BAD_REQUEST, "no_file_uploaded", e.body_text()))?;
    let mut file: Option<Received> = None;
    let mut user: Option<String> = None;
    let bad_form = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            dify_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                "file is larger than the upload limit",
            )
        } else {
            ApiError::invalid("file", format!("malformed multipart body: {}", e.body_text()))
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        match field.name() {
            Some("file") => {
                if file.is_some() {
                    return Err(dify_error(
                        StatusCode::BAD_REQUEST,
                        "too_many_files",
                        "only one file may be uploaded at a time",
                    ));
                }
                let name = field.file_name().unwrap_or("file").to_string();
                let mime_type =
                    field.content_type().unwrap_or("application/octet-stream").to_string();
                let extension = extension_of(&name);
                let kind = kind_for(
                    &extension,
                    &app.file_upload.allowed_types,
                    &app.file_upload.allowed_extensions,
                )
                .ok_or_else(|| {
                    dify_error(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_file_type",
                        format!("files of type `.{extension}` are not allowed"),
                    )
                })?;
                let limit = size_limit(kind);
                let mut data = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    if (data.len() + chunk.len()) as u64 > limit {
                        return Err(dify_error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "file_too_large",
                            format!("{kind} files may be at most {} MB", limit / (1024 * 1024)),
                        ));
                    }
                    data.extend_from_slice(&chunk);
                }
                file = Some(Received { name, mime_type, data });
            }
            Some("user") => user = Some(field.text().await.map_err(bad_form)?),
            _ => {}
        }
    }
    let file = file.ok_or_else(|| {
        dify_error(StatusCode::BAD_REQUEST, "no_file_uploaded", "please upload your file")
    })?;
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
        created_at: now_ms(),
    };
    let stored = state.store.insert_upload(record, file.data).await?;
    Ok((StatusCode::CREATED, Json(upload_json(&stored))))
}

/// Dify's answer for an upload.
pub(super) fn upload_json(f: &UploadFile) -> Value {
    json!({"id": f.id, "name": f.name, "size": f.size, "extension": f.extension, "mime_type": f.mime_type,
           "created_by": f.created_by, "created_at": f.created_at / 1000})
}

fn extension_of(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}
