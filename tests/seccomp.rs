//! Integration tests of `judgebox run --seccomp`: the shipped profiles and Docker's own
//! profile, driven through the real binary with the static probe `seccomp_probe`
//! (tests/probes/seccomp_probe.c), which prints `NAME errno=N` per attempted call.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Calls the sandbox must refuse; `seccomp_probe` tries each harmlessly.
const DENIED: &[&str] = &[
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
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
    "socket_vsock",
    "socket_vsock_high_bits",
    "socket_alg",
    "socket_packet",
    "socket_netlink_audit",
    "socket_netlink_uevent",
    "clone_newuser",
    "clone_newns",
    "clone_newnet_high_bits",
    "ioctl_tiocsti",
    "ioctl_tiocsti_high_bits",
    "personality_high_bits",
    "x32_getpid",
    "i386_getpid",
    "unshare",
    "personality_addr_no_randomize",
    "loosen_then_mount",
];

/// Calls ordinary programs make, which must go through.
const ALLOWED: &[&str] = &[
    "getpid",
    "clock_gettime",
    "socket_unix",
    "socket_inet",
    "socket_inet6",
    "socket_netlink_route",
    "socketpair_unix",
    "fork",
    "clone",
    "pthread_create",
    "mmap_exec",
    "personality_query",
];

/// `NAME errno=N` lines -> map.
fn answers(stdout: &str) -> BTreeMap<String, i64> {
    stdout
        .lines()
        .filter_map(|l| {
            let (name, errno) = l.split_once(" errno=")?;
            Some((name.to_string(), errno.parse().ok()?))
        })
        .collect()
}

fn probe_all(profile: &str) -> (serde_json::Value, BTreeMap<String, i64>) {
    let (v, _) = run_json(&["--seccomp", profile], &["/probes/seccomp_probe", "all"]);
    let map = answers(stdout_of(&v));
    (v, map)
}

#[test]
fn default_denies_every_dangerous_call_with_eperm_and_allows_the_rest() {
    let (v, got) = probe_all("default");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["seccomp"], "default", "the result names the profile: {v}");
    for name in DENIED {
        assert_eq!(
            got.get(*name),
            Some(&1),
            "{name} must fail with EPERM: {got:?}"
        );
    }
    for name in ALLOWED {
        assert_eq!(got.get(*name), Some(&0), "{name} must succeed: {got:?}");
    }
    assert_eq!(
        got.get("clone3"),
        Some(&38),
        "clone3 must be ENOSYS so libc falls back"
    );
}

