//! File kinds as Dify defines them: which extensions each kind covers, and each kind's size
//! limit (what `/parameters` reports as `system_parameters`).

/// Kinds and their extensions (lowercase, no dot).
const KINDS: &[(&str, &[&str])] = &[
    ("image", &["jpg", "jpeg", "png", "webp", "gif", "svg"]),
    (
        "document",
        &[
            "txt", "md", "mdx", "markdown", "pdf", "html", "htm", "xlsx", "xls", "doc", "docx",
            "csv", "eml", "msg", "pptx", "ppt", "xml", "epub", "json",
        ],
    ),
    ("audio", &["mp3", "m4a", "wav", "amr", "mpga", "webm"]),
    ("video", &["mp4", "mov", "mpeg", "webm"]),
];

/// Size limit of a kind, bytes (Dify: documents 15 MB, images 10, audio 50, video 100).
pub fn size_limit(kind: &str) -> u64 {
    const MB: u64 = 1024 * 1024;
    match kind {
        "image" => 10 * MB,
        "audio" => 50 * MB,
        "video" => 100 * MB,
        _ => 15 * MB,
    }
}

/// The largest limit among the `allowed` kinds, bytes (0 when none is allowed).
pub fn largest_limit(allowed: &[String]) -> u64 {
    allowed.iter().map(|kind| size_limit(kind)).max().unwrap_or(0)
}

/// The kind an extension belongs to among `allowed` kinds (`custom` matches
/// `custom_extensions`); `None` when the app does not accept it.
pub fn kind_for(
    extension: &str,
    allowed: &[String],
    custom_extensions: &[String],
) -> Option<&'static str> {
    let ext = extension.to_ascii_lowercase();
    for (kind, extensions) in KINDS {
        if allowed.iter().any(|a| a == kind) && extensions.contains(&ext.as_str()) {
            return Some(kind);
        }
    }
    let custom = allowed.iter().any(|a| a == "custom")
        && custom_extensions.iter().any(|e| e.trim_start_matches('.').eq_ignore_ascii_case(&ext));
    custom.then_some("custom")
}

/// The system parameters `/parameters` reports, in MB.
pub fn system_parameters() -> serde_json::Value {
    serde_json::json!({"file_size_limit": 15, "image_file_size_limit": 10, "audio_file_size_limit": 50, "video_file_size_limit": 100})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_app_settings() {
        let allowed = vec!["document".to_string(), "custom".to_string()];
        assert_eq!(kind_for("PDF", &allowed, &[]), Some("document"));
        assert_eq!(kind_for("png", &allowed, &[]), None);
        assert_eq!(kind_for("log", &allowed, &[".log".into()]), Some("custom"));
        assert_eq!(size_limit("video"), 100 * 1024 * 1024);
        assert_eq!(largest_limit(&allowed), 15 * 1024 * 1024);
        assert_eq!(largest_limit(&["image".into(), "audio".into()]), 50 * 1024 * 1024);
    }
}
