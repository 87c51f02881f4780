//! `-q/--quota=blocks,inodes` where no disk quota is available: at `--init` the box
//! directory `<box_root>/<id>/box` becomes a tmpfs of `blocks` KiB and `inodes` inodes
//! (isolate's quota units), mounted in the host's mount namespace so files the caller
//! writes there before `--run` are what the program sees. `--cleanup`, and the next
//! `--init` of a box that was never cleaned up, unmount every mount below the box.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a quota box could not be set up or taken down.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("Cannot set disk quota: {blocks} blocks is more than judgebox allows ({max} KiB, half the RAM: the box is a tmpfs)")]
    TooLarge { blocks: u64, max: u64 },
    #[error("Cannot set disk quota: cannot mount a tmpfs on {path}: {source}")]
    Mount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Cannot unmount {path}: {source}")]
    Unmount {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Cannot read /proc/self/mountinfo: {0}")]
    Mountinfo(std::io::Error),
}

/// A box's quota in isolate's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// KiB (1 KiB quota blocks); 0: no quota at all (as isolate).
    pub blocks: u64,
    /// 0: no inode limit.
    pub inodes: u64,
}

impl Quota {
    /// tmpfs options for a box owned by `owner`.
    fn options(&self, owner: (u32, u32)) -> String {
        let mut o = format!(
            "size={}k,mode=0700,uid={},gid={}",
            self.blocks, owner.0, owner.1
        );
        if self.inodes > 0 {
            o.push_str(&format!(",nr_inodes={}", self.inodes));
        }
        o
    }
}

/// Half the physical memory in KiB (tmpfs's own default size).
fn max_blocks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64).saturating_mul(page.max(0) as u64) / 2048
}

fn mount_err(path: &Path) -> impl FnOnce(std::io::Error) -> QuotaError + '_ {
    move |source| QuotaError::Mount {
        path: path.to_path_buf(),
        source,
    }
}

/// Mounts the quota tmpfs on the (empty, root-created) directory `box_dir`. Its
/// propagation is its parent's: where the host's mounts are shared, the copies other
/// namespaces receive are unmounted with it (made private, they would outlive it there).
pub fn mount(box_dir: &Path, q: Quota, owner: (u32, u32)) -> Result<(), QuotaError> {
    let max = max_blocks();
    if q.blocks > max {
        return Err(QuotaError::TooLarge {
            blocks: q.blocks,
            max,
        });
    }
    let target = open_dir_nofollow(box_dir).map_err(mount_err(box_dir))?;
    let at = CString::new(format!("/proc/self/fd/{}", target.as_raw_fd()))
        .map_err(|e| mount_err(box_dir)(std::io::Error::other(e)))?;
    let opts =
        CString::new(q.options(owner)).map_err(|e| mount_err(box_dir)(std::io::Error::other(e)))?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            at.as_ptr(),
            c"tmpfs".as_ptr(),
            flags,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(mount_err(box_dir)(std::io::Error::last_os_error()));
    }
    Ok(())
}

fn open_dir_nofollow(path: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path; the result is a fresh fd we own.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Mount points at `dir` or below it in our mount namespace, deepest first.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>, QuotaError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(QuotaError::Mountinfo)?;
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|f| PathBuf::from(crate::cgroup::detect::unescape(f)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Whether `box_dir` has a quota tmpfs on it.
pub fn is_mounted(box_dir: &Path) -> Result<bool, QuotaError> {
    Ok(mounts_below(box_dir)?.iter().any(|p| p == box_dir))
}

/// Unmounts everything mounted at `dir` or below (a quota box's tmpfs, however many
/// times a crashed caller stacked it); returns how many mounts went.
pub fn unmount_below(dir: &Path) -> Result<usize, QuotaError> {
    let mut count = 0;
    // Stacked mounts on one point are listed once per mount: loop until none is left
    // (a bounded number of rounds, in case the kernel keeps listing one).
    for _ in 0..MAX_ROUNDS {
        let found = mounts_below(dir)?;
        if found.is_empty() {
            return Ok(count);
        }
        for path in found {
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|e| unmount_err(&path, std::io::Error::other(e)))?;
            // SAFETY: a NUL-terminated path; UMOUNT_NOFOLLOW refuses a symlink there.
            let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
            if rc != 0 {
                return Err(unmount_err(&path, std::io::Error::last_os_error()));
            }
            count += 1;
        }
    }
    Err(unmount_err(
        dir,
        std::io::Error::other("mounts are still listed after unmounting them"),
    ))
}

/// Rounds of unmounting before `unmount_below` gives up.
const MAX_ROUNDS: usize = 64;

fn unmount_err(path: &Path, source: std::io::Error) -> QuotaError {
    QuotaError::Unmount {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_options_follow_isolate_units() {
        let q = Quota {
            blocks: 1024,
            inodes: 50,
        };
        assert_eq!(
            q.options((60001, 60002)),
            "size=1024k,mode=0700,uid=60001,gid=60002,nr_inodes=50"
        );
        let q = Quota {
            blocks: 8,
            inodes: 0,
        };
        assert!(!q.options((1, 1)).contains("nr_inodes"));
        assert!(max_blocks() > 0);
    }
}
