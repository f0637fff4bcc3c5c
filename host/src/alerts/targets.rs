//! Keeps notification channels from reaching the server's own network.
//!
//! A webhook URL is chosen by a user, but the request is sent by the server,
//! from inside its network: without a check, `http://169.254.169.254/` would
//! read the cloud metadata service and `http://10.0.0.5:6379/` would talk to
//! Redis (server-side request forgery). Two layers close that:
//!
//! - [`check_url`] refuses, when the channel is saved, URLs whose host is a
//!   forbidden IP literal or `localhost`. It must be used: reqwest connects to
//!   IP-literal hosts directly, without asking the resolver.
//! - [`PublicOnlyResolver`], installed by [`client`], resolves names at send
//!   time and drops forbidden addresses. Checking the addresses that are
//!   actually connected to, rather than resolving once when the channel is
//!   saved, is what defeats DNS rebinding.
//!
//! Redirects are not followed (a public server could redirect to a private
//! one) and proxies from the environment are ignored when private addresses
//! are refused, since a proxy would resolve the name itself.

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Why a notification target was refused or a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("invalid URL: {0}")]
    InvalidUrl(#[source] <Url as FromStr>::Err),
    #[error("URL scheme must be http or https, not {0:?}")]
    Scheme(String),
    #[error("URL must not contain a username or password")]
    Credentials,
    #[error("URL has no host")]
    NoHost,
    #[error("{0} is a private or local address")]
    ForbiddenAddress(IpAddr),
    #[error("{0} is a local host name")]
    LocalName(String),
    #[error("cannot resolve {name}: {source}")]
    Resolve {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} resolves only to private or local addresses")]
    OnlyPrivate(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// True for addresses a notification must not be sent to: everything that is
/// not ordinary public unicast, and IPv6 forms that embed such an IPv4
/// address.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // 0.0.0.0/8 "this network": Linux connects 0.x.y.z to the host itself.
        || a == 0
        // 100.64.0.0/10 shared address space (carrier-grade NAT, some clouds' internal ranges).
        || (a == 100 && (b & 0xc0) == 64)
        // 192.0.0.0/24 IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15 benchmarking.
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4 reserved.
        || a >= 240
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible) reach the IPv4
    // address; `to_ipv4` covers both (and maps ::1 to 0.0.0.1, also refused).
    if let Some(v4) = ip.to_ipv4() {
        return forbidden_v4(v4);
    }
    // 64:ff9b::/96 NAT64 and 2002::/16 6to4 also carry an IPv4 address that a
    // gateway will connect to.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return forbidden_v4(embedded_v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return forbidden_v4(embedded_v4(seg[1], seg[2]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // fec0::/10 deprecated site-local, still routed internally by some networks.
        || (seg[0] & 0xffc0) == 0xfec0
        // 64:ff9b:1::/48 local-use NAT64.
        || (seg[0] == 0x64 && seg[1] == 0xff9b && seg[2] == 1)
        // 2001:db8::/32 and 3fff::/20 documentation.
        || (seg[0] == 0x2001 && seg[1] == 0xdb8)
        || (seg[0] & 0xfff0) == 0x3ff0
        // 100::/64 discard-only.
        || seg[..4] == [0x100, 0, 0, 0]
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

/// Parses and checks a notification URL when a channel is saved: `http` or
/// `https`, no credentials in the URL (they would end up in logs), a host,
/// and, unless `allow_private`, no forbidden IP literal or `localhost` host.
/// Other names are checked when the notification is sent, by
/// [`PublicOnlyResolver`].
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, TargetError> {
    let parsed = Url::parse(url).map_err(TargetError::InvalidUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::Scheme(parsed.scheme().to_string()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let host = parsed.host_str().ok_or(TargetError::NoHost)?;
    if !allow_private {
        // The parser has already normalised IPv4 spellings such as
        // `2130706433` or `0x7f.1`; IPv6 literals keep their brackets.
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            if forbidden(ip) {
                return Err(TargetError::ForbiddenAddress(ip));
            }
        } else if is_localhost(host) {
            return Err(TargetError::LocalName(host.to_string()));
        }
    }
    Ok(parsed)
}

/// `localhost` and `*.localhost` (RFC 6761), with or without a final dot.
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// A reqwest resolver that returns only addresses [`forbidden`] allows, and
/// fails when a name has no other.
#[derive(Clone, Copy, Debug, Default)]
pub struct PublicOnlyResolver;

impl PublicOnlyResolver {
    /// Resolves `name` with the system resolver and keeps the public
    /// addresses. Port 0 tells reqwest to use the URL's port.
    pub async fn lookup(name: &str) -> Result<Vec<SocketAddr>, TargetError> {
        let addrs = tokio::net::lookup_host((name, 0))
            .await
            .map_err(|source| TargetError::Resolve { name: name.to_string(), source })?;
        let public: Vec<SocketAddr> = addrs.filter(|a| !forbidden(a.ip())).collect();
        if public.is_empty() {
            return Err(TargetError::OnlyPrivate(name.to_string()));
        }
        Ok(public)
    }
}

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        // The future must be 'static, so it owns the name.
        let name = name.as_str().to_string();
        Box::pin(async move {
            let public = Self::lookup(&name).await?;
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for notifications: no redirects, the given timeout, a
/// `devpulse/<version>` user agent and, unless `allow_private`, the
/// [`PublicOnlyResolver`] and no proxy.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, TargetError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("devpulse/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver)).no_proxy();
    }
    builder.build().map_err(TargetError::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "127.255.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(forbidden(addr), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert!(!forbidden(addr), "{ip} should be allowed");
        }
    }

    #[test]
    fn check_url_accepts_public_urls() {
        for url in [
            "https://hooks.example.com/alert",
            "http://8.8.8.8:8080/x",
            "https://[2606:4700::1111]/",
            "https://localhost.example.com/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
    }

    fn refused(url: &str) -> TargetError {
        check_url(url, false).expect_err(url)
    }

    #[test]
    fn check_url_refuses_bad_urls() {
        use TargetError::*;
        assert!(matches!(refused("not a url"), InvalidUrl(_)));
        assert!(matches!(refused("ftp://example.com/"), Scheme(_)));
        assert!(matches!(refused("file:///etc/passwd"), Scheme(_)));
        assert!(matches!(refused("https://user:pw@example.com/"), Credentials));
        assert!(matches!(refused("https://user@example.com/"), Credentials));
        assert!(matches!(refused("http://127.0.0.1/"), ForbiddenAddress(_)));
        // The URL parser normalises other IPv4 spellings to the address.
        assert!(matches!(refused("http://2130706433/"), ForbiddenAddress(_)));
        assert!(matches!(refused("http://0x7f.1/"), ForbiddenAddress(_)));
        assert!(matches!(refused("http://169.254.169.254/latest/meta-data/"), ForbiddenAddress(_)));
        assert!(matches!(refused("http://[::1]:8080/"), ForbiddenAddress(_)));
        assert!(matches!(refused("http://[::ffff:127.0.0.1]/"), ForbiddenAddress(_)));
        assert!(matches!(refused("http://localhost:3000/"), LocalName(_)));
        assert!(matches!(refused("http://LOCALHOST./"), LocalName(_)));
        assert!(matches!(refused("http://api.localhost/"), LocalName(_)));
    }

    #[test]
    fn check_url_allow_private_skips_only_the_address_checks() {
        assert!(check_url("http://127.0.0.1:9000/", true).is_ok());
        assert!(check_url("http://localhost/", true).is_ok());
        assert!(check_url("http://10.0.0.5/", true).is_ok());
        assert!(matches!(check_url("ftp://127.0.0.1/", true), Err(TargetError::Scheme(_))));
        assert!(matches!(check_url("http://u:p@localhost/", true), Err(TargetError::Credentials)));
    }

    async fn resolve(name: &str) -> Result<Vec<SocketAddr>, String> {
        let name = Name::from_str(name).map_err(|e| e.to_string())?;
        match PublicOnlyResolver.resolve(name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let err = resolve("localhost").await.unwrap_err();
        assert_eq!(err, "localhost resolves only to private or local addresses");
    }

    #[tokio::test]
    async fn resolver_filters_without_network() {
        // IP-literal names resolve locally, so no DNS server is needed.
        let addrs = resolve("8.8.8.8").await.unwrap();
        assert_eq!(addrs, vec!["8.8.8.8:0".parse::<SocketAddr>().unwrap()]);
        assert!(resolve("10.0.0.1").await.is_err());
    }

    #[test]
    fn client_builds_both_ways() {
        assert!(client(false, Duration::from_secs(5)).is_ok());
        assert!(client(true, Duration::from_secs(5)).is_ok());
    }
}
