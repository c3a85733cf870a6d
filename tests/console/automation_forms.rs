//! The automation create and edit forms and "Rotate secret" (issue 13 §2, "Bad input"):
//! judged by the API's own rules (an error names the field the API names, next to that
//! field, and changes nothing), admin only (as the API's routes), CSRF on every POST, the
//! secret shown once.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{Receiver, Relay};
use crate::helpers::{key_of, Browser, Page, ADMIN};

const ENDPOINTS: &str = "/v1/processors/automations/endpoints";

/// The page's text with minijinja's HTML escapes undone, as a browser shows it.
pub(crate) fn unescaped(page: &Page) -> String {
    let text = page.text.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&quot;", "\"");
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// What the console's pages must keep to: no inline script or style (the CSP allows
/// neither), and a label tied to every form control.
pub(crate) fn assert_csp_and_labels(page: &Page) {
    let text = &page.text;
    assert!(!text.contains(" style="), "a style attribute: {text}");
    for (at, _) in text.match_indices("<script") {
        assert!(text[at..].split('>').next().unwrap_or("").contains(" src="), "inline script");
    }
    for tag in ["<input id=\"", "<select id=\"", "<textarea id=\""] {
        for (at, _) in text.match_indices(tag) {
            let id = text[at + tag.len()..].split('"').next().expect("id");
            let labelled = text.contains(&format!("<label for=\"{id}\""))
                || text[..at].rfind("<label>").is_some_and(|l| !text[l..at].contains("</label>"));
            assert!(labelled, "the control {id} has no label");
        }
    }
}

/// The form fields of an automation, with the session's token.
fn fields<'a>(csrf: &'a str, url: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", "Billing hook"),
        ("processor_id", "billing"),
        ("webhook_url", url),
        ("webhook_headers", "X-Team: billing\r\n\r\nX-Env: test"),
        ("event_types", "workflow.completed, extraction.completed"),
        ("default_language", "fr"),
        ("enabled", "on"),
        ("need_validation", "on"),
    ]
}

/// Every automation the API lists.
async fn automations(relay: &Relay) -> Vec<Value> {
    relay.list_all(&format!("{ENDPOINTS}?")).await
}

/// The automation's secret, as the API's (admin) secret endpoint answers it.
async fn api_secret(relay: &Relay, id: &str) -> String {
    let body = relay.get_json(&format!("{ENDPOINTS}/{id}/secret")).await;
    body["secret"].as_str().expect("secret").to_string()
}

