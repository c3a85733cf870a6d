//! The HTTP API: axum routers, one file per resource; each keyed route behind the one role
//! check of [`access`].

pub mod access;
mod automation_health;
pub(crate) mod automations;
mod codes;
mod error;
mod expunge;
pub(crate) mod extract;
mod files;
mod head_limits;
mod json_depth;
mod json_errors;
pub(crate) mod keys;
pub(crate) mod logs;
pub(crate) mod logs_view;
mod messages;
pub mod openapi;
mod openapi_docs;
mod openapi_extra;
mod openapi_fields;
mod openapi_health;
mod openapi_ops;
mod openapi_recover;
mod openapi_schemas;
mod ops;
mod path_params;
pub(crate) mod recover;
mod recover_window;
mod replay;
pub(crate) mod rerun;
pub mod routes;
mod sheet_signer;
pub(crate) mod sheet_values;
mod sheets;
mod sink;
pub(crate) mod stored_text;
pub(crate) mod test_call;
mod upload_body;
mod workflow_inputs;
mod workflows;

pub use codes::ApiErrorCode;
pub use error::{ApiError, ApiResult};
pub use head_limits::MAX_HEADER_FIELDS;
pub use routes::Credential;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Keys;
use crate::config::Config;
use crate::delivery::Dispatcher;
use crate::listener::BodyTimedOut;
use crate::metrics::Metrics;
use crate::outbound::{OneCalls, Sender};
use crate::store::Store;

/// What every handler can reach. axum clones the state for every request, so it is one
/// `Arc`: cloning the services inside (each holding store handles and several `Arc`s) cost
/// several atomic operations per request on the hot path.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// The state handlers share.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    /// The database.
    pub store: Store,
    /// Where messages enter (see [`crate::relay`]).
    pub relay: crate::relay::Relay,
    /// Runs recover jobs; holds the call slots.
    pub dispatcher: Arc<Dispatcher>,
    /// Makes reruns and test calls, and records their logs.
    pub one_calls: OneCalls,
    /// The guarded HTTP client.
    pub sender: Arc<Sender>,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Valid API keys, with their roles; `/v1/keys` changes them as it answers.
    pub keys: Arc<Keys>,
    /// Workflow apps and their runs.
    pub workflows: Arc<crate::workflow::service::Workflows>,
}

/// Synchronous calls (rerun, test) wait for the receiver; leave them room beyond its timeout.
const API_TIMEOUT_SLACK: Duration = Duration::from_secs(15);

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api_timeout = TimeoutLayer::with_status_code(
        axum::http::StatusCode::GATEWAY_TIMEOUT,
        state.config.delivery.request_timeout() + API_TIMEOUT_SLACK,
    );
    let (mut keyed, mut app, mut open) = (Router::new(), Router::new(), Router::new());
    for route in routes::table(state.config.limits.max_concurrent_uploads) {
        let handler =
            if route.under_api_timeout { route.handler.layer(api_timeout) } else { route.handler };
        match route.credential {
            Credential::Key(role) => {
                let check = middleware::from_fn_with_state(role, access::require_role);
                keyed = keyed.route(route.path, handler.route_layer(check));
            }
            Credential::App => app = app.route(route.path, handler),
            // The sink authenticates each call itself: by signature, or by admin key.
            Credential::Sink | Credential::Public => open = open.route(route.path, handler),
        }
    }
    // Per group, so that a wrong method on a keyed path is judged by the key first (401
    // without one, 405 with a valid one); the role is each route's own.
    let keyed =
        keyed.route_layer(middleware::from_fn_with_state(state.clone(), access::require_key));
    let app =
        app.route_layer(middleware::from_fn_with_state(state.clone(), workflows::require_app_key));
    let routes = Router::new()
        .merge(keyed)
        .merge(app)
        .merge(open)
        .route_layer(middleware::from_fn(path_params::check_path_params))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(middleware::from_fn_with_state(state.clone(), head_limits::check_head))
        .layer(middleware::from_fn(slow_body_answer))
        .with_state(state);
    // Around the whole router, not each route: a route's 405 gets its `Allow` header only as
    // it leaves the router, and the JSON error names the allowed methods from it. Outside the
    // timeout too, so its 504 gets the JSON error body.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::map_response(json_errors::json_errors))
        // Error answers are logged by json_errors, at a level by status: not here as well.
        .layer(TraceLayer::new_for_http().on_failure(()))
}

/// 408 for a request whose body missed its deadline (see `listener::body_deadline`),
/// whatever the handler made of the body's error (a 400, a 413, a parser's message).
async fn slow_body_answer(req: Request, next: Next) -> Response {
    let timed_out = req.extensions().get::<BodyTimedOut>().cloned();
    let response = next.run(req).await;
    match timed_out {
        Some(t) if t.expired() => ApiError::new(
            ApiErrorCode::RequestTimeout,
            "the request body did not arrive in time: each piece must come within \
             limits.header_read_timeout_ms of the last, the whole within \
             limits.body_read_timeout_ms",
        )
        .with_field("body")
        .into_response(),
        _ => response,
    }
}
