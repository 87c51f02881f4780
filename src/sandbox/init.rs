//! pid 1 of the sandbox's pid namespace. It waits for the supervisor's go, builds the
//! filesystem, forks the program, reaps every zombie, kills whatever is left when the
//! program exits, copies files out, and reports to the supervisor. A warm init (see
//! `warm.rs`) instead serves one run after another, each with fresh scratch dirs, a
//! fresh IPC namespace and its own cgroup. Allocation-free.

use super::caps;
use super::copy;
use super::namespaces;
use super::prepare::Prepared;
use super::process::{self, ProgramFds};
use super::protocol::{self, step, ChildError, Kind, Message, SetupStep, GO, MESSAGE_SIZE};
use super::rootfs;
use super::sys;
use super::ExecFilter;

/// Pipe ends init owns.
pub struct InitChannels {
    pub sync_read: i32,
    /// A network namespace to join (-1: init was cloned into a fresh one).
    pub netns: i32,
    pub report_write: i32,
    /// A warm sandbox: init waits for the go byte, builds, reports Ready and serves
    /// runs; else it builds at once and runs the one program of the first request.
    /// Either way `sync_read` is a SOCK_SEQPACKET socket the runs arrive on.
    pub warm: bool,
}

fn send(ch: &InitChannels, m: &Message) {
    let _ = sys::write_all(ch.report_write, &m.to_bytes());
}

/// Entry point in the cloned child; never returns.
pub fn run(p: &Prepared, ch: &InitChannels, filter: Option<&dyn ExecFilter>) -> ! {
    // Dies with the supervisor; reading EOF on `sync_read` closes the race with an early
    // death.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    close_foreign_fds(p, ch);
    if ch.warm {
        wait_for_go(ch);
    }
    // A one-shot init builds at once, while the supervisor makes the run's cgroup; a
    // failure waits in the report pipe until the supervisor reads it.
    if let Err(e) = build_sandbox(p, ch) {
        send(ch, &Message::failure(Kind::SetupFailed, e));
        sys::exit_now(1);
    }
    install_term_handler();
    if ch.warm {
        send(ch, &Message::new(Kind::Ready));
        serve_runs(p, ch, filter);
    }
    let request = match protocol::receive_run(ch.sync_read) {
        Ok(Some(r)) => r,
        // The supervisor went away before placing the run.
        Ok(None) => sys::exit_now(1),
        Err(e) => {
            send(ch, &Message::failure(Kind::SetupFailed, e));
            sys::exit_now(1);
        }
    };
    let kills = filter.is_some_and(|f| f.kills());
    if !kills {
        sys::close(ch.sync_read);
    }
    let program_fds = ProgramFds {
        stdin: request.stdin,
        stdout: request.stdout,
        stderr: request.stderr,
        error: -1,
        cgroup_join: request.cgroup_join,
        unshare: libc::CLONE_NEWCGROUP,
    };
    let (reaped, start_ns) = match run_program(p, ch, filter, program_fds, request.clone_into) {
        Ok(Some(ran)) => ran,
        Ok(None) => sys::exit_now(0),
        Err(e) => {
            send(ch, &Message::failure(Kind::SetupFailed, e));
            sys::exit_now(1);
        }
    };
    if kills {
        sys::close(ch.sync_read);
    }
    copy::copy_out(p, |m| send(ch, m));
    send(ch, &finished_message(&reaped, start_ns));
    sys::exit_now(0)
}

/// Starts the program and, once it is gone, every process it left: reports Started
/// (waiting for the supervisor's ack when a seccomp kill must be attributed) and returns
/// what was reaped with the start time; `None` when the program could not be executed
/// (that failure is already reported).
fn run_program(
    p: &Prepared,
    ch: &InitChannels,
    filter: Option<&dyn ExecFilter>,
    fds: ProgramFds,
    clone_into: Option<i32>,
) -> Result<Option<(Reaped, u64)>, ChildError> {
    let (start_ns, program, exec_error) = start_program(p, fds, clone_into, filter)?;
    if let Some(mut m) = exec_error {
        reap_all(program);
        m.start_ns = start_ns;
        send(ch, &m);
        return Ok(None);
    }
    send(
        ch,
        &Message {
            start_ns,
            ..Message::new(Kind::Started)
        },
    );
    if filter.is_some_and(|f| f.kills()) {
        wait_for_pid_noted(ch);
    }
    Ok(Some((reap_all(program), start_ns)))
}

