//! The shipped profiles, `default` and `strict`: what they answer, checked two ways:
//! with the BPF interpreter for every syscall name, and for real in forked children.

use super::child::{self, i386_or_skip, Outcome, EPERM, OK, SIGSYS};
use super::probes;
use crate::seccomp::action::{RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS};
use crate::seccomp::arch::{Arch, AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
use crate::seccomp::sim::{self, SeccompData};
use crate::seccomp::violation::KmsgWatch;
use crate::seccomp::{Filter, DEFAULT_JSON, STRICT_JSON};

fn default() -> Filter {
    Filter::load("default").unwrap().unwrap()
}

fn strict() -> Filter {
    Filter::load("strict").unwrap().unwrap()
}

const EPERM_RET: u32 = RET_ERRNO | libc::EPERM as u32;

/// What the filter answers for a native call of `name` with the given arguments.
fn answer(f: &Filter, name: &str, args: &[u64]) -> u32 {
    let arch = Arch::native().unwrap();
    let nr = arch
        .syscall_nr(name)
        .unwrap_or_else(|| panic!("{name} unknown here"));
    sim::run(f.program(), &SeccompData::call(arch.audit(), nr, args)).unwrap()
}

/// The deny list of the issue; every name that exists on this architecture.
const MUST_DENY: &[&str] = &[
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "clock_settime",
    "settimeofday",
    "adjtimex",
    "clock_adjtime",
    "open_by_handle_at",
    "name_to_handle_at",
    "fsopen",
    "fsmount",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "iopl",
    "ioperm",
    "modify_ldt",
    "syslog",
    "acct",
    "quotactl",
    "sethostname",
    "setdomainname",
    "vhangup",
    "lookup_dcookie",
    "fanotify_init",
    "mbind",
    "set_mempolicy",
    "migrate_pages",
    "move_pages",
    "memfd_secret",
];

#[test]
fn default_denies_the_deny_list_with_eperm() {
    let f = default();
    let arch = Arch::native().unwrap();
    for name in MUST_DENY.iter().filter(|n| arch.syscall_nr(n).is_some()) {
        assert_eq!(answer(&f, name, &[]), EPERM_RET, "{name}");
    }
    assert!(!f.kills());
}

#[test]
fn strict_kills_the_deny_list() {
    let f = strict();
    let arch = Arch::native().unwrap();
    for name in MUST_DENY.iter().filter(|n| arch.syscall_nr(n).is_some()) {
        assert_eq!(answer(&f, name, &[]), RET_KILL_PROCESS, "{name}");
    }
    assert!(f.kills());
}

#[test]
fn both_allow_every_listed_syscall_and_answer_clone3_enosys() {
    for f in [default(), strict()] {
        for name in [
            "read",
            "write",
            "execve",
            "futex",
            "mmap",
            "rt_sigreturn",
            "exit_group",
            "getrandom",
        ] {
            assert_eq!(answer(&f, name, &[]), RET_ALLOW, "{} {name}", f.name());
        }
        assert_eq!(answer(&f, "clone3", &[]), RET_ERRNO | libc::ENOSYS as u32);
    }
}

/// The probe init uses before cloning a program into its cgroup: under a filter that
/// answers ENOSYS to clone3 (ours, and Docker's, which judgebox may itself run under) it
/// must say no, so the program joins through `cgroup.procs` instead of failing to start.
#[test]
fn the_clone3_probe_sees_a_filter_that_refuses_it() {
    let works = || i64::from(!crate::sandbox::sys::clone3_works());
    assert_eq!(
        child::run(None, works).0,
        OK,
        "clone3 works without a filter"
    );
    assert_eq!(
        child::run(Some(&default()), works).0,
        Outcome::Errno(1),
        "the probe must see the filter's ENOSYS"
    );
}

#[test]
fn strict_has_the_same_allow_list_as_default() {
    let strip = |text: &str| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("defaultAction");
        o.remove("defaultErrnoRet");
        v
    };
    assert_eq!(strip(DEFAULT_JSON), strip(STRICT_JSON));
}

