use hookrelay_testkit as common;

// End-to-end tests of the `/v1` API surface: auth on every route (the auth matrix, checked
// against the router's route table), app-scoped resources across apps, bad input, automations,
// cursor pagination, log filters, rerun, idempotent ingest, messages read back, recover and
// replay jobs, the test webhook, and the uiform `AutomationLog` shape of every log served.

mod helpers;
#[path = "../support/log_copies.rs"]
mod log_copies;

mod auth;
mod auth_fixture;
mod auth_matrix;
mod auth_roles;
mod auth_routes;
mod auth_scoping;
mod automations;
mod bad_input;
mod call_slots;
mod cursor;
mod edge_input;
mod expunge;
mod filters;
mod idempotency;
mod json_depth;
mod keys;
mod log_filters;
mod log_times;
mod logs_follow;
mod malformed_json;
mod message_views;
mod messages;
mod no_body;
mod nul;
mod openapi;
mod openapi_truth;
mod recover;
mod recover_cancel;
mod recover_concurrent;
mod recover_filters;
mod recover_windows;
mod replay;
mod rerun;
mod rerun_credentials;
mod rerun_detached;
mod rerun_settles;
mod rerun_target;
mod test_webhook;
mod unknown_fields;
mod unknown_params;
mod url_contains;
mod wrong_routes;
