//! Scheduling: judgebox's own threads and processes (the supervisor, init, the program
//! until execve) ask the kernel for a short EEVDF slice, so that when both CPUs run
//! sandboxed programs, a run's setup and teardown still get a CPU soon after they wake
//! instead of waiting out a program's slice. The program itself runs with the default.
//! A one-shot run's init also starts on another CPU than the supervisor's, so the two
//! build the sandbox and the cgroup at once.

use super::sys::{self, SysResult};

/// The slice judgebox's threads ask for: the kernel's minimum (0.1 ms).
const SHORT_SLICE_NS: u64 = 100_000;

/// The one flag sched_getattr reports that sched_setattr takes back unchanged.
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

/// `struct sched_attr`, version 1 (56 bytes), as sched_getattr(2) fills it.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Asks for a short slice for the calling thread (and what it forks). Best effort:
/// kernels before 6.12 ignore the request, and other policies are left alone.
pub fn prefer_short_slice() {
    let _ = set_slice(SHORT_SLICE_NS);
}

/// Back to the kernel's default slice; the program calls it before execve.
pub(super) fn default_slice() -> SysResult {
    set_slice(0)
}

/// Sets the calling thread's slice request (0: the default), keeping its policy and nice
/// value. Only SCHED_OTHER and SCHED_BATCH have a slice; allocation-free.
fn set_slice(ns: u64) -> SysResult {
    let mut attr = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the kernel writes at most `size` bytes into `attr`, which is that large.
    let got = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) };
    if got < 0 {
        return Err(sys::errno());
    }
    if attr.policy != libc::SCHED_OTHER as u32 && attr.policy != libc::SCHED_BATCH as u32 {
        return Ok(());
    }
    attr.size = size;
    attr.flags &= SCHED_FLAG_RESET_ON_FORK;
    attr.runtime = ns;
    (attr.deadline, attr.period) = (0, 0);
    // SAFETY: `attr` is a valid, fully initialised sched_attr of `size` bytes.
    let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
    if set < 0 {
        return Err(sys::errno());
    }
    Ok(())
}

/// The CPUs a freshly cloned init may run on, to be given back before it starts the
/// program (which inherits them).
pub(super) struct Affinity(libc::cpu_set_t);

/// Starts freshly cloned `init` on another CPU than this one. The kernel places a new
/// process on its parent's CPU, where init would wait (~0.3 ms measured) until the
/// supervisor, busy making the run's cgroup, blocks; on another CPU it builds the sandbox
/// meanwhile. Returns the CPUs init may run on, for [`restore_affinity`]; `None` (nothing
/// changed) with a single allowed CPU or on any error.
pub(super) fn start_elsewhere(init: i32) -> Option<Affinity> {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most `size` bytes into `allowed`.
    if unsafe { libc::sched_getaffinity(init, size, &mut allowed) } != 0 {
        return None;
    }
    // SAFETY: sched_getcpu has no preconditions.
    let here = usize::try_from(unsafe { libc::sched_getcpu() }).ok()?;
    // SAFETY: CPU_COUNT only reads the set.
    if unsafe { libc::CPU_COUNT(&allowed) } < 2 || here >= libc::CPU_SETSIZE as usize {
        return None;
    }
    let mut others = allowed;
    // SAFETY: `here` is below CPU_SETSIZE, so the bit is inside the set.
    unsafe { libc::CPU_CLR(here, &mut others) };
    // SAFETY: `others` is a valid cpu_set_t of `size` bytes; `init` is our child.
    if unsafe { libc::sched_setaffinity(init, size, &others) } != 0 {
        return None;
    }
    Some(Affinity(allowed))
}

/// Gives `init` back every CPU it was allowed, before it starts the program. Init keeps
/// running where it is; failures (init already gone) change nothing.
pub(super) fn restore_affinity(init: i32, affinity: &Affinity) {
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `affinity.0` is a valid cpu_set_t of `size` bytes; `init` is our child.
    unsafe { libc::sched_setaffinity(init, size, &affinity.0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slice this thread runs with, from /proc (kernels that report it).
    fn slice_ns() -> Option<u64> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")).ok()?;
        let line = text.lines().find(|l| l.starts_with("se.slice "))?;
        line.split(':').nth(1)?.trim().parse().ok()
    }

    #[test]
    fn a_thread_gets_the_short_slice_and_back_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: nice on the calling thread only.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 3) };
            let before = slice_ns();
            prefer_short_slice();
            let short = slice_ns();
            default_slice().unwrap();
            let after = slice_ns();
            // SAFETY: getpriority on the calling thread.
            assert_eq!(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }, 3);
            if let (Some(before), Some(short), Some(after)) = (before, short, after) {
                // Kernels with custom slices (6.12+) apply it; older ones keep the default.
                assert!(
                    short == SHORT_SLICE_NS || short == before,
                    "{before} {short}"
                );
                assert_eq!(after, before);
            }
        })
        .join()
        .unwrap();
    }
}
