//! Thin cgroupfs layer: detects the host's cgroup mode (unified v2, hybrid, legacy v1, or
//! none usable), creates one cgroup per run with memory/pids/cpu limits, reads accounting
//! back, kills and removes it. It knows nothing of sandboxes: callers hand it pids.
//!
//! INTERFACE CONTRACT (the sandbox relies on exactly this):
//! - `Manager::new(&ManagerOptions) -> Manager` never fails: it falls back to `Mode::None`
//!   and says why in `Manager::none_reason()`. It also reaps run cgroups whose owning
//!   judgebox process is gone.
//! - `Manager::enforcement(&Limits) -> Enforcement`: the mechanism that will enforce each
//!   limit; an unset limit (`None`) reports `Mechanism::None`.
//! - `Manager::create_run(&Limits) -> Result<RunCgroup, CgroupError>`: an owned run
//!   cgroup (Drop kills and removes it, best effort), which derefs to [`Cgroup`], the one
//!   interface v1 and v2 implement: `clone_into_fd`, `join_fds`, `attach`,
//!   `cpu_usage_ns`, `stats`, `kill`, `reset`, `remove`, `dirs` (see the trait).
//! - Extras: `Manager::parents()`, `Manager::reaped()`, `RunCgroup::name()`, and
//!   [`CLONE_INTO_CGROUP`] for `clone_args.flags`.
//!
//! Files: `detect` (mountinfo and /proc/self/cgroup parsing, mode), `v2` and `v1`
//! (backends), `leaves` (a reused run's fresh memory leaf per run, both backends), `owner`
//! (run names and liveness), `fs` (cgroupfs file helpers), `systemd` (re-executing in a
//! delegated transient scope), `doctor`.

pub(crate) mod detect;
mod doctor;
mod fs;
mod leaves;
mod owner;
mod systemd;
mod v1;
mod v2;

#[cfg(test)]
mod live_tests;

use std::fmt;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use doctor::{ControllerStatus, DoctorReport, Environment};
pub use systemd::{enter_delegated_scope, ScopeError, Scoped, SCOPE_ENV};

/// `CLONE_INTO_CGROUP` for `clone_args.flags` (libc 0.2 declares it as an overflowing
/// `c_int`, so it is spelled out here).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// cfs period used for `cpus` limits (v2 `cpu.max`, v1 `cpu.cfs_period_us`).
const CPU_PERIOD_US: u64 = 100_000;
/// The kernel's minimum cfs quota.
const CPU_MIN_QUOTA_US: u64 = 1_000;
/// Bound on reaping one crashed run at startup (kill wait, then rmdir retries).
const REAP_WAIT: Duration = Duration::from_millis(200);

/// The host's cgroup layout as judgebox uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// cgroup v2 provides the controllers.
    Unified,
    /// v1 controllers plus a cgroup2 mount without usable controllers; v1 is used.
    Hybrid,
    /// v1 only.
    Legacy,
    /// Nothing usable (see `Manager::none_reason`); limits fall back to rlimits.
    None,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Unified => "unified",
            Mode::Hybrid => "hybrid",
            Mode::Legacy => "legacy",
            Mode::None => "none",
        })
    }
}

/// What enforces (or measures) one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    Cgroup2,
    Cgroup1,
    Rlimit,
    None,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::Cgroup2 => "cgroup2",
            Mechanism::Cgroup1 => "cgroup1",
            Mechanism::Rlimit => "rlimit",
            Mechanism::None => "none",
        })
    }
}

/// Per-run limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Bytes of memory (swap is disabled for the run).
    pub memory: Option<u64>,
    /// Maximum number of tasks (processes and threads).
    pub pids: Option<u64>,
    /// CPU bandwidth as a fraction of one CPU (0.2 = 20 ms per 100 ms; 2.0 = two CPUs).
    pub cpus: Option<f64>,
    /// Every task of the run lives in a pid namespace of its own, whose init's exit kills
    /// the rest and stops any fork: v1 then makes no freezer cgroup for the run (7-9% of
    /// a short run's time on a hybrid host) and kills what is left by SIGKILLing each
    /// listed task until none is (`pids.max` bounds how many a fork bomb can add).
    pub pid_namespace: bool,
}

