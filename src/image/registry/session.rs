//! One repository on one registry: the base URL (https, or plain http for loopback and
//! `--insecure-registry` hosts), the `GET /v2/` probe, authenticated GETs that answer a
//! 401 challenge once, the redirect policy for registry requests, and clear errors for
//! 401/403/404.

use ureq::http::Response;
use ureq::Body;

use super::auth::Auth;
use super::client::{self, Get, Kind, Transport};
use super::url::Url;
use super::{PullOptions, RegistryError};
use crate::image::reference::{host_without_port, Reference};

pub(crate) struct Session {
    transport: Transport,
    auth: Auth,
    /// `scheme://host[:port]/`.
    base: Url,
    repository: String,
    anonymous: bool,
}

impl Session {
    pub fn new(reference: &Reference, opts: &PullOptions) -> Result<Session, RegistryError> {
        let plain = plain_http_allowed(reference, &opts.insecure);
        let base = Url::base(!plain, reference.api_host(), "/").map_err(|reason| {
            RegistryError::Config {
                registry: reference.registry.clone(),
                reason,
            }
        })?;
        let transport = Transport::new(opts.timeouts, opts.retry, reference.is_loopback());
        let auth = Auth::new(
            base.clone(),
            &reference.repository,
            opts.credentials.clone(),
        );
        Ok(Session {
            transport,
            auth,
            base,
            repository: reference.repository.clone(),
            anonymous: opts.credentials.is_none(),
        })
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `GET /v2/`: checks that this is a registry and takes its auth challenge early.
    pub fn ping(&self) -> Result<(), RegistryError> {
        let get = Get {
            url: self.base.with_path("/v2/"),
            accept: None,
            authorization: None,
            kind: Kind::Document,
        };
        let (url, resp) = self
            .transport
            .send(&get, &|from, to| self.check_hop(from, to))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                let challenges = www_authenticate(&resp);
                let refs: Vec<&str> = challenges.iter().map(String::as_str).collect();
                self.auth.challenged(&self.transport, &url, &refs, None)
            }
            404 => Err(RegistryError::Status {
                url: url.to_string(),
                status: 404,
                detail: ": not a registry (no /v2/ API)".to_string(),
            }),
            status => Err(RegistryError::Status {
                url: url.to_string(),
                status,
                detail: client::error_detail(resp),
            }),
        }
    }

    /// GET `path` on the registry with authentication; `what` names the object in errors.
    pub fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        kind: Kind,
        what: &str,
    ) -> Result<(Url, Response<Body>), RegistryError> {
        let url = self.base.with_path(path);
        let mut challenged = false;
        loop {
            let authorization = self.auth.header(&self.transport)?;
            let get = Get {
                url: url.clone(),
                accept,
                authorization: authorization.as_deref(),
                kind,
            };
            let (final_url, resp) = self
                .transport
                .send(&get, &|from, to| self.check_hop(from, to))?;
            let status = resp.status().as_u16();
            match status {
                200..=299 => return Ok((final_url, resp)),
                401 if !challenged && final_url.same_origin(&self.base) => {
                    challenged = true;
                    let challenges = www_authenticate(&resp);
                    let refs: Vec<&str> = challenges.iter().map(String::as_str).collect();
                    self.auth.challenged(
                        &self.transport,
                        &final_url,
                        &refs,
                        authorization.as_deref(),
                    )?;
                }
                401 | 403 => {
                    let mut detail = client::error_detail(resp);
                    if self.anonymous {
                        detail.push_str(
                            " (pulled anonymously: pass --username and --password-stdin, or --authfile, if it is private)",
                        );
                    }
                    return Err(RegistryError::Denied {
                        what: what.to_string(),
                        status,
                        url: final_url.to_string(),
                        detail,
                    });
                }
                404 => {
                    return Err(RegistryError::NotFound {
                        what: what.to_string(),
                        url: final_url.to_string(),
                        detail: client::error_detail(resp),
                    })
                }
                _ => {
                    return Err(RegistryError::Status {
                        url: final_url.to_string(),
                        status,
                        detail: client::error_detail(resp),
                    })
                }
            }
        }
    }

    /// The redirect policy for registry requests: plain http only for registries that are
    /// plain http themselves, and an https registry may not send us to internal addresses
    /// other than its own host (SSRF, as go-containerregistry's `checkRedirectSSRF`).
    fn check_hop(&self, _from: &Url, to: &Url) -> Result<(), String> {
        if !to.is_https() && self.base.is_https() {
            return Err(format!("refusing a redirect to plain http ({to})"));
        }
        if self.base.is_https() && to.is_internal_host() && !to.same_host_port(&self.base) {
            return Err(format!(
                "refusing a redirect to a private or local address ({to})"
            ));
        }
        Ok(())
    }
}

fn www_authenticate(resp: &Response<Body>) -> Vec<String> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// Plain HTTP for loopback registries and those named by `--insecure-registry`
/// (as `host:port` or bare `host`).
pub(crate) fn plain_http_allowed(reference: &Reference, insecure: &[String]) -> bool {
    if reference.is_loopback() {
        return true;
    }
    let names = [
        reference.registry.as_str(),
        reference.api_host(),
        host_without_port(&reference.registry),
    ];
    insecure.iter().any(|i| names.contains(&i.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_or_named_insecure_hosts() {
        let r = |s: &str| Reference::parse(s).unwrap();
        assert!(plain_http_allowed(&r("127.0.0.1:5000/a"), &[]));
        assert!(plain_http_allowed(&r("localhost:5000/a"), &[]));
        assert!(!plain_http_allowed(&r("reg.example:5000/a"), &[]));
        assert!(plain_http_allowed(
            &r("reg.example:5000/a"),
            &["reg.example:5000".into()]
        ));
        assert!(plain_http_allowed(
            &r("reg.example:5000/a"),
            &["reg.example".into()]
        ));
        assert!(!plain_http_allowed(
            &r("reg.example:5000/a"),
            &["other.example".into()]
        ));
    }

    #[test]
    fn https_registries_may_not_redirect_to_http_or_internal_addresses() {
        let session = Session::new(
            &Reference::parse("reg.example/a:v1").unwrap(),
            &PullOptions::default(),
        )
        .unwrap();
        let from = Url::parse("https://reg.example/v2/a/blobs/x").unwrap();
        let hop = |to: &str| session.check_hop(&from, &Url::parse(to).unwrap());
        assert!(hop("https://cdn.example/blob?sig=1").is_ok());
        assert!(hop("https://reg.example/other").is_ok());
        assert!(hop("http://cdn.example/blob").is_err());
        assert!(hop("https://169.254.169.254/latest/meta-data").is_err());
        assert!(hop("https://127.0.0.1:5000/x").is_err());
        assert!(hop("https://[fd00::1]/x").is_err());

        let loopback = Session::new(
            &Reference::parse("127.0.0.1:5000/a:v1").unwrap(),
            &PullOptions::default(),
        )
        .unwrap();
        let from = Url::parse("http://127.0.0.1:5000/v2/a/blobs/x").unwrap();
        assert!(loopback
            .check_hop(&from, &Url::parse("http://127.0.0.2:6000/b").unwrap())
            .is_ok());
    }
}
