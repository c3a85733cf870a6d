//! The route table of the auth matrix, and a check that it is the router's: the router is
//! built from `hookrelay::api::routes` alone, whose rows (method, path, credential, and for
//! an API key the role it needs) must be exactly [`MATRIX`] — so a route added to the router
//! without an entry here, or with another role, fails `every_served_route_is_in_the_auth_matrix`.

use std::collections::BTreeSet;

use hookrelay::api::routes::served;
use hookrelay::api::Credential;
use hookrelay::auth::Role;

/// Which credential a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// An API key (`Api-Key` or `Authorization: Bearer`) of at least this role; a lower
    /// role is 403 `insufficient_role`, an app key 403 `forbidden`.
    Key(Role),
    /// An app key (`Authorization: Bearer app-…`) selecting the app; an admin key is 403.
    App,
    /// The sheets sink: a valid signature on a signed sheet, an admin key otherwise.
    Sink,
    /// No key (health, readiness, metrics).
    Public,
}

const VIEWER: Kind = Kind::Key(Role::Viewer);
const OPERATOR: Kind = Kind::Key(Role::Operator);
const ADMIN: Kind = Kind::Key(Role::Admin);

/// Every route the router serves: method, path as in the router, credential. The roles:
/// a viewer reads all but secrets; an operator also reruns, recovers, sends a test call and
/// enables or disables an automation; everything else (secrets, configuration, ingest,
/// expunge, spreadsheets' writes, replay, keys) needs an admin key.
pub(crate) const MATRIX: &[(&str, &str, Kind)] = &[
    ("GET", "/v1/processors/automations/endpoints", VIEWER),
    ("POST", "/v1/processors/automations/endpoints", ADMIN),
    ("GET", "/v1/processors/automations/endpoints/{id}", VIEWER),
    ("PUT", "/v1/processors/automations/endpoints/{id}", ADMIN),
    ("DELETE", "/v1/processors/automations/endpoints/{id}", ADMIN),
    ("POST", "/v1/processors/automations/endpoints/{id}/enable", OPERATOR),
    ("POST", "/v1/processors/automations/endpoints/{id}/disable", OPERATOR),
    ("GET", "/v1/processors/automations/endpoints/{id}/secret", ADMIN),
    ("POST", "/v1/processors/automations/endpoints/{id}/secret/rotate", ADMIN),
    ("GET", "/v1/processors/automations/endpoints/{id}/health", VIEWER),
    ("GET", "/v1/processors/automations/endpoints/{id}/events", VIEWER),
    ("POST", "/v1/processors/automations/tests/webhook/{id}", OPERATOR),
    ("POST", "/v1/processors/automations/endpoints/{id}/replay-missing", ADMIN),
    ("GET", "/v1/processors/automations/endpoints/{id}/replay-missing/{job_id}", VIEWER),
    ("POST", "/v1/messages", ADMIN),
    ("GET", "/v1/messages", VIEWER),
    ("GET", "/v1/messages/{id}", VIEWER),
    ("DELETE", "/v1/messages/{id}/content", ADMIN),
    ("GET", "/v1/deliveries", VIEWER),
    ("GET", "/v1/deliveries/{id}", VIEWER),
    ("GET", "/v1/processors/automations/logs", VIEWER),
    ("GET", "/v1/processors/automations/logs/{log_id}", VIEWER),
    ("POST", "/v1/processors/automations/logs/{log_id}/rerun", OPERATOR),
    ("GET", "/v1/processors/{processor_id}/automations/logs", VIEWER),
    ("GET", "/v1/processors/{processor_id}/automations/logs/{log_id}", VIEWER),
    ("POST", "/v1/processors/{processor_id}/automations/logs/{log_id}/rerun", OPERATOR),
    ("POST", "/v1/processors/automations/logs/recover", OPERATOR),
    ("GET", "/v1/processors/automations/logs/recover", VIEWER),
    ("GET", "/v1/processors/automations/logs/recover/{job_id}", VIEWER),
    ("POST", "/v1/processors/automations/logs/recover/{job_id}/cancel", OPERATOR),
    ("GET", "/v1/spreadsheets", VIEWER),
    ("POST", "/v1/spreadsheets", ADMIN),
    ("GET", "/v1/spreadsheets/{id}", VIEWER),
    ("DELETE", "/v1/spreadsheets/{id}", ADMIN),
    ("PUT", "/v1/spreadsheets/{id}/signer", ADMIN),
    ("DELETE", "/v1/spreadsheets/{id}/signer", ADMIN),
    ("GET", "/v1/spreadsheets/{id}/values/{range}", VIEWER),
    ("GET", "/v1/spreadsheets/{id}/export", VIEWER),
    ("POST", "/v1/keys", ADMIN),
    ("GET", "/v1/keys", ADMIN),
    ("DELETE", "/v1/keys/{id}", ADMIN),
    ("POST", "/v1/workflows/run", Kind::App),
    ("GET", "/v1/workflows/run/{id}", Kind::App),
    ("POST", "/v1/workflows/tasks/{task_id}/stop", Kind::App),
    ("GET", "/v1/workflows/logs", Kind::App),
    ("GET", "/v1/parameters", Kind::App),
    ("POST", "/v1/files/upload", Kind::App),
    ("POST", "/v1/integrations/google_sheets/webhook", Kind::Sink),
    ("GET", "/healthz", Kind::Public),
    ("GET", "/readyz", Kind::Public),
    ("GET", "/metrics", Kind::Public),
    ("GET", "/openapi.json", Kind::Public),
    ("GET", "/docs", Kind::Public),
];

/// The routes of [`MATRIX`] of one kind.
pub(crate) fn routes_of(kind: Kind) -> impl Iterator<Item = (&'static str, &'static str)> {
    MATRIX.iter().filter(move |r| r.2 == kind).map(|r| (r.0, r.1))
}

/// Every route the router serves, from the table it is built from.
pub(crate) fn served_routes() -> BTreeSet<(String, String, Kind)> {
    served()
        .into_iter()
        .map(|(method, path, credential)| {
            let kind = match credential {
                Credential::Key(role) => Kind::Key(role),
                Credential::App => Kind::App,
                Credential::Sink => Kind::Sink,
                Credential::Public => Kind::Public,
            };
            (method.to_string(), path.to_string(), kind)
        })
        .collect()
}

#[test]
fn every_served_route_is_in_the_auth_matrix() {
    let served = served_routes();
    let matrix: BTreeSet<(String, String, Kind)> =
        MATRIX.iter().map(|(m, p, k)| (m.to_string(), p.to_string(), *k)).collect();
    assert_eq!(matrix.len(), MATRIX.len(), "a route is listed twice in MATRIX");
    let missing: Vec<_> = served.difference(&matrix).collect();
    let stale: Vec<_> = matrix.difference(&served).collect();
    assert!(missing.is_empty(), "routes served but not in the auth MATRIX: {missing:#?}");
    assert!(stale.is_empty(), "MATRIX routes the router does not serve: {stale:#?}");
    // The table is not read vacuously: every kind, and the counts stated in the report.
    assert_eq!(served.len(), 53, "{served:#?}");
    for kind in [VIEWER, OPERATOR, ADMIN, Kind::App, Kind::Sink, Kind::Public] {
        assert!(served.iter().any(|r| r.2 == kind), "no {kind:?} route found");
    }
}
