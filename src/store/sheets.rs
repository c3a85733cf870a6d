//! Spreadsheets of the Sheets-style sink. Appends run in the single writer (on PostgreSQL:
//! each under its worksheet's row lock, see `pg::sheets`), so concurrent appends get
//! distinct, contiguous row numbers; a `webhook-id` seen before on a worksheet answers the
//! first append's result and adds nothing (exactly-once rows).

use rusqlite::{params, Connection, OptionalExtension};

use super::automations::Automation;
use super::column::Column;
use super::page::{read_page, Conditions, Page, PageRequest};
use super::{pg, sheet_signers, Backend, Store, StoreError, StoreResult};
use crate::ids::SpreadsheetId;
use crate::time::UnixMs;

/// A spreadsheet with its worksheets.
#[derive(Debug, Clone)]
pub struct Spreadsheet {
    /// `ss_…`
    pub id: SpreadsheetId,
    /// Title.
    pub title: String,
    /// When set, the sink accepts only calls signed with this `whsec_…` secret.
    pub webhook_secret: Option<String>,
    /// When set, the sink accepts only calls signed with this automation's secrets (see
    /// `sheet_signers`); a spreadsheet has this or `webhook_secret`, not both.
    pub signer: Option<Automation>,
    /// Worksheets, by id.
    pub worksheets: Vec<Worksheet>,
    /// When it was created.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

/// A worksheet: its header (row 1) and how far it is filled.
#[derive(Debug, Clone)]
pub struct Worksheet {
    /// 0, 1, …
    pub sheet_id: u32,
    /// Title (`Sheet1` by default).
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// Last used row (1 = only the header, 0 = empty).
    pub last_row: u32,
}

/// A flattened row to append: column names with their values and likelihoods.
#[derive(Debug, Clone)]
pub struct NewRow {
    /// Column name → (value, likelihood), in the object's order.
    pub cells: Vec<(String, String, Option<f64>)>,
}

/// Where an append landed.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The worksheet's title.
    pub sheet_title: String,
    /// First row written (1 when the header was written too).
    pub first_row: u32,
    /// The data row.
    pub row: u32,
    /// Columns of the row (the header's width after this append).
    pub columns: u32,
}

/// A stored row.
#[derive(Debug, Clone)]
pub struct SheetRow {
    /// Row number (2 = first data row).
    pub row: u32,
    /// Values in header order.
    pub cells: Vec<String>,
    /// Likelihoods aligned with `cells`, when stored.
    pub likelihoods: Option<Vec<Option<f64>>>,
}

/// The columns of `worksheets` that [`worksheet_from_row`] reads, in its order.
pub(super) const WORKSHEET_COLUMNS: &str = "sheet_id, title, header, last_row";

/// A worksheet of spreadsheet `of` from a row of [`WORKSHEET_COLUMNS`].
pub(super) fn worksheet_from_row<R: Column>(
    r: &R,
    of: &SpreadsheetId,
) -> Result<Worksheet, R::Error> {
    const T: &str = "worksheets";
    let sheet_id = r.uint(0, T, of)?;
    let key = format!("{of} worksheet {sheet_id}");
    Ok(Worksheet {
        sheet_id,
        title: r.text(1, T, &key)?,
        header: r.json(2, T, &key)?,
        last_row: r.uint(3, T, &key)?,
    })
}

/// The columns of `spreadsheets` that [`spreadsheet_from_row`] reads, in its order.
pub(super) const SPREADSHEET_COLUMNS: &str = "id, title, webhook_secret, created_at, updated_at";

/// A spreadsheet from a row of [`SPREADSHEET_COLUMNS`], without its worksheets and signer.
pub(super) fn spreadsheet_from_row<R: Column>(r: &R) -> Result<Spreadsheet, R::Error> {
    const T: &str = "spreadsheets";
    let id: SpreadsheetId = r.key(0, T)?;
    Ok(Spreadsheet {
        title: r.text(1, T, &id)?,
        webhook_secret: r.opt_text(2, T, &id)?,
        signer: None,
        worksheets: Vec::new(),
        created_at: r.time(3, T, &id)?,
        updated_at: r.time(4, T, &id)?,
        id,
    })
}

/// A stored row of worksheet `sheet_id` of `of` from `row_number, cells, likelihoods`.
pub(super) fn sheet_row_from_row<R: Column>(
    r: &R,
    of: &SpreadsheetId,
    sheet_id: u32,
) -> Result<SheetRow, R::Error> {
    const T: &str = "sheet_rows";
    let row = r.uint(0, T, of)?;
    let key = format!("{of} worksheet {sheet_id} row {row}");
    Ok(SheetRow { row, cells: r.json(1, T, &key)?, likelihoods: r.json_or_null(2, T, &key)? })
}

