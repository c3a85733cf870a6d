use hookrelay_testkit as common;

// End-to-end tests of the operator console at /console (issue 13 §2): sessions (sign-in,
// cookie flags, expiry, revocation, sign-out), CSRF, security headers, escaping of what
// receivers answered, roles, the logs explorer's filters; and the same in a real browser.

mod automation_detail;
mod automation_forms;
mod automation_ordering;
mod automations;
mod browser;
mod helpers;
mod keys;
#[path = "../support/log_copies.rs"]
mod log_copies;
mod overview;
mod pages;
mod retry;
mod runs;
mod sessions;
mod sheets;
