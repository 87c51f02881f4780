//! HTTP for the registry client, on a blocking ureq agent: GETs with manual redirects
//! (at most [`MAX_REDIRECTS`] hops, `Authorization` only to the origin it was meant for,
//! never https -> http, a policy check on every hop), retries of 429 (`Retry-After`), 5xx
//! and transport failures with a bounded backoff, and timeouts so that a stalled server
//! cannot hang a pull.

use std::io::{self, Read};
use std::time::{Duration, SystemTime};

use ureq::http::{HeaderMap, Response};
use ureq::Body;

use super::url::Url;
use super::{RegistryError, RetryPolicy, Timeouts};

/// Redirect hops followed per request.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Error bodies are read up to this many bytes, for their message.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// What a request fetches; documents also get a total time budget for their body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Document,
    Blob,
}

/// One GET.
pub(crate) struct Get<'a> {
    pub url: Url,
    pub accept: Option<&'a str>,
    /// Sent to `url`'s origin only; dropped on a redirect to any other origin.
    pub authorization: Option<&'a str>,
    pub kind: Kind,
}

/// Decides whether a redirect hop from one URL to the next may be followed.
pub(crate) type HopCheck<'a> = &'a dyn Fn(&Url, &Url) -> Result<(), String>;

/// The agent plus the retry policy; shared by all threads of one pull.
pub(crate) struct Transport {
    agent: ureq::Agent,
    retry: RetryPolicy,
    timeouts: Timeouts,
}

