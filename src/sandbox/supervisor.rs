//! The supervisor: the host-side half of a run. It clones init into fresh namespaces,
//! releases it once the cgroup is in place, captures output through pipes, enforces the
//! wall, CPU and output limits, and turns init's reports into a [`RunResult`].

use super::init::{self, InitChannels, MAX_CGROUP_JOIN};
use super::namespaces::CLONE_FLAGS;
use super::prepare::{prepare, Prepared};
use super::report::*;
use super::result::{signal_name, RunResult, Status};
use super::sys;
use super::{Config, Hooks, SandboxError};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long init gets, after SIGTERM, to kill, reap and report before it is SIGKILLed.
const TERM_GRACE: Duration = Duration::from_millis(500);

fn sys_err(step: &'static str, errno: i32) -> SandboxError {
    SandboxError::Sys {
        step,
        source: std::io::Error::from_raw_os_error(errno),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds that we immediately own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(sys_err("create pipe", sys::errno()));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs `config` to completion. Errors are bad input or host failures before the program
/// could start; everything after that (including sandbox setup failures) is a result.
pub fn run(config: &Config, hooks: &Hooks) -> Result<RunResult, SandboxError> {
    let prepared = prepare(config, hooks)?;
    let result = run_prepared(config, hooks, &prepared);
    match &result {
        Ok(r) if r.status != Status::InternalError => {}
        _ => prepared.discard_outputs(),
    }
    result
}

fn run_prepared(config: &Config, hooks: &Hooks, p: &Prepared) -> Result<RunResult, SandboxError> {
    let mut sinks = Sinks::open(config)?;
    let (sync_r, sync_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let join_fds = match hooks.cgroup {
        Some(cg) if cg.clone_into_fd().is_none() => cg.join_fds(),
        _ => Vec::new(),
    };
    let mut cgroup_join = [-1; MAX_CGROUP_JOIN];
    if join_fds.len() <= MAX_CGROUP_JOIN {
        cgroup_join[..join_fds.len()].copy_from_slice(&join_fds);
    }
    let channels = InitChannels {
        sync_read: sync_r.as_raw_fd(),
        netns: hooks.netns.filter(|_| !config.loopback).unwrap_or(-1),
        report_write: report_w.as_raw_fd(),
        stdout_write: out_w.as_raw_fd(),
        stderr_write: err_w.as_raw_fd(),
        cgroup_join,
    };
    let started = Instant::now();
    let (pid, cloned_into) = spawn_init(p, &channels, hooks)?;
    let in_cgroup = cloned_into || cgroup_join[0] >= 0;
    drop((sync_r, report_w, out_w, err_w));
    let mut monitor = Monitor::new(pid, started, config, hooks);
    if let Some(cg) = hooks.cgroup {
        if !in_cgroup {
            if let Err(e) = cg.attach(pid) {
                kill_hard(pid);
                return Err(SandboxError::Sys {
                    step: "attach sandbox to its cgroup",
                    source: std::io::Error::other(e),
                });
            }
        }
    }
    if sys::write_all(sync_w.as_raw_fd(), b"g").is_err() {
        kill_hard(pid);
        return Err(sys_err("release sandbox init", sys::errno()));
    }
    // With a killing filter init waits for a second byte once the program has started
    // (see `on_report`); otherwise EOF is all init needs.
    if hooks.filter.is_some_and(|f| f.kills()) {
        monitor.pid_ack = Some(sync_w);
    } else {
        drop(sync_w);
    }
    let outcome = monitor.watch(
        File::from(report_r),
        File::from(out_r),
        File::from(err_r),
        &mut sinks,
    );
    let mut result = interpret(config, hooks, &outcome);
    finish_copy_out(p, &outcome, &mut result);
    sinks.finish(&mut result);
    Ok(result)
}

/// Clones init into new namespaces, directly into the run's cgroup when it is v2.
/// Returns init's pid and whether it was created inside the cgroup.
fn spawn_init(p: &Prepared, ch: &InitChannels, hooks: &Hooks) -> Result<(i32, bool), SandboxError> {
    let cg_fd = hooks.cgroup.and_then(|c| c.clone_into_fd());
    let flags = if ch.netns >= 0 {
        CLONE_FLAGS & !(libc::CLONE_NEWNET as u64)
    } else {
        CLONE_FLAGS
    };
    let mut result = sys::clone_process(flags, cg_fd);
    let mut in_cgroup = cg_fd.is_some();
    if result.is_err() && cg_fd.is_some() {
        // Old kernel or an unusable cgroup fd: plain clone, then attach through cgroup.procs.
        result = sys::clone_process(flags, None);
        in_cgroup = false;
    }
    match result {
        Ok(0) => init::run(p, ch, hooks.filter),
        Ok(pid) => Ok((pid, in_cgroup)),
        Err(e) => Err(sys_err("clone sandbox init (needs CAP_SYS_ADMIN)", e)),
    }
}

fn kill_hard(pid: i32) {
    // SAFETY: pid is our own child; reaping it afterwards avoids a zombie.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// Where the program's stdout/stderr go.
enum Sink {
    Memory(Vec<u8>),
    File(File),
    Passthrough(std::io::Stdout),
    PassthroughErr(std::io::Stderr),
}

struct Sinks {
    out: Sink,
    err: Sink,
    out_truncated: bool,
    err_truncated: bool,
}

impl Sinks {
    fn open(config: &Config) -> Result<Sinks, SandboxError> {
        let open = |path: &Path| {
            File::create(path).map_err(|source| SandboxError::OutputFile {
                path: path.to_path_buf(),
                source,
            })
        };
        let given = |f: &File| {
            f.try_clone().map_err(|source| SandboxError::OutputFile {
                path: "(open file)".into(),
                source,
            })
        };
        let out = match (&config.stdout_to, &config.stdout_file, config.stream_output) {
            (Some(f), _, _) => Sink::File(given(f)?),
            (None, Some(p), _) => Sink::File(open(p)?),
            (None, None, true) => Sink::Passthrough(std::io::stdout()),
            (None, None, false) => Sink::Memory(Vec::new()),
        };
        let err = match (&config.stderr_to, &config.stderr_file, config.stream_output) {
            (Some(f), _, _) => Sink::File(given(f)?),
            (None, Some(p), _) => Sink::File(open(p)?),
            (None, None, true) => Sink::PassthroughErr(std::io::stderr()),
            (None, None, false) => Sink::Memory(Vec::new()),
        };
        Ok(Sinks {
            out,
            err,
            out_truncated: false,
            err_truncated: false,
        })
    }

    fn write(&mut self, stderr: bool, data: &[u8]) {
        let sink = if stderr { &mut self.err } else { &mut self.out };
        let _ = match sink {
            Sink::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Sink::File(f) => f.write_all(data),
            Sink::Passthrough(s) => s.write_all(data).and_then(|_| s.flush()),
            Sink::PassthroughErr(s) => s.write_all(data),
        };
    }

    fn finish(self, result: &mut RunResult) {
        result.stdout_truncated = self.out_truncated;
        result.stderr_truncated = self.err_truncated;
        if let Sink::Memory(v) = self.out {
            result.stdout = v;
        }
        if let Sink::Memory(v) = self.err {
            result.stderr = v;
        }
    }
}

/// What the supervisor saw of a run.
#[derive(Default)]
struct Outcome {
    started: Option<Report>,
    finished: Option<Report>,
    failure: Option<Report>,
    copy_outs: Vec<Report>,
    killed_for: Option<Status>,
    wall: Duration,
    last_cpu_ns: u64,
    program_host_pid: Option<i32>,
    usage: super::CgroupUsage,
}

struct Monitor<'a> {
    pid: i32,
    started: Instant,
    config: &'a Config,
    hooks: &'a Hooks<'a>,
    outcome: Outcome,
    term_sent: Option<Instant>,
    hard_killed: bool,
    output_used: u64,
    next_cpu_check: Instant,
    clock_ticks: u64,
    cpus: u64,
    /// Held until the program's host pid is noted; init does not reap it before.
    pid_ack: Option<OwnedFd>,
}

impl<'a> Monitor<'a> {
    fn new(pid: i32, started: Instant, config: &'a Config, hooks: &'a Hooks<'a>) -> Monitor<'a> {
        // SAFETY: sysconf with constant names.
        let clock_ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let cpus = if config.limits.cpu_time.is_some() {
            online_cpus()
        } else {
            1
        };
        Monitor {
            pid,
            started,
            config,
            hooks,
            outcome: Outcome::default(),
            term_sent: None,
            hard_killed: false,
            output_used: 0,
            next_cpu_check: started,
            clock_ticks,
            cpus,
            pid_ack: None,
        }
    }

    fn watch(
        mut self,
        mut report: File,
        mut out: File,
        mut err: File,
        sinks: &mut Sinks,
    ) -> Outcome {
        let mut open = [true, true, true];
        let mut buf = vec![0u8; 64 * 1024];
        let mut partial = Vec::with_capacity(REPORT_SIZE);
        while open.iter().any(|o| *o) {
            let timeout = self.poll_timeout();
            let mut fds = [
                libc::pollfd {
                    fd: if open[0] { report.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if open[1] { out.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if open[2] { err.as_raw_fd() } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: fds is a valid array of pollfd of the length passed.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
            if n < 0 && sys::errno() != libc::EINTR {
                break;
            }
            if fds[0].revents != 0 {
                open[0] = self.read_reports(&mut report, &mut partial);
            }
            for (i, file) in [(1usize, &mut out), (2usize, &mut err)] {
                if fds[i].revents != 0 {
                    open[i] = self.read_output(file, &mut buf, i == 2, sinks);
                }
            }
            self.check_limits(!open[0]);
        }
        self.reap();
        self.outcome.wall = self.started.elapsed();
        if let Some(cg) = self.hooks.cgroup {
            cg.kill();
            self.outcome.usage = cg.usage();
        }
        self.outcome
    }

    /// Milliseconds until the next deadline (wall, CPU check, or grace after SIGTERM).
    fn poll_timeout(&self) -> i32 {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some(t) = self.term_sent {
            consider(t + TERM_GRACE);
        } else {
            if let Some(w) = self.wall_deadline() {
                consider(w);
            }
            if self.config.limits.cpu_time.is_some() {
                consider(self.next_cpu_check);
            }
        }
        match next {
            None => -1,
            Some(t) => {
                t.saturating_duration_since(now)
                    .as_millis()
                    .min(i32::MAX as u128) as i32
                    + 1
            }
        }
    }

    fn wall_deadline(&self) -> Option<Instant> {
        let l = &self.config.limits;
        l.wall_time
            .map(|w| self.started + Duration::from_secs_f64(w + l.extra_time))
    }

    /// Reads whole reports; returns false at EOF (init is gone).
    fn read_reports(&mut self, report: &mut File, partial: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; REPORT_SIZE * 8];
        let n = match report.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        partial.extend_from_slice(&buf[..n]);
        while partial.len() >= REPORT_SIZE {
            let bytes: [u8; REPORT_SIZE] = partial[..REPORT_SIZE].try_into().expect("report size");
            partial.drain(..REPORT_SIZE);
            self.on_report(Report::from_bytes(&bytes));
        }
        true
    }

    fn on_report(&mut self, r: Report) {
        match r.kind {
            KIND_STARTED => {
                if let Some(ack) = self.pid_ack.take() {
                    self.outcome.program_host_pid = program_host_pid(self.pid);
                    let _ = sys::write_all(ack.as_raw_fd(), b"a");
                }
                self.outcome.started = Some(r);
            }
            KIND_FINISHED => self.outcome.finished = Some(r),
            KIND_SETUP_FAILED | KIND_EXEC_FAILED => self.outcome.failure = Some(r),
            KIND_COPY_OUT => self.outcome.copy_outs.push(r),
            _ => {}
        }
    }

    /// Moves output to its sink under the shared cap; returns false at EOF.
    fn read_output(
        &mut self,
        file: &mut File,
        buf: &mut [u8],
        stderr: bool,
        sinks: &mut Sinks,
    ) -> bool {
        let n = match file.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        let limit = self.config.limits.output;
        let room = limit.saturating_sub(self.output_used) as usize;
        let keep = n.min(room);
        sinks.write(stderr, &buf[..keep]);
        self.output_used += keep as u64;
        if keep < n {
            if stderr {
                sinks.err_truncated = true;
            } else {
                sinks.out_truncated = true;
            }
            self.stop(Status::OutputLimit);
        }
        true
    }

    fn check_limits(&mut self, init_gone: bool) {
        if init_gone {
            return;
        }
        let now = Instant::now();
        if let Some(t) = self.term_sent {
            if now >= t + TERM_GRACE && !self.hard_killed {
                self.hard_killed = true;
                // SAFETY: SIGKILL to our own child (init); the pid namespace dies with it.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
            return;
        }
        if self.wall_deadline().is_some_and(|d| now >= d) {
            self.stop(Status::WallTimeLimit);
            return;
        }
        // Until init reports the program started, /proc/<init>/root is still the host's root.
        let started = self.outcome.started.is_some();
        if let (Some(limit), true) = (self.config.limits.cpu_time, started) {
            if now >= self.next_cpu_check {
                let used = self.cpu_used_ns();
                self.outcome.last_cpu_ns = used;
                let budget = ((limit + self.config.limits.extra_time) * 1e9) as u64;
                if used >= budget {
                    self.stop(Status::TimeLimit);
                    return;
                }
                // CPU time grows at most `cpus` times faster than wall time.
                let wait_ns = ((budget - used) / self.cpus).clamp(2_000_000, 200_000_000);
                self.next_cpu_check = now + Duration::from_nanos(wait_ns);
            }
        }
    }

    fn cpu_used_ns(&self) -> u64 {
        if let Some(ns) = self.hooks.cgroup.and_then(|c| c.cpu_usage_ns()) {
            return ns;
        }
        tree_cpu_ticks(self.pid) * 1_000_000_000 / self.clock_ticks
    }

    /// Asks init to kill everything (it then reaps and reports exact usage).
    fn stop(&mut self, why: Status) {
        if self.term_sent.is_some() {
            return;
        }
        self.outcome.killed_for = Some(why);
        self.term_sent = Some(Instant::now());
        // SAFETY: SIGTERM to our own child; init's handler kills the namespace's processes,
        // then init reaps them and reports exact usage.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
    }

    fn reap(&mut self) {
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
            if r >= 0 || sys::errno() != libc::EINTR {
                break;
            }
        }
    }
}

/// CPUs this process may run on (cheap: one syscall, unlike std's cgroup-aware probe).
fn online_cpus() -> u64 {
    // SAFETY: set is a valid out-buffer for sched_getaffinity.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            libc::CPU_COUNT(&set).max(1) as u64
        } else {
            1
        }
    }
}

/// The program's pid as the host sees it: init's only direct child.
fn program_host_pid(init: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU ticks used so far by every process in the sandbox, read through the sandbox's own
/// /proc (reachable from the host as /proc/<init>/root/proc): live processes' own time plus
/// the time of the children they reaped. Init's own setup time is not counted.
fn tree_cpu_ticks(init: i32) -> u64 {
    let dir = format!("/proc/{init}/root/proc");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("{dir}/{pid}/stat")) else {
            continue;
        };
        if let Some((own, reaped)) = parse_stat_times(&stat) {
            total += reaped + if pid == 1 { 0 } else { own };
        }
    }
    total
}

/// (utime+stime, cutime+cstime) from a /proc/PID/stat line.
fn parse_stat_times(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ", field 3 (state) is index 0; utime is field 14 -> index 11.
    let num = |i: usize| {
        f.get(i)
            .and_then(|s| s.parse::<i64>().ok())
            .map(|v| v.max(0) as u64)
    };
    Some((num(11)? + num(12)?, num(13)? + num(14)?))
}

fn errno_text(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// Turns what the supervisor saw into a status, times and a message.
fn interpret(config: &Config, hooks: &Hooks, o: &Outcome) -> RunResult {
    if let Some(f) = &o.failure {
        return failure_result(config, f, o);
    }
    let mut r = RunResult::new(Status::Ok, String::new());
    if let Some(e) = hooks.enforcement {
        r.enforcement = e;
    }
    r.wall_time = o.wall.as_secs_f64();
    r.cpu_time = o.last_cpu_ns as f64 / 1e9;
    if let Some(f) = &o.finished {
        r.cpu_time = (f.utime_us + f.stime_us) as f64 / 1e6;
        r.wall_time = f.end_ns.saturating_sub(f.start_ns) as f64 / 1e9;
        r.max_rss_kb = f.maxrss_kb;
        r.memory_peak = Some(f.maxrss_kb * 1024);
        r.csw_voluntary = f.nvcsw;
        r.csw_forced = f.nivcsw;
        decode_wait_status(f.wait_status, &mut r);
    } else if let Some(s) = &o.started {
        r.wall_time =
            (sys::monotonic_ns().saturating_sub(s.start_ns) as f64 / 1e9).min(r.wall_time);
    }
    apply_cgroup_usage(&o.usage, &mut r);
    r.killed = o.killed_for.is_some();
    let (status, message) = classify(config, hooks, o, &r);
    r.status = status;
    r.message = message;
    r
}

fn apply_cgroup_usage(u: &super::CgroupUsage, r: &mut RunResult) {
    if let Some(ns) = u.cpu_ns {
        r.cpu_time = ns as f64 / 1e9;
    }
    if let Some(peak) = u.memory_peak {
        r.memory_peak = Some(peak);
        r.cgroup_memory_peak = Some(peak);
    }
    r.oom_killed = u.oom_killed;
    r.pids_peak = u.pids_peak;
}

fn decode_wait_status(status: i32, r: &mut RunResult) {
    if libc::WIFEXITED(status) {
        r.exit_code = Some(libc::WEXITSTATUS(status));
    } else if libc::WIFSIGNALED(status) {
        r.signal = Some(libc::WTERMSIG(status));
    }
}

fn classify(config: &Config, hooks: &Hooks, o: &Outcome, r: &RunResult) -> (Status, String) {
    let l = &config.limits;
    if let Some(why) = o.killed_for {
        let msg = match why {
            Status::TimeLimit => {
                format!("cpu time limit of {} s exceeded", l.cpu_time.unwrap_or(0.0))
            }
            Status::WallTimeLimit => format!(
                "wall time limit of {} s exceeded",
                l.wall_time.unwrap_or(0.0)
            ),
            Status::OutputLimit => format!(
                "output limit of {} exceeded",
                crate::units::human_bytes(l.output)
            ),
            _ => String::new(),
        };
        return (why, msg);
    }
    if o.finished.is_none() {
        return (
            Status::InternalError,
            "sandbox init ended without a report".into(),
        );
    }
    if r.oom_killed {
        return (
            Status::MemoryLimit,
            "memory limit exceeded (killed by the out-of-memory killer)".into(),
        );
    }
    if l.cpu_time.is_some_and(|t| r.cpu_time > t) || r.signal == Some(libc::SIGXCPU) {
        return (
            Status::TimeLimit,
            format!("cpu time limit of {} s exceeded", l.cpu_time.unwrap_or(0.0)),
        );
    }
    if l.wall_time.is_some_and(|t| r.wall_time > t) {
        return (
            Status::WallTimeLimit,
            format!(
                "wall time limit of {} s exceeded",
                l.wall_time.unwrap_or(0.0)
            ),
        );
    }
    match (r.exit_code, r.signal) {
        (_, Some(libc::SIGSYS)) if hooks.filter.is_some_and(|f| f.kills()) => {
            let which = o
                .program_host_pid
                .and_then(|pid| hooks.filter.and_then(|f| f.explain_kill(pid)));
            let msg = match which {
                Some(name) => format!("forbidden system call {name}"),
                None => "killed by the seccomp filter (forbidden system call; the kernel did not report which)".into(),
            };
            (Status::SecurityViolation, msg)
        }
        (_, Some(sig)) => (
            Status::Signaled,
            format!("killed by signal {sig} ({})", signal_name(sig)),
        ),
        (Some(0), _) => (Status::Ok, String::new()),
        (Some(code), _) => (Status::RuntimeError, format!("exited with code {code}")),
        (None, None) => (
            Status::InternalError,
            "program ended in an unknown way".into(),
        ),
    }
}

fn failure_result(config: &Config, f: &Report, o: &Outcome) -> RunResult {
    let step = Step::from_u32(f.step);
    let what = errno_text(f.errno);
    let (status, message) = match (f.kind, step) {
        (KIND_EXEC_FAILED, Step::Execve) => (
            Status::ExecError,
            format!(
                "cannot execute '{}' inside the rootfs: {what}",
                config.argv[0]
            ),
        ),
        (KIND_EXEC_FAILED, Step::SetRlimit) => (
            Status::InternalError,
            format!("sandbox setup failed: set rlimits: {what}"),
        ),
        _ => (
            Status::InternalError,
            format!(
                "sandbox setup failed: {}{}: {what}",
                step.describe(),
                step_detail(step, f.index)
            ),
        ),
    };
    let mut r = RunResult::new(status, message);
    r.wall_time = o.wall.as_secs_f64();
    r
}

fn step_detail(step: Step, index: u32) -> String {
    use super::prepare::{MASKED_PATHS, READONLY_PATHS};
    let name = match step {
        Step::MaskProcPath => MASKED_PATHS.get(index as usize),
        Step::ReadonlyProcPath => READONLY_PATHS.get(index as usize),
        _ => None,
    };
    name.map(|n| format!(" /{n}")).unwrap_or_default()
}

/// Renames each successfully copied file into place; reports failures in the message.
fn finish_copy_out(p: &Prepared, o: &Outcome, r: &mut RunResult) {
    for (i, out) in p.outs.iter().enumerate() {
        let report = o.copy_outs.iter().find(|c| c.index as usize == i);
        let problem = match report {
            Some(c) if c.errno == 0 => match std::fs::rename(&out.temp, &out.dest) {
                Ok(()) => None,
                Err(e) => Some(format!("cannot move into place: {e}")),
            },
            Some(c) if c.errno == libc::EINVAL => Some("not a regular file".to_string()),
            Some(c) if c.errno == libc::EFBIG => Some(format!(
                "larger than the copy-out cap of {}",
                crate::units::human_bytes(p.copy_out_limit)
            )),
            Some(c) if c.errno == libc::EMLINK => {
                Some("refused: the file has other hard links".to_string())
            }
            Some(c) if c.errno == libc::ELOOP || c.errno == libc::EXDEV => {
                Some("refused: the path goes through a symlink".to_string())
            }
            Some(c) => Some(errno_text(c.errno)),
            None => Some("not copied (the run did not finish normally)".to_string()),
        };
        if let Some(problem) = problem {
            let _ = std::fs::remove_file(&out.temp);
            let name = out.name.to_string_lossy();
            let note = format!("copy-out {name}: {problem}");
            r.message = if r.message.is_empty() {
                note
            } else {
                format!("{}; {note}", r.message)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_parse_with_odd_comm() {
        let line = "42 (a) b (c)) R 1 42 42 0 -1 4194560 100 0 0 0 150 25 7 3 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_times(line), Some((175, 10)));
    }
}
