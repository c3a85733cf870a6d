//! The route table of the auth matrix, and a check that it is the router's: the router is
//! built from `hookrelay::api::routes` alone, whose rows (method, path, credential) must be
//! exactly [`MATRIX`] — so a route added to the router without an entry here fails
//! `every_served_route_is_in_the_auth_matrix`.

use std::collections::BTreeSet;

use hookrelay::api::routes::served;
use hookrelay::api::Credential;

/// Which credential a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// An admin key (`Api-Key` or `Authorization: Bearer`); an app key is 403.
    Admin,
    /// An app key (`Authorization: Bearer app-…`) selecting the app; an admin key is 403.
    App,
    /// The sheets sink: a valid signature on a signed sheet, an admin key otherwise.
    Sink,
    /// No key (health, readiness, metrics).
    Public,
}

/// Every route the router serves: method, path as in the router, credential.
pub(crate) const MATRIX: &[(&str, &str, Kind)] = &[
    ("GET", "/v1/processors/automations/endpoints", Kind::Admin),
    ("POST", "/v1/processors/automations/endpoints", Kind::Admin),
    ("GET", "/v1/processors/automations/endpoints/{id}", Kind::Admin),
    ("PUT", "/v1/processors/automations/endpoints/{id}", Kind::Admin),
    ("DELETE", "/v1/processors/automations/endpoints/{id}", Kind::Admin),
    ("GET", "/v1/processors/automations/endpoints/{id}/secret", Kind::Admin),
    ("POST", "/v1/processors/automations/endpoints/{id}/secret/rotate", Kind::Admin),
    ("POST", "/v1/processors/automations/tests/webhook/{id}", Kind::Admin),
    ("POST", "/v1/processors/automations/endpoints/{id}/replay-missing", Kind::Admin),
    ("GET", "/v1/processors/automations/endpoints/{id}/replay-missing/{job_id}", Kind::Admin),
    ("POST", "/v1/messages", Kind::Admin),
    ("GET", "/v1/messages", Kind::Admin),
    ("GET", "/v1/messages/{id}", Kind::Admin),
    ("DELETE", "/v1/messages/{id}/content", Kind::Admin),
    ("GET", "/v1/deliveries", Kind::Admin),
    ("GET", "/v1/deliveries/{id}", Kind::Admin),
    ("GET", "/v1/processors/automations/logs", Kind::Admin),
    ("GET", "/v1/processors/automations/logs/{log_id}", Kind::Admin),
    ("POST", "/v1/processors/automations/logs/{log_id}/rerun", Kind::Admin),
    ("GET", "/v1/processors/{processor_id}/automations/logs", Kind::Admin),
    ("GET", "/v1/processors/{processor_id}/automations/logs/{log_id}", Kind::Admin),
    ("POST", "/v1/processors/{processor_id}/automations/logs/{log_id}/rerun", Kind::Admin),
    ("POST", "/v1/processors/automations/logs/recover", Kind::Admin),
    ("GET", "/v1/processors/automations/logs/recover", Kind::Admin),
    ("GET", "/v1/processors/automations/logs/recover/{job_id}", Kind::Admin),
    ("GET", "/v1/spreadsheets", Kind::Admin),
    ("POST", "/v1/spreadsheets", Kind::Admin),
    ("GET", "/v1/spreadsheets/{id}", Kind::Admin),
    ("DELETE", "/v1/spreadsheets/{id}", Kind::Admin),
    ("PUT", "/v1/spreadsheets/{id}/signer", Kind::Admin),
    ("DELETE", "/v1/spreadsheets/{id}/signer", Kind::Admin),
    ("GET", "/v1/spreadsheets/{id}/values/{range}", Kind::Admin),
    ("GET", "/v1/spreadsheets/{id}/export", Kind::Admin),
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
                Credential::Admin => Kind::Admin,
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
    assert_eq!(served.len(), 43, "{served:#?}");
    for kind in [Kind::Admin, Kind::App, Kind::Sink, Kind::Public] {
        assert!(served.iter().any(|r| r.2 == kind), "no {kind:?} route found");
    }
}