/// Which mechanism enforces each limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Enforcement {
    pub memory: Mechanism,
    pub pids: Mechanism,
    /// Measuring CPU time of the whole process tree (the limit itself is the caller's).
    pub cpu_time: Mechanism,
    pub cpus: Mechanism,
}

/// Accounting read back after (or during) a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Peak memory in bytes (v2 `memory.peak` or sampled `memory.current`; v1
    /// `memory.max_usage_in_bytes`).
    pub memory_peak: Option<u64>,
    /// The kernel OOM killer killed a task of the run (v2 `memory.events` oom_kill, v1
    /// `memory.oom_control` oom_kill).
    pub oom_killed: bool,
    /// CPU time of the whole tree in ns (v2 `cpu.stat` usage_usec, v1 `cpuacct.usage`).
    pub cpu_ns: Option<u64>,
    /// Peak number of tasks (`pids.peak`, kernel >= 6.1 style).
    pub pids_peak: Option<u64>,
    /// How often the memory limit was hit (v1 `memory.failcnt`, v2 `memory.events` max).
    pub memory_failcnt: Option<u64>,
}

/// Where a reused cgroup's CPU time starts (see [`Cgroup::reset`]). Its memory figures
/// need no baseline: a reset gives the next run a fresh memory cgroup.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Baseline {
    pub cpu_ns: u64,
}

impl Baseline {
    /// The run's figures from the cgroup's counters; `None`: a cgroup never reset, whose
    /// counters (`pids.peak` included) are all the run's.
    pub(crate) fn stats(
        b: Option<Baseline>,
        peak: Option<u64>,
        oom_kills: Option<u64>,
        failcnt: Option<u64>,
        cpu_ns: Option<u64>,
        pids_peak: impl FnOnce() -> Option<u64>,
    ) -> Stats {
        Stats {
            memory_peak: peak,
            oom_killed: oom_kills.is_some_and(|n| n > 0),
            cpu_ns,
            // pids.peak cannot be reset: after a reset it covers earlier runs too.
            pids_peak: if b.is_some() { None } else { pids_peak() },
            memory_failcnt: failcnt,
        }
    }
}

/// Options from the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagerOptions {
    /// `--cgroup-root`: a directory inside a cgroup mount to create run cgroups in.
    pub root: Option<PathBuf>,
    /// `--no-cgroup`: do not use cgroups at all.
    pub disabled: bool,
}

/// Errors of this module; messages are lowercase and name the path and step that failed.
#[derive(thiserror::Error, Debug)]
pub enum CgroupError {
    #[error("cgroups unavailable: {0}")]
    Unavailable(String),
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: Op,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot attach pid {pid} to {path}: {source}")]
    Attach {
        pid: i32,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The cgroupfs operation an [`CgroupError::Io`] failed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Open,
    Lock,
    Read,
    Remove,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create cgroup",
            Op::Open => "open",
            Op::Lock => "lock",
            Op::Read => "read",
            Op::Remove => "remove cgroup",
        })
    }
}

/// For `map_err`: the io error of `op` on `path`, as a [`CgroupError`].
pub(crate) fn io_at(op: Op, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// v2 controllers enabled for runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Controllers {
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
}

impl Controllers {
    fn from_list(list: &[String]) -> Controllers {
        let has = |c: &str| list.iter().any(|x| x == c);
        Controllers {
            memory: has("memory"),
            pids: has("pids"),
            cpu: has("cpu"),
        }
    }
}

/// The cfs quota for a `cpus` fraction, at least the kernel minimum of 1 ms.
fn cpu_quota_us(cpus: f64) -> Result<u64, CgroupError> {
    if !(cpus.is_finite() && cpus > 0.0) {
        return Err(CgroupError::InvalidLimit(format!(
            "cpus {cpus} is not a positive number"
        )));
    }
    Ok(((cpus * CPU_PERIOD_US as f64).round() as u64).max(CPU_MIN_QUOTA_US))
}

/// Why cgroups are not usable (drives doctor's fix texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    Disabled,
    NothingMounted,
    ReadOnly,
    NoControllers,
    NotVisible,
    NotRoot,
    NotDelegated,
    BadRoot,
    CannotPrepare,
}

enum Backend {
    V2(v2::Parent),
    V1(v1::Parents),
    None,
}

