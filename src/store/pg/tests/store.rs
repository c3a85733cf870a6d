//! `Store` on PostgreSQL, through its public methods: the automations (with the trail of an
//! enable switch and the FIFO line a change of ordering makes), API keys, console sessions,
//! a corrupt value named as on SQLite, and a method not yet written saying so.

use std::collections::BTreeMap;

use super::{admin, server, Fresh};
use crate::auth::Role;
use crate::delivery::rate_limit::RateLimit;
use crate::ids::{ApiKeyId, AutomationId};
use crate::redact::HeaderRedaction;
use crate::store::{
    Actor, Automation, AutomationFilter, AutomationSettings, ConsoleSession, DeliveryOrder,
    PageRequest, SessionKey, Store, StoreError, StoredKey, WAITING_AT,
};
use crate::time::UnixMs;

const SECRET: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAA==";

pub(super) fn automation(id: AutomationId, processor: &str) -> Automation {
    Automation {
        id,
        settings: AutomationSettings {
            name: "pg".into(),
            processor_id: processor.into(),
            webhook_url: "http://127.0.0.1:9/pg".into(),
            webhook_headers: BTreeMap::from([("X-Token".into(), "t0ken".into())]),
            need_validation: true,
            default_language: "fr".into(),
            enabled: true,
            event_types: Some(vec!["a.b".into()]),
            ordering: DeliveryOrder::Parallel,
            rate_limit_per_sec: RateLimit::new(5),
        },
        secret: SECRET.into(),
        previous_secret: None,
        previous_secret_until: None,
        created_at: UnixMs::from_ms(1_000),
        updated_at: UnixMs::from_ms(1_000),
    }
}

pub(super) async fn open(db: &Fresh) -> Store {
    Store::open_postgres(&db.url, 2, &HeaderRedaction::default()).await.unwrap()
}

fn page(after: Option<String>) -> PageRequest {
    PageRequest { before: None, after, limit: 1, desc: false }
}

#[tokio::test]
async fn automations_round_trip_page_switch_rotate_and_delete() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let ids: Vec<AutomationId> = (0..3).map(|_| AutomationId::new()).collect();
    for id in &ids {
        store.create_automation(automation(id.clone(), "proc_pg")).await.unwrap();
    }
    store.create_automation(automation(AutomationId::new(), "proc_other")).await.unwrap();
    let read = store.automation(ids[0].clone()).await.unwrap();
    assert_eq!(read.settings.webhook_headers["X-Token"], "t0ken");
    assert_eq!(read.settings.event_types, Some(vec!["a.b".to_string()]));
    assert_eq!(read.settings.rate_limit_per_sec.map(RateLimit::per_sec), Some(5));
    assert!(read.settings.need_validation && read.settings.enabled);
    assert_eq!(
        (read.created_at, read.settings.default_language.as_str()),
        (UnixMs::from_ms(1_000), "fr")
    );

    // Paged one at a time, oldest first, under a filter: the three, then no cursor.
    let filter = AutomationFilter { processor_id: Some("proc_pg".into()), ..Default::default() };
    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let p = store.list_automations(filter.clone(), page(after)).await.unwrap();
        seen.extend(p.items.iter().map(|a| a.id.clone()));
        match p.after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // A cursor that is no id sorts before every id, as on SQLite: after it comes the first.
    let p = store.list_automations(filter.clone(), page(Some("bogus".into()))).await.unwrap();
    assert_eq!(p.items.iter().map(|a| &a.id).collect::<Vec<_>>(), [&ids[0]]);

    let mut off = read.settings.clone();
    off.enabled = false;
    let updated = store.update_automation(ids[0].clone(), off, Actor::ConfigKey).await.unwrap();
    assert!(!updated.settings.enabled);
    let trail = admin(&db.url)
        .await
        .query_one(
            "SELECT e.kind, e.actor, h.disabled_reason FROM automation_events e \
             JOIN automation_health h ON h.automation_id = e.automation_id WHERE e.automation_id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap();
    assert_eq!(trail.get::<_, &str>(0), "disabled");
    assert_eq!(trail.get::<_, &str>(1), "config_key");
    assert!(trail.get::<_, Option<&str>>(2).is_some_and(|r| r.contains("disabled")));
    let events = store.automation_events(ids[0].clone(), page(None)).await.unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(
        (events.items[0].kind.as_str(), &events.items[0].automation_id),
        ("disabled", &ids[0])
    );
    let none = store.automation_events(ids[1].clone(), page(None)).await.unwrap();
    assert!(none.items.is_empty() && none.after.is_none());

    let rotated = store
        .rotate_automation_secret(ids[1].clone(), "whsec_EBAQEBAQEBAQEBAQEBAQEA==".into(), 60_000)
        .await
        .unwrap();
    assert_eq!(rotated.previous_secret.as_deref(), Some(SECRET));
    assert!(rotated.previous_secret_until.is_some_and(|t| t > UnixMs::now()));

    store.delete_automation(ids[2].clone()).await.unwrap();
    assert!(matches!(store.automation(ids[2].clone()).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_automation(ids[2].clone()).await, Err(StoreError::NotFound(_))));
    let asked = vec![ids[0].to_string(), ids[2].to_string(), "not-an-id".to_string()];
    let existing = store.existing_automations(asked).await.unwrap();
    assert_eq!(existing, [ids[0].to_string()].into_iter().collect());
    drop(store);
    db.drop_now().await;
}

