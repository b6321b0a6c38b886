//! Which address a request comes from when reverse proxies stand in front of the server.
//!
//! `X-Forwarded-For` is believed only as far as it was written by a proxy we trust: each trusted
//! proxy appends the address it received the request from, so the list is read from the right,
//! skipping trusted proxies, and the first address that is not one is the client. Anything to
//! its left was written by the client and may be forged.

use std::net::IpAddr;

/// An IP network (`10.0.0.0/8`, `::1/128`); a plain address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let (address, prefix) = match raw.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (raw, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{raw:?} is not an IP address or network"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{raw:?} has an invalid prefix length"))?,
        };
        Ok(Self { address, prefix })
    }

    pub fn contains(&self, candidate: IpAddr) -> bool {
        match (self.address, canonical(candidate)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 peer on a dual-stack socket shows up as `::ffff:a.b.c.d`; compare it as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`STAGEFLOW_TRUSTED_PROXIES`); empty by
/// default, so the header is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    /// A comma-separated list of addresses and networks; empty means none.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(IpNetwork::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }

    /// The client's address: the peer itself unless the peer is a trusted proxy, else the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy. `forwarded` holds the
    /// header's values in order (a header may be sent several times). A malformed entry, or a
    /// chain made only of trusted proxies, falls back to the peer.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for entry in entries.iter().rev() {
            let Ok(ip) = entry.parse::<IpAddr>() else {
                return peer;
            };
            let ip = canonical(ip);
            if !self.contains(ip) {
                return ip;
            }
        }
        peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    fn proxies(raw: &str) -> TrustedProxies {
        TrustedProxies::parse(raw).unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        let net = IpNetwork::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.200.3.4")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.1.1")));
        let single = IpNetwork::parse("192.0.2.7").unwrap();
        assert!(single.contains(ip("192.0.2.7")));
        assert!(!single.contains(ip("192.0.2.8")));
        let v6 = IpNetwork::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(
            IpNetwork::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nonsense",
            "10.0.0.0/x",
            "10.0.0/8",
        ] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_list_is_comma_separated_and_may_be_empty() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        let list = proxies(" 10.0.0.1 , 172.16.0.0/12,::1 ");
        assert!(list.contains(ip("172.20.1.1")));
        assert!(list.contains(ip("::1")));
        assert!(TrustedProxies::parse("10.0.0.1,bogus").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_header_says() {
        let list = proxies("10.0.0.1");
        assert_eq!(
            list.client_address(ip("203.0.113.9"), ["198.51.100.1"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::default().client_address(ip("203.0.113.9"), ["198.51.100.1"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let list = proxies("10.0.0.0/8");
        // The client forged the first entry; the outer proxy appended what it saw.
        assert_eq!(
            list.client_address(ip("10.0.0.1"), ["1.1.1.1, 198.51.100.7, 10.0.0.2"]),
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        assert_eq!(
            list.client_address(ip("10.0.0.1"), ["1.1.1.1", "198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_malformed_or_missing_header_falls_back_to_the_peer() {
        let list = proxies("10.0.0.1");
        assert_eq!(
            list.client_address(ip("10.0.0.1"), ["1.1.1.1, not-an-ip"]),
            ip("10.0.0.1")
        );
        assert_eq!(list.client_address(ip("10.0.0.1"), []), ip("10.0.0.1"));
        assert_eq!(
            list.client_address(ip("10.0.0.1"), ["10.0.0.1"]),
            ip("10.0.0.1")
        );
    }
}
