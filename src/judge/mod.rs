//! Judging a submission: compile once in a sandbox, then run every test in its own fresh
//! sandbox (own cgroup, compiled artifacts copied in read-only, the test's input as
//! stdin), compare the output and turn each run into a verdict with its Judge0 status.

pub mod capture;
pub mod cases;
pub mod compare;
pub mod verdict;

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};
use thiserror::Error;

use crate::cgroup::{self, Manager, RunCgroup};
use crate::lang::{Language, Step};
use crate::sandbox::{self, Config, CopyIn, CopyOut, Enforced, Limits, RunResult, WarmRuns};
use crate::seccomp::Filter;

use capture::{CaptureError, Captured, ExcerptBudget};
pub use cases::TestCase;
pub use compare::{Compare, CompareError};
pub use verdict::{judge0_status, Judge0Status, Verdict};

/// The most of a step's stdout/stderr a report shows (the whole output is compared, as a
/// stream from the file it was captured in).
const REPORT_OUTPUT_BYTES: usize = 64 << 10;
/// What each test keeps of its stdout and of its stderr for the report.
const TEST_EXCERPT_BYTES: usize = 8 << 10;
/// What all tests' excerpts may take together: with thousands of tests, the later ones
/// keep none rather than let the judge's memory grow with the number of tests.
const EXCERPT_BUDGET: usize = 16 << 20;

