//! Pulling images from registries (Docker Registry HTTP API v2 / OCI distribution) on a
//! blocking HTTP client: `GET /v2/`, anonymous or credentialed bearer tokens or Basic
//! auth, the manifest (capped, hashed, checked against a pinned digest and
//! `Docker-Content-Digest`), platform selection in indexes, then the config and layers
//! by digest, streamed into the [`BlobDir`] with size and digest verified on the way.
//!
//! Safety rules: plain HTTP only for loopback registries or `--insecure-registry` hosts;
//! redirects followed by hand (at most 5 hops, `Authorization` never sent to another
//! origin, never https -> http, no internal addresses from an https registry); token
//! realms checked the same way; every read bounded by an idle timeout; 429 and 5xx
//! retried a bounded number of times.
//!
//! Files: `url` (URLs, origins, internal addresses), `client` (HTTP, redirects, retries),
//! `auth` (challenges, tokens, credential files), `session` (one repository: probe,
//! authenticated GETs, status errors), `pull` (manifests, indexes, blobs), `progress`.

mod auth;
mod client;
mod progress;
mod pull;
mod session;
mod url;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

pub use auth::Credentials;
pub use pull::pull;

use super::blobs::BlobError;
use super::digest::{Digest, Mismatch};
use super::spec::{Descriptor, Platform, SpecError};

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index; `None` means the host's. When set, a
    /// single-platform image for another platform is an error.
    pub platform: Option<Platform>,
    /// Registries (`host:port` or `host`) to reach over plain HTTP.
    pub insecure: Vec<String>,
    pub credentials: Option<Credentials>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Layers downloaded at once.
    pub parallel: usize,
    /// Draw progress bars on stderr (only sensible on a terminal).
    pub progress: bool,
    /// Most bytes of config and layers to download, and why (the store's room): a pull
    /// that needs more stops before its first blob.
    pub max_download: Option<(u64, String)>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            insecure: Vec::new(),
            credentials: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            parallel: 3,
            progress: false,
            max_download: None,
        }
    }
}

/// Network time limits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Resolving and connecting (including TLS).
    pub connect: Duration,
    /// The longest wait for any read or write: a registry silent for this long fails the
    /// request. Documents (manifests, tokens) also must arrive within connect + 2 × idle.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        }
    }
}

/// Retries of 429, 5xx and failed connections or reads.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// The first backoff; doubles with each retry.
    pub backoff: Duration,
    /// The longest single wait, also the cap on `Retry-After`.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_wait)
    }
}

/// What a pull fetched; every blob it names is in the blob dir.
#[derive(Debug, Clone, Serialize)]
pub struct Pulled {
    /// The index the reference resolved to, when it was one (its bytes are a blob too).
    pub index_digest: Option<Digest>,
    /// The image manifest for the chosen platform (its bytes are a blob).
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub manifest_media_type: String,
    pub platform: Platform,
    pub config_digest: Digest,
    pub layers: Vec<Descriptor>,
    /// Bytes of config and layers fetched over the network.
    pub bytes_downloaded: u64,
    /// Config and layer blobs that were already present.
    pub reused: usize,
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("{what}: needs {needed} bytes of blobs, more than the store has room for ({room}); nothing was downloaded")]
    NoRoom {
        what: String,
        needed: u64,
        room: String,
    },
    #[error("registry {registry}: {reason}")]
    Config { registry: String, reason: String },
    #[error("GET {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
    #[error("GET {url}: timed out: {detail}")]
    Timeout { url: String, detail: String },
    #[error("GET {url}: reading the response: {source}")]
    Read {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("GET {url}: {reason}")]
    Redirect { url: String, reason: String },
    #[error("authentication required by {url}{detail}: pass --username and --password-stdin, or --authfile")]
    AuthRequired { url: String, detail: String },
    #[error("repository not found or access denied: {what} (status {status} from {url}{detail})")]
    Denied {
        what: String,
        status: u16,
        url: String,
        detail: String,
    },
    #[error("not found: {what} (404 from {url}{detail}; the repository or tag may not exist, or access is denied)")]
    NotFound {
        what: String,
        url: String,
        detail: String,
    },
    #[error("GET {url}: still rate limited (429) after {attempts} attempts; try again later")]
    RateLimited { url: String, attempts: u32 },
    #[error("GET {url}: server error {status} after {attempts} attempts{detail}")]
    Server {
        url: String,
        status: u16,
        attempts: u32,
        detail: String,
    },
    #[error("GET {url}: unexpected status {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("token server {realm}: {reason}")]
    Token { realm: String, reason: String },
    #[error("auth file {path}: {reason}")]
    AuthFile { path: PathBuf, reason: String },
    #[error("{what}: {size} bytes is over the {max}-byte limit for a manifest or config")]
    TooBig { what: String, size: u64, max: u64 },
    #[error("{what}: {mismatch}")]
    Mismatch { what: String, mismatch: Mismatch },
    #[error("{what}: the registry's Docker-Content-Digest {header} does not match the content ({actual})")]
    HeaderDigest {
        what: String,
        header: String,
        actual: Digest,
    },
    #[error("{what}: the registry sent more than the {size} bytes of its descriptor")]
    Oversize { what: String, size: u64 },
    #[error("{what}: writing to the blob store: {source}")]
    Write {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: indexes nested more than {max} deep")]
    Nesting { what: String, max: usize },
    #[error("{what}: the image is for {actual}, not the requested {wanted}")]
    Platform {
        what: String,
        actual: String,
        wanted: String,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("pull cancelled after another download failed")]
    Cancelled,
}

impl RegistryError {
    /// Failures worth another attempt: the connection broke or stalled.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { source, .. } => matches!(
                source,
                ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_)
            ),
            RegistryError::Timeout { .. } | RegistryError::Read { .. } => true,
            _ => false,
        }
    }
}
