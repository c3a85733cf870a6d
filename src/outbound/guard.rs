//! SSRF guard: outgoing calls may only reach globally reachable unicast addresses (see
//! [`special_addresses`]: loopback, private, link-local, CGNAT, metadata, documentation,
//! multicast and the IPv6 transition prefixes embedding such addresses are refused) unless
//! the configuration opens them. It filters what DNS (or a `security.resolve` pin) returns,
//! so the connection can only use an allowed address; literal IP hosts, which never reach
//! the resolver, are checked by the sender. Redirects are never followed, and one whose target the guard would refuse
//! is reported as such ([`TargetPolicy::refuses_host`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use super::special_addresses;
use crate::config::SecurityConfig;

/// Which addresses are reachable.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    allow_private: bool,
    allowed: Vec<IpNet>,
    /// `security.resolve`: lowercased host name → pinned address.
    pins: BTreeMap<String, IpAddr>,
}

/// Longest DNS lookup made to judge a redirect's target (the call itself is already over).
const REDIRECT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// A boxed resolver error, as reqwest's [`Resolve`] returns.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A refused target: recorded as `E_BLOCKED_TARGET`.
#[derive(Debug, thiserror::Error)]
#[error("target address {address} is not allowed: {reason}")]
pub struct BlockedTarget {
    /// The address (and where it came from, for names).
    pub address: String,
    /// Why: the special-purpose block it is in, or the internal IPv4 it embeds.
    pub reason: String,
}

/// Name resolution failed: recorded as `E_DNS`.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {reason}")]
pub struct DnsFailure {
    /// The name looked up.
    pub host: String,
    /// Why it failed.
    pub reason: String,
}

impl TargetPolicy {
    /// The policy of the `[security]` section.
    pub fn from_config(config: &SecurityConfig) -> Self {
        Self {
            allow_private: config.allow_private_targets,
            allowed: config.allowed_cidrs.clone(),
            pins: config.resolve.clone(),
        }
    }

    /// Why a call may not connect to `ip`, or `None` when it may: globally reachable
    /// unicast is allowed, and so is anything `allowed_cidrs` holds (matched against the
    /// address itself, not an IPv4 address it embeds) or everything when
    /// `allow_private_targets` is on.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        if self.allow_private || self.allowed.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        special_addresses::refusal(ip).map(|why| format!("{why}, not globally reachable"))
    }

    /// Whether a call may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.refusal(ip).is_none()
    }

    /// The addresses a call to `host` may use: its pin, or else what DNS answers, without
    /// the ones the policy refuses. Fails with [`BlockedTarget`] when none is left, and with
    /// [`DnsFailure`] when the name does not resolve.
    pub async fn allowed_addrs(&self, host: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let (all, origin) = match self.pins.get(&name) {
            Some(ip) => (vec![SocketAddr::new(*ip, 0)], ", pinned in security.resolve"),
            None => {
                let found = tokio::net::lookup_host((host, 0))
                    .await
                    .map_err(|e| DnsFailure { host: host.to_string(), reason: e.to_string() })?;
                (found.collect::<Vec<_>>(), "")
            }
        };
        let Some(first) = all.first() else {
            return Err(Box::new(DnsFailure { host: host.into(), reason: "no address".into() }));
        };
        let allowed: Vec<SocketAddr> =
            all.iter().copied().filter(|a| self.permits(a.ip())).collect();
        if allowed.is_empty() {
            return Err(Box::new(BlockedTarget {
                address: format!("{} (from {host}{origin})", first.ip()),
                reason: self.refusal(first.ip()).unwrap_or_default(),
            }));
        }
        Ok(allowed)
    }

    /// Whether the guard would refuse a call to the host name of `target` (a redirect's
    /// `Location`): its pin or DNS answer holds no allowed address. IP hosts are the
    /// sender's to judge (it knows its own sink); a name that does not resolve in time is
    /// not judged, since the redirect is not followed either way.
    pub async fn refuses_host(&self, target: &Url) -> Option<BlockedTarget> {
        let Some(url::Host::Domain(host)) = target.host() else { return None };
        let lookup = tokio::time::timeout(REDIRECT_LOOKUP_TIMEOUT, self.allowed_addrs(host));
        match lookup.await {
            Ok(Err(e)) => e.downcast::<BlockedTarget>().ok().map(|b| *b),
            _ => None,
        }
    }
}

