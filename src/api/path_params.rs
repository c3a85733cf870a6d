//! Path parameters whose percent-decoding is not UTF-8 (`/endpoints/%ff`) are refused with
//! a 400 naming the parameter: axum's own rejection says so in its text only, so the JSON
//! error had no `field`.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// For `Router::route_layer`: checks each parameter of the matched route's path.
pub(super) async fn check_path_params(req: Request, next: Next) -> Response {
    if let Some(route) = req.extensions().get::<MatchedPath>() {
        let segments = route.as_str().split('/').zip(req.uri().path().split('/'));
        for (template, segment) in segments {
            let Some(name) = template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
                continue;
            };
            if String::from_utf8(percent_decode(segment)).is_err() {
                let name = name.trim_start_matches('*');
                return ApiError::invalid(name, "is not valid UTF-8 once percent-decoded")
                    .into_response();
            }
        }
    }
    next.run(req).await
}

/// `segment` with each `%XX` replaced by its byte (a `%` not followed by two hex digits is
/// kept, as axum keeps it).
fn percent_decode(segment: &str) -> Vec<u8> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if bytes[i] == b'%' => {
                decoded.push(byte);
                i += 3;
            }
            _ => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_escapes_and_keeps_a_stray_percent() {
        assert_eq!(percent_decode("a%2Fb%ff%zz%"), b"a/b\xff%zz%".to_vec());
        assert_eq!(percent_decode("caf%C3%A9"), "café".as_bytes().to_vec());
    }
}
