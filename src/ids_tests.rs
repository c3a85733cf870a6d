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

#[test]
fn typed_id_round_trips_through_text_json_and_sqlite() {
    let id = MessageId::new();
    assert!(id.as_str().starts_with("msg_"));
    assert_eq!(MessageId::parse(id.as_str()), Ok(id.clone()));
    assert_eq!(id.to_string(), id.as_str());
    let json = serde_json::to_string(&id).expect("serialize");
    assert_eq!(json, format!("\"{id}\""), "the wire form is the plain string");
    assert_eq!(serde_json::from_str::<MessageId>(&json).expect("deserialize"), id);
    let conn = rusqlite::Connection::open_in_memory().expect("db");
    let back: MessageId =
        conn.query_row("SELECT ?1", [&id], |r| r.get(0)).expect("read back from SQLite");
    assert_eq!(back, id);
}

#[test]
fn an_id_of_another_kind_or_malformed_is_refused() {
    let delivery = DeliveryId::new();
    let err = MessageId::parse(delivery.as_str()).expect_err("a delivery id is no message id");
    assert_eq!(err.prefix, "msg_");
    assert_eq!(err.value, delivery.as_str());
    for bad in ["msg_", "msg_XYZ", "msg_0123456789abcdef0123456789ABCDEF", "", "endp_"] {
        assert!(MessageId::parse(bad).is_err(), "{bad} was accepted");
    }
    let upper = format!("msg_{}", "A".repeat(32));
    assert!(MessageId::parse(&upper).is_err());
    assert!(MessageId::parse(&format!("msg_{}", "a".repeat(33))).is_err());
}

#[test]
fn serde_refuses_a_malformed_or_foreign_id() {
    let foreign = serde_json::to_string(&AutomationId::new()).expect("serialize");
    let err = serde_json::from_str::<LogId>(&foreign).expect_err("an endp_ id is no log id");
    assert!(err.to_string().contains("log_auto_"), "{err}");
    assert!(serde_json::from_str::<LogId>("\"log_auto_nothex\"").is_err());
    assert!(serde_json::from_str::<LogId>("42").is_err());
}

/// SQLite holds an id as its 16 bytes (the column gives the kind); anything else stored
/// there (the text of an older database, a number, other bytes) is refused, never read as
/// some id.
#[test]
fn sqlite_stores_an_id_as_16_bytes_and_refuses_anything_else() {
    let conn = rusqlite::Connection::open_in_memory().expect("db");
    let id = RecoverJobId::new();
    let (kind, length): (String, i64) = conn
        .query_row("SELECT typeof(?1), length(?1)", [&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    assert_eq!((kind.as_str(), length), ("blob", 16));
    let hex: String = conn.query_row("SELECT lower(hex(?1))", [&id], |r| r.get(0)).expect("hex");
    assert_eq!(hex, id.hex_digits());
    for stored in ["SELECT ?1", "SELECT 7", "SELECT x'00112233'", "SELECT NULL"] {
        let text = id.as_str();
        let read = if stored.contains("?1") {
            conn.query_row(stored, [text], |r| r.get::<_, RecoverJobId>(0))
        } else {
            conn.query_row(stored, [], |r| r.get::<_, RecoverJobId>(0))
        };
        assert!(read.is_err(), "{stored} was read as an id: {read:?}");
    }
    let stored_order: Vec<LogId> = {
        let made: Vec<LogId> = (0..50).map(|_| LogId::new()).collect();
        conn.execute_batch("CREATE TABLE t (id BLOB PRIMARY KEY)").expect("table");
        for id in made.iter().rev() {
            conn.execute("INSERT INTO t VALUES (?1)", [id]).expect("insert");
        }
        let mut stmt = conn.prepare("SELECT id FROM t ORDER BY id").expect("select");
        let read: Vec<LogId> = stmt
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("read");
        assert_eq!(read, made, "stored bytes sort as the ids do");
        read
    };
    assert!(stored_order.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn typed_ids_order_by_creation_and_carry_their_time() {
    let before = chrono::Utc::now().timestamp_millis();
    let made: Vec<LogId> = (0..1000).map(|_| LogId::new()).collect();
    let after = chrono::Utc::now().timestamp_millis();
    assert!(made.windows(2).all(|w| w[0] < w[1]), "ids went back");
    assert!((before..=after).contains(&made[0].time_of()));
    assert!(LogId::time_bound(before) <= made[0]);
    assert!(LogId::time_bound(after + 1) > made[999]);
    assert_eq!(LogId::time_bound(1_700_000_000_123).time_of(), 1_700_000_000_123);
    assert_eq!(LogId::time_bound(-5).time_of(), 0, "times before 1970 clamp to 0");
}

#[test]
fn an_id_not_before_a_later_clock_takes_that_clocks_time() {
    let now = LogId::new().time_of();
    let ahead = now + 600_000;
    let made = LogId::new_not_before(ahead);
    assert_eq!(made.time_of(), ahead);
    assert!(made > LogId::time_bound(ahead - 1));
    let behind = LogId::new_not_before(now - 600_000);
    assert!(behind.time_of() >= now, "an earlier bound changes nothing");
    assert_ne!(LogId::new_not_before(ahead), made, "two ids of one bound differ");
}
