//! The architecture a filter is built for: its audit value (checked first by every
//! filter), syscall name <-> number tables (from the `syscalls` crate), the ABI guard for
//! legacy ABIs, and the architecture names profiles use. Also the running kernel version,
//! for `minKernel` conditions.

use super::error::SeccompError;

/// `AUDIT_ARCH_*` values from `<linux/audit.h>`.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 system calls arrive with the x86_64 audit arch and this bit set in the number.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture judgebox can build filters for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture of this build.
    pub(crate) fn native() -> Result<Arch, SeccompError> {
        if cfg!(target_arch = "x86_64") {
            Ok(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Ok(Arch::Aarch64)
        } else {
            Err(SeccompError::UnsupportedArch {
                arch: std::env::consts::ARCH,
            })
        }
    }

    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch` for native calls.
    pub(crate) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The `SCMP_ARCH_*` name of `architectures` / `archMap`.
    pub(crate) fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    /// The names `includes.arches` / `excludes.arches` use for this architecture
    /// (libseccomp's native names, as Docker matches them).
    pub(crate) fn profile_names(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["amd64", "x86_64"],
            Arch::Aarch64 => &["arm64", "aarch64"],
        }
    }

    /// Syscall numbers at or above this value are a legacy ABI sharing the native audit
    /// arch (x32 on x86_64) and are always denied.
    pub(crate) fn legacy_abi_floor(self) -> Option<u32> {
        match self {
            Arch::X86_64 => Some(X32_SYSCALL_BIT),
            Arch::Aarch64 => None,
        }
    }

    /// The number of a syscall on this architecture.
    pub(crate) fn syscall_nr(self, name: &str) -> Option<u32> {
        let table = self.numbers_by_name();
        let at = table.binary_search_by_key(&name, |&(n, _)| n).ok()?;
        Some(table[at].1)
    }

    /// (name, number) of every syscall of this architecture, sorted by name at compile
    /// time. The `syscalls` crate's `FromStr` is one `match` over ~370 names: a long
    /// stretch of code that each `judgebox run`, a fresh process compiling its profile
    /// once, faulted in page by page (paired, 100 runs: 0.95x the wall time).
    fn numbers_by_name(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => &X86_64_BY_NAME,
            Arch::Aarch64 => &AARCH64_BY_NAME,
        }
    }

    /// The name of a syscall number on this architecture.
    pub(crate) fn syscall_name(self, nr: u32) -> Option<&'static str> {
        let nr = usize::try_from(nr).ok()?;
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::new(nr).map(|s| s.name()),
            Arch::Aarch64 => syscalls::aarch64::Sysno::new(nr).map(|s| s.name()),
        }
    }
}

/// A syscall table sorted by name, built by the compiler (`numbers_by_name`).
macro_rules! sorted_by_name {
    ($sysno:ty) => {{
        const N: usize = <$sysno>::count();
        let mut table = [("", 0u32); N];
        let (mut id, mut n) = (<$sysno>::first().id(), 0);
        while id <= <$sysno>::last().id() {
            if let Some(call) = <$sysno>::new(id as usize) {
                table[n] = (call.name(), call.id() as u32);
                n += 1;
            }
            id += 1;
        }
        assert!(
            n == N,
            "the syscall table has gaps count() does not know of"
        );
        // Insertion sort: the compiler runs it once.
        let mut i = 1;
        while i < N {
            let mut j = i;
            while j > 0 && str_less(table[j].0, table[j - 1].0) {
                let swap = table[j];
                table[j] = table[j - 1];
                table[j - 1] = swap;
                j -= 1;
            }
            i += 1;
        }
        table
    }};
}

static X86_64_BY_NAME: [(&str, u32); syscalls::x86_64::Sysno::count()] =
    sorted_by_name!(syscalls::x86_64::Sysno);
static AARCH64_BY_NAME: [(&str, u32); syscalls::aarch64::Sysno::count()] =
    sorted_by_name!(syscalls::aarch64::Sysno);

/// `a < b` as `str`'s `Ord` has it (bytewise), in a `const` context.
const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// Whether `name` is a system call on some Linux architecture (so a profile may list it
/// even though this architecture lacks it: Docker's profile lists ~60 such names).
pub(crate) fn is_known_anywhere(name: &str) -> bool {
    Arch::X86_64.syscall_nr(name).is_some()
        || Arch::Aarch64.syscall_nr(name).is_some()
        || OTHER_ARCH_NAMES.binary_search(&name).is_ok()
}

/// `SCMP_ARCH_*` names accepted in `architectures` and `archMap` (libseccomp's list).
pub(crate) const SCMP_ARCH_NAMES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// Architecture names accepted in `includes.arches` / `excludes.arches` (libseccomp's
/// native names as Docker uses them, plus the kernel spellings).
pub(crate) const PROFILE_ARCH_NAMES: &[&str] = &[
    "x86",
    "amd64",
    "x86_64",
    "x32",
    "arm",
    "arm64",
    "aarch64",
    "loong64",
    "loongarch64",
    "m68k",
    "mips",
    "mipsel",
    "mipsle",
    "mips64",
    "mipsel64",
    "mips64n32",
    "mipsel64n32",
    "mips3l64n32",
    "parisc",
    "parisc64",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv64",
    "s390",
    "s390x",
    "sh",
    "sheb",
];

/// The running kernel's (major, minor) version, from uname(2).
pub(crate) fn kernel_version() -> (u32, u32) {
    // SAFETY: utsname is plain old data; an all-zero value is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname writes into the struct we own and fails only for a bad pointer.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    // SAFETY: the kernel NUL-terminates every utsname field.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    parse_kernel_release(&release.to_string_lossy()).unwrap_or((0, 0))
}

/// "6.18.44-fc-v657" -> (6, 18); "3.12-rc5" -> (3, 12).
pub(crate) fn parse_kernel_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Syscall names that exist on Linux architectures other than x86_64 and aarch64:
/// every name of the `syscalls` 0.8.1 tables for arm, loongarch64, mips, mips64,
/// powerpc, powerpc64, riscv32, riscv64, s390x, sparc, sparc64 and x86 that is in neither
/// the x86_64 nor the aarch64 table, plus the ARM private calls (`__ARM_NR_*`). Sorted.
#[rustfmt::skip]
const OTHER_ARCH_NAMES: &[&str] = &[
    "_llseek", "_newselect", "arm_fadvise64_64", "arm_sync_file_range", "bdflush", "break",
    "breakpoint", "cachectl", "cacheflush", "chown32", "execv", "fadvise64_64", "fchown32",
    "fcntl64", "fstat64", "fstatat64", "fstatfs64", "ftime", "ftruncate64", "get_tls",
    "getdomainname", "getegid32", "geteuid32", "getgid32", "getgroups32", "getpagesize",
    "getresgid32", "getresuid32", "getuid32", "gtty", "idle", "ipc", "kern_features",
    "lchown32", "llseek", "lock", "lstat64", "memory_ordering", "mmap2", "mpx", "multiplexer",
    "nice", "oldfstat", "oldlstat", "oldolduname", "oldstat", "olduname", "pciconfig_iobase",
    "pciconfig_read", "pciconfig_write", "perfctr", "prof", "profil", "readdir", "recv",
    "reserved177", "reserved193", "reserved221", "reserved82", "riscv_flush_icache",
    "riscv_hwprobe", "rtas", "s390_guarded_storage", "s390_pci_mmio_read",
    "s390_pci_mmio_write", "s390_runtime_instr", "s390_sthyi", "sched_get_affinity",
    "sched_set_affinity", "send", "sendfile64", "set_tls", "setfsgid32", "setfsuid32",
    "setgid32", "setgroups32", "setregid32", "setresgid32", "setresuid32", "setreuid32",
    "setuid32", "sgetmask", "sigaction", "signal", "sigpending", "sigprocmask", "sigreturn",
    "sigsuspend", "socketcall", "spu_create", "spu_run", "ssetmask", "stat64", "statfs64",
    "stime", "stty", "subpage_prot", "swapcontext", "switch_endian", "sync_file_range2",
    "sys_debug_setcontext", "syscall", "sysmips", "timerfd", "truncate64", "ugetrlimit",
    "ulimit", "umount", "unused109", "unused150", "unused18", "unused28", "unused59",
    "unused84", "usr26", "usr32", "utrap_install", "vm86", "vm86old", "waitpid",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_arch_names_are_sorted_and_foreign() {
        assert!(OTHER_ARCH_NAMES.windows(2).all(|w| w[0] < w[1]));
        for n in OTHER_ARCH_NAMES {
            assert!(
                Arch::X86_64.syscall_nr(n).is_none(),
                "{n} is an x86_64 syscall"
            );
            assert!(
                Arch::Aarch64.syscall_nr(n).is_none(),
                "{n} is an aarch64 syscall"
            );
        }
    }

    #[test]
    fn the_tables_are_sorted_by_name_without_duplicates() {
        for table in [&X86_64_BY_NAME[..], &AARCH64_BY_NAME[..]] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(table.iter().all(|(name, _)| !name.is_empty()));
        }
    }

    #[test]
    fn the_sorted_tables_answer_as_the_crate_does() {
        use std::str::FromStr;
        let x86 = syscalls::x86_64::Sysno::iter().map(|s| (s.name(), s.id()));
        let arm = syscalls::aarch64::Sysno::iter().map(|s| (s.name(), s.id()));
        for (arch, calls) in [
            (Arch::X86_64, x86.collect::<Vec<_>>()),
            (Arch::Aarch64, arm.collect()),
        ] {
            assert!(calls.len() > 300, "{arch:?}: {} syscalls", calls.len());
            for (name, id) in calls {
                assert_eq!(
                    arch.syscall_nr(name),
                    u32::try_from(id).ok(),
                    "{arch:?} {name}"
                );
            }
        }
        assert_eq!(
            Arch::X86_64.syscall_nr("openat"),
            syscalls::x86_64::Sysno::from_str("openat")
                .ok()
                .map(|s| s.id() as u32)
        );
        for missing in ["", "OPEN", "open ", "zzz", "_sysctl2"] {
            assert_eq!(Arch::X86_64.syscall_nr(missing), None, "{missing:?}");
        }
    }

    #[test]
    fn resolves_names_per_arch() {
        assert_eq!(Arch::X86_64.syscall_nr("getpid"), Some(39));
        assert_eq!(Arch::Aarch64.syscall_nr("getpid"), Some(172));
        assert_eq!(Arch::X86_64.syscall_name(435), Some("clone3"));
        assert_eq!(Arch::Aarch64.syscall_nr("open"), None);
        assert!(is_known_anywhere("open"));
        assert!(is_known_anywhere("socketcall"));
        assert!(is_known_anywhere("set_tls"));
        assert!(!is_known_anywhere("definitely_not_a_syscall"));
    }

    #[test]
    fn parses_kernel_releases() {
        assert_eq!(parse_kernel_release("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_kernel_release("3.12-rc5"), Some((3, 12)));
        assert_eq!(parse_kernel_release("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_release("garbage"), None);
        assert!(kernel_version() >= (3, 17));
    }
}
