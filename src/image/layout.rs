//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), from a directory
//! or from a tar whose blobs the archive reader already staged: finds the images by name,
//! descends nested indexes by platform, and stages each image's blobs, verified.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::blobs::BlobError;
use super::digest::{Digest, Mismatch};
use super::import::{blob_error, Candidate, ImportError, Selector, Target};
use super::reference::Reference;
use super::spec::{
    parse_document, select_platform, Descriptor, Document, ImageConfig, Index, Manifest,
    MAX_DOCUMENT_BYTES,
};
use super::store::{Staging, Store};

/// Indexes inside indexes deeper than this are refused.
const MAX_DEPTH: usize = 8;

/// Where the layout's blobs are read from.
enum Source {
    /// `<dir>/blobs/sha256/<hex>`, copied into staging as they are verified.
    Dir(PathBuf),
    /// Already in the staging dir (or the store): a scanned tar.
    Staged,
}

pub(crate) struct Layout<'a> {
    index: Index,
    source: Source,
    store: &'a Store,
    staging: &'a Staging,
    /// From a Docker 25+ `manifest.json`: config digest and its RepoTags.
    repo_tags: Vec<(Digest, Vec<String>)>,
}

/// The fields of a `docker save` manifest.json entry that name images.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tagged {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
}

impl<'a> Layout<'a> {
    /// A layout directory; `manifest.json` (Docker 25+ saves, extracted) adds names.
    pub fn open_dir(
        dir: &Path,
        store: &'a Store,
        staging: &'a Staging,
    ) -> Result<Layout<'a>, ImportError> {
        let index = read_small(dir, "index.json")?.ok_or(ImportError::NotImage)?;
        let oci_layout = read_small(dir, "oci-layout")?.ok_or(ImportError::NotImage)?;
        let manifest_json = read_small(dir, "manifest.json")?;
        let source = Source::Dir(dir.to_path_buf());
        Layout::new(
            Some(&oci_layout),
            &index,
            manifest_json.as_deref(),
            source,
            store,
            staging,
        )
    }

    /// A layout whose blobs a tar scan put in `staging`.
    pub fn staged(
        oci_layout: Option<&[u8]>,
        index: &[u8],
        manifest_json: Option<&[u8]>,
        store: &'a Store,
        staging: &'a Staging,
    ) -> Result<Layout<'a>, ImportError> {
        Layout::new(
            oci_layout,
            index,
            manifest_json,
            Source::Staged,
            store,
            staging,
        )
    }

    fn new(
        oci_layout: Option<&[u8]>,
        index: &[u8],
        manifest_json: Option<&[u8]>,
        source: Source,
        store: &'a Store,
        staging: &'a Staging,
    ) -> Result<Layout<'a>, ImportError> {
        if let Some(bytes) = oci_layout {
            check_version(bytes)?;
        }
        let index = match parse_document("index.json", index, None)? {
            Document::Index(index) => index,
            Document::Manifest(_) => {
                return Err(ImportError::Layout(
                    "index.json is a manifest, not an image index".into(),
                ))
            }
        };
        let repo_tags = manifest_json.map(docker_repo_tags).unwrap_or_default();
        Ok(Layout {
            index,
            source,
            store,
            staging,
            repo_tags,
        })
    }

    /// Chooses the images (by `--tag`, or all with a name), resolves each to one
    /// platform's manifest and stages its blobs.
    pub fn plan(&self, selector: &Selector) -> Result<Vec<Target>, ImportError> {
        let candidates = self
            .index
            .manifests
            .iter()
            .filter(|d| d.is_index() || d.is_manifest())
            .map(|d| Candidate {
                names: self.names_of(d),
                item: d.clone(),
            })
            .collect();
        let mut targets = Vec::new();
        for (name, descriptors) in selector.choose(candidates)? {
            let chosen = if descriptors.len() == 1 {
                descriptors.into_iter().next().expect("one descriptor")
            } else {
                let group = Index {
                    schema_version: 2,
                    media_type: None,
                    manifests: descriptors,
                    annotations: None,
                };
                select_platform("index.json", &group, &selector.platform)?.clone()
            };
            let manifest = self.descend(chosen, selector)?;
            self.stage_image(&name, &manifest, selector)?;
            targets.push(Target {
                name,
                manifest: manifest.digest,
            });
        }
        Ok(targets)
    }

    /// The names an index.json entry carries: containerd's full name, the OCI ref.name,
    /// and for Docker archives the RepoTags of its config.
    fn names_of(&self, d: &Descriptor) -> Vec<String> {
        let mut names: Vec<String> = [
            "io.containerd.image.name",
            "org.opencontainers.image.ref.name",
        ]
        .iter()
        .filter_map(|k| d.annotation(k).map(str::to_string))
        .collect();
        if !self.repo_tags.is_empty() && d.is_manifest() {
            let config = self
                .read_doc(d, "manifest")
                .ok()
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
                .map(|m| m.config.digest);
            if let Some(config) = config {
                for (digest, tags) in &self.repo_tags {
                    if *digest == config {
                        names.extend(tags.iter().cloned());
                    }
                }
            }
        }
        names
    }

    /// Follows nested indexes down to the manifest for the selector's platform.
    fn descend(&self, mut d: Descriptor, selector: &Selector) -> Result<Descriptor, ImportError> {
        for _ in 0..MAX_DEPTH {
            if !d.is_index() {
                return Ok(d);
            }
            let what = format!("index {}", d.digest);
            let bytes = self.read_doc(&d, "index")?;
            d = match parse_document(&what, &bytes, Some(&d.media_type))? {
                Document::Index(index) => {
                    select_platform(&what, &index, &selector.platform)?.clone()
                }
                Document::Manifest(_) => return Ok(d),
            };
        }
        Err(ImportError::TooDeep(MAX_DEPTH))
    }

    /// Reads and checks manifest and config, then stages them and every layer.
    fn stage_image(
        &self,
        name: &Reference,
        d: &Descriptor,
        selector: &Selector,
    ) -> Result<(), ImportError> {
        let image = name.canonical();
        let bytes = self.read_doc(d, "manifest")?;
        let what = format!("manifest {}", d.digest);
        let manifest = match parse_document(&what, &bytes, Some(&d.media_type))? {
            Document::Manifest(m) => m,
            Document::Index(_) => {
                return Err(ImportError::Layout(format!(
                    "{what}: an index where a manifest was expected"
                )))
            }
        };
        let config_bytes = self.read_doc(&manifest.config, "config")?;
        let config_what = format!("config {}", manifest.config.digest);
        let config = ImageConfig::parse(&config_what, &config_bytes, &manifest)?;
        selector.check_platform(&image, &config)?;
        self.stage_bytes(&d.digest, &bytes, "manifest")?;
        self.stage_bytes(&manifest.config.digest, &config_bytes, "config")?;
        for (i, layer) in manifest.layers.iter().enumerate() {
            let what = format!("layer {} of {}", i + 1, image);
            self.stage_blob(layer, &what)?;
        }
        Ok(())
    }

    /// A small blob (index, manifest, config), checked against its descriptor.
    fn read_doc(&self, d: &Descriptor, what: &str) -> Result<Vec<u8>, ImportError> {
        if d.size > MAX_DOCUMENT_BYTES {
            return Err(ImportError::TooBig {
                what: format!("{what} {}", d.digest),
                size: d.size,
                max: MAX_DOCUMENT_BYTES,
            });
        }
        let bytes = match &self.source {
            Source::Dir(dir) => {
                let mut bytes = Vec::with_capacity(d.size as usize);
                let file = open_blob(dir, &d.digest, what)?;
                file.take(d.size + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|source| ImportError::Io {
                        path: d.digest.blob_path(),
                        source,
                    })?;
                bytes
            }
            Source::Staged => {
                let dir = [self.staging.blobs(), self.store.blobs()]
                    .into_iter()
                    .find(|b| b.size(&d.digest).is_some())
                    .ok_or_else(|| missing(d, what))?;
                dir.read_verified(&d.digest, MAX_DOCUMENT_BYTES)
                    .map_err(|e| blob_error(self.store, what, e))?
            }
        };
        if bytes.len() as u64 != d.size {
            return Err(ImportError::Size {
                what: format!("{what} {}", d.digest),
                expected: d.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::of(&bytes);
        if actual != d.digest {
            let mismatch = Mismatch::Digest {
                expected: d.digest.clone(),
                actual,
            };
            return Err(blob_error(
                self.store,
                what,
                BlobError::Mismatch {
                    digest: d.digest.clone(),
                    mismatch,
                },
            ));
        }
        Ok(bytes)
    }

    fn stage_bytes(&self, digest: &Digest, bytes: &[u8], what: &str) -> Result<(), ImportError> {
        let size = bytes.len() as u64;
        if self.present(digest, size) {
            return Ok(());
        }
        self.staging
            .blobs()
            .ingest(digest, size, &mut &bytes[..])
            .map(drop)
            .map_err(|e| blob_error(self.store, what, e))
    }

    /// Copies a layer into staging (verifying it) unless it is there or in the store.
    fn stage_blob(&self, d: &Descriptor, what: &str) -> Result<(), ImportError> {
        if self.present(&d.digest, d.size) {
            return Ok(());
        }
        match &self.source {
            Source::Dir(dir) => {
                let mut file = open_blob(dir, &d.digest, what)?;
                self.staging
                    .blobs()
                    .ingest(&d.digest, d.size, &mut file)
                    .map(drop)
                    .map_err(|e| blob_error(self.store, what, e))
            }
            Source::Staged => match self.staging.blobs().size(&d.digest) {
                Some(actual) => Err(ImportError::Size {
                    what: format!("{what} {}", d.digest),
                    expected: d.size,
                    actual,
                }),
                None => Err(missing(d, what)),
            },
        }
    }

    fn present(&self, digest: &Digest, size: u64) -> bool {
        self.store.blobs().contains(digest, size) || self.staging.blobs().contains(digest, size)
    }
}

fn missing(d: &Descriptor, what: &str) -> ImportError {
    ImportError::MissingBlob {
        digest: d.digest.clone(),
        what: what.to_string(),
    }
}

/// `oci-layout` must say a 1.x layout version.
fn check_version(bytes: &[u8]) -> Result<(), ImportError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct OciLayout {
        image_layout_version: String,
    }
    let layout: OciLayout = serde_json::from_slice(bytes)
        .map_err(|e| ImportError::Layout(format!("oci-layout: {e}")))?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(ImportError::Layout(format!(
            "oci-layout: unsupported imageLayoutVersion '{}'",
            layout.image_layout_version
        )));
    }
    Ok(())
}

