//! The sandbox: runs one command in a rootfs directory inside fresh mount, pid, ipc, uts,
//! net and cgroup namespaces, as an unprivileged uid with no capabilities, and reports
//! exactly how it ended. `run` is the whole lifecycle; the submodules are its steps.

mod caps;
mod copy;
mod cputime;
mod enforced;
mod filter;
mod init;
mod monitor;
pub mod mounts;
mod namespaces;
pub mod netns_pool;
mod outcome;
mod prepare;
mod process;
mod protocol;
pub mod result;
mod rlimits;
mod rootfs;
mod sinks;
mod slice;
mod supervisor;
pub(crate) mod sys;
mod timed;
pub mod uid;
mod warm;

use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

use crate::cgroup::Cgroup;
pub use mounts::{FsKind, MountPlan, MountRule, MountSource};
pub use protocol::SetupStep;
pub use result::{RunResult, Status};

/// Mount points every rootfs must offer (created when missing; image unpacking makes
/// them too).
pub const MOUNT_POINTS: [&str; 4] = ["proc", "dev", "tmp", "box"];

/// Whether `name` can name a file in /box: relative, no `..` or `.`, not empty, no NUL.
pub fn is_box_name(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty()
        && !name.contains('\0')
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && path.components().next().is_some()
}

/// Whether `name` is a plain file name directly in /box (a [`is_box_name`] without `/`).
pub fn is_box_file_name(name: &str) -> bool {
    is_box_name(name) && !name.contains('/')
}

/// Default PATH inside the sandbox.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `base` `KEY=VALUE` entries, then `overrides`, each replacing an entry with the same key
/// (programs read the first match, so a duplicate would let `base` win).
pub fn overlay_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    for entry in base.iter().chain(overrides) {
        let key = entry.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    env
}

#[cfg(test)]
#[test]
fn overlay_env_replaces_keys_in_place_of_duplicating_them() {
    let image = ["PATH=/usr/bin".to_string(), "GOFLAGS=-mod=mod".to_string()];
    let manifest = ["GOFLAGS=".to_string(), "HOME=/tmp".to_string()];
    assert_eq!(
        overlay_env(&image, &manifest),
        ["PATH=/usr/bin", "GOFLAGS=", "HOME=/tmp"]
    );
}

/// A file copied from the host into /box before the run.
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub source: PathBuf,
    pub name: String,
    /// Owned by root and without write bits, so the program can read (and run) the file
    /// but not change it (e.g. a judge's compiled artifacts).
    pub read_only: bool,
}

/// A file copied out of /box to the host after the run.
#[derive(Debug, Clone)]
pub struct CopyOut {
    pub name: String,
    pub dest: PathBuf,
}

/// Resource limits of one run. `None` means unlimited.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU time of the whole process tree, seconds (of each process on its own with
    /// `cpu_per_process`).
    pub cpu_time: Option<f64>,
    /// `cpu_time` limits each process's own CPU time (isolate without `--cg-timing`, as
    /// Judge0's `enable_per_process_and_thread_time_limit`), not the tree's total: the
    /// supervisor watches every process, RLIMIT_CPU backs it up in the kernel.
    pub cpu_per_process: bool,
    /// Wall-clock time, seconds.
    pub wall_time: Option<f64>,
    /// Grace after a time limit before the kill (isolate's --extra-time).
    pub extra_time: f64,
    /// Cap on captured stdout+stderr bytes.
    pub output: u64,
    pub nofile: u64,
    pub fsize: u64,
    pub stack: Option<u64>,
    /// Memory cap in bytes (cgroup, or RLIMIT_AS when no cgroup is usable).
    pub memory: Option<u64>,
    /// Task cap (cgroup pids, or RLIMIT_NPROC when no cgroup is usable).
    pub pids: Option<u64>,
    /// CPU bandwidth as a fraction of one CPU (cgroup only).
    pub cpus: Option<f64>,
    /// RLIMIT_CORE in bytes (0: no core files).
    pub core: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_time: None,
            cpu_per_process: false,
            wall_time: None,
            extra_time: 0.0,
            output: 64 << 20,
            nofile: 64,
            fsize: 64 << 20,
            stack: Some(64 << 20),
            memory: None,
            pids: None,
            cpus: None,
            core: 0,
        }
    }
}

