//! The outcome of one run and its renderings: the JSON object, isolate's meta file, and
//! the one-line human summary.

pub use crate::cgroup::{Enforcement, Mechanism};
use serde::Serialize;
use std::fmt::Write as _;

/// How a run ended. Serialized in snake_case (`time_limit`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    RuntimeError,
    Signaled,
    TimeLimit,
    WallTimeLimit,
    MemoryLimit,
    OutputLimit,
    SecurityViolation,
    ExecError,
    InternalError,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::RuntimeError => "runtime_error",
            Status::Signaled => "signaled",
            Status::TimeLimit => "time_limit",
            Status::WallTimeLimit => "wall_time_limit",
            Status::MemoryLimit => "memory_limit",
            Status::OutputLimit => "output_limit",
            Status::SecurityViolation => "security_violation",
            Status::ExecError => "exec_error",
            Status::InternalError => "internal_error",
        }
    }

    /// isolate's meta `status` code (absent for a clean exit).
    pub fn isolate_code(self) -> Option<&'static str> {
        match self {
            Status::Ok => None,
            Status::RuntimeError | Status::OutputLimit => Some("RE"),
            Status::Signaled | Status::MemoryLimit | Status::SecurityViolation => Some("SG"),
            Status::TimeLimit | Status::WallTimeLimit => Some("TO"),
            Status::ExecError | Status::InternalError => Some("XX"),
        }
    }
}

/// Everything known about a finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_time: f64,
    pub wall_time: f64,
    pub memory_peak: Option<u64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub message: String,
    pub enforcement: Enforcement,
    pub max_rss_kb: u64,
    pub csw_voluntary: u64,
    pub csw_forced: u64,
    /// The sandbox killed the program (a limit was hit).
    pub killed: bool,
    pub oom_killed: bool,
    /// Memory peak as the cgroup saw it (for the meta file's cg-mem), bytes.
    pub cgroup_memory_peak: Option<u64>,
    pub pids_peak: Option<u64>,
    /// The seccomp profile the program ran under (`None`: no filter).
    pub seccomp: Option<String>,
}

impl RunResult {
    pub fn new(status: Status, message: String) -> RunResult {
        RunResult {
            status,
            exit_code: None,
            signal: None,
            cpu_time: 0.0,
            wall_time: 0.0,
            memory_peak: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            message,
            enforcement: Enforcement {
                memory: Mechanism::None,
                pids: Mechanism::None,
                cpu_time: Mechanism::Rlimit,
                cpus: Mechanism::None,
            },
            max_rss_kb: 0,
            csw_voluntary: 0,
            csw_forced: 0,
            killed: false,
            oom_killed: false,
            cgroup_memory_peak: None,
            pids_peak: None,
            seccomp: None,
        }
    }

    /// judgebox's exit code: 0 success, 1 the program failed or hit a limit, 2 internal error.
    pub fn exit_code_for_cli(&self) -> i32 {
        match self.status {
            Status::Ok => 0,
            Status::InternalError => 2,
            _ => 1,
        }
    }

    /// The JSON object (`base64` selects base64 instead of lossy UTF-8 for the output).
    pub fn to_json(&self, base64: bool) -> serde_json::Value {
        let text = |b: &[u8]| -> String {
            if base64 {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(b)
            } else {
                String::from_utf8_lossy(b).into_owned()
            }
        };
        serde_json::json!({
            "status": self.status,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "signal_name": self.signal.map(signal_name),
            "cpu_time": round3(self.cpu_time),
            "wall_time": round3(self.wall_time),
            "memory_peak": self.memory_peak,
            "stdout": text(&self.stdout),
            "stderr": text(&self.stderr),
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
            "message": self.message,
            "enforcement": self.enforcement,
            "seccomp": self.seccomp,
        })
    }

    /// isolate's `key:value` meta file.
    pub fn to_meta(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "time:{:.3}", self.cpu_time);
        let _ = writeln!(m, "time-wall:{:.3}", self.wall_time);
        let _ = writeln!(m, "max-rss:{}", self.max_rss_kb);
        let _ = writeln!(m, "csw-voluntary:{}", self.csw_voluntary);
        let _ = writeln!(m, "csw-forced:{}", self.csw_forced);
        if let Some(peak) = self.cgroup_memory_peak {
            let _ = writeln!(m, "cg-mem:{}", peak / 1024);
        }
        if self.oom_killed {
            let _ = writeln!(m, "cg-oom-killed:1");
        }
        if let Some(code) = self.exit_code {
            let _ = writeln!(m, "exitcode:{code}");
        }
        if let Some(sig) = self.signal {
            let _ = writeln!(m, "exitsig:{sig}");
        }
        if self.killed {
            let _ = writeln!(m, "killed:1");
        }
        if let Some(code) = self.status.isolate_code() {
            let _ = writeln!(m, "status:{code}");
            let _ = writeln!(m, "message:{}", self.isolate_message());
        }
        m
    }

    /// The message isolate would print, with its exact wording where one exists.
    fn isolate_message(&self) -> String {
        match (self.status, self.exit_code, self.signal) {
            (Status::TimeLimit, _, _) => "Time limit exceeded".into(),
            (Status::WallTimeLimit, _, _) => "Time limit exceeded (wall clock)".into(),
            (Status::RuntimeError, Some(code), _) => format!("Exited with error status {code}"),
            (Status::Signaled | Status::MemoryLimit | Status::SecurityViolation, _, Some(sig)) => {
                format!("Caught fatal signal {sig}")
            }
            _ => self.message.clone(),
        }
    }

    /// One line for people, printed on stderr.
    pub fn summary(&self) -> String {
        let mut s = format!("judgebox: {}", self.status.as_str());
        if let Some(code) = self.exit_code {
            let _ = write!(s, ", exit code {code}");
        }
        if let Some(sig) = self.signal {
            let _ = write!(s, ", signal {} ({})", sig, signal_name(sig));
        }
        let _ = write!(
            s,
            ", cpu {:.3} s, wall {:.3} s",
            self.cpu_time, self.wall_time
        );
        if let Some(peak) = self.memory_peak {
            let _ = write!(s, ", memory {}", crate::units::human_bytes(peak));
        }
        if !self.message.is_empty() && self.status != Status::Ok {
            let _ = write!(s, ": {}", self.message);
        }
        s
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// "SIGSEGV" for 11, "SIG42" for unnamed ones.
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match NAMES.get(sig as usize) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("SIG{sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_file_matches_isolate_keys() {
        let mut r = RunResult::new(Status::RuntimeError, String::new());
        r.exit_code = Some(3);
        r.cpu_time = 0.1234;
        let meta = r.to_meta();
        assert!(meta.contains("time:0.123\n"));
        assert!(meta.contains("exitcode:3\n"));
        assert!(meta.contains("status:RE\n"));
        assert!(meta.contains("message:Exited with error status 3\n"));
        let ok = RunResult::new(Status::Ok, String::new()).to_meta();
        assert!(!ok.contains("status:"));
    }

    #[test]
    fn json_shape() {
        let mut r = RunResult::new(Status::Signaled, "x".into());
        r.signal = Some(11);
        r.stdout = b"hi\xff".to_vec();
        let j = r.to_json(false);
        assert_eq!(j["status"], "signaled");
        assert_eq!(j["signal_name"], "SIGSEGV");
        assert_eq!(j["stdout"], "hi\u{fffd}");
        assert_eq!(r.to_json(true)["stdout"], "aGn/");
        assert!(j["exit_code"].is_null());
    }
}
