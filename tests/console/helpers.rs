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

/// A browser-like client of the console, holding one session cookie.
pub(crate) struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
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
        Self { client, base: relay.url(""), cookie: None }
    }

    async fn answer(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("hr_console={c}")),
            None => req,
        };
        let resp = req.send().await.expect("send");
        let (status, headers) = (resp.status(), resp.headers().clone());
        Page { status, headers, text: resp.text().await.expect("text") }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Page {
        self.answer(self.client.get(format!("{}{path}", self.base))).await
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

    /// Signs in with `key`; keeps the session cookie. The sign-in answer.
    pub async fn sign_in(&mut self, key: &str) -> Page {
        let page = self.post("/console/sign-in", &[("key", key)], &[]).await;
        self.cookie = session_cookie(&page);
        page
    }
}

/// The session token a `Set-Cookie` of `page` sets, if any.
pub(crate) fn session_cookie(page: &Page) -> Option<String> {
    let set = page.header("set-cookie");
    let value = set.strip_prefix("hr_console=")?.split(';').next()?;
    (!value.is_empty()).then(|| value.to_string())
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
