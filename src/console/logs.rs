//! The logs explorer: the list with the API's filters (kept in the URL, so a view can be
//! shared), parsed by the API's own parser and listed by the store's indexed list, and its
//! live tail. A log's page is `log_detail.rs`.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Value};

use super::session::Signed;
use super::Console;
use crate::api::access::authorize;
use crate::api::extract::decode_query;
use crate::api::logs::{page_and_filter, ListQuery};
use crate::api::ApiError;
use crate::outbound::ErrorCode;
use crate::store::{LogFilter, LogRecord, PageRequest, StoreResult};

/// Page size of the list (the API's default is 10; a screen holds more), and the most logs
/// one poll of the live tail brings.
const PAGE_SIZE: &str = "50";

/// The console's own parameter: `tail=1` turns the live tail on. It is no filter, so it is
/// never handed to the API's parser (which refuses names it does not know).
const TAIL: &str = "tail";

/// The parameters the live tail's URL leaves out: the toggle, and those that choose a page
/// rather than filter the logs (the tail reads its own: after its cursor, oldest first).
const PAGING: &[&str] = &[TAIL, "before", "after", "limit", "order"];

/// How often the live tail asks for newer logs (htmx's `every` trigger).
const TAIL_EVERY: &str = "2s";

/// The query pairs of `uri` that have a value: a filter form sends its empty fields too.
fn given_pairs(uri: &Uri) -> Vec<(String, String)> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .collect()
}

fn query_of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(pairs);
    query.finish()
}

/// The pairs whose name is none of `names`.
fn without<'a>(
    pairs: &'a [(String, String)],
    names: &'a [&str],
) -> impl Iterator<Item = (&'a str, &'a str)> + Clone {
    pairs
        .iter()
        .filter(|(k, _)| !names.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The list's context: the filters as given, the error code choices, and the page or the
/// problem with a filter.
fn filters_context(pairs: &[(String, String)]) -> Value {
    let filters: serde_json::Map<String, Value> =
        pairs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({"filters": filters, "error_codes": codes})
}

fn row(r: &LogRecord) -> Value {
    json!({
        "id": r.id,
        "created_at": r.recorded_at().rfc3339(),
        "automation_id": r.log.automation_id,
        "trigger": r.log.trigger.as_str(),
        "status_code": r.log.status_code,
        "error_code": r.log.error_code.map(|c| c.as_str()),
        "duration_ms": r.log.duration_ms.round(),
        "webhook_url": r.log.webhook_url,
    })
}

/// Whether `tail=` asks for the live tail: `1`, or absent; any other value is refused, so a
/// mistyped URL does not silently show a list that does not follow.
fn tail_wanted(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    match pairs.iter().find(|(k, _)| k == TAIL) {
        None => Ok(false),
        Some((_, v)) if v == "1" => Ok(true),
        Some((_, v)) => Err(ApiError::invalid(TAIL, format!("`{v}` is not 1 (live tail on)"))),
    }
}

/// The list, newest first. Empty filter fields are dropped from the URL (a redirect), so
/// the URL holds only the filters in force. With `tail=1`, the first page polls for newer
/// logs and puts them on top.
pub(super) async fn list(State(console): State<Console>, signed: Signed, uri: Uri) -> Response {
    let pairs = given_pairs(&uri);
    let raw_count = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).count();
    if raw_count != pairs.len() {
        let query = query_of(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        return Redirect::to(&format!("/console/logs?{query}")).into_response();
    }
    let mut context = filters_context(&pairs);
    context["session"] = signed.context();
    let filters = || without(&pairs, &[TAIL, "before", "after"]);
    // Bulk retry takes no URL filter: its link would retry logs this list does not show.
    let by_url = pairs.iter().any(|(k, _)| k == "url_contains");
    if authorize(signed.principal.role, console.recover_role).is_ok() && !by_url {
        let recover_pairs: Vec<(String, String)> =
            filters().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        context["retry_link"] = super::retry::link_from_logs(&recover_pairs).into();
    }
    let tail = match tail_wanted(&pairs) {
        Ok(tail) => tail,
        Err(e) => return problem_page(&console, context, &e),
    };
    // The tail's cursor is read before the list: see `next_cursor`.
    let newest = match tail.then(|| newest_log(&console)) {
        Some(newest) => match newest.await {
            Ok(newest) => newest,
            Err(e) => return console.failed(e),
        },
        None => None,
    };
    let (page, filter) = match parse(&console, without(&pairs, &[TAIL]), None) {
        Ok(parsed) => parsed,
        Err(e) => return problem_page(&console, context, &e),
    };
    // The newest logs: no cursor, and not oldest first.
    let first_page = !pairs.iter().any(|(k, v)| {
        k == "before" || k == "after" || (k == "order" && v.eq_ignore_ascii_case("asc"))
    });
    let page = match console.app.store.list_logs(filter, page).await {
        Ok(page) => page,
        Err(e) => return console.failed(e),
    };
    let link = |cursor: &str, id: &str| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(filters()).append_pair(cursor, id);
        format!("/console/logs?{}", query.finish())
    };
    context["logs"] = page.items.iter().map(row).collect();
    context["newer"] = page.before.as_deref().map(|id| link("before", id)).into();
    context["older"] = page.after.as_deref().map(|id| link("after", id)).into();
    context["tail"] = tail.into();
    let toggled = if tail { query_of(filters()) } else { query_of(filters().chain([(TAIL, "1")])) };
    context["tail_toggle"] = format!("/console/logs?{toggled}").into();
    if tail && first_page {
        let shown = page.items.first().map(|r| r.id.to_string());
        let cursor = latest([shown, newest]);
        context["poll"] = poll_context(&pairs, cursor.as_deref());
    }
    console.pages.render(StatusCode::OK, "logs.html", &context)
}

/// The list page saying which filter is wrong, answered 400.
fn problem_page(console: &Console, mut context: Value, e: &ApiError) -> Response {
    context["problem"] = json!({"field": e.field, "message": e.message});
    console.pages.render(StatusCode::BAD_REQUEST, "logs.html", &context)
}

/// The page and filter `pairs` ask for (`PAGE_SIZE` unless they give a limit, and `extra`),
/// by the API's parser (400 naming the filter).
fn parse<'a>(
    console: &Console,
    pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    extra: Option<(&'a str, &'a str)>,
) -> Result<(PageRequest, LogFilter), ApiError> {
    let has_limit = pairs.clone().any(|(k, _)| k == "limit");
    let limit = (!has_limit).then_some(("limit", PAGE_SIZE));
    let all = pairs.chain(limit).chain(extra);
    let uri: Uri = format!("/console/logs?{}", query_of(all))
        .parse()
        .map_err(|_| ApiError::invalid("query", "the query string is not valid"))?;
    let query: ListQuery = decode_query(&uri)?;
    page_and_filter(&console.app, query, None)
}

