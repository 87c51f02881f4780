//! A bounded pool of pinned, empty network namespaces (as `ip netns` pins them), so a
//! one-shot run or a judge worker joins one instead of creating and tearing down its own,
//! a large part of a run's kernel time. Each is bind-mounted on `/run/judgebox/netns/N`
//! (the only mounts judgebox leaves in the host's table), leased by one user at a time
//! (flock, released even if judgebox is killed), and removed by `judgebox cleanup`.
//! They hold only `lo`, down; a program without CAP_NET_ADMIN can change nothing in them,
//! and its sockets die with its processes.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::flock::{self, FileLock, Mode};

/// Where the pinned namespaces and their lock files live (a tmpfs: gone at reboot).
pub const POOL_DIR: &str = "/run/judgebox/netns";
/// How many can exist at once (concurrent users beyond that get a fresh namespace).
pub const POOL_SIZE: u32 = 64;
/// `statfs` magic of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// A pinned network namespace no one else uses while this lives.
#[derive(Debug)]
pub struct NetnsLease {
    /// An fd of the namespace, for setns.
    pub fd: OwnedFd,
    _lock: FileLock,
}

/// Leases a pinned namespace: the lowest free slot, pinning a new one when that slot has
/// none. `None` when every slot is busy or the pool cannot be used here (the caller makes
/// a fresh one).
///
/// Lowest first, so the pool only grows to the most users there ever were at once: every
/// pin is a mount in the host's table, which every new mount namespace on the host (ours,
/// bwrap's, a container's) copies and then tears down, and every read of mountinfo prints.
pub fn lease() -> Option<NetnsLease> {
    lease_in(Path::new(POOL_DIR)).ok().flatten()
}

fn lease_in(dir: &Path) -> io::Result<Option<NetnsLease>> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    for slot in 0..POOL_SIZE {
        let Some(lock) = flock::try_lock(&dir.join(format!("{slot}.lock")), Mode::Exclusive)?
        else {
            continue;
        };
        let path = dir.join(slot.to_string());
        let fd = match open_pinned(&path)? {
            Some(fd) => fd,
            None => pin_new(&path)?,
        };
        return Ok(Some(NetnsLease { fd, _lock: lock }));
    }
    Ok(None)
}

/// The namespace pinned at `path`, if `path` is one (not a leftover plain file).
fn open_pinned(path: &Path) -> io::Result<Option<OwnedFd>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(is_nsfs(&file).then(|| file.into()))
}

fn is_nsfs(file: &File) -> bool {
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and a valid out-pointer.
    let r = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
    r == 0 && st.f_type as i64 == NSFS_MAGIC
}

/// Creates a network namespace (`namespaces::new_netns`) and bind-mounts it on `path`.
fn pin_new(path: &Path) -> io::Result<OwnedFd> {
    let netns = super::new_netns()?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let source = std::ffi::CString::new(format!("/proc/self/fd/{}", netns.as_raw_fd()))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let target = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both paths are NUL-terminated; a bind mount of the namespace file.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(netns)
}

/// Unpins and removes every namespace of the pool no one leases; returns how many.
pub fn cleanup() -> io::Result<usize> {
    cleanup_in(Path::new(POOL_DIR))
}

fn cleanup_in(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for slot in 0..POOL_SIZE {
        let path = dir.join(slot.to_string());
        if !path.exists() {
            continue;
        }
        let Some(_lock) = flock::try_lock(&dir.join(format!("{slot}.lock")), Mode::Exclusive)?
        else {
            continue;
        };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a NUL-terminated path; detaching a mount judgebox made.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        fs::remove_file(&path)?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netns_id(fd: &OwnedFd) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn leases_are_exclusive_pinned_reused_and_cleaned_up() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let a = lease_in(dir.path()).unwrap().unwrap();
        let b = lease_in(dir.path()).unwrap().unwrap();
        assert_ne!(
            netns_id(&a.fd),
            netns_id(&b.fd),
            "two leases, two namespaces"
        );
        let first = netns_id(&a.fd);
        drop(a);
        let c = lease_in(dir.path()).unwrap().unwrap();
        assert_eq!(netns_id(&c.fd), first, "a released namespace is reused");
        assert_eq!(cleanup_in(dir.path()).unwrap(), 0, "leased ones stay");
        drop((b, c));
        // One user at a time, whoever it is, gets slot 0 again: the pool grows only with
        // concurrency (leases once started at a slot picked by pid, and sequential runs
        // pinned all 64).
        for _ in 0..5 {
            let l = lease_in(dir.path()).unwrap().unwrap();
            assert_eq!(netns_id(&l.fd), first, "the lowest free slot");
        }
        assert!(!dir.path().join("2").exists(), "no third namespace");
        assert_eq!(cleanup_in(dir.path()).unwrap(), 2);
        assert!(!dir.path().join("0").exists());
    }
}
