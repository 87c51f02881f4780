//! The one error type of the seccomp module. Every message is lowercase and names the
//! profile (a path, or `seccomp/NAME.json (embedded)`) and, where it applies, the JSON
//! field at fault (`syscalls[3].args[0].op`), so a bad profile is fixed without guessing.

/// Why a seccomp profile could not be loaded or compiled.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile file could not be read.
    #[error("cannot read seccomp profile {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or JSON that does not fit the profile schema (unknown field, wrong type).
    #[error("malformed seccomp profile {file}: {source}")]
    Json {
        file: String,
        #[source]
        source: serde_json::Error,
    },
    /// An action string that is not one of the `SCMP_ACT_*` names.
    #[error("seccomp profile {file}: {field}: unknown action {value:?} (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG)")]
    UnknownAction {
        file: String,
        field: String,
        value: String,
    },
    /// A syscall name that exists on no Linux architecture known to us.
    #[error("seccomp profile {file}: {field}: unknown syscall {name:?} (not a system call on any linux architecture)")]
    UnknownSyscall {
        file: String,
        field: String,
        name: String,
    },
    /// A syscall argument index outside 0..=5.
    #[error("seccomp profile {file}: {field}: argument index {index} is out of range (system calls have arguments 0 to 5)")]
    ArgIndex {
        file: String,
        field: String,
        index: u64,
    },
    /// Any other invalid value; `reason` says what is wrong with `field`.
    #[error("seccomp profile {file}: {field}: {reason}")]
    Invalid {
        file: String,
        field: String,
        reason: String,
    },
    /// The compiled filter denies execve, so no program could ever start under it.
    #[error("seccomp profile {file} would block execve (the filter answers it with {answer}): nothing could run under it")]
    BlocksExecve { file: String, answer: String },
    /// The compiled program exceeds the kernel's limit on filter length.
    #[error("seccomp profile {file} compiles to {len} bpf instructions, more than the kernel limit of {max}")]
    TooLarge {
        file: String,
        len: usize,
        max: usize,
    },
    /// judgebox builds filters only for x86_64 and aarch64.
    #[error("seccomp filters are not supported on this architecture ({arch}); use --seccomp none")]
    UnsupportedArch { arch: &'static str },
}
