//! `--run`: one fresh judgebox sandbox per call with isolate's filesystem model, limits,
//! environment and redirections, enforced with a run cgroup under --cg (rlimits and the
//! supervisor's clock otherwise, or where no cgroup is usable).

use super::boxes::{self, Access, BoxId};
use super::config::Settings;
use super::meta::{self, Verdict};
use super::options::Options;
use super::quota;
use super::rules;
use super::stdio;
use super::IsolateError;
use crate::cgroup::{self, Enforcement, Manager, ManagerOptions, Mechanism};
use crate::sandbox::{self, Config, Enforced, Limits, MountPlan, RunResult};
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

/// What a finished --run produced.
pub struct Outcome {
    pub result: RunResult,
    pub verdict: Verdict,
}

/// Set to 1: `--cg` runs in judgebox's degraded mode (rlimits and judgebox's clock), as
/// on hosts where no cgroup is usable (isolate itself refuses to run there).
pub const NO_CGROUP_ENV: &str = "JUDGEBOX_ISOLATE_NO_CGROUP";

/// Size of the fresh /tmp and /dev/shm filesystems.
const TMP_SIZE: u64 = 256 << 20;
/// RLIMIT_NOFILE for `--open-files=0` (the kernel's default nr_open).
const NOFILE_UNLIMITED: u64 = 1 << 20;

/// Options judgebox cannot honour: an error, never silently ignored.
fn refuse_unsupported(o: &Options) -> Result<(), IsolateError> {
    if o.syscalls.is_some() {
        return Err(IsolateError::Unsupported(
            "--syscalls (judgebox applies its own seccomp allow-list)".into(),
        ));
    }
    Ok(())
}

