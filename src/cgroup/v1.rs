//! cgroup v1 backend (legacy and hybrid hosts): one `judgebox` parent below the process's
//! own cgroup in each of the memory, pids, cpu, cpuacct and freezer hierarchies, and per
//! run one directory in each the run needs, with v1 limit, accounting and (for a run
//! without a pid namespace of its own) freezer-based kill files.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::detect::{Layout, WANTED_V1};
use super::fs;
use super::leaves::{self, Leaf, Leaves};
use super::{cpu_quota_us, io_at, Baseline, Cgroup, CgroupError, Limits, Op, Stats};

/// Directory created below the process's own cgroup in every hierarchy.
pub const PARENT_NAME: &str = "judgebox";
const KILL_WAIT: Duration = Duration::from_secs(2);
const FREEZE_WAIT: Duration = Duration::from_millis(100);
const REMOVE_WAIT: Duration = Duration::from_millis(500);

/// What judgebox uses a hierarchy for (a co-mounted "cpu,cpuacct" has two roles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Roles {
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
    pub cpuacct: bool,
    pub freezer: bool,
}

impl Roles {
    fn set(&mut self, controller: &str) {
        match controller {
            "memory" => self.memory = true,
            "pids" => self.pids = true,
            "cpu" => self.cpu = true,
            "cpuacct" => self.cpuacct = true,
            "freezer" => self.freezer = true,
            _ => {}
        }
    }

    /// Whether a run needs its own cgroup in a hierarchy with these roles: a `cpu`-only
    /// hierarchy does nothing without a `--cpus` limit, a `freezer`-only one nothing for
    /// a run whose pid namespace kills its tasks.
    pub fn needed(self, limits: &Limits) -> bool {
        self.memory
            || self.pids
            || self.cpuacct
            || (self.freezer && !limits.pid_namespace)
            || (self.cpu && limits.cpus.is_some())
    }

    fn union(self, o: Roles) -> Roles {
        Roles {
            memory: self.memory || o.memory,
            pids: self.pids || o.pids,
            cpu: self.cpu || o.cpu,
            cpuacct: self.cpuacct || o.cpuacct,
            freezer: self.freezer || o.freezer,
        }
    }
}

/// One hierarchy judgebox creates run cgroups in.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// Parent of the run cgroups in this hierarchy.
    pub parent: PathBuf,
    pub roles: Roles,
}

/// The prepared v1 parents.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parents {
    pub hierarchies: Vec<Hierarchy>,
    pub notes: Vec<String>,
    /// Swap is active: runs also get `memory.memsw.limit_in_bytes`.
    pub swap: bool,
}

impl Parents {
    /// Union of the roles of all hierarchies.
    pub fn roles(&self) -> Roles {
        self.hierarchies
            .iter()
            .fold(Roles::default(), |acc, h| acc.union(h.roles))
    }
}

/// Plans the parents: `rel` (from `--cgroup-root`) inside every hierarchy, else
/// `<own cgroup>/judgebox`. Read-only or invisible hierarchies are skipped.
pub fn plan(layout: &Layout, rel: Option<&Path>) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for controller in WANTED_V1 {
        let Some(h) = layout.v1_for(controller) else {
            continue;
        };
        let Some(own) = h.own_dir.as_ref().filter(|_| !h.mount.read_only) else {
            continue;
        };
        if let Some(existing) = out
            .iter_mut()
            .find(|x| x.mount_point == h.mount.mount_point)
        {
            existing.roles.set(controller);
            continue;
        }
        let parent = match rel {
            Some(rel) => h.mount.mount_point.join(rel),
            None => own.join(PARENT_NAME),
        };
        let mut roles = Roles::default();
        roles.set(controller);
        out.push(Hierarchy {
            mount_point: h.mount.mount_point.clone(),
            parent,
            roles,
        });
    }
    // The memory hierarchy goes last: a warm run renews its memory directory between runs
    // (see `reset`), so the run's lock and the reaper's listing must live in another one.
    out.sort_by_key(|h| h.roles.memory);
    out
}

/// Creates the parent directories (EEXIST is fine; concurrent starts race harmlessly).
/// Hierarchies whose parent cannot be created are dropped with a note.
pub fn prepare(planned: Vec<Hierarchy>) -> Result<Parents, CgroupError> {
    let mut parents = Parents {
        swap: swap_active(),
        ..Parents::default()
    };
    let mut first_err = None;
    for h in planned {
        match ensure_dir(&h.parent) {
            Ok(()) => parents.hierarchies.push(h),
            Err(source) => {
                parents.notes.push(format!(
                    "cannot create cgroup {}: {source}",
                    h.parent.display()
                ));
                first_err.get_or_insert(io_at(Op::Create, &h.parent)(source));
            }
        }
    }
    match (parents.hierarchies.is_empty(), first_err) {
        (true, Some(e)) => Err(e),
        _ => Ok(parents),
    }
}

