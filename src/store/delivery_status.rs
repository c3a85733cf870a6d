//! Where a delivery stands, as stored (`deliveries.status`, CHECKed by the schema) and shown.

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in flight).
    Pending,
    /// A call got a 2xx.
    Succeeded,
    /// Every attempt failed, or the maximum age passed.
    Exhausted,
    /// Ended without further retries (automation deleted or disabled, or a recover attempt failed).
    Failed,
}

impl DeliveryStatus {
    /// Stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Exhausted => "exhausted",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "succeeded" => DeliveryStatus::Succeeded,
            "exhausted" => DeliveryStatus::Exhausted,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// Stored as [`DeliveryStatus::as_str`]'s name.
impl rusqlite::types::ToSql for DeliveryStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// A stored name none of [`DeliveryStatus::parse`]'s is an error (never a default; see `decode`).
impl rusqlite::types::FromSql for DeliveryStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        super::decode::name(value, DeliveryStatus::parse)
    }
}
