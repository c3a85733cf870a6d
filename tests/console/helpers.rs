//! A console client: a browser's cookie, form posts, no redirects followed (tests assert
//! where each answer sends the browser).

use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Receiver, Relay, KEY};

/// `[delivery]` settings for tests that need one failed log quickly: one attempt, no retry.
pub(crate) const ONE_ATTEMPT: &str = "[delivery]\nmax_attempts = 1\npoll_interval_ms = 50\n";

/// An answer: status, headers, body text.
pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    /// The header `name`, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Where a redirect sends the browser.
    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The CSRF token of the session, from the page's sign-out form.
    pub fn csrf(&self) -> String {
        let at = self.text.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.text[at..at + 64].to_string()
    }
}

/// A browser-like client of the console, holding one session cookie and the sign-in form's
/// token cookie.
pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
    /// The sign-in page's token cookie (`hr_sign_in`), sent with every request as a browser
    /// would (the server scopes it to the sign-in path).
    pub sign_in_cookie: Option<String>,
}

impl Browser {
    /// A client of `relay`'s console, signed out.
    pub fn new(relay: &Relay) -> Self {
        let _ = crate::common::client();
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self { client, base: relay.url(""), cookie: None, sign_in_cookie: None }
    }

    async fn answer(&self, req: reqwest::RequestBuilder) -> Page {
        let cookies: Vec<String> =
            [("hr_console", &self.cookie), ("hr_sign_in", &self.sign_in_cookie)]
                .into_iter()
                .filter_map(|(name, value)| Some(format!("{name}={}", value.as_ref()?)))
                .collect();
        let req = if cookies.is_empty() { req } else { req.header("cookie", cookies.join("; ")) };
        let resp = req.send().await.expect("send");
        let (status, headers) = (resp.status(), resp.headers().clone());
        Page { status, headers, text: resp.text().await.expect("text") }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }

    /// GET `path` with extra `headers`.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.answer(req).await
    }

    /// POST the form `fields` to `path`, with extra `headers`.
    pub async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(fields);
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.answer(req).await
    }

    /// POST `body` as it is, as a form, to `path`.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Page {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.answer(req).await
    }

    /// Opens the sign-in page and keeps its token cookie, as a browser would: the token its
    /// form carries.
    pub async fn sign_in_token(&mut self) -> String {
        let page = self.get("/console/sign-in").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        self.sign_in_cookie = set_cookie(&page, "hr_sign_in");
        assert!(self.sign_in_cookie.is_some(), "the sign-in page set no token cookie");
        page.csrf()
    }

    /// Signs in with `key` through the sign-in page's form, with extra `headers`; keeps the
    /// session cookie. The sign-in answer.
    pub async fn sign_in_with(&mut self, key: &str, headers: &[(&str, &str)]) -> Page {
        let token = self.sign_in_token().await;
        let page = self.post("/console/sign-in", &[("csrf", &token), ("key", key)], headers).await;
        self.cookie = session_cookie(&page);
        if self.cookie.is_some() {
            self.sign_in_cookie = None;
        }
        page
    }

    /// Signs in with `key` through the sign-in page's form; keeps the session cookie. The
    /// sign-in answer.
    pub async fn sign_in(&mut self, key: &str) -> Page {
        self.sign_in_with(key, &[]).await
    }
}

/// The value the `Set-Cookie` headers of `page` give cookie `name`, unless they end it.
pub(crate) fn set_cookie(page: &Page, name: &str) -> Option<String> {
    page.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|set| {
        let value = set.strip_prefix(name)?.strip_prefix('=')?.split(';').next()?;
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// The session token a `Set-Cookie` of `page` sets, if any.
pub(crate) fn session_cookie(page: &Page) -> Option<String> {
    set_cookie(page, "hr_console")
}

/// A key of `role`, made with the admin key: (key, id).
pub(crate) async fn key_of(relay: &Relay, role: &str) -> (String, String) {
    let (status, created) = relay.post_json("/v1/keys", &json!({"name": role, "role": role})).await;
    assert_eq!(status, 201, "{created}");
    (created["key"].as_str().expect("key").into(), created["id"].as_str().expect("id").into())
}

/// One message to a new automation on `receiver`; waits for its first log. The log's id.
pub(crate) async fn one_log(relay: &Relay, receiver: &Receiver, processor: &str) -> String {
    let automation = relay.create_automation(processor, &receiver.url("/hook")).await;
    let id = automation["id"].as_str().expect("id");
    relay.send_message(processor, json!({"order": 1})).await;
    let logs = relay.wait_logs_at_least(&format!("automation_id={id}"), 1).await;
    logs[0]["id"].as_str().expect("log id").to_string()
}

/// The admin key the test relays start with.
pub(crate) const ADMIN: &str = KEY;
