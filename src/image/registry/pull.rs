//! The pull itself: resolve the reference to a manifest (through indexes, each child
//! fetched by digest and verified against its descriptor), fetch and check the config,
//! download the layers a few at a time into the blob dir, and finally store the
//! manifest and index bytes as blobs, so a present manifest means its blobs are present.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::client::{self, Kind};
use super::progress::{Bars, Progress};
use super::session::Session;
use super::{PullOptions, Pulled, RegistryError};
use crate::image::blobs::BlobDir;
use crate::image::digest::{Digest, Mismatch};
use crate::image::reference::Reference;
use crate::image::spec::{
    self, parse_document, select_platform, Descriptor, Document, ImageConfig, Manifest, Platform,
    MANIFEST_ACCEPT, MAX_DOCUMENT_BYTES, OCI_MANIFEST,
};

/// Indexes inside indexes followed at most this deep.
const MAX_NESTING: usize = 4;
/// Read size of blob downloads.
const CHUNK: usize = 256 << 10;

/// Pulls `reference` into `blobs`. See the module docs for what is checked.
pub fn pull(
    reference: &Reference,
    blobs: &BlobDir,
    opts: &PullOptions,
) -> Result<Pulled, RegistryError> {
    let session = Session::new(reference, opts)?;
    session.ping()?;
    let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
    let resolved = resolve(&session, reference, &wanted)?;
    let manifest = &resolved.manifest;

    let missing = remaining_bytes(blobs, &manifest.layers);
    if let Some((max, why)) = &opts.max_download {
        let needed = missing.saturating_add(manifest.config.size);
        if needed > *max {
            return Err(RegistryError::NoRoom {
                what: reference.to_string(),
                needed,
                room: format!("{max} bytes: {why}"),
            });
        }
    }
    let mut stats = Stats::default();
    let progress = Progress::new(opts.progress, missing);
    let config = fetch_config(&session, blobs, manifest, &progress, &mut stats)?;
    let platform = match resolved.index_platform.clone() {
        Some(p) => p,
        None => {
            let actual = config.platform();
            if opts.platform.is_some() && !wanted.matches(&actual) {
                return Err(RegistryError::Platform {
                    what: reference.to_string(),
                    actual: actual.to_string(),
                    wanted: wanted.to_string(),
                });
            }
            actual
        }
    };
    fetch_layers(
        &session,
        blobs,
        &manifest.layers,
        opts.parallel,
        &progress,
        &mut stats,
    )?;
    progress.finish();

    // Documents last: the child manifest, then the indexes above it.
    for doc in resolved.documents.iter().rev() {
        blobs.ingest(&doc.digest, doc.bytes.len() as u64, &mut &doc.bytes[..])?;
    }
    let top = &resolved.documents[0];
    let leaf = &resolved.documents[resolved.documents.len() - 1];
    Ok(Pulled {
        index_digest: (resolved.documents.len() > 1).then(|| top.digest.clone()),
        manifest_digest: leaf.digest.clone(),
        manifest_size: leaf.bytes.len() as u64,
        manifest_media_type: manifest
            .media_type
            .clone()
            .or_else(|| leaf.content_type.clone())
            .filter(|t| t != "application/json")
            .unwrap_or_else(|| OCI_MANIFEST.to_string()),
        platform,
        config_digest: manifest.config.digest.clone(),
        layers: manifest.layers.clone(),
        bytes_downloaded: stats.downloaded,
        reused: stats.reused,
    })
}

#[derive(Default)]
struct Stats {
    downloaded: u64,
    reused: usize,
}

/// A manifest or index as fetched.
struct Fetched {
    bytes: Vec<u8>,
    digest: Digest,
    content_type: Option<String>,
}

struct Resolved {
    /// The top document first, the image manifest last.
    documents: Vec<Fetched>,
    manifest: Manifest,
    /// The platform of the index entry chosen, if the reference was an index.
    index_platform: Option<Platform>,
}

