//! Callbacks: a PUT of the finished submission (Judge0's shape: base64, default fields) to
//! its `callback_url`, from the server, CALLBACKS_MAX_TRIES tries of CALLBACKS_TIMEOUT
//! each. CALLBACKS_ALLOWED_HOSTS (names, IPs, CIDRs) restricts the targets.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

/// Checks the URL's form and, with an allow-list, its host (by name, or every address it
/// resolves to against the IPs and CIDRs).
pub fn check_url(url: &str, allowed: &[String]) -> Result<(), String> {
    let host = host_of(url).ok_or("is not a valid http or https URL")?;
    if allowed.is_empty() {
        return Ok(());
    }
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
        return Ok(());
    }
    let addrs: Vec<IpAddr> = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host.as_str(), 80)
            .to_socket_addrs()
            .map(|a| a.map(|s| s.ip()).collect())
            .unwrap_or_default(),
    };
    let ok = !addrs.is_empty()
        && addrs
            .iter()
            .all(|ip| allowed.iter().any(|a| in_cidr(ip, a)));
    if ok {
        Ok(())
    } else {
        Err(format!("host {host} is not in CALLBACKS_ALLOWED_HOSTS"))
    }
}

/// The host of an http(s) URL, without port or credentials.
fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if authority.starts_with('[') {
        authority.split(']').next()?.to_string() + "]"
    } else {
        authority.split(':').next()?.to_string()
    };
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
    valid.then_some(host)
}

/// Whether `ip` is `spec` (an address) or inside it (a CIDR such as 10.0.0.0/8).
fn in_cidr(ip: &IpAddr, spec: &str) -> bool {
    let (net, bits) = match spec.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (spec, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(*a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(*a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Sends `body` with up to `tries` attempts (blocking); returns the attempts made and
/// whether one got any HTTP answer (Judge0 stops at the first answer, whatever its status).
pub fn send(url: &str, body: &str, tries: u32, timeout: Duration) -> (u32, bool) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("judgebox/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    for attempt in 1..=tries {
        let sent = agent
            .put(url)
            .header("Content-Type", "application/json")
            .send(body);
        if sent.is_ok() {
            return (attempt, true);
        }
        if attempt < tries {
            std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
        }
    }
    (tries, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_allow_lists() {
        assert_eq!(
            host_of("http://127.0.0.1:8080/x").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            host_of("https://u:p@example.org/").as_deref(),
            Some("example.org")
        );
        assert!(host_of("file:///etc/passwd").is_none());
        assert!(host_of("http://").is_none());
        assert!(check_url("http://10.1.2.3/", &[]).is_ok());
        let list = vec!["127.0.0.0/8".to_string(), "hooks.example".to_string()];
        assert!(check_url("http://127.0.0.1:9/cb", &list).is_ok());
        assert!(check_url("http://hooks.example/cb", &list).is_ok());
        assert!(check_url("http://10.0.0.1/cb", &list)
            .unwrap_err()
            .contains("CALLBACKS_ALLOWED_HOSTS"));
        assert!(in_cidr(&"::1".parse().unwrap(), "::1/128"));
        assert!(!in_cidr(&"10.0.0.1".parse().unwrap(), "::/0"));
    }
}
