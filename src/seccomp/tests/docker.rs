//! Docker's own default profile (moby/profiles v0.2.3, `testdata/docker-default.json`),
//! loaded unchanged, must give the answers Docker gives. Docker runs containers with
//! a default capability set; judgebox resolves `includes.caps` against the empty set,
//! so where the two differ the test says which capability makes the difference.

use super::child::{self, i386_or_skip, EPERM, OK};
use super::probes;
use super::reference::{docker_env, resolved, DOCKER_JSON};
use crate::seccomp::action::{RET_ALLOW, RET_ERRNO};
use crate::seccomp::arch::Arch;
use crate::seccomp::resolve::Env;
use crate::seccomp::sim::{self, SeccompData};
use crate::seccomp::{codegen, Filter};

fn docker_path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/seccomp/testdata/docker-default.json"
    )
    .to_string()
}

fn docker() -> Filter {
    Filter::load(&docker_path()).unwrap().unwrap()
}

/// Answer of Docker's profile for a native call, resolved against `env`.
fn answer(env: &Env, name: &str, args: &[u64]) -> u32 {
    let prog = codegen::compile(&resolved(DOCKER_JSON, env), env.arch);
    let nr = env.arch.syscall_nr(name).unwrap();
    sim::run(&prog, &SeccompData::call(env.arch.audit(), nr, args)).unwrap()
}

#[test]
fn loads_unchanged_and_skips_names_foreign_to_this_arch() {
    let f = docker();
    assert_eq!(f.name(), docker_path());
    assert!(!f.kills());
    let skipped = f
        .notes()
        .iter()
        .filter(|n| n.contains("does not exist on"))
        .count();
    assert!(skipped >= 50, "only {skipped} names skipped");
    assert!(f.notes().iter().any(|n| n.contains("includes/excludes")));
}

#[test]
fn conditional_rules_follow_capabilities_arch_and_kernel() {
    let judge = Env::running().unwrap();
    let docker = docker_env();
    let eperm = RET_ERRNO | libc::EPERM as u32;
    // CAP_SYS_ADMIN rules never apply: no container gets it by default.
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "bpf",
        "pivot_root",
        "open_by_handle_at",
    ] {
        assert_eq!(answer(&judge, name, &[]), eperm, "{name}");
        assert_eq!(answer(&docker, name, &[]), eperm, "{name}");
    }
    // chroot is allowed by `includes.caps: [CAP_SYS_CHROOT]`, a Docker default cap.
    assert_eq!(answer(&docker, "chroot", &[]), RET_ALLOW);
    assert_eq!(answer(&judge, "chroot", &[]), eperm);
    // ptrace and process_vm_* are allowed from kernel 4.8 (`includes.minKernel`).
    assert_eq!(answer(&judge, "ptrace", &[]), RET_ALLOW);
    let mut old = judge.clone();
    old.kernel = (4, 4);
    assert_eq!(answer(&old, "ptrace", &[]), eperm);
    // `excludes.caps: [CAP_SYS_ADMIN]` keeps the clone rule and clone3's ENOSYS.
    assert_eq!(
        answer(&judge, "clone3", &[]),
        RET_ERRNO | libc::ENOSYS as u32
    );
    assert_eq!(answer(&judge, "clone", &[libc::SIGCHLD as u64]), RET_ALLOW);
    assert_eq!(
        answer(&judge, "clone", &[libc::CLONE_NEWUSER as u64]),
        eperm
    );
    // With CAP_SYS_ADMIN the conditional rules flip, as in `docker run --cap-add SYS_ADMIN`.
    let mut admin = judge.clone();
    admin.caps = vec!["CAP_SYS_ADMIN".into()];
    assert_eq!(answer(&admin, "mount", &[]), RET_ALLOW);
    assert_eq!(answer(&admin, "clone3", &[]), RET_ALLOW);
    // Arch-specific rules: arch_prctl is for amd64 only.
    if judge.arch == Arch::X86_64 {
        assert_eq!(answer(&judge, "arch_prctl", &[]), RET_ALLOW);
    }
}

/// Docker's answers for the probes, in a real process (empty capability set).
#[test]
fn answers_the_probes_like_docker() {
    let f = docker();
    // Allowed by Docker's profile: the kernel answers (ptrace from 4.8; adjtimex reads;
    // name_to_handle_at; AF_PACKET/AF_NETLINK families; ioctl and personality query).
    let allowed = [
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "adjtimex",
        "clock_adjtime",
        "name_to_handle_at",
        "socket_packet",
        "socket_netlink_audit",
        "socket_netlink_uevent",
        "ioctl_tiocsti",
        "ioctl_tiocsti_high_bits",
    ];
    for p in probes::denied() {
        let got = child::probe(Some(&f), p.run);
        if allowed.contains(&p.name) {
            assert_ne!(
                got, EPERM,
                "{} should reach the kernel under Docker's profile",
                p.name
            );
        } else {
            // Everything else is denied, as by Docker. Three are denied by judgebox where
            // Docker's libseccomp filter would not be: chroot (Docker keeps
            // CAP_SYS_CHROOT), socket_vsock_high_bits (compared on the 32 bits the kernel
            // reads) and x32_getpid (legacy ABIs are always denied).
            assert_eq!(got, EPERM, "{}", p.name);
        }
    }
    for p in probes::allowed() {
        let got = child::probe(Some(&f), p.run);
        assert!(p.accepts(got), "{}: {got:?}", p.name);
    }
    if let Some(run) = i386_or_skip() {
        // Docker's archMap lets i386 calls through; judgebox denies the legacy ABI.
        assert_eq!(child::probe(Some(&f), run), EPERM);
    }
    assert_eq!(
        child::probe(Some(&f), || std::thread::spawn(|| 0).join().unwrap_or(1)),
        OK
    );
}