impl Transport {
    /// An agent that returns every status as a response, follows no redirect itself,
    /// and bounds connects and every read and write. `no_proxy` skips the environment's
    /// proxies (for loopback registries).
    pub fn new(timeouts: Timeouts, retry: RetryPolicy, no_proxy: bool) -> Transport {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("judgebox/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(Some(timeouts.connect))
            .timeout_connect(Some(timeouts.connect))
            .timeout_per_read(Some(timeouts.idle))
            .timeout_per_write(Some(timeouts.idle))
            .timeout_recv_response(Some(timeouts.connect + timeouts.idle))
            .max_idle_connections_per_host(8);
        if no_proxy {
            config = config.proxy(None);
        }
        Transport {
            agent: config.build().new_agent(),
            retry,
            timeouts,
        }
    }

    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Sends `get`, following redirects and retrying 429, 5xx and transport failures.
    /// Returns the final URL and response for any other status (the caller decides).
    pub fn send(&self, get: &Get, check: HopCheck) -> Result<(Url, Response<Body>), RegistryError> {
        let mut attempt = 0;
        loop {
            let wait = match self.follow(get, check) {
                Ok((url, resp)) => match resp.status().as_u16() {
                    429 if attempt < self.retry.attempts => {
                        retry_after(resp.headers(), SystemTime::now())
                            .unwrap_or_else(|| self.retry.backoff(attempt))
                            .min(self.retry.max_wait)
                    }
                    500 | 502 | 503 | 504 if attempt < self.retry.attempts => {
                        self.retry.backoff(attempt)
                    }
                    429 => {
                        return Err(RegistryError::RateLimited {
                            url: url.to_string(),
                            attempts: attempt + 1,
                        })
                    }
                    status @ (500..=599) => {
                        let detail = error_detail(resp);
                        return Err(RegistryError::Server {
                            url: url.to_string(),
                            status,
                            attempts: attempt + 1,
                            detail,
                        });
                    }
                    _ => return Ok((url, resp)),
                },
                Err(e) if e.is_transient() && attempt < self.retry.attempts => {
                    self.retry.backoff(attempt)
                }
                Err(e) => return Err(e),
            };
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// One attempt: GET and follow redirects.
    fn follow(&self, get: &Get, check: HopCheck) -> Result<(Url, Response<Body>), RegistryError> {
        let mut url = get.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let authorization = get.authorization.filter(|_| url.same_origin(&get.url));
            let resp = self.get_once(&url, get.accept, authorization, get.kind)?;
            if !is_redirect(resp.status().as_u16()) {
                return Ok((url, resp));
            }
            let location =
                header(resp.headers(), "location").ok_or_else(|| RegistryError::Redirect {
                    url: url.to_string(),
                    reason: format!("status {} without a Location", resp.status().as_u16()),
                })?;
            let next = url
                .join(location)
                .map_err(|reason| RegistryError::Redirect {
                    url: url.to_string(),
                    reason,
                })?;
            if url.is_https() && !next.is_https() {
                return Err(RegistryError::Redirect {
                    url: url.to_string(),
                    reason: format!("refusing a redirect from https to http ({next})"),
                });
            }
            check(&url, &next).map_err(|reason| RegistryError::Redirect {
                url: url.to_string(),
                reason,
            })?;
            url = next;
        }
        Err(RegistryError::Redirect {
            url: get.url.to_string(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn get_once(
        &self,
        url: &Url,
        accept: Option<&str>,
        authorization: Option<&str>,
        kind: Kind,
    ) -> Result<Response<Body>, RegistryError> {
        let mut req = self.agent.get(url.to_string());
        if let Some(accept) = accept {
            req = req.header("Accept", accept);
        }
        if let Some(auth) = authorization {
            req = req.header("Authorization", auth);
        }
        let result = match kind {
            // A document is small: its whole body must arrive within a bounded time, so a
            // server trickling one byte per idle period cannot hold a pull forever.
            Kind::Document => req
                .config()
                .timeout_recv_body(Some(self.timeouts.connect + 2 * self.timeouts.idle))
                .build()
                .call(),
            // Blobs are identity-encoded so their byte count is the descriptor's size.
            Kind::Blob => req.header("Accept-Encoding", "identity").call(),
        };
        result.map_err(|e| transport_error(url, e, self.timeouts))
    }
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// A header's value as text, if present and valid.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn transport_error(url: &Url, e: ureq::Error, timeouts: Timeouts) -> RegistryError {
    match e {
        ureq::Error::Timeout(phase) => RegistryError::Timeout {
            url: url.to_string(),
            detail: format!("{phase} (idle limit {:?})", timeouts.idle),
        },
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => RegistryError::Timeout {
            url: url.to_string(),
            detail: e.to_string(),
        },
        source => RegistryError::Transport {
            url: url.to_string(),
            source,
        },
    }
}

/// Turns a failed body read into an error naming the URL; ureq's timeouts arrive
/// wrapped in `io::Error`.
pub(crate) fn read_error(url: &Url, e: io::Error) -> RegistryError {
    let timeout = e.kind() == io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)));
    if timeout {
        RegistryError::Timeout {
            url: url.to_string(),
            detail: format!("reading the body: {e}"),
        }
    } else {
        RegistryError::Read {
            url: url.to_string(),
            source: e,
        }
    }
}

/// Reads a whole body of at most `max` bytes; `Err(Some(n))` when it is bigger
/// (`n` = what `Content-Length` said, or `max + 1`).
pub(crate) fn read_capped(
    url: &Url,
    resp: Response<Body>,
    max: u64,
) -> Result<Result<Vec<u8>, u64>, RegistryError> {
    if let Some(len) = header(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok())
    {
        if len > max {
            return Ok(Err(len));
        }
    }
    let mut bytes = Vec::new();
    resp.into_body()
        .into_reader()
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(url, e))?;
    if bytes.len() as u64 > max {
        return Ok(Err(max + 1));
    }
    Ok(Ok(bytes))
}

/// The registry's error message from a distribution-spec error body
/// (`{"errors":[{"code":..,"message":..}]}`), formatted as `: CODE: message`, or "".
pub(crate) fn error_detail(resp: Response<Body>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let mut bytes = Vec::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_end(&mut bytes);
    let Ok(parsed) = serde_json::from_slice::<Errors>(&bytes) else {
        return String::new();
    };
    let text: Vec<String> = parsed
        .errors
        .iter()
        .take(3)
        .map(|e| {
            let message: String = e.message.chars().take(200).collect();
            match (e.code.is_empty(), message.is_empty()) {
                (false, false) => format!("{}: {message}", e.code),
                (false, true) => e.code.clone(),
                _ => message,
            }
        })
        .collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.join("; "))
    }
}

/// `Retry-After` as a wait: delay-seconds or an IMF-fixdate (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = header(headers, "retry-after")?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
    let (_, rest) = text.split_once(", ")?;
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u32
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days.checked_mul(86_400)? + (*h * 3600 + *m * 60 + *s) as i64;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
        assert!(parse_http_date("garbage").is_none());
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            retry_after(&headers, SystemTime::now()),
            Some(Duration::from_secs(7))
        );
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:57 GMT"),
        );
        let now = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(20)));
        let later = now + Duration::from_secs(60);
        assert_eq!(retry_after(&headers, later), Some(Duration::ZERO));
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }
}
