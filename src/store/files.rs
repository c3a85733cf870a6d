//! Uploaded files: metadata here, content in `bodies` (stored once however often uploaded).

use rusqlite::{params, OptionalExtension};

use super::column::Column;
use super::pg::{self, OrStore};
use super::{bodies, body_hash, Backend, GoneReason, Store, StoreError, StoreResult};

use crate::time::UnixMs;

/// An uploaded file's metadata.
#[derive(Debug, Clone)]
pub struct UploadFile {
    /// UUID.
    pub id: String,
    /// The app it was uploaded to.
    pub app_id: String,
    /// Original file name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Extension without the dot.
    pub extension: String,
    /// MIME type as sent.
    pub mime_type: String,
    /// The end user who uploaded it.
    pub created_by: String,
    /// When it was created.
    pub created_at: UnixMs,
}

impl Store {
    /// Stores an upload and its content.
    pub async fn insert_upload(&self, file: UploadFile, data: Vec<u8>) -> StoreResult<UploadFile> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return insert_upload_pg(p, file, data).await,
        };
        db.write(move |c| {
            let hash = bodies::put(c, &data)?;
            c.prepare_cached(
                "INSERT INTO upload_files (id, app_id, name, size, extension, mime_type, created_by, data_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                file.id,
                file.app_id,
                file.name,
                i64::try_from(file.size).unwrap_or(i64::MAX),
                file.extension,
                file.mime_type,
                file.created_by,
                &hash[..],
                file.created_at
            ])?;
            Ok(file)
        })
        .await
    }

    /// An upload of `app_id` with its content.
    pub async fn upload(&self, app_id: String, id: String) -> StoreResult<(UploadFile, Vec<u8>)> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return upload_pg(p, &app_id, &id).await,
        };
        db.read(move |c| {
            let found = c
                .prepare_cached(
                    "SELECT id, app_id, name, size, extension, mime_type, created_by, created_at, data_hash \
                     FROM upload_files WHERE id = ?1 AND app_id = ?2",
                )?
                .query_row(params![id, app_id], |r| {
                    Ok((
                        UploadFile {
                            id: r.get(0)?,
                            app_id: r.get(1)?,
                            name: r.get(2)?,
                            size: r.get::<_, i64>(3)?.max(0) as u64,
                            extension: r.get(4)?,
                            mime_type: r.get(5)?,
                            created_by: r.get(6)?,
                            created_at: r.get(7)?,
                        },
                        r.get::<_, Vec<u8>>(8)?,
                    ))
                })
                .optional()?;
            let (file, hash) = found.ok_or(StoreError::NotFound("upload file"))?;
            let data = bodies::find(c, &hash)?.ok_or(CONTENT_GONE)?;
            Ok((file, data))
        })
        .await
    }
}

/// An upload whose metadata is there but whose content retention deleted.
const CONTENT_GONE: StoreError =
    StoreError::ContentGone { what: "the uploaded file", why: GoneReason::Expired };

/// [`Store::insert_upload`] on PostgreSQL: the content and the metadata in one transaction.
/// As SQLite's `bodies::put`, content already stored is looked up by its hash and not
/// compressed again, and the hashing and compressing run on the blocking pool: 60 uploads of
/// one 4 MB file on one HTTP/2 connection, each compressed on the runtime's workers, kept
/// them from reading the other uploads' bodies (34 answered 408, past the body deadline).
async fn insert_upload_pg(p: &pg::Pg, file: UploadFile, data: Vec<u8>) -> StoreResult<UploadFile> {
    let blocking = |e: tokio::task::JoinError| {
        tracing::error!(error = %e, "hashing or compressing an upload failed");
        StoreError::Closed
    };
    let (hash, data) =
        tokio::task::spawn_blocking(move || (body_hash(&data), data)).await.map_err(blocking)?;
    let mut client = p.client().await?;
    let tx = client.transaction().await.at(p)?;
    if !pg::bodies::refresh(p, &tx, &hash).await? {
        let blob = tokio::task::spawn_blocking(move || bodies::Prepared::of(&data))
            .await
            .map_err(blocking)?;
        pg::bodies::put_prepared(p, &tx, &blob).await?;
    }
    tx.execute(
        "INSERT INTO upload_files (id, app_id, name, size, extension, mime_type, created_by, data_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &file.id,
            &file.app_id,
            &file.name,
            &i64::try_from(file.size).unwrap_or(i64::MAX),
            &file.extension,
            &file.mime_type,
            &file.created_by,
            &hash.as_slice(),
            &file.created_at.as_ms(),
        ],
    )
    .await
    .at(p)?;
    tx.commit().await.at(p)?;
    Ok(file)
}

/// [`Store::upload`] on PostgreSQL.
async fn upload_pg(p: &pg::Pg, app_id: &str, id: &str) -> StoreResult<(UploadFile, Vec<u8>)> {
    let client = p.client().await?;
    let row = client
        .query_opt(
            "SELECT id, app_id, name, size, extension, mime_type, created_by, created_at, data_hash \
             FROM upload_files WHERE id = $1 AND app_id = $2",
            &[&id, &app_id],
        )
        .await
        .at(p)?
        .ok_or(StoreError::NotFound("upload file"))?;
    const TABLE: &str = "upload_files";
    let file = UploadFile {
        id: row.text(0, TABLE, id)?,
        app_id: row.text(1, TABLE, id)?,
        name: row.text(2, TABLE, id)?,
        size: row.opt_int(3, TABLE, id)?.map_or(0, |n| n.max(0).unsigned_abs()),
        extension: row.text(4, TABLE, id)?,
        mime_type: row.text(5, TABLE, id)?,
        created_by: row.text(6, TABLE, id)?,
        created_at: row.time(7, TABLE, id)?,
    };
    let hash = row
        .opt_bytes(8, TABLE, id)?
        .ok_or_else(|| row.corrupt(8, TABLE, id, "no content hash".into()))?;
    let data = pg::bodies::find(p, &**client, &hash).await?.ok_or(CONTENT_GONE)?;
    Ok((file, data))
}
