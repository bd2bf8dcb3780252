//! Which addresses a webhook may reach: public unicast only, unless the operator allows private
//! ones for that webhook (`allow_private = true` in `[[webhooks]]`).
//!
//! A webhook URL is configuration, but it points the gateway's own network position at a host
//! someone else names: without this check a URL (or a DNS name whose records change later)
//! could make the gateway POST to its own loopback services, the LAN behind it, or a cloud
//! metadata endpoint (169.254.169.254). The check therefore runs **at connect time** on every
//! address the connection may use: IP literals in the URL before the request, names through
//! [`GuardedResolver`], which resolves and drops refused addresses (a name with none left fails
//! to connect). [`address_allowed`] is the one decision; anything that accepts a webhook URL
//! (configuration, the API) calls it or [`url_allowed`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Which addresses a webhook may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressPolicy {
    /// Public unicast addresses only (the default).
    #[default]
    PublicOnly,
    /// Any address, loopback and private networks included (`allow_private = true`).
    AllowPrivate,
}

/// A webhook address refused by [`AddressPolicy::PublicOnly`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("address {ip} is {range}: refused for webhooks (allow_private = true allows it)")]
pub struct Refused {
    /// The address.
    pub ip: IpAddr,
    /// Why: the range it is in.
    pub range: &'static str,
}

/// Whether a webhook may connect to `ip` under `policy`.
///
/// Refused unless allowed: `0.0.0.0/8` (this network), `10/8`, `172.16/12`, `192.168/16`
/// (private), `100.64/10` (shared, carrier-grade NAT), `127/8` (loopback), `169.254/16`
/// (link-local, cloud metadata), `192.0.0/24` (protocol assignments), `192.0.2/24`,
/// `198.51.100/24`, `203.0.113/24` (documentation), `198.18/15` (benchmarking), `224/4`
/// (multicast), `240/4` and the broadcast address (reserved); `::` and `::1`, `::/96`
/// (IPv4-compatible, deprecated), `100::/64` (discard), `2001:db8::/32` (documentation),
/// `fc00::/7` (unique local), `fe80::/10` (link-local), `fec0::/10` (site-local), `ff00::/8`
/// (multicast). An IPv4 address carried in IPv6 — IPv4-mapped `::ffff:0:0/96`, NAT64
/// `64:ff9b::/96`, 6to4 `2002::/16` — is judged as that IPv4 address.
///
/// # Errors
/// [`Refused`], naming the range.
pub fn address_allowed(ip: IpAddr, policy: AddressPolicy) -> Result<(), Refused> {
    if policy == AddressPolicy::AllowPrivate {
        return Ok(());
    }
    let range = match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    };
    match range {
        Some(range) => Err(Refused { ip, range }),
        None => Ok(()),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "in 0.0.0.0/8 (this network)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared address space (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved (240.0.0.0/4, broadcast)",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return v4_range(embedded(hi, lo));
        }
        [0x2002, hi, lo, ..] => return v4_range(embedded(hi, lo)),
        _ => {}
    }
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified (::)",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback (::1)",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (::/96, deprecated)",
        [0x100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [0x2001, 0xdb8, ..] => "documentation (2001:db8::/32)",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10, deprecated)",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    })
}

/// The host of a webhook URL, if it is an IP literal: the address [`GuardedResolver`] never
/// sees, because the HTTP client connects to a literal without resolving it.
pub fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    // The URL parser has normalised the host: an IPv4 literal in dotted decimal, an IPv6 one
    // in brackets; a name never parses as an address.
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// Checks a webhook URL's IP literal, if it has one (a name is checked when it is resolved).
///
/// # Errors
/// [`Refused`].
pub fn url_allowed(url: &reqwest::Url, policy: AddressPolicy) -> Result<(), Refused> {
    literal_ip(url).map_or(Ok(()), |ip| address_allowed(ip, policy))
}

/// A DNS resolver for the webhook client that keeps only the addresses [`address_allowed`]
/// allows: the check holds at connect time whatever the name resolves to by then.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    /// A resolver that enforces `policy`.
    pub fn new(policy: AddressPolicy) -> Arc<Self> {
        Arc::new(Self { policy })
    }

    /// Keeps the allowed addresses of a resolved name.
    ///
    /// # Errors
    /// The first [`Refused`] if none is allowed (or the name had no address).
    pub fn filter(
        addrs: impl IntoIterator<Item = SocketAddr>,
        policy: AddressPolicy,
    ) -> Result<Vec<SocketAddr>, NoAllowedAddress> {
        let mut refused = None;
        let kept: Vec<_> = addrs
            .into_iter()
            .filter(|a| match address_allowed(a.ip(), policy) {
                Ok(()) => true,
                Err(r) => {
                    refused.get_or_insert(r);
                    false
                }
            })
            .collect();
        if kept.is_empty() {
            Err(NoAllowedAddress(refused))
        } else {
            Ok(kept)
        }
    }
}

/// A resolved name had no address a webhook may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct NoAllowedAddress(pub Option<Refused>);

