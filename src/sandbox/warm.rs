//! A warm sandbox: one init, per worker and submission, builds the sandbox once
//! (namespaces, read-only rootfs, /proc, /dev, pivot_root) and then runs the same program
//! once per test. Every run still gets fresh /box, /tmp and /dev/shm, a fresh IPC
//! namespace, its own cgroup and a kill of everything it started (see `protocol.rs`).
//! Different submissions never share one: the judge starts one per submission.

use super::init::{self, InitChannels};
use super::monitor::Monitor;
use super::outcome;
use super::prepare::{open_stdin_at, prepare};
use super::protocol::{self, Kind, Message, SetupStep, GO, MESSAGE_SIZE};
use super::sinks::Sinks;
use super::supervisor::{clone_init, kill_hard, pipe, seqpacket_pair, sys_err, Cloned};
use super::sys;
use super::{Config, Hooks, RunResult, SandboxError};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

/// A running warm sandbox. Dropping it kills its init (and with it the pid namespace).
pub struct WarmSandbox {
    config: Config,
    init_pid: i32,
    /// SOCK_SEQPACKET end the runs are sent on (init holds the other).
    runs: OwnedFd,
    reports: File,
    /// init cannot serve another run.
    gone: bool,
    /// init was waited for (its pid may belong to someone else now).
    reaped: bool,
}

impl WarmSandbox {
    /// Starts init and builds the sandbox for `config` (its argv, env, limits and
    /// `--file`s serve every run; it must have no stdin, box dir or copy-out, which are
    /// per run or one-shot only). `hooks.cgroup` is ignored: each run brings its own.
    pub fn start(config: Config, hooks: &Hooks) -> Result<WarmSandbox, SandboxError> {
        if config.stdin.is_some() || config.box_dir.is_some() || !config.copy_out.is_empty() {
            return Err(SandboxError::WarmUnsupported);
        }
        let prepared = prepare(&config, hooks)?;
        let (runs, runs_init) = seqpacket_pair()?;
        let (report_r, report_w) = pipe()?;
        let channels = InitChannels {
            sync_read: runs_init.as_raw_fd(),
            netns: hooks.netns.filter(|_| !config.loopback).unwrap_or(-1),
            report_write: report_w.as_raw_fd(),
            warm: true,
        };
        let init_pid = match clone_init(&channels)? {
            Cloned::Init => init::run(&prepared, &channels, hooks.filter),
            Cloned::Supervisor { init_pid } => init_pid,
        };
        // init has its own copies of everything `prepared` holds.
        drop((runs_init, report_w, prepared));
        let mut sandbox = WarmSandbox {
            config,
            init_pid,
            runs,
            reports: File::from(report_r),
            gone: false,
            reaped: false,
        };
        sandbox.release()?;
        Ok(sandbox)
    }

    /// Sends the go and waits for init's Ready (or its setup failure).
    fn release(&mut self) -> Result<(), SandboxError> {
        if sys::write_all(self.runs.as_raw_fd(), GO).is_err() {
            self.gone = true;
            return Err(sys_err(SetupStep::ReleaseInit, sys::errno()));
        }
        let mut buf = [0u8; MESSAGE_SIZE];
        let message = match self.reports.read_exact(&mut buf) {
            Ok(()) => Message::from_bytes(&buf),
            Err(e) => {
                self.gone = true;
                return Err(SandboxError::WarmSetup(format!("init went away: {e}")));
            }
        };
        match (message.kind(), message.child_error()) {
            (Some(Kind::Ready), _) => Ok(()),
            (_, Some(e)) => {
                self.gone = true;
                Err(SandboxError::WarmSetup(format!(
                    "{}: {}",
                    e.step.describe(),
                    sys::errno_text(e.errno)
                )))
            }
            _ => {
                self.gone = true;
                Err(SandboxError::WarmSetup(
                    "unexpected message from init".into(),
                ))
            }
        }
    }

    /// Whether it can serve another run (its init did not die or get killed).
    pub fn usable(&self) -> bool {
        !self.gone
    }

    /// One run with `stdin` (default /dev/null) under `hooks` (its own cgroup); the
    /// program's stdout and stderr go to the result up to [`super::sinks::SPILL_AT`]
    /// bytes each and to the `outputs` files beyond (created only then), or where the
    /// sandbox's config says.
    pub fn run(
        &mut self,
        stdin: Option<&Path>,
        outputs: Option<(&Path, &Path)>,
        hooks: &Hooks,
    ) -> Result<RunResult, SandboxError> {
        if self.gone {
            return Err(SandboxError::WarmSetup("the sandbox's init is gone".into()));
        }
        let clone_into = hooks.cgroup.and_then(|c| c.clone_into_fd());
        let join = match (hooks.cgroup, clone_into) {
            (Some(c), None) => c.join_fds(),
            _ => Vec::new(),
        };
        if hooks.cgroup.is_some() && clone_into.is_none() && join.is_empty() {
            // A v1 run whose `tasks` files could not be opened: only a one-shot run can
            // place its init by pid.
            return Err(SandboxError::WarmUnsupported);
        }
        let stdin = open_stdin_at(stdin)?;
        let mut sinks = match outputs {
            Some((out, err)) => Sinks::spilling(out, err),
            None => Sinks::open(&self.config)?,
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut monitor = Monitor::new(self.init_pid, Instant::now(), &self.config, hooks).warm();
        let stdio = [stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
        if let Err(e) = protocol::send_run(self.runs.as_raw_fd(), stdio, clone_into, &join) {
            // init is gone: the caller runs this in a fresh sandbox instead.
            self.gone = true;
            return Err(SandboxError::WarmSetup(format!("cannot send the run: {e}")));
        }
        drop((stdin, out_w, err_w));
        // While init starts the program: what the cgroup's next reset needs.
        if let Some(cgroup) = hooks.cgroup {
            cgroup.prepare_reset();
        }
        if hooks.filter.is_some_and(|f| f.kills()) {
            monitor.pid_ack = Some(dup(&self.runs)?);
        }
        let observed = monitor.watch(
            &mut self.reports,
            File::from(out_r),
            File::from(err_r),
            &mut sinks,
        );
        if observed.init_gone {
            // The monitor waited for it.
            self.gone = true;
            self.reaped = true;
        } else if observed
            .failure
            .is_some_and(|m| m.kind() == Some(Kind::SetupFailed))
        {
            // init ends after a run it could not set up (its state is no longer known
            // to be fresh); Drop reaps it.
            self.gone = true;
        }
        let mut result = outcome::interpret(&self.config, hooks, &observed);
        sinks.finish(&mut result);
        Ok(result)
    }
}

impl Drop for WarmSandbox {
    fn drop(&mut self) {
        if !self.reaped {
            kill_hard(self.init_pid);
        }
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, SandboxError> {
    fd.try_clone().map_err(|source| SandboxError::Sys {
        step: SetupStep::CreatePipe,
        source,
    })
}
