//! The supervisor: the host-side half of a run, top to bottom. It prepares the run, clones
//! init into fresh namespaces (the child side becomes init, see `init.rs`), places it in
//! its cgroup and releases it, watches it (`monitor.rs`), and turns what it saw into a
//! [`RunResult`] (`outcome.rs`). The handshake with init is in `protocol.rs`.

use super::copy;
use super::init::{self, InitChannels};
use super::monitor::Monitor;
use super::namespaces::CLONE_FLAGS;
use super::outcome;
use super::prepare::{prepare, Prepared};
use super::protocol::{SetupStep, GO, MAX_CGROUP_FDS};
use super::sinks::Sinks;
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
    let channels = InitChannels {
        sync_read: sync_r.as_raw_fd(),
        netns: hooks.netns.filter(|_| !config.loopback).unwrap_or(-1),
        report_write: report_w.as_raw_fd(),
        stdout_write: direct_or(&config.stdout_direct, &out_w),
        stderr_write: direct_or(&config.stderr_direct, &err_w),
        cgroup_join: cgroup_join_fds(hooks),
        warm: false,
    };
    let started = Instant::now();
    let (pid, in_cgroup) = match clone_init(&channels, hooks)? {
        Cloned::Init => init::run(p, &channels, hooks.filter),
        Cloned::Supervisor {
            init_pid,
            in_cgroup,
        } => (init_pid, in_cgroup),
    };
    // init holds its own copies; ours would keep the pipes from reporting EOF.
    drop((sync_r, report_w, out_w, err_w));
    let mut monitor = Monitor::new(pid, started, config, hooks);
    if let (Some(cg), false) = (hooks.cgroup, in_cgroup) {
        if let Err(e) = cg.attach(pid) {
            kill_hard(pid);
            return Err(SandboxError::Sys {
                step: SetupStep::AttachCgroup,
                source: std::io::Error::other(e),
            });
        }
    }
    if sys::write_all(sync_w.as_raw_fd(), GO).is_err() {
        kill_hard(pid);
        return Err(sys_err(SetupStep::ReleaseInit, sys::errno()));
    }
    // With a killing filter init waits for a second byte once the program has started
    // (see `protocol`); otherwise EOF is all init needs.
    if hooks.filter.is_some_and(|f| f.kills()) {
        monitor.pid_ack = Some(sync_w);
    } else {
        drop(sync_w);
    }
    let observed = monitor.watch(
        &mut File::from(report_r),
        File::from(out_r),
        File::from(err_r),
        &mut sinks,
    );
    let mut result = outcome::interpret(config, hooks, &observed);
    copy::finish_copy_out(&p.outs, p.copy_out_limit, &observed.copy_outs, &mut result);
    sinks.finish(&mut result);
    Ok(result)
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
    /// The parent, with init's pid and whether init already sits in the run's cgroup.
    Supervisor { init_pid: i32, in_cgroup: bool },
}

/// Clones init into new namespaces, directly into the run's cgroup when it is v2
/// (`CLONE_INTO_CGROUP`); on v1 init joins through the `tasks` fds itself.
pub(super) fn clone_init(ch: &InitChannels, hooks: &Hooks) -> Result<Cloned, SandboxError> {
    let cg_fd = hooks.cgroup.and_then(|c| c.clone_into_fd());
    let flags = if ch.netns >= 0 {
        CLONE_FLAGS & !(libc::CLONE_NEWNET as u64)
    } else {
        CLONE_FLAGS
    };
    let joins_itself = ch.cgroup_join[0] >= 0;
    let mut result = sys::clone_process(flags, cg_fd);
    let mut into_cgroup = cg_fd.is_some();
    if result.is_err() && cg_fd.is_some() {
        // Old kernel or an unusable cgroup fd: plain clone, then attach through cgroup.procs.
        result = sys::clone_process(flags, None);
        into_cgroup = false;
    }
    match result {
        Ok(0) => Ok(Cloned::Init),
        Ok(init_pid) => Ok(Cloned::Supervisor {
            init_pid,
            in_cgroup: into_cgroup || joins_itself,
        }),
        Err(e) => Err(sys_err(SetupStep::CloneInit, e)),
    }
}

/// The v1 `tasks` fds init writes "0" to (none on v2, where clone3 places init).
fn cgroup_join_fds(hooks: &Hooks) -> [i32; MAX_CGROUP_FDS] {
    let mut fds = [-1; MAX_CGROUP_FDS];
    if let Some(cg) = hooks.cgroup.filter(|c| c.clone_into_fd().is_none()) {
        let join = cg.join_fds();
        if join.len() <= MAX_CGROUP_FDS {
            fds[..join.len()].copy_from_slice(&join);
        }
    }
    fds
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
