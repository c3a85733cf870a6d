//! Wall-clock times: every stored time is a [`UnixMs`], integer Unix milliseconds (UTC).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A point in time, as integer Unix milliseconds (UTC). Stored as an SQLite INTEGER and
/// serialized as the bare integer, so the type changes no column and no stored JSON.
/// Arithmetic is explicit and saturating: a time never wraps around.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMs(i64);

impl UnixMs {
    /// The Unix epoch, time 0.
    pub const EPOCH: Self = Self(0);

    /// The time `ms` milliseconds after the Unix epoch.
    pub const fn from_ms(ms: i64) -> Self {
        Self(ms)
    }

    /// Now.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_ms(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down), the form Dify's integer
    /// `created_at` fields and the webhook signature timestamp use.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `d` later.
    pub fn plus(self, d: Duration) -> Self {
        self.plus_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// `ms` milliseconds later (earlier when negative).
    pub const fn plus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// `ms` milliseconds earlier.
    pub const fn minus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn since(self, earlier: Self) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// RFC 3339 with microseconds and `Z`, the form the uiform SDK and Dify emit.
    pub fn rfc3339(self) -> String {
        let dt: DateTime<Utc> = Utc.timestamp_millis_opt(self.0).single().unwrap_or_default();
        dt.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Parses an RFC 3339 timestamp, or integer Unix seconds; a time past the end of year
    /// 9999 is none (RFC 3339 has four-digit years, so it could not be shown back).
    pub fn parse(s: &str) -> Option<Self> {
        let ms = match DateTime::parse_from_rfc3339(s) {
            Ok(dt) => dt.timestamp_millis(),
            Err(_) => s.parse::<i64>().ok()?.checked_mul(1000)?,
        };
        (ms <= LAST_SHOWABLE_MS).then_some(Self(ms))
    }
}

/// 9999-12-31T23:59:59.999Z, the last time [`UnixMs::rfc3339`] can show.
const LAST_SHOWABLE_MS: i64 = 253_402_300_799_999;

impl ToSql for UnixMs {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for UnixMs {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Self)
    }
}

impl From<UnixMs> for rusqlite::types::Value {
    fn from(t: UnixMs) -> Self {
        Self::Integer(t.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339_and_accepts_epoch_seconds() {
        let t = UnixMs::from_ms(1_700_000_000_123);
        assert_eq!(UnixMs::parse(&t.rfc3339()), Some(t));
        assert_eq!(UnixMs::parse("1700000000"), Some(UnixMs::from_ms(1_700_000_000_000)));
        assert_eq!(UnixMs::parse("yesterday"), None);
        let last = UnixMs::parse("253402300799").expect("the last second of 9999");
        assert_eq!(last.rfc3339(), "9999-12-31T23:59:59.000000Z");
        assert_eq!(UnixMs::parse(&last.rfc3339()), Some(last));
        for past_9999 in ["253402300800", "100000000000000", "+10000-01-01T00:00:00Z"] {
            assert_eq!(UnixMs::parse(past_9999), None, "{past_9999}");
        }
    }

    #[test]
    fn serializes_as_the_bare_integer() {
        let t = UnixMs::from_ms(1_700_000_000_123);
        assert_eq!(serde_json::to_string(&t).ok().as_deref(), Some("1700000000123"));
        assert_eq!(serde_json::from_str::<UnixMs>("1700000000123").ok(), Some(t));
    }

    #[test]
    fn arithmetic_saturates_and_seconds_round_down() {
        assert_eq!(UnixMs::from_ms(i64::MAX).plus(Duration::from_secs(1)).as_ms(), i64::MAX);
        assert_eq!(UnixMs::from_ms(5_000).since(UnixMs::from_ms(7_500)), -2_500);
        assert_eq!(UnixMs::from_ms(1_999).as_secs(), 1);
        assert_eq!(UnixMs::from_ms(-1).as_secs(), -1);
    }
}
