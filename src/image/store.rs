//! The image store under `--root` (default `/var/lib/judgebox`): verified blobs, the names
//! in `images.json`, and one flattened rootfs per image, unpacked once in a private
//! staging dir and renamed into place, so a rootfs that is visible is always complete.
//!
//! Layout: `blobs/` ([`BlobDir`]), `images.json`, `rootfs/<manifest hex>/`, `staging/`
//! (unpacks, imports, temp files: `<kind>.<pid>.<seq>`), `locks/` (flock files: `store`
//! for the index, `gc` shared by imports and taken exclusively by prune, `<manifest hex>`
//! exclusive while unpacking and shared by runs using that rootfs). All 0700, root-owned.

mod index;
mod quota;
mod rootfs;

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::Serialize;
use thiserror::Error;

use super::blobs::{BlobDir, BlobError};
use super::digest::Digest;
use super::reference::{Reference, ReferenceError};
use super::spec::MAX_DOCUMENT_BYTES;
use super::spec::{parse_document, Document, ImageConfig, LayerCompression, Manifest, SpecError};
use super::unpack::{self, LayerSource, Limits, UnpackError, UnpackStats};
use crate::flock::{self as lock, FileLock, Mode};
use index::IndexFile;
pub use index::{rfc3339, ImageRecord, LayerRecord};
pub use quota::{Quota, Room};
pub use rootfs::MOUNT_POINTS;

pub const DEFAULT_ROOT: &str = "/var/lib/judgebox";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("store {0}: not a directory")]
    NotDir(PathBuf),
    #[error("store {path}: owned by uid {uid}, not by us (uid {euid}); refusing to use it")]
    NotOwned { path: PathBuf, uid: u32, euid: u32 },
    #[error("image index {path}: {detail}")]
    Index { path: PathBuf, detail: String },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("manifest {0}: is an image index, not a manifest; choose a platform's manifest first")]
    NotAManifest(Digest),
    #[error("manifest {0}: descriptor says {1} bytes but the blob has {2}")]
    SizeMismatch(Digest, u64, u64),
    #[error("image {name}: layer {digest} ({size} bytes) is not in the store")]
    MissingLayer {
        name: String,
        digest: Digest,
        size: u64,
    },
    #[error("image {name}: cannot unpack: {source}")]
    Unpack {
        name: String,
        #[source]
        source: UnpackError,
    },
    #[error("image {name}: cannot prepare the rootfs {path}: {source}")]
    Finish {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "disk full under {root} while {step}; nothing was kept: free space or use another --root"
    )]
    DiskFull { root: PathBuf, step: String },
    #[error("store {root}: image {name} does not fit: {detail}; nothing was kept (prune, or raise --max-store / lower --min-free)")]
    Full {
        root: PathBuf,
        name: String,
        detail: String,
    },
    #[error("no image '{0}' in the store")]
    NotFound(String),
    #[error("'{0}' matches several images; use a longer digest or the name")]
    Ambiguous(String),
    #[error("image {name}: its rootfs {path} is missing; import or pull the image again")]
    RootfsMissing { name: String, path: PathBuf },
    #[error("another import or pull is using the store {0}; prune again when it is done")]
    Busy(PathBuf),
    #[error("image {0}: has neither Entrypoint nor Cmd; give the command after --")]
    NoCommand(String),
}

/// Progress of one image's unpack, in compressed layer bytes.
#[derive(Debug, Clone, Copy)]
pub struct UnpackProgress<'a> {
    pub image: &'a str,
    pub layer: usize,
    pub layers: usize,
    pub done: u64,
    pub total: u64,
}

/// What [`Store::add_image`] did.
#[derive(Debug)]
pub struct Added {
    pub record: ImageRecord,
    /// `None` when the rootfs was already there (another name, or a re-import).
    pub unpacked: Option<UnpackStats>,
    /// The manifest this name pointed to before, if it changed.
    pub replaced: Option<Digest>,
}

/// An image ready to run. Holds a shared lock on its rootfs, so `prune` leaves the rootfs
/// alone until this is dropped.
#[derive(Debug)]
pub struct Resolved {
    pub record: ImageRecord,
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    _lease: FileLock,
}

/// A private blob dir in `staging/` for an import: blobs land here while the import is
/// checked, and move into the store only once the image is unpacked. Removed on drop.
pub struct Staging {
    dir: PathBuf,
    blobs: BlobDir,
}

#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    pub rootfs: Vec<Freed>,
    pub blobs: Vec<Freed>,
    /// Unreferenced rootfs kept because a run is using them.
    pub in_use: Vec<Digest>,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Freed {
    pub digest: Digest,
    pub bytes: u64,
}

