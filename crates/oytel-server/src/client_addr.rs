//! The client's address, for the failed-authentication throttle and the request log.
//!
//! Behind a load balancer every request arrives from the balancer's address: throttling by
//! the peer address would throttle every partner together (issue #27). The proxies in front
//! of the server record the addresses they forwarded for in `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`, but anyone can send those headers too, so they are believed only from
//! peers the operator lists as trusted proxies (`OYTEL_TRUSTED_PROXIES`), and only as far
//! back as the chain of trusted proxies goes:
//!
//! | peer | header | client address |
//! |---|---|---|
//! | not a trusted proxy | any, or none | the peer (headers ignored) |
//! | a trusted proxy | none | the peer |
//! | a trusted proxy | `Forwarded` (else `X-Forwarded-For`) | the right-most hop that is not a trusted proxy |
//! | a trusted proxy | every hop a trusted proxy | the left-most hop |
//! | a trusted proxy | a hop that is no address (`unknown`, garbage) | the last trusted hop before it |
//!
//! The right-most untrusted hop, not the left-most: everything left of it was written by the
//! client or by proxies nobody vouches for.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// An address range: an address and how many leading bits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `192.0.2.0/24`, `2001:db8::/32`, or a single address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or range"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { network, bits })
    }

    /// Whether `address` is in this range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        let (a, n, width) = match (address, self.network) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(n)), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        shift >= 128 || (a >> shift) == (n >> shift)
    }
}

/// The proxies whose forwarding headers are believed. Empty (the default): none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and ranges; empty trusts none.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        list.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(Cidr::parse)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(address))
    }

    /// The client's address of a request from `peer` with `headers` (see the table above).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in hops(headers).iter().rev() {
            match hop {
                Some(address) if self.trusts(*address) => client = *address,
                Some(address) => return *address,
                None => return client,
            }
        }
        client
    }
}

/// The forwarded-for hops, left (the first client) to right (the last proxy's peer):
/// `Forwarded`'s `for=` values if that header is present, else `X-Forwarded-For`. A hop that
/// is no address is `None`.
fn hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .into_iter()
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| node_address(value.trim().trim_matches('"')))
            })
            .collect();
    }
    values("x-forwarded-for")
        .into_iter()
        .map(|hop| hop.parse().ok())
        .collect()
}

/// The address of a `Forwarded` node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80`.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse().ok().or_else(|| {
        node.rsplit_once(':')
            .and_then(|(host, _)| host.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_their_prefix_says() {
        for (range, address, inside) in [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("::/0", "::1", true),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "2001:db8::1", false),
        ] {
            assert_eq!(
                Cidr::parse(range).unwrap().contains(ip(address)),
                inside,
                "{range} ∋ {address}"
            );
        }
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            TrustedProxies::parse("").unwrap(),
            TrustedProxies::default()
        );
        assert!(TrustedProxies::parse("10.0.0.0/8, bad").is_err());
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 2001:db8:ffff::/48").unwrap();
        for (peer, pairs, client) in [
            // An untrusted peer's headers are ignored: it cannot choose its address.
            (
                "198.51.100.1",
                vec![("x-forwarded-for", "203.0.113.5")],
                "198.51.100.1",
            ),
            (
                "198.51.100.1",
                vec![("forwarded", "for=203.0.113.5")],
                "198.51.100.1",
            ),
            // A trusted proxy without a header: the proxy itself.
            ("10.0.0.2", vec![], "10.0.0.2"),
            // The right-most hop that is not a proxy; what the client wrote before it is not.
            (
                "10.0.0.2",
                vec![("x-forwarded-for", "1.1.1.1, 203.0.113.5")],
                "203.0.113.5",
            ),
            (
                "10.0.0.2",
                vec![("x-forwarded-for", "203.0.113.5, 10.0.0.9")],
                "203.0.113.5",
            ),
            (
                "10.0.0.2",
                vec![
                    ("x-forwarded-for", "1.1.1.1"),
                    ("x-forwarded-for", "203.0.113.6"),
                ],
                "203.0.113.6",
            ),
            // Every hop a proxy: the left-most.
            (
                "10.0.0.2",
                vec![("x-forwarded-for", "10.0.0.7, 10.0.0.9")],
                "10.0.0.7",
            ),
            // A hop that is no address stops the walk at the last trusted hop.
            (
                "10.0.0.2",
                vec![("x-forwarded-for", "203.0.113.5, garbage, 10.0.0.9")],
                "10.0.0.9",
            ),
            // `Forwarded` wins over `X-Forwarded-For`, with ports, brackets and quotes.
            (
                "10.0.0.2",
                vec![
                    (
                        "forwarded",
                        "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\"",
                    ),
                    ("x-forwarded-for", "1.1.1.1"),
                ],
                "2001:db8:cafe::17",
            ),
            (
                "10.0.0.2",
                vec![("forwarded", "for=192.0.2.60:8080;by=10.0.0.2")],
                "192.0.2.60",
            ),
            ("10.0.0.2", vec![("forwarded", "for=unknown")], "10.0.0.2"),
            (
                "2001:db8:ffff::1",
                vec![("forwarded", "proto=https;for=192.0.2.61")],
                "192.0.2.61",
            ),
        ] {
            assert_eq!(
                proxies.client(ip(peer), &headers(&pairs)),
                ip(client),
                "{peer} {pairs:?}"
            );
        }
        // Trusting none (the default): always the peer.
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(
                ip("10.0.0.2"),
                &headers(&[("x-forwarded-for", "203.0.113.5")])
            ),
            ip("10.0.0.2")
        );
    }
}