/// Chooses and prepares where run cgroups go; creates them.
pub struct Manager {
    backend: Backend,
    mode: Mode,
    none_reason: Option<String>,
    problem: Option<Problem>,
    layout: detect::Layout,
    v2_controllers: String,
    facts: v2::HostFacts,
    owner: Option<owner::Owner>,
    notes: Vec<String>,
    reaped: usize,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("mode", &self.mode)
            .field("none_reason", &self.none_reason)
            .field("parents", &self.parents())
            .finish()
    }
}

/// What `Manager::new` read from /proc.
struct HostView {
    layout: detect::Layout,
    v2_controllers: String,
    facts: v2::HostFacts,
}

impl HostView {
    fn read() -> Result<HostView, String> {
        let mountinfo = fs::read_file(Path::new("/proc/self/mountinfo"))
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let cgroup = fs::read_file(Path::new("/proc/self/cgroup"))
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let layout = detect::layout(&mountinfo, &cgroup);
        let v2_controllers = layout
            .v2
            .as_ref()
            .and_then(|v| fs::read_file(&v.mount.mount_point.join("cgroup.controllers")).ok())
            .unwrap_or_default();
        let euid = fs::euid();
        let facts = v2::HostFacts {
            euid,
            systemd_booted: Path::new("/run/systemd/system").is_dir(),
        };
        Ok(HostView {
            layout,
            v2_controllers,
            facts,
        })
    }
}

type Unusable = (Problem, String);

impl Manager {
    /// Detects, picks and prepares parents, reaps stale runs. Never fails: on any problem
    /// the manager is in `Mode::None` and `none_reason()` says why.
    pub fn new(opts: &ManagerOptions) -> Manager {
        match HostView::read() {
            Ok(view) => Manager::from_view(view, opts),
            Err(reason) => Manager::unusable(
                HostView {
                    layout: detect::Layout::default(),
                    v2_controllers: String::new(),
                    facts: v2::HostFacts {
                        euid: u32::MAX,
                        systemd_booted: false,
                    },
                },
                (Problem::NothingMounted, reason),
            ),
        }
    }

    /// As `new`, from a view of the host read moments ago (`Scoped::manager`).
    fn from_view(view: HostView, opts: &ManagerOptions) -> Manager {
        let mut m = Manager::with_view(view, opts);
        if !matches!(m.backend, Backend::None) {
            m.reap();
        }
        m
    }

    fn with_view(view: HostView, opts: &ManagerOptions) -> Manager {
        if opts.disabled {
            let why = (Problem::Disabled, "disabled by --no-cgroup".to_string());
            return Manager::unusable(view, why);
        }
        let Some(owner) = owner::Owner::current() else {
            let why = (
                Problem::CannotPrepare,
                "cannot read own start time from /proc/self/stat".to_string(),
            );
            return Manager::unusable(view, why);
        };
        match Manager::backend(&view, opts.root.as_deref()) {
            Ok((backend, notes)) => {
                let mode = mode_of(&backend, &view.layout);
                Manager {
                    backend,
                    mode,
                    none_reason: None,
                    problem: None,
                    layout: view.layout,
                    v2_controllers: view.v2_controllers,
                    facts: view.facts,
                    owner: Some(owner),
                    notes,
                    reaped: 0,
                }
            }
            Err(why) => Manager::unusable(view, why),
        }
    }

    fn unusable(view: HostView, (problem, reason): Unusable) -> Manager {
        Manager {
            backend: Backend::None,
            mode: Mode::None,
            none_reason: Some(reason),
            problem: Some(problem),
            layout: view.layout,
            v2_controllers: view.v2_controllers,
            facts: view.facts,
            owner: None,
            notes: Vec::new(),
            reaped: 0,
        }
    }

    /// Picks the backend: `--cgroup-root` decides by which mount holds it, else detection.
    fn backend(view: &HostView, root: Option<&Path>) -> Result<(Backend, Vec<String>), Unusable> {
        if let Some(root) = root {
            return Manager::explicit_backend(view, root);
        }
        let detection = detect::classify(&view.layout, &view.v2_controllers);
        match detection.mode {
            Mode::Unified => Manager::v2_backend(view, None),
            Mode::Hybrid | Mode::Legacy => Manager::v1_backend(view, None),
            Mode::None => Err((
                detection.problem.unwrap_or(Problem::NothingMounted),
                detection.reason.unwrap_or_default(),
            )),
        }
    }

