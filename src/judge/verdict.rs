//! Verdicts: what a test's run (or the compile) comes to, with the Judge0 status id and
//! description a Judge0-compatible front end expects (ids 3..14, anchors.md §5).

use serde::Serialize;

use crate::sandbox::{RunResult, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    WrongAnswer,
    TimeLimit,
    MemoryLimit,
    OutputLimit,
    RuntimeError,
    CompilationError,
    SecurityViolation,
    InternalError,
    /// Not run (`--stop-on-first-failure` after an earlier failure).
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::WrongAnswer => "wrong_answer",
            Verdict::TimeLimit => "time_limit",
            Verdict::MemoryLimit => "memory_limit",
            Verdict::OutputLimit => "output_limit",
            Verdict::RuntimeError => "runtime_error",
            Verdict::CompilationError => "compilation_error",
            Verdict::SecurityViolation => "security_violation",
            Verdict::InternalError => "internal_error",
            Verdict::Skipped => "skipped",
        }
    }

    /// Short form for tables.
    pub fn short(self) -> &'static str {
        match self {
            Verdict::Accepted => "AC",
            Verdict::WrongAnswer => "WA",
            Verdict::TimeLimit => "TLE",
            Verdict::MemoryLimit => "MLE",
            Verdict::OutputLimit => "OLE",
            Verdict::RuntimeError => "RE",
            Verdict::CompilationError => "CE",
            Verdict::SecurityViolation => "SV",
            Verdict::InternalError => "IE",
            Verdict::Skipped => "--",
        }
    }
}

/// Judge0's `status {id, description}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Judge0Status {
    pub id: u32,
    pub description: &'static str,
}

const fn j0(id: u32, description: &'static str) -> Judge0Status {
    Judge0Status { id, description }
}

/// Judge0's id for a verdict. Judge0 has no memory-limit, output-limit or seccomp ids:
/// an out-of-memory kill is "Runtime Error (Other)" there, an output cap is SIGXFSZ
/// (isolate enforces it with RLIMIT_FSIZE), a seccomp kill is SIGSYS, "Other".
pub fn judge0_status(verdict: Verdict, run: Option<&RunResult>) -> Judge0Status {
    match verdict {
        Verdict::Accepted => j0(3, "Accepted"),
        Verdict::WrongAnswer => j0(4, "Wrong Answer"),
        Verdict::TimeLimit => j0(5, "Time Limit Exceeded"),
        Verdict::CompilationError => j0(6, "Compilation Error"),
        Verdict::OutputLimit => j0(8, "Runtime Error (SIGXFSZ)"),
        Verdict::MemoryLimit | Verdict::SecurityViolation => j0(12, "Runtime Error (Other)"),
        Verdict::InternalError | Verdict::Skipped => j0(13, "Internal Error"),
        Verdict::RuntimeError => match run {
            Some(r) if r.status == Status::ExecError => j0(14, "Exec Format Error"),
            Some(r) => match r.signal {
                Some(libc::SIGSEGV) => j0(7, "Runtime Error (SIGSEGV)"),
                Some(libc::SIGXFSZ) => j0(8, "Runtime Error (SIGXFSZ)"),
                Some(libc::SIGFPE) => j0(9, "Runtime Error (SIGFPE)"),
                Some(libc::SIGABRT) => j0(10, "Runtime Error (SIGABRT)"),
                Some(_) => j0(12, "Runtime Error (Other)"),
                None => j0(11, "Runtime Error (NZEC)"),
            },
            None => j0(11, "Runtime Error (NZEC)"),
        },
    }
}

/// The verdict of a run whose output still has to be compared: `None` means the program
/// ended normally (exit 0) and the output decides.
pub fn verdict_of_run(r: &RunResult) -> Option<Verdict> {
    match r.status {
        Status::Ok => None,
        Status::TimeLimit | Status::WallTimeLimit => Some(Verdict::TimeLimit),
        Status::MemoryLimit => Some(Verdict::MemoryLimit),
        Status::OutputLimit => Some(Verdict::OutputLimit),
        Status::RuntimeError | Status::Signaled | Status::ExecError => Some(Verdict::RuntimeError),
        Status::SecurityViolation => Some(Verdict::SecurityViolation),
        Status::InternalError => Some(Verdict::InternalError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: Status, signal: Option<i32>) -> RunResult {
        let mut r = RunResult::new(status, String::new());
        r.signal = signal;
        r
    }

    #[test]
    fn judge0_ids_follow_isolates_mapping() {
        let id = |v, r: Option<&RunResult>| judge0_status(v, r).id;
        assert_eq!(id(Verdict::Accepted, None), 3);
        assert_eq!(id(Verdict::WrongAnswer, None), 4);
        assert_eq!(id(Verdict::TimeLimit, None), 5);
        assert_eq!(id(Verdict::CompilationError, None), 6);
        let segv = run(Status::Signaled, Some(libc::SIGSEGV));
        assert_eq!(id(Verdict::RuntimeError, Some(&segv)), 7);
        let fpe = run(Status::Signaled, Some(libc::SIGFPE));
        assert_eq!(id(Verdict::RuntimeError, Some(&fpe)), 9);
        let abrt = run(Status::Signaled, Some(libc::SIGABRT));
        assert_eq!(id(Verdict::RuntimeError, Some(&abrt)), 10);
        let nzec = run(Status::RuntimeError, None);
        assert_eq!(id(Verdict::RuntimeError, Some(&nzec)), 11);
        let kill = run(Status::Signaled, Some(libc::SIGKILL));
        assert_eq!(id(Verdict::RuntimeError, Some(&kill)), 12);
        assert_eq!(id(Verdict::InternalError, None), 13);
        let exec = run(Status::ExecError, None);
        assert_eq!(id(Verdict::RuntimeError, Some(&exec)), 14);
    }

    #[test]
    fn run_statuses_map_to_verdicts() {
        assert_eq!(verdict_of_run(&run(Status::Ok, None)), None);
        assert_eq!(
            verdict_of_run(&run(Status::WallTimeLimit, None)),
            Some(Verdict::TimeLimit)
        );
        assert_eq!(
            verdict_of_run(&run(Status::MemoryLimit, Some(9))),
            Some(Verdict::MemoryLimit)
        );
        assert_eq!(
            verdict_of_run(&run(Status::Signaled, Some(11))),
            Some(Verdict::RuntimeError)
        );
    }
}
