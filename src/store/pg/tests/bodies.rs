//! Content-addressed blobs on PostgreSQL (`pg::bodies`): stored as `store::bodies` stores
//! them on SQLite (compressed when that pays, once however often stored, refreshed and marked
//! shared by its rules), read back byte for byte, and an upload stored and read through
//! `Store`.

use std::time::Duration;

use super::{admin, server, Fresh};
use crate::redact::HeaderRedaction;
use crate::store::bodies::{body_hash, incompressible, json_payload, Prepared, DEFLATE, RAW};
use crate::store::pg::{bodies, Pg};
use crate::store::{BodyHash, Store, StoreError, UploadFile, USE_REFRESH_MS};
use crate::time::UnixMs;

/// (encoding, stored length, used_at, shared) of the blob stored under `hash`.
async fn stored(url: &str, hash: &BodyHash) -> (i64, usize, i64, bool) {
    let row = admin(url)
        .await
        .query_one(
            "SELECT encoding::bigint, length(data)::bigint, used_at, shared FROM bodies \
             WHERE hash = $1",
            &[&hash.as_slice()],
        )
        .await
        .unwrap();
    (row.get(0), usize::try_from(row.get::<_, i64>(1)).unwrap(), row.get(2), row.get(3))
}

async fn rows(url: &str) -> i64 {
    admin(url).await.query_one("SELECT count(*) FROM bodies", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_json_payload_is_stored_compressed_and_read_back_byte_for_byte() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();
    let client = pg.client().await.unwrap();
    let payload = json_payload();
    let hash = bodies::put(&pg, &client, &payload).await.unwrap();
    assert_eq!(hash, body_hash(&payload), "the hash is the payload's, not the stored bytes'");
    let (encoding, len, _, shared) = stored(&db.url, &hash).await;
    assert_eq!((encoding, shared), (DEFLATE, false));
    assert!(len * 2 < payload.len(), "{len} bytes stored for {}", payload.len());
    assert_eq!(bodies::find(&pg, &**client, &hash).await.unwrap(), Some(payload));
    assert_eq!(bodies::find(&pg, &**client, &body_hash(b"never stored")).await.unwrap(), None);
    drop((client, pg));
    db.drop_now().await;
}

#[tokio::test]
async fn short_and_incompressible_blobs_are_stored_as_given() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();
    let client = pg.client().await.unwrap();
    for blob in [b"{\"a\":1}".to_vec(), incompressible(7, 2048), Vec::new()] {
        let hash = bodies::put_prepared(&pg, &client, &Prepared::of(&blob)).await.unwrap();
        let (encoding, len, _, _) = stored(&db.url, &hash).await;
        assert_eq!((encoding, len), (RAW, blob.len()));
        assert_eq!(bodies::find(&pg, &**client, &hash).await.unwrap(), Some(blob));
    }
    drop((client, pg));
    db.drop_now().await;
}

/// A repeat marks the blob shared and refreshes `used_at`; a later repeat writes nothing
/// until `used_at` is [`USE_REFRESH_MS`] old.
#[tokio::test]
async fn a_repeated_blob_is_stored_once_marked_shared_and_refreshed_by_the_rule() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();
    let client = pg.client().await.unwrap();
    let payload = json_payload();
    let first = bodies::put(&pg, &client, &payload).await.unwrap();
    let set_used_at = |at: i64| {
        let url = db.url.clone();
        async move {
            admin(&url).await.execute("UPDATE bodies SET used_at = $1", &[&at]).await.unwrap();
        }
    };
    set_used_at(1_000).await;
    let again = bodies::put(&pg, &client, &payload).await.unwrap();
    assert_eq!((first, rows(&db.url).await), (again, 1));
    let (_, _, used_at, shared) = stored(&db.url, &first).await;
    assert!(shared, "a repeat marks the blob shared");
    assert!(used_at > UnixMs::now().as_ms() - 60_000, "a repeat counts as a use: {used_at}");

    // Shared and used less than USE_REFRESH_MS ago: left alone.
    let recent = UnixMs::now().as_ms() - USE_REFRESH_MS / 2;
    set_used_at(recent).await;
    bodies::put(&pg, &client, &payload).await.unwrap();
    assert_eq!(stored(&db.url, &first).await.2, recent);
    // Shared and used USE_REFRESH_MS ago: refreshed.
    set_used_at(UnixMs::now().as_ms() - USE_REFRESH_MS - 1_000).await;
    bodies::put(&pg, &client, &payload).await.unwrap();
    assert!(stored(&db.url, &first).await.2 > recent);
    assert_eq!(bodies::find(&pg, &**client, &first).await.unwrap(), Some(payload));
    drop((client, pg));
    db.drop_now().await;
}

