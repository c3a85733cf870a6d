//! Prefixed, time-sortable identifiers (`log_auto_…`, `endp_…`, `msg_…`).
//!
//! The suffix is the 32-digit lowercase hex of a UUIDv7, whose first 12 digits are the
//! creation time in milliseconds. So ids sort in creation order, `ORDER BY id` needs no
//! separate time column, and a time window is an id range (see [`time_bound`]).

use uuid::Uuid;

/// Prefix of AutomationLog ids (uiform's `log_auto_`).
pub const LOG: &str = "log_auto_";
/// Prefix of automation (endpoint) ids.
pub const AUTOMATION: &str = "endp_";
/// Prefix of message ids; also the `webhook-id` receivers de-duplicate on.
pub const MESSAGE: &str = "msg_";
/// Prefix of delivery ids.
pub const DELIVERY: &str = "dlv_";
/// Prefix of recover job ids.
pub const RECOVER_JOB: &str = "rcv_";
/// Prefix of replay job ids (replay-missing; stored beside recover jobs).
pub const REPLAY_JOB: &str = "rpl_";

const SUFFIX_LEN: usize = 32;

/// A new id with `prefix`, ordered after every id this process made before (of any prefix).
/// `Uuid::now_v7` guarantees it: one process-wide context holds the last timestamp and a
/// counter, reseeded each millisecond and incremented within it; when the counter wraps
/// the timestamp moves on, and when the clock goes back the last timestamp is kept. The
/// store relies on this: ids taken in order in its writer are committed in that order.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + SUFFIX_LEN);
    id.push_str(prefix);
    id.push_str(Uuid::now_v7().simple().encode_lower(&mut Uuid::encode_buffer()));
    id
}

/// Whether `s` is an id of this kind: the prefix followed by 32 lowercase hex digits.
pub fn is_valid(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == SUFFIX_LEN && rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The smallest id of this kind created at or after `ms` (Unix milliseconds); every id
/// created before `ms` sorts below it.
pub fn time_bound(prefix: &str, ms: i64) -> String {
    let ms = ms.clamp(0, (1 << 48) - 1);
    format!("{prefix}{ms:012x}{:020}", 0)
}

/// When an id of this kind was made (Unix ms), from its first 12 hex digits; `None` when
/// `id` is not of this kind.
pub fn time_of(prefix: &str, id: &str) -> Option<i64> {
    if !is_valid(prefix, id) {
        return None;
    }
    i64::from_str_radix(&id[prefix.len()..prefix.len() + 12], 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_ordered_valid_and_bounded_by_time() {
        let a = new_id(LOG);
        let b = new_id(LOG);
        assert!(a < b);
        assert!(is_valid(LOG, &a));
        assert!(!is_valid(AUTOMATION, &a));
        assert!(!is_valid(LOG, "log_auto_XYZ"));
        let now = chrono::Utc::now().timestamp_millis();
        assert!(time_bound(LOG, now - 1000) < a);
        assert!(time_bound(LOG, now + 1000) > b);
        let made = time_of(LOG, &a).unwrap();
        assert!((now - 1000..=now).contains(&made), "{made} vs {now}");
        assert_eq!(time_of(LOG, &time_bound(LOG, 1_700_000_000_123)), Some(1_700_000_000_123));
        assert_eq!(time_of(AUTOMATION, &a), None);
    }

    /// Many ids in the same millisecond, from several threads at once: each thread's ids
    /// strictly increase, and all are distinct.
    #[test]
    fn ids_strictly_increase_within_a_millisecond_and_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..20_000).map(|_| new_id(LOG)).collect::<Vec<_>>()))
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            let made = thread.join().expect("thread");
            assert!(made.windows(2).all(|w| w[0] < w[1]), "ids of one thread went back");
            let same_ms = made.windows(2).filter(|w| w[0][..21] == w[1][..21]).count();
            assert!(same_ms > 0, "no two ids in the same millisecond: nothing was checked");
            all.extend(made);
        }
        assert_eq!(all.len(), 80_000, "two ids were equal");
    }
}
