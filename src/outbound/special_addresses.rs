//! Which addresses are globally reachable unicast: the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries (RFC 6890, updated by RFC 8190) transcribed row by row with their
//! "Globally Reachable" column, the few blocks those registries leave out that are not
//! unicast on the internet either, and the IPv6 prefixes that embed an IPv4 address.
//!
//! Within a table the most specific block holding an address decides (`192.0.0.9/32`, PCP
//! anycast, is global inside the non-global `192.0.0.0/24`). Only `Reach::Global` is
//! reachable: a registry `N/A` (6to4, Teredo, deprecated blocks) counts as not global.
//! Rows up to RFC 9780 (IPv6 Dummy Prefix); a row IANA adds later belongs here and in the
//! tests' independent transcription.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The registry's "Globally Reachable" column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// `True`: forwardable beyond the administrative domain.
    Global,
    /// `False`.
    NotGlobal,
    /// `N/A` (tunnelling prefixes, deprecated blocks).
    NotApplicable,
}

/// One block of a table.
#[derive(Debug)]
pub struct Block<A> {
    /// First address of the block.
    pub network: A,
    /// Prefix length.
    pub prefix_len: u8,
    /// The registry's name for it.
    pub name: &'static str,
    /// Where it is defined.
    pub rfc: &'static str,
    /// Whether a call may go there.
    pub reach: Reach,
}

/// An address family the tables hold, as bits for prefix matching.
pub trait Address: Copy {
    /// Address width.
    const BITS: u32;
    /// The address as an integer.
    fn bits(self) -> u128;
}

impl Address for Ipv4Addr {
    const BITS: u32 = 32;
    fn bits(self) -> u128 {
        u32::from(self).into()
    }
}

impl Address for Ipv6Addr {
    const BITS: u32 = 128;
    fn bits(self) -> u128 {
        u128::from(self)
    }
}

impl<A: Address> Block<A> {
    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: A) -> bool {
        let host_bits = A::BITS - u32::from(self.prefix_len);
        (ip.bits() ^ self.network.bits()).checked_shr(host_bits).unwrap_or(0) == 0
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix_len: u8) -> (Ipv4Addr, u8) {
    (Ipv4Addr::new(a, b, c, d), prefix_len)
}

const fn v6(segments: [u16; 8], prefix_len: u8) -> (Ipv6Addr, u8) {
    let [a, b, c, d, e, f, g, h] = segments;
    (Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix_len)
}

const fn row<A: Copy>(
    (network, prefix_len): (A, u8),
    name: &'static str,
    rfc: &'static str,
    reach: Reach,
) -> Block<A> {
    Block { network, prefix_len, name, rfc, reach }
}

use Reach::{Global, NotApplicable, NotGlobal};

/// The IANA IPv4 Special-Purpose Address Registry, every row.
pub const IPV4_REGISTRY: &[Block<Ipv4Addr>] = &[
    row(v4(0, 0, 0, 0, 8), "This network", "RFC 791", NotGlobal),
    row(v4(0, 0, 0, 0, 32), "This host on this network", "RFC 1122", NotGlobal),
    row(v4(10, 0, 0, 0, 8), "Private-Use", "RFC 1918", NotGlobal),
    row(v4(100, 64, 0, 0, 10), "Shared Address Space", "RFC 6598", NotGlobal),
    row(v4(127, 0, 0, 0, 8), "Loopback", "RFC 1122", NotGlobal),
    row(v4(169, 254, 0, 0, 16), "Link Local", "RFC 3927", NotGlobal),
    row(v4(172, 16, 0, 0, 12), "Private-Use", "RFC 1918", NotGlobal),
    row(v4(192, 0, 0, 0, 24), "IETF Protocol Assignments", "RFC 6890", NotGlobal),
    row(v4(192, 0, 0, 0, 29), "IPv4 Service Continuity Prefix", "RFC 7335", NotGlobal),
    row(v4(192, 0, 0, 8, 32), "IPv4 dummy address", "RFC 7600", NotGlobal),
    row(v4(192, 0, 0, 9, 32), "Port Control Protocol Anycast", "RFC 7723", Global),
    row(v4(192, 0, 0, 10, 32), "Traversal Using Relays around NAT Anycast", "RFC 8155", Global),
    row(v4(192, 0, 0, 170, 32), "NAT64/DNS64 Discovery", "RFC 8880", NotGlobal),
    row(v4(192, 0, 0, 171, 32), "NAT64/DNS64 Discovery", "RFC 8880", NotGlobal),
    row(v4(192, 0, 2, 0, 24), "Documentation (TEST-NET-1)", "RFC 5737", NotGlobal),
    row(v4(192, 31, 196, 0, 24), "AS112-v4", "RFC 7535", Global),
    row(v4(192, 52, 193, 0, 24), "AMT", "RFC 7450", Global),
    row(v4(192, 88, 99, 0, 24), "Deprecated (6to4 Relay Anycast)", "RFC 7526", NotApplicable),
    row(v4(192, 88, 99, 2, 32), "6a44-relay anycast address", "RFC 6751", NotGlobal),
    row(v4(192, 168, 0, 0, 16), "Private-Use", "RFC 1918", NotGlobal),
    row(v4(192, 175, 48, 0, 24), "Direct Delegation AS112 Service", "RFC 7534", Global),
    row(v4(198, 18, 0, 0, 15), "Benchmarking", "RFC 2544", NotGlobal),
    row(v4(198, 51, 100, 0, 24), "Documentation (TEST-NET-2)", "RFC 5737", NotGlobal),
    row(v4(203, 0, 113, 0, 24), "Documentation (TEST-NET-3)", "RFC 5737", NotGlobal),
    row(v4(240, 0, 0, 0, 4), "Reserved", "RFC 1112", NotGlobal),
    row(v4(255, 255, 255, 255, 32), "Limited Broadcast", "RFC 919", NotGlobal),
];

