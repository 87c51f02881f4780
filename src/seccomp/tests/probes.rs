//! Single-syscall probes, mirroring `tests/probes/seccomp_probe.c`: the calls a judge
//! sandbox must deny and ordinary calls it must allow. Arguments make a call that gets
//! through fail harmlessly in the kernel (EFAULT, EBADF, EINVAL, ESRCH) or change only
//! the probe child, so an EPERM can only come from the filter (the tests run as root).

use super::child::{sys, sys_fork, Outcome};

const BAD: u64 = 1; // an invalid user pointer
const NEG: u64 = u64::MAX; // -1
const HIGH: u64 = 1 << 32;
const CHLD: u64 = libc::SIGCHLD as u64;

/// A probe: `run` returns the call's errno (0 on success).
pub(crate) struct Probe {
    pub name: &'static str,
    /// What `KmsgWatch::find` should report when the probe is killed.
    pub syscall: &'static str,
    pub run: fn() -> i64,
    /// Acceptable errnos when the call is allowed.
    pub expect: &'static [i64],
}

impl Probe {
    pub(crate) fn accepts(&self, o: Outcome) -> bool {
        matches!(o, Outcome::Errno(e) if self.expect.contains(&e))
    }
}

macro_rules! probe {
    ($name:literal, $syscall:literal, $run:expr) => {
        probe!($name, $syscall, $run, &[])
    };
    ($name:literal, $syscall:literal, $run:expr, $expect:expr) => {
        Probe {
            name: $name,
            syscall: $syscall,
            run: $run,
            expect: $expect,
        }
    };
}

