//! Small helpers for cgroupfs files: one-`write(2)` writes, whole-file and positional
//! reads, idempotent mkdir, flat-keyed parsing ("key value" lines), flock and xattr,
//! and the few steps v1 and v2 share (writing a value, attaching a pid, removing a
//! directory that may still be busy), which return a [`CgroupError`] naming the path.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{io_at, CgroupError, Op};

/// Writes `value` to `dir/name` (one `write(2)`); the error names the file and value.
pub(crate) fn write_value(dir: &Path, name: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(name);
    write_file(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Moves `pid` into the cgroup `dir` through its `cgroup.procs`.
pub(crate) fn attach(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    write_file(&path, &pid.to_string()).map_err(|source| CgroupError::Attach { pid, path, source })
}

/// rmdir of a cgroup directory. On EBUSY (tasks or child cgroups left) it calls `kill` on
/// the directory, removes its children the same way, and retries with growing pauses
/// until `wait` has passed. A directory that is already gone counts as removed.
pub(crate) fn remove_dir(
    dir: &Path,
    wait: Duration,
    kill: &dyn Fn(&Path, Duration),
) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) if is_busy(&e) && start.elapsed() < wait => {
                kill(dir, wait / 4);
                for child in subdirs(dir) {
                    let _ = remove_dir(&child, wait / 4, kill);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(io_at(Op::Remove, dir)(e)),
        }
    }
}

/// The directories directly below `dir` (child cgroups); empty when unreadable.
pub(crate) fn subdirs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `value` with a single `write(2)`, as cgroupfs parses each write as one command.
pub(crate) fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    write_once(&mut file, value)
}

/// One `write(2)` of the whole value on an already open file; short writes are errors.
pub(crate) fn write_once(file: &mut File, value: &str) -> io::Result<()> {
    let written = file.write(value.as_bytes())?;
    if written != value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// Reads a whole (small) file into a string: open, read until EOF, close (std's
/// read_to_string adds a statx and an lseek, a third more syscalls per cgroupfs file).
pub(crate) fn read_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut buf = [0u8; 4096];
    let mut text = Vec::new();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(text).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// Reads a small file from offset 0 with `pread(2)`, so a kept-open file can be re-read
/// cheaply (cgroupfs regenerates the content on every read from offset 0).
pub(crate) fn pread_string(file: &File) -> io::Result<String> {
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        let n = file.read_at(&mut buf[len..], len as u64)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// True when `dir` certainly has no subdirectory: a cgroupfs (kernfs) directory's link
/// count is 2 plus its subdirectories, so one stat spares listing it. Other counts (btrfs
/// reports 1) and errors say nothing, so they give false.
pub(crate) fn no_subdirs(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.nlink() == 2)
}

/// Opens a directory `O_RDONLY | O_DIRECTORY | O_CLOEXEC` (std always adds O_CLOEXEC).
pub(crate) fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
}

/// Creates one directory (mode 0755). Returns `Ok(false)` when it already existed, which
/// makes parent creation race-safe between concurrent judgebox processes.
pub(crate) fn mkdir(path: &Path) -> io::Result<bool> {
    match std::fs::DirBuilder::new().mode(0o755).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Parses the first number of a single-value file ("123\n", "max\n" gives `None`).
pub(crate) fn parse_u64(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Looks `key` up in a flat-keyed file ("key value" per line, e.g. `cpu.stat`).
pub(crate) fn keyed_u64(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        if parts.next()? == key {
            parts.next()?.parse().ok()
        } else {
            None
        }
    })
}

/// Parses a list of pids (`cgroup.procs`, `tasks`): one decimal number per line.
pub(crate) fn parse_pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Takes a non-blocking exclusive `flock(2)`. `Ok(false)` means someone else holds it.
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock only reads the fd number, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Reads an extended attribute; `None` when it is absent or cannot be read.
pub(crate) fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 64];
    // SAFETY: both strings are NUL-terminated and live across the call; the kernel writes
    // at most `buf.len()` bytes into `buf`, which outlives the call.
    let n = unsafe {
        libc::getxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return None;
    }
    Some(buf[..n as usize].to_vec())
}

/// Sends SIGKILL to one pid; a pid that is already gone is not an error.
pub(crate) fn sigkill(pid: i32) {
    if pid > 0 {
        // SAFETY: kill(2) takes plain integers and has no memory effects in this process.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// True when an error is "device or resource busy".
pub(crate) fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}

/// True when an error is "no such file or directory".
pub(crate) fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subdirs_follows_the_link_count() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            no_subdirs(dir.path()),
            "ext4/tmpfs/kernfs count 2 links for an empty dir"
        );
        std::fs::write(dir.path().join("file"), "x").unwrap();
        assert!(no_subdirs(dir.path()), "files do not add links");
        std::fs::create_dir(dir.path().join("run-1-2-0")).unwrap();
        assert!(!no_subdirs(dir.path()));
        assert!(!no_subdirs(&dir.path().join("missing")));
    }

    #[test]
    fn keyed_parsing() {
        let text = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(keyed_u64(text, "usage_usec"), Some(1234));
        assert_eq!(keyed_u64(text, "system_usec"), Some(234));
        assert_eq!(keyed_u64(text, "nr_periods"), None);
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_u64(oom, "oom_kill"), Some(3));
    }

    #[test]
    fn single_values_and_pids() {
        assert_eq!(parse_u64("4096\n"), Some(4096));
        assert_eq!(parse_u64("max\n"), None);
        assert_eq!(parse_pids("12\n34\n\n"), vec![12, 34]);
    }

    #[test]
    fn mkdir_is_idempotent_and_lock_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("x");
        assert!(mkdir(&dir).unwrap());
        assert!(!mkdir(&dir).unwrap());
        let a = open_dir(&dir).unwrap();
        let b = open_dir(&dir).unwrap();
        assert!(try_lock(&a).unwrap());
        assert!(!try_lock(&b).unwrap());
        drop(a);
        assert!(try_lock(&b).unwrap());
    }

    #[test]
    fn pread_rereads_from_start() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, "usage_usec 7\n").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(pread_string(&file).unwrap(), "usage_usec 7\n");
        assert_eq!(pread_string(&file).unwrap(), "usage_usec 7\n");
    }
}
