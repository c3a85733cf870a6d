//! `GET /docs`: Swagger UI over `/openapi.json` (see [`super::openapi`]), built from the
//! copy of Swagger UI that `utoipa-swagger-ui` vendors (feature `vendored`): no CDN, so the
//! page works offline.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /docs`: Swagger UI over `/openapi.json`, one page with the stylesheet and scripts
/// of the Swagger UI distribution `utoipa-swagger-ui` embeds (feature `vendored`: the
/// crate's own copy, never downloaded), so it works offline and takes one route.
pub(super) async fn docs_page() -> Response {
    static PAGE: OnceLock<Result<String, String>> = OnceLock::new();
    match PAGE.get_or_init(docs_html) {
        Ok(page) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page.as_str()).into_response()
        }
        Err(e) => super::ApiError::internal(e).into_response(),
    }
}

/// The page. The vendored files hold no `</style` or `</script` (checked here), so they
/// can sit inline.
fn docs_html() -> Result<String, String> {
    let css = vendored("swagger-ui.css")?;
    let bundle = vendored("swagger-ui-bundle.js")?;
    if css.contains("</style") || bundle.contains("</script") {
        return Err("a vendored Swagger UI file would end its inline element".into());
    }
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>hookrelay API</title><style>{css}</style></head>\n<body><div id=\"swagger-ui\"></div>\n\
         <script>{bundle}</script>\n\
         <script>window.ui = SwaggerUIBundle({{url: '/openapi.json', dom_id: '#swagger-ui'}});</script>\n\
         </body></html>\n"
    ))
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