/// Calls the judge default must deny (all of the list that exist here).
pub(crate) fn denied() -> Vec<Probe> {
    use libc::*;
    let mut v = vec![
        probe!("mount", "mount", || sys(SYS_mount, [0; 6])),
        probe!("umount2", "umount2", || sys(
            SYS_umount2,
            [BAD, 0, 0, 0, 0, 0]
        )),
        probe!("pivot_root", "pivot_root", || sys(
            SYS_pivot_root,
            [BAD, BAD, 0, 0, 0, 0]
        )),
        probe!("chroot", "chroot", || sys(SYS_chroot, [BAD, 0, 0, 0, 0, 0])),
        probe!("setns", "setns", || sys(
            SYS_setns,
            [NEG, CLONE_NEWNET as u64, 0, 0, 0, 0]
        )),
        probe!("unshare", "unshare", || sys(
            SYS_unshare,
            [(CLONE_NEWUSER | CLONE_NEWNS) as u64, 0, 0, 0, 0, 0]
        )),
        probe!("ptrace", "ptrace", || sys(
            SYS_ptrace,
            [PTRACE_PEEKDATA as u64, 0x7fff_fff0, 0, 0, 0, 0]
        )),
        probe!("process_vm_readv", "process_vm_readv", || sys(
            SYS_process_vm_readv,
            [1, 0, 0, 0, 0, 1]
        )),
        probe!("process_vm_writev", "process_vm_writev", || sys(
            SYS_process_vm_writev,
            [1, 0, 0, 0, 0, 1]
        )),
        probe!("bpf", "bpf", || sys(SYS_bpf, [NEG, 0, 0, 0, 0, 0])),
        probe!("perf_event_open", "perf_event_open", || sys(
            SYS_perf_event_open,
            [0, 0, NEG, NEG, 0, 0]
        )),
        probe!("keyctl", "keyctl", || sys(SYS_keyctl, [NEG, 0, 0, 0, 0, 0])),
        probe!("add_key", "add_key", || sys(SYS_add_key, [0; 6])),
        probe!("request_key", "request_key", || sys(
            SYS_request_key,
            [0; 6]
        )),
        probe!("io_uring_setup", "io_uring_setup", || sys(
            SYS_io_uring_setup,
            [0; 6]
        )),
        probe!("io_uring_enter", "io_uring_enter", || sys(
            SYS_io_uring_enter,
            [NEG, 0, 0, 0, 0, 0]
        )),
        probe!("io_uring_register", "io_uring_register", || sys(
            SYS_io_uring_register,
            [NEG, 0, 0, 0, 0, 0]
        )),
        probe!("userfaultfd", "userfaultfd", || sys(
            SYS_userfaultfd,
            [NEG, 0, 0, 0, 0, 0]
        )),
        probe!("kexec_load", "kexec_load", || sys(
            SYS_kexec_load,
            [0, 0, 0, 0xffff_ffff, 0, 0]
        )),
        probe!("kexec_file_load", "kexec_file_load", || sys(
            SYS_kexec_file_load,
            [NEG, NEG, 0, 0, 0xffff_ffff, 0]
        )),
        probe!("init_module", "init_module", || sys(
            SYS_init_module,
            [0; 6]
        )),
        probe!("finit_module", "finit_module", || sys(
            SYS_finit_module,
            [NEG, BAD, 0, 0, 0, 0]
        )),
        probe!("delete_module", "delete_module", || sys(
            SYS_delete_module,
            [BAD, 0, 0, 0, 0, 0]
        )),
        probe!("reboot", "reboot", || sys(SYS_reboot, [0; 6])),
        probe!("swapon", "swapon", || sys(SYS_swapon, [BAD, 0, 0, 0, 0, 0])),
        probe!("swapoff", "swapoff", || sys(
            SYS_swapoff,
            [BAD, 0, 0, 0, 0, 0]
        )),
        probe!("clock_settime", "clock_settime", || sys(
            SYS_clock_settime,
            [0, BAD, 0, 0, 0, 0]
        )),
        probe!("settimeofday", "settimeofday", || sys(
            SYS_settimeofday,
            [BAD, 0, 0, 0, 0, 0]
        )),
        probe!("adjtimex", "adjtimex", || sys(
            SYS_adjtimex,
            [BAD, 0, 0, 0, 0, 0]
        )),
        probe!("clock_adjtime", "clock_adjtime", || sys(
            SYS_clock_adjtime,
            [0, BAD, 0, 0, 0, 0]
        )),
        probe!("open_by_handle_at", "open_by_handle_at", || sys(
            SYS_open_by_handle_at,
            [NEG, BAD, 0, 0, 0, 0]
        )),
        probe!("name_to_handle_at", "name_to_handle_at", || sys(
            SYS_name_to_handle_at,
            [NEG, BAD, BAD, BAD, 0, 0]
        )),
        probe!("personality_addr_no_randomize", "personality", || sys(
            SYS_personality,
            [0x0040000, 0, 0, 0, 0, 0]
        )),
        probe!("personality_high_bits", "personality", || sys(
            SYS_personality,
            [HIGH | 0x0040000, 0, 0, 0, 0, 0]
        )),
        probe!("socket_vsock", "socket", || sys(
            SYS_socket,
            [AF_VSOCK as u64, SOCK_STREAM as u64, 0, 0, 0, 0]
        )),
        probe!("socket_vsock_high_bits", "socket", || sys(
            SYS_socket,
            [HIGH | AF_VSOCK as u64, SOCK_STREAM as u64, 0, 0, 0, 0]
        )),
        probe!("socket_alg", "socket", || sys(
            SYS_socket,
            [AF_ALG as u64, SOCK_SEQPACKET as u64, 0, 0, 0, 0]
        )),
        probe!("socket_packet", "socket", || sys(
            SYS_socket,
            [AF_PACKET as u64, SOCK_RAW as u64, 0, 0, 0, 0]
        )),
        probe!("socket_netlink_audit", "socket", || sys(
            SYS_socket,
            [AF_NETLINK as u64, SOCK_RAW as u64, 9, 0, 0, 0]
        )),
        probe!("socket_netlink_uevent", "socket", || sys(
            SYS_socket,
            [AF_NETLINK as u64, SOCK_RAW as u64, 15, 0, 0, 0]
        )),
        probe!("clone_newuser", "clone", || sys_fork(
            SYS_clone,
            [CLONE_NEWUSER as u64 | CHLD, 0, 0, 0, 0, 0]
        )),
        probe!("clone_newns", "clone", || sys_fork(
            SYS_clone,
            [CLONE_NEWNS as u64 | CHLD, 0, 0, 0, 0, 0]
        )),
        probe!("clone_newnet_high_bits", "clone", || sys_fork(
            SYS_clone,
            [HIGH | CLONE_NEWNET as u64 | CHLD, 0, 0, 0, 0, 0]
        )),
        probe!("ioctl_tiocsti", "ioctl", || sys(
            SYS_ioctl,
            [NEG, TIOCSTI, BAD, 0, 0, 0]
        )),
        probe!("ioctl_tiocsti_high_bits", "ioctl", || sys(
            SYS_ioctl,
            [NEG, HIGH | TIOCSTI, BAD, 0, 0, 0]
        )),
    ];
    if cfg!(target_arch = "x86_64") {
        v.push(probe!("x32_getpid", "x32 syscall 39 (x32 ABI)", || sys(
            39 | 0x4000_0000,
            [0; 6]
        )));
    }
    v
}