/// Fetches the reference's document and walks indexes down to a manifest.
fn resolve(
    session: &Session,
    reference: &Reference,
    wanted: &Platform,
) -> Result<Resolved, RegistryError> {
    let top_what = reference.to_string();
    let expected = reference.digest.as_ref().map(|d| (d, None));
    let top = fetch_document(session, &reference.manifest_ref(), &top_what, expected)?;
    let mut doc = parse_document(&top_what, &top.bytes, top.content_type.as_deref())?;
    let mut documents = vec![top];
    let mut index_platform = None;
    loop {
        let index = match doc {
            Document::Manifest(manifest) => {
                return Ok(Resolved {
                    documents,
                    manifest,
                    index_platform,
                })
            }
            Document::Index(index) => index,
        };
        let what = match documents.len() {
            1 => top_what.clone(),
            _ => format!(
                "{top_what}: index {}",
                documents[documents.len() - 1].digest
            ),
        };
        if documents.len() > MAX_NESTING {
            return Err(RegistryError::Nesting {
                what,
                max: MAX_NESTING,
            });
        }
        let child = select_platform(&what, &index, wanted)?;
        index_platform = Some(
            child
                .platform
                .clone()
                .map(Platform::normalized)
                .unwrap_or_else(|| Platform::new("linux", "amd64", None)),
        );
        let child_what = format!("{top_what}: manifest {}", child.digest);
        let fetched = fetch_document(
            session,
            &child.digest.to_string(),
            &child_what,
            Some((&child.digest, Some(child.size))),
        )?;
        doc = parse_document(&child_what, &fetched.bytes, fetched.content_type.as_deref())?;
        documents.push(fetched);
    }
}

/// GETs `/v2/<repo>/manifests/<reference>`: capped, hashed, and checked against the
/// expected digest (and size) and the `Docker-Content-Digest` header.
fn fetch_document(
    session: &Session,
    reference: &str,
    what: &str,
    expected: Option<(&Digest, Option<u64>)>,
) -> Result<Fetched, RegistryError> {
    if let Some((_, Some(size))) = expected {
        if size > MAX_DOCUMENT_BYTES {
            return Err(RegistryError::TooBig {
                what: what.to_string(),
                size,
                max: MAX_DOCUMENT_BYTES,
            });
        }
    }
    let path = format!("/v2/{}/manifests/{reference}", session.repository());
    let accept = MANIFEST_ACCEPT.join(", ");
    let (url, resp) = session.get(&path, Some(&accept), Kind::Document, what)?;
    let content_type = client::header(resp.headers(), "content-type").map(str::to_string);
    let header_digest = client::header(resp.headers(), "docker-content-digest").map(str::to_string);
    let bytes = client::read_capped(&url, resp, MAX_DOCUMENT_BYTES)?.map_err(|size| {
        RegistryError::TooBig {
            what: what.to_string(),
            size,
            max: MAX_DOCUMENT_BYTES,
        }
    })?;
    let digest = Digest::of(&bytes);
    if let Some((want, size)) = expected {
        check_content(what, want, size, &digest, bytes.len() as u64)?;
    }
    if let Some(header) = header_digest {
        // Only sha256 can be compared; other algorithms are not ours to check.
        if let Ok(claimed) = header.trim().parse::<Digest>() {
            if claimed != digest {
                return Err(RegistryError::HeaderDigest {
                    what: what.to_string(),
                    header,
                    actual: digest,
                });
            }
        }
    }
    Ok(Fetched {
        bytes,
        digest,
        content_type,
    })
}

/// Size first, then digest (image-spec `descriptor.md`).
fn check_content(
    what: &str,
    want: &Digest,
    size: Option<u64>,
    actual: &Digest,
    len: u64,
) -> Result<(), RegistryError> {
    let mismatch = match size {
        Some(size) if size != len => Mismatch::Size {
            expected: size,
            actual: len,
        },
        _ if want != actual => Mismatch::Digest {
            expected: want.clone(),
            actual: actual.clone(),
        },
        _ => return Ok(()),
    };
    Err(RegistryError::Mismatch {
        what: what.to_string(),
        mismatch,
    })
}

/// Fetches the config blob and checks it against the manifest.
fn fetch_config(
    session: &Session,
    blobs: &BlobDir,
    manifest: &Manifest,
    progress: &Progress,
    stats: &mut Stats,
) -> Result<ImageConfig, RegistryError> {
    let desc = &manifest.config;
    let what = format!("config {}", desc.digest);
    if desc.size > MAX_DOCUMENT_BYTES {
        return Err(RegistryError::TooBig {
            what,
            size: desc.size,
            max: MAX_DOCUMENT_BYTES,
        });
    }
    if blobs.contains(&desc.digest, desc.size) {
        stats.reused += 1;
    } else {
        let never = AtomicBool::new(false);
        stats.downloaded += fetch_blob(session, blobs, desc, &progress.hidden(), &never)?;
    }
    let bytes = blobs.read_verified(&desc.digest, MAX_DOCUMENT_BYTES)?;
    Ok(ImageConfig::parse(&what, &bytes, manifest)?)
}