#[test]
fn arguments_are_checked_on_the_bits_the_kernel_reads() {
    let f = default();
    let high = 1u64 << 32;
    let vsock = libc::AF_VSOCK as u64;
    assert_eq!(
        answer(&f, "socket", &[libc::AF_INET as u64, 1, 0]),
        RET_ALLOW
    );
    assert_eq!(answer(&f, "socket", &[vsock, 1, 0]), EPERM_RET);
    assert_eq!(answer(&f, "socket", &[vsock | high, 1, 0]), EPERM_RET);
    assert_eq!(
        answer(&f, "socket", &[libc::AF_UNIX as u64 | high, 1, 0]),
        RET_ALLOW
    );
    assert_eq!(
        answer(&f, "socket", &[libc::AF_NETLINK as u64, 3, 0]),
        RET_ALLOW
    );
    assert_eq!(
        answer(&f, "socket", &[libc::AF_NETLINK as u64, 3, 9]),
        EPERM_RET
    );
    assert_eq!(
        answer(&f, "socket", &[libc::AF_NETLINK as u64, 3, 9 | high]),
        EPERM_RET
    );
    assert_eq!(answer(&f, "personality", &[0]), RET_ALLOW);
    assert_eq!(answer(&f, "personality", &[high]), RET_ALLOW); // the kernel sees PER_LINUX
    assert_eq!(answer(&f, "personality", &[0x0040000]), EPERM_RET);
    assert_eq!(answer(&f, "personality", &[high | 0x0040000]), EPERM_RET);
    assert_eq!(answer(&f, "clone", &[libc::SIGCHLD as u64]), RET_ALLOW);
    assert_eq!(
        answer(&f, "clone", &[(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64]),
        EPERM_RET
    );
    assert_eq!(
        answer(&f, "clone", &[high | libc::CLONE_NEWNET as u64]),
        EPERM_RET
    );
    assert_eq!(answer(&f, "ioctl", &[0, libc::TCGETS]), RET_ALLOW);
    assert_eq!(answer(&f, "ioctl", &[0, libc::TIOCSTI]), EPERM_RET);
    assert_eq!(answer(&f, "ioctl", &[0, high | libc::TIOCSTI]), EPERM_RET);
    assert_eq!(answer(&f, "socketpair", &[libc::AF_UNIX as u64]), RET_ALLOW);
    assert_eq!(answer(&f, "socketpair", &[libc::AF_INET as u64]), EPERM_RET);
}

#[test]
fn legacy_and_foreign_abis_are_denied() {
    let run = |f: &Filter, arch: u32, nr: u32| {
        sim::run(f.program(), &SeccompData::call(arch, nr, &[])).unwrap()
    };
    let (d, s) = (default(), strict());
    let foreign = if cfg!(target_arch = "x86_64") {
        AUDIT_ARCH_I386
    } else {
        crate::seccomp::arch::AUDIT_ARCH_ARM
    };
    let other64 = if cfg!(target_arch = "x86_64") {
        AUDIT_ARCH_AARCH64
    } else {
        AUDIT_ARCH_X86_64
    };
    for nr in [0, 1, 20, 39, 59, 120, 500] {
        assert_eq!(run(&d, foreign, nr), EPERM_RET);
        assert_eq!(run(&s, foreign, nr), RET_KILL_PROCESS);
        assert_eq!(run(&d, other64, nr), EPERM_RET);
    }
    if cfg!(target_arch = "x86_64") {
        for nr in [0x4000_0000, 0x4000_0027, 0x4000_0200, 0x7fff_ffff, u32::MAX] {
            assert_eq!(run(&d, AUDIT_ARCH_X86_64, nr), EPERM_RET, "{nr:#x}");
            assert_eq!(run(&s, AUDIT_ARCH_X86_64, nr), RET_KILL_PROCESS, "{nr:#x}");
        }
    }
}

#[test]
fn the_program_is_small_enough_to_install_cheaply() {
    let f = default();
    assert!(
        f.instructions() < 400,
        "default compiles to {} instructions",
        f.instructions()
    );
    assert!(f.notes().iter().any(|n| n.contains("only native")));
}

#[test]
fn loads_are_cached() {
    let (a, b) = (default(), default());
    assert!(std::sync::Arc::ptr_eq(&a.inner, &b.inner));
    assert_eq!(a.name(), "default");
    assert_eq!(strict().name(), "strict");
}

// ---- for real, in forked children -------------------------------------------------

#[test]
fn default_answers_eperm_in_a_real_process() {
    let f = default();
    for p in probes::denied() {
        assert_eq!(child::probe(Some(&f), p.run), EPERM, "{}", p.name);
    }
    if let Some(run) = i386_or_skip() {
        assert_eq!(child::probe(Some(&f), run), EPERM, "int 0x80");
    }
}

#[test]
fn strict_kills_in_a_real_process() {
    let f = strict();
    let mut watch = KmsgWatch::open();
    for p in probes::denied() {
        let (got, pid) = child::run(Some(&f), p.run);
        assert_eq!(got, SIGSYS, "{}", p.name);
        if let Some(w) = watch.as_mut() {
            assert_eq!(w.find(pid).as_deref(), Some(p.syscall), "{}", p.name);
        }
    }
    if let Some(run) = i386_or_skip() {
        assert_eq!(child::probe(Some(&f), run), SIGSYS, "int 0x80");
    }
}

#[test]
fn ordinary_calls_work_under_both() {
    for f in [default(), strict()] {
        for p in probes::allowed() {
            let got = child::probe(Some(&f), p.run);
            assert!(p.accepts(got), "{} under {}: {got:?}", p.name, f.name());
        }
    }
}

#[test]
fn the_filter_is_inherited_by_forked_children() {
    // The filtered child forks; the grandchild tries mount and exits with its errno.
    let grandchild_errno = || {
        // SAFETY: raw fork in the probe child; the grandchild only makes raw calls.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let e = child::sys(libc::SYS_mount, [0; 6]);
            // SAFETY: leaving the grandchild.
            unsafe { libc::_exit(e as i32) }
        }
        let status = child::wait(pid);
        i64::from(libc::WEXITSTATUS(status))
    };
    assert_eq!(child::probe(Some(&default()), grandchild_errno), EPERM);
}

