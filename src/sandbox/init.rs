//! pid 1 of the sandbox's pid namespace. It waits for the supervisor's go, builds the
//! filesystem, forks the program, reaps every zombie, kills whatever is left when the
//! program exits, copies files out, and reports to the supervisor. Allocation-free.

use super::copy;
use super::namespaces;
use super::prepare::Prepared;
use super::process::{self, ProgramFds};
use super::protocol::{step, ChildError, Kind, Message, SetupStep, GO, MESSAGE_SIZE};
use super::rootfs;
use super::sys;
use super::ExecFilter;
use std::os::fd::AsRawFd;

/// Pipe ends init owns.
pub struct InitChannels {
    pub sync_read: i32,
    /// A network namespace to join (-1: init was cloned into a fresh one).
    pub netns: i32,
    pub report_write: i32,
    pub stdout_write: i32,
    pub stderr_write: i32,
    /// Files init writes "0" to, to join the run's cgroup itself (v1 `tasks`; -1: unused).
    pub cgroup_join: [i32; MAX_CGROUP_JOIN],
}

/// More than the v1 hierarchies judgebox uses (memory, pids, cpu, cpuacct, freezer).
pub const MAX_CGROUP_JOIN: usize = 8;

fn send(ch: &InitChannels, m: &Message) {
    let _ = sys::write_all(ch.report_write, &m.to_bytes());
}

/// Entry point in the cloned child; never returns.
pub fn run(p: &Prepared, ch: &InitChannels, filter: Option<&dyn ExecFilter>) -> ! {
    // Dies with the supervisor; the EOF check below closes the race with an early death.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    close_foreign_fds(p, ch);
    let kills = filter.is_some_and(|f| f.kills());
    wait_for_go(ch, kills);
    // After the go, so that a failure reaches a supervisor that is reading reports.
    if let Err(e) = build_sandbox(p, ch) {
        send(ch, &Message::failure(Kind::SetupFailed, e));
        sys::exit_now(1);
    }
    install_term_handler();
    let (start_ns, program, exec_error) = match start_program(p, ch, filter) {
        Ok(started) => started,
        Err(e) => {
            send(ch, &Message::failure(Kind::SetupFailed, e));
            sys::exit_now(1);
        }
    };
    if let Some(mut m) = exec_error {
        reap_all(program);
        m.start_ns = start_ns;
        send(ch, &m);
        sys::exit_now(0);
    }
    send(
        ch,
        &Message {
            start_ns,
            ..Message::new(Kind::Started)
        },
    );
    if kills {
        wait_for_pid_noted(ch);
    }
    let (wait_status, end_ns) = reap_all(program);
    copy::copy_out(p, |m| send(ch, m));
    send(ch, &finished_message(wait_status, start_ns, end_ns));
    sys::exit_now(0)
}

/// Joins the cgroup, builds the filesystem, fills /box, sets hostname and network, and
/// pivots into the new root: everything before the program is forked.
fn build_sandbox(p: &Prepared, ch: &InitChannels) -> Result<(), ChildError> {
    join_cgroup(ch)?;
    step(SetupStep::UnshareCgroup, namespaces::unshare_cgroup())?;
    // SAFETY: umask cannot fail; init creates nodes/files with exact modes.
    unsafe { libc::umask(0) };
    rootfs::build(p)?;
    copy::copy_in(p)?;
    step(
        SetupStep::SetHostname,
        namespaces::set_hostname(&p.hostname),
    )?;
    if ch.netns >= 0 {
        step(SetupStep::JoinNetns, namespaces::join_netns(ch.netns))?;
        sys::close(ch.netns);
    }
    if p.loopback {
        step(SetupStep::LoopbackUp, namespaces::loopback_up())?;
    }
    rootfs::pivot(p)
}

/// Closes every fd except stdio and the ones this run needs (another thread of a
/// multi-threaded supervisor may have had pipes open at clone time).
fn close_foreign_fds(p: &Prepared, ch: &InitChannels) {
    let mut keep = [0i32; 64];
    let mut n = 0;
    let run_fds = p.stdin_and_files();
    for fd in [
        ch.sync_read,
        ch.netns,
        ch.report_write,
        ch.stdout_write,
        ch.stderr_write,
    ]
    .into_iter()
    .chain(ch.cgroup_join)
    .chain(run_fds)
    {
        if n < keep.len() {
            keep[n] = fd;
            n += 1;
        }
    }
    let keep = &mut keep[..n];
    keep.sort_unstable();
    let mut next = 3;
    for &fd in keep.iter() {
        if fd > next {
            let _ = sys::close_range(next, fd - 1, 0);
        }
        next = next.max(fd + 1);
    }
    let _ = sys::close_range(next, i32::MAX, 0);
}

/// Moves init (still single-threaded) into the run's cgroup by writing "0" to each
/// hierarchy's `tasks`: unlike naming a pid in `cgroup.procs`, this skips the kernel's
/// global threadgroup lock and the RCU grace period it costs.
fn join_cgroup(ch: &InitChannels) -> Result<(), ChildError> {
    for &fd in ch.cgroup_join.iter().filter(|&&fd| fd >= 0) {
        step(SetupStep::JoinCgroup, sys::write_all(fd, b"0"))?;
        sys::close(fd);
    }
    Ok(())
}

