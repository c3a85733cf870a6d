//! The overview page: calls per minute (succeeded / failed) over the last hour and day as
//! inline SVG charts drawn here, the success ratio, p50/p99 latency, the due backlog, the
//! automations failing most and the errors by code. Everything but the backlog (the same
//! figures `/metrics` reads) comes from the per-minute rollup (`store::rollup`), so the page
//! costs the same with a million logs as with ten.
//!
//! The figures are computed at most once per [`FRESH_FOR`] and shared by every viewer
//! ([`SharedFigures`]), their reads run side by side: under a saturated CPU each read waits
//! its turn for a thread, so a page of a dozen reads one after another took a dozen waits.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::future::try_join_all;
use serde_json::{json, Value};

use super::session::Signed;
use super::Console;
use crate::ids::AutomationId;
use crate::outbound::ErrorCode;
use crate::store::{Latency, LatencyBound, MinuteCounts, StoreError, MINUTE_MS};
use crate::time::UnixMs;

/// Automations listed under "failing most".
const FAILING: usize = 10;
/// Height of both charts' plot area, in SVG units.
const PLOT_HEIGHT: f64 = 120.0;
/// Width of one minute in the hour chart (its bar and gap), in SVG units.
const HOUR_SLOT: f64 = 10.0;

/// How long one computation of the figures is shown: the rollup counts a pass every 2 s and
/// its figures are per minute, so a viewer loses nothing; the backlog is as old at most.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// The overview's figures, computed at most once per [`FRESH_FOR`] and shared by every viewer
/// and role (they hold nothing a viewer may not see). Viewers arriving while they are computed
/// wait for that computation rather than starting their own.
#[derive(Default)]
pub(super) struct SharedFigures(tokio::sync::Mutex<Option<(Instant, Arc<Value>)>>);

impl SharedFigures {
    /// The figures computed less than [`FRESH_FOR`] ago, or new ones.
    async fn get(&self, console: &Console) -> Result<Arc<Value>, StoreError> {
        let mut shared = self.0.lock().await;
        if let Some((at, figures)) = shared.as_ref() {
            if at.elapsed() < FRESH_FOR {
                return Ok(figures.clone());
            }
        }
        let figures = Arc::new(figures(console).await?);
        *shared = Some((Instant::now(), figures.clone()));
        Ok(figures)
    }
}

/// The overview, for any signed-in role.
pub(super) async fn show(State(console): State<Console>, signed: Signed) -> Response {
    match console.overview.get(&console).await {
        Ok(figures) => {
            let mut context = Value::clone(&figures);
            context["session"] = signed.context();
            console.pages.render(StatusCode::OK, "overview.html", &context)
        }
        Err(e) => console.failed(e),
    }
}

/// Every figure of the page; its reads run side by side.
async fn figures(console: &Console) -> Result<Value, StoreError> {
    let store = &console.app.store;
    let now = UnixMs::now();
    let (overview, (pending, due), oldest_due) =
        tokio::try_join!(store.overview(now, FAILING), store.backlog(), store.oldest_due_at())?;
    let this_minute = now.as_ms().div_euclid(MINUTE_MS);
    let day = per_minute(&overview.minutes, this_minute, 24 * 60);
    let hour = &day[day.len() - 60..];
    let names =
        try_join_all(overview.failing.iter().map(|h| name_of(console, &h.automation_id))).await?;
    let failing: Vec<Value> = overview
        .failing
        .iter()
        .zip(names)
        .map(|(health, name)| {
            json!({
                "id": health.automation_id,
                "name": name,
                "failed": health.failed,
                "succeeded": health.succeeded,
                "ratio": ratio(health.succeeded, health.failed),
                "last_error_code": health.last_error_code,
            })
        })
        .collect();
    let errors: Vec<Value> = overview
        .errors
        .iter()
        .map(|(code, n)| {
            let meaning = ErrorCode::parse(code).map(ErrorCode::meaning);
            json!({"code": code, "count": n, "meaning": meaning})
        })
        .collect();
    Ok(json!({
        "hour": totals(hour, &overview.latency_hour),
        "day": totals(&day, &overview.latency_day),
        "hour_chart": hour_chart(hour, this_minute),
        "day_chart": day_chart(&day),
        "backlog": {
            "due": due,
            "pending": pending,
            "oldest_due_secs": oldest_due.map(|at| now.since(at).max(0) / 1000),
        },
        "failing": failing,
        "errors": errors,
        "counted_until": overview.counted_until.map(UnixMs::rfc3339),
    }))
}