/// Bytes of the layers not yet present (for the total progress bar).
fn remaining_bytes(blobs: &BlobDir, layers: &[Descriptor]) -> u64 {
    unique(layers)
        .filter(|d| !blobs.contains(&d.digest, d.size))
        .map(|d| d.size)
        .sum()
}

/// Each digest once, in order.
fn unique(layers: &[Descriptor]) -> impl Iterator<Item = &Descriptor> {
    let mut seen = HashSet::new();
    layers.iter().filter(move |d| seen.insert(d.digest.clone()))
}

/// Downloads the missing layers, `parallel` at a time; the first failure stops the rest.
fn fetch_layers(
    session: &Session,
    blobs: &BlobDir,
    layers: &[Descriptor],
    parallel: usize,
    progress: &Progress,
    stats: &mut Stats,
) -> Result<(), RegistryError> {
    for layer in layers {
        // Refuse unknown layer types before any download (parse_document checked too).
        spec::LayerCompression::of(&layer.media_type)?;
    }
    let (present, todo): (Vec<&Descriptor>, Vec<&Descriptor>) =
        unique(layers).partition(|d| blobs.contains(&d.digest, d.size));
    stats.reused += present.len();
    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let downloaded = AtomicU64::new(0);
    let failure: Mutex<Option<RegistryError>> = Mutex::new(None);
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= todo.len() || cancel.load(Ordering::Relaxed) {
            return;
        }
        let bars = progress.blob(todo[i]);
        match fetch_blob(session, blobs, todo[i], &bars, &cancel) {
            Ok(n) => {
                downloaded.fetch_add(n, Ordering::Relaxed);
                bars.layer.finish_with_message("done");
            }
            Err(e) => {
                bars.layer.abandon_with_message("failed");
                let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() && !matches!(e, RegistryError::Cancelled) {
                    *slot = Some(e);
                }
                cancel.store(true, Ordering::Relaxed);
                return;
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1).min(todo.len()) {
            s.spawn(worker);
        }
    });
    stats.downloaded += downloaded.load(Ordering::Relaxed);
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Downloads one blob into the store (verified by `ingest_with`); retries a download
/// that broke off mid-body. Returns the bytes fetched (0 if another process had just
/// stored it).
fn fetch_blob(
    session: &Session,
    blobs: &BlobDir,
    desc: &Descriptor,
    bars: &Bars,
    cancel: &AtomicBool,
) -> Result<u64, RegistryError> {
    let retry = session.transport().retry();
    let mut attempt = 0;
    loop {
        let mut fetched = 0;
        let result = blobs.ingest_with(&desc.digest, desc.size, |w| {
            download(session, desc, w, bars, cancel).map(|n| fetched = n)
        })?;
        match result {
            Ok(_) => return Ok(fetched),
            Err(Failure { retry: true, .. })
                if attempt < retry.attempts && !cancel.load(Ordering::Relaxed) =>
            {
                bars.restart();
                std::thread::sleep(retry.backoff(attempt));
                attempt += 1;
            }
            Err(Failure { error, .. }) => return Err(error),
        }
    }
}

/// A failed download; `retry` when the body broke off (a new GET may succeed).
struct Failure {
    error: RegistryError,
    retry: bool,
}

impl From<RegistryError> for Failure {
    fn from(error: RegistryError) -> Failure {
        Failure {
            error,
            retry: false,
        }
    }
}

/// GETs the blob and streams it into `w`, refusing more than the descriptor's size.
fn download(
    session: &Session,
    desc: &Descriptor,
    w: &mut dyn Write,
    bars: &Bars,
    cancel: &AtomicBool,
) -> Result<u64, Failure> {
    let what = format!("blob {}", desc.digest);
    let path = format!("/v2/{}/blobs/{}", session.repository(), desc.digest);
    let (url, resp) = session.get(&path, None, Kind::Blob, &what)?;
    let oversize = || RegistryError::Oversize {
        what: what.clone(),
        size: desc.size,
    };
    let encoded = resp.headers().contains_key("content-encoding");
    let announced =
        client::header(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok());
    if !encoded && announced.is_some_and(|len| len > desc.size) {
        return Err(oversize().into());
    }
    let mut reader = resp.into_body().into_reader().take(desc.size + 1);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(RegistryError::Cancelled.into());
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure {
                    error: client::read_error(&url, e),
                    retry: true,
                })
            }
        };
        if total + n as u64 > desc.size {
            return Err(oversize().into());
        }
        w.write_all(&buf[..n])
            .map_err(|source| RegistryError::Write {
                what: what.clone(),
                source,
            })?;
        total += n as u64;
        bars.inc(n as u64);
    }
}
