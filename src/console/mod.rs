//! The operator console at `/console`: server-rendered pages (minijinja templates embedded in
//! the binary, autoescaped) over the same store and services as the API. Signed in with an
//! API key, a session acts with that key's role, judged by the API's own check
//! ([`crate::api::access::authorize`]) against the role the API's route table names.

mod automation_detail;
mod automation_forms;
mod automations;
mod keys;
mod log_detail;
mod logs;
mod overview;
mod pages;
mod retry;
mod runs;
mod session;
mod sheets;
mod sign_in_token;

use std::sync::Arc;

use anyhow::Context;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::{routes, AppState, Credential};
use crate::auth::Role;
use pages::Pages;

/// The console's state: the API's services and the compiled templates.
#[derive(Clone)]
struct Console {
    app: AppState,
    pages: Arc<Pages>,
    /// The role the API's rerun route needs: the console's Rerun button needs the same.
    rerun_role: Role,
    /// The role the API's recover route needs: bulk retry's dry run and confirm need it.
    recover_role: Role,
    /// The role the API's recover cancel route needs: bulk retry's Cancel needs it.
    cancel_role: Role,
    /// The role the API's enable route needs: the Enable button needs the same.
    enable_role: Role,
    /// The role the API's disable route needs: the Disable button needs the same.
    disable_role: Role,
    /// The role the API's test call route needs: "Send a test call" needs the same.
    test_role: Role,
    /// The role the API's create route needs: the "New automation" form needs the same.
    create_role: Role,
    /// The role the API's update (PUT) route needs: the Edit form needs the same.
    edit_role: Role,
    /// The role the API's secret rotation route needs: "Rotate secret" needs the same.
    rotate_role: Role,
    /// The roles the API's key list, create and revoke routes need: the Keys page's.
    keys_list_role: Role,
    keys_create_role: Role,
    keys_revoke_role: Role,
    /// The overview's figures, shared by every viewer for a few seconds.
    overview: Arc<overview::SharedFigures>,
}

/// The API route whose role the Rerun button takes.
const RERUN_ROUTE: &str = "/v1/processors/automations/logs/{log_id}/rerun";
/// The API route whose role bulk retry's dry run and confirm take.
const RECOVER_ROUTE: &str = "/v1/processors/automations/logs/recover";
/// The API route whose role bulk retry's Cancel takes.
const CANCEL_ROUTE: &str = "/v1/processors/automations/logs/recover/{job_id}/cancel";
/// The API routes whose roles the Enable and Disable buttons take.
const ENABLE_ROUTE: &str = "/v1/processors/automations/endpoints/{id}/enable";
const DISABLE_ROUTE: &str = "/v1/processors/automations/endpoints/{id}/disable";
/// The API route whose role "Send a test call" takes.
const TEST_ROUTE: &str = "/v1/processors/automations/tests/webhook/{id}";
/// The API routes whose roles the automation forms take (create: POST, edit: PUT).
const CREATE_ROUTE: &str = "/v1/processors/automations/endpoints";
const EDIT_ROUTE: &str = "/v1/processors/automations/endpoints/{id}";
/// The API route whose role "Rotate secret" takes.
const ROTATE_ROUTE: &str = "/v1/processors/automations/endpoints/{id}/secret/rotate";
/// The API routes whose roles the Keys page takes (list: GET, create: POST, revoke: DELETE).
const KEYS_ROUTE: &str = "/v1/keys";
const KEY_ROUTE: &str = "/v1/keys/{id}";

/// The role the API's route table gives `POST route`: a console action takes the role of the
/// API route it stands for, so the two cannot disagree.
fn post_role(route: &str) -> anyhow::Result<Role> {
    route_role(Method::POST, route)
}

/// The role the API's route table gives `wanted route`.
fn route_role(wanted: Method, route: &str) -> anyhow::Result<Role> {
    routes::served()
        .into_iter()
        .find_map(|(method, path, credential)| match credential {
            Credential::Key(role) if method == wanted && path == route => Some(role),
            _ => None,
        })
        .with_context(|| format!("the API's route table has no keyed {wanted} {route}"))
}

