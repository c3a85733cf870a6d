//! `console`: the operator console's pages (overview, logs, automations) with `--logs` logs
//! stored (1,000,000 by default), signed in as the admin key: p50/p99 per page, measured on
//! loopback, one request at a time, so each latency is the server's time plus a loopback
//! round trip. The overview is measured once the rollup has counted every seeded log (the
//! relay starts on a database it has never counted, as after the upgrade that added it).
//! Measured on 2 cores shared with other work, 1,000,000 logs (commit b3b767b): overview
//! p50 12 ms, p99 48 ms; logs p50 2 ms, p99 27 ms; automations p50 0.3 ms, p99 0.6 ms; the
//! rollup counted the million logs in 21 s.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::load::percentiles;
use crate::relay::{Relay, KEY};
use crate::report::Row;
use crate::seed::Dates;
use crate::Settings;

/// Requests per page.
const REQUESTS: usize = 200;
/// The pages measured.
const PAGES: [&str; 3] = ["/console/overview", "/console/logs", "/console/automations"];
/// Longest wait for the rollup to count the seeded logs.
const CATCH_UP: Duration = Duration::from_secs(900);

/// Runs the scenario; see the module doc.
pub async fn pages(s: &Settings) -> anyhow::Result<Row> {
    let dir =
        std::env::temp_dir().join(format!("hookrelay-bench-console-{}", crate::load::nanos()));
    std::fs::create_dir_all(&dir)?;
    let dates = Dates::ending_now(s.logs);
    crate::seed::seed_logs(&dir.join("hookrelay.db"), s.logs, s.payloads, dates).await?;
    let relay = Relay::start(Some(dir))?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let cookie = sign_in(&http, &relay.base).await?;
    let get = |path: &str| http.get(format!("{}{path}", relay.base)).header("cookie", &cookie);

    // The last day's logs are the last ones counted; once counted, a pass finds nothing new
    // and the figure stays put (the seeded logs end when seeding began, so the window's
    // count is not known in advance).
    let started = Instant::now();
    let mut last = 0;
    loop {
        let page = get("/console/overview").send().await?.error_for_status()?.text().await?;
        let counted = day_calls(&page).context("no day-calls figure on the overview")?;
        if counted > 0 && counted == last {
            break;
        }
        if started.elapsed() > CATCH_UP {
            bail!("the rollup had not caught up after {CATCH_UP:?} ({counted} in the last day)");
        }
        last = counted;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let catch_up = started.elapsed();

    let mut figures = serde_json::Map::new();
    let mut overview = (0.0, 0.0, 0.0);
    let mut all = Vec::new();
    for path in PAGES {
        let mut latencies = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let t = Instant::now();
            get(path).send().await?.error_for_status()?.bytes().await?;
            latencies.push(t.elapsed());
        }
        all.extend_from_slice(&latencies);
        let (p50, p99, max) = percentiles(&mut latencies);
        if path == PAGES[0] {
            overview = (p50, p99, max);
        }
        figures.insert(path.into(), json!({"p50_ms": p50, "p99_ms": p99, "max_ms": max}));
    }
    let total: Duration = all.iter().sum();
    Ok(Row {
        scenario: "console".into(),
        count: all.len(),
        per_second: all.len() as f64 / total.as_secs_f64(),
        latency_ms: overview,
        relay: Some(relay.stats()),
        extra: json!({
            "logs": s.logs,
            "requests_per_page": REQUESTS,
            "rollup_catch_up_secs": catch_up.as_secs_f64(),
            "pages": figures,
            "table_latency_is": "/console/overview",
        }),
    })
}

/// The overview's count of the last day's calls.
fn day_calls(page: &str) -> Option<i64> {
    let at = page.find("id=\"day-calls\">")? + "id=\"day-calls\">".len();
    page[at..].split('<').next()?.trim().parse().ok()
}

/// Signs in as a browser does: the sign-in page's token cookie and field, then the form.
/// The session's `Cookie` header value.
async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let url = format!("{base}/console/sign-in");
    let page = http.get(&url).send().await?.error_for_status()?;
    let token_cookie = first_cookie(page.headers(), "hr_sign_in=").context("no sign-in token")?;
    let text = page.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let at = text.find(marker).context("no token in the sign-in form")? + marker.len();
    let token = text.get(at..at + 64).context("a short sign-in token")?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", token)
        .append_pair("key", KEY)
        .finish();
    let signed = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", token_cookie)
        .body(form)
        .send()
        .await?;
    first_cookie(signed.headers(), "hr_console=").context("sign-in set no cookie")
}

/// The `name=value` of the first `Set-Cookie` starting with `prefix`.
fn first_cookie(headers: &reqwest::header::HeaderMap, prefix: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with(prefix))
        .find_map(|v| v.split(';').next().map(String::from))
}
