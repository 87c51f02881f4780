//! `judgebox doctor`: whether judgebox can run here at all (capabilities, namespaces and
//! mounts, tried for real), what this host can enforce, by which mechanism, and how to fix
//! what is missing. Exit 0 when cgroups enforce every limit, 1 when runs work with
//! rlimits only (degraded), 3 when judgebox cannot run here.

use anyhow::Result;
use clap::Args;
use judgebox::cgroup::{self, ManagerOptions, Mechanism};
use std::path::PathBuf;

/// Check the host: capabilities, namespaces and mounts, kernel, cgroup mode and controllers,
/// seccomp, clone3/pidfd, and for each limit the mechanism that will enforce it, with exact
/// fixes. Exit status: 0 ok, 1 degraded (rlimits instead of cgroups), 3 cannot run here.
#[derive(Args)]
pub struct DoctorArgs {
    /// Print one JSON object instead of a report.
    #[arg(long)]
    json: bool,
    /// Check this cgroup directory as the parent of run cgroups (as `run --cgroup-root`).
    #[arg(long, value_name = "PATH")]
    cgroup_root: Option<PathBuf>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn kernel_release() -> String {
    read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

/// True when the syscall exists (it fails with something other than ENOSYS on bad input).
fn syscall_exists(nr: libc::c_long) -> bool {
    // SAFETY: invalid arguments on purpose (null pointer, size 0): the kernel validates them
    // and returns EINVAL/EFAULT without side effects; only ENOSYS matters here.
    let r = unsafe { libc::syscall(nr, 0usize, 0usize) };
    !(r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

fn host_features() -> serde_json::Value {
    let filesystems = read("/proc/filesystems").unwrap_or_default();
    serde_json::json!({
        "kernel": kernel_release(),
        "seccomp": read("/proc/sys/kernel/seccomp/actions_avail").is_some(),
        "seccomp_actions": read("/proc/sys/kernel/seccomp/actions_avail"),
        "user_namespaces": read("/proc/sys/user/max_user_namespaces").and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v > 0),
        "overlayfs": filesystems.contains("overlay"),
        "clone3": syscall_exists(libc::SYS_clone3),
        "pidfd_open": syscall_exists(libc::SYS_pidfd_open),
        "openat2": syscall_exists(libc::SYS_openat2),
        "scratch": scratch(),
    })
}

/// Where judges and the server keep their short-lived files, and whether that is memory.
fn scratch() -> serde_json::Value {
    let dir = judgebox::scratch::base();
    serde_json::json!({
        "dir": dir.to_string_lossy(),
        "tmpfs": judgebox::fsinfo::is_tmpfs(dir).ok(),
        "available_bytes": judgebox::fsinfo::available(dir).ok(),
    })
}

/// Capabilities a judgebox run uses, with the steps that need them.
const NEEDED_CAPS: [(u32, &str, &str); 6] = [
    (
        21,
        "CAP_SYS_ADMIN",
        "new namespaces, mounts, pivot_root of the sandbox",
    ),
    (6, "CAP_SETGID", "switching the program to the sandbox gid"),
    (7, "CAP_SETUID", "switching the program to the sandbox uid"),
    (8, "CAP_SETPCAP", "emptying the program's bounding set"),
    (0, "CAP_CHOWN", "handing the box files to the sandbox uid"),
    (
        5,
        "CAP_KILL",
        "killing the program's processes (another uid)",
    ),
];

/// Exit status when judgebox cannot run here at all.
const CANNOT_RUN: i32 = 3;

/// `CapEff` of a /proc/<pid>/status text.
fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The needed capabilities missing from `eff`: (name, why).
fn missing_caps(eff: u64) -> Vec<(&'static str, &'static str)> {
    NEEDED_CAPS
        .iter()
        .filter(|(bit, _, _)| eff & (1u64 << bit) == 0)
        .map(|(_, name, why)| (*name, *why))
        .collect()
}

/// Tries what every run does first, in a throwaway child: new mount, pid, ipc, uts and
/// net namespaces, then a private tmpfs mount. `Err` names the step and errno.
fn probe_namespaces() -> Result<(), String> {
    let flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET;
    // SAFETY: doctor is single-threaded here; the child only makes raw syscalls and
    // _exit()s (no allocation, no locks), the parent waits for it below.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: raw syscalls in the forked child on static C strings; _exit never returns.
        unsafe {
            if libc::unshare(flags) != 0 {
                libc::_exit(10 + (*libc::__errno_location()).min(100));
            }
            let none = c"none".as_ptr();
            let private = (libc::MS_REC | libc::MS_PRIVATE) as libc::c_ulong;
            if libc::mount(
                none,
                c"/".as_ptr(),
                std::ptr::null(),
                private,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(120);
            }
            if libc::mount(
                c"tmpfs".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"size=4k".as_ptr() as *const libc::c_void,
            ) != 0
            {
                libc::_exit(121);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; status is a valid out-pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) {
        return Err("the probe child died by a signal".into());
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        120 => Err("mount --make-rprivate / in a new mount namespace failed".into()),
        121 => Err("mounting a tmpfs in a new mount namespace failed".into()),
        c => Err(format!(
            "unshare(mount, pid, ipc, uts, net namespaces): {}",
            std::io::Error::from_raw_os_error(c - 10)
        )),
    }
}

/// Whether judgebox can run here: the blocking problems and what to add.
fn can_run(container: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(eff) = read("/proc/self/status")
        .as_deref()
        .and_then(effective_caps)
    {
        let missing = missing_caps(eff);
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|(n, _)| *n).collect();
            for (name, why) in &missing {
                problems.push(format!("missing capability {name} (needed for {why})"));
            }
            let short: Vec<&str> = names.iter().map(|n| &n[4..]).collect();
            problems.push(match container {
                Some(engine) => format!(
                    "fix: start the {engine} container with {} (Kubernetes: securityContext.capabilities.add: [{}]); with a writable cgroupfs (`--privileged`, private cgroup namespace) cgroups enforce the limits too",
                    short.iter().map(|c| format!("--cap-add {c}")).collect::<Vec<_>>().join(" "),
                    short.join(", ")
                ),
                None => format!("fix: run judgebox as root with {}", names.join(", ")),
            });
        }
    }
    if problems.is_empty() {
        if let Err(e) = probe_namespaces() {
            problems.push(format!("cannot create the sandbox's namespaces: {e}"));
            problems.push(match container {
                Some(engine) => format!("fix: the {engine} container's seccomp/AppArmor profile blocks it: add `--cap-add SYS_ADMIN` (Docker's default seccomp profile allows unshare and mount only with it) or `--security-opt seccomp=unconfined`"),
                None => "fix: check that user-visible namespaces are enabled in the kernel (CONFIG_NAMESPACES) and no LSM forbids unshare/mount for root".into(),
            });
        }
    }
    problems
}

pub fn execute(args: DoctorArgs) -> Result<i32> {
    let opts = ManagerOptions {
        root: args.cgroup_root.clone(),
        disabled: false,
    };
    let scoped = cgroup::enter_delegated_scope(&opts)?;
    let scope_note = scoped.note.clone();
    let manager = scoped.manager(&opts);
    let report = manager.doctor();
    let limits = cgroup::Limits {
        memory: Some(256 << 20),
        pids: Some(64),
        cpus: Some(1.0),
        pid_namespace: true,
    };
    let enforcement = manager.enforcement(&limits);
    let by_cgroup = |m: Mechanism| matches!(m, Mechanism::Cgroup2 | Mechanism::Cgroup1);
    let all_cgroup = by_cgroup(enforcement.memory)
        && by_cgroup(enforcement.pids)
        && by_cgroup(enforcement.cpu_time);
    let blockers = can_run(report.environment.container.as_deref());
    let code = if !blockers.is_empty() {
        CANNOT_RUN
    } else if all_cgroup && report.can_create {
        0
    } else {
        1
    };
    if args.json {
        let out = serde_json::json!({
            "ok": code == 0,
            "can_run": blockers.is_empty(),
            "blockers": blockers,
            "scope_note": scope_note,
            "host": host_features(),
            "enforcement": enforcement,
            "cgroup": report,
        });
        println!("{out}");
        return Ok(code);
    }
    let host = host_features();
    println!("kernel          {}", host["kernel"].as_str().unwrap_or("?"));
    println!("cgroup mode     {}", report.mode);
    if let Some(reason) = &report.none_reason {
        println!("                ({reason})");
    }
    for p in &report.parents {
        println!("run cgroups in  {}", p.display());
    }
    println!(
        "can create      {}",
        if report.can_create { "yes" } else { "no" }
    );
    if let Some(e) = &report.create_error {
        println!("                ({e})");
    }
    if let Some(us) = report.create_remove_us {
        println!("create+remove   {us} us");
    }
    for feature in [
        "seccomp",
        "user_namespaces",
        "overlayfs",
        "clone3",
        "pidfd_open",
        "openat2",
    ] {
        let yes = host[feature].as_bool().unwrap_or(false);
        println!("{feature:<15} {}", if yes { "yes" } else { "no" });
    }
    let scratch = &host["scratch"];
    println!(
        "scratch         {} ({}; set {} to choose)",
        judgebox::display::escape_controls(scratch["dir"].as_str().unwrap_or("?")),
        match scratch["tmpfs"].as_bool() {
            Some(true) => "memory",
            Some(false) => "disk",
            None => "not reachable",
        },
        judgebox::scratch::ENV
    );
    println!("limits:");
    println!("  memory        {}", enforcement.memory);
    println!("  pids          {}", enforcement.pids);
    println!("  cpu time      {}", enforcement.cpu_time);
    println!("  cpu bandwidth {}", enforcement.cpus);
    for note in report.notes.iter().chain(&scope_note) {
        println!("note: {note}");
    }
    for b in &blockers {
        println!("cannot run: {b}");
    }
    for fix in &report.fixes {
        println!("fix:  {fix}");
    }
    println!(
        "{}",
        if code == CANNOT_RUN {
            "cannot run: judgebox cannot create sandboxes here (see above)"
        } else if code == 0 {
            "ok: cgroups enforce every limit"
        } else {
            "degraded: some limits are not enforced by cgroups (see fixes)"
        }
    );
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_from_status() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\n";
        let eff = effective_caps(status).unwrap();
        // podman's default set: everything judgebox needs but CAP_SYS_ADMIN.
        let missing = missing_caps(eff);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, "CAP_SYS_ADMIN");
        assert!(missing_caps(u64::MAX).is_empty());
        assert_eq!(missing_caps(0).len(), NEEDED_CAPS.len());
        assert_eq!(effective_caps("CapEff:\tzz\n"), None);
    }
}
