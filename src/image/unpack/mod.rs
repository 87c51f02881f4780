//! Applies OCI image layers to a rootfs directory. Every filesystem call is an `*at` call
//! on a directory resolved inside the root (openat2 `RESOLVE_IN_ROOT`, or an own walk), so
//! no entry, symlink or hardlink in a layer reaches outside it. Design and policies (`..`
//! is an error, devices are skipped, ...): README.md next to this file.

mod apply;
mod created;
mod entry;
mod remove;
mod resolve;
mod stream;
mod sys;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use thiserror::Error;

use super::digest::Digest;
use super::spec::LayerCompression;
use apply::Applier;
pub use remove::remove_tree;
use resolve::{Resolver, Root};
use stream::{Budgeted, Cap, HeaderBudget, Inline, LayerStream, Threaded};

/// Caps on what an image may expand to (uncompressed bytes, tar entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of one layer's tar stream.
    pub max_layer_bytes: u64,
    /// Uncompressed bytes of all layers together.
    pub max_image_bytes: u64,
    /// Tar entries of all layers together.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_layer_bytes: 8 << 30,
            max_image_bytes: 16 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// One layer blob to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSource {
    pub path: PathBuf,
    pub compression: LayerCompression,
    /// The sha256 of the uncompressed tar stream, from the image config.
    pub diff_id: Digest,
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries read, in all layers.
    pub entries: u64,
    /// Uncompressed tar bytes read, in all layers.
    pub bytes: u64,
    pub layers: usize,
    /// Human notes on what was not applied: dropped xattrs, refused devices...
    pub skipped: Vec<String>,
}

/// What applying one layer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    /// Uncompressed tar bytes, trailing data included.
    pub bytes: u64,
    /// The sha256 of the uncompressed tar stream (trailing data included).
    pub diff_id: Digest,
    pub skipped: Vec<String>,
}

/// Reported while a layer streams in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Index of the layer in the slice given to [`unpack_layers`].
    pub layer: usize,
    /// Compressed bytes of this layer read so far.
    pub bytes_in: u64,
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    EscapesRoot,
    NameTooLong,
    NulInName,
    NonDirectoryAtRoot,
    InvalidWhiteout,
    WhiteoutInDirectoryName,
    Sparse,
    UnsupportedType(u8),
    DeviceNumber,
    IdOutOfRange,
    BadNumber(&'static str),
    HardlinkToDirectory,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::EscapesRoot => write!(f, "its '..' climbs out of the root"),
            Refusal::NameTooLong => write!(f, "name longer than {} bytes", entry::MAX_PATH),
            Refusal::NulInName => write!(f, "NUL byte in the name or link target"),
            Refusal::NonDirectoryAtRoot => {
                write!(f, "names the root but is not a directory")
            }
            Refusal::InvalidWhiteout => {
                write!(f, "whiteout of an empty, '.' or '..' name")
            }
            Refusal::WhiteoutInDirectoryName => {
                write!(f, "a '.wh.' name used as a directory")
            }
            Refusal::Sparse => write!(f, "sparse files are not supported"),
            Refusal::UnsupportedType(t) => {
                write!(f, "unsupported entry type '{}'", t.escape_ascii())
            }
            Refusal::DeviceNumber => write!(f, "device number does not fit in 32 bits"),
            Refusal::IdOutOfRange => write!(f, "uid or gid out of range"),
            Refusal::BadNumber(field) => write!(f, "malformed {field} field"),
            Refusal::HardlinkToDirectory => write!(f, "hardlink to a directory"),
        }
    }
}

#[derive(Debug, Error)]
pub enum UnpackError {
    #[error("cannot open unpack root {path}: {source}")]
    OpenRoot { path: PathBuf, source: io::Error },
    #[error("cannot open layer blob {path}: {source}")]
    OpenBlob { path: PathBuf, source: io::Error },
    #[error("layer {layer} ({diff_id}): {source}")]
    Layer {
        layer: usize,
        diff_id: Digest,
        source: Box<UnpackError>,
    },
    #[error("cannot decompress layer: {0}")]
    Decompress(io::Error),
    #[error("malformed or truncated tar stream: {0}")]
    Tar(io::Error),
    #[error("zstd-compressed layer, but judgebox was built without the 'zstd' feature")]
    ZstdDisabled,
    #[error("layer is over the {limit}-byte limit (uncompressed)")]
    LayerTooBig { limit: u64 },
    #[error("image is over the {limit}-byte limit (uncompressed)")]
    ImageTooBig { limit: u64 },
    #[error("image has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("tar headers and extension records before one entry are over {limit} bytes")]
    HeadersTooBig { limit: u64 },
    #[error("diff_id mismatch: the config says {expected}, the layer is {actual}")]
    DiffId { expected: Digest, actual: Digest },
    #[error("entry '{path}' refused: {why}")]
    Refused { path: String, why: Refusal },
    #[error("entry '{path}': cannot {step}: {source}")]
    Entry {
        path: String,
        step: &'static str,
        source: io::Error,
    },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    #[error("unpack cancelled")]
    Cancelled,
}

