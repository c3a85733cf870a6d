//! The automation forms' `ordering` field (issue 14 §3): a select of the API's two values,
//! what it sets is what the API shows, a value that is no ordering is refused next to the
//! field and changes nothing, and a form without the field keeps the stored one.

use reqwest::StatusCode;

use crate::automation_forms::{assert_csp_and_labels, unescaped};
use crate::common::Relay;
use crate::helpers::{Browser, ADMIN};

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

fn form<'a>(csrf: &'a str, ordering: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("csrf", csrf),
        ("name", "Ordered"),
        ("processor_id", "ordered"),
        ("webhook_url", "https://example.com/hook"),
        ("default_language", "en"),
        ("enabled", "on"),
    ];
    fields.extend(ordering.map(|o| ("ordering", o)));
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_sets_the_ordering_and_refuses_one_that_is_none() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let new = browser.get("/console/automations/new").await;
    assert_csp_and_labels(&new);
    let text = unescaped(&new);
    assert!(text.contains("<select id=\"f-ordering\" name=\"ordering\""), "{text}");
    assert!(text.contains("<option value=\"parallel\" selected>"), "parallel by default: {text}");

    let created =
        browser.post("/console/automations/new", &form(&new.csrf(), Some("fifo")), &[]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let all = relay.list_all(&format!("{ENDPOINTS}?")).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["ordering"], "fifo");
    let id = all[0]["id"].as_str().expect("id");
    let path = format!("/console/automations/{id}/edit");
    let edit = browser.get(&path).await;
    assert!(unescaped(&edit).contains("<option value=\"fifo\" selected>"), "{}", edit.text);

    let refused = browser.post(&path, &form(&edit.csrf(), Some("lifo")), &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_csp_and_labels(&refused);
    assert!(refused.text.contains("id=\"ordering-error\""), "{}", refused.text);
    let api = format!("{ENDPOINTS}/{id}");
    assert_eq!(relay.get_json(&api).await["ordering"], "fifo", "a refused edit changed it");

    let kept = browser.post(&path, &form(&edit.csrf(), None), &[]).await;
    assert_eq!(kept.status, StatusCode::SEE_OTHER, "{}", kept.text);
    assert_eq!(relay.get_json(&api).await["ordering"], "fifo", "a form without it kept it");
    let parallel = browser.post(&path, &form(&edit.csrf(), Some("parallel")), &[]).await;
    assert_eq!(parallel.status, StatusCode::SEE_OTHER, "{}", parallel.text);
    assert_eq!(relay.get_json(&api).await["ordering"], "parallel");
}
