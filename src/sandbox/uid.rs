//! Per-run uids: the kernel counts some resources per real uid across every namespace
//! (RLIMIT_NPROC, inotify instances and watches, pipe buffer pages), so runs sharing one uid
//! could starve each other. Every run leases a uid of its own, held by a `flock`.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::OnceLock;

use thiserror::Error;

use crate::flock::{self, FileLock, Mode};

/// First uid of the default range: above any real account and the 16-bit range, and
/// below the ranges container tools hand out for subordinate ids (100000 + 65536*n).
pub const FIRST_RUN_UID: u32 = 2_000_000_000;
/// How many concurrent runs can get a uid of their own (default range).
pub const RUN_UIDS: u32 = 4096;
/// Where the leases live (a tmpfs: stale files vanish at reboot; locks die with their holder).
pub const LEASE_DIR: &str = "/run/judgebox/uids";
/// The smallest first uid a range may have: every id below is a system or user account,
/// the shared nobody (65534), or in the 16-bit range old tools still assume.
pub const MIN_RANGE_UID: u32 = 65536;

#[derive(Debug, Error)]
pub enum UidError {
    #[error("uid range '{0}': expected FIRST-LAST, e.g. 2000000000-2000004095")]
    Syntax(String),
    #[error("uid range {first}-{last}: {why}")]
    Unsafe { first: u32, last: u32, why: String },
    #[error("uid range already configured as {0:?}")]
    AlreadySet(UidRange),
}

/// A range of uids (each also used as the run's gid) that no account or file on the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first: u32,
    pub count: u32,
}

impl Default for UidRange {
    fn default() -> UidRange {
        UidRange {
            first: FIRST_RUN_UID,
            count: RUN_UIDS,
        }
    }
}

impl UidRange {
    pub fn last(&self) -> u32 {
        self.first + (self.count - 1)
    }

    /// Parses `FIRST-LAST` (inclusive) and checks it is a safe range on this host.
    pub fn parse(text: &str) -> Result<UidRange, UidError> {
        let syntax = || UidError::Syntax(text.to_string());
        let (a, b) = text.trim().split_once('-').ok_or_else(syntax)?;
        let first: u32 = a.trim().parse().map_err(|_| syntax())?;
        let last: u32 = b.trim().parse().map_err(|_| syntax())?;
        if last < first {
            return Err(syntax());
        }
        let range = UidRange {
            first,
            count: last - first + 1,
        };
        range.check(&HostIds::read())?;
        Ok(range)
    }

    /// Refuses a range that could give a run the identity of something on the host: an
    /// account or group, a container tool's subordinate ids, nobody, or (uid_t)-1.
    fn check(&self, host: &HostIds) -> Result<(), UidError> {
        let unsafe_range = |why: String| UidError::Unsafe {
            first: self.first,
            last: self.last(),
            why,
        };
        if self.first < MIN_RANGE_UID {
            return Err(unsafe_range(format!(
                "starts below {MIN_RANGE_UID} (system and user accounts, nobody)"
            )));
        }
        if self.last() == u32::MAX {
            return Err(unsafe_range(
                "includes 4294967295, which means 'no id'".into(),
            ));
        }
        if let Some((what, id)) = host.ids.iter().find(|(_, id)| self.contains(*id)) {
            return Err(unsafe_range(format!("includes {what} {id}")));
        }
        if let Some((what, start, n)) = host
            .ranges
            .iter()
            .find(|(_, s, n)| *n > 0 && self.first <= s + (n - 1) && *s <= self.last())
        {
            return Err(unsafe_range(format!(
                "overlaps {what} {start}-{}",
                start + (n - 1)
            )));
        }
        Ok(())
    }

    fn contains(&self, id: u32) -> bool {
        (self.first..=self.last()).contains(&id)
    }
}

