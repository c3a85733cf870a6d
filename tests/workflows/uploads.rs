//! POST /v1/files/upload bounds every part of the form: the body by the app's own upload
//! limit (before reading it when it declares its length), the `user` part to 256
//! characters, file names, and the number of parts; and the relay's memory stays bounded
//! whatever is sent, measured on the relay process itself.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use crate::common::{self, Relay};
use crate::helpers::edges;

pub(crate) const DOCS_KEY: &str = "app-docs-key-0123456789";
const VIDEO_KEY: &str = "app-video-key-0123456789";
pub(crate) const BOUNDARY: &str = "hookrelay-upload-test-boundary";
pub(crate) const MB: usize = 1024 * 1024;
/// The size of the over-long `user` parts: the one the review sent.
const HUGE_USER: usize = 90 * MB;
/// The relay's peak RSS allowed while four such uploads run at once (it was ~1 GB).
const MAX_PEAK_RSS_KIB: u64 = 150 * 1024;

/// `docs` accepts documents (15 MB, Dify's limit); `video` accepts videos (100 MB).
pub(crate) fn config() -> String {
    let app = |id: &str, key: &str, kind: &str| {
        format!(
            "[[apps]]\nid = \"{id}\"\napi_keys = [\"{key}\"]\n[apps.file_upload]\nenabled = true\n\
             allowed_types = [\"{kind}\"]\n[[apps.nodes]]\nid = \"start\"\ntype = \"start\"\n\
             [[apps.nodes]]\nid = \"end\"\ntype = \"end\"\n{}",
            edges(&[("start", "end")])
        )
    };
    format!("{}{}", app("docs", DOCS_KEY, "document"), app("video", VIDEO_KEY, "video"))
}

pub(crate) fn part_head(name: &str, file_name: Option<&str>) -> String {
    let file = file_name.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n")
}

/// A small, valid PDF part and the closing boundary.
fn file_part_and_end(file_name: &str) -> String {
    format!("\r\n{}%PDF-1.4 hello\r\n--{BOUNDARY}--\r\n", part_head("file", Some(file_name)))
}

/// A form whose `user` part is `user_len` bytes of `u`, produced 64 KiB at a time (never
/// held whole), followed by a small file part; with its exact length.
fn form_with_user_of(user_len: usize) -> (u64, reqwest::Body) {
    const CHUNK: usize = 64 * 1024;
    let head = Bytes::from(part_head("user", None));
    let tail = Bytes::from(file_part_and_end("a.pdf"));
    let length = (head.len() + user_len + tail.len()) as u64;
    let filler = Bytes::from(vec![b'u'; CHUNK]);
    let chunks = (0..user_len.div_ceil(CHUNK))
        .map(move |i| filler.slice(..CHUNK.min(user_len - i * CHUNK)))
        .chain(std::iter::once(tail));
    let body = stream::iter(std::iter::once(head).chain(chunks)).map(Ok::<_, std::io::Error>);
    (length, reqwest::Body::wrap_stream(body))
}

