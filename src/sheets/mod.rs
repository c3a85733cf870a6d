//! The Sheets-style sink: completions become spreadsheet rows (exactly once per
//! `webhook-id`), readable with A1 ranges and exportable to CSV and XLSX.

pub mod a1;
pub mod export;
pub mod flatten;
pub mod formula;