#[tokio::test]
async fn an_unknown_encoding_or_a_stream_that_does_not_inflate_is_reported_corrupt() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, _) = Pg::open(&db.url, 1).await.unwrap();
    let client = pg.client().await.unwrap();
    let payload = json_payload();
    let hash = bodies::put(&pg, &client, &payload).await.unwrap();
    let other = bodies::put(&pg, &client, &payload[1..]).await.unwrap();
    // The schema refuses an unknown encoding; a database written by a newer build may not.
    let admin = admin(&db.url).await;
    admin.batch_execute("ALTER TABLE bodies DROP CONSTRAINT bodies_encoding_check").await.unwrap();
    admin
        .execute("UPDATE bodies SET encoding = 7 WHERE hash = $1", &[&hash.as_slice()])
        .await
        .unwrap();
    let err = bodies::find(&pg, &**client, &hash).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(why) if why.contains("encoding 7")), "{err}");
    admin
        .execute(
            "UPDATE bodies SET encoding = 1, data = substr(data, 1, length(data) / 2) \
             WHERE hash = $1",
            &[&other.as_slice()],
        )
        .await
        .unwrap();
    let err = bodies::find(&pg, &**client, &other).await.unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt(why) if why.contains("inflate")), "{err}");
    drop((client, pg));
    db.drop_now().await;
}

/// The second transaction's insert waits on the first's uncommitted row, then takes the
/// conflict branch: one row, marked shared, and both get the hash.
#[tokio::test]
async fn two_transactions_storing_the_same_new_blob_make_one_row() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let (pg, _) = Pg::open(&db.url, 2).await.unwrap();
    let payload = json_payload();
    let mut first = pg.client().await.unwrap();
    let tx = first.transaction().await.unwrap();
    let hash = bodies::put(&pg, &tx, &payload).await.unwrap();
    let second = tokio::spawn({
        let (pg, payload) = (pg.clone(), payload.clone());
        async move {
            let mut client = pg.client().await.unwrap();
            let tx = client.transaction().await.unwrap();
            let hash = bodies::put(&pg, &tx, &payload).await.unwrap();
            tx.commit().await.unwrap();
            hash
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second insert waits for the first transaction");
    tx.commit().await.unwrap();
    assert_eq!(second.await.unwrap(), hash);
    assert_eq!(rows(&db.url).await, 1);
    assert!(stored(&db.url, &hash).await.3, "the second store marks it shared");
    drop((first, pg));
    db.drop_now().await;
}

fn upload_file(id: &str) -> UploadFile {
    UploadFile {
        id: id.into(),
        app_id: "app_pg".into(),
        name: "report.json".into(),
        size: json_payload().len() as u64,
        extension: "json".into(),
        mime_type: "application/json".into(),
        created_by: "user_1".into(),
        created_at: UnixMs::from_ms(2_000),
    }
}

#[tokio::test]
async fn an_upload_is_stored_once_and_read_back_through_the_store() {
    let Some(server) = server() else { return };
    let db = Fresh::new(&server).await;
    let store = Store::open_postgres(&db.url, 2, &HeaderRedaction::default()).await.unwrap();
    for id in ["f1", "f2"] {
        store.insert_upload(upload_file(id), json_payload()).await.unwrap();
    }
    assert_eq!(rows(&db.url).await, 1, "the same content uploaded twice is stored once");
    let (file, data) = store.upload("app_pg".into(), "f2".into()).await.unwrap();
    assert_eq!(
        (file.name.as_str(), file.size, file.created_at),
        ("report.json", json_payload().len() as u64, UnixMs::from_ms(2_000))
    );
    assert_eq!(data, json_payload());
    let err = store.upload("another_app".into(), "f1".into()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound("upload file")), "{err}");
    admin(&db.url).await.batch_execute("DELETE FROM bodies").await.unwrap();
    let err = store.upload("app_pg".into(), "f1".into()).await.unwrap_err();
    assert!(matches!(err, StoreError::ContentGone { .. }), "{err}");
    store.close().await;
    db.drop_now().await;
}