/// One run's directories, one per hierarchy.
#[derive(Debug)]
pub struct Run {
    dirs: Vec<(PathBuf, Roles)>,
    /// The first hierarchy's run directory, flock'd while the run lives.
    _lock: Option<File>,
    cpuacct: Option<File>,
    /// Swap is active, so `memory.memsw.*` is set and counted too.
    swap: bool,
    /// `tasks` of every hierarchy, open for writing: the sandbox's init writes "0" to each
    /// to move itself (see `join_fds`).
    tasks: Vec<File>,
    /// The accounting files read after every run, kept open (a path lookup in cgroupfs
    /// costs more than the read).
    counters: Counters,
    /// Written into each memory leaf.
    limits: Limits,
    /// After the first reset, the memory leaf the run's processes join in the memory
    /// hierarchy (see `reset`).
    leaves: Leaves<MemoryLeaf>,
    /// Set by `reset`: CPU time counts from there.
    baseline: Option<Baseline>,
}

/// A memory cgroup below the run's memory directory, for one run after a reset.
#[derive(Debug)]
struct MemoryLeaf {
    dir: PathBuf,
    tasks: File,
    files: MemoryFiles,
}

impl Leaf for MemoryLeaf {
    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl MemoryLeaf {
    fn make(dir: PathBuf, limits: &Limits, swap: bool) -> Result<MemoryLeaf, CgroupError> {
        let memory = Roles {
            memory: true,
            ..Roles::default()
        };
        leaves::make(dir, |dir| {
            configure(dir, memory, limits, swap)?;
            Ok(MemoryLeaf {
                tasks: open_tasks(dir).map_err(io_at(Op::Open, &dir.join("tasks")))?,
                files: MemoryFiles::open(dir, swap),
                dir: dir.to_path_buf(),
            })
        })
    }
}

/// A run's accounting files, open (each `None` when its controller is not there).
#[derive(Debug, Default)]
struct Counters {
    /// The first hierarchy's `cgroup.procs`: whether any task is left.
    procs: Option<File>,
    /// Those of the run's memory directory (its leaf's replace them after a reset).
    memory: MemoryFiles,
}

/// A memory cgroup's accounting files.
#[derive(Debug, Default)]
struct MemoryFiles {
    /// `memory.max_usage_in_bytes`: the peak.
    max_usage: Option<File>,
    oom_control: Option<File>,
    failcnt: Option<File>,
    memsw_failcnt: Option<File>,
}

impl Counters {
    fn open(dirs: &[(PathBuf, Roles)], swap: bool) -> Counters {
        Counters {
            procs: dirs
                .first()
                .and_then(|(d, _)| File::open(d.join("cgroup.procs")).ok()),
            memory: dirs
                .iter()
                .find(|(_, r)| r.memory)
                .map(|(dir, _)| MemoryFiles::open(dir, swap))
                .unwrap_or_default(),
        }
    }

    /// True when no task is left; unknown (no file) counts as not empty.
    fn empty(&self) -> bool {
        read(&self.procs).is_some_and(|t| fs::parse_pids(&t).is_empty())
    }
}

impl MemoryFiles {
    fn open(dir: &Path, swap: bool) -> MemoryFiles {
        let open = |name: &str| File::open(dir.join(name)).ok();
        MemoryFiles {
            max_usage: open("memory.max_usage_in_bytes"),
            oom_control: open("memory.oom_control"),
            failcnt: open("memory.failcnt"),
            memsw_failcnt: if swap {
                open("memory.memsw.failcnt")
            } else {
                None
            },
        }
    }

    fn oom_kills(&self) -> Option<u64> {
        read(&self.oom_control).and_then(|t| fs::keyed_u64(&t, "oom_kill"))
    }

