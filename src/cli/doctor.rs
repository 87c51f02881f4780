//! `judgebox doctor`: what this host can enforce, by which mechanism, and how to fix what
//! is missing. Exit 0 when cgroups enforce every limit, 1 otherwise.

use anyhow::Result;
use clap::Args;
use judgebox::cgroup::{self, Manager, ManagerOptions, Mechanism};
use std::path::PathBuf;

/// Check the host: kernel, cgroup mode and controllers, namespaces, seccomp, clone3/pidfd,
/// and for each limit the mechanism that will enforce it, with exact fixes.
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
    })
}

pub fn execute(args: DoctorArgs) -> Result<i32> {
    let manager = Manager::new(&ManagerOptions {
        root: args.cgroup_root.clone(),
        disabled: false,
    });
    let report = manager.doctor();
    let limits = cgroup::Limits {
        memory: Some(256 << 20),
        pids: Some(64),
        cpus: Some(1.0),
    };
    let enforcement = manager.enforcement(&limits);
    let by_cgroup = |m: Mechanism| matches!(m, Mechanism::Cgroup2 | Mechanism::Cgroup1);
    let all_cgroup = by_cgroup(enforcement.memory)
        && by_cgroup(enforcement.pids)
        && by_cgroup(enforcement.cpu_time);
    let code = if all_cgroup && report.can_create {
        0
    } else {
        1
    };
    if args.json {
        let out = serde_json::json!({
            "ok": code == 0,
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
    println!("limits:");
    println!("  memory        {}", enforcement.memory);
    println!("  pids          {}", enforcement.pids);
    println!("  cpu time      {}", enforcement.cpu_time);
    println!("  cpu bandwidth {}", enforcement.cpus);
    for note in &report.notes {
        println!("note: {note}");
    }
    for fix in &report.fixes {
        println!("fix:  {fix}");
    }
    println!(
        "{}",
        if code == 0 {
            "ok: cgroups enforce every limit"
        } else {
            "degraded: some limits are not enforced by cgroups (see fixes)"
        }
    );
    Ok(code)
}
