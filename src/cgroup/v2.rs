//! cgroup v2 backend: picks the parent judgebox may write (explicit root, delegated
//! subtree, or `judgebox` under the root), prepares it (leaf move, subtree_control), and
//! creates, measures, kills and removes one child cgroup per run.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::detect::{V2Mount, WANTED_V2};
use super::fs;
use super::leaves::{self, Leaf, Leaves};
use super::{
    cpu_quota_us, io_at, Baseline, Cgroup, CgroupError, Controllers, Limits, Op, Problem, Stats,
    CPU_PERIOD_US,
};

/// Leaf that takes a parent's own processes so controllers can be enabled in it.
pub const LEAF: &str = "supervisor";
/// Directory judgebox creates under the hierarchy root when nothing is delegated.
pub const ROOT_CHILD: &str = "judgebox";
/// How long to wait for a killed cgroup to empty.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// How long `remove` retries EBUSY.
const REMOVE_WAIT: Duration = Duration::from_millis(500);
/// Attempts at enabling controllers while processes keep appearing in the parent.
const ENABLE_ATTEMPTS: u32 = 50;

/// Why a directory is the parent of run cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParentSource {
    /// `--cgroup-root`.
    Explicit,
    /// The cgroup judgebox runs in (or its delegated ancestor): `Delegate=yes`, or the
    /// root of a writable cgroup namespace.
    Delegated,
    /// `judgebox` directly under the hierarchy root (root user, no systemd).
    RootChild,
}

/// Where run cgroups go and how to prepare that directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub dir: PathBuf,
    pub source: ParentSource,
    /// mkdir the directory first (EEXIST is fine).
    pub create: bool,
    /// Try to enable missing controllers in the directory's parent too.
    pub enable_in_parent: bool,
}

/// Facts about the process and host the parent choice depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    pub euid: u32,
    /// systemd is the init system (`/run/systemd/system` exists) and owns the tree.
    pub systemd_booted: bool,
}

/// The nearest ancestor-or-self of `own_dir` (inside the mount) that systemd marked as
/// delegated with the `trusted.delegate` / `user.delegate` xattr (systemd >= 251).
pub fn delegation_boundary(
    v2: &V2Mount,
    own_dir: &Path,
    marked: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    own_dir
        .ancestors()
        .take_while(|p| p.starts_with(&v2.mount.mount_point))
        .find(|p| marked(p))
        .map(Path::to_path_buf)
}

/// True if systemd's delegation xattr on `dir` says "1".
pub fn xattr_delegated(dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|name| fs::get_xattr(dir, name).is_some_and(|v| v.first() == Some(&b'1')))
}

/// Chooses the parent: explicit root, else a delegated cgroup, else `judgebox` under the
/// root when running as root without systemd. `Err` carries the reason nothing fits.
pub fn plan_parent(
    v2: &V2Mount,
    explicit: Option<&Path>,
    facts: HostFacts,
    marked: &dyn Fn(&Path) -> bool,
    real_root: &dyn Fn(&Path) -> bool,
) -> Result<Plan, (Problem, String)> {
    if let Some(dir) = explicit {
        if let Some(unit) = undelegated_unit(v2, dir, facts, marked) {
            let why = format!(
                "--cgroup-root {}: inside {}, which systemd manages and has not delegated (no trusted.delegate xattr): systemd may kill or move what judgebox puts there; omit --cgroup-root (judgebox then obtains a delegated scope itself) or use a unit with Delegate=yes",
                dir.display(),
                unit.display()
            );
            return Err((Problem::BadRoot, why));
        }
        return Ok(Plan {
            dir: dir.to_path_buf(),
            source: ParentSource::Explicit,
            create: true,
            enable_in_parent: true,
        });
    }
    let own = v2.own_dir.as_deref().ok_or_else(|| {
        let why = format!("own cgroup {} is not visible", v2.own_path);
        (Problem::NotVisible, why)
    })?;
    if let Some(dir) = delegation_boundary(v2, own, marked) {
        return Ok(delegated(dir));
    }
    let root = v2.mount.mount_point.as_path();
    let ns_root = own == root && !real_root(root);
    if facts.euid != 0 {
        let why = format!(
            "not running as root and own cgroup {} is not delegated (no trusted.delegate/user.delegate xattr)",
            own.display()
        );
        return Err((Problem::NotRoot, why));
    }
    if facts.systemd_booted {
        let why = format!(
            "systemd manages the cgroup tree and own cgroup {} is not delegated to judgebox (Delegate=yes)",
            own.display()
        );
        return Err((Problem::NotDelegated, why));
    }
    if ns_root {
        // A writable cgroup-namespace root (privileged container without systemd).
        return Ok(delegated(own.to_path_buf()));
    }
    Ok(Plan {
        dir: root.join(ROOT_CHILD),
        source: ParentSource::RootChild,
        create: true,
        enable_in_parent: true,
    })
}