#[derive(Debug, Error)]
pub enum JudgeError {
    #[error("source {path}: {source}")]
    Source {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("work directory {path}: {source}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("test {test}: comparing with {expected}: {source}")]
    Compare {
        test: String,
        expected: PathBuf,
        #[source]
        source: CompareError,
    },
    #[error("{0}")]
    Capture(#[from] CaptureError),
    #[error("cannot create the run's cgroup (see `judgebox doctor`): {0}")]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("{0}")]
    Sandbox(#[from] sandbox::SandboxError),
}

/// Where the language's programs run: its image's rootfs and environment.
#[derive(Debug, Clone)]
pub struct Environment {
    pub rootfs: PathBuf,
    /// The image config's `Env`; the manifest's env overlays it (`sandbox::overlay_env`).
    pub image_env: Vec<String>,
}

/// Per-submission limits that replace the manifest's run limits (and the settings
/// isolate's options give Judge0: `-x`, `-k`, per-process time and memory).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub time: Option<f64>,
    /// Grace after a time limit before the kill (isolate's `-x`); still a time limit.
    pub extra_time: Option<f64>,
    pub wall_time: Option<f64>,
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    pub output: Option<u64>,
    /// RLIMIT_STACK in bytes; `Some(0)` is unlimited (isolate's `-k 0`).
    pub stack: Option<u64>,
    /// `time` limits each process on its own, not the tree's total
    /// (`sandbox::Limits::cpu_per_process`).
    pub cpu_per_process: bool,
    /// `memory` limits each process's address space (RLIMIT_AS, isolate's `-m`) instead of
    /// the cgroup's total; the cgroup then caps the whole tree at `memory_ceiling`.
    pub memory_per_process: bool,
    pub memory_ceiling: Option<u64>,
}

/// A progress callback: tests finished so far, and the one that just did.
pub type OnTest = dyn Fn(usize, &TestReport) + Sync;

/// One submission to judge.
pub struct Job<'a> {
    pub lang: &'a Language,
    pub env: Environment,
    pub source: PathBuf,
    pub compiler_options: Vec<String>,
    pub args: Vec<String>,
    pub tests: Vec<TestCase>,
    pub compare: Compare,
    /// Tests run at once (each in its own sandbox and cgroup).
    pub parallel: usize,
    pub stop_on_first_failure: bool,
    pub overrides: Overrides,
    /// The seccomp profile every step runs under (`None`: no filter).
    pub filter: Option<Filter>,
    pub cgroups: &'a Manager,
    /// Run each worker's tests in one warm sandbox (built once, fresh /box, /tmp,
    /// /dev/shm, IPC namespace and cgroup per test) instead of a fresh sandbox per test.
    pub reuse: bool,
    /// Tests run with `lo` up in a network namespace of their own (never a pooled one);
    /// without it they have no interface up at all. Compiling never has it.
    pub network: bool,
    /// Called once per test as it finishes (in finishing order, from the worker that ran
    /// it), with how many have finished so far: progress for long judgings.
    pub on_test: Option<&'a OnTest>,
}

/// What one sandboxed step came to.
#[derive(Debug, Clone)]
pub struct StepReport {
    pub verdict: Verdict,
    pub judge0: Judge0Status,
    pub run: RunResult,
}

/// One test's outcome.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub name: String,
    pub verdict: Verdict,
    pub judge0: Judge0Status,
    /// `None` when the test was skipped.
    pub run: Option<RunResult>,
}

/// The whole submission's outcome.
#[derive(Debug, Clone)]
pub struct Report {
    pub language: String,
    pub display: String,
    pub verdict: Verdict,
    pub judge0: Judge0Status,
    pub compile: Option<StepReport>,
    pub tests: Vec<TestReport>,
    /// Wall-clock time of the whole judging, seconds.
    pub elapsed: f64,
}

/// Compiles (when the language has a compile step) and runs every test.
pub fn judge(job: &Job) -> Result<Report, JudgeError> {
    let started = Instant::now();
    check_source(&job.source)?;
    let work = WorkDir::create()?;
    let compile = match &job.lang.compile {
        Some(step) => Some(compile(job, step, &work)?),
        None => None,
    };
    let compiled = compile
        .as_ref()
        .is_none_or(|c| c.verdict == Verdict::Accepted);
    let tests = if compiled {
        run_tests(job, &work)?
    } else {
        Vec::new()
    };
    let verdict = overall(compile.as_ref(), &tests);
    let judge0 = match (&compile, verdict) {
        (Some(c), v) if v == c.verdict => c.judge0,
        _ => first_failure(&tests).map_or(judge0_status(verdict, None), |t| t.judge0),
    };
    Ok(Report {
        language: job.lang.name.clone(),
        display: job.lang.display.clone(),
        verdict,
        judge0,
        compile,
        tests,
        elapsed: started.elapsed().as_secs_f64(),
    })
}

/// The source must be a regular file not reached through a symlink (judgebox reads it as
/// root; the sandbox opens it the same way when it copies it in).
fn check_source(path: &Path) -> Result<(), JudgeError> {
    crate::safe_open::open_regular(path)
        .map(drop)
        .map_err(|e| JudgeError::Source {
            path: path.to_path_buf(),
            source: e.into_io(),
        })
}

/// The submission's verdict: the compile's when it failed, else the first failing test's
/// (in test order), else accepted.
fn overall(compile: Option<&StepReport>, tests: &[TestReport]) -> Verdict {
    if let Some(c) = compile.filter(|c| c.verdict != Verdict::Accepted) {
        return c.verdict;
    }
    first_failure(tests).map_or(Verdict::Accepted, |t| t.verdict)
}

fn first_failure(tests: &[TestReport]) -> Option<&TestReport> {
    tests
        .iter()
        .find(|t| !matches!(t.verdict, Verdict::Accepted | Verdict::Skipped))
}

/// Runs the compile step; the artifacts land in `work`. A compiler that fails, times out
/// or runs out of memory is a compilation error (its output is the report's).
fn compile(job: &Job, step: &Step, work: &WorkDir) -> Result<StepReport, JudgeError> {
    let memory = step.memory;
    let argv = job
        .lang
        .compile_argv(&job.compiler_options, memory)
        .expect("a compile step");
    let files = vec![CopyIn {
        source: job.source.clone(),
        name: job.lang.source_file.clone(),
        read_only: false,
    }];
    let copy_out = job
        .lang
        .artifacts
        .iter()
        .map(|a| CopyOut {
            name: a.clone(),
            dest: work.path.join(a),
        })
        .collect();
    let spec = StepSpec {
        argv,
        step,
        overrides: &Overrides::default(),
        files,
        stdin: None,
        copy_out,
        network: false,
    };
    let (mut run, captured) = run_sandboxed(job, work, spec, &CgroupSource::Inline, None)?;
    (run.stdout, run.stderr) = captured.excerpts(REPORT_OUTPUT_BYTES)?;
    let produced = job
        .lang
        .artifacts
        .iter()
        .all(|a| work.path.join(a).is_file());
    if produced {
        make_executable(work, &job.lang.artifacts)?;
    }
    let verdict = match verdict::verdict_of_run(&run) {
        None if produced => Verdict::Accepted,
        Some(Verdict::InternalError) => Verdict::InternalError,
        _ => Verdict::CompilationError,
    };
    Ok(StepReport {
        verdict,
        judge0: judge0_status(verdict, Some(&run)),
        run,
    })
}

/// Copied-out files arrive 0600; the artifacts are programs, copied into each test
/// read-only but executable.
fn make_executable(work: &WorkDir, artifacts: &[String]) -> Result<(), JudgeError> {
    use std::os::unix::fs::PermissionsExt;
    for a in artifacts {
        let path = work.path.join(a);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|source| JudgeError::WorkDir { path, source })?;
    }
    Ok(())
}

