//! The console in a real browser (Debian's chromium, driven over WebDriver by chromedriver):
//! sign in, find a failed delivery through the filters, read the receiver's answer (a
//! `<script>` in it shown as text and never run), fix the receiver, bulk-retry the failures
//! and watch the progress reach the end, rerun in place and see it succeed, sign out; a viewer
//! then sees the log with no button; and every page fits a phone and a laptop. A failure
//! saves a screenshot under `target/`. Without a browser the tests are skipped with a reason,
//! except under `CI=true`, where that is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures_util::FutureExt;
use thirtyfour::prelude::*;

use crate::common::{Receiver, Relay, WAIT};
use crate::helpers::{one_log, ADMIN, ONE_ATTEMPT};

/// What the broken receiver answers: a script that would mark the page if it ran.
const HOSTILE: &str =
    "<script>document.title='pwned';window.pwned=true</script>receiver down for maintenance";

/// How late the fixed receiver's body comes: the bulk retry's page must see its job running.
const FIXED_ANSWER_DELAY: Duration = Duration::from_millis(1500);

/// The executable `name` on the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// chromedriver and chromium, or why the test cannot run (a failure under `CI=true`).
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let driver = on_path("chromedriver");
    let browser = on_path("chromium").or_else(|| on_path("chromium-browser"));
    match (driver, browser) {
        (Some(driver), Some(browser)) => Some((driver, browser)),
        missing => {
            let why = format!(
                "chromium and chromium-driver are needed (apt-get install -y chromium \
                 chromium-driver); found {missing:?}"
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "under CI=true: {why}");
            eprintln!("skipped: {why}");
            None
        }
    }
}