/// systemd unit cgroup suffixes (slices, scopes, services and the rest of its units).
const UNIT_SUFFIXES: [&str; 5] = [".slice", ".scope", ".service", ".socket", ".mount"];

/// On a systemd host: the innermost systemd unit cgroup containing `dir` when no
/// ancestor-or-self of `dir` is delegated. Directories outside any unit (e.g.
/// `/sys/fs/cgroup/judgebox`) are not systemd's.
fn undelegated_unit(
    v2: &V2Mount,
    dir: &Path,
    facts: HostFacts,
    marked: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    if !facts.systemd_booted || delegation_boundary(v2, dir, marked).is_some() {
        return None;
    }
    dir.ancestors()
        .take_while(|p| p.starts_with(&v2.mount.mount_point) && *p != v2.mount.mount_point)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| UNIT_SUFFIXES.iter().any(|s| n.ends_with(s)))
        })
        .map(Path::to_path_buf)
}

fn delegated(dir: PathBuf) -> Plan {
    Plan {
        dir,
        source: ParentSource::Delegated,
        create: false,
        enable_in_parent: false,
    }
}

/// A prepared parent of run cgroups.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    pub dir: PathBuf,
    pub source: ParentSource,
    /// Controllers enabled in the parent's `cgroup.subtree_control` (what runs get).
    pub enabled: Controllers,
    /// What the parent's `cgroup.controllers` offered.
    pub available: Vec<String>,
    /// Non-fatal problems met while preparing (for doctor).
    pub notes: Vec<String>,
}

/// Creates the parent if asked, moves its own processes into a leaf if needed and enables
/// memory/pids/cpu in its `cgroup.subtree_control`. Idempotent and race-safe between
/// concurrent judgebox processes; the common case is one read and no write.
pub fn prepare(plan: &Plan) -> Result<Parent, CgroupError> {
    let dir = &plan.dir;
    let mut notes = Vec::new();
    if plan.create {
        fs::mkdir(dir).map_err(io_at(Op::Create, dir))?;
    }
    let subtree = dir.join("cgroup.subtree_control");
    let enabled_now = read_list(&subtree)?;
    let mut available = Vec::new();
    let mut enabled = Controllers::from_list(&enabled_now);
    if !all_wanted(&enabled_now) {
        available = offered(plan, &mut notes)?;
        let missing: Vec<&str> = WANTED_V2
            .iter()
            .copied()
            .filter(|c| contains(&available, c) && !contains(&enabled_now, c))
            .collect();
        if !missing.is_empty() {
            notes.extend(enable_with_leaf(dir, &missing)?);
            enabled = Controllers::from_list(&read_list(&subtree)?);
        }
    }
    Ok(Parent {
        dir: dir.clone(),
        source: plan.source,
        enabled,
        available,
        notes,
    })
}

/// What `plan.dir` offers, after trying to enable missing controllers one level up.
fn offered(plan: &Plan, notes: &mut Vec<String>) -> Result<Vec<String>, CgroupError> {
    let controllers = plan.dir.join("cgroup.controllers");
    let available = read_list(&controllers)?;
    if all_wanted(&available) || !plan.enable_in_parent {
        return Ok(available);
    }
    let Some(parent) = plan.dir.parent() else {
        return Ok(available);
    };
    let parent_offers = read_list(&parent.join("cgroup.controllers")).unwrap_or_default();
    let missing: Vec<&str> = WANTED_V2
        .iter()
        .copied()
        .filter(|c| !contains(&available, c) && contains(&parent_offers, c))
        .collect();
    if missing.is_empty() {
        return Ok(available);
    }
    match enable(parent, &missing) {
        Ok(failed) => notes.extend(failed),
        Err(e) => notes.push(format!(
            "cannot enable {} in {}: {e}",
            missing.join(" "),
            parent.join("cgroup.subtree_control").display()
        )),
    }
    read_list(&controllers)
}