    /// How often the limit was hit: `memory.failcnt` plus, with swap, `memory.memsw.failcnt`
    /// (the memory+swap counter, set to the same limit, is the one that fails).
    fn failcnt(&self) -> Option<u64> {
        let mem = read_u64(&self.failcnt)?;
        Some(mem + read_u64(&self.memsw_failcnt).unwrap_or(0))
    }
}

fn read(file: &Option<File>) -> Option<String> {
    fs::pread_string(file.as_ref()?).ok()
}

fn read_u64(file: &Option<File>) -> Option<u64> {
    read(file).and_then(|t| fs::parse_u64(&t))
}

impl Run {
    /// mkdir the run in every hierarchy, lock it, write the limits.
    pub fn create(parents: &Parents, name: &str, limits: &Limits) -> Result<Run, CgroupError> {
        let mut run = Run {
            dirs: Vec::with_capacity(parents.hierarchies.len()),
            _lock: None,
            cpuacct: None,
            tasks: Vec::with_capacity(parents.hierarchies.len()),
            swap: parents.swap,
            counters: Counters::default(),
            limits: limits.clone(),
            leaves: Leaves::new(),
            baseline: None,
        };
        let result = run.build(parents, name, limits);
        match result {
            Ok(()) => Ok(run),
            Err(e) => {
                let _ = run.remove_within(REMOVE_WAIT);
                Err(e)
            }
        }
    }

    fn build(&mut self, parents: &Parents, name: &str, limits: &Limits) -> Result<(), CgroupError> {
        for h in parents
            .hierarchies
            .iter()
            .filter(|h| h.roles.needed(limits))
        {
            let dir = h.parent.join(name);
            std::fs::DirBuilder::new()
                .create(&dir)
                .map_err(io_at(Op::Create, &dir))?;
            self.dirs.push((dir.clone(), h.roles));
            if self._lock.is_none() {
                self._lock = Some(lock(&dir)?);
            }
        }
        for (dir, roles) in &self.dirs {
            configure(dir, *roles, limits, parents.swap)?;
            if roles.cpuacct {
                self.cpuacct = File::open(dir.join("cpuacct.usage")).ok();
            }
        }
        self.tasks = self.open_tasks().unwrap_or_default();
        self.counters = Counters::open(&self.dirs, self.swap);
        Ok(())
    }

    /// Every hierarchy's `tasks`, or None if one cannot be opened (then `attach` is used).
    fn open_tasks(&self) -> Option<Vec<File>> {
        self.dirs
            .iter()
            .map(|(dir, _)| open_tasks(dir).ok())
            .collect()
    }

    /// The run's memory directory and its index in `dirs`.
    fn memory_dir(&self) -> Option<(usize, &Path)> {
        let i = self.dirs.iter().position(|(_, r)| r.memory)?;
        Some((i, self.dirs[i].0.as_path()))
    }

    /// The memory files of the cgroup the run's processes are in.
    fn memory_files(&self) -> &MemoryFiles {
        self.leaves
            .current()
            .map_or(&self.counters.memory, |l| &l.files)
    }

    /// Puts a fresh memory leaf in use: its `tasks` replaces the memory directory's among
    /// the join fds. The first time, the memory directory's own limit is lifted (memory
    /// and swap, in the order the kernel accepts), so only the leaf's applies.
    fn advance_memory_leaf(&mut self, i: usize, dir: &Path) -> Result<(), CgroupError> {
        if self.leaves.current().is_none() && self.limits.memory.is_some() {
            if self.swap {
                match fs::write_value(dir, "memory.memsw.limit_in_bytes", "-1") {
                    Err(CgroupError::Write { source, .. }) if fs::is_missing(&source) => {}
                    other => other?,
                }
            }
            fs::write_value(dir, "memory.limit_in_bytes", "-1")?;
        }
        let (limits, swap) = (&self.limits, self.swap);
        let leaf = self
            .leaves
            .advance(dir, |d| MemoryLeaf::make(d, limits, swap))?;
        let tasks = leaf.tasks.try_clone().map_err(io_at(Op::Open, &leaf.dir))?;
        if let Some(slot) = self.tasks.get_mut(i) {
            *slot = tasks;
        }
        Ok(())
    }

    /// A handle on an existing run (for reaping a crashed owner's leftovers).
    pub fn existing(parents: &Parents, name: &str) -> Run {
        let dirs = parents
            .hierarchies
            .iter()
            .map(|h| (h.parent.join(name), h.roles))
            .filter(|(d, _)| d.exists())
            .collect();
        Run {
            dirs,
            _lock: None,
            cpuacct: None,
            tasks: Vec::new(),
            swap: true,
            counters: Counters::default(),
            limits: Limits::default(),
            leaves: Leaves::new(),
            baseline: None,
        }
    }

