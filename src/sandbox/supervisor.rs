//! The supervisor: the host-side half of a run, top to bottom. It prepares the run, clones
//! init into fresh namespaces (the child side becomes init, see `init.rs`), which builds
//! the sandbox while the caller makes the run's cgroup, sends init the run (stdio, and
//! where the program goes in the cgroup), watches it (`monitor.rs`), and turns what it
//! saw into a [`RunResult`] (`outcome.rs`). The handshake with init is in `protocol.rs`.

use super::copy;
use super::init::{self, InitChannels};
use super::monitor::Monitor;
use super::namespaces::CLONE_FLAGS;
use super::outcome;
use super::prepare::{prepare, Prepared};
use super::protocol::{self, SetupStep, MAX_CGROUP_FDS};
use super::sinks::Sinks;
use super::slice;
use super::sys;
use super::{Config, Hooks, SandboxError};
use super::{RunResult, Status};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// Runs `config` to completion. Errors are bad input or host failures before the program
/// could start; everything after that (including sandbox setup failures) is a result.
pub fn run(config: &Config, hooks: &Hooks) -> Result<RunResult, SandboxError> {
    let prepared = prepare(config, hooks)?;
    let result =
        Started::start(config, hooks, &prepared).and_then(|s| s.finish(config, hooks, &prepared));
    discard_outputs_unless_ran(&prepared, &result);
    result
}

/// A failed run leaves no half-written output files.
pub(super) fn discard_outputs_unless_ran(p: &Prepared, result: &Result<RunResult, SandboxError>) {
    match result {
        Ok(r) if r.status != Status::InternalError => {}
        _ => p.discard_outputs(),
    }
}

/// A one-shot run whose init is building the sandbox: it needs nothing of the run's
/// cgroup for that, so the caller can make the cgroup meanwhile and hand it to
/// [`Started::finish`], which places the program in it and watches the run. Dropping it
/// unfinished kills init.
pub struct Started {
    init: InitGuard,
    started: Instant,
    /// SOCK_SEQPACKET: the run request (stdio and cgroup fds) goes to init on it, and,
    /// with a killing filter, the pid ack after it.
    sync: OwnedFd,
    reports: File,
    out: (OwnedFd, OwnedFd),
    err: (OwnedFd, OwnedFd),
    stdin: i32,
    sinks: Sinks,
    /// The CPUs init was allowed before it was started on another CPU than ours.
    affinity: Option<slice::Affinity>,
}

/// Kills init when dropped, unless disarmed (then the monitor waits for it).
struct InitGuard {
    pid: i32,
    armed: bool,
}

impl Drop for InitGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_hard(self.pid);
        }
    }
}

impl Started {
    /// Clones init, which starts building the sandbox (`hooks.cgroup` is not used yet).
    pub fn start(config: &Config, hooks: &Hooks, p: &Prepared) -> Result<Started, SandboxError> {
        let sinks = Sinks::open(config)?;
        let (sync, sync_init) = seqpacket_pair()?;
        let (report_r, report_w) = pipe()?;
        let channels = InitChannels {
            sync_read: sync_init.as_raw_fd(),
            netns: hooks.netns.filter(|_| !config.loopback).unwrap_or(-1),
            report_write: report_w.as_raw_fd(),
            warm: false,
        };
        let (out, err) = (pipe()?, pipe()?);
        let started = Instant::now();
        let init_pid = match clone_init(&channels)? {
            Cloned::Init => init::run(p, &channels, hooks.filter),
            Cloned::Supervisor { init_pid } => init_pid,
        };
        let affinity = slice::start_elsewhere(init_pid);
        // init holds its own copies; ours would keep it from seeing EOF.
        drop((sync_init, report_w));
        Ok(Started {
            init: InitGuard {
                pid: init_pid,
                armed: true,
            },
            started,
            sync,
            reports: File::from(report_r),
            out,
            err,
            stdin: p.stdin.as_raw_fd(),
            sinks,
            affinity,
        })
    }

