//! The templates, compiled once, and rendering them into answers. Templates end in `.html`,
//! so minijinja escapes every value put into them: whatever a receiver answered is shown as
//! text, never as markup.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::value::Serde;
use minijinja::{Environment, Value};
use serde_json::json;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("error.html", include_str!("templates/error.html")),
    ("logs.html", include_str!("templates/logs.html")),
    ("log.html", include_str!("templates/log.html")),
    ("log_rows.html", include_str!("templates/log_rows.html")),
    ("log_tail.html", include_str!("templates/log_tail.html")),
    ("rerun_result.html", include_str!("templates/rerun_result.html")),
    ("rerun_refused.html", include_str!("templates/rerun_refused.html")),
    ("retry.html", include_str!("templates/retry.html")),
    ("retry_job.html", include_str!("templates/retry_job.html")),
    ("retry_progress.html", include_str!("templates/retry_progress.html")),
    ("automations.html", include_str!("templates/automations.html")),
    ("automation.html", include_str!("templates/automation.html")),
    ("automation_form.html", include_str!("templates/automation_form.html")),
    ("secret_once.html", include_str!("templates/secret_once.html")),
    ("keys.html", include_str!("templates/keys.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("run.html", include_str!("templates/run.html")),
    ("sheets.html", include_str!("templates/sheets.html")),
    ("sheet.html", include_str!("templates/sheet.html")),
    ("overview.html", include_str!("templates/overview.html")),
];

/// The compiled templates.
pub(super) struct Pages {
    env: Environment<'static>,
}

impl Pages {
    /// Compiles every template; an error names the template (a build defect, found at start).
    pub(super) fn new() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| anyhow::anyhow!("console template {name}: {e}"))?;
        }
        Ok(Self { env })
    }

    /// `template` rendered over `context`, answered with `status`.
    pub(super) fn render(
        &self,
        status: StatusCode,
        template: &str,
        context: &serde_json::Value,
    ) -> Response {
        let rendered =
            self.env.get_template(template).and_then(|t| t.render(Value::from(Serde(context))));
        match rendered {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template, error = %e, "a console page could not be rendered");
                let body = "the page could not be rendered; the server log says why";
                (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
            }
        }
    }

    /// An error page saying `message`.
    pub(super) fn error(&self, status: StatusCode, message: &str) -> Response {
        let context = json!({"status": status.as_u16(), "reason": status.canonical_reason(),
                             "message": message});
        self.render(status, "error.html", &context)
    }
}
