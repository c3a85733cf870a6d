//! Spreadsheets signed by an automation: the sink accepts a call to such a spreadsheet when
//! it is signed with the key derived for it (`signing::sink_secret`) from any secret the
//! automation signs with now (its current one and, for the overlap after a rotation, the
//! previous one), so the spreadsheet follows the automation's rotations and no secret is
//! copied anywhere. The link goes with either of them.

use rusqlite::{params, Connection, OptionalExtension};

use super::automations::{self, Automation};
use super::{pg, Backend, Store, StoreError, StoreResult};
use crate::ids::{AutomationId, SpreadsheetId};
use crate::time::UnixMs;

/// The automation signing for spreadsheet `spreadsheet_id`, as it is now.
pub(super) fn signer_of(
    conn: &Connection,
    spreadsheet_id: &SpreadsheetId,
) -> StoreResult<Option<Automation>> {
    let automation_id: Option<AutomationId> = conn
        .prepare_cached("SELECT automation_id FROM spreadsheet_signers WHERE spreadsheet_id = ?1")?
        .query_row([spreadsheet_id], |r| r.get(0))
        .optional()?;
    match automation_id {
        Some(id) => automations::get(conn, &id),
        None => Ok(None),
    }
}

/// Makes `automation_id` the signer of `spreadsheet_id`, in place of any signer or webhook
/// secret it had.
fn set(
    conn: &Connection,
    spreadsheet_id: &SpreadsheetId,
    automation_id: &AutomationId,
    now: UnixMs,
) -> StoreResult<()> {
    if automations::get(conn, automation_id)?.is_none() {
        return Err(StoreError::NotFound("automation"));
    }
    let changed = conn
        .prepare_cached(
            "UPDATE spreadsheets SET webhook_secret = NULL, updated_at = ?2 WHERE id = ?1",
        )?
        .execute(params![spreadsheet_id, now])?;
    if changed == 0 {
        return Err(StoreError::NotFound("spreadsheet"));
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO spreadsheet_signers (spreadsheet_id, automation_id) VALUES (?1, ?2)",
    )?
    .execute(params![spreadsheet_id, automation_id])?;
    Ok(())
}

/// Unlinks the signer of `spreadsheet_id`, which is then keyed (its webhook secret went
/// when the signer was set); `NotFound` names the spreadsheet, or the signer it lacks.
fn unlink(conn: &Connection, spreadsheet_id: &SpreadsheetId, now: UnixMs) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE spreadsheets SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![spreadsheet_id, now])?;
    if changed == 0 {
        return Err(StoreError::NotFound("spreadsheet"));
    }
    if forget_spreadsheet(conn, spreadsheet_id)? == 0 {
        return Err(StoreError::NotFound("signer"));
    }
    Ok(())
}

/// Forgets the signer of spreadsheet `spreadsheet_id`; how many links went (0 or 1).
pub(super) fn forget_spreadsheet(
    conn: &Connection,
    spreadsheet_id: &SpreadsheetId,
) -> StoreResult<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM spreadsheet_signers WHERE spreadsheet_id = ?1")?
        .execute([spreadsheet_id])?)
}

impl Store {
    /// Makes automation `automation_id` the signer of spreadsheet `spreadsheet_id` (see the
    /// module doc); `NotFound` names whichever of them does not exist.
    pub async fn set_sheet_signer(
        &self,
        spreadsheet_id: SpreadsheetId,
        automation_id: AutomationId,
    ) -> StoreResult<()> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                return pg::sheets::set_signer(p, &spreadsheet_id, &automation_id, UnixMs::now())
                    .await
            }
        };
        db.write(move |c| set(c, &spreadsheet_id, &automation_id, UnixMs::now())).await
    }

    /// Unlinks the signer of spreadsheet `spreadsheet_id` (see [`unlink`]).
    pub async fn unlink_sheet_signer(&self, spreadsheet_id: SpreadsheetId) -> StoreResult<()> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                return pg::sheets::unlink_signer(p, &spreadsheet_id, UnixMs::now()).await
            }
        };
        db.write(move |c| unlink(c, &spreadsheet_id, UnixMs::now())).await
    }
}