fn worksheets(conn: &Connection, id: &SpreadsheetId) -> StoreResult<Vec<Worksheet>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {WORKSHEET_COLUMNS} FROM worksheets WHERE spreadsheet_id = ?1 ORDER BY sheet_id"
    ))?;
    let rows = stmt.query_map([id], |r| worksheet_from_row(r, id))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn get(conn: &Connection, id: &SpreadsheetId) -> StoreResult<Option<Spreadsheet>> {
    let found = conn
        .prepare_cached(&format!("SELECT {SPREADSHEET_COLUMNS} FROM spreadsheets WHERE id = ?1"))?
        .query_row([id], |r| spreadsheet_from_row(r))
        .optional()?;
    match found {
        Some(mut s) => {
            s.worksheets = worksheets(conn, id)?;
            s.signer = sheet_signers::signer_of(conn, id)?;
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

/// What an append writes, worked out from the worksheet as it is (the same on both
/// backends): the header grown with the row's new keys (at the end), the values in header
/// order, and the answer a replay of the webhook-id gets.
pub(super) struct Planned {
    /// The header after this append (JSON).
    pub header: String,
    /// The data row's number.
    pub row: u32,
    /// The values in header order (JSON).
    pub cells: String,
    /// The likelihoods aligned with the values (JSON), when any is given.
    pub likelihoods: Option<String>,
    /// `answer(&Appended)`.
    pub result: String,
}

/// Plans appending `row` to `sheet` (see [`Planned`]); a row that would make the header
/// wider than `max_columns` is refused.
pub(super) fn plan(
    sheet: Worksheet,
    row: &NewRow,
    max_columns: usize,
    answer: &dyn Fn(&Appended) -> String,
) -> StoreResult<Planned> {
    let mut header = sheet.header;
    for (key, _, _) in &row.cells {
        if !header.contains(key) {
            header.push(key.clone());
        }
    }
    if header.len() > max_columns {
        return Err(StoreError::Limit(format!(
            "a worksheet has at most {max_columns} columns; this row needs {}",
            header.len()
        )));
    }
    let mut values = vec![String::new(); header.len()];
    let mut likelihoods = vec![None; header.len()];
    for (key, value, likelihood) in &row.cells {
        if let Some(i) = header.iter().position(|h| h == key) {
            values[i].clone_from(value);
            likelihoods[i] = *likelihood;
        }
    }
    let header_written = sheet.last_row == 0;
    let data_row = sheet.last_row.max(1) + 1;
    let appended = Appended {
        sheet_title: sheet.title,
        first_row: if header_written { 1 } else { data_row },
        row: data_row,
        columns: header.len() as u32,
    };
    Ok(Planned {
        result: answer(&appended),
        row: data_row,
        cells: serde_json::json!(values).to_string(),
        likelihoods: likelihoods
            .iter()
            .any(Option::is_some)
            .then(|| serde_json::json!(likelihoods).to_string()),
        header: serde_json::json!(header).to_string(),
    })
}

/// Appends `row` (see [`plan`]) and stores the answer a replay of `webhook_id` gets.
fn append(
    conn: &Connection,
    spreadsheet_id: &SpreadsheetId,
    sheet_id: u32,
    webhook_id: Option<&str>,
    row: &NewRow,
    max_columns: usize,
    answer: &dyn Fn(&Appended) -> String,
) -> StoreResult<(String, bool)> {
    if let Some(id) = webhook_id {
        let earlier: Option<String> = conn
            .prepare_cached(
                "SELECT append_result FROM sheet_rows WHERE spreadsheet_id = ?1 AND sheet_id = ?2 AND webhook_id = ?3",
            )?
            .query_row(params![spreadsheet_id, sheet_id, id], |r| r.get(0))
            .optional()?;
        if let Some(result) = earlier {
            return Ok((result, true));
        }
    }
    let sheet = worksheets(conn, spreadsheet_id)?
        .into_iter()
        .find(|w| w.sheet_id == sheet_id)
        .ok_or(StoreError::NotFound("worksheet"))?;
    let planned = plan(sheet, row, max_columns, answer)?;
    conn.prepare_cached(
        "INSERT INTO sheet_rows (spreadsheet_id, sheet_id, row_number, cells, likelihoods, webhook_id, append_result) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![spreadsheet_id, sheet_id, planned.row, planned.cells, planned.likelihoods, webhook_id, planned.result])?;
    conn.prepare_cached("UPDATE worksheets SET header = ?3, last_row = ?4 WHERE spreadsheet_id = ?1 AND sheet_id = ?2")?
        .execute(params![spreadsheet_id, sheet_id, planned.header, planned.row])?;
    Ok((planned.result, false))
}

impl Store {
    /// Stores a new spreadsheet and its worksheets.
    pub async fn create_spreadsheet(&self, sheet: Spreadsheet) -> StoreResult<Spreadsheet> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::sheets::create(p, sheet).await,
        };
        db.write(move |c| {
            c.prepare_cached(
                "INSERT INTO spreadsheets (id, title, webhook_secret, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![sheet.id, sheet.title, sheet.webhook_secret, sheet.created_at, sheet.updated_at])?;
            let mut insert = c.prepare_cached(
                "INSERT INTO worksheets (spreadsheet_id, sheet_id, title, header, last_row) VALUES (?1, ?2, ?3, '[]', 0)",
            )?;
            for w in &sheet.worksheets {
                insert.execute(params![sheet.id, w.sheet_id, w.title])?;
            }
            Ok(sheet)
        })
        .await
    }

    /// One spreadsheet with its worksheets.
    pub async fn spreadsheet(&self, id: SpreadsheetId) -> StoreResult<Spreadsheet> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                let client = p.client().await?;
                let found = pg::sheets::get(p, &client, &id).await?;
                return found.ok_or(StoreError::NotFound("spreadsheet"));
            }
        };
        db.read(move |c| get(c, &id)?.ok_or(StoreError::NotFound("spreadsheet"))).await
    }

    /// One page of spreadsheets (without their worksheets' contents).
    pub async fn list_spreadsheets(&self, page: PageRequest) -> StoreResult<Page<Spreadsheet>> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::sheets::list(p, &page).await,
        };
        db.read(move |c| {
            let page = read_page(
                c,
                "spreadsheets",
                "id",
                &Conditions::default(),
                &page,
                |r| Column::key::<crate::ids::Spreadsheet>(r, 0, "spreadsheets"),
                |id| id.as_str(),
            )?;
            let items = page
                .items
                .iter()
                .map(|id| get(c, id)?.ok_or(StoreError::NotFound("spreadsheet")))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Page { items, before: page.before, after: page.after })
        })
        .await
    }

    /// Deletes a spreadsheet; its worksheets, rows and signer link go with it (the schema's
    /// `ON DELETE CASCADE`).
    pub async fn delete_spreadsheet(&self, id: SpreadsheetId) -> StoreResult<()> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => return pg::sheets::delete(p, &id).await,
        };
        db.write(move |c| {
            if c.prepare_cached("DELETE FROM spreadsheets WHERE id = ?1")?.execute([&id])? == 0 {
                return Err(StoreError::NotFound("spreadsheet"));
            }
            Ok(())
        })
        .await
    }

    /// Appends a row (see [`append`]); returns the stored answer and whether it is a replay.
    pub async fn append_row<F>(
        &self,
        spreadsheet_id: SpreadsheetId,
        sheet_id: u32,
        webhook_id: Option<String>,
        row: NewRow,
        max_columns: usize,
        answer: F,
    ) -> StoreResult<(String, bool)>
    where
        F: Fn(&Appended) -> String + Send + 'static,
    {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                let (id, webhook_id) = (&spreadsheet_id, webhook_id.as_deref());
                return pg::sheets::append(p, id, sheet_id, webhook_id, &row, max_columns, answer)
                    .await;
            }
        };
        db.write(move |c| {
            append(c, &spreadsheet_id, sheet_id, webhook_id.as_deref(), &row, max_columns, &answer)
        })
        .await
    }

    /// Data rows `first..=last` of a worksheet.
    pub async fn sheet_rows(
        &self,
        spreadsheet_id: SpreadsheetId,
        sheet_id: u32,
        first: u32,
        last: u32,
    ) -> StoreResult<Vec<SheetRow>> {
        let db = match &self.backend {
            Backend::Sqlite(s) => s,
            Backend::Postgres(p) => {
                return pg::sheets::rows(p, &spreadsheet_id, sheet_id, first, last).await
            }
        };
        db.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT row_number, cells, likelihoods FROM sheet_rows \
                 WHERE spreadsheet_id = ?1 AND sheet_id = ?2 AND row_number BETWEEN ?3 AND ?4 ORDER BY row_number",
            )?;
            let rows = stmt.query_map(params![spreadsheet_id, sheet_id, first, last], |r| {
                sheet_row_from_row(r, &spreadsheet_id, sheet_id)
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