#[tokio::test]
async fn a_change_to_fifo_lines_up_the_backlog_and_back_to_parallel_lets_it_go() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let id = AutomationId::new();
    store.create_automation(automation(id.clone(), "proc_pg")).await.unwrap();
    let client = admin(&db.url).await;
    for n in 1..=3u8 {
        let row = format!(r"'\x{n:032x}'::bytea");
        client
            .execute(
                &format!(
                    "INSERT INTO messages (id, payload_hash, created_at) VALUES ({row}, '\\x01', 0)"
                ),
                &[],
            )
            .await
            .unwrap();
        client
            .execute(
                &format!(
                    "INSERT INTO deliveries (id, message_id, automation_id, status, attempts, \
                     next_attempt_at, next_trigger, created_at, updated_at) \
                     VALUES ({row}, {row}, $1, 'pending', 0, 5, 'initial', 0, 0)"
                ),
                &[&id],
            )
            .await
            .unwrap();
    }
    let due = || async {
        client
            .query(
                "SELECT id FROM deliveries WHERE fifo = $1 AND next_attempt_at < $2 ORDER BY id",
                &[&true, &WAITING_AT.as_ms()],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, Vec<u8>>(0)[15])
            .collect::<Vec<u8>>()
    };
    let mut settings = store.automation(id.clone()).await.unwrap().settings;
    settings.ordering = DeliveryOrder::Fifo;
    store.update_automation(id.clone(), settings.clone(), Actor::System).await.unwrap();
    assert_eq!(due().await, [1], "the oldest is the head, the others wait");
    settings.ordering = DeliveryOrder::Parallel;
    store.update_automation(id.clone(), settings, Actor::System).await.unwrap();
    let waiting: i64 = client
        .query_one(
            "SELECT count(*) FROM deliveries WHERE fifo OR next_attempt_at = $1",
            &[&WAITING_AT.as_ms()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, 0, "made parallel, the whole line is due");
    drop(store);
    db.drop_now().await;
}

#[tokio::test]
async fn keys_and_sessions_round_trip() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let key = StoredKey {
        id: ApiKeyId::new(),
        name: "ops".into(),
        role: Role::Operator,
        created_at: UnixMs::from_ms(5),
        expires_at: Some(UnixMs::from_ms(9_000_000_000_000)),
        last_used_at: None,
        revoked_at: None,
    };
    store.add_key([7; 32], key.clone()).await.unwrap();
    let active = store.active_keys().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].hash, active[0].role, active[0].id.clone()),
        ([7; 32], Role::Operator, Some(key.id.clone()))
    );
    store.note_key_used(key.id.clone(), UnixMs::from_ms(60)).await.unwrap();
    let listed = store.list_keys(page(None)).await.unwrap().items;
    assert_eq!(listed[0].last_used_at, Some(UnixMs::from_ms(60)));
    let revoked = store.revoke_key(key.id.clone(), UnixMs::from_ms(70)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(UnixMs::from_ms(70)));
    assert!(store.active_keys().await.unwrap().is_empty());
    assert!(matches!(
        store.revoke_key(ApiKeyId::new(), UnixMs::from_ms(1)).await,
        Err(StoreError::NotFound(_))
    ));

    for (token, key) in
        [([1; 32], SessionKey::Stored(key.id.clone())), ([2; 32], SessionKey::Configured([3; 32]))]
    {
        let session = ConsoleSession {
            key: key.clone(),
            role: Role::Admin,
            csrf_token: "c".repeat(64),
            created_at: UnixMs::from_ms(100),
            last_seen_at: UnixMs::from_ms(100),
        };
        store.add_session(token, session).await.unwrap();
        let read = store.session(token).await.unwrap().expect("stored");
        assert_eq!((read.key, read.role, read.csrf_token.len()), (key, Role::Admin, 64));
    }
    store.touch_session([1; 32], UnixMs::from_ms(500)).await.unwrap();
    let ended =
        store.end_expired_sessions(UnixMs::from_ms(50), UnixMs::from_ms(200)).await.unwrap();
    assert_eq!(ended, 1, "the one unused since 100");
    assert!(store.session([2; 32]).await.unwrap().is_none());
    store.end_session([1; 32]).await.unwrap();
    assert!(store.session([1; 32]).await.unwrap().is_none());
    drop(store);
    db.drop_now().await;
}

#[tokio::test]
async fn a_corrupt_value_is_named_and_a_method_not_yet_written_says_so() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = open(&db).await;
    let id = AutomationId::new();
    store.create_automation(automation(id.clone(), "proc_pg")).await.unwrap();
    // The CHECK allows it (a whsec_ prefix), the relay cannot sign with it.
    admin(&db.url).await.execute("UPDATE automations SET secret = 'whsec_x'", &[]).await.unwrap();
    let err = store.automation(id).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::CorruptValue(_)), "{text}");
    assert!(text.contains("automations.secret"), "{text}");

    // `write` hands out a rusqlite connection (tests and the bench): SQLite's only.
    let err = store.write(|_| Ok(())).await.unwrap_err();
    assert!(matches!(err, StoreError::NotOnPostgres("write")), "{err}");
    assert_eq!(err.to_string(), "write is not yet available on PostgreSQL");
    assert!(store.ping().await);
    drop(store);
    db.drop_now().await;
}
