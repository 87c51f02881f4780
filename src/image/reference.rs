//! Image references (`python:3.12-slim`, `localhost:5000/judge/gcc@sha256:…`), parsed
//! with Docker's defaults: registry `docker.io` (served by `registry-1.docker.io`),
//! `library/` for one-component names, tag `latest`. The canonical form names images in
//! the store, so `python` and `docker.io/library/python:latest` are the same image.

use std::fmt;

use thiserror::Error;

use super::digest::Digest;

/// The registry host names of Docker Hub, as references spell it and as it is served.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Docker Hub's old index host: an alias in references, and the host of the key
/// `docker login` files Hub credentials under (`https://index.docker.io/v1/`).
const DOCKER_HUB_INDEX: &str = "index.docker.io";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid image reference '{0}': {1}")]
    Invalid(String, &'static str),
    #[error("invalid image reference '{0}': {1}")]
    Digest(String, super::digest::DigestError),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `ghcr.io`, ...
    pub registry: String,
    /// `library/python`, `judge/gcc`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as `docker pull` does.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let bad = |why| ReferenceError::Invalid(text.to_string(), why);
        if text.is_empty() || text.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, d)) => (
                rest,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| ReferenceError::Digest(text.to_string(), e))?,
                ),
            ),
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(bad)?;
        }
        let (registry, repository) = split_registry(name);
        check_registry(&registry).map_err(bad)?;
        let repository = match (registry.as_str(), repository.contains('/')) {
            (DOCKER_HUB, false) => format!("library/{repository}"),
            _ => repository.to_string(),
        };
        check_repository(&repository).map_err(bad)?;
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host (and port) to talk to: Docker Hub's API host for `docker.io`.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What the registry's `/manifests/<ref>` endpoint takes: the digest when pinned.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The hosts credential files may list this registry under.
    pub fn auth_hosts(&self) -> Vec<&str> {
        if self.registry == DOCKER_HUB {
            vec![DOCKER_HUB, DOCKER_HUB_INDEX, DOCKER_HUB_API]
        } else {
            vec![self.registry.as_str()]
        }
    }

    /// `registry/repository[:tag][@digest]`, fully spelled out.
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// Whether plain HTTP is allowed without `--insecure-registry`: loopback only.
    pub fn is_loopback(&self) -> bool {
        let host = host_without_port(&self.registry);
        host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `host[:port]` of a registry, without the port; IPv6 literals keep their brackets.
pub fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.find(']').map_or(registry, |i| &registry[..=i]);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// The first component is a registry when it looks like a host: has a '.' or ':', or is
/// `localhost` (Docker's rule); otherwise the name is on Docker Hub.
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            let registry = if first == DOCKER_HUB_INDEX || first == DOCKER_HUB_API {
                DOCKER_HUB
            } else {
                first
            };
            (registry.to_string(), rest)
        }
        _ => (DOCKER_HUB.to_string(), name),
    }
}

/// `host[:port]`: DNS-ish labels or a bracketed IPv6 literal, and a numeric port.
fn check_registry(registry: &str) -> Result<(), &'static str> {
    let host = host_without_port(registry);
    let port = &registry[host.len()..];
    let host_ok = if host.starts_with('[') {
        host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err("the registry must be host[:port]")
    }
}

/// distribution's grammar: lowercase components of `[a-z0-9]+` joined by `.`, `_`, `__`
/// or dashes, separated by `/`.
fn check_repository(repo: &str) -> Result<(), &'static str> {
    if repo.is_empty() || repo.len() > 255 {
        return Err("repository name is empty or longer than 255 characters");
    }
    for component in repo.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !bytes.is_empty()
            && alnum(&bytes[0])
            && alnum(&bytes[bytes.len() - 1])
            && bytes.iter().all(|b| alnum(b) || b"._-".contains(b))
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return Err(
                "repository components must be lowercase letters, digits and . _ - separators",
            );
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), &'static str> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
    if ok {
        Ok(())
    } else {
        Err("a tag is 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_hub_defaults_apply() {
        let r = Reference::parse("python").unwrap();
        assert_eq!(r.canonical(), "docker.io/library/python:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = Reference::parse("python:3.12-slim").unwrap();
        assert_eq!(r.canonical(), "docker.io/library/python:3.12-slim");
        let r = Reference::parse("judge/gcc").unwrap();
        assert_eq!(r.canonical(), "docker.io/judge/gcc:latest");
        assert_eq!(
            Reference::parse("index.docker.io/library/python:3").unwrap(),
            Reference::parse("python:3").unwrap()
        );
    }

    #[test]
    fn registries_ports_and_digests() {
        let r = Reference::parse(&format!("localhost:5000/judge/gcc@{D}")).unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "judge/gcc");
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), D);
        assert!(r.is_loopback());
        let r = Reference::parse("127.0.0.1:5000/x:v1").unwrap();
        assert_eq!((r.tag.as_deref(), r.is_loopback()), (Some("v1"), true));
        let r = Reference::parse(&format!("ghcr.io/a/b:v2@{D}")).unwrap();
        assert_eq!(r.canonical(), format!("ghcr.io/a/b:v2@{D}"));
        assert!(!r.is_loopback());
        assert!(Reference::parse("[::1]:5000/x").unwrap().is_loopback());
        assert!(!Reference::parse("127.0.0.1.evil.com/x")
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn malformed_references_are_refused() {
        for bad in [
            "",
            "Python",
            "python:",
            "python:-x",
            "a//b",
            "python@sha256:abc",
            "python@sha256:../../x",
            "localhost:5000/../x",
            "x/-y",
            "x:a/b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