/// A chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(binary: &Path) -> Self {
        let port =
            TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Self { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + WAIT;
        let status = format!("{}/status", driver.url);
        while crate::common::client().get(&status).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` holds on the page, failing with `what` at [`WAIT`].
async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn source(driver: &WebDriver) -> String {
    driver.source().await.unwrap_or_default()
}

async fn text_of(driver: &WebDriver, id: &str) -> String {
    match driver.find(By::Id(id)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// From the failures listed, "Retry these…": the dry run counts the one failed delivery,
/// Confirm starts the job, and its page, shown while the job runs, follows its progress
/// (polled by htmx, the page never reloaded) to the end.
async fn bulk_retry(driver: &WebDriver, relay: &Relay) {
    driver.goto(relay.url("/console/logs?status_class=5xx")).await.expect("goto");
    driver.find(By::Id("retry-these")).await.expect("the link").click().await.expect("open");
    wait_until("the bulk retry form", || async {
        let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        url.ends_with("/console/retry?status_class=5xx")
    })
    .await;
    driver.find(By::Id("dry-run")).await.expect("dry run").click().await.expect("count");
    wait_until("the dry run's count", || async {
        text_of(driver, "dry-run-count").await.contains("1 delivery would be retried")
    })
    .await;
    driver.find(By::Id("confirm-retry")).await.expect("confirm").click().await.expect("go");
    wait_until("the job's page", || async { !text_of(driver, "job-status").await.is_empty() })
        .await;
    assert_eq!(text_of(driver, "job-status").await, "running", "{}", source(driver).await);
    wait_until("the job's progress to reach the end", || async {
        text_of(driver, "job-status").await == "completed"
    })
    .await;
    assert_eq!(text_of(driver, "job-done").await, "1");
    assert_eq!(text_of(driver, "job-pending").await, "0");
    let bar = driver.find(By::Id("job-bar")).await.expect("the progress bar");
    assert_eq!(bar.attr("value").await.expect("value").as_deref(), Some("1"));
}

/// The scenario; `fixed` switches the receiver to answering 200; `viewer` is a viewer's key.
async fn operate(driver: &WebDriver, relay: &Relay, log: &str, fixed: &AtomicBool, viewer: &str) {
    driver.goto(relay.url("/console/logs")).await.expect("goto");
    wait_until("the sign-in page", || async { text_of(driver, "sign-in").await == "Sign in" })
        .await;
    driver.find(By::Id("key")).await.expect("key field").send_keys(ADMIN).await.expect("type");
    driver.find(By::Id("sign-in")).await.expect("button").click().await.expect("sign in");
    wait_until("the overview", || async {
        let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        url.ends_with("/console/overview") && source(driver).await.contains("signed in as admin")
    })
    .await;
    let logs = driver.find(By::Css("nav a[href='/console/logs']")).await.expect("the Logs link");
    logs.click().await.expect("open the logs");
    wait_until("the logs page", || async {
        let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        url.ends_with("/console/logs")
    })
    .await;

    let class = driver.find(By::Css("#f-status_class option[value='5xx']")).await.expect("5xx");
    class.click().await.expect("choose 5xx");
    driver.find(By::Id("apply-filters")).await.expect("apply").click().await.expect("filter");
    wait_until("the filtered list", || async {
        let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        url.ends_with("/console/logs?status_class=5xx")
    })
    .await;
    driver
        .find(By::LinkText(log))
        .await
        .expect("the failed log listed")
        .click()
        .await
        .expect("open");

    wait_until("the log's detail", || async { text_of(driver, "outcome").await == "failed" }).await;
    let body = text_of(driver, "response-body").await;
    assert!(body.contains("<script>document.title='pwned'"), "the answer is not shown: {body}");
    assert!(body.contains("receiver down for maintenance"), "{body}");
    let ran = driver.execute("return window.pwned === true", vec![]).await.expect("script");
    assert_eq!(ran.json(), &serde_json::json!(false), "the receiver's script ran");
    assert!(!driver.title().await.expect("title").contains("pwned"), "the receiver's script ran");

    fixed.store(true, Ordering::SeqCst);
    bulk_retry(driver, relay).await;
    driver.goto(relay.url(&format!("/console/logs/{log}"))).await.expect("goto");
    driver.find(By::Id("rerun")).await.expect("rerun button").click().await.expect("rerun");
    wait_until("the rerun's result in place", || async {
        text_of(driver, "rerun-outcome").await.contains("succeeded")
    })
    .await;
    assert!(text_of(driver, "rerun-outcome").await.contains("status 200"));

    driver.find(By::Id("sign-out")).await.expect("sign-out").click().await.expect("sign out");
    wait_until("the sign-in page after sign-out", || async {
        text_of(driver, "sign-in").await == "Sign in"
    })
    .await;
    driver.goto(relay.url("/console/logs")).await.expect("goto");
    wait_until("sign-in, the session ended", || async {
        let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        url.ends_with("/console/sign-in")
    })
    .await;

    // A viewer reads the same log but is offered no button it could not use.
    driver.find(By::Id("key")).await.expect("key field").send_keys(viewer).await.expect("type");
    driver.find(By::Id("sign-in")).await.expect("button").click().await.expect("sign in");
    wait_until("signed in as viewer", || async {
        source(driver).await.contains("signed in as viewer")
    })
    .await;
    driver.goto(relay.url(&format!("/console/logs/{log}"))).await.expect("goto");
    wait_until("the log's detail", || async { !text_of(driver, "outcome").await.is_empty() }).await;
    let buttons = driver.find_all(By::Css("main button")).await.expect("buttons");
    assert!(buttons.is_empty(), "a viewer is offered {} button(s) on a log", buttons.len());
    driver.goto(relay.url("/console/automations")).await.expect("goto");
    wait_until("the automations page", || async {
        source(driver).await.contains("<h1>Automations")
    })
    .await;
    let buttons = driver.find_all(By::Css("main button")).await.expect("buttons");
    assert!(buttons.is_empty(), "a viewer is offered {} button(s) on automations", buttons.len());
}

/// A headless chromium session on its own chromedriver and profile.
struct Browser {
    driver: WebDriver,
    _server: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(chromedriver: &Path, chromium: &Path) -> Self {
        let server = Driver::start(chromedriver).await;
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium.to_string_lossy()).expect("binary");
        for arg in ["--headless=new", "--no-sandbox", "--disable-gpu"] {
            caps.add_arg(arg).expect("arg");
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.path().display())).expect("arg");
        let driver = WebDriver::new(&server.url, caps).await.expect("a browser session");
        Self { driver, _server: server, _profile: profile }
    }

    /// Runs `scenario`; on a panic saves a screenshot under `target/`, then panics on.
    async fn run(&self, scenario: impl std::future::Future<Output = ()>) {
        let outcome = std::panic::AssertUnwindSafe(scenario).catch_unwind().await;
        if outcome.is_err() {
            let shot =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-browser-failure.png");
            match self.driver.screenshot(&shot).await {
                Ok(()) => eprintln!("screenshot: {}", shot.display()),
                Err(e) => eprintln!("no screenshot: {e}"),
            }
        }
        let _ = self.driver.clone().quit().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_failure_reruns_it_and_signs_out_in_a_browser() {
    let Some((chromedriver, chromium)) = browser_tools() else { return };
    let relay = Relay::start(ONE_ATTEMPT);
    let fixed = Arc::new(AtomicBool::new(false));
    let switch = fixed.clone();
    let receiver = Receiver::with(Arc::new(move |_| {
        if switch.load(Ordering::SeqCst) {
            // The body comes late, so a bulk retry's job still runs when its page first shows.
            let late = futures_util::stream::once(async {
                tokio::time::sleep(FIXED_ANSWER_DELAY).await;
                Ok::<_, std::io::Error>("{\"ok\":true}")
            });
            (StatusCode::OK, axum::body::Body::from_stream(late)).into_response()
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "text/html")], HOSTILE)
                .into_response()
        }
    }))
    .await;
    let log = one_log(&relay, &receiver, "browser").await;

    let browser = Browser::start(&chromedriver, &chromium).await;
    let (viewer, _) = crate::helpers::key_of(&relay, "viewer").await;
    browser.run(operate(&browser.driver, &relay, &log, &fixed, &viewer)).await;
    assert_eq!(receiver.count(), 3, "the initial call, the bulk retry and the rerun");
}

/// Every page at a phone's width (390 px) and a laptop's (1280 px): the page itself never
/// scrolls sideways (a wide table scrolls in its own box), and each has one `h1`.
async fn every_page_fits(driver: &WebDriver, relay: &Relay, log: &str) {
    driver.goto(relay.url("/console/sign-in")).await.expect("goto");
    driver.find(By::Id("key")).await.expect("key field").send_keys(ADMIN).await.expect("type");
    driver.find(By::Id("sign-in")).await.expect("button").click().await.expect("sign in");
    wait_until("signed in", || async { source(driver).await.contains("signed in as admin") }).await;
    let pages = [
        "/console/overview".to_string(),
        "/console/logs".into(),
        format!("/console/logs/{log}"),
        "/console/automations".into(),
        "/console/automations/new".into(),
        "/console/keys".into(),
        "/console/retry".into(),
        "/console/runs".into(),
        "/console/sheets".into(),
    ];
    for width in [390u32, 1280] {
        driver.set_window_rect(0, 0, width, 900).await.expect("resize");
        for page in &pages {
            driver.goto(relay.url(page)).await.expect("goto");
            let fits = driver
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth, \
                     document.querySelectorAll('h1').length]",
                    vec![],
                )
                .await
                .expect("measure");
            let [scroll, inner, h1s] = serde_json::from_value::<[u64; 3]>(fits.json().clone())
                .unwrap_or_else(|e| panic!("{page}: {e}: {:?}", fits.json()));
            assert!(scroll <= inner, "{page} at {width} px scrolls sideways: {scroll} > {inner}");
            assert_eq!(h1s, 1, "{page}: one h1");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_fits_a_phone_and_a_laptop_without_scrolling_sideways() {
    let Some((chromedriver, chromium)) = browser_tools() else { return };
    let relay = Relay::start(ONE_ATTEMPT);
    let receiver = Receiver::ok().await;
    let log = one_log(&relay, &receiver, "layout").await;
    let browser = Browser::start(&chromedriver, &chromium).await;
    browser.run(every_page_fits(&browser.driver, &relay, &log)).await;
}

/// `/docs` under its Content-Security-Policy, which lets scripts run by their hash only:
/// Swagger UI still runs, and shows the document's title and every operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_docs_page_runs_under_its_content_security_policy() {
    let Some((chromedriver, chromium)) = browser_tools() else { return };
    let relay = Relay::start("");
    let browser = Browser::start(&chromedriver, &chromium).await;
    let driver = &browser.driver;
    browser
        .run(async {
            driver.goto(relay.url("/docs")).await.expect("goto /docs");
            wait_until("Swagger UI's title", || async {
                let title = driver.find(By::Css(".swagger-ui .info .title")).await;
                match title {
                    Ok(t) => t.text().await.is_ok_and(|t| t.starts_with("hookrelay")),
                    Err(_) => false,
                }
            })
            .await;
            wait_until("every operation", || async {
                driver.find_all(By::Css(".opblock")).await.is_ok_and(|ops| ops.len() >= 50)
            })
            .await;
        })
        .await;
}