impl Limits {
    /// The limits a run's cgroup enforces (the rest are the supervisor's and rlimits').
    pub fn cgroup(&self) -> crate::cgroup::Limits {
        crate::cgroup::Limits {
            memory: self.memory,
            pids: self.pids,
            cpus: self.cpus,
            // Every sandboxed run has its own pid namespace (`namespaces.rs`).
            pid_namespace: true,
        }
    }
}

/// Everything one run needs. Built by the CLI (or a judge) and consumed by [`run`].
#[derive(Debug, Clone)]
pub struct Config {
    pub rootfs: PathBuf,
    pub argv: Vec<String>,
    /// Extra `KEY=VALUE` entries; PATH defaults to [`DEFAULT_PATH`] unless given here.
    pub env: Vec<String>,
    pub hostname: String,
    /// Bring `lo` up inside the empty network namespace.
    pub loopback: bool,
    pub uid: u32,
    pub gid: u32,
    pub tmp_size: u64,
    pub box_size: u64,
    pub files: Vec<CopyIn>,
    pub box_dir: Option<PathBuf>,
    pub copy_out: Vec<CopyOut>,
    /// Largest file `--copy-out` will copy back.
    pub copy_out_limit: u64,
    pub stdin: Option<PathBuf>,
    pub stdout_file: Option<PathBuf>,
    pub stderr_file: Option<PathBuf>,
    pub limits: Limits,
    /// Allow the host's `/` as rootfs (debugging only).
    pub allow_host_root: bool,
    /// Working directory inside the sandbox (default /box): absolute, without `..`;
    /// resolved inside the sandbox's root after pivot_root.
    pub workdir: String,
    /// Write the program's output through to our own stdout/stderr as it arrives
    /// (still counted against the output limit) instead of keeping it in the result.
    pub stream_output: bool,
    /// A mount plan instead of the rootfs's contents: a tmpfs root mounted on `rootfs`
    /// (then just an empty directory) with the plan's rules applied (see [`mounts`]).
    pub mounts: Option<MountPlan>,
    /// An open file for the program's stdin (takes precedence over `stdin`).
    pub stdin_from: Option<Arc<File>>,
    /// Open files for the program's stdout / stderr (take precedence over the path
    /// fields); when both are the same file they share one offset.
    pub stdout_to: Option<Arc<File>>,
    pub stderr_to: Option<Arc<File>>,
    /// Files the program's stdout / stderr are themselves (not a pipe through the
    /// supervisor): isolate's `--tty-hack` hands the caller's terminal over so. Nothing
    /// is captured or capped; they take precedence over every other stdout/stderr field.
    pub stdout_direct: Option<Arc<File>>,
    pub stderr_direct: Option<Arc<File>>,
    /// Descriptors (3 and above) of ours the program keeps, at the same numbers
    /// (isolate's `--inherit-fds`); every other descriptor above 2 is closed.
    pub inherit_fds: Vec<i32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rootfs: PathBuf::new(),
            argv: Vec::new(),
            env: Vec::new(),
            hostname: "judgebox".into(),
            loopback: false,
            uid: 65534,
            gid: 65534,
            tmp_size: 64 << 20,
            box_size: 64 << 20,
            files: Vec::new(),
            box_dir: None,
            copy_out: Vec::new(),
            copy_out_limit: 64 << 20,
            stdin: None,
            stdout_file: None,
            stderr_file: None,
            limits: Limits::default(),
            allow_host_root: false,
            workdir: "/box".into(),
            stream_output: false,
            mounts: None,
            stdin_from: None,
            stdout_to: None,
            stderr_to: None,
            stdout_direct: None,
            stderr_direct: None,
            inherit_fds: Vec::new(),
        }
    }
}

