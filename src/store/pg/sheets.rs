//! Spreadsheets on PostgreSQL: `store::sheets`' and `store::sheet_signers`' SQL, beside
//! them. Rows decode through the same functions, and an append is planned by the same
//! [`plan`]. Row numbers stay contiguous across instances: an append takes its worksheet's
//! row `FOR UPDATE` (appends to one worksheet wait for each other, appends to others do not)
//! and bumps `last_row` in the transaction that inserts the row.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::{OrStore, Pg};
use crate::ids::{AutomationId, SpreadsheetId};
use crate::store::automations::{from_row as automation_from_row, Automation};
use crate::store::column::Column;
use crate::store::page::{Conditions, Page, PageRequest};
use crate::store::sheets::{
    plan, sheet_row_from_row, spreadsheet_from_row, worksheet_from_row, Appended, NewRow, SheetRow,
    Spreadsheet, Worksheet, SPREADSHEET_COLUMNS,
};
use crate::store::{StoreError, StoreResult};
use crate::time::UnixMs;

/// `sheets::WORKSHEET_COLUMNS`, the JSON read as its text.
const WORKSHEET_COLUMNS: &str = "sheet_id, title, header::text, last_row";

/// An append's statements, prepared once per pooled connection (`prepare_cached`): the
/// sink's appends are frequent, and an unprepared statement costs a round trip more.
const LOCK_WORKSHEET: &str = "SELECT sheet_id, title, header::text, last_row FROM worksheets \
    WHERE spreadsheet_id = $1 AND sheet_id = $2 FOR UPDATE";
const EARLIER_APPEND: &str = "SELECT append_result::text FROM sheet_rows \
    WHERE spreadsheet_id = $1 AND sheet_id = $2 AND webhook_id = $3";
const INSERT_ROW: &str = "INSERT INTO sheet_rows (spreadsheet_id, sheet_id, row_number, cells, \
    likelihoods, webhook_id, append_result) \
    VALUES ($1, $2, $3, $4::text::json, $5::text::json, $6, $7::text::json)";
const BUMP_WORKSHEET: &str = "UPDATE worksheets SET header = $3::text::json, last_row = $4 \
    WHERE spreadsheet_id = $1 AND sheet_id = $2";

/// The unique index that keeps one row per webhook-id and worksheet.
const WEBHOOK_INDEX: &str = "sheet_rows_webhook";

/// A worksheet's key as its `integer` column holds it; one beyond it names no worksheet.
fn sheet_key(sheet_id: u32) -> StoreResult<i32> {
    i32::try_from(sheet_id).map_err(|_| StoreError::NotFound("worksheet"))
}

/// Stores a new spreadsheet and its worksheets, in one transaction.
pub(crate) async fn create(pg: &Pg, sheet: Spreadsheet) -> StoreResult<Spreadsheet> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    tx.execute(
        "INSERT INTO spreadsheets (id, title, webhook_secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &sheet.id,
            &sheet.title,
            &sheet.webhook_secret,
            &sheet.created_at.as_ms(),
            &sheet.updated_at.as_ms(),
        ],
    )
    .await
    .at(pg)?;
    let insert = tx
        .prepare(
            "INSERT INTO worksheets (spreadsheet_id, sheet_id, title, header, last_row) \
             VALUES ($1, $2, $3, '[]', 0)",
        )
        .await
        .at(pg)?;
    for w in &sheet.worksheets {
        let key = i32::try_from(w.sheet_id)
            .map_err(|_| StoreError::Limit(format!("worksheet id {} is too large", w.sheet_id)))?;
        tx.execute(&insert, &[&sheet.id, &key, &w.title]).await.at(pg)?;
    }
    tx.commit().await.at(pg)?;
    Ok(sheet)
}

/// Runs `sql` (prepared once per pooled connection) with the spreadsheet id `id`.
async fn by_id(
    c: &ClientWrapper,
    sql: &str,
    id: &SpreadsheetId,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, &[id]).await
}