#[test]
fn without_a_filter_the_same_probes_reach_the_kernel() {
    // The control for the test above: these answers come from the kernel, not EPERM,
    // so the EPERMs there are the filter's doing.
    let (v, got) = probe_all("none");
    assert_eq!(v["status"], "ok", "{v}");
    assert!(v["seccomp"].is_null(), "{v}");
    for name in [
        "mount",
        "ptrace",
        "bpf",
        "keyctl",
        "io_uring_setup",
        "unshare",
        "clone3",
    ] {
        let errno = got.get(name).copied();
        assert!(
            errno.is_some() && errno != Some(1),
            "{name} without a filter: {got:?}"
        );
    }
    let out = judgebox(&[
        "run",
        "--rootfs",
        rootfs().to_str().unwrap(),
        "--seccomp",
        "none",
        "--",
        "/bin/true",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("--seccomp none"),
        "{stderr}"
    );
}

#[test]
fn strict_kills_the_program_and_names_the_syscall() {
    for (probe, syscall) in [
        ("ptrace", "ptrace"),
        ("mount", "mount"),
        ("bpf", "bpf"),
        ("io_uring_setup", "io_uring_setup"),
        ("socket_vsock", "socket"),
        ("unshare", "unshare"),
    ] {
        let (v, _) = run_json(&["--seccomp", "strict"], &["/probes/seccomp_probe", probe]);
        assert_eq!(v["status"], "security_violation", "{probe}: {v}");
        assert_eq!(v["signal_name"], "SIGSYS", "{probe}: {v}");
        assert_eq!(
            v["message"],
            format!("forbidden system call {syscall}"),
            "{probe}: the message names the call: {v}"
        );
        assert_eq!(
            stdout_of(&v),
            "",
            "{probe}: killed before it could print: {v}"
        );
    }
}

#[test]
fn strict_names_calls_made_through_other_abis() {
    let (v, _) = run_json(
        &["--seccomp", "strict"],
        &["/probes/seccomp_probe", "i386_getpid"],
    );
    assert_eq!(v["status"], "security_violation", "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("i386") || msg.contains("32-bit"), "{v}");
}

#[test]
fn strict_lets_ordinary_programs_run_threads_included() {
    let (v, _) = run_json(
        &["--seccomp", "strict"],
        &[
            "/probes/seccomp_probe",
            "pthread_create",
            "fork",
            "clone",
            "socket_inet",
            "mmap_exec",
        ],
    );
    assert_eq!(v["status"], "ok", "{v}");
    let got = answers(stdout_of(&v));
    assert!(got.len() == 5 && got.values().all(|e| *e == 0), "{got:?}");
    let v = sh(
        &["--seccomp", "strict"],
        "echo 3 1 2 | tr ' ' '\\n' | sort -n | tr '\\n' ,",
    );
    assert_eq!(
        (v["status"].as_str(), stdout_of(&v)),
        (Some("ok"), "1,2,3,"),
        "{v}"
    );
}

#[test]
fn busybox_pipelines_work_under_default() {
    let v = sh(&[], "seq 1 100 | awk '{s+=$1} END {print s}' | sed 's/^/sum=/'; date +%Y >/dev/null && echo date-ok");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(stdout_of(&v), "sum=5050\ndate-ok\n", "{v}");
}

#[test]
fn the_filter_survives_fork_and_execve_into_children() {
    // The shell forks and execs the probe: the probe is still filtered.
    let v = sh(&[], "/probes/seccomp_probe ptrace mount; echo rc=$?");
    assert_eq!(
        stdout_of(&v),
        "ptrace errno=1\nmount errno=1\nrc=0\n",
        "{v}"
    );
    // Under strict the child dies of SIGSYS (128+31) and the shell carries on.
    let v = sh(
        &["--seccomp", "strict"],
        "/probes/seccomp_probe ptrace; echo rc=$?",
    );
    assert_eq!(
        (v["status"].as_str(), stdout_of(&v)),
        (Some("ok"), "rc=159\n"),
        "{v}"
    );
}

#[test]
fn a_program_cannot_loosen_the_filter() {
    let (v, _) = run_json(&[], &["/probes/seccomp_probe", "loosen_then_mount"]);
    assert_eq!(stdout_of(&v), "loosen_then_mount errno=1\n", "{v}");
}

#[test]
fn dockers_own_profile_gives_dockers_answers() {
    let docker =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/seccomp/testdata/docker-default.json");
    let (v, got) = probe_all(docker.to_str().unwrap());
    assert_eq!(v["status"], "ok", "{v}");
    // What Docker answers with this profile and no capabilities: the namespace, mount,
    // module, key and clock calls are denied; ptrace is allowed on kernels >= 4.8 (it
    // then fails in the kernel: ESRCH for a pid that is not there); clone3 is ENOSYS.
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "bpf",
        "keyctl",
        "add_key",
        "kexec_load",
        "init_module",
        "reboot",
        "swapon",
        "clock_settime",
        "open_by_handle_at",
        "socket_vsock",
        "clone_newuser",
        "perf_event_open",
        "userfaultfd",
    ] {
        assert_eq!(
            got.get(name),
            Some(&1),
            "{name} under Docker's profile: {got:?}"
        );
    }
    assert_eq!(got.get("ptrace"), Some(&3), "{got:?}");
    assert_eq!(got.get("clone3"), Some(&38), "{got:?}");
    for name in [
        "getpid",
        "socket_unix",
        "socket_inet",
        "fork",
        "pthread_create",
    ] {
        assert_eq!(got.get(name), Some(&0), "{name}: {got:?}");
    }
}

#[test]
fn bad_profiles_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("box");
    std::fs::create_dir(&marker).unwrap();
    let cases = [
        ("malformed.json", "{\"defaultAction\": "),
        (
            "action.json",
            r#"{"defaultAction":"SCMP_ACT_MAYBE","syscalls":[]}"#,
        ),
        (
            "unknown.json",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve","no_such_call"],"action":"SCMP_ACT_ALLOW"}]}"#,
        ),
        (
            "argindex.json",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["execve"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        ),
        (
            "noexec.json",
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#,
        ),
    ];
    for (name, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = judgebox(&[
            "run",
            "--rootfs",
            rootfs().to_str().unwrap(),
            "--box-dir",
            marker.to_str().unwrap(),
            "--seccomp",
            path.to_str().unwrap(),
            "--json",
            "--",
            "/bin/touch",
            "/box/ran",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}: no result may be printed");
        assert!(
            stderr.contains(name),
            "{name}: the error names the file: {stderr}"
        );
        assert!(
            !marker.join("ran").exists(),
            "{name}: the command must not have run"
        );
    }
    let out = judgebox(&[
        "run",
        "--rootfs",
        rootfs().to_str().unwrap(),
        "--seccomp",
        "/nonexistent/profile.json",
        "--",
        "/bin/true",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