#[test]
fn a_program_cannot_install_a_more_permissive_filter() {
    let loosen_then_mount = || {
        let allow = [libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: allow.as_ptr().cast_mut(),
        };
        // SAFETY: installing a one-instruction filter from a local; no_new_privs is set.
        let installed =
            unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const libc::sock_fprog) };
        if installed != 0 {
            return -2; // no panics in the forked child: report and let the parent fail
        }
        child::sys(libc::SYS_mount, [0; 6])
    };
    assert_eq!(child::probe(Some(&default()), loosen_then_mount), EPERM);
    assert_eq!(child::probe(Some(&strict()), loosen_then_mount), SIGSYS);
    // And no_new_privs cannot be cleared.
    let clear_nnp = || {
        child::sys(
            libc::SYS_prctl,
            [libc::PR_SET_NO_NEW_PRIVS as u64, 0, 0, 0, 0, 0],
        )
    };
    assert_eq!(
        child::probe(Some(&default()), clear_nnp),
        Outcome::Errno(libc::EINVAL as i64)
    );
}

#[test]
fn threads_start_under_both() {
    let spawn = || match std::thread::spawn(|| 7).join() {
        Ok(7) => 0,
        _ => 1,
    };
    assert_eq!(child::probe(Some(&default()), spawn), OK);
    assert_eq!(child::probe(Some(&strict()), spawn), OK);
}
