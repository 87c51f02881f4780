//! Host-side preparation before clone: validates the config, opens every file the run
//! needs, and lays out all strings and pointer arrays so the child side never allocates.

use super::{
    is_box_file_name, is_box_name, Config, Hooks, SandboxError, SetupStep, DEFAULT_PATH,
    MOUNT_POINTS,
};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Paths under /proc that are masked (bind /dev/null or an empty read-only tmpfs), as runc does.
pub const MASKED_PATHS: &[&str] = &[
    "proc/acpi",
    "proc/asound",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "proc/sysrq-trigger",
];

/// A file to be copied into /box by init.
pub struct InFile {
    pub fd: OwnedFd,
    pub name: CString,
    pub mode: libc::mode_t,
    /// Keep it root-owned instead of giving it to the program's uid.
    pub root_owned: bool,
}

/// A file init copies out of /box into a host temp file, renamed into place on success.
pub struct OutFile {
    pub name: CString,
    pub fd: OwnedFd,
    pub temp: PathBuf,
    pub dest: PathBuf,
}

/// Everything the child side needs, laid out before clone.
pub struct Prepared {
    pub root: CString,
    pub proc_dir: CString,
    pub dev_dir: CString,
    pub shm_dir: CString,
    pub tmp_dir: CString,
    pub box_dir: CString,
    pub masked: Vec<CString>,
    pub tmp_opts: CString,
    pub shm_opts: CString,
    pub box_opts: CString,
    pub box_bind: Option<CString>,
    pub hostname: CString,
    pub loopback: bool,
    pub uid: u32,
    pub gid: u32,
    pub workdir: CString,
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points into.
    pub _envp: Vec<CString>,
    pub envp_ptrs: Vec<*const libc::c_char>,
    /// PATH entries (each with a trailing '/') searched when argv[0] has no slash.
    pub search_dirs: Vec<CString>,
    pub stdin: OwnedFd,
    pub files: Vec<InFile>,
    pub outs: Vec<OutFile>,
    pub copy_out_limit: u64,
    pub rlimits: Vec<(super::sys::RlimitResource, u64)>,
    pub cap_last: u32,
    /// The mount plan, when the config has one (then `root` is only its mount point).
    pub mounts: Option<super::mounts::PreparedPlan>,
    /// Descriptors the program keeps open across execve.
    pub inherit_fds: Vec<i32>,
}

fn cstr(s: impl AsRef<[u8]>) -> Result<CString, SandboxError> {
    CString::new(s.as_ref()).map_err(|_| SandboxError::NulByte)
}

fn path_cstr(p: &Path) -> Result<CString, SandboxError> {
    cstr(p.as_os_str().as_bytes())
}

/// Validates a name inside /box: relative, no `..`, not empty.
fn check_box_name(name: &str) -> Result<(), SandboxError> {
    if is_box_name(name) {
        Ok(())
    } else {
        Err(SandboxError::BadBoxName(name.to_string()))
    }
}

/// Validates the working directory: absolute, no `..` (an image's WorkingDir is
/// untrusted input; it is resolved only after pivot_root, inside the sandbox's root).
pub fn check_workdir(dir: &str) -> Result<(), SandboxError> {
    let path = Path::new(dir);
    let ok = path.is_absolute()
        && !dir.contains('\0')
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(SandboxError::BadWorkdir(dir.to_string()))
    }
}

/// Checks the rootfs and makes sure each mount point is a real directory.
fn check_rootfs(config: &Config) -> Result<PathBuf, SandboxError> {
    let root = &config.rootfs;
    let meta = std::fs::metadata(root).map_err(|_| SandboxError::RootfsMissing(root.clone()))?;
    if !meta.is_dir() {
        return Err(SandboxError::RootfsNotDir(root.clone()));
    }
    let canonical =
        std::fs::canonicalize(root).map_err(|_| SandboxError::RootfsMissing(root.clone()))?;
    let host_root = std::fs::metadata("/").map_err(|e| SandboxError::Sys {
        step: SetupStep::StatHostRoot,
        source: e,
    })?;
    if !config.allow_host_root && meta.dev() == host_root.dev() && meta.ino() == host_root.ino() {
        return Err(SandboxError::RootfsIsHostRoot(root.clone()));
    }
    Ok(canonical)
}

fn ensure_mountpoint(root: &Path, what: &'static str) -> Result<(), SandboxError> {
    let path = root.join(what);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(SandboxError::BadMountpoint {
            path: root.to_path_buf(),
            what,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
            match builder.create(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    ensure_mountpoint(root, what)
                }
                Err(source) => Err(SandboxError::Mountpoint {
                    path: root.to_path_buf(),
                    what,
                    source,
                }),
            }
        }
        Err(source) => Err(SandboxError::Mountpoint {
            path: root.to_path_buf(),
            what,
            source,
        }),
    }
}

