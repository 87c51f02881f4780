//! A mount plan, the alternative to one read-only rootfs directory: a fresh tmpfs root
//! with host directories bound and filesystems mounted into it rule by rule (isolate's
//! model). Validated and laid out before clone; applied by init in its private namespace.

use super::prepare::Prepared;
use super::protocol::{ChildError, SetupStep};
use super::sys::{self, SysResult, NULL};
use libc::{c_char, c_int, c_uint, c_ulong};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use thiserror::Error;

/// Most rules one plan may hold.
pub const MAX_RULES: usize = 64;

/// The sandbox's filesystem as an ordered list of rules (later rules may mount inside
/// earlier ones; a mount point inside a bound directory must exist there).
#[derive(Debug, Clone, Default)]
pub struct MountPlan {
    pub rules: Vec<MountRule>,
    /// The uid and gid whose permissions host sources (`Host`, `Beneath`) are opened
    /// with (isolate's `--as-uid/--as-gid`, or a non-root caller); None: root's.
    pub caller: Option<(u32, u32)>,
}

/// One mount: what goes where, and how.
#[derive(Debug, Clone)]
pub struct MountRule {
    /// Where inside the sandbox, relative to its root: "usr", "box", "dev/shm".
    pub inside: String,
    pub source: MountSource,
    /// Writable (otherwise read-only, recursively).
    pub rw: bool,
    /// Device nodes usable (otherwise nodev).
    pub dev: bool,
    pub noexec: bool,
    /// Bind the directory's submounts too (binds only).
    pub recursive: bool,
}

/// What a rule mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A host directory; symlinks in the path are followed (administrator-given paths
    /// such as /lib -> usr/lib).
    Host(PathBuf),
    /// `rel` resolved beneath the host directory `base` without following any symlink
    /// (`base` itself must not be one): for paths the sandboxed program can write to.
    Beneath { base: PathBuf, rel: String },
    /// judgebox's /proc (read-only, with the paths runc masks masked); only at "proc".
    Proc,
    /// judgebox's minimal /dev (null, zero, full, random, urandom, fd links, /dev/shm);
    /// only at "dev".
    Dev,
    /// A fresh tmpfs owned by the program's uid and gid, mode 0700, of
    /// `Config::tmp_size` bytes.
    Tmp,
    /// A fresh filesystem of a kind that has no host source.
    Fs(FsKind),
}

/// Filesystems a rule can mount fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// Read-only unless the rule is rw.
    Sysfs,
    /// Mode 1777, `Config::tmp_size` bytes.
    Tmpfs,
    /// A new devpts instance.
    Devpts,
}

/// Errors found before clone; each names the rule.
#[derive(Debug, Error)]
pub enum MountError {
    #[error(
        "mount rule '{0}': invalid path inside the sandbox (use a relative path without '..')"
    )]
    BadInside(String),
    #[error("mount rule '{inside}': {path}: {source}")]
    Source {
        inside: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mount rule '{inside}': {path} is not a directory")]
    NotDir { inside: String, path: PathBuf },
    #[error("mount rule '{inside}': invalid path '{rel}' beneath {base} (use a relative path without '..')")]
    BadBeneath {
        inside: String,
        base: PathBuf,
        rel: String,
    },
    #[error("mount rule '{0}': judgebox mounts its /proc only at proc and its /dev only at dev")]
    FixedPlace(String),
    #[error("too many mount rules ({0}; at most {MAX_RULES})")]
    TooMany(usize),
    #[error("mount rule contains a NUL byte")]
    NulByte,
}

/// A rule laid out for init (no allocation after clone).
pub struct PreparedRule {
    inside: CString,
    /// "a", "a/b", "a/b/c": created in the fresh root before anything is mounted.
    prefixes: Vec<CString>,
    kind: PreparedKind,
    rw: bool,
    dev: bool,
    noexec: bool,
    recursive: bool,
}

