//! Where webhooks may go: public addresses, and internal ones only where the configuration
//! allows them (`delivery.allow_internal`), so that nobody can aim the gateway at its own
//! network, a cloud metadata service or loopback. Host names are checked when they are
//! resolved, every time, so a name that later resolves inward is caught too (DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The internal ranges webhooks may reach anyway.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
}

impl Guard {
    /// Parses the CIDR blocks of `delivery.allow_internal`.
    pub fn new(allow_internal: &[String]) -> Result<Guard, String> {
        let allowed = allow_internal
            .iter()
            .map(|c| {
                c.parse::<IpNet>()
                    .map_err(|_| format!("delivery.allow_internal: `{c}` is not a CIDR block such as 10.1.0.0/16"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Guard { allowed: Arc::new(allowed) })
    }

    /// Whether a webhook may be sent to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !internal(ip) || self.allowed.iter().any(|n| n.contains(&ip))
    }

    /// The problem with `url`'s host if it is an address the guard refuses.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let Ok(ip) = host.parse::<IpAddr>() else { return Ok(()) };
        if self.permits(ip) { Ok(()) } else { Err(refused(ip)) }
    }
}

fn refused(ip: IpAddr) -> String {
    format!("{ip} is an internal address; webhooks go there only if delivery.allow_internal lists it")
}

/// Loopback, private, link-local (cloud metadata), shared (CGNAT), unspecified, multicast,
/// documentation and other special-purpose addresses.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [o1, o2, ..] = a.octets();
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o1 == 0
                || (o1 == 100 && (64..128).contains(&o2))
                || o1 >= 240
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => internal(IpAddr::V4(v4)),
            None => {
                let first = a.segments()[0];
                a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && a.segments()[1] == 0x0db8
            }
        },
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| guard.permits(a.ip())).collect();
            if allowed.is_empty() {
                let why = match found.first() {
                    Some(a) => format!("{host} resolves to {}", refused(a.ip())),
                    None => format!("{host} does not resolve"),
                };
                return Err(why.into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_need_an_allowance() {
        let none = Guard::new(&[]).unwrap();
        for ip in [
            "127.0.0.1",
            "10.2.3.4",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!none.permits(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["202.96.134.133", "8.8.8.8", "2400:3200::1"] {
            assert!(none.permits(ip.parse().unwrap()), "{ip}");
        }
        let intranet = Guard::new(&["10.1.0.0/16".into(), "127.0.0.1/32".into()]).unwrap();
        assert!(intranet.permits("10.1.200.3".parse().unwrap()));
        assert!(intranet.permits("127.0.0.1".parse().unwrap()));
        assert!(!intranet.permits("10.2.0.1".parse().unwrap()));
        assert!(Guard::new(&["10.1.0.0/33".into()]).is_err());
    }

    #[test]
    fn urls_with_literal_addresses_are_checked() {
        let none = Guard::new(&[]).unwrap();
        let check = |u: &str| none.check_url(&reqwest::Url::parse(u).unwrap());
        assert!(check("http://127.0.0.1:9/hook").unwrap_err().contains("internal address"));
        assert!(check("http://[::1]/hook").is_err());
        assert!(check("https://hub.example.cn/hook").is_ok(), "names are checked when resolved");
        assert!(check("https://202.96.134.133/hook").is_ok());
    }
}
