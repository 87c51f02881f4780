//! Running a probe in a forked child under a filter, and probes for single syscalls.
//!
//! Between fork and `_exit` the child only makes raw system calls (the test harness is
//! multi-threaded, so nothing that could wait on a lock held by another thread).

use crate::seccomp::Filter;

/// How a probe child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The probe returned this errno (0 = success).
    Errno(i64),
    /// The child died of this signal (SIGSYS when a filter killed it).
    Signal(i32),
    /// The filter could not be installed.
    InstallFailed(i32),
}

pub(crate) const EPERM: Outcome = Outcome::Errno(libc::EPERM as i64);
pub(crate) const OK: Outcome = Outcome::Errno(0);
pub(crate) const SIGSYS: Outcome = Outcome::Signal(libc::SIGSYS);

/// Forks; the child sets no_new_privs, installs `filter` (if any), runs `probe` and
/// reports its result. Returns the outcome and the child's pid.
pub(crate) fn run(filter: Option<&Filter>, probe: impl Fn() -> i64) -> (Outcome, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only makes async-signal-safe calls before _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child(fds[1], filter, probe);
    }
    // SAFETY: closing our copy of the write end, an fd we own.
    unsafe { libc::close(fds[1]) };
    let reported = read_i64(fds[0]);
    // SAFETY: closing the read end, an fd we own.
    unsafe { libc::close(fds[0]) };
    let status = wait(pid);
    (outcome(status, reported), pid)
}

/// Shorthand: the outcome only.
pub(crate) fn probe(filter: Option<&Filter>, probe: impl Fn() -> i64) -> Outcome {
    run(filter, probe).0
}

fn child(out: i32, filter: Option<&Filter>, probe: impl Fn() -> i64) -> ! {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    let value = match filter.map(Filter::install) {
        Some(Err(e)) => -1_000_000 - i64::from(e),
        _ => probe(),
    };
    // SAFETY: writing 8 bytes from a local to the pipe, then leaving without unwinding.
    unsafe {
        libc::write(out, (&value as *const i64).cast(), 8);
        libc::_exit(0)
    }
}

fn read_i64(fd: i32) -> Option<i64> {
    let mut v = 0i64;
    // SAFETY: reading at most 8 bytes into a local i64.
    let n = unsafe { libc::read(fd, (&mut v as *mut i64).cast(), 8) };
    (n == 8).then_some(v)
}

pub(crate) fn wait(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waiting for our own child, status written to a local.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        assert_eq!(nix::errno::Errno::last(), nix::errno::Errno::EINTR);
    }
    status
}

fn outcome(status: i32, reported: Option<i64>) -> Outcome {
    if libc::WIFSIGNALED(status) {
        return Outcome::Signal(libc::WTERMSIG(status));
    }
    match reported {
        Some(v) if v <= -1_000_000 => Outcome::InstallFailed((-v - 1_000_000) as i32),
        Some(v) => Outcome::Errno(v),
        None => panic!("probe child exited ({status:#x}) without reporting"),
    }
}

/// errno of a raw syscall (0 on success).
pub(crate) fn sys(nr: i64, args: [u64; 6]) -> i64 {
    // SAFETY: probes pass only integers and invalid pointers the kernel validates.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    if r < 0 {
        i64::from(nix::errno::Errno::last_raw())
    } else {
        0
    }
}

/// errno of a clone-like raw syscall; the new process leaves at once and is reaped.
pub(crate) fn sys_fork(nr: i64, args: [u64; 6]) -> i64 {
    // SAFETY: as in `sys`; a clone without CLONE_VM gives the child a copy of the stack.
    let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    match r {
        0 => {
            // SAFETY: the new child leaves immediately.
            unsafe { libc::_exit(0) }
        }
        r if r < 0 => i64::from(nix::errno::Errno::last_raw()),
        pid => {
            wait(pid as i32);
            0
        }
    }
}

/// getpid through the i386 ABI (int 0x80, where getpid is 20): errno or 0.
#[cfg(target_arch = "x86_64")]
pub(crate) fn i386_getpid() -> i64 {
    let mut ret: i64 = 20;
    // SAFETY: int 0x80 from a 64-bit process enters the i386 syscall table; getpid has
    // no arguments. The kernel clobbers r8-r11 on this path.
    unsafe {
        std::arch::asm!("int 0x80", inout("rax") ret, out("r8") _, out("r9") _, out("r10") _, out("r11") _);
    }
    if (-4095..0).contains(&ret) {
        -ret
    } else {
        0
    }
}

/// The int 0x80 probe where the i386 ABI exists (x86_64), else `None`.
pub(crate) fn i386_or_skip() -> Option<fn() -> i64> {
    #[cfg(target_arch = "x86_64")]
    return Some(i386_getpid);
    #[cfg(not(target_arch = "x86_64"))]
    return None;
}
