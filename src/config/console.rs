//! `[console]`: the operator console's sessions.

use serde::Deserialize;

use super::{bad, ConfigError};

/// Longest session lifetime, seconds (30 days): a console session is a key in a cookie, so it
/// must end; one that outlives a month is a key left signed in on some machine.
const MAX_SESSION_SECS: u64 = 30 * 86_400;

/// Settings of the console at `/console`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A session unused for this long (seconds) ends.
    pub session_idle_secs: u64,
    /// A session ends this long (seconds) after sign-in, however much it is used.
    pub session_absolute_secs: u64,
    /// Whether `X-Forwarded-Proto: https` (set by a TLS-terminating proxy in front) makes
    /// the session cookie `Secure`. Only for a server reachable through that proxy alone:
    /// anyone else could send the header.
    pub trust_forwarded_proto: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 1800,
            session_absolute_secs: 43_200,
            trust_forwarded_proto: false,
        }
    }
}

impl ConsoleConfig {
    /// Rejects values that parse but cannot work.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let windows = [
            ("console.session_idle_secs", self.session_idle_secs),
            ("console.session_absolute_secs", self.session_absolute_secs),
        ];
        for (key, secs) in windows {
            if secs == 0 || secs > MAX_SESSION_SECS {
                return Err(bad(
                    key,
                    format!("must be between 1 and {MAX_SESSION_SECS} (30 days)"),
                ));
            }
        }
        if self.session_idle_secs > self.session_absolute_secs {
            return Err(bad(
                "console.session_idle_secs",
                "must not exceed console.session_absolute_secs (a session never outlives it)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn session_windows_are_checked_and_named() {
        let cases = [
            ("session_idle_secs = 0", "console.session_idle_secs"),
            ("session_absolute_secs = 2592001", "console.session_absolute_secs"),
            ("session_idle_secs = 100\nsession_absolute_secs = 50", "console.session_idle_secs"),
        ];
        for (toml, key) in cases {
            let config = Config::from_toml(&format!("[console]\n{toml}\n")).expect("parses");
            assert_eq!(config.validate().expect_err(toml).key, key, "{toml}");
        }
        let fine = "[console]\nsession_idle_secs = 1\nsession_absolute_secs = 1\n";
        Config::from_toml(fine).expect("parses").validate().expect("valid");
        let e =
            Config::from_toml("[console]\ntrust_forwarded_proto = \"yes\"\n").expect_err("bool");
        assert_eq!(e.key, "console.trust_forwarded_proto");
    }
}