impl std::fmt::Display for NoAllowedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(r) => write!(f, "no allowed address: {r}"),
            None => f.write_str("the name has no address"),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the client sets the URL's port on the addresses it gets back.
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = Self::filter(addrs, policy)?;
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PUBLIC: AddressPolicy = AddressPolicy::PublicOnly;

    fn refused(s: &str) -> bool {
        address_allowed(s.parse().unwrap(), PUBLIC).is_err()
    }

    #[test]
    fn named_ranges() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.2.7",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:c0a8:101::1",
            "::127.0.0.1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(refused(s), "{s} should be refused");
        }
        for s in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.0.1",
            "192.169.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "fbff::1",
            "fe7f::1",
        ] {
            assert!(!refused(s), "{s} should be allowed");
        }
        let r = address_allowed("127.0.0.1".parse().unwrap(), PUBLIC).unwrap_err();
        assert_eq!(
            r.to_string(),
            "address 127.0.0.1 is loopback (127.0.0.0/8): refused for webhooks \
             (allow_private = true allows it)"
        );
    }

    #[test]
    fn literals_in_urls() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(url_allowed(&u("http://127.0.0.1:8080/x"), PUBLIC).is_err());
        assert!(url_allowed(&u("http://[::1]/x"), PUBLIC).is_err());
        assert!(url_allowed(&u("http://[::ffff:7f00:1]/x"), PUBLIC).is_err());
        // Decimal and hex forms are literals too, once parsed.
        assert!(url_allowed(&u("http://2130706433/x"), PUBLIC).is_err());
        assert!(url_allowed(&u("http://0x7f.1/x"), PUBLIC).is_err());
        assert!(url_allowed(&u("http://localhost/x"), PUBLIC).is_ok()); // a name: resolved later
        assert!(url_allowed(&u("http://127.0.0.1/x"), AddressPolicy::AllowPrivate).is_ok());
    }

    #[test]
    fn the_resolver_keeps_only_allowed_addresses() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        assert_eq!(
            GuardedResolver::filter([a("127.0.0.1:0"), a("8.8.8.8:0")], PUBLIC),
            Ok(vec![a("8.8.8.8:0")])
        );
        let err = GuardedResolver::filter([a("127.0.0.1:0"), a("[::1]:0")], PUBLIC).unwrap_err();
        assert_eq!(err.0.map(|r| r.ip), Some(a("127.0.0.1:0").ip()));
        assert_eq!(
            GuardedResolver::filter([], PUBLIC),
            Err(NoAllowedAddress(None))
        );
        assert_eq!(
            GuardedResolver::filter([a("127.0.0.1:0")], AddressPolicy::AllowPrivate),
            Ok(vec![a("127.0.0.1:0")])
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match GuardedResolver::new(PUBLIC).resolve(name).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    proptest! {
        #[test]
        fn allow_private_allows_everything(bits: u128, v4: u32) {
            prop_assert!(address_allowed(IpAddr::V6(Ipv6Addr::from(bits)), AddressPolicy::AllowPrivate).is_ok());
            prop_assert!(address_allowed(IpAddr::V4(Ipv4Addr::from(v4)), AddressPolicy::AllowPrivate).is_ok());
        }

        #[test]
        fn ipv4_in_ipv6_is_judged_as_ipv4(v4: u32) {
            let ip = Ipv4Addr::from(v4);
            let direct = address_allowed(IpAddr::V4(ip), PUBLIC).is_ok();
            let mapped = address_allowed(IpAddr::V6(ip.to_ipv6_mapped()), PUBLIC).is_ok();
            let [a, b] = [(v4 >> 16) as u16, v4 as u16];
            let nat64 = address_allowed(IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, a, b)), PUBLIC).is_ok();
            let six_to_four = address_allowed(IpAddr::V6(Ipv6Addr::new(0x2002, a, b, 1, 2, 3, 4, 5)), PUBLIC).is_ok();
            prop_assert_eq!(direct, mapped);
            prop_assert_eq!(direct, nat64);
            prop_assert_eq!(direct, six_to_four);
        }

        /// Whatever the standard library calls special is refused.
        #[test]
        fn std_special_addresses_are_refused(v4: u32, v6: u128) {
            let ip = Ipv4Addr::from(v4);
            if ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
                || ip.is_multicast() || ip.is_broadcast() || ip.is_documentation()
            {
                prop_assert!(address_allowed(IpAddr::V4(ip), PUBLIC).is_err());
            }
            let ip = Ipv6Addr::from(v6);
            if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast()
                || ip.is_unique_local() || ip.is_unicast_link_local()
            {
                prop_assert!(address_allowed(IpAddr::V6(ip), PUBLIC).is_err());
            }
        }

        /// Anything in the named private ranges is refused, with its range named.
        #[test]
        fn private_ranges_are_refused(host: u32, low: u128, prefix in 0usize..9) {
            let (net, bits) = [
                (0x0000_0000u32, 8), (0x0a00_0000, 8), (0x6440_0000, 10), (0x7f00_0000, 8),
                (0xa9fe_0000, 16), (0xac10_0000, 12), (0xc0a8_0000, 16), (0xe000_0000, 4),
                (0xf000_0000, 4),
            ][prefix];
            let ip = Ipv4Addr::from(net | (host >> bits));
            let r = address_allowed(IpAddr::V4(ip), PUBLIC);
            prop_assert!(r.is_err(), "{} allowed", ip);
            let (net, bits) = [(0xfc00_u128 << 112, 7), (0xfe80 << 112, 10), (0xff00 << 112, 8)][prefix % 3];
            let v6 = net | (low >> bits);
            prop_assert!(address_allowed(IpAddr::V6(Ipv6Addr::from(v6)), PUBLIC).is_err(), "{} allowed", Ipv6Addr::from(v6));
        }
    }
}
