//! Finishing an unpacked rootfs for the sandbox (its mount points, the image's working
//! directory) and measuring one. Directories are made relative to a directory fd and no
//! symlink is followed: what the image put there is left alone.

use std::collections::HashSet;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

pub use crate::sandbox::MOUNT_POINTS;

/// Creates the missing mount points and the image's working directory as real 0755
/// directories. An existing entry of any kind (a symlink, say) is kept: the sandbox
/// refuses a symlinked mount point with a clear error when the image runs.
pub fn finish(root: &Path, working_dir: Option<&str>) -> io::Result<()> {
    let path = cstring(root.as_os_str().as_bytes())?;
    let root = open_at(libc::AT_FDCWD, &path, libc::O_RDONLY)?;
    for name in MOUNT_POINTS {
        make_dir(root.as_raw_fd(), &cstring(name.as_bytes())?)?;
    }
    if let Some(dir) = working_dir {
        make_dirs(&root, Path::new(dir))?;
    }
    Ok(())
}

/// Walks `path` from `root`, creating missing components; stops quietly at a component
/// that is not a real directory, or at `..` (the sandbox refuses such a working dir).
fn make_dirs(root: &OwnedFd, path: &Path) -> io::Result<()> {
    let mut current = open_at(root.as_raw_fd(), c".", libc::O_PATH)?;
    for component in path.components() {
        let name = match component {
            Component::Normal(name) => cstring(name.as_bytes())?,
            Component::RootDir | Component::CurDir => continue,
            Component::ParentDir | Component::Prefix(_) => return Ok(()),
        };
        current = match open_at(current.as_raw_fd(), &name, libc::O_PATH) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                make_dir(current.as_raw_fd(), &name)?;
                open_at(current.as_raw_fd(), &name, libc::O_PATH)?
            }
            Err(_) => return Ok(()),
        };
    }
    Ok(())
}

/// `mkdirat` 0755 (whatever the umask); an existing entry is no error.
fn make_dir(dir: RawFd, name: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: a valid directory fd and a NUL-terminated name.
    if unsafe { libc::mkdirat(dir, name.as_ptr(), 0o755) } != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EEXIST) => Ok(()),
            _ => Err(e),
        };
    }
    // SAFETY: as above; the directory was just made in the store's private staging dir.
    if unsafe { libc::fchmodat(dir, name.as_ptr(), 0o755, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens a directory without following a symlink in the last component.
fn open_at(dir: RawFd, name: &std::ffi::CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let flags = flags | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid directory fd (or AT_FDCWD) and a NUL-terminated name.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Disk usage of a tree (allocated blocks, hardlinked inodes once), without following
/// symlinks. Best effort: what cannot be read is not counted.
pub fn disk_usage(path: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn mount_points_and_working_dir_are_made_but_symlinks_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::os::unix::fs::symlink("/etc", root.join("tmp")).unwrap();
        std::fs::create_dir(root.join("dev")).unwrap();
        std::fs::create_dir(root.join("srv")).unwrap();
        std::os::unix::fs::symlink("/", root.join("srv/up")).unwrap();
        finish(root, Some("/usr/src/app")).unwrap();
        for d in ["box", "proc", "dev", "usr/src/app"] {
            let meta = std::fs::symlink_metadata(root.join(d)).unwrap();
            assert!(meta.is_dir(), "{d}");
        }
        let app = std::fs::metadata(root.join("usr/src/app")).unwrap();
        assert_eq!(app.permissions().mode() & 0o777, 0o755);
        assert!(std::fs::symlink_metadata(root.join("tmp"))
            .unwrap()
            .is_symlink());
        finish(root, Some("/srv/up/escaped")).unwrap();
        assert!(!Path::new("/escaped").exists());
        assert!(std::fs::symlink_metadata(root.join("srv/up"))
            .unwrap()
            .is_symlink());
    }

    #[test]
    fn disk_usage_counts_hardlinks_once() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), vec![1u8; 64 << 10]).unwrap();
        let one = disk_usage(tmp.path());
        std::fs::hard_link(tmp.path().join("a"), tmp.path().join("b")).unwrap();
        assert_eq!(disk_usage(tmp.path()), one);
        assert!(one >= 64 << 10);
    }
}
