use hookrelay_testkit as common;

// End-to-end tests of the Google-Sheets-style sink: spreadsheets CRUD; a workflow run
// delivered by an automation to the relay's own sink (signed and keyed) and read back;
// the append answer; exactly-once rows under reruns, replays and 200 concurrent appends;
// signature enforcement; header growth and flattening; likelihood fills in the XLSX export
// (read with calamine and the raw styles) and the CSV round trip; A1 read-back over HTTP;
// bad input. Every test runs the real binary with its own SQLite file.

mod helpers;

mod append;
mod bad_input;
mod concurrency;
mod crud;
mod end_to_end;
mod exactly_once;
mod export;
mod ranges;
mod refusals_log;
mod signatures;
mod signer;
mod signer_replay;
mod signer_target;
