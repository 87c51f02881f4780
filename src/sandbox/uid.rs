//! Per-run uids for the degraded mode: RLIMIT_NPROC counts every process of a real uid,
//! so runs sharing uid 65534 would share one process cap (one run's fork bomb starving
//! another). A run without a pids cgroup leases a uid of its own instead, held by a
//! `flock` for the run's lifetime (released even if judgebox is killed).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use crate::flock::{self, FileLock, Mode};

/// First uid of the range: above any real account (and the 16-bit range), below the
/// ranges container tools hand out for subordinate ids (100000 + 65536*n).
pub const FIRST_RUN_UID: u32 = 2_000_000_000;
/// How many concurrent runs can get a uid of their own.
pub const RUN_UIDS: u32 = 4096;
/// Where the leases live (a tmpfs: stale files vanish at reboot; locks die with their holder).
pub const LEASE_DIR: &str = "/run/judgebox/uids";

/// A uid (and the same gid) no other concurrent run has; released on drop.
#[derive(Debug)]
pub struct UidLease {
    pub uid: u32,
    _lock: FileLock,
}

/// Leases a free uid from the range, scanning from a pid-based start so concurrent
/// processes rarely contend for the same lock.
pub fn lease_run_uid() -> io::Result<UidLease> {
    lease_in(Path::new(LEASE_DIR), std::process::id())
}

fn lease_in(dir: &Path, seed: u32) -> io::Result<UidLease> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for i in 0..RUN_UIDS {
        let uid = FIRST_RUN_UID + (seed.wrapping_add(i) % RUN_UIDS);
        if let Some(lock) = flock::try_lock(&dir.join(uid.to_string()), Mode::Exclusive)? {
            return Ok(UidLease { uid, _lock: lock });
        }
    }
    Err(io::Error::other(format!(
        "all {RUN_UIDS} per-run uids in {} are in use",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_leases_get_distinct_uids_and_free_them_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let a = lease_in(dir.path(), 7).unwrap();
        let b = lease_in(dir.path(), 7).unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(a.uid >= FIRST_RUN_UID && a.uid < FIRST_RUN_UID + RUN_UIDS);
        let freed = a.uid;
        drop(a);
        let c = lease_in(dir.path(), 7).unwrap();
        assert_eq!(c.uid, freed, "a released uid is reused");
    }
}