/// The id of the newest log stored, whatever it is: by the primary key, one row.
async fn newest_log(console: &Console) -> StoreResult<Option<String>> {
    let newest = PageRequest { before: None, after: None, limit: 1, desc: true };
    let page = console.app.store.list_logs(LogFilter::default(), newest).await?;
    Ok(page.items.first().map(|r| r.id.to_string()))
}

/// The latest of some log ids (ids are time-sortable: text order is creation order).
fn latest(ids: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    ids.into_iter().flatten().max()
}

/// The polling element's context: the tail's URL (the filters, and the cursor when there is
/// one) and how often to ask.
fn poll_context(pairs: &[(String, String)], cursor: Option<&str>) -> Value {
    let filters = without(pairs, PAGING);
    let query = query_of(filters.chain(cursor.map(|c| ("after", c))));
    json!({"url": format!("/console/logs/tail?{query}"), "every": TAIL_EVERY})
}

/// The live tail's answer: the logs matching the filters newer than `after` (the newest
/// shown), newest first, before a new polling element whose cursor is past them. Read by
/// the store's list, oldest first after the cursor, a page at a time.
/// Without a session (it expired or was revoked while the tail ran) the poll is refused
/// with htmx's `HX-Redirect` to sign-in: the whole page goes there, rather than the sign-in
/// page being put inside the table as the answer of a redirect followed by htmx would be.
pub(super) async fn tail(
    State(console): State<Console>,
    signed: Result<Signed, Response>,
    uri: Uri,
) -> Response {
    if signed.is_err() {
        let to_sign_in = [("hx-redirect", "/console/sign-in")];
        return (StatusCode::UNAUTHORIZED, to_sign_in, "signed out").into_response();
    }
    let pairs = given_pairs(&uri);
    let newest = match newest_log(&console).await {
        Ok(newest) => newest,
        Err(e) => return console.failed(e),
    };
    let filters = without(&pairs, &[TAIL, "before", "limit", "order"]);
    let (page, filter) = match parse(&console, filters, Some(("order", "asc"))) {
        Ok(parsed) => parsed,
        Err(e) => {
            let field = e.field.as_deref().unwrap_or("query");
            return (e.status(), format!("{field}: {}", e.message)).into_response();
        }
    };
    let cursor = page.after.clone();
    let page = match console.app.store.list_logs(filter, page).await {
        Ok(page) => page,
        Err(e) => return console.failed(e),
    };
    let last = page.items.last().map(|r| r.id.to_string());
    let next = next_cursor(cursor, last, page.after, newest);
    let rows: Vec<Value> = page.items.iter().rev().map(row).collect();
    let context = json!({"new_logs": rows, "poll": poll_context(&pairs, next.as_deref())});
    console.pages.render(StatusCode::OK, "log_tail.html", &context)
}

/// Where the next poll starts. Where the store's page says the list goes on (`store_after`):
/// after a full page its last log, and after a page cut short by the scan budget of
/// `url_contains` the last log it tested, matching or not; the logs past either are still
/// to be searched. Else at the newest log stored when this poll began, if later: no log at
/// or before it can still appear (the writer commits logs in id order, see
/// `store::logs::insert`) and every match after the cursor is in this page, so the next poll
/// skips the logs that do not match instead of testing them again.
fn next_cursor(
    cursor: Option<String>,
    last: Option<String>,
    store_after: Option<String>,
    newest_before: Option<String>,
) -> Option<String> {
    match store_after {
        Some(after) => Some(after),
        None => latest([cursor, last, newest_before]),
    }
}

#[cfg(test)]
mod tests {
    use super::next_cursor;

    fn id(n: u8) -> Option<String> {
        Some(format!("log_auto_{n:032x}"))
    }

    /// Where the store says the list goes on (a full page, or a scan budget spent), the next
    /// poll goes on from there, even from an empty page; otherwise it starts past every log
    /// stored when this one began, so non-matching logs are not tested again.
    #[test]
    fn the_tail_cursor_skips_only_what_was_already_searched() {
        assert_eq!(next_cursor(id(1), id(5), id(5), id(9)), id(5));
        assert_eq!(next_cursor(id(1), None, id(7), id(9)), id(7), "a spent scan budget");
        assert_eq!(next_cursor(id(1), id(5), None, id(9)), id(9));
        assert_eq!(next_cursor(id(1), None, None, id(9)), id(9));
        assert_eq!(next_cursor(id(1), id(5), None, id(3)), id(5));
        assert_eq!(next_cursor(None, None, None, None), None);
        assert_eq!(next_cursor(id(4), None, None, None), id(4));
    }
}
