//! A run with everything that enforces its limits plugged in: a per-run uid, its cgroup
//! (or, where no cgroup does the job, rlimits), the seccomp filter and optionally a
//! network namespace to join. `judgebox run` and the judge both start runs so.

use std::os::fd::RawFd;

use super::{uid, CgroupHandle, Config, ExecFilter, Hooks, RunResult, SandboxError, SeccompGate};
use crate::cgroup::{Enforcement, Mechanism};
use crate::seccomp::Filter;

/// What enforces one run's limits.
pub struct Enforced<'a> {
    /// The run's cgroup (a `crate::cgroup::RunCgroup`, or one wrapped in a `TimedCgroup`),
    /// when a cgroup backend is in use.
    pub cgroup: Option<&'a dyn CgroupHandle>,
    /// Which mechanism enforces each limit (from the cgroup manager).
    pub enforcement: Enforcement,
    pub filter: Option<&'a Filter>,
    /// See [`Hooks::netns`].
    pub netns: Option<RawFd>,
    /// Keep `config.uid` / `config.gid` even when RLIMIT_NPROC caps processes (the user
    /// asked for them).
    pub fixed_uid: bool,
    pub fixed_gid: bool,
}

/// Runs `config` under `e`. The kernel counts RLIMIT_NPROC, inotify instances and watches
/// and pipe pages per uid, whatever the namespaces and cgroups: so, unless `fixed_uid`, the
/// run gets a leased uid (and, unless fixed, gid) no concurrent run shares, in every mode.
pub fn run_enforced(mut config: Config, e: Enforced) -> Result<RunResult, SandboxError> {
    let rlimit_pids = e.enforcement.pids == Mechanism::Rlimit;
    let _uid_lease = if !e.fixed_uid {
        let lease = uid::lease_run_uid().map_err(SandboxError::UidLease)?;
        config.uid = lease.uid;
        if !e.fixed_gid {
            config.gid = lease.uid;
        }
        Some(lease)
    } else {
        None
    };
    let gate = e.filter.cloned().map(SeccompGate::new);
    let hooks = Hooks {
        cgroup: e.cgroup,
        rlimit_memory: e.enforcement.memory == Mechanism::Rlimit,
        rlimit_pids,
        enforcement: Some(e.enforcement),
        filter: gate.as_ref().map(|g| g as &dyn ExecFilter),
        netns: e.netns,
    };
    let mut result = super::run(&config, &hooks)?;
    result.seccomp = e.filter.map(|f| f.name().to_string());
    Ok(result)
}
