//! The Keys page (issue 13 §1–2): the stored keys without their secrets, a create form judged
//! by the API's rules whose key is shown once and works with its role at once, and Revoke,
//! which refuses the key at once and signs out the session made with it.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::automation_forms::{assert_csp_and_labels, unescaped};
use crate::common::Relay;
use crate::helpers::{key_of, Browser, Page, ADMIN};

/// The status the API answers `key` for `method path`.
async fn api_status(relay: &Relay, key: &str, method: Method, path: &str) -> StatusCode {
    let req = crate::common::client().request(method, relay.url(path)).header("Api-Key", key);
    req.send().await.expect("send").status()
}

/// Every stored key, as the API lists them.
async fn keys(relay: &Relay) -> Vec<Value> {
    relay.get_json("/v1/keys").await["data"].as_array().expect("data").clone()
}

/// The key a page shows once.
fn shown_key(page: &Page) -> String {
    let open = "<pre id=\"new-key\" class=\"secret\">";
    let at = page.text.find(open).expect("a new key") + open.len();
    page.text[at..at + page.text[at..].find("</pre>").expect("end")].to_string()
}

/// The table row of the key `id`.
fn row_of<'a>(page: &'a Page, id: &str) -> &'a str {
    let at = page.text.find(&format!("id=\"key-{id}\"")).expect("the key's row");
    &page.text[at..at + page.text[at..].find("</tr>").expect("row end")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_key_is_shown_once_works_with_its_role_and_is_refused_once_revoked() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let page = browser.get("/console/keys").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(unescaped(&page).contains("href=\"/console/keys\""), "no Keys link for an admin");
    assert_csp_and_labels(&page);

    let form = [("csrf", page.csrf()), ("name", "ci runner".into()), ("role", "operator".into())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = browser.post("/console/keys", &form, &[]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_csp_and_labels(&created);
    let key = shown_key(&created);
    assert!(key.starts_with("hr_operator_"), "{key}");
    let listed = keys(&relay).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0]["name"].as_str(), listed[0]["role"].as_str()),
        (Some("ci runner"), Some("operator"))
    );
    let id = listed[0]["id"].as_str().expect("id");

    let endpoints = "/v1/processors/automations/endpoints";
    assert_eq!(api_status(&relay, &key, Method::GET, endpoints).await, StatusCode::OK);
    assert_eq!(api_status(&relay, &key, Method::GET, "/v1/keys").await, StatusCode::FORBIDDEN);
    let used = relay
        .wait_for(crate::common::WAIT, "the key's last use", || async {
            keys(&relay).await[0]["last_used_at"].as_str().map(String::from)
        })
        .await;
    let again = browser.get("/console/keys").await;
    assert!(!unescaped(&again).contains(&key), "the key is shown again");
    let row = row_of(&again, id);
    for shown in ["ci runner", "operator", "data-state=\"enabled\"", "Revoke", used.as_str()] {
        assert!(row.contains(shown), "{shown} missing: {row}");
    }

    let revoke = format!("/console/keys/{id}/revoke");
    let done = browser.post(&revoke, &[("csrf", &page.csrf())], &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.location(), "/console/keys");
    assert_eq!(api_status(&relay, &key, Method::GET, endpoints).await, StatusCode::UNAUTHORIZED);
    let after = browser.get("/console/keys").await;
    let row = row_of(&after, id);
    assert!(row.contains("data-state=\"revoked\"") && !row.contains("<button"), "{row}");

    let csrf = page.csrf();
    let unknown = browser.post("/console/keys/key_nonsense/revoke", &[("csrf", &csrf)], &[]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text);
    assert!(unknown.text.contains("There is no key with this id."), "{}", unknown.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_field_is_shown_next_to_it_as_the_api_says_it_and_creates_no_key() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let csrf = browser.get("/console/keys").await.csrf();
    let cases = [
        ("expires_at", [("name", "later"), ("role", "viewer"), ("expires_at", "tomorrow")]),
        (
            "expires_at",
            [("name", "past"), ("role", "viewer"), ("expires_at", "2001-01-01T00:00:00Z")],
        ),
        ("name", [("name", "   "), ("role", "viewer"), ("expires_at", "")]),
        ("role", [("name", "boss"), ("role", "owner"), ("expires_at", "")]),
    ];
    for (field, values) in cases {
        let body: serde_json::Map<String, Value> = values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        let (status, api) = relay.post_json("/v1/keys", &Value::Object(body)).await;
        assert_eq!((status, api["field"].as_str()), (400, Some(field)), "{api}");

        let form = [vec![("csrf", csrf.as_str())], values.to_vec()].concat();
        let page = browser.post("/console/keys", &form, &[]).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{field}: {}", page.text);
        assert_csp_and_labels(&page);
        let text = unescaped(&page);
        let input = text.find(&format!("id=\"f-{field}\"")).expect("the field");
        let error = text.find(&format!("id=\"{field}-error\"")).expect("an error by the field");
        let next = input + text[input..].find("</div>").expect("the field's end");
        assert!(input < error && error < next, "{field}: the error is not next to its field");
        assert!(text.contains(api["message"].as_str().expect("message")), "not the API's words");
        if field != "name" {
            let name = values[0].1;
            assert!(text.contains(&format!("value=\"{name}\"")), "the name typed is lost");
        }
    }
    assert!(keys(&relay).await.is_empty(), "a refused form created a key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_key_of_your_own_session_sends_you_to_sign_in() {
    let relay = Relay::start("");
    let (key, id) = key_of(&relay, "admin").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(&key).await;
    let page = browser.get("/console/keys").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);

    let done =
        browser.post(&format!("/console/keys/{id}/revoke"), &[("csrf", &page.csrf())], &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.location(), "/console/sign-in");
    let after = browser.get("/console/keys").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.text);
    assert_eq!(after.location(), "/console/sign-in", "the session outlived its key");
    let sign_in = browser.get("/console/sign-in").await;
    assert_eq!(sign_in.status, StatusCode::OK, "the sign-in page sends a dead session on");
    assert!(keys(&relay).await[0]["revoked_at"].is_string(), "the key is not revoked");
}
