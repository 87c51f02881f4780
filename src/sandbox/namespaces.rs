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

pub fn set_hostname(name: &CStr) -> SysResult {
    // SAFETY: name points to name.to_bytes().len() valid bytes.
    let r = unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) };
    if r < 0 {
        Err(sys::errno())
    } else {
        Ok(())
    }
}

/// Unshares the cgroup namespace; kernels without it (EINVAL) are tolerated.
pub fn unshare_cgroup() -> SysResult {
    // SAFETY: unshare affects only this process.
    if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } < 0 {
        let e = sys::errno();
        if e != libc::EINVAL {
            return Err(e);
        }
    }
    Ok(())
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
    let r = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) };
    let result = if r < 0 { Err(sys::errno()) } else { Ok(()) };
    sys::close(fd);
    result
}