/// `keep_open`: the channel is needed again for `wait_for_pid_noted`.
fn wait_for_go(ch: &InitChannels, keep_open: bool) {
    let mut byte = [0u8; 1];
    match sys::read_full(ch.sync_read, &mut byte) {
        Ok(1) if byte[..] == *GO => {}
        // EOF: the supervisor died before we could arm PDEATHSIG's effect.
        _ => sys::exit_now(1),
    }
    if !keep_open {
        sys::close(ch.sync_read);
    }
}

/// With a filter that kills, the supervisor must learn the program's host pid (to find
/// the kernel's record of the kill) before the program can be reaped and its pid
/// forgotten: hold off reaping until it says so (or goes away).
fn wait_for_pid_noted(ch: &InitChannels) {
    let mut byte = [0u8; 1];
    let _ = sys::read_full(ch.sync_read, &mut byte);
    sys::close(ch.sync_read);
}

extern "C" fn on_term(_: libc::c_int) {
    // SAFETY: kill is async-signal-safe; -1 from pid 1 hits every other process in the pid ns.
    unsafe { libc::kill(-1, libc::SIGKILL) };
}

/// SIGTERM from the supervisor means "limit hit": kill everything, then report as usual.
fn install_term_handler() {
    // SAFETY: sigaction with a valid handler; no SA_RESTART so wait4 returns EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_term as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

/// Forks and execs the program. Returns its start time, pid, and its exec failure.
fn start_program(
    p: &Prepared,
    ch: &InitChannels,
    filter: Option<&dyn ExecFilter>,
) -> Result<(u64, i32, Option<Message>), ChildError> {
    let mut pipe = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(ChildError::new(SetupStep::ExecErrorPipe, sys::errno()));
    }
    let fds = ProgramFds {
        stdin: p.stdin.as_raw_fd(),
        stdout: ch.stdout_write,
        stderr: ch.stderr_write,
        error: pipe[1],
    };
    let start_ns = sys::monotonic_ns();
    let mut args = ProgramArgs {
        p,
        fds: &fds,
        filter,
    };
    let pid = spawn_vfork(&mut args);
    if pid < 0 {
        return Err(ChildError::new(SetupStep::ForkProgram, sys::errno()));
    }
    sys::close(pipe[1]);
    sys::close(ch.stdout_write);
    sys::close(ch.stderr_write);
    let mut buf = [0u8; MESSAGE_SIZE];
    let got = sys::read_full(pipe[0], &mut buf).unwrap_or(0);
    sys::close(pipe[0]);
    let failure = (got == MESSAGE_SIZE).then(|| Message::from_bytes(&buf));
    Ok((start_ns, pid, failure))
}

struct ProgramArgs<'a> {
    p: &'a Prepared,
    fds: &'a ProgramFds,
    filter: Option<&'a dyn ExecFilter>,
}

const CHILD_STACK_SIZE: usize = 256 * 1024;

/// Stack for the program child between clone and execve (init is its own process, so
/// this static is private to one sandbox).
static mut CHILD_STACK: [u8; CHILD_STACK_SIZE] = [0; CHILD_STACK_SIZE];

extern "C" fn program_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg is the ProgramArgs that spawn_vfork passed; the parent is suspended
    // (CLONE_VFORK) until this child execs or exits, so the borrow stays valid.
    let args = unsafe { &*(arg as *const ProgramArgs) };
    process::exec_program(args.p, args.fds, args.filter)
}

/// clone(CLONE_VM|CLONE_VFORK): no copy of init's page tables; init sleeps until the
/// program has exec'd (or failed). The child has its own fd table and signal handlers,
/// runs only allocation-free code on its own stack, and never returns into init's frames.
fn spawn_vfork(args: &mut ProgramArgs) -> i32 {
    // SAFETY: the static stack is used by exactly one child (init spawns one program); we
    // pass its 16-byte-aligned top as the ABI requires.
    unsafe {
        let base = std::ptr::addr_of_mut!(CHILD_STACK) as *mut u8;
        let top = (base.add(CHILD_STACK_SIZE) as usize & !15) as *mut libc::c_void;
        libc::clone(
            program_entry,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            args as *mut ProgramArgs as *mut libc::c_void,
        )
    }
}

/// Waits for the program; once it is gone, kills every other process in the namespace and
/// reaps them all. Returns the program's wait status and the time it ended.
fn reap_all(program: i32) -> (i32, u64) {
    let mut program_status = 0;
    let mut end_ns = 0;
    let mut program_done = false;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            match sys::errno() {
                libc::EINTR => continue,
                _ => break, // ECHILD: nobody left
            }
        }
        if pid == program && !program_done {
            program_done = true;
            program_status = status;
            end_ns = sys::monotonic_ns();
            // SAFETY: see on_term.
            unsafe { libc::kill(-1, libc::SIGKILL) };
        }
    }
    if end_ns == 0 {
        end_ns = sys::monotonic_ns();
    }
    (program_status, end_ns)
}

fn finished_message(wait_status: i32, start_ns: u64, end_ns: u64) -> Message {
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid out-buffer for getrusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Message {
        wait_status,
        utime_us: us(ru.ru_utime),
        stime_us: us(ru.ru_stime),
        maxrss_kb: ru.ru_maxrss as u64,
        nvcsw: ru.ru_nvcsw as u64,
        nivcsw: ru.ru_nivcsw as u64,
        start_ns,
        end_ns,
        ..Message::new(Kind::Finished)
    }
}
