//! Sessions: sign-in with a key, the cookie's flags, idle and absolute expiry, revocation of
//! the key, sign-out (CSRF-protected).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use crate::common::Relay;
use crate::helpers::{key_of, session_cookie, set_cookie, Browser, ADMIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_key_gets_a_strict_http_only_cookie_and_a_bad_one_none() {
    let relay = Relay::start("[console]\ntrust_forwarded_proto = true\n");
    let mut browser = Browser::new(&relay);
    let refused = browser.sign_in("not-a-key-at-all-0123").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    assert!(refused.text.contains("invalid API key"), "{}", refused.text);
    let app_key = browser.sign_in("app-demo-key-0123456789").await;
    assert_eq!(app_key.status, StatusCode::UNAUTHORIZED, "{}", app_key.text);
    assert!(app_key.text.contains("an app key cannot use this API"), "{}", app_key.text);
    assert!(session_cookie(&refused).is_none(), "a session for a bad key");
    assert_eq!(browser.get("/console/logs").await.location(), "/console/sign-in");

    let signed = browser.sign_in(ADMIN).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
    assert_eq!(signed.location(), "/console/overview");
    let cookie = signed.header("set-cookie").to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "Secure over plain HTTP: {cookie}");
    let token = browser.cookie.clone().expect("a session");
    assert_eq!(token.len(), 64, "{cookie}");
    let logs = browser.get("/console/logs").await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.text);
    assert!(logs.text.contains("signed in as admin"), "{}", logs.text);

    // Behind a TLS-terminating proxy, trusted by the config: Secure.
    browser.cookie = None;
    let proxied = browser.sign_in_with(ADMIN, &[("x-forwarded-proto", "https")]).await;
    assert!(proxied.header("set-cookie").contains("; Secure"), "{}", proxied.header("set-cookie"));
    browser.cookie = None;
    let page = browser.get_with("/console/sign-in", &[("x-forwarded-proto", "https")]).await;
    let token_cookie = page.header("set-cookie");
    assert!(token_cookie.starts_with("hr_sign_in="), "{token_cookie}");
    assert!(token_cookie.contains("; Secure"), "{token_cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_proto_is_ignored_unless_trusted() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    let signed = browser.sign_in_with(ADMIN, &[("x-forwarded-proto", "https")]).await;
    assert!(session_cookie(&signed).is_some(), "{}", signed.text);
    for set in signed.headers.get_all("set-cookie") {
        assert!(!set.to_str().expect("text").contains("Secure"), "{set:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_when_idle_and_at_its_absolute_limit() {
    let relay = Relay::start("[console]\nsession_idle_secs = 1\nsession_absolute_secs = 3\n");
    let mut idle = Browser::new(&relay);
    idle.sign_in(ADMIN).await;
    assert_eq!(idle.get("/console/logs").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let after_idle = idle.get("/console/logs").await;
    assert_eq!(after_idle.location(), "/console/sign-in", "idle session still valid");

    // Used every 300 ms, it never idles out, yet ends 3 s after sign-in.
    let mut busy = Browser::new(&relay);
    busy.sign_in(ADMIN).await;
    let start = Instant::now();
    loop {
        let page = busy.get("/console/logs").await;
        if page.status != StatusCode::OK {
            assert_eq!(page.location(), "/console/sign-in");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(8), "the session outlived its limit");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let lasted = start.elapsed();
    assert!(lasted >= Duration::from_millis(2500), "ended early, after {lasted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_key_ends_its_sessions_and_sign_out_needs_the_csrf_token() {
    let relay = Relay::start("");
    let (key, id) = key_of(&relay, "viewer").await;
    let mut revoked = Browser::new(&relay);
    revoked.sign_in(&key).await;
    let page = revoked.get("/console/logs").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("signed in as viewer"), "{}", page.text);
    let resp = relay.req(Method::DELETE, &format!("/v1/keys/{id}")).send().await.expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(revoked.get("/console/logs").await.location(), "/console/sign-in");

    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let csrf = browser.get("/console/logs").await.csrf();
    let forged = browser.post("/console/sign-out", &[("csrf", &"0".repeat(64))], &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let missing = browser.post("/console/sign-out", &[], &[]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.text);
    assert_eq!(
        browser.get("/console/logs").await.status,
        StatusCode::OK,
        "signed out by a forgery"
    );
    let out = browser.post("/console/sign-out", &[("csrf", &csrf)], &[]).await;
    assert_eq!(out.location(), "/console/sign-in");
    assert!(out.header("set-cookie").contains("Max-Age=0"), "{}", out.header("set-cookie"));
    assert_eq!(
        browser.get("/console/logs").await.location(),
        "/console/sign-in",
        "still signed in"
    );
}

/// A form posted from another site is refused before it acts: sign-in (which has no CSRF
/// token, there being no session yet) sets no cookie, and a signed-in action with a good
/// token changes nothing. Same-origin posts and clients that send no such header pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_site_is_refused_sign_in_included() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    // Even with the sign-in form's own token and cookie: the headers alone refuse it.
    let token = browser.sign_in_token().await;
    for headers in [
        [("sec-fetch-site", "cross-site")],
        [("sec-fetch-site", "same-site")],
        [("origin", "null")],
    ] {
        let fields = [("csrf", token.as_str()), ("key", ADMIN)];
        let forged = browser.post("/console/sign-in", &fields, &headers).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{headers:?}: {}", forged.text);
        assert!(forged.header("set-cookie").is_empty(), "{headers:?} signed in");
    }
    let same = browser.sign_in_with(ADMIN, &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(same.status, StatusCode::SEE_OTHER, "{}", same.text);
    let csrf = browser.get("/console/logs").await.csrf();

    let out = [("csrf", csrf.as_str())];
    let forged = browser.post("/console/sign-out", &out, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert_eq!(browser.get("/console/logs").await.status, StatusCode::OK, "still signed in");
    let own = browser.post("/console/sign-out", &out, &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(own.status, StatusCode::SEE_OTHER, "{}", own.text);
    assert_eq!(browser.get("/console/logs").await.location(), "/console/sign-in");
}

/// A form over the body limit is refused with the console's own page (413), not the
/// framework's plain text, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_over_the_body_limit_gets_the_consoles_page() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    browser.sign_in(ADMIN).await;
    let csrf = browser.get("/console/automations/new").await.csrf();
    let name = "n".repeat(300 * 1024);
    let fields = [("csrf", csrf.as_str()), ("name", &name), ("processor_id", "p")];
    let refused = browser.post("/console/automations/new", &fields, &[]).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", refused.text);
    assert!(refused.header("content-type").starts_with("text/html"), "{}", refused.text);
    assert!(refused.text.contains("larger than the server takes"), "{}", refused.text);
    let list = relay.get_json("/v1/processors/automations/endpoints").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0), "{list}");
}

/// Sign-in reads its form as strictly as every other: a key given twice or not UTF-8 text is
/// a 400 that names the field, and signs nobody in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_form_with_the_key_twice_or_not_utf8_signs_nobody_in() {
    let relay = Relay::start("");
    let browser = Browser::new(&relay);
    let bodies = [
        (format!("key={ADMIN}&key=x").into_bytes(), "field `key` is given twice"),
        (b"key=%ff%fe".to_vec(), "field `key` is not UTF-8 text"),
    ];
    for (body, said) in bodies {
        let refused = browser.post_raw("/console/sign-in", body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
        assert!(refused.text.contains(said), "{said}: {}", refused.text);
        assert!(session_cookie(&refused).is_none(), "signed in");
    }
}

/// A forged sign-in: the form's fields, and the token cookie sent with it.
type Forgery<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

/// Login CSRF in a browser that sends neither `Sec-Fetch-Site` nor `Origin` (older browsers,
/// some privacy settings): a sign-in post without the sign-in page's token, with a token but
/// no cookie, or with a token its cookie does not match, is refused (403, no session, the
/// form served again with a token); the page's own token and cookie sign in, and the token's
/// cookie then ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_post_without_the_sign_in_pages_token_signs_nobody_in() {
    let relay = Relay::start("");
    let mut browser = Browser::new(&relay);
    let page = browser.get("/console/sign-in").await;
    let set = page.header("set-cookie").to_string();
    for flag in
        ["hr_sign_in=", "HttpOnly", "SameSite=Strict", "Path=/console/sign-in", "Max-Age=3600"]
    {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    let token = page.csrf();
    assert_eq!(set_cookie(&page, "hr_sign_in").as_deref(), Some(token.as_str()), "{set}");

    let other = "ab".repeat(32);
    let forgeries: [Forgery; 5] = [
        (&[("key", ADMIN)], None),
        (&[("key", ADMIN)], Some(&token)),
        (&[("csrf", &token), ("key", ADMIN)], None),
        (&[("csrf", &other), ("key", ADMIN)], Some(&token)),
        (&[("csrf", ""), ("key", ADMIN)], Some("")),
    ];
    for (fields, cookie) in forgeries {
        browser.sign_in_cookie = cookie.map(String::from);
        let refused = browser.post("/console/sign-in", fields, &[]).await;
        let case = format!("{fields:?} with cookie {cookie:?}");
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{case}: {}", refused.text);
        assert!(refused.text.contains("did not come from this console"), "{case}");
        assert!(session_cookie(&refused).is_none(), "{case} signed in");
        // The form comes back usable: a token in the field and in the cookie.
        assert_eq!(set_cookie(&refused, "hr_sign_in"), Some(refused.csrf()), "{case}");
        assert_eq!(browser.get("/console/logs").await.location(), "/console/sign-in", "{case}");
    }

    // A wrong key with a good token: 401, and the same token stays usable.
    browser.sign_in_cookie = Some(token.clone());
    let wrong = browser.post("/console/sign-in", &[("csrf", &token), ("key", "nope")], &[]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    assert_eq!(wrong.csrf(), token, "the form changed its token");
    let signed = browser.post("/console/sign-in", &[("csrf", &token), ("key", ADMIN)], &[]).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
    assert_eq!(signed.location(), "/console/overview");
    browser.cookie = session_cookie(&signed);
    assert!(browser.cookie.is_some(), "no session");
    let ended: Vec<_> = signed.headers.get_all("set-cookie").iter().collect();
    assert!(
        ended.iter().any(|v| v
            .to_str()
            .is_ok_and(|v| v.starts_with("hr_sign_in=;") && v.contains("Max-Age=0"))),
        "the token's cookie outlived the sign-in: {ended:?}"
    );
    assert_eq!(browser.get("/console/logs").await.status, StatusCode::OK);
}
