//! Opening the host files a caller names (sources, tests, stdin, `--file`) as root without
//! being led elsewhere: the last component is never followed if it is a symlink, and the
//! type is checked on an `O_PATH` fd before any open that could block (a FIFO) or act (a device).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("{path}: is a symlink (refused: inputs are never followed through symlinks)")]
    Symlink { path: PathBuf },
    #[error("{path}: not a regular file (it is a {kind})")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl OpenError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            OpenError::Symlink { path }
            | OpenError::NotRegular { path, .. }
            | OpenError::Io { path, .. } => path,
        }
    }

    /// The reason without the path, for callers whose own error already names it.
    pub fn into_io(self) -> io::Error {
        match self {
            OpenError::Io { source, .. } => source,
            OpenError::Symlink { .. } => io::Error::other(
                "is a symlink (refused: inputs are never followed through symlinks)",
            ),
            OpenError::NotRegular { kind, .. } => {
                io::Error::other(format!("not a regular file (it is a {kind})"))
            }
        }
    }
}

/// Opens `path` for reading if, and only if, it is a regular file that is not reached
/// through a symlink in its last component. Never blocks on a FIFO, never opens a device.
pub fn open_regular(path: &Path) -> Result<File, OpenError> {
    let io_err = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let handle = open_path_handle(path).map_err(io_err)?;
    let st = fstat(&handle).map_err(io_err)?;
    check_regular(path, st.st_mode)?;
    let file = reopen_for_reading(&handle).map_err(io_err)?;
    // The reopen goes through the handle's magic link, so it is the same inode; checked
    // anyway, as a cheap guard against a /proc that is not the kernel's.
    let again = fstat(&file).map_err(io_err)?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(io_err(io::Error::other(
            "the file changed while it was opened",
        )));
    }
    Ok(file)
}

/// Refuses every file type but a regular file, naming `path` and what it is instead.
pub fn check_regular(path: &Path, mode: libc::mode_t) -> Result<(), OpenError> {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Ok(()),
        libc::S_IFLNK => Err(OpenError::Symlink {
            path: path.to_path_buf(),
        }),
        other => Err(OpenError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(other),
        }),
    }
}

fn kind_name(fmt: libc::mode_t) -> &'static str {
    match fmt {
        libc::S_IFDIR => "directory",
        libc::S_IFIFO => "fifo",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        libc::S_IFSOCK => "socket",
        _ => "special file",
    }
}

/// An `O_PATH|O_NOFOLLOW` handle: it names the inode without opening it, so a FIFO does
/// not block and a device driver's open is not called; a symlink yields the link itself.
fn open_path_handle(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    raw_open(&c, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
}

/// Opens the inode behind an `O_PATH` handle for reading (through /proc/self/fd, which
/// refers to the inode itself, not to the path it was found by).
fn reopen_for_reading(handle: &OwnedFd) -> io::Result<File> {
    let link = CString::new(format!("/proc/self/fd/{}", handle.as_raw_fd()))
        .expect("no NUL in a formatted fd path");
    raw_open(&link, libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY).map(File::from)
}

fn raw_open(path: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: path is a valid NUL-terminated string; the returned fd is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: &impl AsRawFd) -> io::Result<libc::stat> {
    // SAFETY: st is a plain C struct that fstat fills completely on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is a valid open descriptor and st a valid out-pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::{Duration, Instant};

    #[test]
    fn a_regular_file_opens_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, "hello").unwrap();
        let mut s = String::new();
        open_regular(&p).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }

    #[test]
    fn symlinks_are_refused_even_to_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, "root only").unwrap();
        let link = dir.path().join("1.in");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_regular(&link).unwrap_err();
        assert!(matches!(err, OpenError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("1.in"), "{err}");
        let dangling = dir.path().join("2.in");
        std::os::unix::fs::symlink("/nonexistent/x", &dangling).unwrap();
        assert!(matches!(
            open_regular(&dangling),
            Err(OpenError::Symlink { .. })
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("1.in");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let started = Instant::now();
        let err = open_regular(&fifo).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            matches!(err, OpenError::NotRegular { kind: "fifo", .. }),
            "{err}"
        );
    }

    #[test]
    fn directories_and_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            open_regular(dir.path()),
            Err(OpenError::NotRegular {
                kind: "directory",
                ..
            })
        ));
        assert!(matches!(
            open_regular(Path::new("/dev/null")),
            Err(OpenError::NotRegular {
                kind: "character device",
                ..
            })
        ));
    }
}