impl UnpackError {
    /// The error inside [`UnpackError::Layer`], or this one.
    pub fn innermost(&self) -> &UnpackError {
        match self {
            UnpackError::Layer { source, .. } => source.innermost(),
            other => other,
        }
    }
}

/// Human notes for the stats, capped so a hostile layer cannot grow them without bound.
#[derive(Default)]
pub(crate) struct Notes {
    list: Vec<String>,
    dropped: u64,
}

impl Notes {
    const MAX: usize = 200;

    pub(crate) fn push(&mut self, note: String) {
        if self.list.len() < Self::MAX {
            self.list.push(note);
        } else {
            self.dropped += 1;
        }
    }

    fn into_vec(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.list.push(format!("... and {} more", self.dropped));
        }
        self.list
    }
}

/// Applies `layers` in order to `root`, an existing, empty directory the caller owns (the
/// store's private staging dir). Each layer is decompressed and hashed on a second thread
/// and its DiffID checked. On error the caller deletes `root` (see [`remove_tree`]);
/// nothing outside it has been touched.
pub fn unpack_layers(
    root: &Path,
    layers: &[LayerSource],
    limits: &Limits,
    progress: &mut dyn FnMut(Progress),
) -> Result<UnpackStats, UnpackError> {
    unpack_layers_with(root, layers, limits, progress, Resolver::Openat2)
}

/// [`unpack_layers`] with the fallback resolver (an own walk of `O_PATH` opens instead of
/// openat2), for the fuzz target that checks both keep every write inside the root.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn unpack_layers_walking(
    root: &Path,
    layers: &[LayerSource],
    limits: &Limits,
) -> Result<UnpackStats, UnpackError> {
    unpack_layers_with(root, layers, limits, &mut |_| {}, Resolver::Walk)
}

pub(crate) fn unpack_layers_with(
    root_path: &Path,
    layers: &[LayerSource],
    limits: &Limits,
    progress: &mut dyn FnMut(Progress),
    resolver: Resolver,
) -> Result<UnpackStats, UnpackError> {
    let root = open_root(root_path, resolver)?;
    let mut stats = UnpackStats::default();
    let mut notes = Notes::default();
    for (index, layer) in layers.iter().enumerate() {
        let in_layer = |source| UnpackError::Layer {
            layer: index,
            diff_id: layer.diff_id.clone(),
            source: Box::new(source),
        };
        let used = Used {
            bytes: stats.bytes,
            entries: stats.entries,
        };
        let (entries, (digest, bytes)) =
            unpack_one(&root, index, layer, limits, &used, progress, &mut notes)
                .map_err(in_layer)?;
        if digest != layer.diff_id {
            return Err(in_layer(UnpackError::DiffId {
                expected: layer.diff_id.clone(),
                actual: digest,
            }));
        }
        stats.entries += entries;
        stats.bytes += bytes;
        stats.layers += 1;
    }
    stats.skipped = notes.into_vec();
    Ok(stats)
}

/// What earlier layers used of the image-wide limits.
struct Used {
    bytes: u64,
    entries: u64,
}

fn cap_for(limits: &Limits, used: &Used) -> Cap {
    let image_left = limits.max_image_bytes.saturating_sub(used.bytes);
    if image_left < limits.max_layer_bytes {
        Cap {
            bytes: image_left,
            image: true,
            limit: limits.max_image_bytes,
        }
    } else {
        Cap {
            bytes: limits.max_layer_bytes,
            image: false,
            limit: limits.max_layer_bytes,
        }
    }
}

