//! Recursive removal that never follows a symlink (CVE-2022-21658): each directory is
//! opened `O_NOFOLLOW` relative to its parent's fd and emptied with `unlinkat`. Only the
//! deepest [`MAX_OPEN_DIRS`] levels keep an fd; higher ones are re-opened through `..`
//! and checked against the device and inode seen on the way down.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{sys, UnpackError};

/// Descriptors one removal holds at most, however deep the tree.
const MAX_OPEN_DIRS: usize = 64;

/// Removes `path` and everything below it; a missing `path` is no error. `path` itself is
/// not followed if it is a symlink (the link is removed); its parent directories are
/// resolved normally (they are the caller's, e.g. the store's staging directory).
pub fn remove_tree(path: &Path) -> Result<(), UnpackError> {
    let fail = |source| UnpackError::Remove {
        path: path.to_path_buf(),
        source,
    };
    let name = match path.file_name() {
        Some(name) if path.as_os_str().as_bytes().last() != Some(&b'/') => name,
        _ => {
            return Err(fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path must end in a file name",
            )))
        }
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = match std::fs::File::open(parent) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    let name = sys::cstring(name.as_bytes()).map_err(fail)?;
    match remove_at(dir.as_fd(), &name) {
        Err(e) if sys::errno_is(&e, libc::ENOENT) => Ok(()),
        other => other.map_err(fail),
    }
}

/// Removes `name` in `dir`, recursively if it is a directory, never following symlinks.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match sys::unlinkat(dir, name, 0) {
        Err(e) if sys::errno_is(&e, libc::EISDIR) => remove_dir_tree(dir, name),
        other => other,
    }
}

/// One directory being emptied.
struct Frame {
    /// `None` once more than [`MAX_OPEN_DIRS`] deeper levels are open.
    fd: Option<OwnedFd>,
    id: (u64, u64),
    name: CString,
    /// Children not handled yet.
    left: Vec<CString>,
}

impl Frame {
    fn open(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<Frame> {
        let fd = sys::openat(parent, name, sys::O_DIR_NOFOLLOW, 0)?;
        let st = sys::fstat(fd.as_fd())?;
        let left = sys::read_dir(fd.as_fd())?
            .into_iter()
            .map(|e| e.name)
            .collect();
        Ok(Frame {
            fd: Some(fd),
            id: (st.st_dev, st.st_ino),
            name: name.to_owned(),
            left,
        })
    }
}

/// Empties and removes the directory `name` in `parent` without recursion on the stack.
pub(crate) fn remove_dir_tree(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let mut stack = vec![Frame::open(parent, name)?];
    while let Some(top) = stack.last_mut() {
        if let Some(child) = top.left.pop() {
            let fd = top.fd.as_ref().expect("the deepest frame is open");
            match sys::unlinkat(fd.as_fd(), &child, 0) {
                Ok(()) => {}
                Err(e) if sys::errno_is(&e, libc::ENOENT) => {}
                Err(e) if sys::errno_is(&e, libc::EISDIR) => {
                    let frame = Frame::open(fd.as_fd(), &child)?;
                    if stack.len() >= MAX_OPEN_DIRS {
                        let idx = stack.len() - MAX_OPEN_DIRS;
                        stack[idx].fd = None;
                    }
                    stack.push(frame);
                }
                Err(e) => return Err(e),
            }
            continue;
        }
        let done = stack.pop().expect("a frame is on the stack");
        let Some(up) = stack.last_mut() else {
            return sys::unlinkat(parent, name, libc::AT_REMOVEDIR);
        };
        if up.fd.is_none() {
            up.fd = Some(reopen_parent(&done, up.id)?);
        }
        let up_fd = up.fd.as_ref().expect("just opened");
        sys::unlinkat(up_fd.as_fd(), &done.name, libc::AT_REMOVEDIR)?;
    }
    Ok(())
}

/// Opens `..` of a frame and checks it is the directory we came down from.
fn reopen_parent(child: &Frame, expected: (u64, u64)) -> io::Result<OwnedFd> {
    let fd = child
        .fd
        .as_ref()
        .expect("the popped frame was the deepest, so open");
    let up = sys::openat(fd.as_fd(), c"..", sys::O_DIR_NOFOLLOW, 0)?;
    let st = sys::fstat(up.as_fd())?;
    if (st.st_dev, st.st_ino) != expected {
        return Err(io::Error::other(
            "a directory moved during removal (its '..' changed)",
        ));
    }
    Ok(up)
}