    fn explicit_backend(view: &HostView, root: &Path) -> Result<(Backend, Vec<String>), Unusable> {
        let bad = |why: String| {
            (
                Problem::BadRoot,
                format!("--cgroup-root {}: {why}", root.display()),
            )
        };
        if !root.is_absolute() {
            return Err(bad("not an absolute path".into()));
        }
        if let Some(v2) = &view.layout.v2 {
            if root.starts_with(&v2.mount.mount_point) {
                return Manager::v2_backend(view, Some(root));
            }
        }
        for h in &view.layout.v1 {
            if let Ok(rel) = root.strip_prefix(&h.mount.mount_point) {
                return Manager::v1_backend(view, Some(rel));
            }
        }
        Err(bad(
            "not below a cgroup mount point (see /proc/self/mountinfo)".into(),
        ))
    }

    fn v2_backend(
        view: &HostView,
        root: Option<&Path>,
    ) -> Result<(Backend, Vec<String>), Unusable> {
        let v2 = view
            .layout
            .v2
            .as_ref()
            .ok_or((Problem::NothingMounted, "no cgroup2 mount".to_string()))?;
        // The transient scope judgebox re-executed itself into is delegated by construction
        // (it asked for Delegate=yes), even where systemd < 251 sets no xattr.
        let scope = systemd::scope_from_env();
        let marked =
            |dir: &Path| v2::xattr_delegated(dir) || systemd::is_own_scope(dir, scope.as_deref());
        let plan = v2::plan_parent(v2, root, view.facts, &marked, &|dir| {
            detect::is_real_root(&v2.mount, dir)
        })?;
        let parent = v2::prepare(&plan).map_err(|e| {
            (
                problem_of_io(&e),
                format!("cannot prepare {}: {e}", plan.dir.display()),
            )
        })?;
        let mut notes = parent.notes.clone();
        if let Some(unit) = scope.filter(|u| systemd::is_own_scope(&parent.dir, Some(u))) {
            notes.push(format!(
                "judgebox obtained the delegated transient scope {unit} from systemd (own cgroup was not delegated)"
            ));
        }
        Ok((Backend::V2(parent), notes))
    }

    fn v1_backend(view: &HostView, rel: Option<&Path>) -> Result<(Backend, Vec<String>), Unusable> {
        let planned = v1::plan(&view.layout, rel);
        if planned.is_empty() {
            return Err((
                Problem::NotVisible,
                "no writable cgroup v1 hierarchy for memory, pids, cpu, cpuacct or freezer shows own cgroup".to_string(),
            ));
        }
        let parents = v1::prepare(planned)
            .map_err(|e| (problem_of_io(&e), format!("cannot prepare v1 parents: {e}")))?;
        let notes = parents.notes.clone();
        Ok((Backend::V1(parents), notes))
    }

    /// The effective mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Why cgroups are not used (`Mode::None` only).
    pub fn none_reason(&self) -> Option<&str> {
        self.none_reason.as_deref()
    }

