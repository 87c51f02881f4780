//! How a run ended, in words: turns what the monitor observed (init's messages, the
//! reason it stopped the run, cgroup accounting) into a status, exact figures and a
//! message naming the limit, signal, syscall or setup step.

use super::monitor::Observed;
use super::protocol::{ChildError, Kind, Message, SetupStep};
use super::result::{signal_name, RunResult, Status};
use super::sys;
use super::{Config, Hooks};
use crate::cgroup::Stats;

/// Turns what the monitor saw into a status, times and a message.
pub fn interpret(config: &Config, hooks: &Hooks, o: &Observed) -> RunResult {
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

fn apply_cgroup_usage(u: &Stats, r: &mut RunResult) {
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

fn classify(config: &Config, hooks: &Hooks, o: &Observed, r: &RunResult) -> (Status, String) {
    let l = &config.limits;
    if let Some(why) = o.killed_for {
        let msg = match why {
            Status::TimeLimit => cpu_limit_message(l),
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
    let cpu_used = if l.cpu_per_process {
        o.process_cpu_peak_ns as f64 / 1e9
    } else {
        r.cpu_time
    };
    if l.cpu_time.is_some_and(|t| cpu_used > t) || r.signal == Some(libc::SIGXCPU) {
        return (Status::TimeLimit, cpu_limit_message(l));
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

fn cpu_limit_message(l: &super::Limits) -> String {
    let each = if l.cpu_per_process {
        " (per process)"
    } else {
        ""
    };
    format!(
        "cpu time limit of {} s{each} exceeded",
        l.cpu_time.unwrap_or(0.0)
    )
}

fn failure_result(config: &Config, m: &Message, o: &Observed) -> RunResult {
    let (status, message) = match (m.kind(), m.child_error()) {
        (Some(Kind::ExecFailed), Some(e)) if e.step == SetupStep::Execve => (
            Status::ExecError,
            format!(
                "cannot execute '{}' inside the rootfs: {}",
                config.argv[0],
                sys::errno_text(e.errno)
            ),
        ),
        (_, Some(e)) => (
            Status::InternalError,
            format!(
                "sandbox setup failed: {}{}: {}",
                e.step.describe(),
                step_detail(e),
                sys::errno_text(e.errno)
            ),
        ),
        (_, None) => (
            Status::InternalError,
            format!(
                "sandbox setup failed: unknown step: {}",
                sys::errno_text(m.errno)
            ),
        ),
    };
    let mut r = RunResult::new(status, message);
    r.wall_time = o.wall.as_secs_f64();
    r
}

/// The list item a failed step was working on (a /proc path), for the message.
fn step_detail(e: ChildError) -> String {
    use super::prepare::MASKED_PATHS;
    let name = match e.step {
        SetupStep::MaskProcPath => MASKED_PATHS.get(e.index as usize),
        _ => None,
    };
    name.map(|n| format!(" /{n}")).unwrap_or_default()
}
