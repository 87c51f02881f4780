//! The few URL operations a registry client needs: parse an absolute http(s) URL, resolve
//! a `Location` against the current URL, compare origins (scheme, host and port: the
//! unit `Authorization` may be sent to), and tell internal addresses from public ones.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ureq::http::Uri;

/// An absolute `http` or `https` URL without user info or fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    https: bool,
    /// Lowercase; IPv6 literals keep their brackets.
    host: String,
    port: u16,
    /// Starts with '/'; includes the query.
    path_and_query: String,
}

impl Url {
    /// Parses an absolute URL; only http and https, no `user@`.
    pub fn parse(text: &str) -> Result<Url, String> {
        let uri: Uri = text
            .parse()
            .map_err(|e| format!("invalid URL '{text}': {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return Err(format!("URL '{text}': scheme '{other}' is not http(s)")),
            None => return Err(format!("URL '{text}' is not absolute")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL '{text}' has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("URL '{text}': user info in URLs is not accepted"));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("URL '{text}' has no host"));
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
            Some(p) if p.starts_with('/') => p.to_string(),
            Some(p) if !p.is_empty() => format!("/{p}"),
            _ => "/".to_string(),
        };
        Ok(Url {
            https,
            host,
            port,
            path_and_query,
        })
    }

    /// `scheme://host[:port]` plus `path` (which starts with '/').
    pub fn base(https: bool, host_port: &str, path: &str) -> Result<Url, String> {
        let scheme = if https { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{host_port}{path}"))
    }

    /// The same origin with another path (and query).
    pub fn with_path(&self, path_and_query: &str) -> Url {
        Url {
            path_and_query: path_and_query.to_string(),
            ..self.clone()
        }
    }

    /// Resolves a `Location` header: absolute, scheme-relative (`//host/p`),
    /// absolute-path (`/p`) or relative to the current directory (`p`).
    pub fn join(&self, location: &str) -> Result<Url, String> {
        let location = location.trim();
        let location = location.split('#').next().unwrap_or("");
        if location.is_empty() {
            return Err("empty redirect location".to_string());
        }
        if location.starts_with("//") {
            return Url::parse(&format!("{}:{location}", self.scheme()));
        }
        if location.starts_with('/') {
            return Ok(self.with_path(location));
        }
        let scheme_end = location.find(':');
        let first_sep = location.find(['/', '?']);
        let has_scheme = match (scheme_end, first_sep) {
            (Some(c), Some(s)) => c < s,
            (Some(_), None) => true,
            _ => false,
        };
        if has_scheme {
            return Url::parse(location);
        }
        let path = self.path_and_query.split('?').next().unwrap_or("/");
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        Ok(self.with_path(&format!("{dir}{location}")))
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// Same scheme, host and port: where credentials may follow a request.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https && self.host == other.host && self.port == other.port
    }

    /// Same host and port (any scheme).
    pub fn same_host_port(&self, other: &Url) -> bool {
        self.host == other.host && self.port == other.port
    }

    /// The host is `localhost` or an IP literal that is loopback, private (RFC 1918, ULA),
    /// link-local (cloud metadata services live there), unspecified or otherwise not
    /// public. Host names are not resolved (DNS-based SSRF is out of scope, as in
    /// go-containerregistry).
    pub fn is_internal_host(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => internal_v4(ip),
            Ok(IpAddr::V6(ip)) => internal_v6(ip),
            Err(_) => false,
        }
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        // 100.64.0.0/10, carrier-grade NAT.
        || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // fc00::/7, unique local (fd00:ec2::254 is here)
        || (first & 0xffc0) == 0xfe80 // fe80::/10, link-local
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = if self.https { 443 } else { 80 };
        write!(f, "{}://{}", self.scheme(), self.host)?;
        if self.port != default {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.path_and_query)
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub(crate) fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_with_default_ports() {
        let u = Url::parse("https://Registry.Example:443/v2/").unwrap();
        assert_eq!(u.to_string(), "https://registry.example/v2/");
        let u = Url::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(u.to_string(), "http://127.0.0.1:5000/");
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("/relative").is_err());
        assert!(Url::parse("https://user:pw@host/").is_err());
    }

    #[test]
    fn joins_locations() {
        let u = Url::parse("http://127.0.0.1:5000/v2/a/blobs/sha256:1?x=1").unwrap();
        assert_eq!(
            u.join("/other?y").unwrap().to_string(),
            "http://127.0.0.1:5000/other?y"
        );
        assert_eq!(
            u.join("http://127.0.0.2:6000/b").unwrap().to_string(),
            "http://127.0.0.2:6000/b"
        );
        assert_eq!(
            u.join("//cdn.example/b").unwrap().to_string(),
            "http://cdn.example/b"
        );
        assert_eq!(
            u.join("c/d").unwrap().to_string(),
            "http://127.0.0.1:5000/v2/a/blobs/c/d"
        );
        assert!(u.join("").is_err());
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Url::parse("http://127.0.0.1:5000/x").unwrap();
        assert!(a.same_origin(&Url::parse("http://127.0.0.1:5000/y").unwrap()));
        assert!(!a.same_origin(&Url::parse("http://127.0.0.1:5001/x").unwrap()));
        assert!(!a.same_origin(&Url::parse("http://127.0.0.2:5000/x").unwrap()));
        assert!(!a.same_origin(&Url::parse("https://127.0.0.1:5000/x").unwrap()));
        let b = Url::parse("https://h/").unwrap();
        assert!(b.same_origin(&Url::parse("https://h:443/z").unwrap()));
    }

    #[test]
    fn internal_hosts() {
        for internal in [
            "http://localhost/",
            "http://127.0.0.2/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[::ffff:10.0.0.1]/",
        ] {
            assert!(
                Url::parse(internal).unwrap().is_internal_host(),
                "{internal}"
            );
        }
        for public in [
            "https://8.8.8.8/",
            "https://registry.example/",
            "https://[2001:db8::1]/",
        ] {
            assert!(!Url::parse(public).unwrap().is_internal_host(), "{public}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode_query_value("repository:judge/gcc:pull"),
            "repository%3Ajudge%2Fgcc%3Apull"
        );
    }
}