/// Where a run's cgroup comes from and goes to.
enum CgroupSource<'a> {
    /// Created before the run and removed after it, on this thread (the compile step).
    Inline,
    /// Taken ready-made from a creator thread and handed to a remover thread afterwards,
    /// so cgroupfs mkdir/rmdir (which wait on the kernel's cgroup locks) overlap with
    /// other tests instead of adding to each one.
    Pooled {
        ready: &'a Mutex<Option<mpsc::Receiver<Result<RunCgroup, cgroup::CgroupError>>>>,
        retire: &'a mpsc::Sender<RunCgroup>,
    },
}

impl CgroupSource<'_> {
    /// Where a used cgroup goes: the remover thread, or (None) removal on this thread.
    fn remover(&self) -> Option<&mpsc::Sender<RunCgroup>> {
        match self {
            CgroupSource::Inline => None,
            CgroupSource::Pooled { retire, .. } => Some(retire),
        }
    }
}

/// Held by each worker: the last one out (even by a panic) drops the receiving end of the
/// creator's channel, so its next send fails and it ends; what it made ahead is removed
/// on drop.
struct LastOut<'a> {
    live_workers: &'a AtomicUsize,
    ready: &'a Mutex<Option<mpsc::Receiver<Result<RunCgroup, cgroup::CgroupError>>>>,
}

impl Drop for LastOut<'_> {
    fn drop(&mut self) {
        if self.live_workers.fetch_sub(1, Ordering::SeqCst) == 1 {
            drop(self.ready.lock().unwrap_or_else(|e| e.into_inner()).take());
        }
    }
}

/// One worker's state across its tests of one submission: its warm sandbox and the
/// cgroup its tests reuse (reset between them); nothing of it outlives the submission.
#[derive(Default)]
struct Worker {
    warm: Option<WarmRuns>,
    cgroup: Option<RunCgroup>,
}