/// The automation's name, or `None` once it is deleted (its calls still count).
async fn name_of(console: &Console, id: &AutomationId) -> Result<Option<String>, StoreError> {
    match console.app.store.automation(id.clone()).await {
        Ok(a) => Ok(Some(a.settings.name)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The last `n` minutes up to `this_minute`, oldest first, with the minutes without calls.
fn per_minute(counted: &[MinuteCounts], this_minute: i64, n: i64) -> Vec<MinuteCounts> {
    let first = this_minute - n + 1;
    let mut all: Vec<MinuteCounts> =
        (first..=this_minute).map(|minute| MinuteCounts { minute, ..Default::default() }).collect();
    for m in counted {
        if let Some(slot) = usize::try_from(m.minute - first).ok().and_then(|i| all.get_mut(i)) {
            *slot = *m;
        }
    }
    all
}

/// A window's figures: counts, success ratio, p50 and p99.
fn totals(minutes: &[MinuteCounts], latency: &Latency) -> Value {
    let succeeded: i64 = minutes.iter().map(|m| m.succeeded).sum();
    let failed: i64 = minutes.iter().map(|m| m.failed).sum();
    json!({
        "succeeded": succeeded,
        "failed": failed,
        "calls": succeeded + failed,
        "ratio": ratio(succeeded, failed),
        "p50": latency.percentile(0.5).map(bound_text),
        "p99": latency.percentile(0.99).map(bound_text),
    })
}

/// "97.5 %", `None` without calls. Rounded to a tenth, except that a failure never shows
/// as 100.0 % and a success never as 0.0 % (11 failures in 26,011 calls are 99.9 %).
pub(super) fn ratio(succeeded: i64, failed: i64) -> Option<String> {
    let total = succeeded + failed;
    (total > 0).then(|| {
        let tenths = (succeeded as f64 * 1000.0 / total as f64).round() as i64;
        let tenths = match (succeeded, failed) {
            (_, f) if f > 0 && tenths == 1000 => 999,
            (s, _) if s > 0 && tenths == 0 => 1,
            _ => tenths,
        };
        format!("{}.{} %", tenths / 10, tenths % 10)
    })
}

/// A percentile as the bucket it fell in: "≤ 50 ms", "> 30 s".
fn bound_text(bound: LatencyBound) -> String {
    let ms = |v: f64| if v >= 1000.0 { format!("{} s", v / 1000.0) } else { format!("{v} ms") };
    match bound {
        LatencyBound::AtMost(v) => format!("≤ {}", ms(v)),
        LatencyBound::Above(v) => format!("> {}", ms(v)),
    }
}

/// The height of `n` calls on a plot whose top is `max` calls.
fn height(n: i64, max: i64) -> f64 {
    if max == 0 {
        return 0.0;
    }
    (n as f64 * PLOT_HEIGHT / max as f64 * 100.0).round() / 100.0
}

/// An SVG coordinate as Rust spells it: "120", "59.5" (a JSON float would render "120.0").
fn num(v: f64) -> String {
    v.to_string()
}

/// "HH:MM" (UTC) of a minute.
fn clock(minute: i64) -> String {
    let minutes_of_day = minute.rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes_of_day / 60, minutes_of_day % 60)
}

/// One stacked bar per minute (succeeded below, failed above; an empty one is not drawn),
/// each with its numbers as a title, for the hour chart.
fn hour_chart(minutes: &[MinuteCounts], this_minute: i64) -> Value {
    let max = minutes.iter().map(|m| m.succeeded + m.failed).max().unwrap_or(0);
    let bars: Vec<Value> = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (ok, bad) = (height(m.succeeded, max), height(m.failed, max));
            json!({
                "x": num(i as f64 * HOUR_SLOT),
                "ok_y": num(PLOT_HEIGHT - ok), "ok_h": (ok > 0.0).then(|| num(ok)),
                "bad_y": num(PLOT_HEIGHT - ok - bad), "bad_h": (bad > 0.0).then(|| num(bad)),
                "title": format!("{} UTC: {} succeeded, {} failed", clock(m.minute),
                                 m.succeeded, m.failed),
            })
        })
        .collect();
    json!({
        "width": num(minutes.len() as f64 * HOUR_SLOT),
        "height": num(PLOT_HEIGHT),
        "bar_width": num(HOUR_SLOT - 2.0),
        "max": max,
        "bars": bars,
        "from": clock(this_minute - 59),
        "to": clock(this_minute),
    })
}