fn open_copy_in(config: &Config) -> Result<Vec<InFile>, SandboxError> {
    let mut files = Vec::with_capacity(config.files.len());
    for f in &config.files {
        if !is_box_file_name(&f.name) {
            return Err(SandboxError::BadBoxName(f.name.clone()));
        }
        let err = |source| SandboxError::CopyInSource {
            path: f.source.clone(),
            source,
        };
        // Never through a symlink, regular files only: judgebox reads as root, and the
        // path may name a file a hostile submitter placed.
        let file = crate::safe_open::open_regular(&f.source).map_err(|e| err(e.into_io()))?;
        let meta = file.metadata().map_err(err)?;
        let executable = meta.permissions().mode() & 0o111 != 0;
        let mode = match (executable, f.read_only) {
            (true, false) => 0o755,
            (false, false) => 0o644,
            (true, true) => 0o555,
            (false, true) => 0o444,
        };
        files.push(InFile {
            fd: file.into(),
            name: cstr(&f.name)?,
            mode,
            root_owned: f.read_only,
        });
    }
    Ok(files)
}

/// Creates a private temp file next to each copy-out destination.
fn open_copy_out(config: &Config) -> Result<Vec<OutFile>, SandboxError> {
    let mut outs = Vec::with_capacity(config.copy_out.len());
    for (i, c) in config.copy_out.iter().enumerate() {
        check_box_name(&c.name)?;
        let dir = c
            .dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = c.dest.file_name().ok_or_else(|| SandboxError::OutputFile {
            path: c.dest.clone(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        let temp = dir.join(format!(
            ".{}.judgebox-{}-{}",
            file_name.to_string_lossy(),
            std::process::id(),
            i
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|source| SandboxError::OutputFile {
                path: c.dest.clone(),
                source,
            })?;
        outs.push(OutFile {
            name: cstr(&c.name)?,
            fd: file.into(),
            temp,
            dest: c.dest.clone(),
        });
    }
    Ok(outs)
}

fn open_stdin(config: &Config) -> Result<OwnedFd, SandboxError> {
    if let Some(file) = &config.stdin_from {
        return file
            .try_clone()
            .map(OwnedFd::from)
            .map_err(|source| SandboxError::Stdin {
                path: PathBuf::from("(open file)"),
                source,
            });
    }
    open_stdin_at(config.stdin.as_deref())
}

/// The program's stdin: `path`, or /dev/null. A named stdin is a regular file reached
/// without a symlink: never a host file a symlink points at, never a FIFO that would
/// block the supervisor.
pub(super) fn open_stdin_at(path: Option<&Path>) -> Result<OwnedFd, SandboxError> {
    let Some(path) = path else {
        let null = File::open("/dev/null").map_err(|source| SandboxError::Stdin {
            path: "/dev/null".into(),
            source,
        })?;
        return Ok(null.into());
    };
    let file = crate::safe_open::open_regular(path).map_err(|e| SandboxError::Stdin {
        path: path.to_path_buf(),
        source: e.into_io(),
    })?;
    Ok(file.into())
}

/// Most descriptors a run can pass to the program.
pub const MAX_INHERITED_FDS: usize = 32;

/// Inherited descriptors: 3 and above, open, no duplicates, at most
/// [`MAX_INHERITED_FDS`].
fn check_inherited(fds: &[i32]) -> Result<Vec<i32>, SandboxError> {
    let mut out = fds.to_vec();
    out.sort_unstable();
    out.dedup();
    if out.len() > MAX_INHERITED_FDS {
        return Err(SandboxError::InheritFd {
            fd: out[MAX_INHERITED_FDS],
            why: "too many descriptors to pass",
        });
    }
    for &fd in &out {
        // SAFETY: F_GETFD only queries the descriptor table.
        if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(SandboxError::InheritFd {
                fd,
                why: "not an open descriptor above 2",
            });
        }
    }
    Ok(out)
}

fn build_env(config: &Config) -> Result<(Vec<CString>, Vec<CString>), SandboxError> {
    let mut env: Vec<String> = Vec::with_capacity(config.env.len() + 1);
    if !config.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.extend(config.env.iter().cloned());
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let search: Vec<CString> = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| cstr(format!("{}/", d.trim_end_matches('/'))))
        .collect::<Result<_, _>>()?;
    let envp = env.iter().map(cstr).collect::<Result<_, _>>()?;
    Ok((envp, search))
}

fn with_null(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

fn read_cap_last() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

fn rlimit_list(config: &Config, hooks: &Hooks) -> Vec<(super::sys::RlimitResource, u64)> {
    let l = &config.limits;
    let mut v = vec![
        (libc::RLIMIT_CORE, l.core),
        (libc::RLIMIT_NOFILE, l.nofile),
        (libc::RLIMIT_FSIZE, l.fsize),
        (libc::RLIMIT_STACK, l.stack.unwrap_or(libc::RLIM_INFINITY)),
    ];
    if let Some(cpu) = l.cpu_time {
        // Backstop only: the supervisor enforces the tree-wide limit; this catches one process
        // if the supervisor were starved.
        v.push((libc::RLIMIT_CPU, (cpu + l.extra_time).ceil() as u64 + 1));
    }
    if hooks.rlimit_memory {
        if let Some(mem) = l.memory {
            v.push((libc::RLIMIT_AS, mem));
        }
    }
    if hooks.rlimit_pids {
        if let Some(pids) = l.pids {
            v.push((libc::RLIMIT_NPROC, pids));
        }
    }
    v
}

/// judgebox creates namespaces, mounts and cgroups: it needs root. The command line
/// checks it first of all, before anything else is opened or created.
pub fn ensure_root() -> Result<(), SandboxError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(SandboxError::NotRoot);
    }
    Ok(())
}

/// Validates `config` and prepares a run. Nothing is created on the host except the
/// copy-out temp files (removed by the supervisor) and missing empty mount point dirs.
pub fn prepare(config: &Config, hooks: &Hooks) -> Result<Prepared, SandboxError> {
    if config.argv.is_empty() || config.argv[0].is_empty() {
        return Err(SandboxError::EmptyCommand);
    }
    if config.uid == 0 || config.gid == 0 {
        return Err(SandboxError::RootUid);
    }
    check_workdir(&config.workdir)?;
    let root_path = check_rootfs(config)?;
    if let Some(dir) = &config.box_dir {
        if !std::fs::metadata(dir).map(|m| m.is_dir()).unwrap_or(false) {
            return Err(SandboxError::BoxDirNotDir(dir.clone()));
        }
    }
    let files = open_copy_in(config)?;
    let stdin = open_stdin(config)?;
    let argv: Vec<CString> = config.argv.iter().map(cstr).collect::<Result<_, _>>()?;
    let (envp, search_dirs) = build_env(config)?;
    let sub = |p: &str| path_cstr(&root_path.join(p));
    let box_bind = match &config.box_dir {
        Some(d) => Some(path_cstr(
            &std::fs::canonicalize(d).map_err(|_| SandboxError::BoxDirNotDir(d.clone()))?,
        )?),
        None => None,
    };
    let mounts = match &config.mounts {
        Some(plan) => Some(super::mounts::prepare(
            plan,
            config.uid,
            config.gid,
            config.tmp_size,
        )?),
        None => None,
    };
    // Host-side changes only after every check passed: mount points, then copy-out temps.
    if mounts.is_none() {
        for what in MOUNT_POINTS {
            ensure_mountpoint(&root_path, what)?;
        }
    }
    let outs = open_copy_out(config)?;
    let prepared = Prepared {
        root: path_cstr(&root_path)?,
        proc_dir: sub("proc")?,
        dev_dir: sub("dev")?,
        shm_dir: sub("dev/shm")?,
        tmp_dir: sub("tmp")?,
        box_dir: sub("box")?,
        masked: MASKED_PATHS
            .iter()
            .map(|p| sub(p))
            .collect::<Result<_, _>>()?,
        tmp_opts: cstr(format!("mode=1777,size={}", config.tmp_size.max(4096)))?,
        shm_opts: cstr(format!("mode=1777,size={}", config.tmp_size.max(4096)))?,
        box_opts: cstr(format!(
            "mode=0755,uid={},gid={},size={}",
            config.uid,
            config.gid,
            config.box_size.max(4096)
        ))?,
        box_bind,
        hostname: cstr(&config.hostname)?,
        loopback: config.loopback,
        uid: config.uid,
        gid: config.gid,
        workdir: cstr(&config.workdir)?,
        argv_ptrs: with_null(&argv),
        argv,
        envp_ptrs: with_null(&envp),
        _envp: envp,
        search_dirs,
        stdin,
        files,
        outs,
        copy_out_limit: config.copy_out_limit,
        rlimits: rlimit_list(config, hooks),
        cap_last: read_cap_last(),
        mounts,
        inherit_fds: check_inherited(&config.inherit_fds)?,
    };
    Ok(prepared)
}

impl Prepared {
    /// The run's own fds init must keep open (everything else is closed on entry to init).
    pub fn stdin_and_files(&self) -> impl Iterator<Item = i32> + '_ {
        std::iter::once(self.stdin.as_raw_fd())
            .chain(self.files.iter().map(|f| f.fd.as_raw_fd()))
            .chain(self.outs.iter().map(|f| f.fd.as_raw_fd()))
            .chain(self.inherit_fds.iter().copied())
    }

    /// Removes copy-out temp files (on failure, or those that were not filled).
    pub fn discard_outputs(&self) {
        for o in &self.outs {
            let _ = std::fs::remove_file(&o.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_must_be_absolute_without_dotdot() {
        for good in ["/", "/box", "/usr/src/app", "/a/./b"] {
            assert!(check_workdir(good).is_ok(), "{good} refused");
        }
        for bad in [
            "",
            "box",
            "./x",
            "/a/../b",
            "/..",
            "/proc/self/cwd/..",
            "/a\0b",
        ] {
            assert!(check_workdir(bad).is_err(), "{bad:?} accepted");
        }
    }
}