/// The worksheets and the signer of spreadsheet `id`, read together (the two statements
/// are pipelined: one round trip).
async fn parts(
    pg: &Pg,
    c: &ClientWrapper,
    id: &SpreadsheetId,
) -> StoreResult<(Vec<Worksheet>, Option<Automation>)> {
    let worksheets = format!(
        "SELECT {WORKSHEET_COLUMNS} FROM worksheets WHERE spreadsheet_id = $1 ORDER BY sheet_id"
    );
    let signer = format!(
        "SELECT {} FROM automations WHERE id = \
         (SELECT automation_id FROM spreadsheet_signers WHERE spreadsheet_id = $1)",
        super::automations::COLUMNS
    );
    let (sheets, signer) =
        tokio::try_join!(by_id(c, &worksheets, id), by_id(c, &signer, id)).at(pg)?;
    let sheets = sheets.iter().map(|r| worksheet_from_row(r, id)).collect::<StoreResult<_>>()?;
    Ok((sheets, signer.first().map(automation_from_row).transpose()?))
}

/// One spreadsheet with its worksheets and signer (three statements, one round trip).
pub(crate) async fn get(
    pg: &Pg,
    c: &ClientWrapper,
    id: &SpreadsheetId,
) -> StoreResult<Option<Spreadsheet>> {
    let sql = format!("SELECT {SPREADSHEET_COLUMNS} FROM spreadsheets WHERE id = $1");
    let head = async { by_id(c, &sql, id).await.at(pg) };
    let (head, (worksheets, signer)) = tokio::try_join!(head, parts(pg, c, id))?;
    let Some(head) = head.first() else { return Ok(None) };
    Ok(Some(Spreadsheet { worksheets, signer, ..spreadsheet_from_row(head)? }))
}

/// One page of spreadsheets, each with its worksheets and signer.
pub(crate) async fn list(pg: &Pg, page: &PageRequest) -> StoreResult<Page<Spreadsheet>> {
    let client = pg.client().await?;
    let mut page = super::page::read_page(
        pg,
        &**client,
        "spreadsheets",
        SPREADSHEET_COLUMNS,
        &Conditions::default(),
        page,
        spreadsheet_from_row,
        |s| s.id.as_str(),
    )
    .await?;
    for sheet in &mut page.items {
        (sheet.worksheets, sheet.signer) = parts(pg, &client, &sheet.id).await?;
    }
    Ok(page)
}

/// Deletes a spreadsheet; its worksheets, rows and signer link go with it (`ON DELETE
/// CASCADE`).
pub(crate) async fn delete(pg: &Pg, id: &SpreadsheetId) -> StoreResult<()> {
    let client = pg.client().await?;
    if client.execute("DELETE FROM spreadsheets WHERE id = $1", &[id]).await.at(pg)? == 0 {
        return Err(StoreError::NotFound("spreadsheet"));
    }
    Ok(())
}

/// Appends `row` to worksheet `sheet_id` of `spreadsheet_id` (see `store::sheets::append`):
/// returns the stored answer and whether it is a replay of `webhook_id`. The worksheet's row
/// is locked first, so the webhook-id is looked up once every earlier append to the
/// worksheet has committed; should two appends of one webhook-id still meet at the unique
/// index, the one refused rolls back and tries once more, finding the other's answer.
pub(crate) async fn append(
    pg: &Pg,
    spreadsheet_id: &SpreadsheetId,
    sheet_id: u32,
    webhook_id: Option<&str>,
    row: &NewRow,
    max_columns: usize,
    answer: impl Fn(&Appended) -> String + Send,
) -> StoreResult<(String, bool)> {
    let key = sheet_key(sheet_id)?;
    let mut client = pg.client().await?;
    let mut raced = false;
    loop {
        let tx = client.transaction().await.at(pg)?;
        let lock = tx.prepare_cached(LOCK_WORKSHEET).await.at(pg)?;
        let Some(sheet) = tx.query_opt(&lock, &[spreadsheet_id, &key]).await.at(pg)? else {
            return Err(StoreError::NotFound("worksheet"));
        };
        if let Some(id) = webhook_id {
            let earlier = tx.prepare_cached(EARLIER_APPEND).await.at(pg)?;
            let earlier = tx.query_opt(&earlier, &[spreadsheet_id, &key, &id]).await.at(pg)?;
            if let Some(earlier) = earlier {
                return Ok((earlier.text(0, "sheet_rows", id)?, true));
            }
        }
        let planned = plan(worksheet_from_row(&sheet, spreadsheet_id)?, row, max_columns, &answer)?;
        let insert = tx.prepare_cached(INSERT_ROW).await.at(pg)?;
        let inserted = tx
            .execute(
                &insert,
                &[
                    spreadsheet_id,
                    &key,
                    &i64::from(planned.row),
                    &planned.cells,
                    &planned.likelihoods,
                    &webhook_id,
                    &planned.result,
                ],
            )
            .await;
        match inserted {
            Err(e) if !raced && is_violation_of(&e, WEBHOOK_INDEX) => {
                raced = true;
                continue;
            }
            other => other.at(pg)?,
        };
        let bump = tx.prepare_cached(BUMP_WORKSHEET).await.at(pg)?;
        tx.execute(&bump, &[spreadsheet_id, &key, &planned.header, &i64::from(planned.row)])
            .await
            .at(pg)?;
        tx.commit().await.at(pg)?;
        return Ok((planned.result, false));
    }
}

