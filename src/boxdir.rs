//! The size policy of a `--box-dir`: a host directory the program writes to directly, so
//! only its filesystem's capacity bounds what a run leaves on the host. A run gets one only
//! with a policy: a capacity (checked) or an explicit `unlimited`.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BoxDirError {
    #[error("--box-dir {0}: give --box-dir-size SIZE (the directory must be on a filesystem of at most SIZE, e.g. `mount -t tmpfs -o size=64M tmpfs DIR`) or --box-dir-size unlimited")]
    NoPolicy(PathBuf),
    #[error("--box-dir {path}: its filesystem holds {capacity} bytes, more than --box-dir-size {limit}: a run could fill it; mount a filesystem of at most that size there (`mount -t tmpfs -o size={limit} tmpfs {path}`)")]
    TooLarge {
        path: PathBuf,
        capacity: u64,
        limit: u64,
    },
    #[error("--box-dir {path}: {source}")]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a `--box-dir` may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxDirSize {
    /// At most this many bytes: the directory's filesystem must be no larger.
    AtMost(u64),
    /// No bound but the filesystem's, chosen explicitly.
    Unlimited,
}

/// Checks `dir` against `policy`; returns the filesystem's capacity in bytes. Without a
/// policy a box dir is refused: a run could otherwise fill the host's disk.
pub fn check(dir: &Path, policy: Option<BoxDirSize>) -> Result<u64, BoxDirError> {
    let policy = policy.ok_or_else(|| BoxDirError::NoPolicy(dir.to_path_buf()))?;
    let capacity = crate::fsinfo::capacity(dir).map_err(|source| BoxDirError::Stat {
        path: dir.to_path_buf(),
        source,
    })?;
    match policy {
        BoxDirSize::AtMost(limit) if capacity > limit => Err(BoxDirError::TooLarge {
            path: dir.to_path_buf(),
            capacity,
            limit,
        }),
        _ => Ok(capacity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_policy_is_refused_and_a_small_limit_on_a_big_disk_too() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            check(dir.path(), None),
            Err(BoxDirError::NoPolicy(_))
        ));
        let capacity = check(dir.path(), Some(BoxDirSize::Unlimited)).unwrap();
        assert!(capacity > 0);
        let err = check(dir.path(), Some(BoxDirSize::AtMost(capacity - 1))).unwrap_err();
        assert!(err.to_string().contains("mount -t tmpfs"), "{err}");
        assert_eq!(
            check(dir.path(), Some(BoxDirSize::AtMost(capacity))).unwrap(),
            capacity
        );
    }
}