/// The ids the host hands out: accounts and groups, and subordinate id ranges.
#[derive(Default)]
struct HostIds {
    ids: Vec<(&'static str, u32)>,
    ranges: Vec<(&'static str, u32, u32)>,
}

impl HostIds {
    fn read() -> HostIds {
        let mut host = HostIds::default();
        for (file, what) in [("/etc/passwd", "the uid of"), ("/etc/group", "the gid of")] {
            let text = fs::read_to_string(file).unwrap_or_default();
            host.ids.extend(parse_ids(&text).map(|id| (what, id)));
        }
        for (file, what) in [
            ("/etc/subuid", "/etc/subuid range"),
            ("/etc/subgid", "/etc/subgid range"),
        ] {
            let text = fs::read_to_string(file).unwrap_or_default();
            host.ranges
                .extend(parse_sub_ranges(&text).map(|(s, n)| (what, s, n)));
        }
        host
    }
}

/// The third field (uid or gid) of each passwd/group line.
fn parse_ids(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.lines()
        .filter_map(|l| l.split(':').nth(2).and_then(|f| f.trim().parse().ok()))
}

/// `name:start:count` lines of /etc/subuid and /etc/subgid.
fn parse_sub_ranges(text: &str) -> impl Iterator<Item = (u32, u32)> + '_ {
    text.lines().filter_map(|l| {
        let mut f = l.split(':').skip(1);
        let start = f.next()?.trim().parse().ok()?;
        let count = f.next()?.trim().parse().ok()?;
        Some((start, count))
    })
}

static RANGE: OnceLock<Result<UidRange, String>> = OnceLock::new();

/// Sets the range every later lease of this process comes from (`--uid-range`, already
/// checked by [`UidRange::parse`]); once.
pub fn configure(range: UidRange) -> Result<(), UidError> {
    RANGE
        .set(Ok(range))
        .map_err(|_| UidError::AlreadySet(range))
}

/// The configured range, else the default one once checked against this host's ids.
pub fn range() -> io::Result<UidRange> {
    RANGE
        .get_or_init(|| {
            let default = UidRange::default();
            default
                .check(&HostIds::read())
                .map(|()| default)
                .map_err(|e| format!("{e} (give a free range with --uid-range)"))
        })
        .clone()
        .map_err(io::Error::other)
}

/// A uid (and the same gid) no other concurrent run has; released on drop (or when the
/// process dies, even by SIGKILL: the lock goes with the file descriptor).
#[derive(Debug)]
pub struct UidLease {
    pub uid: u32,
    _lock: FileLock,
}

/// Leases a free uid from the range, scanning from a pid-based start so concurrent
/// processes rarely contend for the same lock.
pub fn lease_run_uid() -> io::Result<UidLease> {
    lease_in(Path::new(LEASE_DIR), range()?, std::process::id())
}

fn lease_in(dir: &Path, range: UidRange, seed: u32) -> io::Result<UidLease> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for i in 0..range.count {
        let uid = range.first + (seed.wrapping_add(i) % range.count);
        if let Some(lock) = flock::try_lock(&dir.join(uid.to_string()), Mode::Exclusive)? {
            return Ok(UidLease { uid, _lock: lock });
        }
    }
    Err(io::Error::other(format!(
        "all {} per-run uids ({}-{}) in {} are in use",
        range.count,
        range.first,
        range.last(),
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_leases_get_distinct_uids_and_free_them_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let range = UidRange::default();
        let a = lease_in(dir.path(), range, 7).unwrap();
        let b = lease_in(dir.path(), range, 7).unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(a.uid >= FIRST_RUN_UID && a.uid < FIRST_RUN_UID + RUN_UIDS);
        let freed = a.uid;
        drop(a);
        let c = lease_in(dir.path(), range, 7).unwrap();
        assert_eq!(c.uid, freed, "a released uid is reused");
    }

    #[test]
    fn a_full_range_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let range = UidRange {
            first: 3_000_000_000,
            count: 2,
        };
        let _a = lease_in(dir.path(), range, 0).unwrap();
        let _b = lease_in(dir.path(), range, 0).unwrap();
        let err = lease_in(dir.path(), range, 0).unwrap_err();
        assert!(err.to_string().contains("3000000000-3000000001"), "{err}");
    }

    #[test]
    fn ranges_touching_host_ids_are_refused() {
        let host = HostIds {
            ids: parse_ids("root:x:0:0::/:/bin/sh\nbob:x:200000:100::/:/bin/sh\n")
                .map(|id| ("the uid of", id))
                .collect(),
            ranges: parse_sub_ranges("bob:100000:65536\n")
                .map(|(s, n)| ("/etc/subuid range", s, n))
                .collect(),
        };
        let ok = UidRange {
            first: 2_000_000_000,
            count: 4096,
        };
        assert!(ok.check(&host).is_ok());
        for (first, count, why) in [
            (1000, 10, "below 65536"),
            (65530, 10, "below 65536"),
            (199_990, 20, "200000"),
            (165_000, 10, "/etc/subuid range 100000-165535"),
            (u32::MAX - 3, 4, "4294967295"),
        ] {
            let err = UidRange { first, count }.check(&host).unwrap_err();
            assert!(err.to_string().contains(why), "{first}+{count}: {err}");
        }
        assert!(matches!(UidRange::parse("5-1"), Err(UidError::Syntax(_))));
        assert!(matches!(UidRange::parse("x"), Err(UidError::Syntax(_))));
        assert_eq!(
            UidRange::parse("2000000000-2000000009").unwrap(),
            UidRange {
                first: 2_000_000_000,
                count: 10
            }
        );
    }
}