/// The secret a secret page shows.
fn shown_secret(page: &Page) -> String {
    let (text, open) = (unescaped(page), "<pre id=\"secret\" class=\"secret\">");
    let at = text.find(open).expect("a secret") + open.len();
    text[at..at + text[at..].find("</pre>").expect("end")].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_an_automation_through_the_form_and_the_api_lists_it() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let list = browser.get("/console/automations").await;
    assert!(unescaped(&list).contains("href=\"/console/automations/new\""), "{}", list.text);
    let form = browser.get("/console/automations/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert_csp_and_labels(&form);
    assert!(form.header("content-security-policy").contains("script-src 'self'"));

    let url = receiver.url("/hook");
    let created = browser.post("/console/automations/new", &fields(&form.csrf(), &url), &[]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_csp_and_labels(&created);
    let all = automations(&relay).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let a = &all[0];
    assert_eq!(a["name"], "Billing hook");
    assert_eq!(a["processor_id"], "billing");
    assert_eq!(a["webhook_url"], url.as_str());
    assert_eq!(a["webhook_headers"], json!({"X-Team": "billing", "X-Env": "test"}));
    assert_eq!(a["event_types"], json!(["workflow.completed", "extraction.completed"]));
    assert_eq!(a["default_language"], "fr");
    assert_eq!((a["enabled"].clone(), a["need_validation"].clone()), (json!(true), json!(true)));
    let id = a["id"].as_str().expect("id");
    assert_eq!(shown_secret(&created), api_secret(&relay, id).await, "not the stored secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_url_is_shown_next_to_the_url_field_as_the_api_says_it_and_creates_nothing() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let csrf = browser.get("/console/automations/new").await.csrf();
    let bad = "ftp://example.com/hook";
    let (status, api) = relay
        .post_json(ENDPOINTS, &json!({"name": "n", "processor_id": "p", "webhook_url": bad}))
        .await;
    assert_eq!((status, api["field"].as_str()), (400, Some("webhook_url")), "{api}");

    let page = browser.post("/console/automations/new", &fields(&csrf, bad), &[]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert_csp_and_labels(&page);
    let text = unescaped(&page);
    let field = text.find("id=\"f-webhook_url\"").expect("the url field");
    let error = text.find("id=\"webhook_url-error\"").expect("an error by the url field");
    let next_field = field + text[field..].find("<div class=\"field").expect("a next field");
    assert!(field < error && error < next_field, "the error is not next to the url field");
    assert!(text.contains(api["message"].as_str().expect("message")), "not the API's words");
    assert!(text.contains("aria-describedby=\"webhook_url-error"), "the error is not tied");
    assert!(text.contains(&format!("value=\"{bad}\"")), "the url typed is lost");
    assert!(text.contains("value=\"Billing hook\""), "the name typed is lost");
    assert!(text.contains("X-Team: billing"), "the headers typed are lost");

    let lines = [("webhook_headers", "not a header line")];
    let mut form: Vec<(&str, &str)> = fields(&csrf, "https://example.com/hook");
    form.retain(|(k, _)| *k != "webhook_headers");
    form.extend(lines);
    let page = browser.post("/console/automations/new", &form, &[]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains("id=\"webhook_headers-error\""), "{}", page.text);
    let reserved = [("webhook_headers", "Webhook-Signature: forged")];
    form.retain(|(k, _)| *k != "webhook_headers");
    form.extend(reserved);
    let page = browser.post("/console/automations/new", &form, &[]).await;
    assert!(page.text.contains("id=\"webhook_headers-error\""), "{}", page.text);
    assert!(page.text.contains("cannot be overridden"), "{}", page.text);
    assert!(automations(&relay).await.is_empty(), "a refused form created an automation");
}

/// Posts the edit form at `path` with `url` and the redacted header sent back as shown.
async fn edit(browser: &Browser, path: &str, csrf: &str, url: &str) -> Page {
    let form = [
        ("csrf", csrf),
        ("name", "n"),
        ("processor_id", "edited"),
        ("webhook_url", url),
        ("webhook_headers", "Authorization: [REDACTED]"),
        ("default_language", "en"),
        ("enabled", "on"),
    ];
    browser.post(path, &form, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_changes_the_url_keeps_redacted_headers_and_a_bad_edit_changes_nothing() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let body = json!({"name": "n", "processor_id": "edited", "webhook_url": receiver.url("/a"),
                      "webhook_headers": {"Authorization": "Bearer s3cret"}});
    let (status, created) = relay.post_json(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let list = browser.get("/console/automations").await;
    assert!(unescaped(&list).contains(&format!("/console/automations/{id}/edit")));
    let path = format!("/console/automations/{id}/edit");
    let form = browser.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text);
    assert_csp_and_labels(&form);
    let text = unescaped(&form);
    assert!(text.contains(&format!("value=\"{}\"", receiver.url("/a"))), "{text}");
    assert!(text.contains("Authorization: [REDACTED]") && !text.contains("s3cret"), "{text}");

    let refused = edit(&browser, &path, &form.csrf(), "http://").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert!(refused.text.contains("id=\"webhook_url-error\""), "{}", refused.text);
    assert!(unescaped(&refused).contains("value=\"http://\""), "the url typed is lost");
    let now = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(now["webhook_url"], receiver.url("/a").as_str(), "a refused edit changed it");

    let new_url = receiver.url("/b");
    let saved = edit(&browser, &path, &form.csrf(), &new_url).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    assert_eq!(saved.location(), "/console/automations");
    let now = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(now["webhook_url"], new_url.as_str());
    // The redacted value sent back kept the stored one: the receiver still gets it.
    let test = relay.req(Method::POST, &format!("/v1/processors/automations/tests/webhook/{id}"));
    assert_eq!(test.send().await.expect("test call").status(), StatusCode::OK);
    let sent = &receiver.calls()[0].headers;
    assert_eq!(sent.get("authorization").expect("header"), "Bearer s3cret");

    let gone = browser.get("/console/automations/endp_nonsense/edit").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_shows_the_new_secret_once_and_the_api_has_the_same() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let created = relay.create_automation("rotated", &receiver.url("/hook")).await;
    let (id, old) = (created["id"].as_str().expect("id"), created["secret"].as_str().expect("s"));
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let list = browser.get("/console/automations").await;
    let rotate = format!("/console/automations/{id}/rotate");
    assert!(unescaped(&list).contains(&format!("action=\"{rotate}\"")), "no Rotate button");
    assert!(!unescaped(&list).contains(old), "the list shows the secret");

    let page = browser.post(&rotate, &[("csrf", &list.csrf())], &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_csp_and_labels(&page);
    let secret = shown_secret(&page);
    assert!(secret.starts_with("whsec_") && secret != old, "{secret}");
    assert_eq!(secret, api_secret(&relay, id).await);
    assert!(page.text.contains("id=\"previous-until\""), "the overlap is not said");
    for again in ["/console/automations".to_string(), format!("/console/automations/{id}/edit")] {
        let page = browser.get(&again).await;
        assert!(!unescaped(&page).contains(&secret), "{again} shows the secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_viewers_see_no_admin_buttons_and_are_refused_every_admin_action() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let created = relay.create_automation("guarded", &receiver.url("/hook")).await;
    let (id, secret) =
        (created["id"].as_str().expect("id"), created["secret"].as_str().expect("s"));
    let (_, admin_key_id) = key_of(&relay, "admin").await;
    for role in ["operator", "viewer"] {
        let (key, _) = key_of(&relay, role).await;
        let mut browser = Browser::new(&relay);
        browser.sign_in(&key).await;
        let list = browser.get("/console/automations").await;
        let text = unescaped(&list);
        for admin_only in ["/console/automations/new", "/edit\"", "/rotate\"", "/console/keys"] {
            assert!(!text.contains(admin_only), "{role} is offered {admin_only}");
        }
        for page in [
            "/console/automations/new".into(),
            format!("/console/automations/{id}/edit"),
            "/console/keys".into(),
        ] {
            let refused = browser.get(&page).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{role} GET {page}");
        }
        let csrf = list.csrf();
        let url = "https://example.com/changed";
        let posts = [
            ("/console/automations/new".to_string(), fields(&csrf, url)),
            (format!("/console/automations/{id}/edit"), fields(&csrf, url)),
            (format!("/console/automations/{id}/rotate"), vec![("csrf", csrf.as_str())]),
            ("/console/keys".into(), vec![("csrf", &csrf), ("name", "x"), ("role", "admin")]),
            (format!("/console/keys/{admin_key_id}/revoke"), vec![("csrf", csrf.as_str())]),
        ];
        for (path, form) in posts {
            let refused = browser.post(&path, &form, &[]).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{role} POST {path}");
            assert!(refused.text.contains("needs the admin role"), "{}", refused.text);
        }
    }
    assert_unchanged(&relay, id, &receiver.url("/hook"), secret, 3).await;
}

/// The one automation still has `url` and `secret`, and `keys` keys are stored, none revoked.
async fn assert_unchanged(relay: &Relay, id: &str, url: &str, secret: &str, keys: usize) {
    let all = automations(relay).await;
    assert_eq!(all.len(), 1, "an automation was created: {all:?}");
    assert_eq!(all[0]["webhook_url"], url, "the automation was changed");
    assert_eq!(api_secret(relay, id).await, secret, "the secret was rotated");
    let listed = relay.get_json("/v1/keys").await["data"].as_array().expect("keys").clone();
    assert_eq!(listed.len(), keys, "a key was created: {listed:?}");
    assert!(listed.iter().all(|k| k["revoked_at"].is_null()), "a key was revoked: {listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let relay = Relay::start("");
    let receiver = Receiver::ok().await;
    let created = relay.create_automation("forged", &receiver.url("/hook")).await;
    let (id, secret) =
        (created["id"].as_str().expect("id"), created["secret"].as_str().expect("s"));
    let (_, key_id) = key_of(&relay, "viewer").await;
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let forged = "f".repeat(64);
    for token in [None, Some(forged.as_str())] {
        let mut form = fields("", "https://example.com/changed");
        form.retain(|(k, _)| *k != "csrf");
        form.extend(token.map(|t| ("csrf", t)));
        let csrf: Vec<(&str, &str)> = token.map(|t| ("csrf", t)).into_iter().collect();
        let keys_form = [csrf.clone(), vec![("name", "x"), ("role", "admin")]].concat();
        let posts = [
            ("/console/automations/new".to_string(), form.clone()),
            (format!("/console/automations/{id}/edit"), form.clone()),
            (format!("/console/automations/{id}/rotate"), csrf.clone()),
            ("/console/keys".into(), keys_form),
            (format!("/console/keys/{key_id}/revoke"), csrf.clone()),
        ];
        for (path, form) in posts {
            let refused = browser.post(&path, &form, &[]).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path} with {token:?}");
            assert!(refused.text.contains("security token"), "{}", refused.text);
        }
    }
    assert_unchanged(&relay, id, &receiver.url("/hook"), secret, 1).await;
}

/// A form with a field given twice, or with text that is not UTF-8 once decoded, is refused
/// (400, saying which field) before it changes anything, as the API refuses the like.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_with_a_field_twice_or_text_not_utf8_is_refused_and_changes_nothing() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let csrf = browser.get("/console/automations/new").await.csrf();
    let url = "https%3A%2F%2Fexample.com%2Fh";
    let bodies: [(&str, Vec<u8>, &str); 4] = [
        (
            "/console/automations/new",
            format!("csrf={csrf}&name=a&name=b&processor_id=p&webhook_url={url}").into_bytes(),
            "field `name` is given twice",
        ),
        (
            "/console/automations/new",
            format!("csrf={csrf}&name=%FF%FE&processor_id=p&webhook_url={url}").into_bytes(),
            "field `name` is not UTF-8 text",
        ),
        (
            "/console/automations/new",
            [
                format!("csrf={csrf}&processor_id=p&webhook_url={url}&name=").into_bytes(),
                vec![0xff, 0xfe],
            ]
            .concat(),
            "field `name` is not UTF-8 text",
        ),
        (
            "/console/keys",
            format!("csrf={csrf}&name=k&role=viewer&role=admin").into_bytes(),
            "field `role` is given twice",
        ),
    ];
    for (path, body, said) in bodies {
        let refused = browser.post_raw(path, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}: {}", refused.text);
        assert!(refused.text.contains(said), "{said}: {}", refused.text);
    }
    assert!(automations(&relay).await.is_empty(), "an automation was created");
    let keys = relay.get_json("/v1/keys").await;
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(0), "{keys}");
}

// The rate limit is a field of the form: typed digits set it, a refused value is shown next
// to it as the API words it and changes nothing, and an empty field removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_sets_changes_and_removes_a_rate_limit() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let csrf = browser.get("/console/automations/new").await.csrf();
    let mut form = fields(&csrf, "https://example.com/hook");
    form.push(("rate_limit_per_sec", " 5 "));
    let created = browser.post("/console/automations/new", &form, &[]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let all = automations(&relay).await;
    assert_eq!(all[0]["rate_limit_per_sec"], 5, "{all:?}");
    let id = all[0]["id"].as_str().expect("id");
    let path = format!("/console/automations/{id}/edit");
    let page = browser.get(&path).await;
    assert_csp_and_labels(&page);
    assert!(page.text.contains("name=\"rate_limit_per_sec\" type=\"text\" value=\"5\""));
    let csrf = page.csrf();

    for bad in ["0", "1.5", "fast"] {
        let mut form = fields(&csrf, "https://example.com/hook");
        form.push(("rate_limit_per_sec", bad));
        let refused = browser.post(&path, &form, &[]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}: {}", refused.text);
        let text = unescaped(&refused);
        assert!(text.contains("id=\"rate_limit_per_sec-error\""), "{bad}: {text}");
        assert!(text.contains(&format!("value=\"{bad}\"")), "{bad}: the value typed is lost");
        let now = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
        assert_eq!(now["rate_limit_per_sec"], 5, "{bad}: a refused edit changed it");
    }

    let mut form = fields(&csrf, "https://example.com/hook");
    form.push(("rate_limit_per_sec", ""));
    let saved = browser.post(&path, &form, &[]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
    let now = relay.get_json(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(now["rate_limit_per_sec"], Value::Null, "{now}");
}
