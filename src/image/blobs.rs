//! The content-addressed blob directory (`blobs/sha256/<hex>`, the OCI image-layout
//! shape): blobs are written to a temp file while their size and digest are checked,
//! then renamed into place, so a blob that is visible is always complete and correct.
//! A per-blob lock makes concurrent pulls or imports of the same blob fetch it once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use super::digest::{Digest, HashingWriter, Mismatch};
use crate::flock::{self, FileLock, Mode};

#[derive(Debug, Error)]
pub enum BlobError {
    #[error("blob store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest}: {mismatch}")]
    Mismatch { digest: Digest, mismatch: Mismatch },
    #[error("blob {0} is not in the store")]
    Missing(Digest),
    #[error("blob {digest}: {size} bytes is over the limit of {max}")]
    TooBig { digest: Digest, size: u64, max: u64 },
    #[error("content over the limit of {max} bytes")]
    TooLarge { max: u64 },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `<dir>/sha256/<hex>` for blobs, `<dir>/.incoming/` for partial writes and
/// `<dir>/.locks/` for per-blob locks; all on one filesystem so rename is atomic.
#[derive(Debug, Clone)]
pub struct BlobDir {
    dir: PathBuf,
}

/// An exclusive lock on one blob's digest; released on drop (or when the process dies).
pub type BlobLock = FileLock;

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl BlobDir {
    /// Opens (creating, mode 0700) the blob directory at `dir`.
    pub fn open(dir: &Path) -> Result<BlobDir, BlobError> {
        for sub in ["sha256", ".incoming", ".locks"] {
            let path = dir.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(io_err(&path))?;
        }
        Ok(BlobDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob lives (whether or not it is there yet).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.blob_path())
    }

    /// Whether the blob is present with the expected size. Cheap: trusts that a present
    /// blob was verified when it was written (only `ingest` puts blobs in place).
    pub fn contains(&self, digest: &Digest, size: u64) -> bool {
        fs::symlink_metadata(self.path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Size of a present blob.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::symlink_metadata(self.path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Takes the per-blob lock, waiting for another writer of the same blob to finish.
    pub fn lock(&self, digest: &Digest) -> Result<BlobLock, BlobError> {
        let path = self.dir.join(".locks").join(digest.encoded());
        flock::lock(&path, Mode::Exclusive).map_err(io_err(&path))
    }

    /// Writes a blob through `fill`, checking size and digest, and renames it into place.
    /// Takes the blob's lock; if the blob is already present, `fill` is not called.
    /// On any failure the partial file is removed and nothing becomes visible.
    pub fn ingest_with<E>(
        &self,
        digest: &Digest,
        size: u64,
        fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
    ) -> Result<Result<PathBuf, E>, BlobError> {
        let _lock = self.lock(digest)?;
        let dest = self.path(digest);
        if self.contains(digest, size) {
            return Ok(Ok(dest));
        }
        let temp = self.temp_path(digest.encoded());
        let file = create_temp(&temp)?;
        let guard = TempGuard(&temp);
        let mut writer = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file), size);
        if let Err(e) = fill(&mut writer) {
            return Ok(Err(e));
        }
        let buffered = writer
            .verify(digest, size)
            .map_err(|mismatch| BlobError::Mismatch {
                digest: digest.clone(),
                mismatch,
            })?;
        let file = buffered
            .into_inner()
            .map_err(|e| io_err(&temp)(e.into_error()))?;
        file.sync_all().map_err(io_err(&temp))?;
        fs::rename(&temp, &dest).map_err(io_err(&dest))?;
        std::mem::forget(guard);
        Ok(Ok(dest))
    }

    /// `ingest_with` for a reader: copies it in, refusing more than `size` bytes.
    pub fn ingest(
        &self,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<PathBuf, BlobError> {
        let result = self.ingest_with(digest, size, |w| io::copy(reader, w).map(drop))?;
        result.map_err(|e| {
            // A writer refusing extra bytes is a size mismatch, not an I/O problem.
            if e.kind() == io::ErrorKind::FileTooLarge {
                BlobError::Mismatch {
                    digest: digest.clone(),
                    mismatch: Mismatch::Size {
                        expected: size,
                        actual: size + 1,
                    },
                }
            } else {
                BlobError::Io {
                    path: self.path(digest),
                    source: e,
                }
            }
        })
    }

    /// Writes content whose digest is learnt by writing it (a `docker save` layer),
    /// refusing more than `max` bytes, and puts it in place under that digest.
    pub fn ingest_unknown(
        &self,
        reader: &mut dyn Read,
        max: u64,
    ) -> Result<(Digest, u64), BlobError> {
        let temp = self.temp_path("unknown");
        let file = create_temp(&temp)?;
        let guard = TempGuard(&temp);
        let mut writer = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file), max);
        io::copy(reader, &mut writer).map_err(|e| match e.kind() {
            io::ErrorKind::FileTooLarge => BlobError::TooLarge { max },
            _ => io_err(&temp)(e),
        })?;
        let (buffered, digest, len) = writer.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| io_err(&temp)(e.into_error()))?;
        file.sync_all().map_err(io_err(&temp))?;
        let _lock = self.lock(&digest)?;
        if !self.contains(&digest, len) {
            let dest = self.path(&digest);
            fs::rename(&temp, &dest).map_err(io_err(&dest))?;
            std::mem::forget(guard);
        }
        Ok((digest, len))
    }