/// Runs every test, `job.parallel` at a time; reports come back in test order.
///
/// One worker (the server's case, and `--parallel 1`) runs the tests on this thread and
/// makes and removes its cgroups here: helper threads would cost more in wakeups than
/// they overlap. More workers take pre-created cgroups (a warm sandbox's tests reuse one,
/// reset between them) from a creator thread and hand used ones to a remover thread; the
/// creator stops when the last worker drops the receiving end, the remover when the last
/// worker drops its sender.
fn run_tests(job: &Job, work: &WorkDir) -> Result<Vec<TestReport>, JudgeError> {
    let n = job.tests.len();
    let tests = TestQueue {
        job,
        work,
        slots: (0..n).map(|_| Mutex::new(None)).collect(),
        next: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        budget: ExcerptBudget::new(EXCERPT_BUDGET),
    };
    let workers = job.parallel.clamp(1, n.max(1));
    let pooled = job.cgroups.mode() != cgroup::Mode::None;
    if workers == 1 || !pooled {
        // The calling thread is one of the workers (the only one, usually).
        std::thread::scope(|s| {
            for _ in 1..workers {
                s.spawn(|| tests.work_through(&CgroupSource::Inline));
            }
            tests.work_through(&CgroupSource::Inline);
        });
        return tests.into_reports();
    }
    let limits = test_cgroup_limits(job);
    // Fresh cgroups per test: `workers` made ahead. Reused ones: one made ahead, for a
    // worker's first test (or one whose cgroup could not be reset).
    let ahead = if job.reuse { 0 } else { workers };
    let (ready_tx, ready_rx) = mpsc::sync_channel(ahead);
    let ready = Mutex::new(Some(ready_rx));
    let live_workers = AtomicUsize::new(workers);
    let (retire_tx, retire_rx) = mpsc::channel::<RunCgroup>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..n {
                if ready_tx.send(job.cgroups.create_run(&limits)).is_err() {
                    break;
                }
            }
        });
        s.spawn(move || {
            for cg in retire_rx {
                if let Err(e) = cg.remove() {
                    eprintln!(
                        "judgebox: warning: {}",
                        crate::display::escape_controls(&e.to_string())
                    );
                }
            }
        });
        for _ in 0..workers {
            let retire = retire_tx.clone();
            let (ready, live_workers, tests) = (&ready, &live_workers, &tests);
            s.spawn(move || {
                let _last_out = LastOut {
                    live_workers,
                    ready,
                };
                tests.work_through(&CgroupSource::Pooled {
                    ready,
                    retire: &retire,
                });
            });
        }
        drop(retire_tx);
    });
    tests.into_reports()
}

/// The tests of one submission and what its workers share: the next test to take, a slot
/// per test for its report, and whether one has failed (for `stop_on_first_failure`).
struct TestQueue<'a> {
    job: &'a Job<'a>,
    work: &'a WorkDir,
    slots: Vec<Mutex<Option<Result<TestReport, JudgeError>>>>,
    next: AtomicUsize,
    finished: AtomicUsize,
    failed: AtomicBool,
    budget: ExcerptBudget,
}

impl TestQueue<'_> {
    /// One worker: takes the next test until none is left, runs it and fills its slot.
    fn work_through(&self, source: &CgroupSource) {
        let job = self.job;
        let n = job.tests.len();
        // One network namespace per worker, joined by each of its tests (a fresh one per
        // run costs more kernel time than the rest of the sandbox setup): a pinned one
        // from the pool, else a fresh one. Tests never bring `lo` up and leave nothing
        // behind in it once their processes die. Tests with the network get a fresh
        // namespace each (lo up there never reaches a pooled one).
        let pinned = (!job.network).then(sandbox::netns_pool::lease).flatten();
        let fresh = (pinned.is_none() && !job.network)
            .then(|| sandbox::new_netns().ok())
            .flatten();
        let netns_fd = match (&pinned, &fresh) {
            (Some(p), _) => Some(p.fd.as_raw_fd()),
            (None, Some(f)) => Some(f.as_raw_fd()),
            (None, None) => None,
        };
        // This worker's warm sandbox, started at its first test; this submission's only
        // (dropped, and its init killed, when the worker ends).
        let mut worker = Worker::default();
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= n {
                break;
            }
            let case = &job.tests[i];
            let report = if job.stop_on_first_failure && self.failed.load(Ordering::SeqCst) {
                Ok(skipped(case))
            } else {
                run_test(
                    job,
                    self.work,
                    case,
                    source,
                    netns_fd,
                    &mut worker,
                    &self.budget,
                )
            };
            let bad = report
                .as_ref()
                .map_or(true, |r| r.verdict != Verdict::Accepted);
            if bad {
                self.failed.store(true, Ordering::SeqCst);
            }
            if let (Some(on_test), Ok(r)) = (job.on_test, &report) {
                on_test(self.finished.fetch_add(1, Ordering::SeqCst) + 1, r);
            }
            *self.slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
        }
        retire_cgroup(worker.cgroup.take(), source.remover());
    }

    /// The reports in test order; the first error, if a test could not be run.
    fn into_reports(self) -> Result<Vec<TestReport>, JudgeError> {
        self.slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .expect("every test ran")
            })
            .collect()
    }
}

