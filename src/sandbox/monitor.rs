//! The supervisor's watch over a live run: one poll loop over init's messages and the
//! program's stdout/stderr, which enforces the wall-time, CPU-time and output limits
//! (asking init to kill everything, SIGKILL if it does not) and records what it saw.

use super::cputime;
use super::protocol::{Kind, Message, MESSAGE_SIZE, PID_NOTED};
use super::sinks::Sinks;
use super::sys;
use super::{Config, Hooks, Status};
use crate::cgroup::Stats;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long init gets, after SIGTERM, to kill, reap and report before it is SIGKILLed.
const TERM_GRACE: Duration = Duration::from_millis(500);

/// What the monitor saw of a run: init's messages, why it stopped the run, and the
/// cgroup's accounting.
#[derive(Default)]
pub struct Observed {
    pub started: Option<Message>,
    pub finished: Option<Message>,
    pub failure: Option<Message>,
    pub copy_outs: Vec<Message>,
    pub killed_for: Option<Status>,
    pub wall: Duration,
    pub last_cpu_ns: u64,
    /// With a per-process CPU limit: the most CPU time one process was seen to use.
    pub process_cpu_peak_ns: u64,
    pub program_host_pid: Option<i32>,
    pub usage: Stats,
    /// init is gone (it exited, or was killed after not answering a stop): a warm
    /// sandbox cannot serve another run.
    pub init_gone: bool,
}

pub struct Monitor<'a> {
    pid: i32,
    started: Instant,
    config: &'a Config,
    hooks: &'a Hooks<'a>,
    observed: Observed,
    term_sent: Option<Instant>,
    hard_killed: bool,
    output_used: u64,
    next_cpu_check: Instant,
    clock_ticks: u64,
    cpus: u64,
    /// Held until the program's host pid is noted; init does not reap it before.
    pub pid_ack: Option<OwnedFd>,
    /// init serves more runs after this one (a warm sandbox): the run ends at init's
    /// last message for it, not at init's exit.
    warm: bool,
    /// CPU ticks init had already reaped from earlier runs (a warm sandbox's /proc).
    cpu_base_ticks: u64,
}