    /// Moves a blob from another blob dir on the same filesystem (a private staging
    /// one, whose blobs were verified when written) into this one, under the blob's lock.
    /// Returns false when the blob was already here.
    pub fn adopt(&self, from: &BlobDir, digest: &Digest, size: u64) -> Result<bool, BlobError> {
        let _lock = self.lock(digest)?;
        if self.contains(digest, size) {
            return Ok(false);
        }
        if !from.contains(digest, size) {
            return Err(BlobError::Missing(digest.clone()));
        }
        let dest = self.path(digest);
        fs::rename(from.path(digest), &dest).map_err(io_err(&dest))?;
        Ok(true)
    }

    /// Reads a small blob (a manifest or config) whole, verifying its digest.
    pub fn read_verified(&self, digest: &Digest, max: u64) -> Result<Vec<u8>, BlobError> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(digest.clone()))
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let len = file.metadata().map_err(io_err(&path))?.len();
        if len > max {
            return Err(BlobError::TooBig {
                digest: digest.clone(),
                size: len,
                max,
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(BlobError::Mismatch {
                digest: digest.clone(),
                mismatch: Mismatch::Digest {
                    expected: digest.clone(),
                    actual,
                },
            });
        }
        Ok(bytes)
    }

    /// Every blob present, with its size.
    pub fn list(&self) -> Result<Vec<(Digest, u64)>, BlobError> {
        let dir = self.dir.join("sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(digest) = name
                .to_str()
                .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
            else {
                continue;
            };
            if let Ok(meta) = entry.metadata() {
                out.push((digest, meta.len()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes a blob (under its lock, so a concurrent writer is not cut short).
    pub fn remove(&self, digest: &Digest) -> Result<(), BlobError> {
        let _lock = self.lock(digest)?;
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Removes partial writes left by processes that died (their pid is in the name).
    pub fn clean_incoming(&self) -> Result<usize, BlobError> {
        let dir = self.dir.join(".incoming");
        let mut removed = 0;
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('.').nth(1).and_then(|p| p.parse::<i32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// `.incoming/<prefix>.<pid>.<seq>`: `clean_incoming` reads the pid back.
    fn temp_path(&self, prefix: &str) -> PathBuf {
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(".incoming")
            .join(format!("{prefix}.{}.{seq}", std::process::id()))
    }
}

fn create_temp(path: &Path) -> Result<File, BlobError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))
}

/// Unlinks a partial blob unless disarmed with `mem::forget`.
struct TempGuard<'a>(&'a Path);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_verifies_and_leaves_nothing_on_mismatch() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(tmp.path()).unwrap();
        let good = Digest::of(b"layer");
        let path = blobs.ingest(&good, 5, &mut &b"layer"[..]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"layer");
        assert!(blobs.contains(&good, 5));

        let other = Digest::of(b"other");
        for (data, size) in [(&b"otheR"[..], 5), (&b"othe"[..], 5), (&b"other!"[..], 5)] {
            let err = blobs.ingest(&other, size, &mut &data[..]).unwrap_err();
            assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");
        }
        assert!(!blobs.path(&other).exists());
        assert_eq!(
            fs::read_dir(tmp.path().join(".incoming")).unwrap().count(),
            0
        );
        assert_eq!(blobs.list().unwrap(), vec![(good.clone(), 5)]);
        assert_eq!(blobs.read_verified(&good, 100).unwrap(), b"layer");
        assert!(matches!(
            blobs.read_verified(&good, 4),
            Err(BlobError::TooBig { .. })
        ));
    }

    #[test]
    fn a_tampered_blob_fails_read_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(tmp.path()).unwrap();
        let d = Digest::of(b"{}");
        blobs.ingest(&d, 2, &mut &b"{}"[..]).unwrap();
        fs::write(blobs.path(&d), b"[]").unwrap();
        assert!(matches!(
            blobs.read_verified(&d, 10),
            Err(BlobError::Mismatch { .. })
        ));
    }

    #[test]
    fn concurrent_ingest_of_one_blob_fetches_it_once() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(tmp.path()).unwrap();
        let data = vec![7u8; 1 << 20];
        let d = Digest::of(&data);
        let fetches = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    blobs
                        .ingest_with(&d, data.len() as u64, |w| {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            w.write_all(&data)
                        })
                        .unwrap()
                        .unwrap();
                });
            }
        });
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(blobs.contains(&d, data.len() as u64));
    }

    #[test]
    fn unknown_content_is_named_by_its_digest_and_capped() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(tmp.path()).unwrap();
        let (d, n) = blobs.ingest_unknown(&mut &b"layer.tar"[..], 100).unwrap();
        assert_eq!((d.clone(), n), (Digest::of(b"layer.tar"), 9));
        assert_eq!(fs::read(blobs.path(&d)).unwrap(), b"layer.tar");
        assert_eq!(
            blobs.ingest_unknown(&mut &b"layer.tar"[..], 100).unwrap().0,
            d
        );
        assert!(matches!(
            blobs.ingest_unknown(&mut &b"0123456789"[..], 9),
            Err(BlobError::TooLarge { max: 9 })
        ));
        assert_eq!(
            fs::read_dir(tmp.path().join(".incoming")).unwrap().count(),
            0
        );

        let other = tempfile::tempdir().unwrap();
        let store = BlobDir::open(other.path()).unwrap();
        assert!(store.adopt(&blobs, &d, 9).unwrap());
        assert!(store.contains(&d, 9) && !blobs.contains(&d, 9));
        assert!(!store.adopt(&blobs, &d, 9).unwrap());
        let missing = Digest::of(b"nope");
        assert!(matches!(
            store.adopt(&blobs, &missing, 4),
            Err(BlobError::Missing(_))
        ));
    }

    #[test]
    fn stale_partial_writes_of_dead_processes_are_cleaned() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(tmp.path()).unwrap();
        let incoming = tmp.path().join(".incoming");
        fs::write(incoming.join("abc.999999999.0"), b"x").unwrap();
        let mine = incoming.join(format!("abc.{}.0", std::process::id()));
        fs::write(&mine, b"x").unwrap();
        assert_eq!(blobs.clean_incoming().unwrap(), 1);
        assert!(mine.exists());
    }
}
