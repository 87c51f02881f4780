//! Which namespaces a sandbox gets, and the two settings made inside them: the hostname
//! (uts) and the loopback interface (net, down unless asked for).

use super::sys::{self, SysResult};
use std::ffi::CStr;

/// Namespaces created by clone; the cgroup namespace is unshared later by init, once the
/// supervisor has placed it in its cgroup, so the namespace is rooted at the run's cgroup.
pub const CLONE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET) as u64;

/// Joins the network namespace `fd` refers to.
pub fn join_netns(fd: i32) -> SysResult {
    // SAFETY: setns on an fd we were handed; it only changes this process's namespace.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
        Err(sys::errno())
    } else {
        Ok(())
    }
}

/// A fresh network namespace (only `lo`, down), kept alive by the returned fd. Made on a
/// short-lived thread: unsharing the network namespace affects only the calling thread.
pub fn new_netns() -> std::io::Result<std::os::fd::OwnedFd> {
    std::thread::spawn(|| {
        // SAFETY: unshare of the calling (temporary) thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let file = std::fs::File::open("/proc/thread-self/ns/net")?;
        Ok(std::os::fd::OwnedFd::from(file))
    })
    .join()
    .map_err(|_| std::io::Error::other("netns thread panicked"))?
}

pub fn set_hostname(name: &CStr) -> SysResult {
    // SAFETY: name points to name.to_bytes().len() valid bytes.
    let r = unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) };
    if r < 0 {
        Err(sys::errno())
    } else {
        Ok(())
    }
}

/// Sets IFF_UP on `lo` in the current network namespace.
pub fn loopback_up() -> SysResult {
    // SAFETY: socket() with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(sys::errno());
    }
    // SAFETY: ifreq is plain data; zeroed is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags =
        (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    let r = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req) };
    let result = if r < 0 { Err(sys::errno()) } else { Ok(()) };
    sys::close(fd);
    result
}
