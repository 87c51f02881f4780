//! isolate's results: the meta file (`key:value` lines with isolate's keys, formatting and
//! message strings), the one-line stderr status, and the exit code, from a judgebox
//! [`RunResult`].

use crate::sandbox::{RunResult, Status};
use std::fmt::Write as _;

/// SIGXFSZ: what a program writing past `--fsize` dies of under isolate.
const SIGXFSZ: i32 = 25;

/// A run's outcome in isolate's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// RE, SG, TO or XX; None for a clean exit.
    pub status: Option<&'static str>,
    pub message: Option<String>,
    pub exitcode: Option<i32>,
    pub exitsig: Option<i32>,
    pub killed: bool,
}

impl Verdict {
    /// isolate's exit code: 0 OK, 1 the program failed, 2 the sandbox failed.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            None => 0,
            Some("XX") => 2,
            Some(_) => 1,
        }
    }
}

/// Maps a judgebox result to isolate's status, message, exit code and signal.
pub fn verdict(r: &RunResult) -> Verdict {
    let mut v = Verdict {
        status: None,
        message: None,
        exitcode: None,
        exitsig: None,
        killed: false,
    };
    let fail = |v: &mut Verdict, status, message: String| {
        v.status = Some(status);
        v.message = Some(message);
    };
    match r.status {
        Status::Ok => v.exitcode = Some(0),
        Status::TimeLimit => {
            v.killed = r.killed;
            fail(&mut v, "TO", "Time limit exceeded".into());
        }
        Status::WallTimeLimit => {
            v.killed = r.killed;
            fail(&mut v, "TO", "Time limit exceeded (wall clock)".into());
        }
        Status::RuntimeError => {
            let code = r.exit_code.unwrap_or(1);
            v.exitcode = Some(code);
            fail(&mut v, "RE", format!("Exited with error status {code}"));
        }
        Status::ExecError => {
            v.exitcode = Some(127);
            fail(&mut v, "RE", "Exited with error status 127".into());
        }
        Status::OutputLimit => {
            v.exitsig = Some(SIGXFSZ);
            fail(&mut v, "SG", format!("Caught fatal signal {SIGXFSZ}"));
        }
        Status::Signaled | Status::MemoryLimit | Status::SecurityViolation => {
            let sig = r.signal.unwrap_or(libc::SIGKILL);
            v.exitsig = Some(sig);
            fail(&mut v, "SG", format!("Caught fatal signal {sig}"));
        }
        Status::InternalError => fail(&mut v, "XX", escape(&r.message)),
    }
    v
}

/// Milliseconds as isolate prints them: `%d.%03d`, truncated.
pub fn seconds(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).floor() as u64;
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The meta file's text; `cg` adds the control-group keys as isolate does with --cg.
pub fn render(r: &RunResult, v: &Verdict, cg: bool) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "time:{}", seconds(r.cpu_time));
    let _ = writeln!(m, "time-wall:{}", seconds(r.wall_time));
    let _ = writeln!(m, "max-rss:{}", r.max_rss_kb);
    let _ = writeln!(m, "csw-voluntary:{}", r.csw_voluntary);
    let _ = writeln!(m, "csw-forced:{}", r.csw_forced);
    if cg {
        if let Some(peak) = r.cgroup_memory_peak.filter(|&p| p > 0) {
            let _ = writeln!(m, "cg-mem:{}", peak >> 10);
        }
        if r.oom_killed {
            let _ = writeln!(m, "cg-oom-killed:1");
        }
    }
    if let Some(code) = v.exitcode {
        let _ = writeln!(m, "exitcode:{code}");
    }
    if let Some(sig) = v.exitsig {
        let _ = writeln!(m, "exitsig:{sig}");
    }
    if v.killed {
        let _ = writeln!(m, "killed:1");
    }
    if let Some(status) = v.status {
        let _ = writeln!(m, "status:{status}");
    }
    if let Some(msg) = &v.message {
        let _ = writeln!(m, "message:{msg}");
    }
    m
}

/// The meta file of a failure before or around the run (isolate's `die`).
pub fn render_failure(message: &str) -> String {
    format!("status:XX\nmessage:{}\n", escape(message))
}

/// The line isolate prints on stderr (None when it prints nothing).
pub fn summary(r: &RunResult, v: &Verdict, silent: bool) -> Option<String> {
    match (&v.status, &v.message) {
        (Some("XX"), Some(msg)) => Some(msg.clone()),
        (Some(_), Some(msg)) if !silent => Some(msg.clone()),
        (None, _) if !silent => Some(format!(
            "OK ({} sec real, {} sec wall)",
            seconds(r.cpu_time),
            seconds(r.wall_time)
        )),
        _ => None,
    }
}

/// Control characters (a newline would start a new meta key) as `\xNN`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Status) -> RunResult {
        let mut r = RunResult::new(status, String::new());
        r.cpu_time = 0.0019;
        r.wall_time = 1.2345;
        r.max_rss_kb = 1500;
        r
    }

    #[test]
    fn ok_run_meta_and_summary() {
        let r = result(Status::Ok);
        let v = verdict(&r);
        assert_eq!(v.exit_code(), 0);
        assert_eq!(
            render(&r, &v, false),
            "time:0.001\ntime-wall:1.234\nmax-rss:1500\ncsw-voluntary:0\ncsw-forced:0\nexitcode:0\n"
        );
        assert_eq!(
            summary(&r, &v, false).unwrap(),
            "OK (0.001 sec real, 1.234 sec wall)"
        );
        assert_eq!(summary(&r, &v, true), None);
    }

    #[test]
    fn isolate_statuses_and_messages() {
        let mut r = result(Status::RuntimeError);
        r.exit_code = Some(3);
        let v = verdict(&r);
        assert!(render(&r, &v, false)
            .ends_with("exitcode:3\nstatus:RE\nmessage:Exited with error status 3\n"));
        assert_eq!(v.exit_code(), 1);
        let mut r = result(Status::MemoryLimit);
        r.signal = Some(9);
        r.oom_killed = true;
        r.cgroup_memory_peak = Some(64 << 20);
        let m = render(&r, &verdict(&r), true);
        assert!(m.contains("cg-mem:65536\ncg-oom-killed:1\nexitsig:9\nstatus:SG\nmessage:Caught fatal signal 9\n"), "{m}");
        let mut r = result(Status::TimeLimit);
        r.killed = true;
        assert!(render(&r, &verdict(&r), false)
            .ends_with("killed:1\nstatus:TO\nmessage:Time limit exceeded\n"));
        let r = result(Status::WallTimeLimit);
        assert_eq!(
            verdict(&r).message.unwrap(),
            "Time limit exceeded (wall clock)"
        );
        let r = RunResult::new(Status::InternalError, "bad\nstatus:OK".into());
        let v = verdict(&r);
        assert_eq!(v.exit_code(), 2);
        assert_eq!(v.message.unwrap(), "bad\\x0astatus:OK");
        assert_eq!(render_failure("x\ny"), "status:XX\nmessage:x\\x0ay\n");
    }
}