/// IPv4 outside the special-purpose registry: multicast (its own registry) is not unicast.
pub const IPV4_OTHER: &[Block<Ipv4Addr>] =
    &[row(v4(224, 0, 0, 0, 4), "Multicast", "RFC 5771", NotGlobal)];

/// Any other IPv4 address: ordinary unicast.
static IPV4_ANY: Block<Ipv4Addr> = row(v4(0, 0, 0, 0, 0), "unicast", "RFC 791", Global);

/// The IANA IPv6 Special-Purpose Address Registry, every row.
pub const IPV6_REGISTRY: &[Block<Ipv6Addr>] = &[
    row(v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "Loopback Address", "RFC 4291", NotGlobal),
    row(v6([0; 8], 128), "Unspecified Address", "RFC 4291", NotGlobal),
    row(v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), "IPv4-mapped Address", "RFC 4291", NotGlobal),
    row(v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), "IPv4-IPv6 Translat.", "RFC 6052", Global),
    row(v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), "IPv4-IPv6 Translat.", "RFC 8215", NotGlobal),
    row(v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), "Discard-Only Address Block", "RFC 6666", NotGlobal),
    row(v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64), "Dummy IPv6 Prefix", "RFC 9780", NotGlobal),
    row(v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), "IETF Protocol Assignments", "RFC 2928", NotGlobal),
    row(v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "TEREDO", "RFC 4380", NotApplicable),
    row(
        v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),
        "Port Control Protocol Anycast",
        "RFC 7723",
        Global,
    ),
    row(
        v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
        "Traversal Using Relays around NAT Anycast",
        "RFC 8155",
        Global,
    ),
    row(
        v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128),
        "DNS-SD Service Registration Protocol Anycast",
        "RFC 9665",
        Global,
    ),
    row(v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), "Benchmarking", "RFC 5180", NotGlobal),
    row(v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32), "AMT", "RFC 7450", Global),
    row(v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48), "AS112-v6", "RFC 7535", Global),
    row(
        v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),
        "Deprecated (previously ORCHID)",
        "RFC 4843",
        NotApplicable,
    ),
    row(v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), "ORCHIDv2", "RFC 7343", Global),
    row(
        v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),
        "Drone Remote ID Protocol Entity Tags (DETs) Prefix",
        "RFC 9374",
        Global,
    ),
    row(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "Documentation", "RFC 3849", NotGlobal),
    row(v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4", "RFC 3056", NotApplicable),
    row(
        v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48),
        "Direct Delegation AS112 Service",
        "RFC 7534",
        Global,
    ),
    row(v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "Documentation", "RFC 9637", NotGlobal),
    row(
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "Segment Routing (SRv6) SIDs",
        "RFC 9602",
        NotGlobal,
    ),
    row(v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "Unique-Local", "RFC 4193", NotGlobal),
    row(v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "Link-Local Unicast", "RFC 4291", NotGlobal),
];

