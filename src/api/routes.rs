//! The route table: every route the API serves, with the credential it takes (for an API key,
//! the role it needs). The router is built from it alone (see [`super::router`]), and the auth
//! tests read it through [`served`], so a route cannot be served without a row that says
//! which key, and which role, it needs.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};

use super::{
    automation_health, automations, expunge, files, keys, logs, messages, openapi, openapi_docs,
    ops, recover, replay, rerun, sheet_signer, sheet_values, sheets, sink, test_call, workflows,
    AppState,
};
use crate::auth::Role;

/// Which credential a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Credential {
    /// An API key (`Api-Key` or `Authorization: Bearer`) of at least this role: a lower
    /// one is 403 `insufficient_role`, an app key 403 `forbidden`.
    Key(Role),
    /// An app key (`Authorization: Bearer app-…`) selecting the app; an admin key is 403.
    App,
    /// The sheets sink: a valid signature on a signed spreadsheet, an admin-role key
    /// otherwise (the handler checks it).
    Sink,
    /// No key: health, readiness, metrics.
    Public,
}

/// One served route.
pub struct Route {
    /// The method it serves (one per row).
    pub method: Method,
    /// The path, as the router matches it (`{id}` captures).
    pub path: &'static str,
    /// The credential it takes.
    pub credential: Credential,
    /// What answers it.
    pub(super) handler: MethodRouter<AppState>,
    /// Whether the API timeout bounds it (see [`super::router`]). Not an upload: its body
    /// arrives at the client's pace, bounded by the listener's body deadlines, and then its
    /// file is stored. Cut at the API timeout, many uploads at once on a loaded machine
    /// were answered 504, and one cut once its write is queued is stored all the same (the
    /// writer runs a queued write whether or not its caller still waits).
    pub(super) under_api_timeout: bool,
}

/// A row of the table: `handler` for `method` on `path`.
fn route<H: Handler<T, AppState>, T: 'static>(
    method: Method,
    path: &'static str,
    credential: Credential,
    handler: H,
) -> Route {
    // The table's methods are constants below, each one MethodFilter has.
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    Route { method, path, credential, handler: on(filter, handler), under_api_timeout: true }
}