/// The cgroup limits every test run gets (the manifest's, or the overrides).
fn test_cgroup_limits(job: &Job) -> cgroup::Limits {
    cgroup_limits(&job.lang.run, &job.overrides)
}

/// A step's limits from the manifest, each replaced by its override when given.
fn step_limits(step: &Step, overrides: &Overrides) -> Limits {
    let defaults = Limits::default();
    Limits {
        cpu_time: Some(overrides.time.unwrap_or(step.time)),
        cpu_per_process: overrides.cpu_per_process,
        wall_time: Some(overrides.wall_time.unwrap_or(step.wall_time)),
        extra_time: overrides.extra_time.unwrap_or(0.0),
        output: overrides.output.unwrap_or(step.output),
        memory: Some(overrides.memory.unwrap_or(step.memory)),
        pids: Some(overrides.pids.unwrap_or(step.pids)),
        stack: match overrides.stack {
            None => defaults.stack,
            Some(0) => None,
            Some(bytes) => Some(bytes),
        },
        ..defaults
    }
}

/// What a step's cgroup enforces: its limits, but with per-process memory only the
/// ceiling for the whole tree (each process's own cap is its RLIMIT_AS).
fn cgroup_limits(step: &Step, overrides: &Overrides) -> cgroup::Limits {
    let mut limits = step_limits(step, overrides).cgroup();
    if overrides.memory_per_process {
        limits.memory = overrides.memory_ceiling;
    }
    limits
}

/// Which mechanism enforces each of a step's limits: the cgroup manager's answer, with
/// per-process memory as RLIMIT_AS (the sandbox then sets it from `Limits::memory`).
fn enforcement(job: &Job, step: &Step, overrides: &Overrides) -> cgroup::Enforcement {
    let mut e = job.cgroups.enforcement(&cgroup_limits(step, overrides));
    if overrides.memory_per_process {
        e.memory = cgroup::Mechanism::Rlimit;
    }
    e
}

fn skipped(case: &TestCase) -> TestReport {
    TestReport {
        name: case.name.clone(),
        verdict: Verdict::Skipped,
        judge0: judge0_status(Verdict::Skipped, None),
        run: None,
    }
}

fn run_test(
    job: &Job,
    work: &WorkDir,
    case: &TestCase,
    source: &CgroupSource,
    netns: Option<RawFd>,
    worker: &mut Worker,
    budget: &ExcerptBudget,
) -> Result<TestReport, JudgeError> {
    let lang = job.lang;
    let (argv, files) = test_program(job, work);
    let spec = StepSpec {
        argv,
        step: &lang.run,
        overrides: &job.overrides,
        files,
        stdin: case.input.clone(),
        copy_out: Vec::new(),
        network: job.network,
    };
    let (mut run, captured) = match job.reuse {
        true => run_warm(job, work, worker, spec, source, netns)?,
        false => run_sandboxed(job, work, spec, source, netns)?,
    };
    let verdict = match verdict::verdict_of_run(&run) {
        Some(Verdict::RuntimeError) if captured.stderr_contains_any(&lang.memory_errors)? => {
            Verdict::MemoryLimit
        }
        Some(v) => v,
        None => match &case.expected {
            None => Verdict::Accepted,
            Some(path) => compare_output(job.compare, case, path, &captured)?,
        },
    };
    let share = budget.take(2 * TEST_EXCERPT_BYTES) / 2;
    (run.stdout, run.stderr) = captured.excerpts(share)?;
    Ok(TestReport {
        name: case.name.clone(),
        verdict,
        judge0: judge0_status(verdict, Some(&run)),
        run: Some(run),
    })
}