    /// Directories run cgroups are created in (one on v2, one per hierarchy on v1).
    pub fn parents(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V2(p) => vec![p.dir.clone()],
            Backend::V1(p) => p.hierarchies.iter().map(|h| h.parent.clone()).collect(),
            Backend::None => Vec::new(),
        }
    }

    /// Number of crashed runs' cgroups removed by `new`.
    pub fn reaped(&self) -> usize {
        self.reaped
    }

    /// What will enforce each limit. An unset limit reports `none`; `cpu_time` is what
    /// measures the tree's CPU time (cgroup) or limits it per process (rlimit).
    pub fn enforcement(&self, limits: &Limits) -> Enforcement {
        let (memory, pids, cpu_time, cpus) = match &self.backend {
            Backend::V2(p) => {
                let m = |on: bool, fallback| if on { Mechanism::Cgroup2 } else { fallback };
                (
                    m(p.enabled.memory, Mechanism::Rlimit),
                    m(p.enabled.pids, Mechanism::Rlimit),
                    Mechanism::Cgroup2,
                    m(p.enabled.cpu, Mechanism::None),
                )
            }
            Backend::V1(p) => {
                let r = p.roles();
                let m = |on: bool, fallback| if on { Mechanism::Cgroup1 } else { fallback };
                (
                    m(r.memory, Mechanism::Rlimit),
                    m(r.pids, Mechanism::Rlimit),
                    m(r.cpuacct, Mechanism::Rlimit),
                    m(r.cpu, Mechanism::None),
                )
            }
            Backend::None => (
                Mechanism::Rlimit,
                Mechanism::Rlimit,
                Mechanism::Rlimit,
                Mechanism::None,
            ),
        };
        let set = |limit: bool, mech| if limit { mech } else { Mechanism::None };
        Enforcement {
            memory: set(limits.memory.is_some(), memory),
            pids: set(limits.pids.is_some(), pids),
            cpu_time,
            cpus: set(limits.cpus.is_some(), cpus),
        }
    }

    /// Creates a fresh run cgroup with `limits` applied.
    pub fn create_run(&self, limits: &Limits) -> Result<RunCgroup, CgroupError> {
        if let Some(cpus) = limits.cpus {
            cpu_quota_us(cpus)?;
        }
        let unavailable = || {
            CgroupError::Unavailable(
                self.none_reason
                    .clone()
                    .unwrap_or_else(|| "no cgroup backend".into()),
            )
        };
        let owner = self.owner.as_ref().ok_or_else(unavailable)?;
        let name = owner.next_run_name();
        let inner: Box<dyn Cgroup> = match &self.backend {
            Backend::V2(p) => Box::new(v2::Run::create(p, &name, limits)?),
            Backend::V1(p) => Box::new(v1::Run::create(p, &name, limits)?),
            Backend::None => return Err(unavailable()),
        };
        Ok(RunCgroup {
            inner,
            name,
            removed: false,
        })
    }

    /// Data for `judgebox doctor`; tries to create and remove one run cgroup.
    pub fn doctor(&self) -> DoctorReport {
        doctor::report(self)
    }

    /// Removes run cgroups whose owner process is gone (crashed or SIGKILLed judgebox).
    /// Live runs of other judgebox processes are never touched: their owner pid with the
    /// same start time exists, or their directory lock is held.
    fn reap(&mut self) {
        let Some(me) = self.owner else {
            return;
        };
        let mut stale: Vec<String> = Vec::new();
        // A run's first directory is made first and removed last (v1), so listing the
        // first parent finds every leftover run.
        for parent in self.parents().into_iter().take(1) {
            if fs::no_subdirs(&parent) {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
                let Some(o) = owner::parse_run_name(&name) else {
                    continue;
                };
                if o != me && !o.is_alive() && !stale.contains(&name) {
                    stale.push(name);
                }
            }
        }
        for name in stale {
            match self.reap_one(&name) {
                Ok(true) => self.reaped += 1,
                Ok(false) => {}
                Err(e) => self
                    .notes
                    .push(format!("cannot reap stale run {name}: {e}")),
            }
        }
    }

    /// Reaps one stale run unless its lock shows it is alive (e.g. an owner in another
    /// pid namespace). Returns whether it was removed.
    fn reap_one(&self, name: &str) -> Result<bool, CgroupError> {
        let first = self
            .parents()
            .into_iter()
            .map(|p| p.join(name))
            .find(|d| d.exists());
        let Some(first) = first else {
            return Ok(false);
        };
        let lock = match fs::open_dir(&first) {
            Ok(f) => f,
            Err(e) if fs::is_missing(&e) => return Ok(false),
            Err(e) => return Err(io_at(Op::Open, &first)(e)),
        };
        if !fs::try_lock(&lock).map_err(io_at(Op::Lock, &first))? {
            return Ok(false);
        }
        match &self.backend {
            Backend::V2(_) => {
                v2::kill_dir(&first, REAP_WAIT);
                v2::remove_dir(&first, REAP_WAIT)?;
            }
            Backend::V1(p) => {
                let run = v1::Run::existing(p, name);
                run.kill_within(REAP_WAIT);
                run.remove_within(REAP_WAIT)?;
            }
            Backend::None => return Ok(false),
        }
        Ok(true)
    }
}

fn mode_of(backend: &Backend, layout: &detect::Layout) -> Mode {
    match backend {
        Backend::V2(_) if layout.v1_for("memory").is_some() => Mode::Hybrid,
        Backend::V2(_) => Mode::Unified,
        Backend::V1(_) if layout.v2.is_some() => Mode::Hybrid,
        Backend::V1(_) => Mode::Legacy,
        Backend::None => Mode::None,
    }
}