/// Config digest -> RepoTags from a Docker 25+ manifest.json (names only: its paths
/// are never opened; entries whose Config is not `blobs/sha256/<hex>` are skipped).
fn docker_repo_tags(bytes: &[u8]) -> Vec<(Digest, Vec<String>)> {
    let entries: Vec<Tagged> = serde_json::from_slice(bytes).unwrap_or_default();
    entries
        .into_iter()
        .filter_map(|e| {
            let hex = e.config.strip_prefix("blobs/sha256/")?;
            let digest = format!("sha256:{hex}").parse().ok()?;
            Some((digest, e.repo_tags.unwrap_or_default()))
        })
        .collect()
}

/// A layout file of at most [`MAX_DOCUMENT_BYTES`]; `None` when absent. Symlinks are
/// not followed.
fn read_small(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, ImportError> {
    let io_err = |source| ImportError::Io {
        path: name.to_string(),
        source,
    };
    let file = match open_nofollow(&dir.join(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let size = file.metadata().map_err(io_err)?.len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(ImportError::TooBig {
            what: name.to_string(),
            size,
            max: MAX_DOCUMENT_BYTES,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    Ok(Some(bytes))
}

/// `<dir>/blobs/sha256/<hex>`: a regular file, not a symlink.
fn open_blob(dir: &Path, digest: &Digest, what: &str) -> Result<File, ImportError> {
    let rel = format!("blobs/{}", digest.blob_path());
    let file = match open_nofollow(&dir.join(&rel)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ImportError::MissingBlob {
                digest: digest.clone(),
                what: what.to_string(),
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ImportError::Entry {
                name: rel,
                why: "a symlink; blobs must be regular files".into(),
            })
        }
        Err(source) => return Err(ImportError::Io { path: rel, source }),
    };
    let is_file = file.metadata().is_ok_and(|m| m.is_file());
    if !is_file {
        return Err(ImportError::Entry {
            name: rel,
            why: "not a regular file".into(),
        });
    }
    Ok(file)
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}