/// Every test's command line and files: the artifacts (or, without a compile step, the
/// source), read-only.
fn test_program(job: &Job, work: &WorkDir) -> (Vec<String>, Vec<CopyIn>) {
    let lang = job.lang;
    let memory = job.overrides.memory.unwrap_or(lang.run.memory);
    let argv = lang.run_argv(&job.args, memory);
    let mut files: Vec<CopyIn> = lang
        .artifacts
        .iter()
        .map(|a| CopyIn {
            source: work.path.join(a),
            name: a.clone(),
            read_only: true,
        })
        .collect();
    if lang.compile.is_none() {
        files.push(CopyIn {
            source: job.source.clone(),
            name: lang.source_file.clone(),
            read_only: true,
        });
    }
    (argv, files)
}

/// The program's captured stdout against the expected file, both read as streams. The
/// expected file is opened as the tests were checked: no symlink, regular files only.
fn compare_output(
    compare: Compare,
    case: &TestCase,
    expected: &Path,
    captured: &Captured,
) -> Result<Verdict, JudgeError> {
    let file = crate::safe_open::open_regular(expected).map_err(|e| JudgeError::Source {
        path: expected.to_path_buf(),
        source: e.into_io(),
    })?;
    let actual = captured.open_stdout()?;
    let same = compare
        .matches_stream(actual, file)
        .map_err(|source| JudgeError::Compare {
            test: case.name.clone(),
            expected: expected.to_path_buf(),
            source,
        })?;
    Ok(if same {
        Verdict::Accepted
    } else {
        Verdict::WrongAnswer
    })
}

/// What one sandboxed step runs: its command, limits, files in and out, and stdin.
struct StepSpec<'a> {
    argv: Vec<String>,
    step: &'a Step,
    overrides: &'a Overrides,
    files: Vec<CopyIn>,
    stdin: Option<PathBuf>,
    copy_out: Vec<CopyOut>,
    /// `lo` up in the run's own network namespace.
    network: bool,
}

/// A test in the worker's warm sandbox (started at its first test, or again after one
/// that lost its init); a fresh sandbox for the test when none can be had. Its output
/// goes to files in the work dir, as [`run_sandboxed`]'s.
fn run_warm(
    job: &Job,
    work: &WorkDir,
    worker: &mut Worker,
    spec: StepSpec,
    source: &CgroupSource,
    netns: Option<RawFd>,
) -> Result<(RunResult, Captured), JudgeError> {
    let warm = &mut worker.warm;
    if warm.as_ref().is_none_or(|w| !w.usable()) {
        let limits = step_limits(spec.step, spec.overrides);
        let enforced = Enforced {
            cgroup: None,
            enforcement: enforcement(job, spec.step, spec.overrides),
            filter: job.filter.as_ref(),
            netns,
            fixed_uid: false,
            fixed_gid: false,
        };
        let config = Config {
            rootfs: job.env.rootfs.clone(),
            argv: spec.argv.clone(),
            env: sandbox::overlay_env(&job.env.image_env, &job.lang.env),
            files: spec.files.clone(),
            limits,
            loopback: spec.network,
            ..Config::default()
        };
        *warm = WarmRuns::start(config, enforced).ok();
    }
    let mut captured = Captured::in_dir(&work.path);
    let mut kept = worker.cgroup.take();
    let run_cgroup = match kept.as_mut().is_some_and(|c| c.reset().unwrap_or(false)) {
        true => kept,
        false => {
            retire_cgroup(kept, source.remover());
            take_cgroup(job, source, spec.step, spec.overrides)?
        }
    };
    let outcome = match warm.as_mut() {
        Some(w) => w.run(
            spec.stdin.as_deref(),
            (&captured.stdout, &captured.stderr),
            run_cgroup.as_deref(),
        ),
        None => Err(sandbox::SandboxError::WarmUnsupported),
    };
    // The next test of this warm sandbox resets and reuses it (the monitor left it empty).
    match warm.as_ref().is_some_and(|w| w.usable()) && outcome.is_ok() {
        true => worker.cgroup = run_cgroup,
        false => retire_cgroup(run_cgroup, source.remover()),
    }
    match outcome {
        Ok(mut run) => {
            // What stayed small is in the result, not in files.
            captured.hold(
                std::mem::take(&mut run.stdout),
                std::mem::take(&mut run.stderr),
            );
            Ok((run, captured))
        }
        Err(sandbox::SandboxError::WarmUnsupported | sandbox::SandboxError::WarmSetup(_)) => {
            run_sandboxed(job, work, spec, &CgroupSource::Inline, netns)
        }
        Err(e) => Err(e.into()),
    }
}