fn problem_of_io(e: &CgroupError) -> Problem {
    let source = match e {
        CgroupError::Io { source, .. }
        | CgroupError::Write { source, .. }
        | CgroupError::Attach { source, .. } => Some(source),
        _ => None,
    };
    match source.and_then(|s| s.raw_os_error()) {
        Some(libc::EROFS) => Problem::ReadOnly,
        Some(libc::EACCES) | Some(libc::EPERM) => Problem::NotRoot,
        _ => Problem::CannotPrepare,
    }
}

/// One run's cgroup, whichever version backs it (as youki's `CgroupManager`): v1 and v2
/// implement it, and so can a wrapper (e.g. one that times the calls). All fds it hands
/// out are `O_CLOEXEC`; a child should still close inherited fds before exec.
pub trait Cgroup: Send + Sync {
    /// v2: an `O_DIRECTORY` fd of the run cgroup for clone3 `CLONE_INTO_CGROUP` (valid
    /// while the cgroup lives; it also carries the run's flock, the reaper's liveness
    /// check, so the child should not keep it past exec). v1: `None`.
    fn clone_into_fd(&self) -> Option<RawFd>;
    /// v1: `tasks` fds a single-threaded child writes "0" to, to join the run itself (far
    /// cheaper than `attach`). v2: empty (clone3 places the child).
    fn join_fds(&self) -> Vec<RawFd>;
    /// Moves `pid` into the run (every hierarchy on v1) through `cgroup.procs`.
    fn attach(&self, pid: i32) -> Result<(), CgroupError>;
    /// CPU time of the whole tree so far, in ns; cheap (pread on a kept-open file), so
    /// poll it while the run is live (v2 without `memory.peak` also samples memory here).
    fn cpu_usage_ns(&self) -> Option<u64>;
    /// Accounting, read once the run is over (or during it).
    fn stats(&self) -> Stats;
    /// Kills every task in the run and waits (bounded) until it is empty.
    fn kill(&self);
    /// Starts the accounting over for another run in this cgroup (a warm sandbox's next
    /// test, same limits). The memory part is a fresh memory cgroup: a reused one keeps
    /// the kernel's per-CPU pre-charged stock (up to 64 pages per CPU), which the next
    /// run would use without raising the counters, so its peak would read low, down to 0.
    /// CPU time counts from here; the peak task count is no longer reported (`pids.peak`
    /// cannot be reset). `Ok(false)`: a task is left, or the memory cgroup cannot be
    /// renewed on its own (v1 with memory as the only hierarchy); the caller takes a
    /// fresh cgroup instead. After an error the run is only fit for removal.
    fn reset(&mut self) -> Result<bool, CgroupError>;
    /// Readies what the next `reset` needs (the next memory leaf; removes used ones), so
    /// that it costs little. Call it while a run is under way: the work overlaps the
    /// program's. Errors are left for `reset` to report.
    fn prepare_reset(&self) {}
    /// Removes the run's directories (EBUSY: kills leftovers and retries briefly).
    fn remove(&self) -> Result<(), CgroupError>;
    /// The run's directories (one per hierarchy on v1).
    fn dirs(&self) -> Vec<PathBuf>;
}

/// One run's cgroup, owned: Drop kills every task in it and removes it (best effort);
/// call `remove` to see errors. Derefs to the [`Cgroup`] interface.
pub struct RunCgroup {
    inner: Box<dyn Cgroup>,
    name: String,
    removed: bool,
}

impl fmt::Debug for RunCgroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunCgroup")
            .field("name", &self.name)
            .field("dirs", &self.dirs())
            .finish()
    }
}

impl std::ops::Deref for RunCgroup {
    type Target = dyn Cgroup;
    fn deref(&self) -> &(dyn Cgroup + 'static) {
        &*self.inner
    }
}

impl RunCgroup {
    /// See [`Cgroup::reset`].
    pub fn reset(&mut self) -> Result<bool, CgroupError> {
        self.inner.reset()
    }

    /// `run-<pid>-<starttime>-<seq>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Removes the run cgroup everywhere, reporting errors (Drop only tries).
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        self.inner.remove()
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        if !self.removed {
            self.inner.kill();
            let _ = self.inner.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_serde_names() {
        assert_eq!(Mode::Hybrid.to_string(), "hybrid");
        assert_eq!(Mechanism::Cgroup2.to_string(), "cgroup2");
        let e = Enforcement {
            memory: Mechanism::Cgroup1,
            pids: Mechanism::Rlimit,
            cpu_time: Mechanism::Cgroup2,
            cpus: Mechanism::None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"memory":"cgroup1","pids":"rlimit","cpu_time":"cgroup2","cpus":"none"}"#
        );
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Manager>();
        check::<RunCgroup>();
    }

