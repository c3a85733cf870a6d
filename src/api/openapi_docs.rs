//! `GET /docs`: Swagger UI over `/openapi.json` (see [`super::openapi`]), built from the
//! copy of Swagger UI that `utoipa-swagger-ui` vendors (feature `vendored`): no CDN, so the
//! page works offline.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// `GET /docs`: Swagger UI over `/openapi.json`, one page with the stylesheet and scripts
/// of the Swagger UI distribution `utoipa-swagger-ui` embeds (feature `vendored`: the
/// crate's own copy, never downloaded), so it works offline and takes one route. Its
/// Content-Security-Policy lets only those two inline scripts run (by their SHA-256), and
/// lets the page reach this origin only.
pub(super) async fn docs_page() -> Response {
    static PAGE: OnceLock<Result<Page, String>> = OnceLock::new();
    match PAGE.get_or_init(docs_html) {
        Ok(page) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, page.policy.as_str()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "same-origin"),
            ],
            page.html.as_str(),
        )
            .into_response(),
        Err(e) => super::ApiError::internal(e).into_response(),
    }
}

/// The page and its Content-Security-Policy.
struct Page {
    html: String,
    policy: String,
}

/// What starts Swagger UI once its bundle has run.
const START: &str = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui'});";

/// `'sha256-…'`: a CSP source allowing the inline element whose text is `text`.
fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The page and its policy. The vendored files hold no `</style` or `</script` (checked
/// here), so they can sit inline. Styles may be inline (Swagger UI sets `style`
/// attributes as it renders; a style cannot run code), scripts only by their hash;
/// `img-src data:` for the stylesheet's icons; `connect-src 'self'` for the document and
/// "Try it out".
fn docs_html() -> Result<Page, String> {
    let css = vendored("swagger-ui.css")?;
    let bundle = vendored("swagger-ui-bundle.js")?;
    if css.contains("</style") || bundle.contains("</script") {
        return Err("a vendored Swagger UI file would end its inline element".into());
    }
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>hookrelay API</title><style>{css}</style></head>\n<body><div id=\"swagger-ui\"></div>\n\
         <script>{bundle}</script>\n<script>{START}</script>\n</body></html>\n"
    );
    let policy = format!(
        "default-src 'none'; script-src {} {}; style-src 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(&bundle),
        csp_hash(START)
    );
    Ok(Page { html, policy })
}

/// A text file of the vendored Swagger UI distribution.
fn vendored(file: &str) -> Result<String, String> {
    let config = std::sync::Arc::new(utoipa_swagger_ui::Config::from("/openapi.json"));
    match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(f)) if !f.gzpipped => {
            String::from_utf8(f.bytes.into_owned()).map_err(|e| format!("vendored {file}: {e}"))
        }
        Ok(Some(_)) => Err(format!("vendored {file} is gzipped")),
        Ok(None) => Err(format!("vendored {file} is missing")),
        Err(e) => Err(format!("vendored {file}: {e}")),
    }
}