enum PreparedKind {
    Host(CString),
    Beneath {
        base: CString,
        rel: CString,
    },
    Proc,
    Dev,
    Fs {
        fstype: &'static CStr,
        opts: CString,
    },
}

/// The whole plan laid out for init.
pub struct PreparedPlan {
    rules: Vec<PreparedRule>,
    caller: Option<(u32, u32)>,
}

fn cstr(s: impl AsRef<[u8]>) -> Result<CString, MountError> {
    CString::new(s.as_ref()).map_err(|_| MountError::NulByte)
}

/// The normal components of a relative path, or None when it has anything else.
fn plain_components(path: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = Path::new(path)
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then_some(parts)
}

fn check_host_dir(inside: &str, path: &Path) -> Result<(), MountError> {
    let meta = std::fs::metadata(path).map_err(|source| MountError::Source {
        inside: inside.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(MountError::NotDir {
            inside: inside.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn check_base_dir(inside: &str, base: &Path) -> Result<(), MountError> {
    let meta = std::fs::symlink_metadata(base).map_err(|source| MountError::Source {
        inside: inside.to_string(),
        path: base.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(MountError::NotDir {
            inside: inside.to_string(),
            path: base.to_path_buf(),
        });
    }
    Ok(())
}

fn prepare_kind(
    rule: &MountRule,
    ids: (u32, u32),
    tmp_size: u64,
    as_caller: bool,
) -> Result<PreparedKind, MountError> {
    let (uid, gid) = ids;
    let inside = rule.inside.as_str();
    let size = tmp_size.max(4096);
    Ok(match &rule.source {
        // With a caller identity init opens the source as the caller: checking it here
        // as root would tell the caller about paths it cannot reach.
        MountSource::Host(path) if as_caller => {
            PreparedKind::Host(cstr(path.as_os_str().as_bytes())?)
        }
        MountSource::Host(path) => {
            check_host_dir(inside, path)?;
            PreparedKind::Host(cstr(path.as_os_str().as_bytes())?)
        }
        MountSource::Beneath { base, rel } => {
            if !as_caller {
                check_base_dir(inside, base)?;
            }
            // Only for a clear error here: init resolves it again without symlinks.
            if !as_caller {
                check_base_dir(inside, &base.join(rel))?;
            }
            if plain_components(rel).is_none() {
                return Err(MountError::BadBeneath {
                    inside: inside.to_string(),
                    base: base.clone(),
                    rel: rel.clone(),
                });
            }
            PreparedKind::Beneath {
                base: cstr(base.as_os_str().as_bytes())?,
                rel: cstr(rel)?,
            }
        }
        MountSource::Proc if inside == "proc" => PreparedKind::Proc,
        MountSource::Dev if inside == "dev" => PreparedKind::Dev,
        MountSource::Proc | MountSource::Dev => {
            return Err(MountError::FixedPlace(inside.to_string()))
        }
        MountSource::Tmp => PreparedKind::Fs {
            fstype: c"tmpfs",
            opts: cstr(format!("mode=0700,uid={uid},gid={gid},size={size}"))?,
        },
        MountSource::Fs(FsKind::Tmpfs) => PreparedKind::Fs {
            fstype: c"tmpfs",
            opts: cstr(format!("mode=1777,size={size}"))?,
        },
        MountSource::Fs(FsKind::Sysfs) => PreparedKind::Fs {
            fstype: c"sysfs",
            opts: CString::default(),
        },
        MountSource::Fs(FsKind::Devpts) => PreparedKind::Fs {
            fstype: c"devpts",
            opts: cstr("newinstance,ptmxmode=0666,mode=0620")?,
        },
    })
}

/// Validates the plan and lays it out; checks every host source exists as a directory.
pub fn prepare(
    plan: &MountPlan,
    uid: u32,
    gid: u32,
    tmp_size: u64,
) -> Result<PreparedPlan, MountError> {
    if plan.rules.len() > MAX_RULES {
        return Err(MountError::TooMany(plan.rules.len()));
    }
    let mut rules = Vec::with_capacity(plan.rules.len());
    for rule in &plan.rules {
        let parts = plain_components(&rule.inside)
            .ok_or_else(|| MountError::BadInside(rule.inside.clone()))?;
        let prefixes = (1..=parts.len())
            .map(|n| cstr(parts[..n].join("/")))
            .collect::<Result<_, _>>()?;
        rules.push(PreparedRule {
            inside: cstr(parts.join("/"))?,
            prefixes,
            kind: prepare_kind(rule, (uid, gid), tmp_size, plan.caller.is_some())?,
            rw: rule.rw,
            dev: rule.dev,
            noexec: rule.noexec,
            recursive: rule.recursive,
        });
    }
    Ok(PreparedPlan {
        rules,
        caller: plan.caller,
    })
}

type StepResult = Result<(), ChildError>;

const OPEN_TREE_CLONE: c_uint = 1;
const AT_RECURSIVE: c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: c_uint = 0x40;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const RESOLVE_STRICT: u64 =
    libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn check_fd(ret: libc::c_long) -> SysResult<c_int> {
    if ret < 0 {
        Err(sys::errno())
    } else {
        Ok(ret as c_int)
    }
}

fn open_tree(dirfd: c_int, flags: c_uint) -> SysResult<c_int> {
    let flags = flags | libc::AT_EMPTY_PATH as c_uint | libc::O_CLOEXEC as c_uint;
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH names dirfd itself.
    check_fd(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, c"".as_ptr(), flags) })
}

fn mount_setattr(fd: c_int, recursive: bool, attr_set: u64) -> SysResult {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is empty.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check_fd(ret).map(|_| ())
}

fn move_mount(from: c_int, to: c_int) -> SysResult {
    let flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: empty NUL-terminated paths with the EMPTY_PATH flags name the two fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from,
            c"".as_ptr(),
            to,
            c"".as_ptr(),
            flags,
        )
    };
    check_fd(ret).map(|_| ())
}

/// "/proc/self/fd/N" in `buf`, NUL-terminated, without allocating.
fn fd_path(fd: c_int, buf: &mut [u8; 32]) -> *const c_char {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let mut n = fd.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    buf.as_ptr() as *const c_char
}

/// Sets init's filesystem uid and gid (raw syscalls: init is single-threaded), checking
/// that they took effect (setfsuid reports no errors, only the previous value).
fn set_fsids(uid: u32, gid: u32) -> SysResult {
    // SAFETY: setfsgid/setfsuid take plain ids and change only this thread's fsids.
    let (g, u) = unsafe {
        libc::syscall(libc::SYS_setfsgid, gid);
        libc::syscall(libc::SYS_setfsuid, uid);
        (
            libc::syscall(libc::SYS_setfsgid, u32::MAX),
            libc::syscall(libc::SYS_setfsuid, u32::MAX),
        )
    };
    if g == gid as libc::c_long && u == uid as libc::c_long {
        Ok(())
    } else {
        Err(libc::EPERM)
    }
}

/// Runs `f` with an fd, closing it afterwards whatever `f` returned.
fn with_fd<T>(fd: SysResult<c_int>, f: impl FnOnce(c_int) -> SysResult<T>) -> SysResult<T> {
    let fd = fd?;
    let result = f(fd);
    sys::close(fd);
    result
}

impl PreparedRule {
    fn attrs(&self) -> u64 {
        let mut a = MOUNT_ATTR_NOSUID;
        if !self.rw {
            a |= MOUNT_ATTR_RDONLY;
        }
        if !self.dev {
            a |= MOUNT_ATTR_NODEV;
        }
        if self.noexec {
            a |= MOUNT_ATTR_NOEXEC;
        }
        a
    }

    fn ms_flags(&self) -> c_ulong {
        let mut f = libc::MS_NOSUID;
        if !self.rw {
            f |= libc::MS_RDONLY;
        }
        if !self.dev {
            f |= libc::MS_NODEV;
        }
        if self.noexec {
            f |= libc::MS_NOEXEC;
        }
        f as c_ulong
    }

    /// The mount point, opened beneath the root without following any symlink.
    fn open_target(&self, root: c_int) -> SysResult<c_int> {
        let flags = (libc::O_PATH | libc::O_DIRECTORY) as u64;
        sys::openat2(root, self.inside.as_ptr(), flags, 0, RESOLVE_STRICT)
    }

    /// The source directory, opened with the caller's filesystem identity when the plan
    /// names one (the permission checks of path resolution are the caller's; init's own
    /// capabilities over files are off while its fsuid is not 0).
    fn open_source_as(&self, caller: Option<(u32, u32)>) -> SysResult<c_int> {
        let Some((uid, gid)) = caller else {
            return self.open_source();
        };
        set_fsids(uid, gid)?;
        let fd = self.open_source();
        set_fsids(0, 0)?;
        fd
    }

    fn open_source(&self) -> SysResult<c_int> {
        let dir = libc::O_PATH | libc::O_DIRECTORY;
        match &self.kind {
            PreparedKind::Host(path) => sys::openat(libc::AT_FDCWD, path.as_ptr(), dir, 0),
            PreparedKind::Beneath { base, rel } => with_fd(
                sys::openat(libc::AT_FDCWD, base.as_ptr(), dir | libc::O_NOFOLLOW, 0),
                |b| sys::openat2(b, rel.as_ptr(), dir as u64, 0, RESOLVE_STRICT),
            ),
            _ => Err(libc::EINVAL),
        }
    }

    /// A detached copy of the source tree with the rule's flags, moved onto the target.
    fn bind(&self, root: c_int, caller: Option<(u32, u32)>) -> SysResult {
        let clone_flags = OPEN_TREE_CLONE | if self.recursive { AT_RECURSIVE } else { 0 };
        with_fd(self.open_source_as(caller), |src| {
            with_fd(open_tree(src, clone_flags), |tree| {
                mount_setattr(tree, self.recursive, self.attrs())?;
                with_fd(self.open_target(root), |target| move_mount(tree, target))
            })
        })
    }

    fn mount_fs(&self, root: c_int, fstype: &CStr, opts: &CStr) -> SysResult {
        with_fd(self.open_target(root), |target| {
            let mut buf = [0u8; 32];
            let path = fd_path(target, &mut buf);
            let data = if opts.is_empty() { NULL } else { opts.as_ptr() };
            sys::mount(
                fstype.as_ptr(),
                path,
                fstype.as_ptr(),
                self.ms_flags(),
                data,
            )
        })
    }
}

/// Applies the plan at `p.root` (after mounts were made private): a tmpfs root, every
/// mount point created in it before anything is mounted, the rules in order, then the
/// root made read-only. Runs in init, allocation-free.
pub fn build(p: &Prepared, plan: &PreparedPlan) -> StepResult {
    let flags = (libc::MS_NOSUID | libc::MS_NODEV) as c_ulong;
    sys::mount(
        c"tmpfs".as_ptr(),
        p.root.as_ptr(),
        c"tmpfs".as_ptr(),
        flags,
        c"mode=0755,size=1m".as_ptr(),
    )
    .map_err(|e| ChildError::new(SetupStep::MountRoot, e))?;
    let root = sys::openat(
        libc::AT_FDCWD,
        p.root.as_ptr(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(|e| ChildError::new(SetupStep::MountRoot, e))?;
    let result = apply(p, plan, root);
    sys::close(root);
    result
}

fn apply(p: &Prepared, plan: &PreparedPlan, root: c_int) -> StepResult {
    for (i, rule) in plan.rules.iter().enumerate() {
        for dir in &rule.prefixes {
            match sys::mkdirat(root, dir.as_ptr(), 0o755) {
                Ok(()) | Err(libc::EEXIST) => {}
                Err(e) => return Err(ChildError::at(SetupStep::MountRule, e, i as u32)),
            }
        }
    }
    if plan.caller.is_some() {
        // Root's supplementary groups must not widen the caller's access to sources.
        // SAFETY: raw setgroups with an empty list (NULL, zero count).
        let ret = unsafe { libc::syscall(libc::SYS_setgroups, 0, NULL) };
        check_fd(ret).map_err(|e| ChildError::new(SetupStep::MountRuleAsCaller, e))?;
    }
    for (i, rule) in plan.rules.iter().enumerate() {
        let at = |r: SysResult| r.map_err(|e| ChildError::at(SetupStep::MountRule, e, i as u32));
        match &rule.kind {
            PreparedKind::Host(_) | PreparedKind::Beneath { .. } => {
                at(rule.bind(root, plan.caller))?
            }
            PreparedKind::Fs { fstype, opts } => at(rule.mount_fs(root, fstype, opts))?,
            PreparedKind::Proc => super::rootfs::mount_proc(p)?,
            PreparedKind::Dev => super::rootfs::mount_dev(p)?,
        }
    }
    let ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    mount_setattr(root, false, ro).map_err(|e| ChildError::new(SetupStep::MountRoot, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(inside: &str, source: MountSource) -> MountRule {
        MountRule {
            inside: inside.into(),
            source,
            rw: false,
            dev: false,
            noexec: false,
            recursive: true,
        }
    }

    #[test]
    fn fd_path_formats_without_allocating() {
        let mut buf = [0u8; 32];
        for (fd, want) in [
            (0, "/proc/self/fd/0"),
            (7, "/proc/self/fd/7"),
            (1234, "/proc/self/fd/1234"),
        ] {
            let p = fd_path(fd, &mut buf);
            // SAFETY: fd_path NUL-terminates inside buf.
            assert_eq!(unsafe { CStr::from_ptr(p) }.to_str().unwrap(), want);
        }
    }

    #[test]
    fn inside_paths_must_be_plain_and_relative() {
        for bad in ["", "/", "..", "a/../b", "./a"] {
            let plan = MountPlan {
                rules: vec![rule(bad, MountSource::Tmp)],
                caller: None,
            };
            assert!(prepare(&plan, 1, 1, 1 << 20).is_err(), "{bad:?} accepted");
        }
        let plan = MountPlan {
            rules: vec![rule("a/b/c", MountSource::Tmp)],
            caller: None,
        };
        let p = prepare(&plan, 1, 1, 1 << 20).unwrap();
        let prefixes: Vec<_> = p.rules[0]
            .prefixes
            .iter()
            .map(|c| c.to_str().unwrap())
            .collect();
        assert_eq!(prefixes, ["a", "a/b", "a/b/c"]);
    }

    #[test]
    fn proc_and_dev_only_at_their_places_and_sources_must_be_dirs() {
        let at = |inside: &str, s: MountSource| {
            prepare(
                &MountPlan {
                    rules: vec![rule(inside, s)],
                    caller: None,
                },
                1,
                1,
                4096,
            )
        };
        assert!(matches!(
            at("p", MountSource::Proc),
            Err(MountError::FixedPlace(_))
        ));
        assert!(matches!(
            at("d", MountSource::Dev),
            Err(MountError::FixedPlace(_))
        ));
        assert!(at("proc", MountSource::Proc).is_ok());
        assert!(matches!(
            at("x", MountSource::Host("/nonexistent-judgebox".into())),
            Err(MountError::Source { .. })
        ));
        assert!(matches!(
            at("x", MountSource::Host("/proc/self/status".into())),
            Err(MountError::NotDir { .. })
        ));
        let bad = MountSource::Beneath {
            base: "/tmp".into(),
            rel: "../etc".into(),
        };
        assert!(matches!(at("x", bad), Err(MountError::BadBeneath { .. })));
    }
}