/// Enables `ctrls` in `dir`, moving the processes living in `dir` into the `supervisor`
/// leaf whenever the kernel refuses with EBUSY (no internal processes rule).
fn enable_with_leaf(dir: &Path, ctrls: &[&str]) -> Result<Vec<String>, CgroupError> {
    let path = dir.join("cgroup.subtree_control");
    let mut last = None;
    for attempt in 0..ENABLE_ATTEMPTS {
        match enable(dir, ctrls) {
            Ok(failed) => return Ok(failed),
            Err(e) if fs::is_busy(&e) => {
                move_processes(dir)?;
                if attempt >= 3 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                last = Some(e);
            }
            Err(source) => {
                return Err(CgroupError::Write {
                    path,
                    value: plus_list(ctrls),
                    source,
                })
            }
        }
    }
    Err(CgroupError::Write {
        path,
        value: plus_list(ctrls),
        source: last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
    })
}

/// Writes "+a +b" to `dir/cgroup.subtree_control`; if that fails for another reason than
/// EBUSY, enables one by one and returns notes on the ones that failed.
fn enable(dir: &Path, ctrls: &[&str]) -> io::Result<Vec<String>> {
    let path = dir.join("cgroup.subtree_control");
    match fs::write_file(&path, &plus_list(ctrls)) {
        Ok(()) => return Ok(Vec::new()),
        Err(e) if fs::is_busy(&e) => return Err(e),
        Err(_) => {}
    }
    let mut failed = Vec::new();
    for c in ctrls {
        match fs::write_file(&path, &format!("+{c}")) {
            Ok(()) => {}
            Err(e) if fs::is_busy(&e) => return Err(e),
            Err(e) => failed.push(format!("cannot enable {c} in {}: {e}", path.display())),
        }
    }
    Ok(failed)
}

/// Moves every process of `dir` into `dir/supervisor` (created on demand).
pub fn move_processes(dir: &Path) -> Result<usize, CgroupError> {
    let procs = dir.join("cgroup.procs");
    let text = fs::read_file(&procs).map_err(io_at(Op::Read, &procs))?;
    let pids = fs::parse_pids(&text);
    if pids.is_empty() {
        return Ok(0);
    }
    let leaf = dir.join(LEAF);
    fs::mkdir(&leaf).map_err(io_at(Op::Create, &leaf))?;
    let target = leaf.join("cgroup.procs");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .map_err(io_at(Op::Open, &target))?;
    for pid in &pids {
        match fs::write_once(&mut file, &format!("{pid}\n")) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::Attach {
                    pid: *pid,
                    path: target,
                    source,
                })
            }
        }
    }
    Ok(pids.len())
}

fn read_list(path: &Path) -> Result<Vec<String>, CgroupError> {
    let text = fs::read_file(path).map_err(io_at(Op::Read, path))?;
    Ok(text
        .split_whitespace()
        .map(|c| c.trim_start_matches('+').to_string())
        .collect())
}

fn contains(list: &[String], c: &str) -> bool {
    list.iter().any(|x| x == c)
}

fn all_wanted(list: &[String]) -> bool {
    WANTED_V2.iter().all(|c| contains(list, c))
}