pub struct Store {
    root: PathBuf,
    blobs: BlobDir,
    limits: Limits,
    quota: Quota,
    /// Shared `gc` lock, taken on first use by an import or pull.
    gc: OnceLock<FileLock>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating) the store at `root` and removes what dead imports left behind.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        private_dir(root, false)?;
        for sub in ["rootfs", "staging", "locks"] {
            private_dir(&root.join(sub), true)?;
        }
        let store = Store {
            root: root.to_path_buf(),
            blobs: BlobDir::open(&root.join("blobs"))?,
            limits: Limits::default(),
            quota: Quota::default(),
            gc: OnceLock::new(),
        };
        store.clean_stale()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// What the store's quota leaves for the next import or pull, and which bound that is.
    pub fn room(&self) -> Result<quota::Room, StoreError> {
        let images = IndexFile::load(&self.index_path())?.images;
        quota::room(&self.root, &self.quota, &images, &self.blobs).map_err(io_at(&self.root))
    }

    /// Store-wide cap and free-space reserve every later import or pull stays within.
    pub fn set_quota(&mut self, quota: Quota) {
        self.quota = quota;
    }

    /// The blob dir to ingest pulled blobs into (the manifest too) before [`add_image`].
    /// Taking it marks this process as an importer, so `prune` waits for it.
    ///
    /// [`add_image`]: Store::add_image
    pub fn blobs(&self) -> &BlobDir {
        let _ = self.hold_gc();
        &self.blobs
    }

    /// Where an image's rootfs lives (whether or not it is there).
    pub fn rootfs_path(&self, manifest: &Digest) -> PathBuf {
        self.root.join("rootfs").join(manifest.encoded())
    }

    /// A fresh private staging blob dir for an import.
    pub fn staging(&self) -> Result<Staging, StoreError> {
        self.hold_gc()?;
        let dir = self.staging_path("import");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_at(&dir))?;
        let blobs = BlobDir::open(&dir)?;
        Ok(Staging { dir, blobs })
    }

    /// Names `reference` the image whose manifest is `manifest`, all of whose blobs are
    /// in [`blobs`](Store::blobs): checks manifest and config, unpacks the rootfs unless
    /// it is there already, and records the name.
    pub fn add_image(
        &self,
        reference: &Reference,
        manifest: &Digest,
        progress: &mut dyn FnMut(UnpackProgress<'_>),
    ) -> Result<Added, StoreError> {
        self.add(None, reference, manifest, progress)
    }

    /// [`add_image`](Store::add_image) for an image whose blobs are in `staging` (or
    /// already in the store); they move into the store once the rootfs is in place.
    pub fn add_staged(
        &self,
        staging: &Staging,
        reference: &Reference,
        manifest: &Digest,
        progress: &mut dyn FnMut(UnpackProgress<'_>),
    ) -> Result<Added, StoreError> {
        self.add(Some(&staging.blobs), reference, manifest, progress)
    }

    /// Every name, sorted.
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        Ok(IndexFile::load(&self.index_path())?.images)
    }

    /// The record of a name (`python3:x` finds `docker.io/library/python3:x`), a manifest
    /// digest, or a unique prefix of 12+ hex digits of one.
    pub fn find(&self, name: &str) -> Result<ImageRecord, StoreError> {
        let index = IndexFile::load(&self.index_path())?;
        lookup(&index.images, name).cloned()
    }

    /// An image ready to run: its record, rootfs and config, with a lease on the rootfs.
    pub fn resolve(&self, name: &str) -> Result<Resolved, StoreError> {
        let record = self.find(name)?;
        let lease = self.lock(record.manifest.encoded(), Mode::Shared)?;
        let rootfs = self.rootfs_path(&record.manifest);
        if !fs::symlink_metadata(&rootfs).is_ok_and(|m| m.is_dir()) {
            return Err(StoreError::RootfsMissing {
                name: record.name,
                path: rootfs,
            });
        }
        let manifest = self.load_manifest(None, &record.manifest)?;
        let config = self.load_config(None, &manifest)?;
        Ok(Resolved {
            record,
            rootfs,
            config,
            _lease: lease,
        })
    }

    /// Drops a name. Its rootfs and blobs stay until [`prune`](Store::prune).
    pub fn remove(&self, name: &str) -> Result<ImageRecord, StoreError> {
        self.update_index(|index| {
            let found = lookup(&index.images, name)?.name.clone();
            Ok(index.remove(&found).expect("the record was just found"))
        })
    }

    /// Deletes every rootfs and blob no name refers to (a rootfs a run is using is kept).
    pub fn prune(&self) -> Result<PruneReport, StoreError> {
        let _gc = lock::try_lock(&self.lock_path("gc"), Mode::Exclusive)
            .map_err(io_at(&self.lock_path("gc")))?
            .ok_or_else(|| StoreError::Busy(self.root.clone()))?;
        let _index = self.lock("store", Mode::Exclusive)?;
        let images = IndexFile::load(&self.index_path())?.images;
        let manifests: HashSet<&Digest> = images.iter().map(|r| &r.manifest).collect();
        let blobs: HashSet<&Digest> = images.iter().flat_map(|r| r.blobs()).collect();
        let mut report = PruneReport::default();
        self.prune_rootfs(&manifests, &mut report)?;
        for (digest, bytes) in self.blobs.list()? {
            if !blobs.contains(&digest) {
                self.blobs.remove(&digest)?;
                report.blobs.push(Freed { digest, bytes });
            }
        }
        report.bytes = report
            .rootfs
            .iter()
            .chain(&report.blobs)
            .map(|f| f.bytes)
            .sum();
        Ok(report)
    }

    fn prune_rootfs(
        &self,
        keep: &HashSet<&Digest>,
        report: &mut PruneReport,
    ) -> Result<(), StoreError> {
        let dir = self.root.join("rootfs");
        for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
            let entry = entry.map_err(io_at(&dir))?;
            let Some(digest) = hex_digest(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            if keep.contains(&digest) {
                continue;
            }
            let lock_path = self.lock_path(digest.encoded());
            let Some(_lock) =
                lock::try_lock(&lock_path, Mode::Exclusive).map_err(io_at(&lock_path))?
            else {
                report.in_use.push(digest);
                continue;
            };
            let bytes = rootfs::disk_usage(&entry.path());
            // Out of sight first, so no half-deleted rootfs is ever visible.
            let trash = self.staging_path("trash");
            fs::rename(entry.path(), &trash).map_err(io_at(&trash))?;
            remove_tree(&trash)?;
            report.rootfs.push(Freed { digest, bytes });
        }
        Ok(())
    }

    fn add(
        &self,
        staged: Option<&BlobDir>,
        reference: &Reference,
        manifest_digest: &Digest,
        progress: &mut dyn FnMut(UnpackProgress<'_>),
    ) -> Result<Added, StoreError> {
        self.hold_gc()?;
        let name = reference.canonical();
        let manifest = self.load_manifest(staged, manifest_digest)?;
        let config = self.load_config(staged, &manifest)?;
        let layers = self.layer_sources(staged, &name, &manifest, &config)?;
        let rootfs = self.rootfs_path(manifest_digest);
        let mut unpacked = None;
        let mut rootfs_bytes = None;
        if !rootfs.is_dir() {
            let _lock = self.lock(manifest_digest.encoded(), Mode::Exclusive)?;
            if !rootfs.is_dir() {
                let working_dir = config
                    .config
                    .as_ref()
                    .and_then(|c| c.working_dir.as_deref());
                let sizes: Vec<u64> = manifest.layers.iter().map(|l| l.size).collect();
                let budget = self.unpack_budget(staged, &name, &manifest)?;
                let job = Unpack {
                    name: &name,
                    manifest: manifest_digest,
                    layers: &layers,
                    sizes: &sizes,
                    working_dir,
                    budget,
                };
                let (stats, bytes) = self.unpack(&job, progress)?;
                unpacked = Some(stats);
                rootfs_bytes = Some(bytes);
            }
        }
        if let Some(staged) = staged {
            self.adopt(staged, manifest_digest, &manifest)?;
        }
        let record = ImageRecord {
            name,
            manifest: manifest_digest.clone(),
            media_type: manifest
                .media_type
                .clone()
                .unwrap_or_else(|| super::spec::OCI_MANIFEST.to_string()),
            config: manifest.config.digest.clone(),
            platform: config.platform().to_string(),
            layers: manifest
                .layers
                .iter()
                .zip(&config.rootfs.diff_ids)
                .map(|(l, diff_id)| LayerRecord {
                    digest: l.digest.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                    diff_id: diff_id.clone(),
                })
                .collect(),
            added: rfc3339(now()),
            rootfs_bytes,
        };
        let (record, replaced) = self.update_index(|index| {
            let mut record = record;
            if record.rootfs_bytes.is_none() {
                record.rootfs_bytes = index
                    .images
                    .iter()
                    .find(|r| r.manifest == record.manifest)
                    .and_then(|r| r.rootfs_bytes);
            }
            let replaced = index.put(record.clone());
            Ok((record, replaced))
        })?;
        Ok(Added {
            record,
            unpacked,
            replaced,
        })
    }

    /// What this image's rootfs may take under the store's quota: the room left, less the
    /// staged blobs that will move into the store with it. Refused outright when those do
    /// not fit; the unpack is capped at the rest (a bomb stops there, nothing kept).
    fn unpack_budget(
        &self,
        staged: Option<&BlobDir>,
        name: &str,
        manifest: &Manifest,
    ) -> Result<(u64, String), StoreError> {
        let room = self.room()?;
        let incoming: u64 = staged.map_or(0, |s| {
            manifest
                .layers
                .iter()
                .filter(|l| {
                    s.contains(&l.digest, l.size) && !self.blobs.contains(&l.digest, l.size)
                })
                .map(|l| l.size)
                .sum()
        });
        if incoming > room.bytes {
            return Err(StoreError::Full {
                root: self.root.clone(),
                name: name.to_string(),
                detail: format!("its layers take {incoming} bytes; {}", room.binding),
            });
        }
        Ok((room.bytes - incoming, room.binding))
    }

    /// Reads, verifies and parses a manifest; an index is an error here.
    fn load_manifest(
        &self,
        staged: Option<&BlobDir>,
        digest: &Digest,
    ) -> Result<Manifest, StoreError> {
        let bytes = read_doc(staged, &self.blobs, digest)?;
        match parse_document(&format!("manifest {digest}"), &bytes, None)? {
            Document::Manifest(m) => Ok(m),
            Document::Index(_) => Err(StoreError::NotAManifest(digest.clone())),
        }
    }

    fn load_config(
        &self,
        staged: Option<&BlobDir>,
        manifest: &Manifest,
    ) -> Result<ImageConfig, StoreError> {
        let d = &manifest.config;
        let bytes = read_doc(staged, &self.blobs, &d.digest)?;
        if bytes.len() as u64 != d.size {
            return Err(StoreError::SizeMismatch(
                d.digest.clone(),
                d.size,
                bytes.len() as u64,
            ));
        }
        Ok(ImageConfig::parse(
            &format!("config {}", d.digest),
            &bytes,
            manifest,
        )?)
    }

    /// Each layer's blob (staged or in the store, with the descriptor's size), its
    /// compression and its DiffID.
    fn layer_sources(
        &self,
        staged: Option<&BlobDir>,
        name: &str,
        manifest: &Manifest,
        config: &ImageConfig,
    ) -> Result<Vec<LayerSource>, StoreError> {
        let mut out = Vec::with_capacity(manifest.layers.len());
        for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
            let path = [staged, Some(&self.blobs)]
                .into_iter()
                .flatten()
                .find(|b| b.contains(&layer.digest, layer.size))
                .map(|b| b.path(&layer.digest))
                .ok_or_else(|| StoreError::MissingLayer {
                    name: name.to_string(),
                    digest: layer.digest.clone(),
                    size: layer.size,
                })?;
            out.push(LayerSource {
                path,
                compression: LayerCompression::of(&layer.media_type)?,
                diff_id: diff_id.clone(),
            });
        }
        Ok(out)
    }

    /// Unpacks into `staging/<hex>.<pid>.<seq>`, finishes the rootfs and renames it into
    /// place; on any failure the staging dir is removed. Caller holds the manifest lock.
    fn unpack(
        &self,
        job: &Unpack<'_>,
        progress: &mut dyn FnMut(UnpackProgress<'_>),
    ) -> Result<(UnpackStats, u64), StoreError> {
        let staging = self.staging_path(job.manifest.encoded());
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&staging)
            .map_err(io_at(&staging))?;
        let result = self.unpack_into(job, &staging, progress);
        if result.is_err() {
            let _ = unpack::remove_tree(&staging);
        }
        result
    }

    fn unpack_into(
        &self,
        job: &Unpack<'_>,
        staging: &Path,
        progress: &mut dyn FnMut(UnpackProgress<'_>),
    ) -> Result<(UnpackStats, u64), StoreError> {
        // The root's mode when no layer sets it ("./"): what Docker gives it.
        fs::set_permissions(staging, fs::Permissions::from_mode(0o755)).map_err(io_at(staging))?;
        let total: u64 = job.sizes.iter().sum();
        let before: Vec<u64> = job
            .sizes
            .iter()
            .scan(0, |sum, s| {
                let start = *sum;
                *sum += s;
                Some(start)
            })
            .collect();
        let mut report = |p: unpack::Progress| {
            progress(UnpackProgress {
                image: job.name,
                layer: p.layer,
                layers: job.sizes.len(),
                done: before.get(p.layer).copied().unwrap_or(0) + p.bytes_in,
                total,
            })
        };
        let (budget, binding) = &job.budget;
        let limits = Limits {
            max_image_bytes: self.limits.max_image_bytes.min(*budget),
            ..self.limits
        };
        let stats =
            unpack::unpack_layers(staging, job.layers, &limits, &mut report).map_err(|source| {
                if is_disk_full(&source) {
                    self.disk_full(format!("unpacking {}", job.name))
                } else if *budget < self.limits.max_image_bytes && over_image_cap(&source) {
                    StoreError::Full {
                        root: self.root.clone(),
                        name: job.name.to_string(),
                        detail: format!(
                            "its layers unpack to more than the {budget} bytes left ({binding})"
                        ),
                    }
                } else {
                    StoreError::Unpack {
                        name: job.name.to_string(),
                        source,
                    }
                }
            })?;
        let finish_err = |source: io::Error| {
            if is_disk_full(&source) {
                self.disk_full(format!("unpacking {}", job.name))
            } else {
                StoreError::Finish {
                    name: job.name.to_string(),
                    path: staging.to_path_buf(),
                    source,
                }
            }
        };
        rootfs::finish(staging, job.working_dir).map_err(finish_err)?;
        let bytes = rootfs::disk_usage(staging);
        let target = self.rootfs_path(job.manifest);
        fs::rename(staging, &target).map_err(io_at(&target))?;
        Ok((stats, bytes))
    }

    /// Moves the image's staged blobs into the store.
    fn adopt(
        &self,
        staged: &BlobDir,
        digest: &Digest,
        manifest: &Manifest,
    ) -> Result<(), StoreError> {
        let manifest_size = staged.size(digest);
        let blobs = manifest
            .layers
            .iter()
            .chain(std::iter::once(&manifest.config))
            .map(|d| (&d.digest, Some(d.size)))
            .chain(std::iter::once((digest, manifest_size)));
        for (d, size) in blobs {
            if let Some(size) = size.filter(|s| staged.contains(d, *s)) {
                self.blobs.adopt(staged, d, size)?;
            }
        }
        Ok(())
    }

    fn update_index<T>(
        &self,
        change: impl FnOnce(&mut IndexFile) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _lock = self.lock("store", Mode::Exclusive)?;
        let path = self.index_path();
        let mut index = IndexFile::load(&path)?;
        let out = change(&mut index)?;
        index
            .save(&path, &self.staging_path("images"))
            .map_err(|e| match e {
                StoreError::Io { source, .. } if is_disk_full(&source) => {
                    self.disk_full("writing the image index".to_string())
                }
                other => other,
            })?;
        Ok(out)
    }

    /// Removes staging entries whose owner died (or, for unpacks, whose manifest lock
    /// nobody holds) and partial blob writes of dead processes.
    fn clean_stale(&self) -> Result<(), StoreError> {
        self.blobs.clean_incoming()?;
        let dir = self.root.join("staging");
        for entry in fs::read_dir(&dir).map_err(io_at(&dir))? {
            let entry = entry.map_err(io_at(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('.');
            let kind = parts.next().unwrap_or("");
            let pid = parts.next().and_then(|p| p.parse::<i32>().ok());
            let mut stale = !pid.is_some_and(pid_alive);
            if !stale && hex_digest(kind).is_some() {
                let path = self.lock_path(kind);
                stale = lock::try_lock(&path, Mode::Exclusive)
                    .map_err(io_at(&path))?
                    .is_some();
            }
            if stale {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    fn hold_gc(&self) -> Result<(), StoreError> {
        if self.gc.get().is_none() {
            let held = self.lock("gc", Mode::Shared)?;
            let _ = self.gc.set(held);
        }
        Ok(())
    }

    fn lock(&self, name: &str, mode: Mode) -> Result<FileLock, StoreError> {
        let path = self.lock_path(name);
        lock::lock(&path, mode).map_err(io_at(&path))
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(name)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// `staging/<kind>.<pid>.<seq>`: unique, and `clean_stale` can tell the owner.
    fn staging_path(&self, kind: &str) -> PathBuf {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("staging")
            .join(format!("{kind}.{}.{seq}", std::process::id()))
    }

    fn disk_full(&self, step: String) -> StoreError {
        StoreError::DiskFull {
            root: self.root.clone(),
            step,
        }
    }
}

/// One unpack job.
struct Unpack<'a> {
    name: &'a str,
    manifest: &'a Digest,
    layers: &'a [LayerSource],
    sizes: &'a [u64],
    working_dir: Option<&'a str>,
    /// Uncompressed bytes the store's quota leaves for this rootfs, and which bound that is.
    budget: (u64, String),
}

impl Staging {
    pub fn blobs(&self) -> &BlobDir {
        &self.blobs
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = unpack::remove_tree(&self.dir);
    }
}

impl Resolved {
    /// The program to run: `cmd` when given (it replaces both Entrypoint and Cmd, unlike
    /// `docker run`), else the image's Entrypoint followed by its Cmd.
    pub fn argv(&self, cmd: &[String]) -> Result<Vec<String>, StoreError> {
        if !cmd.is_empty() {
            return Ok(cmd.to_vec());
        }
        let exec = self.config.config.clone().unwrap_or_default();
        let argv: Vec<String> = exec
            .entrypoint
            .unwrap_or_default()
            .into_iter()
            .chain(exec.cmd.unwrap_or_default())
            .collect();
        if argv.is_empty() {
            return Err(StoreError::NoCommand(self.record.name.clone()));
        }
        Ok(argv)
    }

    /// The image's Env, then `overrides` (`KEY=VALUE`), each replacing the same key.
    pub fn env(&self, overrides: &[String]) -> Vec<String> {
        let image = self.config.config.as_ref().and_then(|c| c.env.as_deref());
        crate::sandbox::overlay_env(image.unwrap_or_default(), overrides)
    }

    /// The image's WorkingDir, when it sets one.
    pub fn working_dir(&self) -> Option<&str> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.as_deref())
            .filter(|d| !d.is_empty())
    }
}

/// Finds a record by name, by `repo@digest`, or by a manifest digest (prefix).
fn lookup<'a>(images: &'a [ImageRecord], name: &str) -> Result<&'a ImageRecord, StoreError> {
    let parsed = Reference::parse(name);
    if let Ok(wanted) = &parsed {
        let canonical = wanted.canonical();
        if let Some(r) = images.iter().find(|r| r.name == canonical) {
            return Ok(r);
        }
        if let Some(d) = &wanted.digest {
            let same_repo = |r: &ImageRecord| {
                Reference::parse(&r.name).is_ok_and(|s| {
                    s.registry == wanted.registry && s.repository == wanted.repository
                })
            };
            if let Some(r) = images.iter().find(|r| &r.manifest == d && same_repo(r)) {
                return Ok(r);
            }
        }
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let is_hex = (12..=64).contains(&hex.len())
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        let mut found = images
            .iter()
            .filter(|r| r.manifest.encoded().starts_with(hex));
        if let Some(first) = found.next() {
            if found.any(|r| r.manifest != first.manifest) {
                return Err(StoreError::Ambiguous(name.to_string()));
            }
            return Ok(first);
        }
    }
    match parsed {
        Err(e) if !is_hex => Err(e.into()),
        _ => Err(StoreError::NotFound(name.to_string())),
    }
}

/// A small blob from the staging dir when it is there, else from the store.
fn read_doc(
    staged: Option<&BlobDir>,
    store: &BlobDir,
    digest: &Digest,
) -> Result<Vec<u8>, StoreError> {
    let dir = staged.filter(|s| s.size(digest).is_some()).unwrap_or(store);
    Ok(dir.read_verified(digest, MAX_DOCUMENT_BYTES)?)
}

/// Creates `path` 0700 if missing; an existing one must be a directory we own (a store
/// made by someone else could be a trap); its mode is tightened to 0700.
fn private_dir(path: &Path, no_symlink: bool) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_at(path))?;
    let meta = if no_symlink {
        fs::symlink_metadata(path)
    } else {
        fs::metadata(path)
    }
    .map_err(io_at(path))?;
    if !meta.is_dir() {
        return Err(StoreError::NotDir(path.to_path_buf()));
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(StoreError::NotOwned {
            path: path.to_path_buf(),
            uid: meta.uid(),
            euid,
        });
    }
    if meta.mode() & 0o7777 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_at(path))?;
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<(), StoreError> {
    unpack::remove_tree(path).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })
}