/// Two step areas, one unit per minute: all calls (drawn as failed) and, over it, the
/// succeeded ones; the failed show as the band between them.
fn day_chart(minutes: &[MinuteCounts]) -> Value {
    let max = minutes.iter().map(|m| m.succeeded + m.failed).max().unwrap_or(0);
    let path = |value: &dyn Fn(&MinuteCounts) -> i64| {
        let mut d = format!("M0,{PLOT_HEIGHT}");
        let mut last = PLOT_HEIGHT;
        for (i, m) in minutes.iter().enumerate() {
            let y = PLOT_HEIGHT - height(value(m), max);
            if y != last {
                let _ = write!(d, "H{i}V{y}");
                last = y;
            }
        }
        let _ = write!(d, "H{}V{PLOT_HEIGHT}Z", minutes.len());
        d
    };
    json!({
        "width": minutes.len(),
        "height": num(PLOT_HEIGHT),
        "max": max,
        "all_path": path(&|m| m.succeeded + m.failed),
        "ok_path": path(&|m| m.succeeded),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_minutes_are_zero_and_the_window_ends_now() {
        let counted = [MinuteCounts { minute: 98, succeeded: 3, failed: 1 }];
        let all = per_minute(&counted, 100, 5);
        assert_eq!(all.iter().map(|m| m.minute).collect::<Vec<_>>(), vec![96, 97, 98, 99, 100]);
        assert_eq!((all[2].succeeded, all[2].failed), (3, 1));
        assert_eq!(all[0].succeeded + all[4].failed, 0);
    }

    #[test]
    fn the_day_chart_is_a_step_path_that_changes_only_where_the_counts_do() {
        let minutes = per_minute(&[MinuteCounts { minute: 2, succeeded: 2, failed: 2 }], 3, 4);
        let chart = day_chart(&minutes);
        assert_eq!(chart["all_path"], "M0,120H2V0H3V120H4V120Z");
        assert_eq!(chart["ok_path"], "M0,120H2V60H3V120H4V120Z");
        assert_eq!(bound_text(LatencyBound::AtMost(1500.0)), "≤ 1.5 s");
        assert_eq!(ratio(3, 1).as_deref(), Some("75.0 %"));
        assert_eq!(ratio(26_000, 11).as_deref(), Some("99.9 %"), "a failure is not 100 %");
        assert_eq!(ratio(1, 26_000).as_deref(), Some("0.1 %"), "a success is not 0 %");
        assert_eq!(ratio(5, 0).as_deref(), Some("100.0 %"));
        assert_eq!(ratio(0, 5).as_deref(), Some("0.0 %"));
        assert_eq!(ratio(2, 1).as_deref(), Some("66.7 %"));
    }
}
