//! Thin wrappers over the `*at` syscalls the unpacker uses. Each takes a directory fd and
//! one path component (a whole path only where the kernel resolves it in-root), adds
//! `O_CLOEXEC`, and returns `io::Result`; callers attach the entry path and step.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub(crate) type Stat = libc::stat;

/// Flags for a directory fd used only as the base of `*at` calls.
pub(crate) const O_PATH_DIR: libc::c_int = libc::O_PATH | libc::O_DIRECTORY;
/// Flags for a directory fd that metadata calls (fchmod, fsetxattr, getdents) accept.
pub(crate) const O_DIR_NOFOLLOW: libc::c_int =
    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) })
}

pub(crate) fn errno_is(e: &io::Error, errno: libc::c_int) -> bool {
    e.raw_os_error() == Some(errno)
}

pub(crate) fn error(errno: libc::c_int) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

/// A path component (or an in-root path) as a C string; NUL bytes are refused.
pub(crate) fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is an open descriptor.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    owned(fd.into())
}

/// `openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `..` stops at
/// `root` and absolute symlinks restart from it, so the result is always inside `root`.
pub(crate) fn openat2_in_root(
    root: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain old data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `path` is NUL-terminated, `how` is a valid open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    owned(fd)
}

pub(crate) fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `dir` is open.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated; `dir` is open.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// `linkat` without `AT_SYMLINK_FOLLOW`: a symlink target is linked, never followed.
pub(crate) fn linkat(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated; both descriptors are open.
    check(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            new_dir.as_raw_fd(),
            new_name.as_ptr(),
            0,
        )
    })
}

pub(crate) fn mkfifoat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; a FIFO needs no device number.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), libc::S_IFIFO | 0o600, 0) })
}

pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `dir` is open.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    // SAFETY: stat is plain old data, filled in by the kernel.
    let mut st: Stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `st` is a valid out pointer.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    // SAFETY: stat is plain old data, filled in by the kernel.
    let mut st: Stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out pointer; `fd` is open (O_PATH descriptors work too).
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

pub(crate) fn file_type(st: &Stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}

pub(crate) fn is_dir(st: &Stat) -> bool {
    file_type(st) == libc::S_IFDIR
}

/// `fchownat(dir, name, .., AT_SYMLINK_NOFOLLOW)`: changes a symlink itself, never its target.
pub(crate) fn lchownat(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `dir` is open.
    check(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

pub(crate) fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an open descriptor.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })
}

pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain syscall on an open descriptor.
    check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
}

/// Sets atime and mtime of the open file itself (`utimensat(fd, NULL, ..)`).
pub(crate) fn futimens(fd: BorrowedFd<'_>, mtime: libc::timespec) -> io::Result<()> {
    let times = [mtime, mtime];
    // SAFETY: `times` holds the two timespecs the call reads.
    check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })
}

/// Sets atime and mtime separately on the open file.
pub(crate) fn futimens2(
    fd: BorrowedFd<'_>,
    atime: libc::timespec,
    mtime: libc::timespec,
) -> io::Result<()> {
    let times = [atime, mtime];
    // SAFETY: `times` holds the two timespecs the call reads.
    check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })
}

/// `utimensat(dir, name, .., AT_SYMLINK_NOFOLLOW)`: for symlinks, which have no usable fd.
pub(crate) fn lutimensat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mtime: libc::timespec,
) -> io::Result<()> {
    let times = [mtime, mtime];
    // SAFETY: `name` is NUL-terminated, `times` holds two timespecs.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

pub(crate) fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and `value` is valid for `value.len()` bytes.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

pub(crate) fn fremovexattr(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) })
}

/// Names of the extended attributes of an open file.
pub(crate) fn flistxattr(fd: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of output.
        let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        if !errno_is(&e, libc::ERANGE) || buf.len() >= 1 << 20 {
            return Err(e);
        }
        let len = buf.len() * 4;
        buf.resize(len, 0);
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .filter_map(|name| CString::new(name).ok())
        .collect())
}

/// The target of a symlink opened with `O_PATH | O_NOFOLLOW` (`readlinkat(fd, "")`).
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    loop {
        // SAFETY: the empty path is NUL-terminated and `buf` is valid for its length.
        let n = unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if (n as usize) < buf.len() {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let len = buf.len() * 2;
        buf.resize(len, 0);
    }
}

/// One directory entry: its name and `d_type` (`DT_UNKNOWN` on filesystems without it).
pub(crate) struct DirEntry {
    pub name: CString,
    pub kind: u8,
}

/// Lists a directory (without `.` and `..`) through a fresh descriptor of it.
pub(crate) fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<DirEntry>> {
    let fd = openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: `raw` is an open directory descriptor whose ownership passes to the stream.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let mut entries = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; clearing it tells end-of-stream from an error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is a valid open DIR*.
        let ent = unsafe { libc::readdir64(stream) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error().unwrap_or(0) == 0 {
                Ok(())
            } else {
                Err(e)
            };
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated; it stays
        // valid until the next readdir on this stream, and we copy it before that.
        let (name, kind) = unsafe { (CStr::from_ptr((*ent).d_name.as_ptr()), (*ent).d_type) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            entries.push(DirEntry {
                name: name.to_owned(),
                kind,
            });
        }
    };
    // SAFETY: `stream` is valid and closed exactly once.
    unsafe { libc::closedir(stream) };
    result.map(|()| entries)
}
