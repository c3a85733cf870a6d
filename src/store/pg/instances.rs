//! This instance in `instances` (docs/postgres.md, "Instances"): its row, inserted at open
//! under an id drawn then, and its heartbeat every [`BEAT`], which stops once the pool is
//! closed. A restarted instance has a new id: its old claims are another instance's.

use std::time::Duration;

use super::{OrStore, Pg, PgError};
use crate::time::UnixMs;

/// How often the instance's `heartbeat_at` moves.
const BEAT: Duration = Duration::from_secs(2);

/// Inserts this instance's row and starts its heartbeat.
pub(super) async fn register(pg: &Pg) -> Result<(), PgError> {
    let now = UnixMs::now().as_ms();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let client = pg.client().await?;
    client
        .execute(
            "INSERT INTO instances (id, started_at, heartbeat_at, host) \
             VALUES ($1::text::uuid, $2, $2, $3)",
            &[&pg.instance(), &now, &host],
        )
        .await
        .map_err(|e| pg.query_error(e))?;
    drop(client);
    tokio::spawn(beat(pg.clone()));
    Ok(())
}

/// Moves `heartbeat_at` every [`BEAT`] until the pool closes; a failed beat is logged and
/// the next one tried (the database may come back).
async fn beat(pg: Pg) {
    let mut tick = tokio::time::interval(BEAT);
    tick.tick().await;
    loop {
        tick.tick().await;
        if pg.pool.is_closed() {
            return;
        }
        let beat = async {
            let client = pg.client().await?;
            client
                .execute(
                    "UPDATE instances SET heartbeat_at = greatest(heartbeat_at, $2) \
                     WHERE id = $1::text::uuid",
                    &[&pg.instance(), &UnixMs::now().as_ms()],
                )
                .await
                .at(&pg)
        };
        if let Err(e) = beat.await {
            tracing::warn!(error = %e, "PostgreSQL: this instance's heartbeat failed");
        }
    }
}
