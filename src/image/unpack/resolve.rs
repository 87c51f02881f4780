//! In-root path resolution: opens a directory named by a path inside the unpack root the
//! way a chroot would see it (`..` stops at the root, absolute symlinks restart from it),
//! with openat2 `RESOLVE_IN_ROOT`, or a component walk where the kernel lacks openat2.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::sys;

/// Symlinks followed while resolving one path before giving up with ELOOP (as the kernel).
const MAX_SYMLINKS: usize = 40;
/// openat2 fails with EAGAIN when a rename races the lookup; retry a few times.
const EAGAIN_RETRIES: usize = 8;

/// How paths are resolved in the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resolver {
    /// openat2 `RESOLVE_IN_ROOT`, falling back to [`Resolver::Walk`] for good on ENOSYS or
    /// EPERM (old kernels, old seccomp profiles).
    Openat2,
    /// A walk of `O_PATH | O_NOFOLLOW` opens, following symlinks ourselves (tests force it).
    #[cfg_attr(not(test), allow(dead_code))]
    Walk,
}

/// The open unpack root.
pub(crate) struct Root {
    fd: OwnedFd,
    openat2: Cell<bool>,
}

impl Root {
    /// Opens `path` (an existing directory the caller owns) as the root of all resolution.
    pub(crate) fn open(path: &Path, resolver: Resolver) -> io::Result<Root> {
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)?;
        Ok(Root {
            fd: fd.into(),
            openat2: Cell::new(resolver == Resolver::Openat2),
        })
    }

    /// The root directory (opened `O_RDONLY | O_DIRECTORY`, so fchmod/fchown work on it).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    #[cfg(test)]
    pub(crate) fn uses_openat2(&self) -> bool {
        self.openat2.get()
    }

    /// Opens the directory at `path` (cleaned, relative, `/`-separated; empty is the root),
    /// following symlinks in-root. Nothing is created: a missing component is ENOENT.
    pub(crate) fn open_dir(&self, path: &[u8]) -> io::Result<OwnedFd> {
        if path.is_empty() {
            return sys::dup(self.fd());
        }
        if self.openat2.get() {
            match self.openat2(path) {
                // ENOSYS: kernel before 5.6; EPERM: a seccomp filter that predates openat2.
                Err(e) if sys::errno_is(&e, libc::ENOSYS) || sys::errno_is(&e, libc::EPERM) => {
                    self.openat2.set(false)
                }
                other => return other,
            }
        }
        self.walk(path, false)
    }

    /// As [`Root::open_dir`], creating missing directories (mode 0755, owned by the caller),
    /// also where a dangling symlink points (in-root, like `mkdir -p` in a chroot).
    pub(crate) fn open_dir_create(&self, path: &[u8]) -> io::Result<OwnedFd> {
        match self.open_dir(path) {
            Err(e) if sys::errno_is(&e, libc::ENOENT) => self.walk(path, true),
            other => other,
        }
    }

    fn openat2(&self, path: &[u8]) -> io::Result<OwnedFd> {
        let path = sys::cstring(path)?;
        let mut tries = 0;
        loop {
            match sys::openat2_in_root(self.fd(), &path, sys::O_PATH_DIR) {
                Err(e) if sys::errno_is(&e, libc::EAGAIN) && tries < EAGAIN_RETRIES => tries += 1,
                Err(e) if sys::errno_is(&e, libc::EAGAIN) => {
                    return self.walk(path.to_bytes(), false)
                }
                other => return other,
            }
        }
    }

    /// The fallback resolver. `names` is the physical path of `cur` below the root; it only
    /// ever holds real directories (symlinks are replaced by their targets' components),
    /// and `..` pops it, so no lookup of `..` is ever handed to the kernel.
    fn walk(&self, path: &[u8], create: bool) -> io::Result<OwnedFd> {
        let mut todo: Vec<Vec<u8>> = components(path).rev().map(<[u8]>::to_vec).collect();
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut cur: Option<OwnedFd> = None;
        let mut links = 0;
        while let Some(comp) = todo.pop() {
            if comp == b".." {
                if names.pop().is_some() {
                    cur = self.reopen(&names)?;
                }
                continue;
            }
            let name = sys::cstring(&comp)?;
            let dir = cur.as_ref().map_or(self.fd(), |fd| fd.as_fd());
            let fd = match sys::openat(dir, &name, libc::O_PATH | libc::O_NOFOLLOW, 0) {
                Err(e) if create && sys::errno_is(&e, libc::ENOENT) => make_dir(dir, &name)?,
                other => other?,
            };
            let st = sys::fstat(fd.as_fd())?;
            match sys::file_type(&st) {
                libc::S_IFDIR => {
                    names.push(comp);
                    cur = Some(fd);
                }
                libc::S_IFLNK => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(sys::error(libc::ELOOP));
                    }
                    let target = sys::readlink_fd(fd.as_fd())?;
                    if target.starts_with(b"/") {
                        names.clear();
                        cur = None;
                    }
                    todo.extend(components(&target).rev().map(<[u8]>::to_vec));
                }
                _ => return Err(sys::error(libc::ENOTDIR)),
            }
        }
        match cur {
            Some(fd) => Ok(fd),
            None => sys::dup(self.fd()),
        }
    }

    /// Re-opens the directory at physical path `names` (after a `..`), refusing symlinks.
    fn reopen(&self, names: &[Vec<u8>]) -> io::Result<Option<OwnedFd>> {
        let mut cur: Option<OwnedFd> = None;
        for comp in names {
            let dir = cur.as_ref().map_or(self.fd(), |fd| fd.as_fd());
            let name = sys::cstring(comp)?;
            cur = Some(sys::openat(
                dir,
                &name,
                sys::O_PATH_DIR | libc::O_NOFOLLOW,
                0,
            )?);
        }
        Ok(cur)
    }
}

/// Creates one missing directory 0755 (exactly, whatever the umask) and opens it.
fn make_dir(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<OwnedFd> {
    match sys::mkdirat(dir, name, 0o755) {
        Err(e) if !sys::errno_is(&e, libc::EEXIST) => return Err(e),
        _ => {}
    }
    let fd = sys::openat(dir, name, sys::O_DIR_NOFOLLOW, 0)?;
    sys::fchmod(fd.as_fd(), 0o755)?;
    Ok(fd)
}

/// The non-empty components of a `/`-separated path, without `.` (a leading `/` is dropped:
/// in-root, absolute and relative paths from the root are the same).
pub(crate) fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}