/// Sends `body` to the upload route; `length` sets Content-Length, `None` sends it chunked.
/// The answer must arrive: an upload refused early is still a clear JSON answer.
async fn upload(
    relay: &Relay,
    key: &str,
    body: reqwest::Body,
    length: Option<u64>,
) -> (u16, Value) {
    let mut request = common::client()
        .post(relay.url("/v1/files/upload"))
        .bearer_auth(key)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"));
    if let Some(length) = length {
        request = request.header("content-length", length);
    }
    let resp = request.body(body).send().await.expect("the relay answers, not a broken connection");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

/// Asserts a Dify-shaped error naming `field` and saying `words`; shows at most the
/// start of a body that is not (a stored 90 MB `user` would be echoed back whole).
fn assert_refused(answer: (u16, Value), status: u16, code: &str, field: &str, words: &str) {
    let (http, body) = answer;
    let shown: String = body.to_string().chars().take(300).collect();
    assert_eq!((http, body["status"].as_u64()), (status, Some(u64::from(status))), "{shown}");
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some(code), Some(field)),
        "{shown}"
    );
    let message = body["message"].as_str().unwrap_or("");
    assert!(message.contains(words), "the message says `{words}`: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_user_part_is_refused_with_a_clear_answer() {
    let relay = Relay::start(&config());

    // Chunked: no Content-Length can give it away; the part itself is cut off.
    let (_, body) = form_with_user_of(HUGE_USER);
    let answer = upload(&relay, DOCS_KEY, body, None).await;
    assert_refused(answer, 400, "invalid_param", "user", "256 characters");

    // Its length declared, past the app's limit (15 MB documents): refused unread.
    let (length, body) = form_with_user_of(HUGE_USER);
    let answer = upload(&relay, DOCS_KEY, body, Some(length)).await;
    assert_refused(answer, 413, "file_too_large", "file", "15 MB");

    // Within the limit of an app that takes 100 MB videos: the part is cut off all the same.
    let (length, body) = form_with_user_of(HUGE_USER);
    let answer = upload(&relay, VIDEO_KEY, body, Some(length)).await;
    assert_refused(answer, 400, "invalid_param", "user", "256 characters");

    // The longest `user` allowed still uploads, and is stored as sent.
    let user = "ü".repeat(256);
    let text = format!("{}{user}{}", part_head("user", None), file_part_and_end("ok.pdf"));
    let (status, answer) = upload(&relay, DOCS_KEY, text.into(), None).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["created_by"], user.as_str());
}

/// The review's measurement: four 90 MB `user` parts at once took the relay to 1 GB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_huge_uploads_at_once_keep_the_relay_memory_bounded() {
    let relay = Relay::start(&config());
    let started = Instant::now();
    let uploads = (0..4).map(|_| {
        let (_, body) = form_with_user_of(HUGE_USER);
        upload(&relay, VIDEO_KEY, body, None)
    });
    let answers = futures_util::future::join_all(uploads).await;
    let (peak_kib, _) = relay.memory_kib();
    assert!(
        peak_kib < MAX_PEAK_RSS_KIB,
        "relay peak RSS {} MiB, bound {} MiB",
        peak_kib / 1024,
        MAX_PEAK_RSS_KIB / 1024
    );
    for answer in answers {
        assert_refused(answer, 400, "invalid_param", "user", "256 characters");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

/// A body of `len` bytes of `byte` after `head`, produced 64 KiB at a time, then `tail`.
fn streamed(head: String, byte: u8, len: usize, tail: String) -> reqwest::Body {
    const CHUNK: usize = 64 * 1024;
    let filler = Bytes::from(vec![byte; CHUNK]);
    let chunks = (0..len.div_ceil(CHUNK)).map(move |i| filler.slice(..CHUNK.min(len - i * CHUNK)));
    let all = std::iter::once(Bytes::from(head)).chain(chunks).chain([Bytes::from(tail)]);
    reqwest::Body::wrap_stream(stream::iter(all).map(Ok::<_, std::io::Error>))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_of_the_form_is_bounded() {
    let relay = Relay::start(&config());
    let user_part = format!("{}someone\r\n", part_head("user", None));

    // A file just under the documents limit, with a part Dify would ignore: accepted whole.
    let near = 15 * MB - 1024;
    let head = format!(
        "{user_part}{}x\r\n{}",
        part_head("note", None),
        part_head("file", Some("big.pdf"))
    );
    let body = streamed(head, b'p', near, format!("\r\n--{BOUNDARY}--\r\n"));
    let (status, answer) = upload(&relay, DOCS_KEY, body, None).await;
    assert_eq!((status, answer["size"].as_u64()), (201, Some(near as u64)), "{answer}");

    // Chunked past the app's limit in a part that is not the file: stopped at the limit.
    let head = format!("{user_part}{}", part_head("note", None));
    let body = streamed(head, b'n', 20 * MB, file_part_and_end("a.pdf"));
    let answer = upload(&relay, DOCS_KEY, body, None).await;
    assert_refused(answer, 413, "file_too_large", "file", "15 MB");

    // A file over its kind's limit.
    let head = format!("{user_part}{}", part_head("file", Some("big.pdf")));
    let body = streamed(head, b'p', 15 * MB + 1, format!("\r\n--{BOUNDARY}--\r\n"));
    let answer = upload(&relay, DOCS_KEY, body, None).await;
    assert_refused(answer, 413, "file_too_large", "file", "document files may be at most 15 MB");

    // A body that never reaches a boundary, and a part header that never ends: not buffered.
    let never_a_boundary = streamed(String::new(), b'-', 12 * MB, String::new());
    let endless_header = streamed(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\""),
        b'h',
        12 * MB,
        String::new(),
    );
    for body in [never_a_boundary, endless_header] {
        let answer = upload(&relay, DOCS_KEY, body, None).await;
        assert_refused(answer, 400, "invalid_param", "body", "part headers exceed 1024 KiB");
    }

    // A file name over 255 characters, and too many parts.
    let long_name = format!("{}.pdf", "n".repeat(300));
    let text = format!("{user_part}{}", file_part_and_end(&long_name).trim_start_matches("\r\n"));
    let answer = upload(&relay, DOCS_KEY, text.into(), None).await;
    assert_refused(answer, 400, "invalid_param", "file", "file name is longer than 255");
    let long_type = format!("application/{}", "t".repeat(300));
    let typed = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\
         Content-Type: {long_type}\r\n\r\n%PDF-1.4 hello\r\n--{BOUNDARY}--\r\n"
    );
    let answer = upload(&relay, DOCS_KEY, format!("{user_part}{typed}").into(), None).await;
    assert_refused(answer, 400, "invalid_param", "file", "content type is longer than 255");
    let many: String = (0..17).map(|i| format!("{}{i}\r\n", part_head("extra", None))).collect();
    let text = format!("{many}{}", file_part_and_end("a.pdf").trim_start_matches("\r\n"));
    let answer = upload(&relay, DOCS_KEY, text.into(), None).await;
    assert_refused(answer, 400, "invalid_param", "body", "at most 16 parts");
}