/// Whether `e` is a unique violation of the index `index`.
fn is_violation_of(e: &tokio_postgres::Error, index: &str) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(index)
    })
}

/// Data rows `first..=last` of a worksheet.
pub(crate) async fn rows(
    pg: &Pg,
    spreadsheet_id: &SpreadsheetId,
    sheet_id: u32,
    first: u32,
    last: u32,
) -> StoreResult<Vec<SheetRow>> {
    let Ok(key) = i32::try_from(sheet_id) else { return Ok(Vec::new()) };
    let client = pg.client().await?;
    let rows = client
        .query(
            "SELECT row_number, cells::text, likelihoods::text FROM sheet_rows \
             WHERE spreadsheet_id = $1 AND sheet_id = $2 AND row_number BETWEEN $3 AND $4 \
             ORDER BY row_number",
            &[spreadsheet_id, &key, &i64::from(first), &i64::from(last)],
        )
        .await
        .at(pg)?;
    rows.iter().map(|r| sheet_row_from_row(r, spreadsheet_id, sheet_id)).collect()
}

/// Makes `automation_id` the signer of `spreadsheet_id` (see `store::sheet_signers::set`).
/// The automation's row is share-locked first, so that it cannot be deleted before the link
/// is stored.
pub(crate) async fn set_signer(
    pg: &Pg,
    spreadsheet_id: &SpreadsheetId,
    automation_id: &AutomationId,
    now: UnixMs,
) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    let automation = tx
        .query_opt("SELECT 1 FROM automations WHERE id = $1 FOR KEY SHARE", &[automation_id])
        .await
        .at(pg)?;
    if automation.is_none() {
        return Err(StoreError::NotFound("automation"));
    }
    let changed = tx
        .execute(
            "UPDATE spreadsheets SET webhook_secret = NULL, updated_at = $2 WHERE id = $1",
            &[spreadsheet_id, &now.as_ms()],
        )
        .await
        .at(pg)?;
    if changed == 0 {
        return Err(StoreError::NotFound("spreadsheet"));
    }
    tx.execute(
        "INSERT INTO spreadsheet_signers (spreadsheet_id, automation_id) VALUES ($1, $2) \
         ON CONFLICT (spreadsheet_id) DO UPDATE SET automation_id = EXCLUDED.automation_id",
        &[spreadsheet_id, automation_id],
    )
    .await
    .at(pg)?;
    tx.commit().await.at(pg)
}

/// Unlinks the signer of `spreadsheet_id` (see `store::sheet_signers::unlink`).
pub(crate) async fn unlink_signer(
    pg: &Pg,
    spreadsheet_id: &SpreadsheetId,
    now: UnixMs,
) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await.at(pg)?;
    let changed = tx
        .execute(
            "UPDATE spreadsheets SET updated_at = $2 WHERE id = $1",
            &[spreadsheet_id, &now.as_ms()],
        )
        .await
        .at(pg)?;
    if changed == 0 {
        return Err(StoreError::NotFound("spreadsheet"));
    }
    let gone = tx
        .execute("DELETE FROM spreadsheet_signers WHERE spreadsheet_id = $1", &[spreadsheet_id])
        .await
        .at(pg)?;
    if gone == 0 {
        return Err(StoreError::NotFound("signer"));
    }
    tx.commit().await.at(pg)
}
