//! flock(2) locks on lock files (the image store's, blob writers', per-run uid leases):
//! released when dropped or when the process dies, so a killed judgebox never leaves a
//! lock behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A held lock; the lock goes with the file descriptor.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// Takes the lock on `path` (created 0600), waiting for it.
pub fn lock(path: &Path, mode: Mode) -> io::Result<FileLock> {
    let file = open(path)?;
    loop {
        match flock(&file, mode, false) {
            Ok(()) => return Ok(FileLock { _file: file }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Takes the lock on `path` if nobody holds a conflicting one; `None` when busy.
pub fn try_lock(path: &Path, mode: Mode) -> io::Result<Option<FileLock>> {
    let file = open(path)?;
    match flock(&file, mode, true) {
        Ok(()) => Ok(Some(FileLock { _file: file })),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
        Err(e) => Err(e),
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

fn flock(file: &File, mode: Mode, nonblocking: bool) -> io::Result<()> {
    let mut op = match mode {
        Mode::Shared => libc::LOCK_SH,
        Mode::Exclusive => libc::LOCK_EX,
    };
    if nonblocking {
        op |= libc::LOCK_NB;
    }
    // SAFETY: flock on an fd we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_share() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("l");
        let a = lock(&path, Mode::Shared).unwrap();
        let b = try_lock(&path, Mode::Shared).unwrap();
        assert!(b.is_some());
        assert!(try_lock(&path, Mode::Exclusive).unwrap().is_none());
        drop((a, b));
        let x = try_lock(&path, Mode::Exclusive).unwrap();
        assert!(x.is_some());
        assert!(try_lock(&path, Mode::Shared).unwrap().is_none());
    }
}