/// An upload whose stored bytes are gone (content retention deletes bodies, even ones a row
/// still refers to; simulated by deleting the row through a second connection) makes a run
/// that uses it a 410 `missing_payload` naming that input, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_using_an_upload_whose_bytes_are_gone_is_a_410_naming_it() {
    let relay = Relay::start(&config());
    let form = format!("{}u1{}", part_head("user", None), file_part_and_end("gone.pdf"));
    let (status, uploaded) = upload(&relay, DOCS_KEY, form.into(), None).await;
    assert_eq!(status, 201, "{uploaded}");
    let id = uploaded["id"].as_str().expect("upload id");
    let db = rusqlite::Connection::open(relay.dir.path().join("hookrelay.db")).expect("open db");
    let deleted = db
        .execute(
            "DELETE FROM bodies WHERE hash = (SELECT data_hash FROM upload_files WHERE id = ?1)",
            [id],
        )
        .expect("delete the upload's bytes");
    assert_eq!(deleted, 1);

    let file = serde_json::json!({"type": "document", "transfer_method": "local_file",
                                  "upload_file_id": id});
    let resp = common::client()
        .post(relay.url("/v1/workflows/run"))
        .bearer_auth(DOCS_KEY)
        .json(&serde_json::json!({"inputs": {}, "user": "u1", "files": [file],
                                  "response_mode": "blocking"}))
        .send()
        .await
        .expect("run");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("a JSON body");
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["code"], "missing_payload", "{body}");
    assert_eq!(body["field"], "files[0]", "{body}");
}

/// Attack F5: a `user` part holding NUL (which PostgreSQL's text cannot hold) is a 400
/// naming it on both backends, not a 500 on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_holding_nul_is_refused_naming_it() {
    let relay = Relay::start(&config());
    let user = format!("{}some\0one{}", part_head("user", None), file_part_and_end("a.pdf"));
    let answer = upload(&relay, DOCS_KEY, user.into(), None).await;
    assert_refused(answer, 400, "invalid_param", "user", "NUL");
}
