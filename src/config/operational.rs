//! `[operational]`: the automatic disable of a failing automation, and the operational
//! webhooks that tell its owner about failing deliveries and disabled endpoints.

use serde::Deserialize;

use super::{bad, ConfigError};
use crate::delivery::signing::is_valid_secret;

/// Longest `disable_after_hours`: a year. Past that the setting means "never", which is 0.
const MAX_DISABLE_AFTER_HOURS: f64 = 8760.0;
/// Most `failing_after_attempts`: more than any retry schedule makes.
const MAX_FAILING_AFTER_ATTEMPTS: u32 = 1000;

/// Endpoint health and operational webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperationalConfig {
    /// An automation whose every attempt has failed for this many hours is disabled (with a
    /// recorded event); 0 = never. Fractions are allowed (0.001 h = 3.6 s).
    pub disable_after_hours: f64,
    /// Where operational webhooks go (`None`: none are sent).
    pub webhook_url: Option<String>,
    /// Their `whsec_…` signing secret; `None` keeps the stored one (a new one is generated
    /// the first time, read with `GET …/endpoints/{id}/secret`).
    pub secret: Option<String>,
    /// `message.attempt.failing` is sent when a delivery's attempt with this number fails.
    pub failing_after_attempts: u32,
}

impl Default for OperationalConfig {
    fn default() -> Self {
        Self {
            disable_after_hours: 120.0,
            webhook_url: None,
            secret: None,
            failing_after_attempts: 4,
        }
    }
}

impl OperationalConfig {
    /// `disable_after_hours` in milliseconds; `None` for never (0).
    pub fn disable_after_ms(&self) -> Option<i64> {
        // In range (validated): at most a year of milliseconds, which fits an i64.
        (self.disable_after_hours > 0.0).then_some((self.disable_after_hours * 3_600_000.0) as i64)
    }

    /// Rejects values that parse but cannot work.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let hours = self.disable_after_hours;
        if !(hours.is_finite() && (0.0..=MAX_DISABLE_AFTER_HOURS).contains(&hours)) {
            return Err(bad(
                "operational.disable_after_hours",
                format!("must be 0 (never) or a number of hours up to {MAX_DISABLE_AFTER_HOURS}"),
            ));
        }
        if self.disable_after_ms() == Some(0) {
            return Err(bad("operational.disable_after_hours", "must be at least 0.000001 (or 0)"));
        }
        if !(1..=MAX_FAILING_AFTER_ATTEMPTS).contains(&self.failing_after_attempts) {
            return Err(bad(
                "operational.failing_after_attempts",
                format!("must be between 1 and {MAX_FAILING_AFTER_ATTEMPTS}"),
            ));
        }
        if let Some(url) = &self.webhook_url {
            let parsed = url::Url::parse(url).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.username().is_empty()
                    && u.password().is_none()
            });
            if parsed.is_none() || url.trim() != url {
                return Err(bad(
                    "operational.webhook_url",
                    "must be an absolute http:// or https:// URL with a host (no credentials)",
                ));
            }
        }
        if self.secret.as_deref().is_some_and(|s| !is_valid_secret(s)) {
            return Err(bad("operational.secret", "must be a whsec_ secret of at least 16 bytes"));
        }
        if self.secret.is_some() && self.webhook_url.is_none() {
            return Err(bad("operational.secret", "is set without operational.webhook_url"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change to a valid configuration.
    type Change = fn(&mut OperationalConfig);

    #[test]
    fn bad_values_name_their_key() {
        let cases: [(&str, Change); 6] = [
            ("operational.disable_after_hours", |c| c.disable_after_hours = -1.0),
            ("operational.disable_after_hours", |c| c.disable_after_hours = 9000.0),
            ("operational.disable_after_hours", |c| c.disable_after_hours = f64::NAN),
            ("operational.failing_after_attempts", |c| c.failing_after_attempts = 0),
            ("operational.webhook_url", |c| c.webhook_url = Some("ftp://x.example/".into())),
            ("operational.secret", |c| {
                c.webhook_url = Some("https://x.example/".into());
                c.secret = Some("nope".into());
            }),
        ];
        for (key, change) in cases {
            let mut c = OperationalConfig::default();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().key, key);
        }
        let mut c = OperationalConfig { disable_after_hours: 0.001, ..Default::default() };
        c.webhook_url = Some("http://127.0.0.1:9/ops".into());
        c.validate().unwrap();
        assert_eq!(c.disable_after_ms(), Some(3600));
        c.disable_after_hours = 0.0;
        assert_eq!(c.disable_after_ms(), None);
    }
}
