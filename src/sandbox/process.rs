//! The program's own process, between fork (from init) and execve: stdio, rlimits,
//! credentials, capabilities (init already emptied the bounding set), no_new_privs, fds, work dir, seccomp, exec. Allocation-free;
//! any failure is written to the exec-error pipe and the process exits 127.

use super::caps;
use super::prepare::Prepared;
use super::protocol::{step, ChildError, Kind, Message, SetupStep, MAX_CGROUP_FDS};
use super::rlimits;
use super::slice;
use super::sys;
use super::ExecFilter;

/// Fds the program child receives from init.
pub struct ProgramFds {
    pub stdin: i32,
    pub stdout: i32,
    pub stderr: i32,
    /// Write end of the CLOEXEC exec-error pipe.
    pub error: i32,
    /// v1 `tasks` files the program writes "0" to, to join its run's cgroup (-1: unused;
    /// on v2 clone3 placed it).
    pub cgroup_join: [i32; MAX_CGROUP_FDS],
    /// Namespaces the program takes for itself once in its cgroup (`CLONE_NEW*` flags):
    /// always a cgroup namespace rooted there; a warm sandbox's run also an IPC
    /// namespace no earlier run touched (a one-shot run's init made one at clone).
    pub unshare: libc::c_int,
}

/// Runs in the forked program child; never returns. Any failure goes to the exec-error
/// pipe as a [`Kind::ExecFailed`] message and the process exits 127.
pub fn exec_program(p: &Prepared, fds: &ProgramFds, filter: Option<&dyn ExecFilter>) -> ! {
    let error = match set_up(p, fds, filter) {
        Ok(()) => exec(p),
        Err(e) => e,
    };
    let _ = sys::write_all(
        fds.error,
        &Message::failure(Kind::ExecFailed, error).to_bytes(),
    );
    sys::exit_now(127)
}

/// Everything between fork and execve, in order; seccomp last of all.
fn set_up(
    p: &Prepared,
    fds: &ProgramFds,
    filter: Option<&dyn ExecFilter>,
) -> Result<(), ChildError> {
    enter_run_namespaces(fds)?;
    // SAFETY: setsid has no preconditions; a new session keeps the program off any tty.
    if unsafe { libc::setsid() } < 0 {
        return Err(ChildError::new(SetupStep::Setsid, sys::errno()));
    }
    reset_signals();
    set_stdio(fds)?;
    rlimits::apply(&p.rlimits)?;
    set_credentials(p)?;
    caps::clear_all()?;
    step(
        SetupStep::NoNewPrivs,
        sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1),
    )?;
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0o022) };
    step(SetupStep::Chdir, sys::chdir(p.workdir.as_ptr()))?;
    // Every fd above 2 (including the error pipe) closes at execve.
    if sys::close_range(3, i32::MAX, sys::CLOSE_RANGE_CLOEXEC).is_err() {
        mark_cloexec_slow();
    }
    keep_inherited(p)?;
    // judgebox's threads ask for a short slice (`slice.rs`), which this process inherited
    // and kept through its setup; the program gets the default (best effort, as the
    // request was: nothing to undo where the kernel ignored it). Before seccomp, which
    // may not allow the call.
    let _ = slice::default_slice();
    if let Some(f) = filter {
        step(SetupStep::Seccomp, f.install())?;
    }
    Ok(())
}

/// Joins the run's cgroup (v1; on v2 clone3 placed the program), then takes the
/// namespaces of `fds.unshare`.
fn enter_run_namespaces(fds: &ProgramFds) -> Result<(), ChildError> {
    for &fd in fds.cgroup_join.iter().filter(|&&fd| fd >= 0) {
        step(SetupStep::JoinRunCgroup, sys::write_all(fd, b"0"))?;
    }
    if fds.unshare == 0 {
        return Ok(());
    }
    // SAFETY: unshare affects only this process.
    if unsafe { libc::unshare(fds.unshare) } < 0 {
        return Err(ChildError::new(
            SetupStep::UnshareRunNamespaces,
            sys::errno(),
        ));
    }
    Ok(())
}