    #[test]
    fn cpu_quota() {
        assert_eq!(cpu_quota_us(0.2).unwrap(), 20_000);
        assert_eq!(cpu_quota_us(2.0).unwrap(), 200_000);
        assert_eq!(cpu_quota_us(0.001).unwrap(), 1_000);
        assert!(cpu_quota_us(0.0).is_err());
        assert!(cpu_quota_us(f64::NAN).is_err());
        assert!(cpu_quota_us(-1.0)
            .unwrap_err()
            .to_string()
            .starts_with("invalid limit: cpus"));
    }

    #[test]
    fn disabled_manager_is_none_with_rlimits() {
        let m = Manager::new(&ManagerOptions {
            root: None,
            disabled: true,
        });
        assert_eq!(m.mode(), Mode::None);
        assert_eq!(m.none_reason(), Some("disabled by --no-cgroup"));
        let limits = Limits {
            memory: Some(1),
            pids: Some(1),
            cpus: Some(1.0),
            pid_namespace: false,
        };
        let e = m.enforcement(&limits);
        assert_eq!(e.memory, Mechanism::Rlimit);
        assert_eq!(e.pids, Mechanism::Rlimit);
        assert_eq!(e.cpu_time, Mechanism::Rlimit);
        assert_eq!(e.cpus, Mechanism::None);
        assert_eq!(m.enforcement(&Limits::default()).memory, Mechanism::None);
        let err = m.create_run(&limits).unwrap_err().to_string();
        assert_eq!(err, "cgroups unavailable: disabled by --no-cgroup");
    }

    fn manager_with(backend: Backend) -> Manager {
        Manager {
            backend,
            mode: Mode::Unified,
            none_reason: None,
            problem: None,
            layout: detect::Layout::default(),
            v2_controllers: String::new(),
            facts: v2::HostFacts {
                euid: 0,
                systemd_booted: false,
            },
            owner: None,
            notes: Vec::new(),
            reaped: 0,
        }
    }

    #[test]
    fn enforcement_follows_enabled_controllers() {
        let all = Limits {
            memory: Some(1 << 20),
            pids: Some(8),
            cpus: Some(0.5),
            pid_namespace: false,
        };
        let m = manager_with(Backend::V2(v2::Parent {
            dir: PathBuf::from("/sys/fs/cgroup/judgebox"),
            source: v2::ParentSource::RootChild,
            enabled: Controllers {
                memory: true,
                pids: false,
                cpu: false,
            },
            available: Vec::new(),
            notes: Vec::new(),
        }));
        let e = m.enforcement(&all);
        assert_eq!(
            (e.memory, e.pids, e.cpu_time, e.cpus),
            (
                Mechanism::Cgroup2,
                Mechanism::Rlimit,
                Mechanism::Cgroup2,
                Mechanism::None
            )
        );
        let m = manager_with(Backend::V1(v1::Parents {
            hierarchies: vec![v1::Hierarchy {
                mount_point: PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                parent: PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/judgebox"),
                roles: v1::Roles {
                    cpu: true,
                    cpuacct: true,
                    ..Default::default()
                },
            }],
            notes: Vec::new(),
            swap: false,
        }));
        let e = m.enforcement(&all);
        assert_eq!(
            (e.memory, e.pids, e.cpu_time, e.cpus),
            (
                Mechanism::Rlimit,
                Mechanism::Rlimit,
                Mechanism::Cgroup1,
                Mechanism::Cgroup1
            )
        );
        let e = m.enforcement(&Limits::default());
        assert_eq!((e.memory, e.cpus), (Mechanism::None, Mechanism::None));
    }

    #[test]
    fn relative_root_is_rejected() {
        let m = Manager::new(&ManagerOptions {
            root: Some(PathBuf::from("relative/dir")),
            disabled: false,
        });
        assert_eq!(m.mode(), Mode::None);
        assert!(m
            .none_reason()
            .unwrap()
            .contains("--cgroup-root relative/dir"));
    }
}
