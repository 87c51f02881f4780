//! The store as a whole: a cap on what its blobs and rootfs take together, and a reserve of
//! free space its filesystem keeps. An import or pull may use only what is left of both; a
//! decompression bomb stops there, before the host's disk fills.

use std::collections::HashSet;
use std::io;
use std::path::Path;

use super::super::blobs::BlobDir;
use super::ImageRecord;
use crate::units::human_bytes;

/// Store-wide bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// What blobs and unpacked rootfs may take together.
    pub max_bytes: u64,
    /// Free space an import must leave on the store's filesystem.
    pub min_free: u64,
}

impl Default for Quota {
    fn default() -> Quota {
        Quota {
            max_bytes: 64 << 30,
            min_free: 1 << 30,
        }
    }
}

/// What an import may still add, and why no more.
#[derive(Debug, Clone)]
pub struct Room {
    pub bytes: u64,
    /// Which bound leaves `bytes`, in words (for the error).
    pub binding: String,
}

/// The room left under `quota` for the store at `root`: the smaller of the cap minus what
/// blobs and recorded rootfs take, and the filesystem's free space minus the reserve.
pub fn room(
    root: &Path,
    quota: &Quota,
    images: &[ImageRecord],
    blobs: &BlobDir,
) -> io::Result<Room> {
    let blob_bytes: u64 = blobs
        .list()
        .map_err(io::Error::other)?
        .iter()
        .map(|(_, size)| size)
        .sum();
    let mut seen = HashSet::new();
    let rootfs_bytes: u64 = images
        .iter()
        .filter(|r| seen.insert(r.manifest.clone()))
        .filter_map(|r| r.rootfs_bytes)
        .sum();
    let used = blob_bytes + rootfs_bytes;
    let free = crate::fsinfo::available(root)?;
    let by_cap = quota.max_bytes.saturating_sub(used);
    let by_free = free.saturating_sub(quota.min_free);
    Ok(if by_cap <= by_free {
        Room {
            bytes: by_cap,
            binding: format!(
                "the store may take {} and holds {}",
                human_bytes(quota.max_bytes),
                human_bytes(used)
            ),
        }
    } else {
        Room {
            bytes: by_free,
            binding: format!(
                "its filesystem has {} free and {} must stay free",
                human_bytes(free),
                human_bytes(quota.min_free)
            ),
        }
    })
}
