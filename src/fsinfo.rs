//! Filesystem facts judgebox bounds writes by: a filesystem's capacity (the `--box-dir`
//! size policy) and its free space (the image store's reserve), both from statvfs; and
//! whether a directory is in memory (where scratch files go, `crate::scratch`).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Total size in bytes of the filesystem holding `path` (blocks * fragment size).
pub fn capacity(path: &Path) -> io::Result<u64> {
    let st = statvfs(path)?;
    Ok((st.f_blocks as u64).saturating_mul(st.f_frsize as u64))
}

/// Bytes still free on the filesystem of `path` for non-root writers (f_bavail): the
/// blocks a filesystem reserves for root stay out of reach too.
pub fn available(path: &Path) -> io::Result<u64> {
    let st = statvfs(path)?;
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Whether `path` is on a tmpfs (statfs's filesystem type).
pub fn is_tmpfs(path: &Path) -> io::Result<bool> {
    let c = c_path(path)?;
    // SAFETY: st is a plain C struct statfs fills completely on success.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a valid out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // f_type and the magic numbers are signed in glibc, unsigned in musl.
    #[allow(clippy::unnecessary_cast)]
    let tmpfs = st.f_type as u64 == libc::TMPFS_MAGIC as u64;
    Ok(tmpfs)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn statvfs(path: &Path) -> io::Result<libc::statvfs> {
    let c = c_path(path)?;
    // SAFETY: st is a plain C struct statvfs fills completely on success.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}