/// Calls ordinary programs make, with the answers a working sandbox gives.
pub(crate) fn allowed() -> Vec<Probe> {
    use libc::*;
    const OK: &[i64] = &[0];
    vec![
        probe!("getpid", "", || sys(SYS_getpid, [0; 6]), OK),
        probe!(
            "socket_unix",
            "",
            || sys(SYS_socket, [AF_UNIX as u64, SOCK_STREAM as u64, 0, 0, 0, 0]),
            OK
        ),
        probe!(
            "socket_inet",
            "",
            || sys(SYS_socket, [AF_INET as u64, SOCK_STREAM as u64, 0, 0, 0, 0]),
            OK
        ),
        probe!(
            "socket_inet6",
            "",
            || sys(SYS_socket, [AF_INET6 as u64, SOCK_DGRAM as u64, 0, 0, 0, 0]),
            &[0, EAFNOSUPPORT as i64]
        ),
        probe!(
            "socket_netlink_route",
            "",
            || sys(SYS_socket, [AF_NETLINK as u64, SOCK_RAW as u64, 0, 0, 0, 0]),
            OK
        ),
        probe!("socketpair_unix", "", socketpair_unix, OK),
        probe!(
            "clone",
            "",
            || sys_fork(SYS_clone, [CHLD, 0, 0, 0, 0, 0]),
            OK
        ),
        probe!("clone3", "", || sys(SYS_clone3, [0; 6]), &[ENOSYS as i64]),
        probe!(
            "personality_query",
            "",
            || sys(SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
            OK
        ),
        probe!(
            "personality_high_bits_only",
            "",
            || sys(SYS_personality, [HIGH, 0, 0, 0, 0, 0]),
            OK
        ),
        probe!(
            "ioctl_tcgets",
            "",
            || sys(SYS_ioctl, [NEG, TCGETS, BAD, 0, 0, 0]),
            &[EBADF as i64]
        ),
        probe!("mmap_exec", "", mmap_exec, OK),
        probe!(
            "clock_gettime",
            "",
            || sys(SYS_clock_gettime, [CLOCK_MONOTONIC as u64, BAD, 0, 0, 0, 0]),
            &[EFAULT as i64]
        ),
    ]
}

fn socketpair_unix() -> i64 {
    let mut sv = [0i32; 2];
    sys(
        libc::SYS_socketpair,
        [
            libc::AF_UNIX as u64,
            libc::SOCK_STREAM as u64,
            0,
            sv.as_mut_ptr() as u64,
            0,
            0,
        ],
    )
}

fn mmap_exec() -> i64 {
    const PAGE: usize = 4096;
    // SAFETY: a fresh anonymous private mapping, made executable, then unmapped.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return i64::from(nix::errno::Errno::last_raw());
        }
        let r = libc::mprotect(p, PAGE, libc::PROT_READ | libc::PROT_EXEC);
        libc::munmap(p, PAGE);
        if r == 0 {
            0
        } else {
            i64::from(nix::errno::Errno::last_raw())
        }
    }
}

/// Every denied probe must be harmless and distinguishable without a filter: as root,
/// the kernel answers something other than EPERM.
#[test]
fn unfiltered_probes_do_not_look_denied() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (a kernel EPERM would look like a filter's)");
        return;
    }
    for p in denied() {
        let got = super::child::probe(None, p.run);
        assert_ne!(
            got,
            super::child::EPERM,
            "{} is EPERM even without a filter",
            p.name
        );
    }
    for p in allowed() {
        let got = super::child::probe(None, p.run);
        assert!(p.accepts(got) || p.name == "clone3", "{}: {got:?}", p.name);
    }
}