    fn raw_cpu_ns(&self) -> Option<u64> {
        fs::parse_u64(&fs::pread_string(self.cpuacct.as_ref()?).ok()?)
    }

    fn dir_for(&self, pick: impl Fn(&Roles) -> bool) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(_, r)| pick(r))
            .map(|(d, _)| d.as_path())
    }

    pub fn kill_within(&self, wait: Duration) -> bool {
        let Some(primary) = self.dirs.first().map(|(d, _)| d.as_path()) else {
            return true;
        };
        // One pread on the kept `cgroup.procs` in the usual case (nothing left).
        if self.counters.empty() || pids_in(primary).is_empty() {
            return true;
        }
        if let Some(freezer) = self.dir_for(|r| r.freezer) {
            freeze_kill_thaw(freezer);
        }
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_micros(50);
        loop {
            let pids: Vec<i32> = self.dirs.iter().flat_map(|(d, _)| pids_in(d)).collect();
            if pids.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            pids.into_iter().for_each(fs::sigkill);
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// The first directory (the one the run's lock lives in) goes last, so a leftover in
    /// any hierarchy implies one in the first: the reaper lists only that parent.
    /// A directory that cannot be removed (a parent turned read-only) keeps the first one
    /// too: removing it anyway would leave a run no reaper ever finds.
    pub fn remove_within(&self, wait: Duration) -> Result<(), CgroupError> {
        let mut first_err = self
            .leaves
            .remove_all(|d| fs::remove_dir(d, wait, &kill_left))
            .err();
        for (i, (dir, _)) in self.dirs.iter().enumerate().rev() {
            if i == 0 && first_err.is_some() {
                break;
            }
            if let Err(e) = fs::remove_dir(dir, wait, &kill_left) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Cgroup for Run {
    fn clone_into_fd(&self) -> Option<RawFd> {
        None
    }

    /// Write-only fds of every hierarchy's `tasks` file (empty if unavailable). A
    /// single-threaded process that writes "0" to each joins the run without the kernel's
    /// global threadgroup lock, whose RCU grace period makes a `cgroup.procs` write take
    /// 5-20 ms on an idle host.
    fn join_fds(&self) -> Vec<RawFd> {
        self.tasks.iter().map(|f| f.as_raw_fd()).collect()
    }

    /// Writes `pid` into `cgroup.procs` of every hierarchy (of the memory leaf in the
    /// memory one, once there is one).
    fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        let leaf = self.leaves.current();
        self.dirs.iter().try_for_each(|(dir, roles)| match leaf {
            Some(leaf) if roles.memory => fs::attach(&leaf.dir, pid),
            _ => fs::attach(dir, pid),
        })
    }

    /// `cpuacct.usage` (ns) since the reset, re-read with pread on a kept-open file.
    fn cpu_usage_ns(&self) -> Option<u64> {
        let base = self.baseline.map_or(0, |b| b.cpu_ns);
        self.raw_cpu_ns().map(|ns| ns.saturating_sub(base))
    }

    fn stats(&self) -> Stats {
        let pids_peak = || {
            let dir = self.dir_for(|r| r.pids)?;
            fs::read_file(&dir.join("pids.peak"))
                .ok()
                .and_then(|t| fs::parse_u64(&t))
        };
        let memory = self.memory_files();
        Baseline::stats(
            self.baseline,
            read_u64(&memory.max_usage),
            memory.oom_kills(),
            memory.failcnt(),
            self.cpu_usage_ns(),
            pids_peak,
        )
    }

    /// Freezes, SIGKILLs every task, thaws, and waits until the cgroup is empty (bounded).
    /// One read when it is already empty.
    fn kill(&self) {
        self.kill_within(KILL_WAIT);
    }

    /// Puts a fresh memory leaf in use (see [`Cgroup::reset`]) and notes where CPU time
    /// stands. Not when the memory hierarchy is the first one, which holds the run's lock
    /// (`plan` puts it last; it is first only when it is the only one).
    fn reset(&mut self) -> Result<bool, CgroupError> {
        if !self.counters.empty() {
            return Ok(false);
        }
        match self.memory_dir().map(|(i, d)| (i, d.to_path_buf())) {
            Some((0, _)) => return Ok(false),
            Some((i, dir)) => self.advance_memory_leaf(i, &dir)?,
            None => {}
        }
        self.baseline = Some(Baseline {
            cpu_ns: self.raw_cpu_ns().unwrap_or(0),
        });
        Ok(true)
    }

    fn prepare_reset(&self) {
        if let Some((_, dir)) = self.memory_dir() {
            let (limits, swap) = (&self.limits, self.swap);
            self.leaves.prepare(
                dir,
                |d| MemoryLeaf::make(d, limits, swap),
                |d| fs::remove_dir(d, REMOVE_WAIT, &kill_left),
            );
        }
    }

    /// rmdir in every hierarchy; EBUSY is retried briefly after killing what is left.
    fn remove(&self) -> Result<(), CgroupError> {
        self.remove_within(REMOVE_WAIT)
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(d, _)| d.clone()).collect()
    }
}

/// One mkdir when the parent exists already (the usual case; create_dir_all would add a
/// stat), the whole chain otherwise.
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    match fs::mkdir(dir) {
        Ok(_) => Ok(()),
        Err(e) if fs::is_missing(&e) => std::fs::create_dir_all(dir),
        Err(e) => Err(e),
    }
}

/// `dir/tasks`, open for writing.
fn open_tasks(dir: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).open(dir.join("tasks"))
}