/// `-q` belongs to `--init` (as isolate); at `--run` it is accepted only for a box that
/// has its quota, so that nobody believes a quota is enforced on a box without one.
fn check_quota_box(o: &Options, b: &BoxId) -> Result<(), IsolateError> {
    match o.quota {
        Some((blocks, _)) if blocks > 0 && !quota::is_mounted(&b.box_dir())? => {
            Err(IsolateError::Setup(
                "--quota must be given to --init: this box was initialised without one".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// `--inherit-fds`: our descriptors above 2 that came from the caller (judgebox opens
/// all of its own close-on-exec). A directory is refused: through it the program would
/// reach the host's filesystem outside the box.
fn inherited_fds(o: &Options) -> Result<Vec<i32>, IsolateError> {
    if !o.inherit_fds {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| IsolateError::Setup(format!("Cannot open /proc/self/fd: {e}")))?;
    let mut fds = Vec::new();
    for fd in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        // SAFETY: F_GETFD only queries the descriptor table.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if fd < 3 || flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: an all-zero stat is a valid out buffer for fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on an open descriptor into a valid buffer.
        if unsafe { libc::fstat(fd, &mut st) } == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(IsolateError::Setup(format!(
                "--inherit-fds: descriptor {fd} is a directory; the program could leave the box through it"
            )));
        }
        fds.push(fd);
    }
    Ok(fds)
}

/// isolate's environment: optionally the full one, then LIBC_FATAL_STDERR_=1, then each
/// -E rule (VAR inherits, VAR=value sets, VAR= unsets).
fn environment(o: &Options) -> Vec<String> {
    let mut env: Vec<String> = if o.full_env {
        std::env::vars().map(|(k, v)| format!("{k}={v}")).collect()
    } else {
        Vec::new()
    };
    let rules = std::iter::once("LIBC_FATAL_STDERR_=1".to_string()).chain(o.env.iter().cloned());
    for rule in rules {
        let (var, val) = match rule.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (rule.clone(), None),
        };
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(var.as_str()));
        match val {
            Some(v) if v.is_empty() => {}
            Some(v) => env.push(format!("{var}={v}")),
            None => {
                if let Ok(v) = std::env::var(&var) {
                    env.push(format!("{var}={v}"));
                }
            }
        }
    }
    env
}

/// `--chdir`: relative to /box (isolate changes there first), absolute as given.
fn workdir(o: &Options) -> String {
    match &o.chdir {
        None => "/box".into(),
        Some(d) if d.starts_with('/') => d.clone(),
        Some(d) => format!("/box/{d}"),
    }
}

/// A duplicate of one of our own descriptors as a File (inherited stdio).
fn dup_own(fd: i32) -> Result<Arc<File>, IsolateError> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we were given; the result is ours.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(IsolateError::Setup(format!(
            "Cannot duplicate descriptor {fd}: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `new` is a fresh descriptor owned by nobody else.
    Ok(Arc::new(unsafe {
        <File as std::os::fd::FromRawFd>::from_raw_fd(new)
    }))
}

/// Stdin, stdout and stderr targets (None: the caller's own stdout/stderr, streamed).
struct Redirects {
    stdin: Arc<File>,
    stdout: Option<Arc<File>>,
    stderr: Option<Arc<File>>,
    /// `--tty-hack`: the caller's terminal, which the program uses directly.
    stdout_tty: Option<Arc<File>>,
    stderr_tty: Option<Arc<File>>,
}

/// `--tty-hack`: our stdout or stderr when it is a terminal, for the program to use
/// directly (not through judgebox's pipe), as isolate's program does.
fn tty_target(o: &Options, fd: i32) -> Result<Option<Arc<File>>, IsolateError> {
    // SAFETY: isatty only queries the descriptor.
    if o.tty_hack && unsafe { libc::isatty(fd) } == 1 {
        return dup_own(fd).map(Some);
    }
    Ok(None)
}

fn redirects(
    o: &Options,
    plan: &MountPlan,
    b: &BoxId,
    caller: Option<(u32, u32)>,
) -> Result<Redirects, IsolateError> {
    let open = |path: &str, write: bool| {
        stdio::open(plan, path, write, (b.uid, b.gid), caller)
            .map(Arc::new)
            .map_err(|e| IsolateError::Setup(e.to_string()))
    };
    let stdin = match &o.stdin {
        Some(p) => open(p, false)?,
        None => dup_own(0)?,
    };
    let stdout = o.stdout.as_deref().map(|p| open(p, true)).transpose()?;
    let stdout_tty = match stdout {
        None => tty_target(o, 1)?,
        Some(_) => None,
    };
    let stderr = match (&o.stderr, o.stderr_to_stdout, &stdout) {
        (Some(p), _, _) => Some(open(p, true)?),
        (None, true, Some(out)) => Some(out.clone()),
        (None, true, None) => Some(dup_own(1)?),
        (None, false, _) => None,
    };
    let stderr_tty = match (&stderr, o.stderr_to_stdout) {
        (Some(_), false) => None,
        (_, true) => stdout_tty.clone(),
        (None, false) => tty_target(o, 2)?,
    };
    Ok(Redirects {
        stdin,
        stdout,
        stderr,
        stdout_tty,
        stderr_tty,
    })
}

fn limits(o: &Options) -> Limits {
    Limits {
        cpu_time: o.time,
        cpu_per_process: false,
        wall_time: o.wall_time,
        extra_time: o.extra_time,
        output: o.fsize.map_or(u64::MAX, |k| k << 10),
        nofile: if o.open_files == 0 {
            NOFILE_UNLIMITED
        } else {
            o.open_files
        },
        fsize: o.fsize.map_or(u64::MAX, |k| k << 10),
        stack: o.stack.map(|k| k << 10),
        memory: o.mem.or(o.cg_mem).map(|k| k << 10),
        pids: o.processes,
        cpus: None,
        core: o.core << 10,
    }
}

fn build_config(
    o: &Options,
    b: &BoxId,
    plan: MountPlan,
    r: Redirects,
    inherit_fds: Vec<i32>,
) -> Config {
    Config {
        rootfs: b.root_dir(),
        argv: o.operands.clone(),
        env: environment(o),
        loopback: !o.share_net,
        uid: b.uid,
        gid: b.gid,
        tmp_size: TMP_SIZE,
        limits: limits(o),
        workdir: workdir(o),
        stream_output: true,
        mounts: Some(plan),
        stdin_from: Some(r.stdin),
        stdout_to: r.stdout,
        stderr_to: r.stderr,
        stdout_direct: r.stdout_tty,
        stderr_direct: r.stderr_tty,
        inherit_fds,
        ..Config::default()
    }
}

/// Which mechanism enforces each limit: -m and -p are rlimits as in isolate (per
/// process, per box uid), --cg-mem the cgroup when there is one.
fn enforcement(o: &Options, manager: Option<&Manager>) -> Enforcement {
    let cg_limits = cgroup::Limits {
        memory: o.cg_mem.map(|k| k << 10),
        ..cgroup::Limits::default()
    };
    let mut e = match manager {
        Some(m) => m.enforcement(&cg_limits),
        None => Enforcement {
            memory: Mechanism::None,
            pids: Mechanism::None,
            cpu_time: Mechanism::Rlimit,
            cpus: Mechanism::None,
        },
    };
    if o.mem.is_some() || (o.cg_mem.is_some() && e.memory == Mechanism::None) {
        e.memory = Mechanism::Rlimit;
    }
    e.pids = if o.processes.is_some() {
        Mechanism::Rlimit
    } else {
        Mechanism::None
    };
    e
}

/// The network namespace to share with --share-net (ours).
fn host_netns(o: &Options) -> Result<Option<File>, IsolateError> {
    if !o.share_net {
        return Ok(None);
    }
    File::open("/proc/self/ns/net")
        .map(Some)
        .map_err(|e| IsolateError::Setup(format!("Cannot open /proc/self/ns/net: {e}")))
}

/// isolate prints execve's failure on the program's stderr.
fn report_exec_failure(o: &Options, r: &RunResult, stderr: Option<&Arc<File>>) {
    if r.status != sandbox::Status::ExecError {
        return;
    }
    let why = r.message.rsplit(": ").next().unwrap_or("cannot execute");
    let line = format!("execve(\"{}\"): {}\n", meta::escape(&o.operands[0]), why);
    match stderr {
        Some(f) => {
            let _ = (&**f).write_all(line.as_bytes());
        }
        None => eprint!("{line}"),
    }
}

/// isolate's -v lines about directory rules ("Binding /usr on usr").
fn describe_plan(plan: &MountPlan) {
    use crate::sandbox::MountSource;
    for r in &plan.rules {
        let what = match &r.source {
            MountSource::Host(p) => format!("Binding {}", p.display()),
            MountSource::Beneath { base, rel } => format!("Binding {}", base.join(rel).display()),
            MountSource::Proc => "Mounting judgebox's proc".into(),
            MountSource::Dev => "Mounting judgebox's dev".into(),
            MountSource::Tmp => "Mounting a fresh tmpfs".into(),
            MountSource::Fs(kind) => format!("Mounting {kind:?}"),
        };
        let mode = if r.rw { "rw" } else { "ro" };
        eprintln!(
            "{} on {} ({mode})",
            meta::escape(&what),
            meta::escape(&r.inside)
        );
    }
}

/// With a caller identity, every bind source must be reachable by the caller: isolate's
/// bind as the caller fails with this message (init then opens them as the caller too).
fn check_sources(plan: &MountPlan) -> Result<(), IsolateError> {
    let Some(ids) = plan.caller else {
        return Ok(());
    };
    for r in &plan.rules {
        rules::reachable(&r.source, Some(ids)).map_err(|e| {
            IsolateError::Setup(format!(
                "Cannot mount {} on {}: {}",
                source_name(&r.source),
                r.inside,
                crate::sandbox::sys::errno_text(e)
            ))
        })?;
    }
    Ok(())
}

fn source_name(s: &crate::sandbox::MountSource) -> String {
    use crate::sandbox::MountSource;
    match s {
        MountSource::Host(p) => p.display().to_string(),
        MountSource::Beneath { base, rel } => base.join(rel).display().to_string(),
        other => format!("{other:?}"),
    }
}

/// Runs the program in box `b` for `a.caller`: the box is the box user's during the
/// run and, when the caller is not root (`--as-uid`), handed back to the caller after
/// it whatever happened, as isolate does.
pub fn run(o: &Options, s: &Settings, b: &BoxId, a: &Access) -> Result<Outcome, IsolateError> {
    refuse_unsupported(o)?;
    let _lock = boxes::lock_for_run(s, b, a)?;
    check_quota_box(o, b)?;
    boxes::chown_tree(&b.box_dir(), b.uid, b.gid, o.special_files)?;
    let outcome = run_in_box(o, b, a.caller.restricted());
    if let Some((uid, gid)) = a.caller.restricted() {
        boxes::chown_tree(&b.box_dir(), uid, gid, o.special_files)?;
    }
    outcome
}

fn run_in_box(o: &Options, b: &BoxId, caller: Option<(u32, u32)>) -> Result<Outcome, IsolateError> {
    let plan = o.dirs.to_plan(&b.dir, caller);
    if o.verbose > 0 {
        describe_plan(&plan);
    }
    check_sources(&plan)?;
    let inherit = inherited_fds(o)?;
    let redirects = redirects(o, &plan, b, caller)?;
    let stderr_target = redirects.stderr.clone();
    let config = build_config(o, b, plan, redirects, inherit);
    let filter = crate::seccomp::Filter::load("default")
        .map_err(|e| IsolateError::Setup(format!("Cannot load the seccomp profile: {e}")))?;
    let manager = o.cg.then(|| {
        Manager::new(&ManagerOptions {
            root: None,
            disabled: std::env::var_os(NO_CGROUP_ENV).is_some_and(|v| v == "1"),
        })
    });
    let manager = manager.filter(|m| m.mode() != cgroup::Mode::None);
    let enforcement = enforcement(o, manager.as_ref());
    if o.verbose > 0 {
        eprintln!(
            "judgebox isolate: box {} (uid {}), cgroups: {}",
            b.id,
            b.uid,
            manager
                .as_ref()
                .map_or("none".to_string(), |m| m.mode().to_string())
        );
    }
    let netns = host_netns(o)?;
    let cg_limits = cgroup::Limits {
        memory: o.cg_mem.map(|k| k << 10),
        // The box runs in its own pid namespace (`sandbox::run_enforced`).
        pid_namespace: true,
        ..cgroup::Limits::default()
    };
    let run_cgroup = match &manager {
        Some(m) => Some(
            m.create_run(&cg_limits)
                .map_err(|e| IsolateError::Setup(format!("Failed to create control group: {e}")))?,
        ),
        None => None,
    };
    let outcome = sandbox::run_enforced(
        config,
        Enforced {
            cgroup: run_cgroup.as_deref(),
            enforcement,
            filter: filter.as_ref(),
            netns: netns.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
            fixed_uid: true,
            fixed_gid: true,
        },
    );
    if let Some(cg) = run_cgroup {
        if let Err(e) = cg.remove() {
            eprintln!("judgebox isolate: warning: {e}");
        }
    }
    let result = outcome.map_err(|e| IsolateError::Setup(e.to_string()))?;
    report_exec_failure(o, &result, stderr_target.as_ref());
    let verdict = meta::verdict(&result);
    Ok(Outcome { result, verdict })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_follows_isolate_rules() {
        std::env::set_var("JUDGEBOX_ISOLATE_T", "inherited");
        let o = Options {
            env: vec![
                "JUDGEBOX_ISOLATE_T".into(),
                "HOME=/tmp".into(),
                "X=1".into(),
                "X=".into(),
                "LIBC_FATAL_STDERR_=0".into(),
            ],
            ..Options::default()
        };
        assert_eq!(
            environment(&o),
            [
                "JUDGEBOX_ISOLATE_T=inherited",
                "HOME=/tmp",
                "LIBC_FATAL_STDERR_=0"
            ]
        );
        assert_eq!(environment(&Options::default()), ["LIBC_FATAL_STDERR_=1"]);
    }

    #[test]
    fn chdir_is_relative_to_box() {
        let mut o = Options::default();
        assert_eq!(workdir(&o), "/box");
        o.chdir = Some("sub".into());
        assert_eq!(workdir(&o), "/box/sub");
        o.chdir = Some("/tmp".into());
        assert_eq!(workdir(&o), "/tmp");
    }
}