/// A warm init's loop: one run per request, until the supervisor closes the socket.
/// A run whose setup fails ends the sandbox (its state is no longer known to be fresh).
fn serve_runs(p: &Prepared, ch: &InitChannels, filter: Option<&dyn ExecFilter>) -> ! {
    loop {
        let request = match protocol::receive_run(ch.sync_read) {
            Ok(Some(r)) => r,
            Ok(None) => sys::exit_now(0),
            Err(e) => {
                send(ch, &Message::failure(Kind::SetupFailed, e));
                sys::exit_now(1);
            }
        };
        let outcome = serve_one(p, ch, filter, &request);
        request.close();
        if let Err(e) = outcome {
            send(ch, &Message::failure(Kind::SetupFailed, e));
            sys::exit_now(1);
        }
    }
}

fn serve_one(
    p: &Prepared,
    ch: &InitChannels,
    filter: Option<&dyn ExecFilter>,
    request: &protocol::RunRequest,
) -> Result<(), ChildError> {
    copy::copy_in(p, rootfs::Place::NewRoot)?;
    let fds = ProgramFds {
        stdin: request.stdin,
        stdout: request.stdout,
        stderr: request.stderr,
        error: -1,
        cgroup_join: request.cgroup_join,
        unshare: libc::CLONE_NEWIPC | libc::CLONE_NEWCGROUP,
    };
    let ran = run_program(p, ch, filter, fds, request.clone_into)?;
    // Renewed before the run's last message: the next run finds them fresh, and what this
    // run left there is no longer charged to its cgroup when the supervisor reads the
    // figures or resets the counters for the next run.
    let renewed = rootfs::renew_scratch(p);
    if let Some((reaped, start_ns)) = ran {
        send(ch, &finished_message(&reaped, start_ns));
    }
    if renewed.is_err() {
        // The run's own report is already out: end without another message (the next
        // run finds init gone and gets a fresh sandbox).
        sys::exit_now(1);
    }
    Ok(())
}

/// Builds the filesystem, fills /box, sets hostname and network, pivots into the new
/// root and empties the bounding and ambient capability sets: everything before the
/// program is forked. init stays outside the run's cgroup: the program is placed in it
/// (and takes a cgroup namespace rooted there, which init could not: systemd mounts
/// cgroup2 with nsdelegate, which refuses moves out of a cgroup namespace).
fn build_sandbox(p: &Prepared, ch: &InitChannels) -> Result<(), ChildError> {
    // SAFETY: umask cannot fail; init creates nodes/files with exact modes.
    unsafe { libc::umask(0) };
    rootfs::build(p)?;
    if !ch.warm {
        copy::copy_in(p, rootfs::Place::Rootfs)?;
    }
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
    rootfs::pivot(p)?;
    // init keeps its own capabilities (the bounding set only limits what an execve can
    // gain) and never execs: emptied here, the sets bind every program it forks, once
    // for all of a warm sandbox's runs.
    caps::drop_bounding_and_ambient(p.cap_last)
}