/// Opens and flocks a run directory (the owner holds it for the run's lifetime).
fn lock(dir: &Path) -> Result<File, CgroupError> {
    let file = fs::open_dir(dir).map_err(io_at(Op::Open, dir))?;
    fs::try_lock(&file).map_err(io_at(Op::Lock, dir))?;
    Ok(file)
}

/// True when the host has swap space (sysinfo's total swap; one syscall, where reading
/// `/proc/swaps` takes three). A failed call counts as active.
fn swap_active() -> bool {
    // SAFETY: sysinfo fills the zeroed struct we pass; plain data.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a sysinfo struct.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return true;
    }
    info.totalswap > 0
}

/// Writes the limits this hierarchy enforces. `swap`: also cap memory+swap at the same
/// value. Without swap that cap is pointless and would hide `memory.failcnt` (the
/// memsw counter fails first, and kernels >= 6.13 do not count its failures).
pub fn configure(dir: &Path, roles: Roles, limits: &Limits, swap: bool) -> Result<(), CgroupError> {
    let write = |name: &str, value: &str| fs::write_value(dir, name, value);
    if let (Some(bytes), true) = (limits.memory, roles.memory) {
        let value = bytes.to_string();
        write("memory.limit_in_bytes", &value)?;
        // memory+swap: absent without swap accounting; must be >= the memory limit.
        if swap {
            match write("memory.memsw.limit_in_bytes", &value) {
                Err(CgroupError::Write { source, .. }) if fs::is_missing(&source) => {}
                other => other?,
            }
        }
    }
    if let (Some(n), true) = (limits.pids, roles.pids) {
        write("pids.max", &n.to_string())?;
    }
    if let (Some(cpus), true) = (limits.cpus, roles.cpu) {
        // A new cgroup's cfs period is the kernel default, CPU_PERIOD_US (100 ms).
        write("cpu.cfs_quota_us", &cpu_quota_us(cpus)?.to_string())?;
    }
    Ok(())
}

fn pids_in(dir: &Path) -> Vec<i32> {
    fs::read_file(&dir.join("cgroup.procs"))
        .map(|t| fs::parse_pids(&t))
        .unwrap_or_default()
}