/// One layer: the decompressing thread feeds a bounded channel, this thread applies.
fn unpack_one(
    root: &Root,
    index: usize,
    layer: &LayerSource,
    limits: &Limits,
    used: &Used,
    progress: &mut dyn FnMut(Progress),
    notes: &mut Notes,
) -> Result<(u64, (Digest, u64)), UnpackError> {
    if layer.compression == LayerCompression::Zstd && !cfg!(feature = "zstd") {
        return Err(UnpackError::ZstdDisabled);
    }
    let blob = std::fs::File::open(&layer.path).map_err(|source| UnpackError::OpenBlob {
        path: layer.path.clone(),
        source,
    })?;
    let cap = cap_for(limits, used);
    let max_entries = limits.max_entries.saturating_sub(used.entries);
    let compression = layer.compression;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel(stream::DEPTH);
        let (recycle_tx, recycle_rx) = mpsc::sync_channel(stream::DEPTH + 2);
        std::thread::Builder::new()
            .name(format!("unpack-layer-{index}"))
            .spawn_scoped(scope, move || {
                stream::produce(blob, compression, cap, tx, recycle_rx)
            })
            .map_err(UnpackError::Decompress)?;
        let reader = Threaded::new(rx, recycle_tx, index, progress);
        apply_stream(root, reader, max_entries, limits.max_entries, notes)
    })
}

/// Applies one uncompressed tar stream to `root` (for tests and importers that already
/// decompressed). Returns the stream's digest as `diff_id` for the caller to check.
pub fn apply_layer(
    root: &Path,
    tar: impl Read,
    limits: &Limits,
) -> Result<LayerStats, UnpackError> {
    apply_layer_with(root, tar, limits, Resolver::Openat2)
}

pub(crate) fn apply_layer_with(
    root_path: &Path,
    tar: impl Read,
    limits: &Limits,
    resolver: Resolver,
) -> Result<LayerStats, UnpackError> {
    let root = open_root(root_path, resolver)?;
    let cap = cap_for(
        limits,
        &Used {
            bytes: 0,
            entries: 0,
        },
    );
    let mut notes = Notes::default();
    let stream = Inline::new(tar, cap);
    let (entries, (diff_id, bytes)) = apply_stream(
        &root,
        stream,
        limits.max_entries,
        limits.max_entries,
        &mut notes,
    )?;
    Ok(LayerStats {
        entries,
        bytes,
        diff_id,
        skipped: notes.into_vec(),
    })
}

fn open_root(path: &Path, resolver: Resolver) -> Result<Root, UnpackError> {
    Root::open(path, resolver).map_err(|source| UnpackError::OpenRoot {
        path: path.to_path_buf(),
        source,
    })
}

/// Applies the entries of `stream`, then drains it to EOF for the digest, then sets the
/// deferred directory metadata. Returns the entry count, digest and length.
fn apply_stream<S: LayerStream>(
    root: &Root,
    stream: S,
    max_entries: u64,
    entry_limit: u64,
    notes: &mut Notes,
) -> Result<(u64, (Digest, u64)), UnpackError> {
    let budget = HeaderBudget::default();
    let mut archive = tar::Archive::new(Budgeted {
        stream,
        budget: budget.clone(),
    });
    let mut applier = Applier::new(root);
    let applied = apply_entries(
        &mut archive,
        &mut applier,
        &budget,
        max_entries,
        entry_limit,
        notes,
    );
    let mut stream = archive.into_inner().stream;
    let entries = match applied {
        Ok(entries) => entries,
        Err(e) => return Err(stream.take_fault().unwrap_or(e)),
    };
    let digest = stream.finish()?;
    applier.finish()?;
    Ok((entries, digest))
}

fn apply_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    applier: &mut Applier<'_>,
    budget: &HeaderBudget,
    max_entries: u64,
    entry_limit: u64,
    notes: &mut Notes,
) -> Result<u64, UnpackError> {
    let tar_error = |e: io::Error| {
        if budget.exceeded() {
            UnpackError::HeadersTooBig {
                limit: HeaderBudget::LIMIT,
            }
        } else {
            UnpackError::Tar(e)
        }
    };
    let mut entries = archive.entries().map_err(tar_error)?;
    let mut count = 0;
    loop {
        budget.arm();
        let next = entries.next();
        budget.disarm();
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(tar_error)?;
        count += 1;
        if count > max_entries {
            return Err(UnpackError::TooManyEntries { limit: entry_limit });
        }
        let item = entry::parse(&mut entry, notes)?;
        applier.apply(&item, &mut entry, notes)?;
        // Whatever the entry carries beyond what was applied (a directory or whiteout with
        // data) is skipped here, outside the header budget.
        io::copy(&mut entry, &mut io::sink()).map_err(UnpackError::Tar)?;
    }
    Ok(count)
}