    /// Places the program in `hooks.cgroup` and watches the run to its end: v2 has init
    /// clone the program into the cgroup (`CLONE_INTO_CGROUP`, kernel 5.7+), v1 has the
    /// program write "0" to the hierarchies' `tasks`; where neither can be done, init
    /// itself is moved by pid (`cgroup.procs`) and the program inherits the cgroup.
    pub fn finish(
        self,
        config: &Config,
        hooks: &Hooks,
        p: &Prepared,
    ) -> Result<RunResult, SandboxError> {
        // An error here drops `self`, which kills init.
        let (clone_into, join) = place(hooks, self.init.pid)?;
        let stdio = [
            self.stdin,
            direct_or(&config.stdout_direct, &self.out.1),
            direct_or(&config.stderr_direct, &self.err.1),
        ];
        // Before the request: the program init starts then inherits init's CPUs.
        if let Some(affinity) = &self.affinity {
            slice::restore_affinity(self.init.pid, affinity);
        }
        // A failure to send means init is gone: its report (a setup failure) says why.
        let _ = protocol::send_run(self.sync.as_raw_fd(), stdio, clone_into, &join);
        let Started {
            mut init,
            started,
            sync,
            mut reports,
            out,
            err,
            mut sinks,
            ..
        } = self;
        drop((out.1, err.1));
        init.armed = false;
        let mut monitor = Monitor::new(init.pid, started, config, hooks);
        // With a killing filter init waits for the pid ack once the program has started
        // (see `protocol`); otherwise EOF is all init needs.
        if hooks.filter.is_some_and(|f| f.kills()) {
            monitor.pid_ack = Some(sync);
        } else {
            drop(sync);
        }
        let observed = monitor.watch(
            &mut reports,
            File::from(out.0),
            File::from(err.0),
            &mut sinks,
        );
        let mut result = outcome::interpret(config, hooks, &observed);
        copy::finish_copy_out(&p.outs, p.copy_out_limit, &observed.copy_outs, &mut result);
        sinks.finish(&mut result);
        Ok(result)
    }
}

/// Where the program goes: a v2 directory fd for clone3, or v1 `tasks` fds; with
/// neither, init is attached by pid here.
fn place(hooks: &Hooks, init_pid: i32) -> Result<(Option<i32>, Vec<i32>), SandboxError> {
    let Some(cg) = hooks.cgroup else {
        return Ok((None, Vec::new()));
    };
    if let Some(fd) = cg.clone_into_fd().filter(|_| clone_into_cgroup_works()) {
        return Ok((Some(fd), Vec::new()));
    }
    let join = cg.join_fds();
    if !join.is_empty() && join.len() <= MAX_CGROUP_FDS {
        return Ok((None, join));
    }
    cg.attach(init_pid).map_err(|e| SandboxError::Sys {
        step: SetupStep::AttachCgroup,
        source: std::io::Error::other(e),
    })?;
    Ok((None, Vec::new()))
}

/// clone3 takes `CLONE_INTO_CGROUP` from Linux 5.7 on.
fn clone_into_cgroup_works() -> bool {
    crate::seccomp::kernel_version() >= (5, 7)
}

/// The program's end of an output: the direct file when there is one (the pipe then
/// just reports EOF to the monitor), else the pipe's write end.
fn direct_or(direct: &Option<std::sync::Arc<File>>, pipe: &OwnedFd) -> i32 {
    direct.as_ref().map_or(pipe.as_raw_fd(), |f| f.as_raw_fd())
}

/// Which side of the clone we are on.
pub(super) enum Cloned {
    /// The child: it becomes the sandbox's init and never returns.
    Init,
    /// The parent, with init's pid.
    Supervisor { init_pid: i32 },
}

/// Clones init into new namespaces (outside the run's cgroup: its program is placed
/// there, see [`Started::finish`]).
pub(super) fn clone_init(ch: &InitChannels) -> Result<Cloned, SandboxError> {
    let flags = if ch.netns >= 0 {
        CLONE_FLAGS & !(libc::CLONE_NEWNET as u64)
    } else {
        CLONE_FLAGS
    };
    match sys::clone_process(flags, None) {
        Ok(0) => Ok(Cloned::Init),
        Ok(init_pid) => Ok(Cloned::Supervisor { init_pid }),
        Err(e) => Err(sys_err(SetupStep::CloneInit, e)),
    }
}

/// Both ends of a close-on-exec SOCK_SEQPACKET socketpair (message boundaries kept).
pub(super) fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0i32; 2];
    // SAFETY: socketpair fills two fds that we immediately own.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(sys_err(SetupStep::CreatePipe, sys::errno()));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(super) fn sys_err(step: SetupStep, errno: i32) -> SandboxError {
    SandboxError::Sys {
        step,
        source: std::io::Error::from_raw_os_error(errno),
    }
}

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds that we immediately own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(sys_err(SetupStep::CreatePipe, sys::errno()));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(super) fn kill_hard(pid: i32) {
    // SAFETY: pid is our own child; reaping it afterwards avoids a zombie.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}