/// One sandboxed run with its own cgroup and seccomp gate; its output goes to files in the
/// work dir (returned, removed when dropped), never into the judge's memory.
fn run_sandboxed(
    job: &Job,
    work: &WorkDir,
    spec: StepSpec,
    source: &CgroupSource,
    netns: Option<RawFd>,
) -> Result<(RunResult, Captured), JudgeError> {
    let StepSpec {
        argv,
        step,
        overrides,
        files,
        stdin,
        copy_out,
        network,
    } = spec;
    let captured = Captured::in_dir(&work.path);
    let config = Config {
        rootfs: job.env.rootfs.clone(),
        argv,
        env: sandbox::overlay_env(&job.env.image_env, &job.lang.env),
        files,
        copy_out,
        stdin,
        stdout_file: Some(captured.stdout.clone()),
        stderr_file: Some(captured.stderr.clone()),
        limits: step_limits(step, overrides),
        loopback: network,
        ..Config::default()
    };
    let enforcement = enforcement(job, step, overrides);
    let run_cgroup = take_cgroup(job, source, step, overrides)?;
    let outcome = sandbox::run_enforced(
        config,
        Enforced {
            cgroup: run_cgroup.as_deref(),
            enforcement,
            filter: job.filter.as_ref(),
            netns,
            fixed_uid: false,
            fixed_gid: false,
        },
    );
    retire_cgroup(run_cgroup, source.remover());
    Ok((outcome?, captured))
}

/// The run's cgroup: made here, or the next one the creator thread made ahead.
fn take_cgroup(
    job: &Job,
    source: &CgroupSource,
    step: &Step,
    overrides: &Overrides,
) -> Result<Option<RunCgroup>, JudgeError> {
    Ok(match (job.cgroups.mode(), source) {
        (cgroup::Mode::None, _) => None,
        (_, CgroupSource::Inline) => {
            let limits = cgroup_limits(step, overrides);
            Some(job.cgroups.create_run(&limits)?)
        }
        (_, CgroupSource::Pooled { ready, .. }) => {
            let ready = ready.lock().map_err(|_| poisoned())?;
            let next = ready.as_ref().ok_or_else(poisoned)?.recv();
            Some(next.map_err(|_| poisoned())??)
        }
    })
}

/// Hands a used cgroup to the remover thread, or removes it here.
fn retire_cgroup(run_cgroup: Option<RunCgroup>, remover: Option<&mpsc::Sender<RunCgroup>>) {
    let Some(cg) = run_cgroup else {
        return;
    };
    let cg = match remover {
        // A remover that is gone hands it back, and it is removed here.
        Some(remover) => match remover.send(cg) {
            Ok(()) => return,
            Err(mpsc::SendError(cg)) => cg,
        },
        None => cg,
    };
    if let Err(e) = cg.remove() {
        eprintln!(
            "judgebox: warning: {}",
            crate::display::escape_controls(&e.to_string())
        );
    }
}

fn poisoned() -> JudgeError {
    JudgeError::Cgroup(cgroup::CgroupError::Unavailable(
        "the cgroup creator thread stopped".into(),
    ))
}

