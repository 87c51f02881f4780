//! A run with everything that enforces its limits plugged in: a per-run uid, its cgroup
//! (or, where no cgroup does the job, rlimits), the seccomp filter and optionally a
//! network namespace to join. `judgebox run` and the judge both start runs so.

use std::os::fd::RawFd;

use super::prepare::{prepare, Prepared};
use super::supervisor::{discard_outputs_unless_ran, Started};
use super::warm::WarmSandbox;
use super::{uid, Config, ExecFilter, Hooks, RunResult, SandboxError, SeccompGate};
use crate::cgroup::{Cgroup, Enforcement, Mechanism};
use crate::seccomp::Filter;
use std::path::Path;

/// What enforces one run's limits.
pub struct Enforced<'a> {
    /// The run's cgroup (a `crate::cgroup::RunCgroup`, or one wrapped in a `TimedCgroup`),
    /// when a cgroup backend is in use.
    pub cgroup: Option<&'a dyn Cgroup>,
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

/// The hooks of a run under `e`, with the seccomp gate made from its filter.
fn hooks_for<'a>(e: &Enforced<'a>, gate: Option<&'a SeccompGate>, rlimit_pids: bool) -> Hooks<'a> {
    Hooks {
        cgroup: e.cgroup,
        rlimit_memory: e.enforcement.memory == Mechanism::Rlimit,
        rlimit_pids,
        enforcement: Some(e.enforcement),
        filter: gate.map(|g| g as &dyn ExecFilter),
        netns: e.netns,
    }
}

/// The run's own uid (see [`run_enforced`]), unless the caller fixed one.
fn lease_uid(config: &mut Config, e: &Enforced) -> Result<Option<uid::UidLease>, SandboxError> {
    if e.fixed_uid {
        return Ok(None);
    }
    let lease = uid::lease_run_uid().map_err(SandboxError::UidLease)?;
    config.uid = lease.uid;
    if !e.fixed_gid {
        config.gid = lease.uid;
    }
    Ok(Some(lease))
}

/// Runs `config` under `e`. The kernel counts RLIMIT_NPROC, inotify instances and watches
/// and pipe pages per uid, whatever the namespaces and cgroups: so, unless `fixed_uid`, the
/// run gets a leased uid (and, unless fixed, gid) no concurrent run shares, in every mode.
pub fn run_enforced(config: Config, e: Enforced) -> Result<RunResult, SandboxError> {
    let cgroup = e.cgroup;
    OneShot::start(config, e)?.finish(cgroup)
}

/// A one-shot run (as [`run_enforced`]) in two steps, so that the run's cgroup can be made
/// while init builds the sandbox: `start` takes everything but the cgroup (`e.cgroup` is
/// not used), `finish` the cgroup. Dropping it unfinished kills init and removes the
/// output files it had opened.
pub struct OneShot<'a> {
    config: Config,
    e: Enforced<'a>,
    gate: Option<SeccompGate>,
    rlimit_pids: bool,
    prepared: Prepared,
    /// `None` once finished.
    started: Option<Started>,
    _uid_lease: Option<uid::UidLease>,
}

impl<'a> OneShot<'a> {
    pub fn start(mut config: Config, e: Enforced<'a>) -> Result<OneShot<'a>, SandboxError> {
        // This thread supervises and its clone becomes init: both get a CPU soon after
        // they wake, even while programs keep every CPU busy (`slice.rs`).
        super::slice::prefer_short_slice();
        let rlimit_pids = e.enforcement.pids == Mechanism::Rlimit;
        let uid_lease = lease_uid(&mut config, &e)?;
        let gate = e.filter.cloned().map(SeccompGate::new);
        let unplaced = Enforced { cgroup: None, ..e };
        let hooks = hooks_for(&unplaced, gate.as_ref(), rlimit_pids);
        let prepared = prepare(&config, &hooks)?;
        let started = Started::start(&config, &hooks, &prepared);
        let started = started.inspect_err(|_| prepared.discard_outputs())?;
        Ok(OneShot {
            config,
            e,
            gate,
            rlimit_pids,
            prepared,
            started: Some(started),
            _uid_lease: uid_lease,
        })
    }

    /// Places the program in `cgroup` and runs it to completion.
    pub fn finish(mut self, cgroup: Option<&'a dyn Cgroup>) -> Result<RunResult, SandboxError> {
        let started = self.started.take().expect("finished once");
        let e = Enforced { cgroup, ..self.e };
        let hooks = hooks_for(&e, self.gate.as_ref(), self.rlimit_pids);
        let result = started.finish(&self.config, &hooks, &self.prepared);
        discard_outputs_unless_ran(&self.prepared, &result);
        let mut result = result?;
        result.seccomp = e.filter.map(|f| f.name().to_string());
        Ok(result)
    }
}

impl Drop for OneShot<'_> {
    fn drop(&mut self) {
        if let Some(started) = self.started.take() {
            drop(started);
            self.prepared.discard_outputs();
        }
    }
}

/// Many runs of one program in one warm sandbox (see `warm.rs`), each under the same
/// enforcement but in its own cgroup: one submission's tests on one judge worker.
pub struct WarmRuns {
    sandbox: WarmSandbox,
    gate: Option<SeccompGate>,
    enforcement: Enforcement,
    netns: Option<RawFd>,
    rlimit_pids: bool,
    seccomp: Option<String>,
    _uid_lease: Option<uid::UidLease>,
}

impl WarmRuns {
    /// Starts the sandbox for `config` under `e` (whose `cgroup` is ignored).
    pub fn start(mut config: Config, e: Enforced) -> Result<WarmRuns, SandboxError> {
        // As in `run_enforced`: this thread and init ask for a short slice.
        super::slice::prefer_short_slice();
        let rlimit_pids = e.enforcement.pids == Mechanism::Rlimit;
        let uid_lease = lease_uid(&mut config, &e)?;
        let gate = e.filter.cloned().map(SeccompGate::new);
        let hooks = hooks_for(&e, gate.as_ref(), rlimit_pids);
        let sandbox = WarmSandbox::start(config, &hooks)?;
        Ok(WarmRuns {
            sandbox,
            enforcement: e.enforcement,
            netns: e.netns,
            rlimit_pids,
            seccomp: e.filter.map(|f| f.name().to_string()),
            gate,
            _uid_lease: uid_lease,
        })
    }

    /// Whether another run can use it.
    pub fn usable(&self) -> bool {
        self.sandbox.usable()
    }

    /// One run with `stdin`, its stdout and stderr into the result, spilled to the
    /// `outputs` files past [`super::sinks::SPILL_AT`] bytes (see `WarmSandbox::run`), in `cgroup`
    /// (a fresh one per run).
    pub fn run(
        &mut self,
        stdin: Option<&Path>,
        outputs: (&Path, &Path),
        cgroup: Option<&dyn Cgroup>,
    ) -> Result<RunResult, SandboxError> {
        let hooks = Hooks {
            cgroup,
            rlimit_memory: self.enforcement.memory == Mechanism::Rlimit,
            rlimit_pids: self.rlimit_pids,
            enforcement: Some(self.enforcement),
            filter: self.gate.as_ref().map(|g| g as &dyn ExecFilter),
            netns: self.netns,
        };
        let mut result = self.sandbox.run(stdin, Some(outputs), &hooks)?;
        result.seccomp = self.seccomp.clone();
        Ok(result)
    }
}
