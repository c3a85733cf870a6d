//! `[security]`: which addresses outgoing calls may reach, and static host pins.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::{bad, ConfigError};
use crate::redact::HeaderRedaction;

/// Which addresses outgoing calls may reach.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Allow every address, not only globally reachable unicast (off by default).
    pub allow_private_targets: bool,
    /// Networks allowed even when `allow_private_targets` is false, e.g. `["10.1.0.0/16"]`;
    /// matched against the address connected to, not an IPv4 address it embeds.
    pub allowed_cidrs: Vec<IpNet>,
    /// Static host → address pins, consulted before DNS (like curl's `--resolve` or Docker's
    /// `extra_hosts`): `resolve = { "api.internal" = "10.1.2.3" }`. Host names are stored
    /// lowercased; a pinned address still has to pass the guard. Filled from the file's
    /// `resolve` by [`SecurityConfig::read_written`].
    #[serde(skip)]
    pub resolve: BTreeMap<String, IpAddr>,
    /// `redact_headers`: header names (whole, any case) whose values are shown as
    /// `[REDACTED]` in addition to the built-in rule of [`crate::redact`]. Filled from the
    /// file's `redact_headers` by [`SecurityConfig::read_written`].
    #[serde(skip)]
    pub redact_headers: HeaderRedaction,
    /// `resolve` as written, host → address text.
    #[serde(rename = "resolve")]
    resolve_written: BTreeMap<String, String>,
    /// `redact_headers` as written.
    #[serde(rename = "redact_headers")]
    redact_headers_written: Vec<String>,
}

impl SecurityConfig {
    /// Reads the written host pins and header names into [`Self::resolve`] and
    /// [`Self::redact_headers`]. Every key a DNS name (not an IP literal, which never reaches
    /// the resolver), every value an IP address, every header name valid; the error's key
    /// names the entry.
    pub(super) fn read_written(&mut self) -> Result<(), ConfigError> {
        for (i, name) in self.redact_headers_written.iter().enumerate() {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                let key = format!("security.redact_headers[{i}]");
                return Err(bad(&key, format!("`{name}` is not a valid header name")));
            }
        }
        self.redact_headers = HeaderRedaction::with_names(self.redact_headers_written.clone());
        let mut pins = BTreeMap::new();
        for (host, address) in &self.resolve_written {
            let key = format!("security.resolve.\"{host}\"");
            let name = match url::Host::parse(host) {
                Ok(url::Host::Domain(name)) if !name.is_empty() && !name.ends_with('.') => name,
                Ok(_) => {
                    let problem =
                        "pin a host name, not an IP address (IP hosts are never resolved)";
                    return Err(bad(&key, problem));
                }
                Err(e) => return Err(bad(&key, format!("not a host name: {e}"))),
            };
            let ip: IpAddr = address
                .trim()
                .parse()
                .map_err(|_| bad(&key, format!("`{address}` is not an IPv4 or IPv6 address")))?;
            if pins.insert(name, ip).is_some() {
                return Err(bad(&key, "the host is pinned twice"));
            }
        }
        self.resolve = pins;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn redact_headers_add_names_and_bad_ones_are_named() {
        let c = Config::from_toml("[security]\nredact_headers = [\"X-Tenant\"]\n").unwrap();
        assert!(c.security.redact_headers.is_secret("x-tenant"));
        assert!(!Config::from_toml("").unwrap().security.redact_headers.is_secret("x-tenant"));
        for (toml, key) in [
            ("[\"ok\", \"bad name\"]", "security.redact_headers[1]"),
            ("\"x-tenant\"", "security.redact_headers"),
        ] {
            let e =
                Config::from_toml(&format!("[security]\nredact_headers = {toml}\n")).unwrap_err();
            assert_eq!(e.key, key, "{toml}: {e}");
        }
    }

    #[test]
    fn host_pins_are_parsed_and_bad_ones_named() {
        let c = Config::from_toml(
            "[security]\nresolve = { \"API.Example\" = \"10.1.2.3\", \"v6.example\" = \"fd00::1\" }\n",
        )
        .unwrap();
        assert_eq!(c.security.resolve.get("api.example"), Some(&"10.1.2.3".parse().unwrap()));
        assert_eq!(c.security.resolve.get("v6.example"), Some(&"fd00::1".parse().unwrap()));
        for (toml, key) in [
            ("{ \"a.example\" = \"nope\" }", "security.resolve.\"a.example\""),
            ("{ \"127.1\" = \"10.0.0.1\" }", "security.resolve.\"127.1\""),
            ("{ \"[::1]\" = \"10.0.0.1\" }", "security.resolve.\"[::1]\""),
            ("{ \"a b\" = \"10.0.0.1\" }", "security.resolve.\"a b\""),
            ("{ \"\" = \"10.0.0.1\" }", "security.resolve.\"\""),
            ("{ \"x.example.\" = \"10.0.0.1\" }", "security.resolve.\"x.example.\""),
            ("{ \"A.example\" = \"10.0.0.1\", \"a.example\" = \"10.0.0.2\" }", "security.resolve."),
            ("[\"a.example=10.0.0.1\"]", "security.resolve"),
        ] {
            let e = Config::from_toml(&format!("[security]\nresolve = {toml}\n")).unwrap_err();
            assert!(e.key.starts_with(key), "{toml}: key {:?} ({e})", e.key);
        }
    }
}