/// The absolute target of a 3xx answer's `Location` header (relative ones joined to the
/// request URL); none for other answers.
pub fn redirect_target(response: &reqwest::Response) -> Option<Url> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(reqwest::header::LOCATION)?.to_str().ok()?;
    response.url().join(location.trim()).ok()
}

/// reqwest resolver that drops disallowed addresses; fails with [`BlockedTarget`] when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<TargetPolicy>,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Arc<TargetPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let allowed = policy.allowed_addrs(name.as_str()).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registries_decide_and_allowed_cidrs_open_exactly_their_networks() {
        let policy = TargetPolicy { allow_private: false, allowed: vec![], pins: BTreeMap::new() };
        for ip in ["127.0.0.1", "10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1"] {
            assert!(!policy.permits(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "64:ff9b::808:808"] {
            assert!(policy.permits(ip.parse().unwrap()), "{ip} should be allowed");
        }
        let allow_list = TargetPolicy {
            allow_private: false,
            allowed: vec!["10.1.0.0/16".parse().unwrap(), "2002:a01::/32".parse().unwrap()],
            pins: BTreeMap::new(),
        };
        assert!(allow_list.permits("10.1.2.3".parse().unwrap()));
        assert!(allow_list.permits("2002:a01:203::1".parse().unwrap()));
        assert!(!allow_list.permits("10.2.0.1".parse().unwrap()));
        assert!(!allow_list.permits("::ffff:10.1.2.3".parse().unwrap()), "not the embedded IPv4");
    }

    fn pinned(allowed: &[&str]) -> TargetPolicy {
        let pins = [("private.example", "10.0.0.1"), ("public.example", "93.184.216.34")];
        TargetPolicy {
            allow_private: false,
            allowed: allowed.iter().map(|n| n.parse().unwrap()).collect(),
            pins: pins.iter().map(|(h, ip)| (h.to_string(), ip.parse().unwrap())).collect(),
        }
    }

    #[tokio::test]
    async fn pins_replace_dns_and_still_pass_the_guard() {
        let policy = pinned(&[]);
        let public = policy.allowed_addrs("Public.Example.").await.unwrap();
        assert_eq!(public, vec!["93.184.216.34:0".parse().unwrap()]);
        let refused = policy.allowed_addrs("private.example").await.unwrap_err();
        let blocked = refused.downcast_ref::<BlockedTarget>().expect("a BlockedTarget");
        assert!(
            blocked.address.contains("10.0.0.1") && blocked.address.contains("security.resolve"),
            "{blocked}"
        );
        assert!(blocked.reason.contains("Private-Use (RFC 1918)"), "{blocked}");
        let opened = pinned(&["10.0.0.0/8"]);
        assert_eq!(opened.allowed_addrs("private.example").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn redirect_targets_are_judged_by_pin_and_dns() {
        let policy = pinned(&[]);
        let judged = |u: &str| {
            let url: Url = u.parse().unwrap();
            let policy = policy.clone();
            async move { policy.refuses_host(&url).await.is_some() }
        };
        assert!(judged("http://private.example/x").await);
        assert!(judged("http://localhost:9/x").await);
        assert!(!judged("http://public.example/x").await);
        assert!(!judged("http://10.0.0.1/x").await, "IP hosts are the sender's to judge");
        let opened: Url = "http://private.example/".parse().unwrap();
        assert!(pinned(&["10.0.0.0/8"]).refuses_host(&opened).await.is_none());
    }
}