/// A private host directory for the compiled artifacts; removed on drop.
struct WorkDir {
    path: PathBuf,
}

const WORK_DIR_PREFIX: &str = "judgebox-judge-";

impl WorkDir {
    fn create() -> Result<WorkDir, JudgeError> {
        use std::os::unix::fs::DirBuilderExt;
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        // Work dirs of judges that were killed hold artifacts and captured outputs: the
        // first judge of each process removes those whose process is gone.
        static STALE_REMOVED: std::sync::Once = std::sync::Once::new();
        STALE_REMOVED.call_once(|| crate::scratch::remove_stale(WORK_DIR_PREFIX));
        let path = crate::scratch::base().join(format!(
            "{WORK_DIR_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| JudgeError::WorkDir {
                path: path.clone(),
                source,
            })?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Report {
    /// Tests that ended accepted.
    pub fn passed(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| t.verdict == Verdict::Accepted)
            .count()
    }

    /// One JSON object: the verdict, Judge0's status, the compile step and every test.
    /// It serializes each test as it goes, so writing it (`serde_json::to_writer`) never
    /// holds the whole document: a judge's memory does not jump at the end of a long run.
    pub fn json(&self) -> ReportJson<'_> {
        let runs = self.tests.iter().filter_map(|t| t.run.as_ref());
        let max_cpu = runs.clone().map(|r| r.cpu_time).fold(0.0, f64::max);
        ReportJson {
            language: json!({"name": self.language, "display": self.display}),
            verdict: self.verdict.as_str(),
            status: self.judge0,
            passed: self.passed(),
            total: self.tests.len(),
            max_cpu_time: round3(max_cpu),
            max_memory: runs.filter_map(|r| r.memory_peak).max(),
            elapsed: round3(self.elapsed),
            compile: self.compile.as_ref().map(|c| {
                json!({
                    "verdict": c.verdict.as_str(),
                    "status": c.judge0,
                    "cpu_time": round3(c.run.cpu_time),
                    "wall_time": round3(c.run.wall_time),
                    "memory_peak": c.run.memory_peak,
                    "exit_code": c.run.exit_code,
                    "message": c.run.message,
                    "output": compile_output(&c.run),
                })
            }),
            tests: TestsJson(&self.tests),
        }
    }
}

/// See [`Report::json`].
#[derive(serde::Serialize)]
pub struct ReportJson<'a> {
    language: Value,
    verdict: &'static str,
    status: Judge0Status,
    passed: usize,
    total: usize,
    max_cpu_time: f64,
    max_memory: Option<u64>,
    elapsed: f64,
    compile: Option<Value>,
    tests: TestsJson<'a>,
}

/// The tests of a report, each made into JSON only when it is written.
pub struct TestsJson<'a>(&'a [TestReport]);

impl serde::Serialize for TestsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(test_json))
    }
}

fn test_json(t: &TestReport) -> Value {
    let mut v = json!({
        "name": t.name,
        "verdict": t.verdict.as_str(),
        "status": t.judge0,
    });
    if let Some(r) = &t.run {
        let obj = v.as_object_mut().expect("object");
        for (k, val) in [
            ("cpu_time", json!(round3(r.cpu_time))),
            ("wall_time", json!(round3(r.wall_time))),
            ("memory_peak", json!(r.memory_peak)),
            ("exit_code", json!(r.exit_code)),
            ("signal", json!(r.signal.map(sandbox::result::signal_name))),
            ("message", json!(r.message)),
            ("stdout", json!(clip(&r.stdout))),
            ("stderr", json!(clip(&r.stderr))),
            ("enforcement", json!(r.enforcement)),
        ] {
            obj.insert(k.into(), val);
        }
    }
    v
}

/// What the compiler printed (stdout then stderr), as Judge0's `compile_output`.
pub fn compile_output(r: &RunResult) -> String {
    let mut out = clip(&r.stdout);
    out.push_str(&clip(&r.stderr));
    out
}

fn clip(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(REPORT_OUTPUT_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
