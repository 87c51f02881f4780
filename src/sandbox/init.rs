//! pid 1 of the sandbox's pid namespace. It waits for the supervisor's go, builds the
//! filesystem, forks the program, reaps every zombie, kills whatever is left when the
//! program exits, copies files out, and reports to the supervisor. Allocation-free.

use super::namespaces;
use super::prepare::Prepared;
use super::process::{self, ProgramFds};
use super::report::*;
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

fn send(ch: &InitChannels, r: &Report) {
    let _ = sys::write_all(ch.report_write, &r.to_bytes());
}

fn setup_failed(ch: &InitChannels, step: Step, errno: i32, index: u32) -> ! {
    send(ch, &Report::failure(KIND_SETUP_FAILED, step, errno, index));
    sys::exit_now(1)
}

/// Entry point in the cloned child; never returns.
pub fn run(p: &Prepared, ch: &InitChannels, filter: Option<&dyn ExecFilter>) -> ! {
    // Dies with the supervisor; the EOF check below closes the race with an early death.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    close_foreign_fds(p, ch);
    let kills = filter.is_some_and(|f| f.kills());
    wait_for_go(ch, kills);
    // After the go, so that a failure reaches a supervisor that is reading reports.
    join_cgroup(ch);
    if let Err(e) = namespaces::unshare_cgroup() {
        setup_failed(ch, Step::UnshareCgroup, e, 0);
    }
    // SAFETY: umask cannot fail; init creates nodes/files with exact modes.
    unsafe { libc::umask(0) };
    if let Err((step, e, i)) = rootfs::build(p) {
        setup_failed(ch, step, e, i);
    }
    copy_in(p, ch);
    if let Err(e) = namespaces::set_hostname(&p.hostname) {
        setup_failed(ch, Step::SetHostname, e, 0);
    }
    if ch.netns >= 0 {
        if let Err(e) = namespaces::join_netns(ch.netns) {
            setup_failed(ch, Step::JoinNetns, e, 0);
        }
        sys::close(ch.netns);
    }
    if p.loopback {
        if let Err(e) = namespaces::loopback_up() {
            setup_failed(ch, Step::LoopbackUp, e, 0);
        }
    }
    if let Err((step, e, i)) = rootfs::pivot(p) {
        setup_failed(ch, step, e, i);
    }
    install_term_handler();
    let (start_ns, program, exec_error) = start_program(p, ch, filter);
    if let Some(mut r) = exec_error {
        reap_all(program);
        r.start_ns = start_ns;
        send(ch, &r);
        sys::exit_now(0);
    }
    send(
        ch,
        &Report {
            kind: KIND_STARTED,
            start_ns,
            ..Report::default()
        },
    );
    if kills {
        wait_for_pid_noted(ch);
    }
    let (wait_status, end_ns) = reap_all(program);
    copy_out(p, ch);
    send(ch, &finished_report(wait_status, start_ns, end_ns));
    sys::exit_now(0)
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
fn join_cgroup(ch: &InitChannels) {
    for &fd in ch.cgroup_join.iter().filter(|&&fd| fd >= 0) {
        if let Err(e) = sys::write_all(fd, b"0") {
            setup_failed(ch, Step::JoinCgroup, e, 0);
        }
        sys::close(fd);
    }
}

/// `keep_open`: the channel is needed again for `wait_for_pid_noted`.
fn wait_for_go(ch: &InitChannels, keep_open: bool) {
    let mut byte = [0u8; 1];
    match sys::read_full(ch.sync_read, &mut byte) {
        Ok(1) => {}
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

/// Forks and execs the program. Returns its start time, pid, and an exec failure report.
fn start_program(
    p: &Prepared,
    ch: &InitChannels,
    filter: Option<&dyn ExecFilter>,
) -> (u64, i32, Option<Report>) {
    let mut pipe = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        setup_failed(ch, Step::ExecErrorPipe, sys::errno(), 0);
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
        setup_failed(ch, Step::ForkProgram, sys::errno(), 0);
    }
    sys::close(pipe[1]);
    sys::close(ch.stdout_write);
    sys::close(ch.stderr_write);
    let mut buf = [0u8; REPORT_SIZE];
    let got = sys::read_full(pipe[0], &mut buf).unwrap_or(0);
    sys::close(pipe[0]);
    let failure = (got == REPORT_SIZE).then(|| Report::from_bytes(&buf));
    (start_ns, pid, failure)
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

fn finished_report(wait_status: i32, start_ns: u64, end_ns: u64) -> Report {
    // SAFETY: ru is a valid out-buffer for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Report {
        kind: KIND_FINISHED,
        wait_status,
        utime_us: us(ru.ru_utime),
        stime_us: us(ru.ru_stime),
        maxrss_kb: ru.ru_maxrss as u64,
        nvcsw: ru.ru_nvcsw as u64,
        nivcsw: ru.ru_nivcsw as u64,
        start_ns,
        end_ns,
        ..Report::default()
    }
}

/// Copies each --file into /box (still reachable at its pre-pivot path), owned by the
/// program's uid. unlink + O_EXCL|O_NOFOLLOW: a name can never redirect the write.
fn copy_in(p: &Prepared, ch: &InitChannels) {
    if p.files.is_empty() {
        return;
    }
    let dir = match sys::openat(
        libc::AT_FDCWD,
        p.box_dir.as_ptr(),
        libc::O_DIRECTORY | libc::O_RDONLY,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) => setup_failed(ch, Step::CopyIn, e, 0),
    };
    for (i, f) in p.files.iter().enumerate() {
        // A --box-dir may hold leftovers of an earlier run (a symlink, a hard link to some
        // other file): replace, never write through, whatever is there.
        // SAFETY: unlinkat on a NUL-terminated name relative to an open directory.
        unsafe { libc::unlinkat(dir, f.name.as_ptr(), 0) };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        let out = match sys::openat(dir, f.name.as_ptr(), flags, f.mode) {
            Ok(fd) => fd,
            Err(e) => setup_failed(ch, Step::CopyIn, e, i as u32),
        };
        let result = copy_fd(f.fd.as_raw_fd(), out, u64::MAX).and_then(|_| {
            if f.root_owned {
                return Ok(());
            }
            // SAFETY: fchown on an fd we just created.
            if unsafe { libc::fchown(out, p.uid, p.gid) } < 0 {
                Err(sys::errno())
            } else {
                Ok(())
            }
        });
        sys::close(out);
        if let Err(e) = result {
            setup_failed(ch, Step::CopyIn, e, i as u32);
        }
    }
    sys::close(dir);
}

/// Copies `from` (from offset 0) to `to`, at most `limit` bytes; returns bytes copied.
fn copy_fd(from: i32, to: i32, limit: u64) -> Result<u64, i32> {
    let mut offset: libc::off_t = 0;
    let mut total = 0u64;
    loop {
        let chunk = (limit - total).min(1 << 30) as usize;
        if chunk == 0 {
            return Ok(total);
        }
        // SAFETY: sendfile between two valid fds with a valid offset pointer.
        let n = unsafe { libc::sendfile(to, from, &mut offset, chunk) };
        if n < 0 {
            match sys::errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// After every process is gone: copies each requested /box file to its host temp file.
/// The name is resolved beneath /box without following any symlink; only regular files
/// up to the size cap are copied. Each result is reported.
fn copy_out(p: &Prepared, ch: &InitChannels) {
    if p.outs.is_empty() {
        return;
    }
    let dir = sys::openat(
        libc::AT_FDCWD,
        c"/box".as_ptr(),
        libc::O_DIRECTORY | libc::O_PATH,
        0,
    );
    for (i, o) in p.outs.iter().enumerate() {
        let result =
            dir.and_then(|d| copy_out_one(d, o.name.as_ptr(), o.fd.as_raw_fd(), p.copy_out_limit));
        let mut r = Report {
            kind: KIND_COPY_OUT,
            index: i as u32,
            ..Report::default()
        };
        match result {
            Ok(n) => r.bytes = n,
            Err(e) => r.errno = e,
        }
        send(ch, &r);
    }
    if let Ok(d) = dir {
        sys::close(d);
    }
}

fn copy_out_one(dir: i32, name: *const libc::c_char, to: i32, limit: u64) -> Result<u64, i32> {
    let flags = (libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK) as u64;
    let resolve = sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS;
    let fd = sys::openat2(dir, name, flags, 0, resolve)?;
    // SAFETY: st is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let result = if unsafe { libc::fstat(fd, &mut st) } < 0 {
        Err(sys::errno())
    } else if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        Err(libc::EINVAL)
    } else if st.st_nlink > 1 {
        // A hard link could name a file the program cannot read itself; we read as root.
        Err(libc::EMLINK)
    } else if st.st_size as u64 > limit {
        Err(libc::EFBIG)
    } else {
        copy_fd(fd, to, limit)
    };
    sys::close(fd);
    result
}