impl<'a> Monitor<'a> {
    pub fn new(
        pid: i32,
        started: Instant,
        config: &'a Config,
        hooks: &'a Hooks<'a>,
    ) -> Monitor<'a> {
        // SAFETY: sysconf with constant names.
        let clock_ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let cpus = if config.limits.cpu_time.is_some() {
            cputime::online_cpus()
        } else {
            1
        };
        Monitor {
            pid,
            started,
            config,
            hooks,
            observed: Observed::default(),
            term_sent: None,
            hard_killed: false,
            output_used: 0,
            next_cpu_check: started,
            clock_ticks,
            cpus,
            pid_ack: None,
            warm: false,
            cpu_base_ticks: 0,
        }
    }

    /// Watches one run of a warm sandbox whose init (`pid`) outlives it.
    pub fn warm(mut self) -> Monitor<'a> {
        self.warm = true;
        let l = &self.config.limits;
        // Only /proc's figures include earlier runs; a run's own cgroup starts at zero.
        let cgroup_cpu = self.hooks.cgroup.and_then(|c| c.cpu_usage_ns()).is_some();
        if l.cpu_time.is_some() && !l.cpu_per_process && !cgroup_cpu {
            self.cpu_base_ticks = cputime::tree_cpu_ticks(self.pid);
        }
        self
    }

    /// Polls init's messages and the program's output until init is gone, enforcing the
    /// limits on the way; then reaps init and reads the cgroup's accounting.
    pub fn watch(
        mut self,
        report: &mut File,
        mut out: File,
        mut err: File,
        sinks: &mut Sinks,
    ) -> Observed {
        let mut open = [true, true, true];
        let mut buf = vec![0u8; 64 * 1024];
        let mut partial = Vec::with_capacity(MESSAGE_SIZE);
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
                open[0] = self.read_reports(report, &mut partial);
                if !open[0] {
                    self.observed.init_gone = true;
                } else if self.warm && self.run_over() {
                    open[0] = false;
                }
            }
            for (i, file) in [(1usize, &mut out), (2usize, &mut err)] {
                if fds[i].revents != 0 {
                    open[i] = self.read_output(file, &mut buf, i == 2, sinks);
                }
            }
            self.check_limits(!open[0]);
        }
        self.reap();
        self.observed.wall = self.started.elapsed();
        if let Some(cg) = self.hooks.cgroup {
            cg.kill();
            self.observed.usage = cg.stats();
        }
        self.observed
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

    /// Reads whole messages; returns false at EOF (init is gone).
    fn read_reports(&mut self, report: &mut File, partial: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; MESSAGE_SIZE * 8];
        let n = match report.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => return false,
        };
        partial.extend_from_slice(&buf[..n]);
        while partial.len() >= MESSAGE_SIZE {
            let bytes: [u8; MESSAGE_SIZE] =
                partial[..MESSAGE_SIZE].try_into().expect("message size");
            partial.drain(..MESSAGE_SIZE);
            self.on_message(Message::from_bytes(&bytes));
        }
        true
    }

    /// init sent its last message for this run.
    fn run_over(&self) -> bool {
        self.observed.finished.is_some() || self.observed.failure.is_some()
    }

    fn on_message(&mut self, m: Message) {
        match m.kind() {
            Some(Kind::Started) => {
                if let Some(ack) = self.pid_ack.take() {
                    self.observed.program_host_pid = program_host_pid(self.pid);
                    let _ = sys::write_all(ack.as_raw_fd(), PID_NOTED);
                }
                self.observed.started = Some(m);
            }
            Some(Kind::Finished) => self.observed.finished = Some(m),
            Some(Kind::SetupFailed | Kind::ExecFailed) => self.observed.failure = Some(m),
            Some(Kind::CopyOut) => self.observed.copy_outs.push(m),
            Some(Kind::Ready) | None => {}
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
        if !sinks.write(stderr, &buf[..keep]) {
            // The output cannot be kept (a full disk): running on would only waste time.
            self.stop(Status::InternalError);
        }
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
        let started = self.observed.started.is_some();
        if let (Some(limit), true) = (self.config.limits.cpu_time, started) {
            if now >= self.next_cpu_check {
                let used = self.cpu_used_ns();
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

    /// The CPU time the limit is checked against, noted in `observed`: the tree's total,
    /// or with a per-process limit the most any one live process has used.
    fn cpu_used_ns(&mut self) -> u64 {
        if self.config.limits.cpu_per_process {
            let ticks = cputime::max_process_cpu_ticks(self.pid);
            let ns = ticks * 1_000_000_000 / self.clock_ticks;
            let peak = &mut self.observed.process_cpu_peak_ns;
            *peak = (*peak).max(ns);
            return ns;
        }
        let ns = match self.hooks.cgroup.and_then(|c| c.cpu_usage_ns()) {
            Some(ns) => ns,
            None => {
                let ticks = cputime::tree_cpu_ticks(self.pid).saturating_sub(self.cpu_base_ticks);
                ticks * 1_000_000_000 / self.clock_ticks
            }
        };
        self.observed.last_cpu_ns = ns;
        ns
    }

    /// Asks init to kill everything (it then reaps and reports exact usage).
    fn stop(&mut self, why: Status) {
        if self.term_sent.is_some() {
            return;
        }
        self.observed.killed_for = Some(why);
        self.term_sent = Some(Instant::now());
        // SAFETY: SIGTERM to our own child; init's handler kills the namespace's processes,
        // then init reaps them and reports exact usage.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
    }

    /// Waits for init, unless it lives on to serve the next run of a warm sandbox.
    fn reap(&mut self) {
        if self.hard_killed {
            self.observed.init_gone = true;
        }
        if self.warm && !self.observed.init_gone {
            return;
        }
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
            if r >= 0 || sys::errno() != libc::EINTR {
                break;
            }
        }
    }
}

/// The program's pid as the host sees it: init's only direct child.
fn program_host_pid(init: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}
