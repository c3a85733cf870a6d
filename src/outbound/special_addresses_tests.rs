use std::net::IpAddr;

use ipnet::IpNet;

use super::*;

/// The registries transcribed again, as CIDR text with "Globally Reachable" (`None` for
/// N/A), independently of the tables' numeric encoding.
const REGISTRY: &[(&str, Option<bool>)] = &[
    ("0.0.0.0/8", Some(false)),
    ("0.0.0.0/32", Some(false)),
    ("10.0.0.0/8", Some(false)),
    ("100.64.0.0/10", Some(false)),
    ("127.0.0.0/8", Some(false)),
    ("169.254.0.0/16", Some(false)),
    ("172.16.0.0/12", Some(false)),
    ("192.0.0.0/24", Some(false)),
    ("192.0.0.0/29", Some(false)),
    ("192.0.0.8/32", Some(false)),
    ("192.0.0.9/32", Some(true)),
    ("192.0.0.10/32", Some(true)),
    ("192.0.0.170/32", Some(false)),
    ("192.0.0.171/32", Some(false)),
    ("192.0.2.0/24", Some(false)),
    ("192.31.196.0/24", Some(true)),
    ("192.52.193.0/24", Some(true)),
    ("192.88.99.0/24", None),
    ("192.88.99.2/32", Some(false)),
    ("192.168.0.0/16", Some(false)),
    ("192.175.48.0/24", Some(true)),
    ("198.18.0.0/15", Some(false)),
    ("198.51.100.0/24", Some(false)),
    ("203.0.113.0/24", Some(false)),
    ("240.0.0.0/4", Some(false)),
    ("255.255.255.255/32", Some(false)),
    ("::1/128", Some(false)),
    ("::/128", Some(false)),
    ("::ffff:0:0/96", Some(false)),
    ("64:ff9b::/96", Some(true)),
    ("64:ff9b:1::/48", Some(false)),
    ("100::/64", Some(false)),
    ("100:0:0:1::/64", Some(false)),
    ("2001::/23", Some(false)),
    ("2001::/32", None),
    ("2001:1::1/128", Some(true)),
    ("2001:1::2/128", Some(true)),
    ("2001:1::3/128", Some(true)),
    ("2001:2::/48", Some(false)),
    ("2001:3::/32", Some(true)),
    ("2001:4:112::/48", Some(true)),
    ("2001:10::/28", None),
    ("2001:20::/28", Some(true)),
    ("2001:30::/28", Some(true)),
    ("2001:db8::/32", Some(false)),
    ("2002::/16", None),
    ("2620:4f:8000::/48", Some(true)),
    ("3fff::/20", Some(false)),
    ("5f00::/16", Some(false)),
    ("fc00::/7", Some(false)),
    ("fe80::/10", Some(false)),
];

/// Blocks outside the registries, transcribed the same way.
const OTHER: &[(&str, Option<bool>)] = &[
    ("0.0.0.0/0", Some(true)),
    ("224.0.0.0/4", Some(false)),
    ("::/0", Some(false)),
    ("2000::/3", Some(true)),
    ("::/96", Some(false)),
    ("::ffff:0:0:0/96", Some(false)),
    ("fec0::/10", Some(false)),
    ("ff00::/8", Some(false)),
];

fn reach_of(global: Option<bool>) -> Reach {
    match global {
        Some(true) => Reach::Global,
        Some(false) => Reach::NotGlobal,
        None => Reach::NotApplicable,
    }
}

fn net(cidr: &str) -> IpNet {
    cidr.parse().expect(cidr)
}

/// (network, prefix length, reach) of every table row of one registry.
fn table_rows() -> Vec<(IpNet, Reach)> {
    let v4 = IPV4_REGISTRY.iter().map(|b| (IpAddr::V4(b.network), b.prefix_len, b.reach));
    let v6 = IPV6_REGISTRY.iter().map(|b| (IpAddr::V6(b.network), b.prefix_len, b.reach));
    v4.chain(v6)
        .map(|(ip, len, reach)| (IpNet::new(ip, len).expect("prefix length"), reach))
        .collect()
}

/// The block the tables pick for `ip`, as (network, reach).
fn decided(ip: IpAddr) -> (IpNet, Reach) {
    let (network, len, reach) = match ip {
        IpAddr::V4(v4) => {
            let b = ipv4_block(v4);
            (IpAddr::V4(b.network), b.prefix_len, b.reach)
        }
        IpAddr::V6(v6) => {
            let b = ipv6_block(v6);
            (IpAddr::V6(b.network), b.prefix_len, b.reach)
        }
    };
    (IpNet::new(network, len).expect("prefix length"), reach)
}