/// The seam where seccomp plugs in: installed in the child as the last step before execve.
pub trait ExecFilter: Sync {
    /// Installs the filter; must be async-signal-safe. Returns the errno on failure.
    fn install(&self) -> Result<(), i32>;
    /// Whether a violation kills the program (so the supervisor should name the syscall).
    fn kills(&self) -> bool;
    /// Names the syscall that killed host pid `pid`, when the kernel reported it.
    fn explain_kill(&self, _pid: i32) -> Option<String> {
        None
    }
}

/// Extras a run can be given beyond its [`Config`].
#[derive(Default, Clone, Copy)]
pub struct Hooks<'a> {
    pub filter: Option<&'a dyn ExecFilter>,
    /// An existing network namespace (an fd of one, with only `lo`, down) for the run to
    /// join instead of creating a fresh one: creating and destroying a netns per run is a
    /// large part of a run's kernel time. The judge keeps one per worker. Ignored when the
    /// run wants `lo` up.
    pub netns: Option<std::os::fd::RawFd>,
    /// The run's cgroup; the sandbox only calls this interface, never cgroupfs itself.
    pub cgroup: Option<&'a dyn Cgroup>,
    /// When no cgroup enforces memory/pids, apply RLIMIT_AS / RLIMIT_NPROC instead.
    pub rlimit_memory: bool,
    pub rlimit_pids: bool,
    /// Reported as is in every result.
    pub enforcement: Option<result::Enforcement>,
}

/// Errors that stop a run before the program could start (bad input or host trouble).
#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("descriptor {fd} cannot be passed to the program: {why}")]
    InheritFd { fd: i32, why: &'static str },
    #[error("cannot lease a per-run uid: {0}")]
    UidLease(std::io::Error),
    #[error("rootfs {0}: does not exist")]
    RootfsMissing(PathBuf),
    #[error("rootfs {0}: not a directory")]
    RootfsNotDir(PathBuf),
    #[error("rootfs {0} is the host's /: refusing without --allow-host-root")]
    RootfsIsHostRoot(PathBuf),
    #[error("rootfs {path}: {what} is a symlink or not a directory; the sandbox needs a real directory there")]
    BadMountpoint { path: PathBuf, what: &'static str },
    #[error("rootfs {path}: cannot create mount point {what}: {source}")]
    Mountpoint {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("--file {path}: {source}")]
    CopyInSource {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid name '{0}' for a file in /box: use a plain relative path without '..'")]
    BadBoxName(String),
    #[error("invalid working directory '{0}': use an absolute path without '..'")]
    BadWorkdir(String),
    #[error("--box-dir {0}: not a directory")]
    BoxDirNotDir(PathBuf),
    #[error("--stdin {path}: {source}")]
    Stdin {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot create output file: {source}")]
    OutputFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("empty command: give the program to run after --")]
    EmptyCommand,
    #[error("argument or environment contains a NUL byte")]
    NulByte,
    #[error("--uid/--gid 0: the program must run unprivileged")]
    RootUid,
    #[error("judgebox must run as root (it creates namespaces and mounts); run it with sudo or from a root service")]
    NotRoot,
    #[error("a warm sandbox cannot serve this run (box dir, copy-out or a cgroup it cannot join)")]
    WarmUnsupported,
    #[error("warm sandbox setup failed: {0}")]
    WarmSetup(String),
    #[error(transparent)]
    Mounts(#[from] mounts::MountError),
    #[error("{}: {source}", step.describe())]
    Sys {
        step: SetupStep,
        source: std::io::Error,
    },
}

pub use enforced::{run_enforced, Enforced, OneShot, WarmRuns};
pub use filter::SeccompGate;
pub use namespaces::new_netns;
pub use prepare::ensure_root;
pub use supervisor::run;
pub use timed::TimedCgroup;