/// Every route, with its handler; uploads are read at most `max_concurrent_uploads` at once.
#[rustfmt::skip] // One row per line, as a table.
pub(super) fn table(max_concurrent_uploads: usize) -> Vec<Route> {
    use Credential::{App, Public, Sink};
    // Viewer: reads, but no secret. Operator: acts on deliveries (rerun, recover, a test
    // call, enable/disable) without changing what is configured. Admin: the rest.
    const VIEWER: Credential = Credential::Key(Role::Viewer);
    const OPERATOR: Credential = Credential::Key(Role::Operator);
    const ADMIN: Credential = Credential::Key(Role::Admin);
    const GET: Method = Method::GET;
    const POST: Method = Method::POST;
    const PUT: Method = Method::PUT;
    const DELETE: Method = Method::DELETE;
    let mut upload = route(POST, "/v1/files/upload", App, files::upload);
    upload.handler = files::upload_layers(upload.handler, max_concurrent_uploads);
    upload.under_api_timeout = false;
    vec![
        route(GET, "/v1/processors/automations/endpoints", VIEWER, automations::list),
        route(POST, "/v1/processors/automations/endpoints", ADMIN, automations::create),
        route(GET, "/v1/processors/automations/endpoints/{id}", VIEWER, automations::show),
        route(PUT, "/v1/processors/automations/endpoints/{id}", ADMIN, automations::update),
        route(DELETE, "/v1/processors/automations/endpoints/{id}", ADMIN, automations::remove),
        route(POST, "/v1/processors/automations/endpoints/{id}/enable", OPERATOR, automations::set_enabled::<true>),
        route(POST, "/v1/processors/automations/endpoints/{id}/disable", OPERATOR, automations::set_enabled::<false>),
        route(GET, "/v1/processors/automations/endpoints/{id}/secret", ADMIN, automations::secret),
        route(POST, "/v1/processors/automations/endpoints/{id}/secret/rotate", ADMIN, automations::rotate),
        route(GET, "/v1/processors/automations/endpoints/{id}/health", VIEWER, automation_health::health),
        route(GET, "/v1/processors/automations/endpoints/{id}/events", VIEWER, automation_health::events),
        route(POST, "/v1/processors/automations/tests/webhook/{id}", OPERATOR, test_call::test_webhook),
        route(POST, "/v1/processors/automations/endpoints/{id}/replay-missing", ADMIN, replay::create),
        route(GET, "/v1/processors/automations/endpoints/{id}/replay-missing/{job_id}", VIEWER, replay::show),
        route(POST, "/v1/messages", ADMIN, messages::ingest),
        route(GET, "/v1/messages", VIEWER, messages::list_messages),
        route(GET, "/v1/messages/{id}", VIEWER, messages::show_message),
        route(DELETE, "/v1/messages/{id}/content", ADMIN, expunge::expunge_content),
        route(GET, "/v1/deliveries", VIEWER, messages::list_deliveries),
        route(GET, "/v1/deliveries/{id}", VIEWER, messages::show_delivery),
        route(GET, "/v1/processors/automations/logs", VIEWER, logs::list),
        route(GET, "/v1/processors/automations/logs/{log_id}", VIEWER, logs::show),
        route(POST, "/v1/processors/automations/logs/{log_id}/rerun", OPERATOR, rerun::rerun),
        route(GET, "/v1/processors/{processor_id}/automations/logs", VIEWER, logs::list_scoped),
        route(GET, "/v1/processors/{processor_id}/automations/logs/{log_id}", VIEWER, logs::show_scoped),
        route(POST, "/v1/processors/{processor_id}/automations/logs/{log_id}/rerun", OPERATOR, rerun::rerun_scoped),
        route(POST, "/v1/processors/automations/logs/recover", OPERATOR, recover::create),
        route(GET, "/v1/processors/automations/logs/recover", VIEWER, recover::list),
        route(GET, "/v1/processors/automations/logs/recover/{job_id}", VIEWER, recover::show),
        route(POST, "/v1/processors/automations/logs/recover/{job_id}/cancel", OPERATOR, recover::cancel),
        route(GET, "/v1/spreadsheets", VIEWER, sheets::list),
        route(POST, "/v1/spreadsheets", ADMIN, sheets::create),
        route(GET, "/v1/spreadsheets/{id}", VIEWER, sheets::show),
        route(DELETE, "/v1/spreadsheets/{id}", ADMIN, sheets::remove),
        route(PUT, "/v1/spreadsheets/{id}/signer", ADMIN, sheet_signer::link),
        route(DELETE, "/v1/spreadsheets/{id}/signer", ADMIN, sheet_signer::unlink),
        route(GET, "/v1/spreadsheets/{id}/values/{range}", VIEWER, sheet_values::values),
        route(GET, "/v1/spreadsheets/{id}/export", VIEWER, sheet_values::export),
        route(POST, "/v1/keys", ADMIN, keys::create),
        route(GET, "/v1/keys", ADMIN, keys::list),
        route(DELETE, "/v1/keys/{id}", ADMIN, keys::revoke),
        route(POST, "/v1/workflows/run", App, workflows::run),
        route(GET, "/v1/workflows/run/{id}", App, workflows::show_run),
        route(POST, "/v1/workflows/tasks/{task_id}/stop", App, workflows::stop),
        route(GET, "/v1/workflows/logs", App, workflows::logs),
        route(GET, "/v1/parameters", App, workflows::parameters),
        upload,
        route(POST, "/v1/integrations/google_sheets/webhook", Sink, sink::append),
        route(GET, "/healthz", Public, ops::healthz),
        route(GET, "/readyz", Public, ops::readyz),
        route(GET, "/metrics", Public, ops::metrics),
        route(GET, "/openapi.json", Public, openapi::openapi_json),
        route(GET, "/docs", Public, openapi_docs::docs_page),
    ]
}

/// Every route served: method, path and credential, in the table's order.
pub fn served() -> Vec<(Method, &'static str, Credential)> {
    table(1).into_iter().map(|r| (r.method, r.path, r.credential)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The router takes its routes from [`table`] only: no other file of the API registers
    /// one, so the table (and the auth tests reading it) cannot miss a route.
    #[test]
    fn routes_are_registered_only_from_the_table() {
        let api = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        for entry in std::fs::read_dir(&api).expect("src/api") {
            let path = entry.expect("entry").path();
            let source = std::fs::read_to_string(&path).expect("read");
            let calls = [".route(", ".route_service(", ".nest(", ".nest_service(", "Router::new()"];
            let found: Vec<&str> = calls.into_iter().filter(|c| source.contains(c)).collect();
            let allowed: &[&str] = if path.ends_with("mod.rs") {
                &[".route(", "Router::new()"]
            } else if path.ends_with("routes.rs") {
                &calls
            } else {
                &[]
            };
            assert!(
                found.iter().all(|c| allowed.contains(c)),
                "{} registers routes itself ({found:?}): add them to routes::table",
                path.display()
            );
        }
        let served = served();
        let unique: std::collections::BTreeSet<_> =
            served.iter().map(|(m, p, _)| (m.clone(), *p)).collect();
        assert_eq!(unique.len(), served.len(), "a route is in the table twice");
    }
}