/// Closes every fd except stdio and the ones this run needs (another thread of a
/// multi-threaded supervisor may have had pipes open at clone time).
fn close_foreign_fds(p: &Prepared, ch: &InitChannels) {
    let mut keep = [0i32; 128];
    let mut n = 0;
    let run_fds = p.stdin_and_files();
    for fd in [ch.sync_read, ch.netns, ch.report_write]
        .into_iter()
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

/// A warm init waits for the go byte before it builds (EOF: the supervisor died).
fn wait_for_go(ch: &InitChannels) {
    let mut byte = [0u8; 1];
    match sys::read_full(ch.sync_read, &mut byte) {
        Ok(1) if byte[..] == *GO => {}
        _ => sys::exit_now(1),
    }
}

/// With a filter that kills, the supervisor must learn the program's host pid (to find
/// the kernel's record of the kill) before the program can be reaped and its pid
/// forgotten: hold off reaping until it says so (or goes away).
fn wait_for_pid_noted(ch: &InitChannels) {
    let mut byte = [0u8; 1];
    let _ = sys::read_full(ch.sync_read, &mut byte);
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

/// Forks and execs the program: into the run's cgroup directly when `clone_into` names
/// one (v2, fork semantics), else with vfork (the child joins through `fds.cgroup_join`).
/// Returns its start time, pid, and its exec failure.
fn start_program(
    p: &Prepared,
    mut fds: ProgramFds,
    clone_into: Option<i32>,
    filter: Option<&dyn ExecFilter>,
) -> Result<(u64, i32, Option<Message>), ChildError> {
    let mut pipe = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(ChildError::new(SetupStep::ExecErrorPipe, sys::errno()));
    }
    fds.error = pipe[1];
    let start_ns = sys::monotonic_ns();
    // clone3 refused (a container's seccomp profile may answer ENOSYS): the program moves
    // itself in through the directory's `cgroup.procs` instead (slower, as naming a
    // process there takes the kernel's threadgroup lock, but placed all the same).
    let refused_into = clone_into.filter(|_| !sys::clone3_works());
    if let Some(cgroup) = refused_into {
        let procs = sys::openat(
            cgroup,
            c"cgroup.procs".as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
            0,
        );
        fds.cgroup_join[0] = procs.map_err(|e| ChildError::new(SetupStep::JoinRunCgroup, e))?;
    }
    let pid = match clone_into.filter(|_| refused_into.is_none()) {
        Some(cgroup) => match sys::clone_process(0, Some(cgroup)) {
            Ok(0) => process::exec_program(p, &fds, filter),
            Ok(pid) => pid,
            Err(_) => -1,
        },
        None => {
            let mut args = ProgramArgs {
                p,
                fds: &fds,
                filter,
            };
            spawn_vfork(&mut args)
        }
    };
    if pid < 0 {
        return Err(ChildError::new(SetupStep::ForkProgram, sys::errno()));
    }
    if refused_into.is_some() {
        sys::close(fds.cgroup_join[0]);
    }
    sys::close(pipe[1]);
    sys::close(fds.stdout);
    sys::close(fds.stderr);
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

/// What init learnt reaping one run's processes.
struct Reaped {
    /// The program's wait status.
    status: i32,
    end_ns: u64,
    /// Sums of every reaped process's rusage (each includes the children it reaped
    /// itself), and the largest max RSS among them.
    utime_us: u64,
    stime_us: u64,
    maxrss_kb: u64,
    nvcsw: u64,
    nivcsw: u64,
}

/// Waits for the program; once it is gone, kills every other process in the namespace and
/// reaps them all, adding up their resource usage.
fn reap_all(program: i32) -> Reaped {
    let mut r = Reaped {
        status: 0,
        end_ns: 0,
        utime_us: 0,
        stime_us: 0,
        maxrss_kb: 0,
        nvcsw: 0,
        nivcsw: 0,
    };
    let mut program_done = false;
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 with valid out-pointers.
        let pid = unsafe { libc::wait4(-1, &mut status, 0, &mut ru) };
        if pid < 0 {
            match sys::errno() {
                libc::EINTR => continue,
                _ => break, // ECHILD: nobody left
            }
        }
        r.utime_us += us(ru.ru_utime);
        r.stime_us += us(ru.ru_stime);
        r.maxrss_kb = r.maxrss_kb.max(ru.ru_maxrss as u64);
        r.nvcsw += ru.ru_nvcsw as u64;
        r.nivcsw += ru.ru_nivcsw as u64;
        if pid == program && !program_done {
            program_done = true;
            r.status = status;
            r.end_ns = sys::monotonic_ns();
            // SAFETY: see on_term.
            unsafe { libc::kill(-1, libc::SIGKILL) };
        }
    }
    if r.end_ns == 0 {
        r.end_ns = sys::monotonic_ns();
    }
    r
}

fn finished_message(r: &Reaped, start_ns: u64) -> Message {
    Message {
        wait_status: r.status,
        utime_us: r.utime_us,
        stime_us: r.stime_us,
        maxrss_kb: r.maxrss_kb,
        nvcsw: r.nvcsw,
        nivcsw: r.nivcsw,
        start_ns,
        end_ns: r.end_ns,
        ..Message::new(Kind::Finished)
    }
}
