//! The job the recover-job runner works through, and how it is stored in
//! `deliveries.recover_job_id`.

use crate::ids::{RecoverJobId, ReplayJobId};

/// A job the recover-job runner works through chunk by chunk: a recover job, or a replay
/// job (stored beside them, see [`super::replay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackgroundJob {
    /// Re-queues ended deliveries.
    Recover(RecoverJobId),
    /// Creates the deliveries an automation missed.
    Replay(ReplayJobId),
}

impl std::fmt::Display for BackgroundJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackgroundJob::Recover(id) => id.fmt(f),
            BackgroundJob::Replay(id) => id.fmt(f),
        }
    }
}

/// The first byte of a stored [`BackgroundJob`]: which kind its id is.
const RECOVER_TAG: u8 = 1;
const REPLAY_TAG: u8 = 2;

impl BackgroundJob {
    /// As stored: a kind byte and the id's 16 bytes (`deliveries.recover_job_id` holds
    /// either kind, and a stored id alone does not say which).
    pub(crate) fn stored(&self) -> Vec<u8> {
        let (tag, id) = match self {
            BackgroundJob::Recover(id) => (RECOVER_TAG, id.stored_bytes()),
            BackgroundJob::Replay(id) => (REPLAY_TAG, id.stored_bytes()),
        };
        let mut bytes = Vec::with_capacity(17);
        bytes.push(tag);
        bytes.extend_from_slice(id);
        bytes
    }
}

/// Stored as [`BackgroundJob::stored`].
impl rusqlite::types::ToSql for BackgroundJob {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Owned(rusqlite::types::Value::Blob(self.stored())))
    }
}

/// Read back by its kind byte; any other stored value is a conversion failure (a corrupt
/// value).
impl rusqlite::types::FromSql for BackgroundJob {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        use rusqlite::types::{FromSqlError, ValueRef};
        let blob = value.as_blob()?;
        let (tag, id) = blob
            .split_first()
            .ok_or(FromSqlError::InvalidBlobSize { expected_size: 17, blob_size: 0 })?;
        match *tag {
            RECOVER_TAG => RecoverJobId::column_result(ValueRef::Blob(id)).map(Self::Recover),
            REPLAY_TAG => ReplayJobId::column_result(ValueRef::Blob(id)).map(Self::Replay),
            other => Err(FromSqlError::OutOfRange(i64::from(other))),
        }
    }
}