/// Dispositions set to "ignore" survive execve (Rust's runtime ignores SIGPIPE, for one):
/// give the program default handlers and an empty signal mask.
fn reset_signals() {
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: resetting a disposition to default is always valid.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    // SAFETY: an empty, initialised set passed to sigprocmask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

fn set_stdio(fds: &ProgramFds) -> Result<(), ChildError> {
    for (i, (from, to)) in [(fds.stdin, 0), (fds.stdout, 1), (fds.stderr, 2)]
        .into_iter()
        .enumerate()
    {
        sys::dup2(from, to).map_err(|e| ChildError::at(SetupStep::SetStdio, e, i as u32))?;
    }
    Ok(())
}

/// Raw syscalls, not glibc's wrappers: in a process cloned from a multi-threaded
/// supervisor, glibc still believes the parent's other threads exist and its setxid
/// broadcast (which applies credentials to every thread) would wait for them forever.
fn set_credentials(p: &Prepared) -> Result<(), ChildError> {
    let check = |step, ret: libc::c_long| {
        if ret < 0 {
            Err(ChildError::new(step, sys::errno()))
        } else {
            Ok(())
        }
    };
    // SAFETY: raw setgroups with an empty list: no memory is passed (NULL, zero count).
    check(SetupStep::SetGroups, unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>())
    })?;
    // SAFETY: setresgid with plain ids.
    check(SetupStep::SetGid, unsafe {
        libc::syscall(libc::SYS_setresgid, p.gid, p.gid, p.gid)
    })?;
    // SAFETY: setresuid with plain ids.
    check(SetupStep::SetUid, unsafe {
        libc::syscall(libc::SYS_setresuid, p.uid, p.uid, p.uid)
    })
}

/// The caller's descriptors the program keeps (`Config::inherit_fds`) survive execve.
fn keep_inherited(p: &Prepared) -> Result<(), ChildError> {
    for (i, &fd) in p.inherit_fds.iter().enumerate() {
        // SAFETY: F_SETFD on a descriptor init kept open for the program.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
            return Err(ChildError::at(SetupStep::InheritFd, sys::errno(), i as u32));
        }
    }
    Ok(())
}

/// Fallback for kernels without close_range: mark fds 3..1024 close-on-exec one by one.
fn mark_cloexec_slow() {
    for fd in 3..1024 {
        // SAFETY: fcntl on a possibly-closed fd just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// execve, searching PATH (as execvp does) when argv[0] has no slash. Returns only on
/// failure, with the most telling errno.
fn exec(p: &Prepared) -> ChildError {
    let name = p.argv[0].as_bytes();
    if name.contains(&b'/') {
        // SAFETY: argv/envp are NULL-terminated arrays of valid C strings.
        unsafe {
            libc::execve(
                p.argv[0].as_ptr(),
                p.argv_ptrs.as_ptr(),
                p.envp_ptrs.as_ptr(),
            )
        };
        return ChildError::new(SetupStep::Execve, sys::errno());
    }
    let mut buf = [0u8; 4096];
    let mut best = libc::ENOENT;
    for dir in &p.search_dirs {
        let d = dir.as_bytes();
        if d.len() + name.len() + 1 > buf.len() {
            continue;
        }
        buf[..d.len()].copy_from_slice(d);
        buf[d.len()..d.len() + name.len()].copy_from_slice(name);
        buf[d.len() + name.len()] = 0;
        // SAFETY: buf holds a NUL-terminated path; arrays as above.
        unsafe {
            libc::execve(
                buf.as_ptr() as *const libc::c_char,
                p.argv_ptrs.as_ptr(),
                p.envp_ptrs.as_ptr(),
            )
        };
        match sys::errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            e => best = e, // e.g. EACCES: remember, but keep looking like execvp does
        }
    }
    ChildError::new(SetupStep::Execve, best)
}
