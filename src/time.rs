//! Wall-clock helpers: every stored time is integer Unix milliseconds (UTC).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// RFC 3339 with microseconds and `Z`, the form the uiform SDK and Dify emit.
pub fn rfc3339(ms: i64) -> String {
    let dt: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    dt.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an RFC 3339 timestamp, or integer Unix seconds, into Unix milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    s.parse::<i64>().ok().and_then(|secs| secs.checked_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339_and_accepts_epoch_seconds() {
        let ms = 1_700_000_000_123;
        assert_eq!(parse_time(&rfc3339(ms)), Some(ms));
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