/// IPv6 outside the special-purpose registry: only 2000::/3 is global unicast (IANA IPv6
/// Address Space); the rest is multicast, deprecated or unassigned. The transition
/// prefixes that are not registry rows are named, so a refusal says what they are.
pub const IPV6_OTHER: &[Block<Ipv6Addr>] = &[
    row(v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3), "global unicast", "RFC 4291", Global),
    row(v6([0; 8], 96), "IPv4-compatible Address (deprecated)", "RFC 4291", NotGlobal),
    row(
        v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
        "SIIT IPv4-translated Address",
        "RFC 2765",
        NotGlobal,
    ),
    row(v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "Site-Local (deprecated)", "RFC 3879", NotGlobal),
    row(v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "Multicast", "RFC 4291", NotGlobal),
];

/// Any other IPv6 address: not in 2000::/3, so not global unicast.
static IPV6_ANY: Block<Ipv6Addr> =
    row(v6([0; 8], 0), "outside global unicast 2000::/3", "RFC 4291", NotGlobal);

/// The most specific block of `tables` holding `ip`, or `any` when none does.
fn block_of<A: Address>(
    ip: A,
    tables: [&'static [Block<A>]; 2],
    any: &'static Block<A>,
) -> &'static Block<A> {
    tables.into_iter().flatten().filter(|b| b.contains(ip)).fold(any, |best, b| {
        if b.prefix_len > best.prefix_len {
            b
        } else {
            best
        }
    })
}

/// The block deciding an IPv4 address.
pub fn ipv4_block(ip: Ipv4Addr) -> &'static Block<Ipv4Addr> {
    block_of(ip, [IPV4_REGISTRY, IPV4_OTHER], &IPV4_ANY)
}

/// The block deciding an IPv6 address (before the IPv4 it embeds, if any).
pub fn ipv6_block(ip: Ipv6Addr) -> &'static Block<Ipv6Addr> {
    block_of(ip, [IPV6_REGISTRY, IPV6_OTHER], &IPV6_ANY)
}

/// The IPv4 addresses an IPv6 address carries, each with its role: a packet to the IPv6
/// address may end up at them (the host's own stack for mapped and compatible addresses,
/// a translator for SIIT and NAT64, a tunnel for 6to4 and Teredo).
///
/// The local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215) is not decoded: its operator
/// picks any RFC 6052 prefix length inside the /48, so the address alone does not say
/// where the IPv4 part sits. The whole /48 is refused (the registry marks it not global).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Vec<(&'static str, Ipv4Addr)> {
    let s = ip.segments();
    let low32 = Ipv4Addr::from(u128::from(ip) as u32);
    let from = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match s {
        // IPv4-mapped ::ffff:0:0/96 (RFC 4291), SIIT ::ffff:0:0:0/96 (RFC 2765), NAT64
        // well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits.
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => vec![("embeds", low32)],
        // IPv4-compatible ::/96 (RFC 4291 §2.5.5.1); :: and ::1 are addresses of their own.
        [0, 0, 0, 0, 0, 0, _, _] if u32::from(low32) > 1 => vec![("embeds", low32)],
        // 6to4 2002::/16 (RFC 3056): bits 16-47.
        [0x2002, high, low, ..] => vec![("embeds", from(high, low))],
        // Teredo 2001::/32 (RFC 4380 §4): server in bits 32-63, client in the last 32 bits
        // with every bit inverted.
        [0x2001, 0, server_high, server_low, ..] => vec![
            ("Teredo server", from(server_high, server_low)),
            ("Teredo client", Ipv4Addr::from(!u32::from(low32))),
        ],
        _ => Vec::new(),
    }
}

/// Why `ip` is not globally reachable unicast, or `None` when it is. An IPv6 address is
/// refused when its own block is not global or when an IPv4 address it embeds is refused.
pub fn refusal(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => {
            let block = ipv6_block(v6);
            let mut reasons = Vec::new();
            if block.reach != Global {
                reasons.push(format!("{} ({})", block.name, block.rfc));
            }
            for (role, embedded) in embedded_ipv4(v6) {
                if let Some(reason) = refusal_v4(embedded) {
                    reasons.push(format!("{role} {embedded}: {reason}"));
                }
            }
            (!reasons.is_empty()).then(|| reasons.join("; "))
        }
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<String> {
    let block = ipv4_block(ip);
    (block.reach != Global).then(|| format!("{} ({})", block.name, block.rfc))
}

#[cfg(test)]
#[path = "special_addresses_tests.rs"]
mod tests;
