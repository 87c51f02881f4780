//! `images.json`: the store's names. Read whole; rewritten (under the store lock) to a temp
//! file in `staging/` that is renamed over it, so readers see the old or the new index.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::image::digest::Digest;

const VERSION: u32 = 1;

/// One name in the store and the image it points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The canonical reference, e.g. `docker.io/library/python:3.12`.
    pub name: String,
    /// Digest of the manifest (the image's identity; names its rootfs).
    pub manifest: Digest,
    pub media_type: String,
    pub config: Digest,
    /// `os/arch[/variant]` from the config.
    pub platform: String,
    pub layers: Vec<LayerRecord>,
    /// When the name was added, RFC 3339 UTC.
    pub added: String,
    /// Disk usage of the unpacked rootfs, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
}

impl ImageRecord {
    /// Every blob the image needs: manifest, config, layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest, &self.config]
            .into_iter()
            .chain(self.layers.iter().map(|l| &l.digest))
    }

    /// Compressed size of the layers.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct IndexFile {
    pub version: u32,
    /// Sorted by name, one entry per name.
    pub images: Vec<ImageRecord>,
}

impl IndexFile {
    pub fn load(path: &Path) -> Result<IndexFile, StoreError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(IndexFile {
                    version: VERSION,
                    images: Vec::new(),
                })
            }
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let index: IndexFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::Index {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if index.version != VERSION {
            return Err(StoreError::Index {
                path: path.to_path_buf(),
                detail: format!("version {} is not {VERSION}", index.version),
            });
        }
        Ok(index)
    }

    /// Writes `temp` (synced), then renames it over `path`.
    pub fn save(&self, path: &Path, temp: &Path) -> Result<(), StoreError> {
        let io_err = |p: &Path| {
            let p: PathBuf = p.to_path_buf();
            move |source| StoreError::Io { path: p, source }
        };
        let mut bytes = serde_json::to_vec_pretty(self).expect("the index serialises");
        bytes.push(b'\n');
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                .open(temp)?;
            file.write_all(&bytes)?;
            file.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(temp);
            return Err(io_err(temp)(e));
        }
        fs::rename(temp, path).map_err(|e| {
            let _ = fs::remove_file(temp);
            io_err(path)(e)
        })
    }

    /// Adds or replaces the record of `record.name`; returns the manifest it replaced.
    pub fn put(&mut self, record: ImageRecord) -> Option<Digest> {
        match self.images.binary_search_by(|r| r.name.cmp(&record.name)) {
            Ok(i) => {
                let old = std::mem::replace(&mut self.images[i], record);
                Some(old.manifest).filter(|m| *m != self.images[i].manifest)
            }
            Err(i) => {
                self.images.insert(i, record);
                None
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<ImageRecord> {
        let i = self.images.iter().position(|r| r.name == name)?;
        Some(self.images.remove(i))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC, proleptic Gregorian).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
    }
}