fn hex_digest(name: &str) -> Option<Digest> {
    format!("sha256:{name}").parse().ok()
}

fn pid_alive(pid: i32) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether an unpack error is the image-wide size cap (in whichever layer).
fn over_image_cap(err: &UnpackError) -> bool {
    matches!(err.innermost(), UnpackError::ImageTooBig { .. })
}

/// Whether an error (or anything in its source chain) is ENOSPC or EDQUOT.
pub fn is_disk_full(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::spec::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_MANIFEST};

    /// A one-layer image put straight into the store's blobs, as a registry pull does.
    fn put_image(store: &Store, file: &str) -> Digest {
        put_one_file_image(store.blobs(), file, b"hi\n", false)
    }

    /// A one-layer image whose layer holds `file` with `content`, gzipped or not, in `blobs`.
    fn put_one_file_image(blobs: &BlobDir, file: &str, content: &[u8], gzip: bool) -> Digest {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, file, content).unwrap();
        let tar = b.into_inner().unwrap();
        let diff_id = Digest::of(&tar);
        let (layer, media_type) = if gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(&tar).unwrap();
            (enc.finish().unwrap(), OCI_LAYER_GZIP)
        } else {
            (tar, OCI_LAYER_TAR)
        };
        let layer_d = Digest::of(&layer);
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["A=1", "B=2"], "Cmd": ["/bin/x"], "WorkingDir": "/w/d"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": Digest::of(&config).to_string(), "size": config.len()},
            "layers": [{"mediaType": media_type, "digest": layer_d.to_string(), "size": layer.len()}],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        for bytes in [&layer, &config, &manifest] {
            let d = Digest::of(bytes);
            blobs
                .ingest(&d, bytes.len() as u64, &mut &bytes[..])
                .unwrap();
        }
        Digest::of(&manifest)
    }

    fn reference(name: &str) -> Reference {
        Reference::parse(name).unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        (tmp, store)
    }

    /// Everything under the store's rootfs/ and staging/ dirs, and its names.
    fn store_state(store: &Store) -> (Vec<String>, usize, usize) {
        let count = |d: &str| fs::read_dir(store.root().join(d)).unwrap().count();
        let names = store
            .images()
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        (names, count("rootfs"), count("staging"))
    }

    #[test]
    fn an_image_over_the_store_cap_or_reserve_stops_and_leaves_the_store_as_it_was() {
        let (_tmp, mut store) = store();
        let small = put_image(&store, "hello");
        store
            .add_image(&reference("judge/small:1"), &small, &mut |_| {})
            .unwrap();
        let before = store_state(&store);
        // A 64 MiB file of zeros: a gzipped layer of ~64 KiB (the 1.5 MB -> 1.6 GB).
        let zeros = vec![0u8; 64 << 20];
        store.set_quota(Quota {
            max_bytes: 16 << 20,
            min_free: 0,
        });
        // Pulled (blobs already in the store) and imported (blobs staged).
        let pulled = put_one_file_image(store.blobs(), "bomb", &zeros, true);
        let err = store
            .add_image(&reference("judge/bomb:1"), &pulled, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, StoreError::Full { .. }), "{err}");
        assert!(
            err.to_string().contains("the store may take 16.0 MiB"),
            "{err}"
        );
        assert_eq!(store_state(&store), before);
        let staging = store.staging().unwrap();
        let staged = put_one_file_image(staging.blobs(), "bomb2", &zeros, true);
        let err = store
            .add_staged(&staging, &reference("judge/bomb:2"), &staged, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, StoreError::Full { .. }), "{err}");
        drop(staging);
        assert_eq!(store_state(&store), before);
        assert!(!store.blobs().contains(&staged, 0) && store.blobs().size(&staged).is_none());

        // The reserve: the filesystem must keep more free than it has.
        store.set_quota(Quota {
            max_bytes: u64::MAX,
            min_free: u64::MAX / 2,
        });
        let other = put_image(&store, "other");
        let err = store
            .add_image(&reference("judge/other:1"), &other, &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("must stay free"), "{err}");
        assert_eq!(store_state(&store), before);
        // Within both bounds the same store takes it.
        store.set_quota(Quota::default());
        store
            .add_image(&reference("judge/other:1"), &other, &mut |_| {})
            .unwrap();
    }

    #[test]
    fn add_image_unpacks_once_and_resolves_by_short_name() {
        let (_tmp, store) = store();
        let m = put_image(&store, "hello");
        let added = store
            .add_image(&reference("judge/x:1"), &m, &mut |_| {})
            .unwrap();
        assert!(added.unpacked.is_some());
        assert_eq!(added.record.name, "docker.io/judge/x:1");
        let rootfs = store.rootfs_path(&m);
        assert_eq!(fs::read(rootfs.join("hello")).unwrap(), b"hi\n");
        for dir in MOUNT_POINTS.iter().chain(&["w/d"]) {
            assert!(rootfs.join(dir).is_dir(), "{dir}");
        }
        let again = store
            .add_image(&reference("judge/x:latest"), &m, &mut |_| {})
            .unwrap();
        assert!(again.unpacked.is_none());
        assert_eq!(again.record.rootfs_bytes, added.record.rootfs_bytes);
        assert_eq!(store.images().unwrap().len(), 2);

        let r = store.resolve("judge/x").unwrap();
        assert_eq!(r.record.name, "docker.io/judge/x:latest");
        assert_eq!(r.argv(&[]).unwrap(), ["/bin/x"]);
        assert_eq!(r.argv(&["sh".into()]).unwrap(), ["sh"]);
        assert_eq!(r.env(&["B=3".into(), "C=4".into()]), ["A=1", "B=3", "C=4"]);
        assert_eq!(r.working_dir(), Some("/w/d"));
        assert_eq!(store.find(&m.encoded()[..12]).unwrap().manifest, m);
        assert_eq!(store.find(&format!("judge/x@{m}")).unwrap().manifest, m);
        assert!(matches!(
            store.find("judge/y"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.find("Bad Name"),
            Err(StoreError::Reference(_))
        ));
        let mode = fs::metadata(store.root()).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn an_index_or_a_missing_layer_is_refused() {
        let (_tmp, store) = store();
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
        let index = serde_json::to_vec(&index).unwrap();
        let d = Digest::of(&index);
        store
            .blobs()
            .ingest(&d, index.len() as u64, &mut &index[..])
            .unwrap();
        let err = store
            .add_image(&reference("x"), &d, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, StoreError::NotAManifest(_)), "{err}");

        let m = put_image(&store, "f");
        let layer = store
            .blobs()
            .list()
            .unwrap()
            .into_iter()
            .find(|(d, _)| fs::read(store.blobs().path(d)).unwrap().len() > 1000)
            .unwrap()
            .0;
        store.blobs().remove(&layer).unwrap();
        let err = store
            .add_image(&reference("x"), &m, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, StoreError::MissingLayer { .. }), "{err}");
        assert!(store.images().unwrap().is_empty());
        assert!(!store.rootfs_path(&m).exists());
    }

    #[test]
    fn prune_keeps_a_rootfs_in_use_and_waits_for_importers() {
        let (tmp, store) = store();
        let m = put_image(&store, "a");
        store.add_image(&reference("a"), &m, &mut |_| {}).unwrap();
        let lease = store.resolve("a").unwrap();
        store.remove("a").unwrap();

        let other = Store::open(&tmp.path().join("root")).unwrap();
        assert!(
            matches!(other.prune(), Err(StoreError::Busy(_))),
            "store holds the gc lock"
        );
        drop(store);
        let report = other.prune().unwrap();
        assert_eq!(report.in_use, vec![m.clone()]);
        assert!(other.rootfs_path(&m).is_dir());
        assert_eq!(report.blobs.len(), 3);
        drop(lease);
        let report = other.prune().unwrap();
        assert_eq!(report.rootfs.len(), 1);
        assert!(!other.rootfs_path(&m).exists());
        assert!(report.bytes > 0);
    }

    #[test]
    fn open_removes_what_dead_processes_left_in_staging() {
        let (tmp, store) = store();
        let staging = store.root().join("staging");
        let hex = "a".repeat(64);
        for name in [format!("{hex}.999999999.0"), "import.999999999.3".into()] {
            fs::create_dir_all(staging.join(&name).join("x/y")).unwrap();
        }
        fs::write(staging.join("images.999999999.1"), b"{").unwrap();
        // Ours, with its manifest lock held: in use. Ours without the lock: stale.
        let mine_locked = staging.join(format!("{hex}.{}.7", std::process::id()));
        let other_hex = "b".repeat(64);
        let mine_unlocked = staging.join(format!("{other_hex}.{}.8", std::process::id()));
        fs::create_dir(&mine_locked).unwrap();
        fs::create_dir(&mine_unlocked).unwrap();
        let _held = store.lock(&hex, Mode::Exclusive).unwrap();
        Store::open(&tmp.path().join("root")).unwrap();
        let left: Vec<_> = fs::read_dir(&staging)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(left, vec![mine_locked]);
    }

    #[test]
    fn a_store_owned_by_someone_else_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(12345), None).unwrap();
        assert!(matches!(
            Store::open(&root),
            Err(StoreError::NotOwned { .. })
        ));
    }
}
