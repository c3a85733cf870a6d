//! This instance in `instances` (docs/postgres.md, "Instances"): its row, inserted at open
//! under an id drawn then, and its heartbeat every [`BEAT`], which stops once the pool is
//! closed; with each beat it looks for dead instances and takes over their claims (see
//! `takeover`). A restarted instance has a new id: its old claims are a dead instance's.

use std::time::{Duration, Instant};

use super::{takeover, OrStore, Pg, PgError};
use crate::redact::HeaderRedaction;
use crate::store::StoreResult;
use crate::time::UnixMs;

/// How often the instance's `heartbeat_at` moves.
const BEAT: Duration = Duration::from_secs(2);

/// Inserts this instance's row.
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
    Ok(())
}

impl Pg {
    /// Starts this instance's heartbeat; dead instances' snapshots are redacted by `rule`.
    pub(crate) fn start_beating(&self, rule: HeaderRedaction) {
        tokio::spawn(beat(self.clone(), rule));
    }

    /// Releases this instance's claims and deletes its row (see `takeover`); a failure is
    /// logged (the claims then wait for a survivor, or the next start).
    pub(crate) async fn leave(&self, rule: &HeaderRedaction) {
        if let Err(e) = takeover::leave(self, rule).await {
            tracing::warn!(error = %e, "PostgreSQL: this instance's claims could not be released");
        }
    }
}

/// Moves `heartbeat_at` every [`BEAT`] until the pool closes; a failed beat is logged and
/// the next one tried (the database may come back). After beats failed, this instance takes
/// nobody over for [`takeover::DEAD_AFTER_MS`]: the database was out of reach for the others
/// too, and their heartbeats are only old because of it; a live instance taken over would
/// have its claims, held in memory or in flight, sent again by another.
async fn beat(pg: Pg, rule: HeaderRedaction) {
    let mut tick = tokio::time::interval(BEAT);
    tick.tick().await;
    let blind_for = Duration::from_millis(takeover::DEAD_AFTER_MS.unsigned_abs());
    let (mut failing, mut blind_until) = (false, None::<Instant>);
    loop {
        tick.tick().await;
        if pg.pool.is_closed() {
            return;
        }
        match beat_once(&pg).await {
            Err(e) => {
                failing = true;
                tracing::warn!(error = %e, "PostgreSQL: this instance's heartbeat failed");
                continue;
            }
            Ok(()) if failing => {
                failing = false;
                blind_until = Some(Instant::now() + blind_for);
            }
            Ok(()) => {}
        }
        if blind_until.is_some_and(|until| Instant::now() < until) {
            continue;
        }
        if let Err(e) = takeover::take_over_dead(&pg, &rule).await {
            tracing::warn!(error = %e, "PostgreSQL: taking over a dead instance's claims failed");
        }
    }
}

/// One heartbeat. A row gone means a survivor took this instance over while its beats did
/// not reach the database (its claims were released): the row is put back, so that it is
/// not taken for dead again, and the loss said.
async fn beat_once(pg: &Pg) -> StoreResult<()> {
    let client = pg.client().await?;
    let now = UnixMs::now().as_ms();
    let moved = client
        .execute(
            "UPDATE instances SET heartbeat_at = greatest(heartbeat_at, $2) \
             WHERE id = $1::text::uuid",
            &[&pg.instance(), &now],
        )
        .await
        .at(pg)?;
    if moved == 0 {
        tracing::warn!(
            instance = pg.instance(),
            "PostgreSQL: this instance was taken for dead while out of reach of the database; \
             its claims were released and may be sent again by another instance"
        );
        drop(client);
        register(pg).await.map_err(crate::store::StoreError::Postgres)?;
    }
    Ok(())
}
