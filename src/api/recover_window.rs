//! The time window of a recover or replay job: `since` and `until` as RFC 3339 times, Unix seconds, or
//! durations back from now (`90s`, `30m`, `1h`, `2d`), checked so that a window that cannot
//! mean what was meant is refused with a 400 naming the field instead of matching nothing.

use super::ApiError;

use crate::time::UnixMs;

/// 2000-01-01T00:00:00Z. Anything earlier is taken for a mistake (Unix seconds
/// such as `3600` meant as "an hour", or an epoch zero): no relay stored anything then. A
/// time before the first stored message but after this is accepted: it is an honest "from
/// the beginning" (`"since": "7d"` on a relay started yesterday).
const EARLIEST: UnixMs = UnixMs::from_ms(946_684_800_000);

/// How far in the future `until` may lie, for a client whose clock runs ahead; it is then
/// read as now.
const CLOCK_SKEW_MS: i64 = 60_000;

const FORMS: &str = "an RFC 3339 time, Unix seconds, or a duration back from now such as \
    90s, 30m, 1h or 2d";

/// A window `[since, until)`, from the request's `since` and optional `until`
/// (default: now), read at `now`.
pub(super) fn window(
    since: &str,
    until: Option<&str>,
    now: UnixMs,
) -> Result<(UnixMs, UnixMs), ApiError> {
    let since_ms = instant("since", since, now)?;
    if since_ms > now {
        return Err(ApiError::invalid("since", format!("`{since}` is in the future")));
    }
    let until_ms = match until {
        None => now.plus_ms(1),
        Some(u) => {
            let at = instant("until", u, now)?;
            if at > now.plus_ms(CLOCK_SKEW_MS) {
                return Err(ApiError::invalid("until", format!("`{u}` is in the future")));
            }
            at.min(now.plus_ms(1))
        }
    };
    if until_ms <= since_ms {
        return Err(ApiError::invalid("until", "must be after since"));
    }
    Ok((since_ms, until_ms))
}

/// One end of the window: an absolute time, or now minus a duration.
fn instant(field: &str, value: &str, now: UnixMs) -> Result<UnixMs, ApiError> {
    let v = value.trim();
    if v.starts_with('-') {
        return Err(ApiError::invalid(
            field,
            format!("`{value}` is negative; a duration counts back from now, e.g. 1h"),
        ));
    }
    let at = match ago_ms(v) {
        Some(ago) => now.as_ms().checked_sub(ago).map(UnixMs::from_ms),
        None => UnixMs::parse(v),
    }
    .ok_or_else(|| ApiError::invalid(field, format!("`{value}` is not {FORMS}")))?;
    if at < EARLIEST {
        return Err(ApiError::invalid(
            field,
            format!(
                "`{value}` is before 2000-01-01, which is surely a mistake (a bare number is \
                 read as Unix seconds; for a window back from now write e.g. 1h)"
            ),
        ));
    }
    Ok(at)
}

/// `90s`, `30m`, `1h`, `2d` in ms; `None` when `v` is not such a duration (or overflows).
fn ago_ms(v: &str) -> Option<i64> {
    let unit_ms: i64 = match v.chars().last()? {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    let digits = &v[..v.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMs = UnixMs::from_ms(1_750_000_000_000);

    fn field_of(r: Result<(UnixMs, UnixMs), ApiError>) -> String {
        r.expect_err("refused").field.unwrap_or_default()
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(window("1h", None, NOW).unwrap(), (NOW.minus_ms(3_600_000), NOW.plus_ms(1)));
        assert_eq!(
            window("2d", Some("30m"), NOW).unwrap(),
            (NOW.minus_ms(172_800_000), NOW.minus_ms(1_800_000))
        );
        assert_eq!(window(" 90s ", Some("0s"), NOW).unwrap(), (NOW.minus_ms(90_000), NOW));
        assert_eq!(window("1750000000", None, NOW.plus_ms(5)).unwrap().0, NOW);
    }

    #[test]
    fn nonsense_is_refused_naming_the_field() {
        for since in ["-1h", "1x", "h", "1.5h", "yesterday", "", "99999999999999999999d"] {
            assert_eq!(field_of(window(since, None, NOW)), "since", "{since:?}");
        }
        assert_eq!(field_of(window("0", None, NOW)), "since", "epoch zero");
        assert_eq!(field_of(window("3600", None, NOW)), "since", "seconds meant as a duration");
        assert_eq!(field_of(window("10000d", None, NOW)), "since", "before 2000");
        assert_eq!(field_of(window("2099-01-01T00:00:00Z", None, NOW)), "since", "future");
        assert_eq!(field_of(window("1h", Some("-5m"), NOW)), "until");
        assert_eq!(field_of(window("1h", Some("2h"), NOW)), "until", "until before since");
        assert_eq!(field_of(window("1h", Some("1h"), NOW)), "until", "empty window");
        let far = NOW.plus_ms(3_600_000).rfc3339();
        assert_eq!(field_of(window("1h", Some(&far), NOW)), "until", "future");
    }

    #[test]
    fn an_until_within_the_clock_skew_is_read_as_now() {
        let ahead = NOW.plus_ms(30_000).rfc3339();
        assert_eq!(window("1h", Some(&ahead), NOW).unwrap().1, NOW.plus_ms(1));
    }
}
