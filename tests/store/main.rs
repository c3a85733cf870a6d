use hookrelay_testkit as common;

// The store's integrity under load and failure: refused writes never cost other producers
// their writes, every call is logged exactly once, logs stay readable, and storage failures
// (a full disk, a database locked by another process) are answered for what they are.

mod corrupt;
mod damaged;
mod refusals;
mod retention;
mod second_server;
mod storage_failures;
mod upgrade;