#[test]
fn the_tables_hold_every_registry_row_and_nothing_else() {
    let mut table = table_rows();
    for (cidr, global) in REGISTRY {
        let wanted = (net(cidr), reach_of(*global));
        let at = table.iter().position(|row| *row == wanted);
        assert!(at.is_some(), "registry row {cidr} {global:?} missing or different");
        table.remove(at.unwrap_or_default());
    }
    assert!(table.is_empty(), "rows that are not in the registry: {table:?}");
}

#[test]
fn every_row_decides_its_first_and_last_address_unless_a_narrower_row_does() {
    let all: Vec<(IpNet, Reach)> =
        REGISTRY.iter().chain(OTHER).map(|(c, g)| (net(c), reach_of(*g))).collect();
    for (block, _) in &all {
        for ip in [block.network(), block.broadcast()] {
            let narrowest = all
                .iter()
                .filter(|(n, _)| n.contains(&ip))
                .max_by_key(|(n, _)| n.prefix_len())
                .copied()
                .expect("a catch-all row holds every address");
            assert_eq!(decided(ip), narrowest, "{ip} (first or last of {block})");
        }
    }
}

fn refused(ip: &str) -> Option<String> {
    refusal(ip.parse().expect(ip))
}

#[test]
fn only_globally_reachable_unicast_is_allowed() {
    for ip in [
        "8.8.8.8",
        "93.184.216.34",
        "192.0.0.9",
        "192.31.196.1",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "2001:1::1",
        "2001:3::1",
        "64:ff9b::808:808",
    ] {
        assert_eq!(refused(ip), None, "{ip} should be allowed");
    }
    for ip in [
        "0.1.2.3",
        "127.0.0.1",
        "10.0.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "172.31.255.255",
        "192.0.0.1",
        "192.0.0.170",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.1.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:8.8.8.8",
        "::8.8.8.8",
        "::ffff:0:808:808",
        "64:ff9b:1::808:808",
        "100::1",
        "2001:2::1",
        "2001:db8::1",
        "2002:808:808::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "3fff::1",
        "5f00::1",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "4000::1",
    ] {
        assert!(refused(ip).is_some(), "{ip} should be refused");
    }
}

#[test]
fn transition_addresses_are_refused_naming_the_ipv4_they_embed() {
    for (ip, says) in [
        ("::127.0.0.1", "IPv4-compatible Address (deprecated) (RFC 4291); embeds 127.0.0.1"),
        ("::ffff:127.0.0.1", "IPv4-mapped Address (RFC 4291); embeds 127.0.0.1: Loopback"),
        ("::ffff:0:7f00:1", "SIIT IPv4-translated Address (RFC 2765); embeds 127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254: Link Local (RFC 3927)"),
        ("64:ff9b:1::7f00:1", "IPv4-IPv6 Translat. (RFC 8215)"),
        ("2002:7f00:1::1", "6to4 (RFC 3056); embeds 127.0.0.1: Loopback"),
        ("2002:a00:1::1", "embeds 10.0.0.1: Private-Use (RFC 1918)"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo client 127.0.0.1: Loopback"),
        ("2001:0:a00:1::", "Teredo server 10.0.0.1: Private-Use"),
    ] {
        let reason = refused(ip).unwrap_or_default();
        assert!(reason.contains(says), "{ip}: {reason:?} should say {says:?}");
    }
}

#[test]
fn embedded_ipv4_is_decoded_where_each_prefix_puts_it() {
    let decoded = |ip: &str| -> Vec<(&str, String)> {
        let v6: Ipv6Addr = ip.parse().expect(ip);
        embedded_ipv4(v6).into_iter().map(|(role, v4)| (role, v4.to_string())).collect()
    };
    let embeds = |v4: &str| vec![("embeds", v4.to_string())];
    assert_eq!(decoded("::ffff:192.0.2.45"), embeds("192.0.2.45"));
    assert_eq!(decoded("::192.0.2.45"), embeds("192.0.2.45"));
    assert_eq!(decoded("::ffff:0:c000:22d"), embeds("192.0.2.45"));
    assert_eq!(decoded("64:ff9b::192.0.2.45"), embeds("192.0.2.45"));
    assert_eq!(decoded("2002:c000:22d::1"), embeds("192.0.2.45"));
    // RFC 4380 §4's example: server 65.54.227.120, client 192.0.2.45 (port 40000).
    assert_eq!(
        decoded("2001:0:4136:e378:8000:63bf:3fff:fdd2"),
        vec![
            ("Teredo server", "65.54.227.120".to_string()),
            ("Teredo client", "192.0.2.45".to_string())
        ]
    );
    for plain in ["::", "::1", "64:ff9b:1::7f00:1", "2606:4700::1111", "fe80::1"] {
        assert_eq!(decoded(plain), vec![], "{plain}");
    }
}
