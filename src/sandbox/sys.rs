//! Raw, allocation-free syscall wrappers used between clone and execve, where only
//! async-signal-safe code may run (the supervisor may be multi-threaded, e.g. `judge`).
//! Each returns the errno on failure so callers can report the exact step that failed.

use libc::{c_char, c_int, c_ulong, c_void};
use std::ptr;

/// `close_range` flag: mark instead of close.
pub const CLOSE_RANGE_CLOEXEC: c_int = 4;

pub type SysResult<T = ()> = Result<T, i32>;

/// The text of errno `e` without Rust's " (os error N)" suffix (for messages; allocates,
/// so never between clone and execve).
pub fn errno_text(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(ret: c_int) -> SysResult {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Whether clone3 is available to this process (a seccomp profile may answer ENOSYS to
/// it, as Docker's default does): probed with a size of 0, which a kernel that has clone3
/// refuses with EINVAL before doing anything. One syscall, no state: safe in init.
pub fn clone3_works() -> bool {
    // SAFETY: a null argument with size 0 is rejected by the kernel (EINVAL) or by a
    // filter (ENOSYS, EPERM); nothing is created.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null_mut::<u8>(), 0usize) };
    r < 0 && errno() == libc::EINVAL
}

/// Forks with namespace flags via clone3 (fork semantics: no new stack), optionally into a
/// cgroup. Falls back to plain clone when clone3 is missing and no cgroup fd is needed.
/// Returns 0 in the child and the child's pid in the parent.
pub fn clone_process(flags: u64, cgroup_fd: Option<c_int>) -> SysResult<libc::pid_t> {
    // SAFETY: clone_args is plain old data; zeroed is a valid initial value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | cgroup_fd.map_or(0, |_| crate::cgroup::CLONE_INTO_CGROUP);
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = cgroup_fd.map_or(0, |fd| fd as u64);
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork: the child gets a
    // copy of the address space and continues here with return value 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret >= 0 {
        return Ok(ret as libc::pid_t);
    }
    let err = errno();
    if err != libc::ENOSYS || cgroup_fd.is_some() {
        return Err(err);
    }
    // SAFETY: legacy clone with a null stack has fork semantics as above.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags as c_ulong) | libc::SIGCHLD as c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as libc::pid_t)
    }
}

pub fn mount(
    source: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_char,
) -> SysResult {
    // SAFETY: all pointers are null or NUL-terminated strings owned by the caller.
    check(unsafe { libc::mount(source, target, fstype, flags, data as *const c_void) })
}

pub fn pivot_root(new_root: *const c_char, put_old: *const c_char) -> SysResult {
    // SAFETY: both arguments are NUL-terminated path strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root, put_old) as c_int })
}

pub fn umount_detach(target: *const c_char) -> SysResult {
    // SAFETY: target is a NUL-terminated path.
    check(unsafe { libc::umount2(target, libc::MNT_DETACH) })
}

pub fn chdir(path: *const c_char) -> SysResult {
    // SAFETY: path is a NUL-terminated string.
    check(unsafe { libc::chdir(path) })
}

pub fn mkdirat(dirfd: c_int, path: *const c_char, mode: libc::mode_t) -> SysResult {
    // SAFETY: path is a NUL-terminated string.
    check(unsafe { libc::mkdirat(dirfd, path, mode) })
}

pub fn symlinkat(target: *const c_char, dirfd: c_int, path: *const c_char) -> SysResult {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::symlinkat(target, dirfd, path) })
}

pub fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: libc::mode_t,
) -> SysResult<c_int> {
    // SAFETY: path is a NUL-terminated string; the returned fd is owned by the caller.
    let fd = unsafe { libc::openat(dirfd, path, flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd)
    }
}

/// openat2 with resolve flags; ENOSYS on kernels before 5.6.
pub fn openat2(
    dirfd: c_int,
    path: *const c_char,
    flags: u64,
    mode: u64,
    resolve: u64,
) -> SysResult<c_int> {
    // SAFETY: open_how is plain data; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags | libc::O_CLOEXEC as u64;
    how.mode = mode;
    how.resolve = resolve;
    // SAFETY: `how` is a valid open_how of the size passed; path is NUL-terminated.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path,
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd as c_int)
    }
}

pub fn close(fd: c_int) {
    // SAFETY: closing an fd we own; errors are irrelevant here.
    unsafe { libc::close(fd) };
}

pub fn dup2(from: c_int, to: c_int) -> SysResult {
    // SAFETY: plain fd duplication.
    check(unsafe { libc::dup2(from, to) })
}

/// Closes every fd in `[first, last]`.
pub fn close_range(first: c_int, last: c_int, flags: c_int) -> SysResult {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range only affects this process's fd table.
    check(unsafe {
        libc::syscall(libc::SYS_close_range, first as u32, last as u32, flags) as c_int
    })
}

/// Writes the whole buffer, retrying on EINTR and short writes.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> SysResult {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for the length passed.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Reads until the buffer is full or EOF; returns the number of bytes read.
pub fn read_full(fd: c_int, buf: &mut [u8]) -> SysResult<usize> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer/length pair stays within buf.
        let n = unsafe {
            libc::read(
                fd,
                buf[done..].as_mut_ptr() as *mut c_void,
                buf.len() - done,
            )
        };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        done += n as usize;
    }
    Ok(done)
}

pub fn prctl(option: c_int, arg2: c_ulong) -> SysResult {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(option, arg2, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) })
}

/// setrlimit's resource argument: glibc declares its own enum type, musl a plain int.
#[cfg(target_env = "gnu")]
pub type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
pub type RlimitResource = libc::c_int;

pub fn set_rlimit(resource: RlimitResource, value: u64) -> SysResult {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: lim is a valid rlimit.
    check(unsafe { libc::setrlimit(resource, &lim) })
}

pub fn monotonic_ns() -> u64 {
    // SAFETY: timespec is plain data; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC is system-wide (no time namespace).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and runs no atexit handlers (correct after fork).
    unsafe { libc::_exit(code) }
}

pub const NULL: *const c_char = ptr::null();
