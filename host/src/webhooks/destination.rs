//! The destination check: a webhook URL whose host resolves to a loopback, private, link-local or
//! unspecified address (or the IPv4-mapped IPv6 form of one) is refused unless `[webhooks]
//! allowed_destinations` covers the address, so that an API client cannot make the server call into its
//! own network (SSRF).
//!
//! The check runs inside the HTTP client's resolver ([`CheckedResolver`]): the addresses it hands back
//! are the only ones the client connects to, so a name that resolves to a public address for the check
//! and to a private one for the connection (DNS rebinding) gains nothing. URLs with an IP literal skip
//! the resolver and are checked by [`Destinations::check_url`] before the request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// What a destination may resolve to.
#[derive(Clone, Debug, Default)]
pub struct Destinations {
    allowed: Arc<Vec<IpNet>>,
}

/// Why a destination was refused (the attempt's `error`).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "destination `{host}` resolves to {addresses}, not allowed (loopback, private, link-local or unspecified, and not in [webhooks] allowed_destinations)"
    )]
    Internal { host: String, addresses: String },
    #[error("destination `{host}` does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

impl Destinations {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self {
            allowed: Arc::new(allowed),
        }
    }

    /// Whether the client may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !is_internal(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// The permitted ones among `addresses`, or why there are none.
    pub fn filter(
        &self,
        host: &str,
        addresses: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        let all: Vec<SocketAddr> = addresses.into_iter().collect();
        if all.is_empty() {
            return Err(Refused::Unresolved {
                host: host.to_owned(),
                reason: "no address".to_owned(),
            });
        }
        let permitted: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| self.permits(a.ip()))
            .collect();
        if permitted.is_empty() {
            return Err(Refused::Internal {
                host: host.to_owned(),
                addresses: all
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(permitted)
    }

    /// The check for a URL whose host is an IP literal (the resolver never sees those).
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.filter(&ip.to_string(), [SocketAddr::new(ip, 0)])
            .map(|_| ())
    }

    /// The resolver to install in the HTTP client.
    pub fn resolver(&self) -> Arc<CheckedResolver> {
        Arc::new(CheckedResolver {
            destinations: self.clone(),
        })
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) as the IPv4 address they reach.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Loopback, private, link-local, unspecified, and their kin that also stay inside a network
/// (`0.0.0.0/8`, carrier-grade NAT `100.64.0.0/10`, broadcast; IPv6 unique-local and site-local).
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed inside)
}

/// A resolver that hands the HTTP client only permitted addresses.
pub struct CheckedResolver {
    destinations: Destinations,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = self.destinations.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Refused::Unresolved {
                    host: host.clone(),
                    reason: e.to_string(),
                })?;
            let permitted = destinations.filter(&host, resolved)?;
            let addrs: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_public_ones_permitted() {
        let none = Destinations::default();
        for refused in [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!none.permits(ip(refused)), "{refused}");
        }
        for permitted in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(none.permits(ip(permitted)), "{permitted}");
        }
    }

    #[test]
    fn allowed_destinations_cover_exactly_their_blocks() {
        let allowed = Destinations::new(vec!["127.0.0.2/32".parse().unwrap()]);
        assert!(allowed.permits(ip("127.0.0.2")));
        assert!(allowed.permits(ip("::ffff:127.0.0.2")));
        assert!(!allowed.permits(ip("127.0.0.1")));
        let err = allowed
            .filter("localhost", [SocketAddr::new(ip("127.0.0.1"), 0)])
            .unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        assert!(err.to_string().contains("localhost"), "{err}");
        let url = url::Url::parse("http://127.0.0.1:9/x").unwrap();
        assert!(allowed.check_url(&url).is_err());
        let url = url::Url::parse("http://127.0.0.2:9/x").unwrap();
        assert!(allowed.check_url(&url).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_what_is_not_permitted() {
        use reqwest::dns::Resolve;
        let resolver = Destinations::new(vec!["127.0.0.2/32".parse().unwrap()]).resolver();
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match resolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(err.to_string().contains("not allowed"), "{err}");
    }
}
