//! Which syscall arguments the kernel reads as 32-bit values.
//!
//! Registers are 64-bit, but a kernel parameter declared `int`, `unsigned int`, `pid_t`,
//! `uid_t`, `umode_t`, `clockid_t`, ... only sees the low 32 bits. A 64-bit comparison on
//! such an argument can be bypassed: `socket(AF_VSOCK | 1 << 32, ...)` fails a 64-bit
//! `!= AF_VSOCK` test, yet the kernel creates an AF_VSOCK socket. For the arguments below
//! judgebox compares only the low 32 bits (the profile's value and mask are truncated the
//! same way). Arguments not listed are compared on all 64 bits, as libseccomp does.
//!
//! The table follows the `SYSCALL_DEFINEn` signatures of Linux 6.x; it is the same on
//! x86_64 and aarch64 (both LP64). `clone` flags are declared `unsigned long`, but
//! `kernel_clone` only uses `lower_32_bits(clone_flags)`. Types narrower than 32 bits
//! (`umode_t` is 16-bit) are compared on 32 bits: that is as close as BPF compares go.

/// (syscall, bit mask of 32-bit argument indexes); bit n set = argument n is 32-bit.
#[rustfmt::skip]
const NARROW_ARGS: &[(&str, u8)] = &[
    ("accept", 0b1), ("accept4", 0b1001), ("access", 0b10), ("add_key", 0b10000),
    ("alarm", 0b1), ("bind", 0b101), ("bpf", 0b101), ("chmod", 0b10), ("chown", 0b110),
    ("clock_adjtime", 0b1), ("clock_getres", 0b1), ("clock_gettime", 0b1),
    ("clock_nanosleep", 0b11), ("clock_settime", 0b1), ("clone", 0b1), ("close", 0b1),
    ("close_range", 0b111), ("connect", 0b101), ("copy_file_range", 0b100101),
    ("creat", 0b10), ("delete_module", 0b10), ("dup", 0b1), ("dup2", 0b11), ("dup3", 0b111),
    ("epoll_create", 0b1), ("epoll_create1", 0b1), ("epoll_ctl", 0b111),
    ("epoll_pwait", 0b1101), ("epoll_pwait2", 0b101), ("epoll_wait", 0b1101),
    ("eventfd", 0b1), ("eventfd2", 0b11), ("execveat", 0b10001), ("exit", 0b1),
    ("exit_group", 0b1), ("faccessat", 0b101), ("faccessat2", 0b1101), ("fadvise64", 0b1001),
    ("fallocate", 0b11), ("fanotify_init", 0b11), ("fanotify_mark", 0b1011), ("fchdir", 0b1),
    ("fchmod", 0b11), ("fchmodat", 0b101), ("fchmodat2", 0b1101), ("fchown", 0b111),
    ("fchownat", 0b11101), ("fcntl", 0b11), ("fdatasync", 0b1), ("fgetxattr", 0b1),
    ("finit_module", 0b101), ("flistxattr", 0b1), ("flock", 0b11), ("fremovexattr", 0b1),
    ("fsetxattr", 0b10001), ("fstat", 0b1), ("fstatfs", 0b1), ("fsync", 0b1),
    ("ftruncate", 0b1), ("futex", 0b100110), ("getdents", 0b101), ("getdents64", 0b101),
    ("getgroups", 0b1), ("getitimer", 0b1), ("getpgid", 0b1), ("getpriority", 0b11),
    ("getrandom", 0b100), ("getrlimit", 0b1), ("getsid", 0b1), ("getsockname", 0b1),
    ("getpeername", 0b1), ("getsockopt", 0b111), ("inotify_add_watch", 0b101),
    ("inotify_init1", 0b1), ("inotify_rm_watch", 0b11), ("io_uring_enter", 0b1111),
    ("io_uring_register", 0b1011), ("io_uring_setup", 0b1), ("ioctl", 0b11),
    ("ioprio_get", 0b11), ("ioprio_set", 0b111), ("kcmp", 0b111), ("kexec_file_load", 0b11),
    ("keyctl", 0b1), ("kill", 0b11), ("lchown", 0b110), ("linkat", 0b10101),
    ("listen", 0b11), ("lseek", 0b101), ("madvise", 0b100), ("memfd_create", 0b10),
    ("membarrier", 0b111), ("mkdir", 0b10), ("mkdirat", 0b101), ("mknod", 0b110),
    ("mknodat", 0b1101), ("mlock2", 0b100), ("mlockall", 0b1), ("mq_getsetattr", 0b1),
    ("mq_notify", 0b1), ("mq_open", 0b110), ("mq_timedreceive", 0b1),
    ("mq_timedsend", 0b1001), ("msgctl", 0b11), ("msgget", 0b11), ("msgrcv", 0b10001),
    ("msgsnd", 0b1001), ("name_to_handle_at", 0b10001), ("newfstatat", 0b1001),
    ("open", 0b110), ("open_by_handle_at", 0b101), ("openat", 0b1101), ("openat2", 0b1),
    ("perf_event_open", 0b1110), ("personality", 0b1), ("pidfd_getfd", 0b111),
    ("pidfd_open", 0b11), ("pidfd_send_signal", 0b1011), ("pipe2", 0b10),
    ("pkey_free", 0b1), ("pkey_mprotect", 0b1000), ("poll", 0b110), ("ppoll", 0b10),
    ("prctl", 0b1), ("prlimit64", 0b11), ("process_madvise", 0b11001),
    ("process_vm_readv", 0b1), ("process_vm_writev", 0b1), ("read", 0b1), ("readahead", 0b1),
    ("readlinkat", 0b1001), ("readv", 0b1), ("reboot", 0b111), ("recvfrom", 0b1001),
    ("recvmmsg", 0b1101), ("recvmsg", 0b101), ("renameat", 0b101), ("renameat2", 0b10101),
    ("request_key", 0b1000), ("rt_sigaction", 0b1), ("rt_sigprocmask", 0b1),
    ("rt_sigqueueinfo", 0b11), ("rt_tgsigqueueinfo", 0b111), ("sched_get_priority_max", 0b1),
    ("sched_get_priority_min", 0b1), ("sched_getaffinity", 0b11), ("sched_getattr", 0b1101),
    ("sched_getparam", 0b1), ("sched_getscheduler", 0b1), ("sched_rr_get_interval", 0b1),
    ("sched_setaffinity", 0b11), ("sched_setattr", 0b101), ("sched_setparam", 0b1),
    ("sched_setscheduler", 0b11), ("seccomp", 0b11), ("select", 0b1), ("semctl", 0b111),
    ("semget", 0b111), ("semop", 0b101), ("semtimedop", 0b101), ("sendfile", 0b11),
    ("sendmmsg", 0b1101), ("sendmsg", 0b101), ("sendto", 0b101001), ("setfsgid", 0b1),
    ("setfsuid", 0b1), ("setgid", 0b1), ("setgroups", 0b1), ("setitimer", 0b1),
    ("setns", 0b11), ("setpgid", 0b11), ("setpriority", 0b111), ("setregid", 0b11),
    ("setresgid", 0b111), ("setresuid", 0b111), ("setreuid", 0b11), ("setrlimit", 0b1),
    ("setsockopt", 0b10111), ("setuid", 0b1), ("setxattr", 0b10000), ("lsetxattr", 0b10000),
    ("shmat", 0b101), ("shmctl", 0b11), ("shmget", 0b101), ("shutdown", 0b11),
    ("signalfd", 0b1), ("signalfd4", 0b1001), ("socket", 0b111), ("socketpair", 0b111),
    ("splice", 0b100101), ("statx", 0b1101), ("swapon", 0b10), ("symlinkat", 0b10),
    ("sync_file_range", 0b1001), ("syncfs", 0b1), ("syslog", 0b101), ("tee", 0b1011),
    ("tgkill", 0b111), ("timer_create", 0b1), ("timer_delete", 0b1),
    ("timer_getoverrun", 0b1), ("timer_gettime", 0b1), ("timer_settime", 0b11),
    ("timerfd_create", 0b11), ("timerfd_gettime", 0b1), ("timerfd_settime", 0b11),
    ("tkill", 0b11), ("umask", 0b1), ("umount2", 0b10), ("unlinkat", 0b101),
    ("userfaultfd", 0b1), ("utimensat", 0b1001), ("vmsplice", 0b1001), ("wait4", 0b101),
    ("waitid", 0b1011), ("write", 0b1), ("writev", 0b1),
];

/// Whether argument `index` of `syscall` is a 32-bit value for the kernel.
pub(crate) fn is_narrow(syscall: &str, index: u8) -> bool {
    NARROW_ARGS
        .iter()
        .find(|(name, _)| *name == syscall)
        .is_some_and(|(_, mask)| index < 8 && mask & (1 << index) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::arch::is_known_anywhere;

    #[test]
    fn table_names_are_syscalls_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (name, mask) in NARROW_ARGS {
            assert!(is_known_anywhere(name), "{name} is not a syscall");
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(*mask < 64, "{name}: syscalls have six arguments");
        }
    }

    #[test]
    fn knows_the_classic_bypass_arguments() {
        assert!(is_narrow("socket", 0));
        assert!(is_narrow("personality", 0));
        assert!(is_narrow("clone", 0));
        assert!(is_narrow("ioctl", 1));
        assert!(!is_narrow("ioctl", 2));
        assert!(!is_narrow("unshare", 0));
        assert!(!is_narrow("mprotect", 2));
        assert!(!is_narrow("not_listed", 0));
    }
}