fn plus_list(ctrls: &[&str]) -> String {
    ctrls
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a run's memory accounting reads from.
#[derive(Debug)]
enum MemSource {
    /// `memory.peak` (kernel >= 5.19).
    Peak(File),
    /// `memory.current`, sampled on every `cpu_usage_ns` call.
    Current(File),
}

/// One run's cgroup v2 directory.
#[derive(Debug)]
pub struct Run {
    dir: PathBuf,
    /// `O_DIRECTORY` fd, flock'd for the run's lifetime (the reaper's liveness check)
    /// and handed to clone3 `CLONE_INTO_CGROUP` until a reset makes `leaf`.
    dirfd: File,
    enabled: Controllers,
    /// Written again into each renewed memory leaf.
    limits: Limits,
    cpu_stat: Option<File>,
    /// `cgroup.events` of `dir` (covers the leaf too), kept open for `kill` and `reset`.
    cgroup_events: Option<File>,
    /// After the first reset, a fresh leaf per run where the run's processes go and
    /// their memory is limited and counted; `dir` keeps the task and CPU limits and
    /// accounting for the whole tree.
    leaves: Leaves<MemoryLeaf>,
    /// `dir`'s memory files (a leaf's replace them after a reset).
    memory: Memory,
    /// Set by `reset`: CPU time counts from there.
    baseline: Option<Baseline>,
}

/// A child cgroup of the run with only the memory controller, for one run after a reset.
#[derive(Debug)]
struct MemoryLeaf {
    dir: PathBuf,
    /// `O_DIRECTORY` fd for clone3 `CLONE_INTO_CGROUP`.
    fd: File,
    memory: Memory,
}

impl Leaf for MemoryLeaf {
    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl MemoryLeaf {
    fn make(dir: PathBuf, limits: &Limits) -> Result<MemoryLeaf, CgroupError> {
        let memory_only = Controllers {
            memory: true,
            pids: false,
            cpu: false,
        };
        leaves::make(dir, |dir| {
            configure(dir, limits, memory_only)?;
            Ok(MemoryLeaf {
                fd: fs::open_dir(dir).map_err(io_at(Op::Open, dir))?,
                memory: Memory::open(dir, memory_only),
                dir: dir.to_path_buf(),
            })
        })
    }
}

/// A memory cgroup's files, kept open.
#[derive(Debug, Default)]
struct Memory {
    source: Option<MemSource>,
    /// The largest `memory.current` sampled (for `MemSource::Current`).
    sampled_peak: AtomicU64,
    events: Option<File>,
}

impl Memory {
    fn open(dir: &Path, enabled: Controllers) -> Memory {
        if !enabled.memory {
            return Memory::default();
        }
        Memory {
            source: open_memory(dir),
            sampled_peak: AtomicU64::new(0),
            events: File::open(dir.join("memory.events")).ok(),
        }
    }

    fn event(&self, key: &str) -> Option<u64> {
        let text = fs::pread_string(self.events.as_ref()?).ok()?;
        fs::keyed_u64(&text, key)
    }

    fn peak(&self) -> Option<u64> {
        match self.source.as_ref()? {
            MemSource::Peak(file) => fs::parse_u64(&fs::pread_string(file).ok()?),
            MemSource::Current(f) => {
                let now = fs::parse_u64(&fs::pread_string(f).ok()?).unwrap_or(0);
                Some(self.sampled_peak.fetch_max(now, Ordering::Relaxed).max(now))
            }
        }
    }

    fn sample(&self) {
        if let Some(MemSource::Current(f)) = &self.source {
            if let Some(v) = fs::pread_string(f).ok().and_then(|t| fs::parse_u64(&t)) {
                self.sampled_peak.fetch_max(v, Ordering::Relaxed);
            }
        }
    }
}

impl Run {
    /// mkdir `parent/name`, lock it, write the limits, open the accounting files.
    pub fn create(parent: &Parent, name: &str, limits: &Limits) -> Result<Run, CgroupError> {
        let dir = parent.dir.join(name);
        std::fs::DirBuilder::new()
            .create(&dir)
            .map_err(io_at(Op::Create, &dir))?;
        Run::init(dir.clone(), parent.enabled, limits).inspect_err(|_| {
            let _ = std::fs::remove_dir(&dir);
        })
    }

    fn init(dir: PathBuf, enabled: Controllers, limits: &Limits) -> Result<Run, CgroupError> {
        let dirfd = fs::open_dir(&dir).map_err(io_at(Op::Open, &dir))?;
        fs::try_lock(&dirfd).map_err(io_at(Op::Lock, &dir))?;
        configure(&dir, limits, enabled)?;
        Ok(Run {
            cpu_stat: File::open(dir.join("cpu.stat")).ok(),
            cgroup_events: File::open(dir.join("cgroup.events")).ok(),
            memory: Memory::open(&dir, enabled),
            dir,
            dirfd,
            enabled,
            limits: limits.clone(),
            leaves: Leaves::new(),
            baseline: None,
        })
    }

    /// `cpu.stat` usage_usec in ns, since the cgroup was made.
    fn raw_cpu_ns(&self) -> Option<u64> {
        let text = fs::pread_string(self.cpu_stat.as_ref()?).ok()?;
        fs::keyed_u64(&text, "usage_usec").map(|us| us.saturating_mul(1000))
    }

    /// The memory files of the cgroup the run's processes are in.
    fn memory(&self) -> &Memory {
        self.leaves.current().map_or(&self.memory, |l| &l.memory)
    }

    /// Puts a fresh memory leaf in use. The first time, `dir` enables memory for its
    /// children and lifts its own memory limit, so only the leaf's applies.
    fn advance_memory_leaf(&mut self) -> Result<(), CgroupError> {
        if self.leaves.current().is_none() {
            fs::write_value(&self.dir, "cgroup.subtree_control", "+memory")?;
            if self.limits.memory.is_some() {
                fs::write_value(&self.dir, "memory.max", "max")?;
            }
        }
        let limits = &self.limits;
        self.leaves
            .advance(&self.dir, |d| MemoryLeaf::make(d, limits))?;
        Ok(())
    }
}

impl Cgroup for Run {
    fn clone_into_fd(&self) -> Option<RawFd> {
        let fd = self.leaves.current().map_or(&self.dirfd, |l| &l.fd);
        Some(fd.as_raw_fd())
    }

    fn join_fds(&self) -> Vec<RawFd> {
        Vec::new()
    }

    fn attach(&self, pid: i32) -> Result<(), CgroupError> {
        let dir = self.leaves.current().map_or(self.dir.as_path(), |l| &l.dir);
        fs::attach(dir, pid)
    }

    /// `cpu.stat` usage_usec in ns; also samples `memory.current` when there is no peak.
    fn cpu_usage_ns(&self) -> Option<u64> {
        self.memory().sample();
        let base = self.baseline.map_or(0, |b| b.cpu_ns);
        self.raw_cpu_ns().map(|ns| ns.saturating_sub(base))
    }

    fn stats(&self) -> Stats {
        let pids_peak = || {
            self.enabled
                .pids
                .then(|| fs::read_file(&self.dir.join("pids.peak")).ok())
                .flatten()
                .and_then(|t| fs::parse_u64(&t))
        };
        Baseline::stats(
            self.baseline,
            self.memory().peak(),
            self.memory().event("oom_kill"),
            self.memory().event("max"),
            self.cpu_usage_ns(),
            pids_peak,
        )
    }

    fn kill(&self) {
        // One pread on the kept `cgroup.events` in the usual case (nothing left).
        if self.cgroup_events.as_ref().is_some_and(|e| !populated(e)) {
            return;
        }
        kill_dir(&self.dir, KILL_WAIT);
    }

    /// Puts a fresh memory leaf in use (see [`Cgroup::reset`]) and notes where CPU time
    /// stands.
    fn reset(&mut self) -> Result<bool, CgroupError> {
        let Some(events) = self.cgroup_events.as_ref() else {
            return Ok(false);
        };
        if populated(events) {
            return Ok(false);
        }
        if self.enabled.memory {
            self.advance_memory_leaf()?;
        }
        self.baseline = Some(Baseline {
            cpu_ns: self.raw_cpu_ns().unwrap_or(0),
        });
        Ok(true)
    }

    fn prepare_reset(&self) {
        if self.enabled.memory {
            let limits = &self.limits;
            self.leaves.prepare(
                &self.dir,
                |d| MemoryLeaf::make(d, limits),
                |d| remove_dir(d, REMOVE_WAIT),
            );
        }
    }

    fn remove(&self) -> Result<(), CgroupError> {
        let leaves = self.leaves.remove_all(|d| remove_dir(d, REMOVE_WAIT));
        remove_dir(&self.dir, REMOVE_WAIT).and(leaves)
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}

fn open_memory(dir: &Path) -> Option<MemSource> {
    match File::open(dir.join("memory.peak")) {
        Ok(file) => Some(MemSource::Peak(file)),
        Err(_) => File::open(dir.join("memory.current"))
            .ok()
            .map(MemSource::Current),
    }
}

/// Writes the run's limits (only for controllers the parent enabled).
pub fn configure(dir: &Path, limits: &Limits, enabled: Controllers) -> Result<(), CgroupError> {
    let write = |name: &str, value: &str| fs::write_value(dir, name, value);
    if let (Some(bytes), true) = (limits.memory, enabled.memory) {
        write("memory.max", &bytes.to_string())?;
        match write("memory.swap.max", "0") {
            // No swap accounting (CONFIG_SWAP off or swapaccount=0): nothing to disable.
            Err(CgroupError::Write { source, .. }) if fs::is_missing(&source) => {}
            other => other?,
        }
    }
    if let (Some(n), true) = (limits.pids, enabled.pids) {
        write("pids.max", &n.to_string())?;
    }
    if let (Some(cpus), true) = (limits.cpus, enabled.cpu) {
        let quota = cpu_quota_us(cpus)?;
        write("cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
    }
    Ok(())
}

/// Kills every task in `dir` (and below) and waits until it is empty (bounded). Returns
/// true when the cgroup is empty (or gone). One read when it is already empty.
pub fn kill_dir(dir: &Path, wait: Duration) -> bool {
    let Ok(events) = File::open(dir.join("cgroup.events")) else {
        return true;
    };
    if !populated(&events) {
        return true;
    }
    if fs::write_file(&dir.join("cgroup.kill"), "1").is_err() {
        freeze_and_kill(dir, &events, wait);
    }
    wait_empty(&events, wait)
}

/// Fallback for kernels without `cgroup.kill` (< 5.14): freeze, SIGKILL each pid, thaw.
pub(crate) fn freeze_and_kill(dir: &Path, events: &File, wait: Duration) {
    let deadline = Instant::now() + wait;
    while populated(events) && Instant::now() < deadline {
        let _ = fs::write_file(&dir.join("cgroup.freeze"), "1");
        signal_tree(dir);
        let _ = fs::write_file(&dir.join("cgroup.freeze"), "0");
        wait_empty(events, Duration::from_millis(20));
    }
}

/// SIGKILLs the processes of `dir` and of every cgroup below it.
fn signal_tree(dir: &Path) {
    if let Ok(text) = fs::read_file(&dir.join("cgroup.procs")) {
        fs::parse_pids(&text).into_iter().for_each(fs::sigkill);
    }
    for child in fs::subdirs(dir) {
        signal_tree(&child);
    }
}

fn populated(events: &File) -> bool {
    fs::pread_string(events)
        .ok()
        .and_then(|t| fs::keyed_u64(&t, "populated"))
        .is_some_and(|v| v != 0)
}

/// Waits for `populated 0`: ppoll(2) on `cgroup.events` wakes on a change, but the kernel
/// rate-limits those notifications to one per 10 ms, so the timeout grows from 50 µs.
fn wait_empty(events: &File, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(50);
    loop {
        if !populated(events) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        wait_event(events, pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Sleeps until `file` (a kernfs notify file) changes or `timeout` passes.
fn wait_event(file: &File, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as _,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `pfd` and `ts` are valid for the duration of the call, nfds is 1 and a
    // null sigmask keeps the current one.
    unsafe {
        libc::ppoll(&mut pfd, 1, &ts, std::ptr::null());
    }
}

/// rmdir with EBUSY handling: kill what is left, remove child cgroups, retry briefly.
pub fn remove_dir(dir: &Path, wait: Duration) -> Result<(), CgroupError> {
    fs::remove_dir(dir, wait, &|d, w| {
        kill_dir(d, w);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::detect::{fixtures::*, layout};

    fn facts(euid: u32, systemd_booted: bool) -> HostFacts {
        HostFacts {
            euid,
            systemd_booted,
        }
    }

    #[test]
    fn plan_prefers_explicit_root() {
        let l = layout(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP);
        let p = plan_parent(
            l.v2.as_ref().unwrap(),
            Some(Path::new("/sys/fs/cgroup/jb")),
            facts(0, true),
            &|_| true,
            &|_| true,
        )
        .unwrap();
        assert_eq!(p.source, ParentSource::Explicit);
        assert_eq!(p.dir, Path::new("/sys/fs/cgroup/jb"));
        assert!(p.create);
    }

    #[test]
    fn plan_refuses_explicit_root_inside_undelegated_unit() {
        let l = layout(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP);
        let v2 = l.v2.as_ref().unwrap();
        let own = Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope");
        let err = plan_parent(v2, Some(own), facts(0, true), &|_| false, &|_| true).unwrap_err();
        assert_eq!(err.0, Problem::BadRoot);
        assert!(
            err.1.contains("session-2.scope, which systemd manages"),
            "{err:?}"
        );
        let below = own.join("jb");
        let delegated = |d: &Path| d == own;
        let p = plan_parent(v2, Some(&below), facts(0, true), &delegated, &|_| true).unwrap();
        assert_eq!(p.dir, below);
        // Without systemd, or outside any unit, the operator's choice stands.
        assert!(plan_parent(v2, Some(own), facts(0, false), &|_| false, &|_| true).is_ok());
        let top = Path::new("/sys/fs/cgroup/judgebox/x");
        assert!(plan_parent(v2, Some(top), facts(0, true), &|_| false, &|_| true).is_ok());
    }

    #[test]
    fn plan_uses_delegated_ancestor() {
        let l = layout(
            V2_SYSTEMD_MOUNTINFO,
            "0::/system.slice/judgebox.service/supervisor\n",
        );
        let boundary = Path::new("/sys/fs/cgroup/system.slice/judgebox.service");
        let p = plan_parent(
            l.v2.as_ref().unwrap(),
            None,
            facts(0, true),
            &|d| d == boundary,
            &|_| false,
        )
        .unwrap();
        assert_eq!(p.source, ParentSource::Delegated);
        assert_eq!(p.dir, boundary);
        assert!(!p.create);
    }

    #[test]
    fn plan_refuses_undelegated_systemd_cgroup() {
        let l = layout(V2_SYSTEMD_MOUNTINFO, V2_SYSTEMD_CGROUP);
        let err = plan_parent(
            l.v2.as_ref().unwrap(),
            None,
            facts(0, true),
            &|_| false,
            &|_| true,
        )
        .unwrap_err();
        assert_eq!(err.0, Problem::NotDelegated);
        assert!(err.1.contains("not delegated"), "{err:?}");
        let err = plan_parent(
            l.v2.as_ref().unwrap(),
            None,
            facts(1000, false),
            &|_| false,
            &|_| true,
        )
        .unwrap_err();
        assert_eq!(err.0, Problem::NotRoot);
        assert!(err.1.contains("not running as root"), "{err:?}");
    }

    #[test]
    fn plan_root_child_without_manager() {
        let l = layout(V2_SYSTEMD_MOUNTINFO, "0::/\n");
        let p = plan_parent(
            l.v2.as_ref().unwrap(),
            None,
            facts(0, false),
            &|_| false,
            &|_| true,
        )
        .unwrap();
        assert_eq!(p.source, ParentSource::RootChild);
        assert_eq!(p.dir, Path::new("/sys/fs/cgroup/judgebox"));
    }

    #[test]
    fn plan_container_namespace_root_is_delegated() {
        let l = layout(
            DOCKER_DESKTOP_MOUNTINFO
                .replace("ro,nosuid", "rw,nosuid")
                .as_str(),
            "0::/\n",
        );
        let p = plan_parent(
            l.v2.as_ref().unwrap(),
            None,
            facts(0, false),
            &|_| false,
            &|_| false,
        )
        .unwrap();
        assert_eq!(p.source, ParentSource::Delegated);
        assert_eq!(p.dir, Path::new("/sys/fs/cgroup"));
    }

    /// A fake cgroup directory: the files a kernel would create, pre-filled.
    fn fake_cgroup(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn prepare_moves_processes_then_enables_controllers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("judgebox.service");
        fake_cgroup(
            &dir,
            &[
                ("cgroup.controllers", "cpuset cpu io memory pids\n"),
                ("cgroup.subtree_control", ""),
                ("cgroup.procs", "101\n202\n"),
            ],
        );
        fake_cgroup(&dir.join(LEAF), &[("cgroup.procs", "")]);
        let plan = delegated(dir.clone());
        // The fake does not return EBUSY, so move explicitly as prepare would on EBUSY.
        assert_eq!(move_processes(&dir).unwrap(), 2);
        assert_eq!(read(&dir.join(LEAF).join("cgroup.procs")), "101\n202\n");
        let parent = prepare(&plan).unwrap();
        assert_eq!(
            read(&dir.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        assert_eq!(
            parent.enabled,
            Controllers {
                memory: true,
                pids: true,
                cpu: true
            }
        );
    }

    #[test]
    fn prepare_enables_only_what_is_offered_and_skips_when_done() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("jb");
        fake_cgroup(
            &dir,
            &[
                ("cgroup.controllers", "memory pids\n"),
                ("cgroup.subtree_control", ""),
                ("cgroup.procs", ""),
            ],
        );
        let plan = Plan {
            dir: dir.clone(),
            source: ParentSource::Explicit,
            create: true,
            enable_in_parent: false,
        };
        let parent = prepare(&plan).unwrap();
        assert_eq!(read(&dir.join("cgroup.subtree_control")), "+memory +pids");
        assert!(parent.enabled.memory && parent.enabled.pids && !parent.enabled.cpu);
        assert!(!dir.join(LEAF).exists(), "no processes, no leaf");

        // Already enabled: nothing is written (the sentinel content survives).
        std::fs::write(dir.join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        let parent = prepare(&plan).unwrap();
        assert!(parent.enabled.cpu);
        assert_eq!(
            read(&dir.join("cgroup.subtree_control")),
            "cpu memory pids\n"
        );
    }

    #[test]
    fn prepare_enables_in_parent_for_a_new_root_child() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fake_cgroup(
            root,
            &[
                ("cgroup.controllers", "cpu memory pids io\n"),
                ("cgroup.subtree_control", ""),
            ],
        );
        let dir = root.join(ROOT_CHILD);
        // What the kernel shows right after mkdir (before the root enables anything),
        // then what it shows after: the fake cannot change by itself, so pre-fill "after".
        fake_cgroup(
            &dir,
            &[
                ("cgroup.controllers", "cpu memory pids\n"),
                ("cgroup.subtree_control", ""),
                ("cgroup.procs", ""),
            ],
        );
        std::fs::write(dir.join("cgroup.controllers"), "memory\n").unwrap();
        let plan = Plan {
            dir: dir.clone(),
            source: ParentSource::RootChild,
            create: true,
            enable_in_parent: true,
        };
        prepare(&plan).unwrap();
        assert_eq!(read(&root.join("cgroup.subtree_control")), "+pids +cpu");
        assert_eq!(read(&dir.join("cgroup.subtree_control")), "+memory");
    }

    #[test]
    fn configure_writes_limits() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run-1-2-3");
        let files = ["memory.max", "memory.swap.max", "pids.max", "cpu.max"];
        fake_cgroup(&run, &files.map(|f| (f, "")));
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(32),
            cpus: Some(0.2),
            pid_namespace: false,
        };
        let all = Controllers {
            memory: true,
            pids: true,
            cpu: true,
        };
        configure(&run, &limits, all).unwrap();
        assert_eq!(read(&run.join("memory.max")), "67108864");
        assert_eq!(read(&run.join("memory.swap.max")), "0");
        assert_eq!(read(&run.join("pids.max")), "32");
        assert_eq!(read(&run.join("cpu.max")), "20000 100000");
    }

    #[test]
    fn configure_skips_disabled_and_missing_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        fake_cgroup(&run, &[("memory.max", ""), ("pids.max", "max\n")]);
        let limits = Limits {
            memory: Some(1 << 20),
            pids: Some(4),
            cpus: Some(1.5),
            pid_namespace: false,
        };
        let only_memory = Controllers {
            memory: true,
            pids: false,
            cpu: false,
        };
        configure(&run, &limits, only_memory).unwrap();
        assert_eq!(read(&run.join("memory.max")), "1048576");
        assert_eq!(read(&run.join("pids.max")), "max\n");
        assert!(!run.join("cpu.max").exists());
        // An enabled controller whose file is missing is an error naming the path.
        let err = configure(
            &run,
            &limits,
            Controllers {
                memory: false,
                pids: false,
                cpu: true,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cpu.max"), "{err}");
    }
}