/// The console's router, to merge beside the API's (paths under `/console` only).
pub fn router(app: AppState) -> anyhow::Result<Router> {
    let console = Console {
        app,
        pages: Arc::new(Pages::new()?),
        rerun_role: post_role(RERUN_ROUTE)?,
        recover_role: post_role(RECOVER_ROUTE)?,
        cancel_role: post_role(CANCEL_ROUTE)?,
        enable_role: post_role(ENABLE_ROUTE)?,
        disable_role: post_role(DISABLE_ROUTE)?,
        test_role: post_role(TEST_ROUTE)?,
        create_role: post_role(CREATE_ROUTE)?,
        edit_role: route_role(Method::PUT, EDIT_ROUTE)?,
        rotate_role: post_role(ROTATE_ROUTE)?,
        keys_list_role: route_role(Method::GET, KEYS_ROUTE)?,
        keys_create_role: post_role(KEYS_ROUTE)?,
        keys_revoke_role: route_role(Method::DELETE, KEY_ROUTE)?,
        overview: Arc::default(),
    };
    Ok(Router::new()
        .route("/console", get(|| async { Redirect::to("/console/overview") }))
        .route("/console/", get(|| async { Redirect::to("/console/overview") }))
        .route("/console/overview", get(overview::show))
        .route("/console/sign-in", get(session::sign_in_page).post(session::sign_in))
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/logs", get(logs::list))
        .route("/console/logs/tail", get(logs::tail))
        .route("/console/logs/{log_id}", get(log_detail::show))
        .route("/console/logs/{log_id}/rerun", post(log_detail::rerun))
        .route("/console/retry", get(retry::form).post(retry::dry_run))
        .route("/console/retry/confirm", post(retry::confirm))
        .route("/console/retry/{job_id}", get(retry::job))
        .route("/console/retry/{job_id}/progress", get(retry::progress))
        .route("/console/retry/{job_id}/cancel", post(retry::cancel))
        .route("/console/automations", get(automations::list))
        .route("/console/automations/{id}", get(automation_detail::show))
        .route("/console/automations/{id}/enable", post(automations::set_enabled::<true>))
        .route("/console/automations/{id}/disable", post(automations::set_enabled::<false>))
        .route("/console/automations/{id}/test", post(automations::test_call))
        .route(
            "/console/automations/new",
            get(automation_forms::new_form).post(automation_forms::create),
        )
        .route(
            "/console/automations/{id}/edit",
            get(automation_forms::edit_form).post(automation_forms::update),
        )
        .route("/console/automations/{id}/rotate", post(automation_forms::rotate))
        .route("/console/keys", get(keys::list).post(keys::create))
        .route("/console/keys/{id}/revoke", post(keys::revoke))
        .route("/console/runs", get(runs::list))
        .route("/console/runs/{run_id}", get(runs::show))
        .route("/console/sheets", get(sheets::list))
        .route("/console/sheets/{id}", get(sheets::show))
        .route("/console/sheets/{id}/export", get(sheets::export))
        .route("/console/assets/{name}", get(asset))
        .route("/console/{*rest}", get(not_found).post(not_found))
        .with_state(console.clone())
        .layer(middleware::from_fn_with_state(console.clone(), refuse_cross_site))
        .layer(axum::extract::DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(console, too_large_as_a_page))
        .layer(middleware::from_fn(security_headers)))
}

/// The largest console form body: the largest form is an automation's, whose headers take at
/// most 32 of 4 KiB; nothing the console takes comes near, so nothing larger is read.
const FORM_BODY_LIMIT: usize = 256 * 1024;

/// A body over the size limit is refused by the framework before any handler, in plain
/// text: the console answers its own error page instead, as for every other refusal.
async fn too_large_as_a_page(
    axum::extract::State(console): axum::extract::State<Console>,
    req: Request,
    next: Next,
) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let message = "This form is larger than the server takes. Nothing was changed.";
    console.pages.error(StatusCode::PAYLOAD_TOO_LARGE, message)
}

/// Refuses a POST a browser sent from another site (`Sec-Fetch-Site: cross-site` or
/// `same-site`, or an `Origin: null` of a sandboxed frame or a redirect), before any
/// handler runs: the CSRF token guards each signed-in action, and this also guards sign-in
/// (a forged sign-in would put the victim in the attacker's session), beside the sign-in
/// form's own token for browsers that send neither header ([`sign_in_token`]). Clients that
/// are not browsers send neither header and pass.
async fn refuse_cross_site(
    axum::extract::State(console): axum::extract::State<Console>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let cross_site = matches!(site, Some("cross-site" | "same-site"))
        || headers.get(header::ORIGIN).is_some_and(|origin| origin == "null");
    if req.method() == Method::POST && cross_site {
        return console
            .pages
            .error(StatusCode::FORBIDDEN, "A form from another site cannot act here.");
    }
    next.run(req).await
}

/// The headers every console answer carries: no script but the console's own files (so an
/// injected `<script>` cannot run even if escaping failed), no framing, no referrer to other
/// sites, no type sniffing, and pages never cached (they show deliveries' contents).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The embedded assets: the stylesheet, and htmx (2.0.11, 0BSD, from `npm pack htmx.org@2`).
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "console.css" => (include_str!("assets/console.css"), "text/css; charset=utf-8"),
        "htmx.min.js" => (include_str!("assets/htmx.min.js"), "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let cache = "public, max-age=3600";
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], body).into_response()
}

async fn not_found(axum::extract::State(console): axum::extract::State<Console>) -> Response {
    console.pages.error(StatusCode::NOT_FOUND, "There is no such page.")
}