/// FROZEN, wait (bounded) until frozen, SIGKILL everything, THAWED (the kills land then).
fn freeze_kill_thaw(dir: &Path) {
    let state = dir.join("freezer.state");
    if fs::write_file(&state, "FROZEN").is_ok() {
        let deadline = Instant::now() + FREEZE_WAIT;
        while Instant::now() < deadline && fs::read_file(&state).is_ok_and(|s| s.trim() != "FROZEN")
        {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    pids_in(dir).into_iter().for_each(fs::sigkill);
    let _ = fs::write_file(&state, "THAWED");
}

/// The removal step v1 needs on EBUSY: SIGKILL what is left (no cgroup.kill in v1).
fn kill_left(dir: &Path, _wait: Duration) {
    pids_in(dir).into_iter().for_each(fs::sigkill);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::detect::{fixtures::*, layout};

    #[test]
    fn the_first_directory_stays_while_another_cannot_be_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
        std::fs::create_dir(&first).unwrap();
        std::fs::create_dir(&second).unwrap();
        // A non-empty directory stands in for one under a read-only parent: rmdir fails.
        std::fs::write(second.join("pinned"), "").unwrap();
        let run = Run {
            dirs: vec![
                (first.clone(), Roles::default()),
                (second.clone(), Roles::default()),
            ],
            _lock: None,
            cpuacct: None,
            swap: false,
            tasks: Vec::new(),
            counters: Counters::default(),
            limits: Limits::default(),
            leaves: Leaves::new(),
            baseline: None,
        };
        assert!(run.remove_within(Duration::from_millis(5)).is_err());
        assert!(first.exists(), "the reaper lists the first parent only");
        std::fs::remove_file(second.join("pinned")).unwrap();
        run.remove_within(Duration::from_millis(5)).unwrap();
        assert!(!first.exists() && !second.exists());
    }

    #[test]
    fn cpu_only_hierarchy_is_used_only_with_a_cpus_limit() {
        let cpu = Roles {
            cpu: true,
            ..Roles::default()
        };
        let comounted = Roles {
            cpuacct: true,
            ..cpu
        };
        let unlimited = Limits::default();
        let capped = Limits {
            cpus: Some(0.5),
            ..Limits::default()
        };
        assert!(!cpu.needed(&unlimited));
        assert!(cpu.needed(&capped));
        // cpu,cpuacct co-mounted still measures CPU time.
        assert!(comounted.needed(&unlimited));
    }

    #[test]
    fn freezer_only_hierarchy_is_skipped_for_a_run_in_its_own_pid_namespace() {
        let freezer = Roles {
            freezer: true,
            ..Roles::default()
        };
        let shared = Roles {
            pids: true,
            ..freezer
        };
        let contained = Limits {
            pid_namespace: true,
            ..Limits::default()
        };
        assert!(freezer.needed(&Limits::default()));
        assert!(!freezer.needed(&contained));
        // A freezer co-mounted with another controller still has that one's job.
        assert!(shared.needed(&contained));
    }

    #[test]
    fn plan_follows_own_paths_per_hierarchy() {
        let l = layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
        let hs = plan(&l, None);
        let parents: Vec<&Path> = hs.iter().map(|h| h.parent.as_path()).collect();
        assert_eq!(
            parents,
            vec![
                Path::new("/sys/fs/cgroup/pids/judgebox"),
                Path::new("/sys/fs/cgroup/cpu/judgebox"),
                Path::new("/sys/fs/cgroup/cpuacct/judgebox"),
                Path::new("/sys/fs/cgroup/freezer/judgebox"),
                Path::new(
                    "/sys/fs/cgroup/memory/process_api/b9ddc34a49df673df6d6c3f2d4ad8474/judgebox"
                ),
            ]
        );
        // Memory last: a run's lock lives in the first, and a reset renews memory.
        assert!(hs[4].roles.memory && hs[0].roles.pids);
    }

    #[test]
    fn plan_merges_comounted_and_honours_explicit_root() {
        let l = layout(LEGACY_MOUNTINFO, LEGACY_CGROUP);
        let hs = plan(&l, Some(Path::new("judge/pool")));
        assert_eq!(hs.len(), 4);
        let cpu = hs.iter().find(|h| h.roles.cpu).unwrap();
        assert!(cpu.roles.cpuacct);
        assert_eq!(
            cpu.parent,
            Path::new("/sys/fs/cgroup/cpu,cpuacct/judge/pool")
        );
    }

    #[test]
    fn plan_skips_read_only() {
        let l = layout(WSL2_DOCKER_V1_MOUNTINFO, WSL2_DOCKER_V1_CGROUP);
        assert!(plan(&l, None).is_empty());
    }

    #[test]
    fn configure_writes_v1_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for f in [
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "pids.max",
            "cpu.cfs_period_us",
            "cpu.cfs_quota_us",
        ] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let all = Roles {
            memory: true,
            pids: true,
            cpu: true,
            cpuacct: true,
            freezer: true,
        };
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(32),
            cpus: Some(0.2),
            pid_namespace: false,
        };
        configure(d, all, &limits, true).unwrap();
        let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read("memory.limit_in_bytes"), "67108864");
        assert_eq!(read("memory.memsw.limit_in_bytes"), "67108864");
        assert_eq!(read("pids.max"), "32");
        assert_eq!(read("cpu.cfs_period_us"), "");
        assert_eq!(read("cpu.cfs_quota_us"), "20000");
        std::fs::remove_file(d.join("memory.memsw.limit_in_bytes")).unwrap();
        configure(d, all, &limits, true).unwrap();
        configure(d, all, &limits, false).unwrap();
        assert!(!d.join("memory.memsw.limit_in_bytes").exists());
    }
}
