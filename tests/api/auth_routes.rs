//! The route table of the auth matrix, and a check that it is the router's: every
//! `.route(…)` in `src/api/*.rs` is read back from the source, with the key it needs (from
//! where `src/api/mod.rs` merges its module), and must be in [`MATRIX`] — so a route added
//! to the router without an entry here fails `every_served_route_is_in_the_auth_matrix`.

use std::collections::BTreeSet;
use std::path::Path;

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

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "any"];

/// `(METHOD, path)` of every `.route("path", method(h).method(h)…)` in `source`.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, _) in source.match_indices(".route(\"") {
        let rest = &source[at + ".route(\"".len()..];
        let path_end = rest.find('"').expect("route path ends");
        let path = &rest[..path_end];
        // The call's arguments: up to the parenthesis closing `.route(`.
        let mut depth = 1usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &rest[path_end..end];
        let bytes = args.as_bytes();
        for method in METHODS {
            for (i, _) in args.match_indices(&format!("{method}(")) {
                let word_start =
                    i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
                if word_start {
                    out.push((method.to_ascii_uppercase(), path.to_string()));
                }
            }
        }
    }
    out
}

/// The kind of the routes of module `module`, from the statement of `src/api/mod.rs`'s
/// `router()` that merges `module::router(…)`.
fn kind_of(router_fn: &str, module: &str) -> Kind {
    let call = format!("{module}::router(");
    let statement = router_fn
        .split(';')
        .find(|s| s.contains(&call))
        .unwrap_or_else(|| panic!("src/api/mod.rs does not merge {call}"));
    let kinds = [
        ("require_admin_key", Kind::Admin),
        ("require_app_key", Kind::App),
        ("let v1", Kind::Sink),
        (".nest(\"/v1\"", Kind::Public),
    ];
    let found: Vec<Kind> =
        kinds.iter().filter(|(mark, _)| statement.contains(mark)).map(|(_, k)| *k).collect();
    assert_eq!(found.len(), 1, "cannot tell the key {module}'s routes need from {statement:?}");
    found[0]
}

/// Every route the router serves, read from the source.
pub(crate) fn served_routes() -> BTreeSet<(String, String, Kind)> {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mod_rs = std::fs::read_to_string(api.join("mod.rs")).expect("src/api/mod.rs");
    let start = mod_rs.find("pub fn router(").expect("router() in src/api/mod.rs");
    let router_fn =
        &mod_rs[start..mod_rs[start..].find("\n}\n").map_or(mod_rs.len(), |e| start + e)];
    // Only `/v1` is nested; anything else would need this reader to learn about it.
    assert_eq!(router_fn.matches(".nest(").count(), 1, "a new nest() in {router_fn}");
    assert!(router_fn.contains(".nest(\"/v1\", v1)"), "{router_fn}");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&api).expect("src/api") {
        let path = entry.expect("entry").path();
        let module = path.file_stem().and_then(|s| s.to_str()).expect("name").to_string();
        let source = std::fs::read_to_string(&path).expect("read");
        for other in [".route_service(", ".nest(", ".nest_service("] {
            assert!(
                module == "mod" || !source.contains(other),
                "src/api/{module}.rs uses {other}: teach tests/api/auth_routes.rs about it"
            );
        }
        let routes = routes_in(&source);
        if routes.is_empty() {
            continue;
        }
        let kind = kind_of(router_fn, &module);
        let prefix = if kind == Kind::Public { "" } else { "/v1" };
        for (method, route) in routes {
            out.insert((method, format!("{prefix}{route}"), kind));
        }
    }
    out
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
    // The reader is not vacuous: it found every kind, and the counts stated in the report.
    assert_eq!(served.len(), 42, "{served:#?}");
    for kind in [Kind::Admin, Kind::App, Kind::Sink, Kind::Public] {
        assert!(served.iter().any(|r| r.2 == kind), "no {kind:?} route found");
    }
}

#[test]
fn the_route_reader_reads_chained_methods_and_ignores_other_calls() {
    let src = r#"Router::new()
        .route("/a/{id}", get(show).put(update).delete(remove))
        .route("/b", post(upload).layer(DefaultBodyLimit::max(forget(1))))"#;
    let got = routes_in(src);
    let want: Vec<(String, String)> =
        [("GET", "/a/{id}"), ("PUT", "/a/{id}"), ("DELETE", "/a/{id}")]
            .iter()
            .chain(&[("POST", "/b")])
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want;
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted);
}
